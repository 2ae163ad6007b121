import { exportRows } from "../../reports/export.js";
import { checkOutputPath } from "../io/paths.js";
import { reportDataOf } from "./choices.js";
import { emit } from "./output.js";

export default function exportCommand(o: { db: string; format: "csv" | "json" | "jsonl"; what: "runs" | "layers" | "epochs"; sweep?: string; out?: string; force?: boolean }): number {
  const output = { kind: o.format, force: o.force, inputs: [o.db] };
  if (o.out !== undefined) checkOutputPath(o.out, output);
  const data = reportDataOf(o.db, o.sweep);
  emit(exportRows(data, o.what, o.format), o.out, output);
  return 0;
}
