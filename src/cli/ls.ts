import type { RunStatus } from "../core/types.js";
import { readRuns } from "../../reports/read.js";
import { targetLabel } from "../grid/label.js";
import { existingSweep, oneOf } from "./choices.js";
import { openExisting } from "./open.js";
import { emit, textTable } from "./output.js";

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
  emit(textTable(
    ["key", "status", "dataset", "arch", "method", "target", "seed", "top1", "dense", "compr", "speedup", "backend"],
    runs.map((r) => [
      r.key, r.status, r.dataset, r.arch, r.methodLabel, targetLabel({ kind: r.targetKind, value: r.targetValue }), String(r.seed),
      f(r.metrics.top1_after, 4), f(r.metrics.top1_dense, 4), f(r.metrics.compression_ratio, 2), f(r.metrics.theoretical_speedup, 2), r.backend ?? "",
    ]),
  ) + `${runs.length} run(s)\n`);
  return 0;
}
