/**
 * `bench latency`: time finished structured runs again, dense against compacted, at batch 1 and at each run's
 * fine-tuning batch, on this machine now, without training anything. A sweep times its runs while other runs train
 * beside them; on a busy machine a batch-1 forward of a few milliseconds is at the mercy of the scheduler, so a
 * reviewer wants the speedups re-measured on a quiet one. The models are rebuilt from what each run saved (its weights
 * and masks: the kept channels, so the compacted widths), and timed with the sweep's own timer (latencyStats:
 * alternating, warmed up, median and IQR). Inputs are random images of the dataset's shape: dense kernels take the
 * same time whatever the values. Nothing is written to the database.
 */
import { getDataset } from "../../datasets/index.js";
import { getMethod } from "../../methods/index.js";
import { readArtifacts, readRuns } from "../../reports/read.js";
import { channelGraph, widthPlan } from "../archs/graph.js";
import { getArch } from "../archs/index.js";
import { initBackend, type BackendRequest } from "../backend/index.js";
import { makeRng } from "../core/rng.js";
import { keepFromMasks } from "../prune/structured.js";
import { readCheckpoint } from "../run/checkpoint.js";
import { latencyStats, type LatencyStat } from "../run/latency.js";
import { compactModel } from "../train/compact.js";
import { stage } from "../train/loop.js";
import { createModel, disposeModel, restore } from "../train/model.js";
import { located } from "./export-model.js";
import { UsageError } from "./errors.js";
import { openExisting } from "./open.js";
import { emit, textTable } from "./output.js";

export interface LatencyRow {
  key: string;
  arch: string;
  method: string;
  target: string;
  theoreticalSpeedup: number | null;
  /** As the sweep measured it. */
  storedSpeedup: { b1: number | null; train: number | null };
  batches: Array<{ batch: number; dense: LatencyStat; compacted: LatencyStat; speedup: number }>;
}

export default async function latency(o: { db: string; run?: string[]; arch?: string; method?: string; repeats?: string; json?: boolean; backend?: string }): Promise<number> {
  const repeats = o.repeats === undefined ? 20 : Number(o.repeats);
  if (!Number.isInteger(repeats) || repeats < 1) throw new UsageError(`--repeats must be an integer >= 1, got "${o.repeats}"`);
  const store = openExisting(o.db);
  let runs;
  const artifacts = new Map<string, ReturnType<typeof readArtifacts>>();
  try {
    runs = readRuns(store, { status: "done", ...(o.arch ? { arch: o.arch } : {}) })
      .filter((r) => (o.run?.length ? o.run.some((k) => r.key.startsWith(k)) : true))
      .filter((r) => (o.method ? r.method === o.method || r.methodLabel === o.method : true))
      .filter((r) => r.metrics.latency_form_compacted === 1);
    for (const r of runs) artifacts.set(r.key, readArtifacts(store, r.key));
  } finally {
    store.close();
  }
  if (runs.length === 0) throw new UsageError(`no finished structured run in ${o.db} matches (only channel-pruning runs have a compacted model to time; see \`bench ls --db ${o.db}\`)`);
  const info = await initBackend((o.backend ?? "auto") as BackendRequest);
  const rows: LatencyRow[] = [];
  let unsaved = 0;
  for (const run of runs) {
    const a = artifacts.get(run.key)!;
    const weightsFile = a.find((x) => x.kind === "pruned-weights");
    const masksFile = a.find((x) => x.kind === "masks");
    if (!weightsFile || !masksFile) {
      // An iterative run's earlier levels are results without a saved model (the run saves its last one).
      if (o.run?.length) throw new UsageError(`run ${run.key} has no saved weights or masks in ${o.db} (an earlier level of an iterative run? only its last level is saved)`);
      unsaved++;
      continue;
    }
    if (getMethod(run.method).granularity !== "channel") continue;
    const arch = getArch(run.arch);
    const { inputShape, numClasses } = getDataset(run.dataset);
    const weights = readCheckpoint(located(weightsFile, o.db, run.key)).tensors;
    const masks = readCheckpoint(located(masksFile, o.db, run.key)).tensors;
    const graph = channelGraph(arch, inputShape, numClasses);
    const keep = keepFromMasks(graph, masks);
    // The full-width model with the run's weights (masked channels at 0: dense kernels time zeros like any value).
    const full = createModel(arch, inputShape, numClasses, run.seed);
    restore(full, new Map([...weights].map(([n, t]) => [n, t.data])));
    const compacted = compactModel(full, widthPlan(arch, graph, inputShape, numClasses), keep);
    // The batch the sweep timed as "train" (the fine-tuning batch, capped by the test split), else the fine-tuning config's.
    const trainBatch = run.metrics.latency_train_batch ?? (run.config as { finetune?: { batchSize?: number } }).finetune?.batchSize ?? 128;
    const images = Math.max(1, trainBatch);
    const rng = makeRng(run.seed, "latency-inputs");
    const x = new Float32Array(images * inputShape[0] * inputShape[1] * inputShape[2]).map(() => rng() - 0.5);
    const split = stage({ x, y: new Int32Array(images), count: images }, inputShape);
    const batches: LatencyRow["batches"] = [];
    try {
      for (const batch of [1, trainBatch]) {
        const [d, c] = await latencyStats([full, compacted], split, batch, repeats);
        batches.push({ batch, dense: d, compacted: c, speedup: d.medianMs / c.medianMs });
      }
    } finally {
      split.dispose();
      disposeModel(compacted);
      disposeModel(full);
    }
    rows.push({
      key: run.key, arch: run.arch, method: run.methodLabel, target: `${run.targetKind} ${run.targetValue}`,
      theoreticalSpeedup: run.metrics.theoretical_speedup ?? null,
      storedSpeedup: { b1: run.metrics.measured_speedup_b1 ?? null, train: run.metrics.measured_speedup_train ?? null },
      batches,
    });
  }
  if (o.json) {
    emit(JSON.stringify({ backend: info.name, threads: info.threads, repeats, runs: rows, skippedWithoutModel: unsaved }, null, 2));
    return 0;
  }
  const f = (v: number | null) => (v === null || !Number.isFinite(v) ? "–" : v.toFixed(2));
  const stat = (b: LatencyRow["batches"][number]) => `${f(b.speedup)} (${b.dense.medianMs.toFixed(2)} ± ${b.dense.iqrMs.toFixed(2)} / ${b.compacted.medianMs.toFixed(2)} ± ${b.compacted.iqrMs.toFixed(2)} ms)`;
  emit(textTable(["run", "arch", "method", "target", "theor.", "b1 now (dense / compacted, median ± IQR)", "b1 sweep", "train batch now", "train sweep"], rows.map((r) => [
    r.key.slice(0, 8), r.arch, r.method, r.target, f(r.theoreticalSpeedup), stat(r.batches[0]), f(r.storedSpeedup.b1), stat(r.batches[1]), f(r.storedSpeedup.train),
  ])) + `measured speedup = dense / compacted median latency, ${info.name} backend, ${info.threads} thread(s), at least ${repeats} alternating repetitions (more for fast batches); nothing written to ${o.db}${unsaved ? `; ${unsaved} run(s) skipped: no saved model (earlier levels of iterative runs)` : ""}\n`);
  return 0;
}
