import type { RunStatus } from "../core/types.js";
import { readRuns } from "../../reports/read.js";
import { targetLabel } from "../grid/label.js";
import { existingSweep, oneOf } from "./choices.js";
import { openExisting } from "./open.js";
import { colourOn, emit, paint, textTable } from "./output.js";

export const RUN_STATUSES: readonly RunStatus[] = ["pending", "running", "done", "failed", "diverged", "interrupted"];

export default function ls(o: { db: string; status?: string; sweep?: string; json?: boolean }): number {
  const status = o.status === undefined ? undefined : oneOf("--status", o.status, RUN_STATUSES);
  const store = openExisting(o.db);
  let runs;
  try {
    runs = readRuns(store, { status, sweep: existingSweep(store, "--sweep", o.sweep) });
  } finally {
    store.close();
  }
  if (o.json) {
    emit(JSON.stringify(runs.map(({ config: _config, ...r }) => r), null, 2));
    return 0;
  }
  const f = (x: number | null | undefined, digits: number) => (x === null || x === undefined ? "" : x.toFixed(digits));
  // Accuracy in percent with 2 decimals, as in `bench table` and the report (--json keeps fractions).
  const pct = (x: number | null | undefined) => (x === null || x === undefined ? "" : (x * 100).toFixed(2));
  const colour = colourOn(process.stdout);
  const STATUS_COLOUR: Partial<Record<RunStatus, "red" | "green" | "yellow">> = { done: "green", failed: "red", diverged: "red", interrupted: "yellow" };
  emit(textTable(
    ["key", "status", "dataset", "arch", "method", "target", "seed", "top1 %", "dense %", "compr", "speedup", "backend"],
    runs.map((r) => [
      r.key, r.status, r.dataset, r.arch, r.methodLabel, targetLabel({ kind: r.targetKind, value: r.targetValue }), String(r.seed),
      pct(r.metrics.top1_after), pct(r.metrics.top1_dense), f(r.metrics.compression_ratio, 2), f(r.metrics.theoretical_speedup, 2), r.backend ?? "",
    ]),
    (row, col, padded) => {
      const c = col === 1 ? STATUS_COLOUR[runs[row].status] : undefined;
      return c ? paint(colour, c, padded) : padded;
    },
    [6, 7, 8, 9, 10],
  ) + `${runs.length} run(s)\n`);
  return 0;
}
