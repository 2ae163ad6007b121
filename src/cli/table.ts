import { GROUP_DIMS } from "../../reports/aggregate.js";
import { DELTA_METRIC, renderTable, TableError } from "../../reports/table.js";
import { checkOutputPath } from "../io/paths.js";
import { METRICS } from "../metrics/names.js";
import { listOf, oneOf, reportDataOf } from "./choices.js";
import { UsageError } from "./errors.js";
import { emit } from "./output.js";

export default function table(o: {
  db: string; format: "markdown" | "latex" | "csv" | "json"; groupBy: string; metrics?: string; sweep?: string; out?: string; force?: boolean;
  caption?: string; label?: string; pivot?: string; averageOver?: string; dense?: boolean;
}): number {
  const groupBy = listOf("--group-by", o.groupBy, GROUP_DIMS);
  const pivot = o.pivot === undefined ? undefined : oneOf("--pivot", o.pivot, ["method"] as const);
  const averageOver = o.averageOver === undefined ? undefined : listOf("--average-over", o.averageOver, GROUP_DIMS);
  const output = { kind: o.format, force: o.force, inputs: [o.db] };
  if (o.out !== undefined) checkOutputPath(o.out, output);
  const data = reportDataOf(o.db, o.sweep);
  // Every defined metric, and any other a run of this database recorded (e.g. from a newer prunebench).
  const known = new Set([...METRICS.keys(), DELTA_METRIC]);
  for (const r of data.runs) for (const k of Object.keys(r.metrics)) known.add(k);
  // A pivot has a column per method for each metric: top-1 alone unless more are asked for.
  const metrics = listOf("--metrics", o.metrics ?? (pivot ? "top1_after" : "top1_after,compression_ratio,theoretical_speedup"), [...known]);
  let text: string;
  try {
    text = renderTable(data, { format: o.format, groupBy, metrics, caption: o.caption, label: o.label, pivot, averageOver, dense: o.dense });
  } catch (e) {
    if (e instanceof TableError) throw new UsageError(e.message);
    throw e;
  }
  emit(text, o.out, output);
  return 0;
}
