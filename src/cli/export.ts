import { exportRows } from "../../reports/export.js";
import { openExisting, sweepFilter } from "./open.js";
import { emit } from "./output.js";

export default function exportCommand(o: { db: string; format: "csv" | "json" | "jsonl"; what: "runs" | "layers" | "epochs"; sweep?: string; out?: string }): number {
  const store = openExisting(o.db);
  const data = store.reportData({ sweep: sweepFilter(o.sweep) });
  store.close();
  emit(exportRows(data, o.what, o.format), o.out);
  return 0;
}
