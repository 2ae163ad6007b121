import { exportRows } from "../../reports/export.js";
import { checkOutputPath } from "../io/paths.js";
import { existingSweep } from "./choices.js";
import { openExisting } from "./open.js";
import { emit } from "./output.js";

export default function exportCommand(o: { db: string; format: "csv" | "json" | "jsonl"; what: "runs" | "layers" | "epochs"; sweep?: string; out?: string; force?: boolean }): number {
  const output = { kind: o.format, force: o.force, inputs: [o.db] };
  if (o.out !== undefined) checkOutputPath(o.out, output);
  const store = openExisting(o.db);
  let data;
  try {
    data = store.reportData({ sweep: existingSweep(store, "--sweep", o.sweep) });
  } finally {
    store.close();
  }
  emit(exportRows(data, o.what, o.format), o.out, output);
  return 0;
}
