import { GROUP_DIMS } from "../../reports/aggregate.js";
import { renderTable } from "../../reports/table.js";
import { checkOutputPath } from "../io/paths.js";
import { METRICS } from "../metrics/names.js";
import { listOf, reportDataOf } from "./choices.js";
import { emit } from "./output.js";

export default function table(o: { db: string; format: "markdown" | "latex" | "csv" | "json"; groupBy: string; metrics: string; sweep?: string; out?: string; force?: boolean }): number {
  const groupBy = listOf("--group-by", o.groupBy, GROUP_DIMS);
  const output = { kind: o.format, force: o.force, inputs: [o.db] };
  if (o.out !== undefined) checkOutputPath(o.out, output);
  const data = reportDataOf(o.db, o.sweep);
  // Every defined metric, and any other a run of this database recorded (e.g. from a newer prunebench).
  const known = new Set(METRICS.keys());
  for (const r of data.runs) for (const k of Object.keys(r.metrics)) known.add(k);
  const metrics = listOf("--metrics", o.metrics, [...known]);
  emit(renderTable(data, { format: o.format, groupBy, metrics }), o.out, output);
  return 0;
}
