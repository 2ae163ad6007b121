import { renderTable } from "../../reports/table.js";
import { openExisting, sweepFilter } from "./open.js";
import { emit } from "./output.js";

export default function table(o: { db: string; format: "markdown" | "latex" | "csv" | "json"; groupBy: string; metrics: string; sweep?: string; out?: string }): number {
  const store = openExisting(o.db);
  const data = store.reportData({ sweep: sweepFilter(o.sweep) });
  store.close();
  emit(renderTable(data, { format: o.format, groupBy: split(o.groupBy), metrics: split(o.metrics) }), o.out);
  return 0;
}

const split = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
