import { DATASETS } from "../../datasets/index.js";
import { emit, textTable } from "./output.js";

export default function datasets(o: { json?: boolean }): number {
  if (o.json) emit(JSON.stringify(DATASETS.map(({ load: _load, source: _source, ...d }) => d), null, 2));
  else emit(textTable(["name", "input", "classes", "license", "summary"], DATASETS.map((d) => [d.name, d.inputShape.join("x"), String(d.numClasses), d.license, d.summary])));
  return 0;
}
