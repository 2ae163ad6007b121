/**
 * One run, start to finish, inside a worker: dataset → architecture → dense model (cached) → prune → fine-tune →
 * metrics. Pure of storage: it returns a JobResult and writes only its own artifacts and the dense cache.
 */
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { getMethod } from "../../methods/index.js";
import { getDataset } from "../../datasets/index.js";
import type { LoadedDataset } from "../../datasets/types.js";
import { getArch, loadLayersModelArch } from "../archs/index.js";
import { initBackend, setBackendThreads } from "../backend/index.js";
import { type Artifact, type EpochRecord, type Job, type JobResult, type LevelResult, PROTOCOL_VERSION, type TrainConfig } from "../core/types.js";
import type { Schedule } from "../prune/schedules.js";
import {
  compressionRatio, countNonzero, keepFractionForCompression, layerCounts, maskedNonzero, modelCounts, sparsityOf, theoreticalSpeedup,
} from "../metrics/counts.js";
import { densityAtStep, resolveSchedule, updateFractionAtStep } from "../prune/schedules.js";
import { prunableTensors } from "../prune/policy.js";
import { prepareData, type PreparedData } from "../train/data.js";
import { DivergedError, evaluate as evaluateSplit, measureLatencies, stage, trainPhase, type Evaluation, type StagedSplit } from "../train/loop.js";
import { MaskSet } from "../train/masks.js";
import { createModel, disposeModel, forward, redrawnInitialWeights, restore, snapshot, type Model } from "../train/model.js";
import { ablateStep } from "./ablate-step.js";
import { writeCheckpoint } from "./checkpoint.js";
import { phasePlan, type PhaseStep, type RewindTarget } from "./phase-plan.js";
import { pruneStep } from "./prune-step.js";
import { regrowStep } from "./regrow-step.js";
import { startSurgery } from "./surgery-step.js";
import { restoreStructuredState, structuredPruneStep, structuredState, structuredTarget, type StructuredState } from "./structured-step.js";
import { keptFraction, roundTarget } from "../prune/structured.js";
import { latencyStats } from "./latency.js";
import { checkLayerNameParams } from "./layer-names.js";
import { compactModel } from "../train/compact.js";
import * as tf from "@tensorflow/tfjs-core";
import { budgetedConfig, macsRatio } from "./train-budget.js";
import { ensureDense, type DenseCost } from "./dense-cache.js";
import { attributedDenseCost, classRows, costMetrics, ZERO_COST, type PathCost } from "./run-cost.js";
import { findLevel, removeLevels, writeLevel } from "./level-checkpoints.js";
import { penaltyLoss } from "../train/penalty.js";
import type { LossPhase } from "../prune/loss-terms.js";
import { tickTockStep } from "./tick-tock-step.js";
import { CpuClock, cpuSeconds } from "./cpu-clock.js";
import { denseMeasure } from "./dense-measures.js";
import { windowFeed } from "./window-tracker.js";

/**
 * `note`, when set, is a line for the user: phase "wait-dense" (waiting for another process's lease on the dense
 * model; the note comes once the wait is long) or "warning".
 */
export type ProgressFn = (phase: string, epoch: number, epochs: number, note?: string) => void;

const datasetCache = new Map<string, Promise<LoadedDataset>>();
const preparedCache = new Map<string, PreparedData>();
/** The first job of a process is charged the process's start-up (imports, backend), paid once per worker. */
let startupCharged = false;

export async function executeJob(job: Job, onProgress: ProgressFn = () => {}): Promise<JobResult> {
  const startedAt = new Date();
  const base = { protocol: PROTOCOL_VERSION, kind: job.kind, key: job.key, startedAt: startedAt.toISOString(), host: hostname(), pid: process.pid } as const;
  let backend: JobResult["backend"] = null;
  const clock = new CpuClock();
  let restoreThreads: (() => Promise<unknown>) | undefined;
  if (!startupCharged) {
    startupCharged = true;
    clock.charge("startup", cpuSeconds());
  }
  try {
    const info = await clock.time("startup", () => initBackend(job.backend as never));
    // The job's thread count holds for this job only: the worker goes back to the backend's own for the next one.
    const threads = job.threads && job.threads !== info.threads ? await setBackendThreads(info, job.threads) : info.threads;
    if (threads !== info.threads) restoreThreads = () => setBackendThreads(info, info.threads);
    // BackendInfo.device is the torch backend's (issue #16); every other backend computes on the CPU.
    const device = "device" in info && typeof info.device === "string" && info.device ? info.device : "cpu";
    backend = { name: info.name, tfjsVersion: info.tfjsVersion, threads, device };
    const out = await runInScope(job, onProgress, startedAt, { ...info, threads }, clock);
    Object.assign(out.metrics, clock.metrics(), { compute_threads: threads });
    return { ...base, status: "done", error: null, backend, ...out, finishedAt: new Date().toISOString() };
  } catch (e) {
    const err = e as Error;
    const diverged = e instanceof DivergedError;
    return {
      ...base, status: diverged ? "diverged" : "failed", error: diverged ? err.message : (err.stack ?? String(err)), backend,
      metrics: diverged ? { diverged_epoch: (e as DivergedError).epoch } : {}, layers: [], epochs: [], artifacts: [],
      finishedAt: new Date().toISOString(),
    };
  } finally {
    await restoreThreads?.();
  }
}

async function runInScope(job: Job, onProgress: ProgressFn, startedAt: Date, backend: { name: string; threads: number }, clock: CpuClock): Promise<Omit<JobResult, "protocol" | "kind" | "key" | "status" | "error" | "backend" | "startedAt" | "finishedAt" | "host" | "pid">> {
  const { config } = job;
  const data = await loadPrepared(job);
  // An imported architecture is read from its file in this worker, and refused if the file changed since planning.
  const archFile = job.paths.archFiles?.[config.arch];
  if (archFile !== undefined) await loadLayersModelArch(archFile, config.arch);
  const arch = getArch(config.arch);
  if (job.kind === "run") checkLayerNameParams(config, arch, data.inputShape, data.numClasses);
  const model = createModel(arch, data.inputShape, data.numClasses, config.seed, config.model.init);
  const train = stage(data.train, data.inputShape);
  const val = stage(data.val, data.inputShape);
  const test = stage(data.test, data.inputShape);
  const masks = new MaskSet();
  // Taken before pretraining: prune-at-initialization schedules rewind to these exact weights.
  const initWeights = snapshot(model);
  try {
    const label = `${config.arch}/${config.dataset}/seed ${config.seed}`;
    const dense = await ensureDense(job.paths.cacheDir, job.denseKey, label, model, async (keepLeaseAlive) => clock.time("pretrain", async () => {
      const r = await trainPhase({
        phase: "pretrain", model, train, val, config: config.pretrain, masks, seed: config.seed, selectBestOnVal: false,
        // The method's loss terms that act while pretraining: they are part of the dense key (src/plan/plan.ts).
        extraLoss: methodPenalty(config, model, "pretrain"),
        hooks: { afterStep: keepLeaseAlive, afterEpoch: (e) => onProgress("pretrain", e.epoch + 1, config.pretrain.epochs) },
      });
      return { epochs: r.epochs, seconds: r.trainSeconds, images: r.images, macs: r.macs };
    }), {
      onWait: (note) => onProgress("wait-dense", 0, 0, note),
      onTrain: () => onProgress("pretrain", 0, config.pretrain.epochs),
      onWarning: (message) => onProgress("warning", 0, 0, message),
    });
    // Every run pruned from this dense model reports its test accuracy and latency: measured once, by the dense job
    // (dense-measures.ts), and read back by the runs. The latency is the unstructured runs' dense timing.
    const splitKey = [config.dataset, config.data, job.paths.dataDir ?? "", backend.name];
    const denseEval = await clock.time("eval", () => denseMeasure(dense.path, "test-eval", splitKey, false, () => evaluateSplit(model, test)));
    const latencyKey = [...splitKey, config.eval.latencyBatch, config.eval.latencyRepeats, backend.threads];
    const denseLatencyMs = await clock.time("latency", () => denseMeasure(dense.path, "latency-ms", latencyKey, true,
      async () => (await measureLatencies([model], test, config.eval.latencyBatch, config.eval.latencyRepeats))[0]));
    if (job.kind === "dense") {
      return { metrics: { pretrain_seconds: dense.trainedSeconds }, layers: [], epochs: dense.epochs, artifacts: [] };
    }
    return await runPhasePlan(job, model, { train, val, test }, masks, initWeights, dense.epochs, dense.trainedSeconds, onProgress, startedAt, backend.threads,
      { cost: dense.cost, classNames: data.classNames, denseEval, denseLatencyMs }, clock);
  } finally {
    masks.dispose();
    train.dispose();
    val.dispose();
    test.dispose();
    disposeModel(model);
  }
}

async function runPhasePlan(
  job: Job, model: Model, splits: { train: StagedSplit; val: StagedSplit; test: StagedSplit }, masks: MaskSet, initWeights: Map<string, Float32Array>,
  pretrainEpochs: EpochRecord[], pretrainSeconds: number, onProgress: ProgressFn, startedAt: Date, threads: number,
  extra: { cost: DenseCost | null; classNames: readonly string[]; denseEval: Evaluation; denseLatencyMs: number }, clock: CpuClock,
) {
  // Every evaluation pass of the run, charged to evaluation.
  const evaluate = (...args: Parameters<typeof evaluateSplit>) => clock.time("eval", () => evaluateSplit(...args));
  const { config } = job;
  const { denseEval } = extra;
  const denseWeights = snapshot(model);

  const method = getMethod(config.method.name);
  const refs = prunableTensors(model.layers, config.prunable);
  const paramsTotal = model.layers.reduce((n, l) => n + l.params, 0);
  const paramsPrunable = refs.reduce((n, r) => n + model.params.get(r.name)!.size, 0);
  // A channel method prunes to its target measured on the compacted model (structured-step.ts); the density a
  // schedule is planned with is the fraction of that measure kept (a one-shot plan's one prune step reads the target
  // itself; an iterative plan's rounds prune to the densities its rate gives, the last to the target).
  const structured: StructuredState | null = method.granularity === "channel" ? structuredState(model) : null;
  const density = structured ? keptFraction(structuredTarget(config.target))
    : config.target.kind === "sparsity" ? 1 - config.target.value
    : config.target.kind === "compression" ? keepFractionForCompression(config.target.value, paramsTotal, paramsPrunable)
    : (() => { throw new Error(`target ${config.target.kind} needs a channel method, and ${method.name} prunes weights`); })();
  const schedule = resolveSchedule(method.schedule(config.method.params), Math.ceil(splits.train.count / config.pretrain.batchSize));
  // Where the training before a prune started (AP measures movement from there): the dense training's start, then
  // each phase's start, snapshotted only for plans that ask for AP.
  let roundStart: ReadonlyMap<string, Float32Array> = initWeights;
  // The method's per-run record of training (fed while a gradual schedule prunes), when it keeps one.
  const tracker = method.tracker?.(config.method.params);
  // An iterative schedule's rounds before the last prune to the run's kind of target at the round's density (the
  // fraction of the measure kept); the last round, like a one-shot step, to the run's target itself.
  const prune = (d: number, round: number, randomMask = false, activate?: number) => clock.time("prune", () => structured ? structuredPruneStep({
    model, masks, method, params: config.method.params, prunable: config.prunable, target: roundTarget(structuredTarget(config.target), d), train: splits.train,
    seed: config.seed, step: round, state: structured,
  }) : pruneStep({
    model, masks, method, params: config.method.params, prunable: config.prunable, density: d, train: splits.train,
    seed: config.seed, step: round, randomMask, ...(activate ? { activate: { fraction: activate, start: roundStart } } : {}),
    ...(schedule.kind === "gradual" && schedule.remask ? { remask: true } : {}), ...(tracker ? { tracker } : {}),
  }));

  const stepsOf = (c: TrainConfig) => Math.ceil(splits.train.count / c.batchSize) * c.epochs;
  const changes = maskChanges(schedule, density, stepsOf(config.pretrain), stepsOf(config.finetune));
  const regrowth = method.regrowth?.(config.method.params);
  const plan = phasePlan(schedule, density, config.ablation);
  const denseCost = attributedDenseCost(plan, extra.cost, config.pretrain.epochs * splits.train.count, model.layers);
  const rewindWeights = await rewindPoints(plan, model, splits, masks, initWeights, denseWeights, config);

  const pruneStarted = performance.now();
  let before: Awaited<ReturnType<typeof evaluate>> | null = null;
  let rewound = false;
  // Training since the last level (all of it for a one-result run): a level is measured on its own round.
  let trained: Array<Awaited<ReturnType<typeof trainPhase>>> = [];
  // Seconds of retraining so far (a resumed run's saved rounds included) and the latest round's throughput: run-wide timings.
  let trainSeconds = 0;
  let imagesPerSecond = NaN;
  // Training on the way to the current model (a control level's own retraining is charged to that level only).
  const pathCost: PathCost = { ...ZERO_COST };
  const levels: LevelResult[] = [];
  // The weights before pruning, kept only for a plan that ablates its masks (a shuffled survivor needs its value).
  const ablates = plan.some((s) => s.kind === "ablate");
  let beforePruning: Map<string, Float32Array> | null = null;
  const usesAp = plan.some((p) => p.kind === "prune" && p.activate);
  const levelCount = plan.filter((s) => s.kind === "level").length;

  // A run with levels that was killed after some of them resumes from the last one saved (level-checkpoints.ts).
  // After rewindPoints: the "epoch" rewind point is computed from the dense model, before any mask exists.
  let first = 0;
  const resumed = levelCount > 0 ? findLevel(job.paths.cacheDir, job.key, levelCount, model, (m) => onProgress("warning", 0, 0, m)) : null;
  if (resumed) {
    restore(model, resumed.weights);
    for (const [name, t] of resumed.masks) masks.set(name, t.data, t.shape);
    // The channels earlier rounds removed stay removed: the structured state is read back from their masks.
    if (structured) restoreStructuredState(model, masks, structured);
    levels.push(...resumed.levels);
    rewound = resumed.rewound;
    trainSeconds = resumed.trainSeconds;
    imagesPerSecond = resumed.imagesPerSecond;
    // A checkpoint written before the cost was kept: unknown, not zero.
    Object.assign(pathCost, resumed.trainCost ?? { images: NaN, macs: NaN, seconds: NaN });
    if (resumed.roundStart) roundStart = resumed.roundStart;
    first = plan.findIndex((s) => s.kind === "level" && s.level === resumed.level) + 1;
    onProgress("resume", 0, 0, `resuming ${job.key} after level ${resumed.level} of ${levelCount} (levels 1-${resumed.level} restored from ${resumed.path})`);
  }
  try {
    for (const step of plan.slice(first)) {
      if (step.kind === "rewind-to-init") {
        restore(model, initWeights);
        rewound = true;
      } else if (step.kind === "rewind") {
        rewindTo(model, masks, rewindWeights.get(step.to)!);
        rewound = true;
      } else if (step.kind === "prune") {
        if (ablates && beforePruning === null) beforePruning = snapshot(model);
        await prune(step.density, step.round, step.random, step.activate);
      } else if (step.kind === "tick-tock") {
        if (!structured || schedule.kind !== "tick-tock") throw new Error(`a tick-tock step needs a channel method with a tick-tock schedule (${method.name}: ${schedule.kind})`);
        const r = await tickTockStep({
          model, masks, method, params: config.method.params, prunable: config.prunable, target: structuredTarget(config.target), train: splits.train,
          seed: config.seed, state: structured, schedule, finetune: config.finetune, penalty: (phase) => methodPenalty(config, model, phase),
          onProgress: (phase, index) => onProgress(phase, index, 0),
        });
        trainSeconds += r.trainSeconds;
        // Ticks and tocks train the network they prune: its cost, like any training on the way to the result.
        pathCost.images += r.images;
        pathCost.macs += r.macs;
        pathCost.seconds += r.trainSeconds;
      } else if (step.kind === "ablate") {
        ablateStep({ model, masks, ablation: step.ablation, seed: config.seed, init: config.model.init, beforePruning: beforePruning! });
      } else if (step.kind === "level") {
        let measured: Awaited<ReturnType<typeof measure>>;
        if (step.control) {
          // The round's own weights wait aside while its mask is retrained from the control's starting point.
          const own = snapshot(model);
          rewindTo(model, masks, rewindWeights.get(step.control.from)!);
          const controlBefore = await evaluate(model, splits.test, 512, masks);
          const result = await train(step.control.train);
          trainSeconds += result.trainSeconds;
          measured = await measure([result], controlBefore, true, { images: result.images, macs: result.macs, seconds: result.trainSeconds });
          restore(model, own);
        } else {
          measured = await measure(trained, before!, rewound);
        }
        levels.push({ level: step.level, ...measured });
        // Before the progress event: a worker killed once it reports the level finds the level saved. A checkpoint
        // only saves time on a re-run: one that cannot be written (a full cache disk) is a warning, not a failed run.
        try {
          writeLevel(job.paths.cacheDir, job.key, step.level, model, masks, {
            levels, rewound, trainSeconds, imagesPerSecond, roundStart: usesAp ? new Map(roundStart) : null, trainCost: { ...pathCost },
          });
        } catch (e) {
          onProgress("warning", 0, 0, `level ${step.level} of ${job.key} not saved for resuming (${(e as Error).message})`);
        }
        onProgress("level", step.level, levelCount);
        before = null;
        trained = [];
      } else {
        before ??= await evaluate(model, splits.test, 512, masks);
        const result = await train(step);
        trained.push(result);
        trainSeconds += result.trainSeconds;
        pathCost.images += result.images;
        pathCost.macs += result.macs;
        pathCost.seconds += result.trainSeconds;
        imagesPerSecond = result.imagesPerSecond;
      }
    }
  } catch (e) {
    // A diverged run is final (a re-run keeps it): its levels would never be resumed. A failed one keeps them, so
    // that running the sweep again resumes it.
    if (e instanceof DivergedError) removeLevels(job.paths.cacheDir, job.key);
    throw e;
  }
  const last = levels.length > 0 ? levels[levels.length - 1] : { ...(await measure(trained, before!, rewound)) };
  const artifacts = await clock.time("save", () => saveArtifacts(job, model, new Map([...model.params].map(([name, v]) => [name, v.dataSync() as Float32Array])), masks));
  // Run-wide timings: a level's seconds are its own round's; the run's (the last level's row) count every round,
  // those of a killed attempt's saved rounds included (finetune_seconds and total_seconds are this attempt's).
  Object.assign(last.metrics, {
    finetune_seconds: (performance.now() - pruneStarted) / 1000,
    train_seconds: trainSeconds + pretrainSeconds,
    total_seconds: (Date.now() - startedAt.getTime()) / 1000, train_img_per_s: imagesPerSecond,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  });
  // The result goes back to the coordinator now, with every level in it: the level checkpoints are not needed any
  // more. (Killed between here and the coordinator's commit, the run starts over: what it did before today.)
  if (levelCount > 0) removeLevels(job.paths.cacheDir, job.key);
  return { metrics: last.metrics, layers: last.layers, epochs: last.epochs, classes: last.classes, artifacts, ...(levels.length > 0 ? { levels } : {}) };

  /** One "train" step of the plan: the phase's config (peak LR, compute budget), its mask changes, and its hooks. */
  async function train(step: Extract<PhaseStep, { kind: "train" }>) {
    const configured = step.phase === "pretrain" ? config.pretrain : config.finetune;
    const peaked = step.peakLr === undefined ? configured : { ...configured, lr: step.peakLr };
    const phaseConfig = step.budget === undefined ? peaked
      : budgetedConfig(peaked, step.budget, macsRatio(model.layers, new Map(masks.names().map((n) => [n, masks.values(n)!]))));
    if (usesAp) roundStart = snapshot(model);
    // The surgery schedule makes its own mask changes (surgery-step.ts), the others' are step-by-step data.
    const surgery = step.during === "surgery" && schedule.kind === "surgery" ? await startSurgery({
      model, masks, method, params: config.method.params, prunable: config.prunable, schedule, density, train: splits.train,
      seed: config.seed, totalSteps: stepsOf(phaseConfig),
    }) : null;
    const change = step.during === "none" || surgery ? () => null : (s: number) => changes(step.during as "gradual" | "dynamic", step.phase, s);
    const stepsPerEpoch = Math.ceil(splits.train.count / phaseConfig.batchSize);
    let lastChange = surgery ? surgery.lastChangeStep : -1;
    for (let s = 0; s < stepsOf(phaseConfig); s++) if (change(s)) lastChange = s;
    let rounds = 0;
    const feed = tracker && step.during === "gradual" ? windowFeed(tracker, refs.map((r) => r.name)) : null;
    try {
      return await clock.time("finetune", () => trainPhase({
        phase: step.phase, model, train: splits.train, val: splits.val, config: phaseConfig, masks, seed: config.seed,
        selectBestOnVal: step.phase === "finetune" && config.finetune.select === "best-val",
        // Only epochs that ended with the final mask may be selected.
        selectFromEpoch: lastChange < 0 ? 0 : Math.floor(lastChange / stepsPerEpoch),
        fromEpoch: step.fromEpoch,
        masking: step.masking ?? "hard",
        extraLoss: methodPenalty(config, model, step.phase),
        hooks: {
          afterEpoch: (e) => onProgress(step.phase, e.epoch + 1, phaseConfig.epochs),
          wantsGradients: regrowth === "gradient" ? (s) => change(s)?.kind === "regrow" : undefined,
          ...(feed ? { afterGradients: feed.afterGradients } : {}),
          afterStep: step.during === "none" ? undefined : surgery ? (ctx) => surgery.afterStep(ctx) : async (ctx) => {
            // The window that ends at this step is folded in before the mask changes at it.
            feed?.afterStep(ctx);
            const c = change(ctx.globalStep);
            if (c?.kind === "prune") await prune(c.density, ++rounds);
            else if (c?.kind === "regrow") {
              await clock.time("prune", () => regrowStep({
                model, masks, method, params: config.method.params, prunable: config.prunable, fraction: c.fraction, regrowth: regrowth ?? "random",
                train: splits.train, seed: config.seed, step: ++rounds, gradients: ctx.gradients, resetOptimizerState: ctx.resetOptimizerState,
              }));
            }
          },
        },
      }));
    } finally {
      feed?.dispose();
    }
  }

  /**
   * A structured run's compacted model beside the masked one: its real params and MACs, the theoretical speedup from
   * them, what the target reached, how far its outputs are from the masked model's on a test batch, and latencies at
   * batch 1 and at the fine-tuning batch (median and interquartile range) against the dense model.
   */
  async function compactedMetrics(compacted: Model, denseModel: Model, s: StructuredState): Promise<Record<string, number>> {
    const params = compacted.layers.reduce((n, l) => n + l.params, 0);
    const macs = compacted.layers.reduce((n, l) => n + l.macs, 0);
    const size = Math.min(config.eval.latencyBatch, splits.test.count);
    const diff = tf.tidy(() => {
      const xb = tf.slice(splits.test.x, [0, 0, 0, 0], [size, -1, -1, -1]);
      return tf.max(tf.abs(tf.sub(forward(model, xb, false).logits, forward(compacted, xb, false).logits))).dataSync()[0];
    });
    const out: Record<string, number> = {
      params_compacted: params, macs_compacted: macs, theoretical_speedup: s.dense.macs / macs,
      channel_sparsity: s.channelSparsity, target_achieved: s.achieved ?? NaN, compacted_max_abs_diff: diff,
      latency_form_compacted: 1,
    };
    for (const [label, batch] of [["b1", 1], ["train", config.finetune.batchSize]] as const) {
      const [d, c] = await latencyStats([denseModel, compacted], splits.test, batch, config.eval.latencyRepeats);
      Object.assign(out, {
        [`latency_${label}_dense_ms`]: d.medianMs, [`latency_${label}_dense_iqr_ms`]: d.iqrMs,
        [`latency_${label}_compacted_ms`]: c.medianMs, [`latency_${label}_compacted_iqr_ms`]: c.iqrMs,
        [`measured_speedup_${label}`]: d.medianMs / c.medianMs, [`latency_${label}_batch`]: Math.min(batch, splits.test.count),
      });
    }
    return out;
  }

  /** The model as it is now, measured as a run's result: `round` is the training it got since the previous level. */
  async function measure(
    round: Array<Awaited<ReturnType<typeof trainPhase>>>, beforeEval: Awaited<ReturnType<typeof evaluate>>, rewoundNow: boolean,
    ownCost: PathCost = ZERO_COST,
  ) {
    const ft = round[round.length - 1];
    const finetuneSeconds = round.reduce((n, t) => n + t.trainSeconds, 0);
    const after = await evaluate(model, splits.test, 512, masks);
    const valAfter = splits.val.count > 0 ? await evaluate(model, splits.val, 512, masks) : { top1: NaN };
    const latencyBatch = Math.min(config.eval.latencyBatch, splits.test.count);
    let latencyDense: number;
    let latencyPruned: number;
    let structuredMetrics: Record<string, number> = {};
    const leftForLatency = clock.enter("latency");
    if (structured) {
      // Structured runs time the compacted model, the network a deployment would run, against the dense one in
      // alternation (compactedMetrics). Its model has its shortcut maps masked: the dense model is the architecture
      // as it was built. latency_dense/pruned_ms is the fine-tuning batch's timing when the batches agree, not a
      // third one (it was: a fifth of a scaled ResNet-20 run).
      const denseModel = createModel(structured.arch, model.inputShape, model.numClasses, config.seed);
      restore(denseModel, denseWeights);
      const compacted = compactModel(model, structured.plan, structured.keep);
      structuredMetrics = await compactedMetrics(compacted, denseModel, structured);
      [latencyDense, latencyPruned] = structuredMetrics.latency_train_batch === latencyBatch
        ? [structuredMetrics.latency_train_dense_ms, structuredMetrics.latency_train_compacted_ms]
        : await measureLatencies([denseModel, compacted], splits.test, config.eval.latencyBatch, config.eval.latencyRepeats);
      disposeModel(compacted);
      disposeModel(denseModel);
    } else {
      // Unstructured runs time the masked model on dense kernels, so its latency is the dense model's up to noise:
      // the dense model is timed once per dense model (runInScope), not again in every run that shares it, and the
      // masked model for exactly its repetitions, without the floor that stretches fast batches to repeats x 50 ms
      // (on a 2x-32x ShrinkBench grid that floor was ~5 % of the sweep's CPU, for a ratio known to be 1 up to noise).
      latencyDense = extra.denseLatencyMs;
      [latencyPruned] = await measureLatencies([model], splits.test, config.eval.latencyBatch, config.eval.latencyRepeats, 0);
    }
    clock.enter(leftForLatency);

    // Counts from the weights as they are now, so they describe exactly what was saved.
    const weights = new Map([...model.params].map(([name, v]) => [name, v.dataSync() as Float32Array]));
    const kernelNz = new Map<string, number>();
    const otherNz = new Map<string, number>();
    for (const layer of model.layers) {
      const tensorsOfLayer = [...weights].filter(([n]) => n.startsWith(`${layer.name}/`));
      for (const [name, values] of tensorsOfLayer) {
        const target = name.endsWith("/kernel") ? kernelNz : otherNz;
        target.set(layer.name, (target.get(layer.name) ?? 0) + countNonzero(values));
      }
    }
    const layers = layerCounts(model.layers, kernelNz, otherNz, new Set(refs.map((r) => r.layer)));
    const prunableNonzero = refs.reduce((n, r) => n + countNonzero(weights.get(r.name)!), 0);
    const counts = modelCounts(layers, { size: paramsPrunable, nonzero: prunableNonzero });
    const metrics: Record<string, number> = {
      top1_dense: denseEval.top1, top5_dense: denseEval.top5, loss_dense: denseEval.loss,
      top1_before: beforeEval.top1, top5_before: beforeEval.top5, loss_before: beforeEval.loss,
      top1_after: after.top1, top5_after: after.top5, loss_after: after.loss, val_top1_after: valAfter.top1,
      params_total: counts.paramsTotal, params_nonzero: counts.paramsNonzero, params_prunable: counts.paramsPrunable,
      compression_ratio: compressionRatio(counts.paramsTotal, counts.paramsNonzero),
      sparsity: sparsityOf(counts.paramsPrunable, counts.prunableNonzero),
      macs_dense: counts.macsDense, macs_effective: counts.macsEffective,
      theoretical_speedup: theoreticalSpeedup(counts.macsDense, counts.macsEffective),
      latency_dense_ms: latencyDense, latency_pruned_ms: latencyPruned, measured_speedup: latencyDense / latencyPruned,
      latency_batch: latencyBatch, latency_threads: threads,
      pretrain_seconds: pretrainSeconds, finetune_seconds: finetuneSeconds, train_seconds: finetuneSeconds + pretrainSeconds,
      total_seconds: (Date.now() - startedAt.getTime()) / 1000, train_img_per_s: ft.imagesPerSecond,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024, best_epoch: ft.bestEpoch,
      masked_nonzero: maskedNonzero(weights, new Map(masks.names().map((n) => [n, masks.values(n)!]))),
      ...costMetrics({ images: pathCost.images + ownCost.images, macs: pathCost.macs + ownCost.macs, seconds: pathCost.seconds + ownCost.seconds }, denseCost),
      ...structuredMetrics,
    };
    // A run rewound to its initial weights trained its own network: the dense model's epochs are not its history; a
    // level that kept its weights has it, less the phases its own retraining records anew (LR rewinding's pretrain).
    const own = round.flatMap((t) => t.epochs);
    const history = rewoundNow ? [] : pretrainEpochs.filter((e) => !own.some((o) => o.phase === e.phase));
    const classes = classRows(extra.classNames, { dense: denseEval, before: beforeEval, after });
    return { metrics, layers, epochs: [...history, ...own], classes };
  }
}

/** A rewind step: every weight back to `weights`, then the masks applied, so pruned weights stay exactly 0. */
export function rewindTo(model: Model, masks: MaskSet, weights: ReadonlyMap<string, Float32Array>): void {
  restore(model, weights);
  masks.apply(model.params);
}

/**
 * The weights each rewind step of the plan restores, computed once per run. "epoch": the dense model's weights after
 * `rewindEpoch` epochs, reproduced by retraining those epochs from the initial weights with the pretraining config,
 * seed and data order (bit-identical on one backend), rather than kept in the dense cache: the cache, its checksums
 * and leases stay as they are, a dense model cached before (or for runs that do not rewind) serves these runs too,
 * and the cost is k epochs of one run. "reinit": a fresh draw of the initial weights from another seed stream.
 */
export async function rewindPoints(
  plan: readonly PhaseStep[], model: Model, splits: { train: StagedSplit; val: StagedSplit }, masks: MaskSet,
  initWeights: Map<string, Float32Array>, denseWeights: Map<string, Float32Array>, config: Job["config"],
): Promise<Map<RewindTarget, Map<string, Float32Array>>> {
  const out = new Map<RewindTarget, Map<string, Float32Array>>([["init", initWeights]]);
  for (const planned of plan) {
    const step = planned.kind === "level" && planned.control ? { kind: "rewind", to: planned.control.from } as const : planned;
    if (step.kind !== "rewind" || out.has(step.to)) continue;
    if (step.to === "reinit") out.set("reinit", redrawnInitialWeights(model, config.seed, config.model.init, "reinit", initWeights));
    if (step.to === "epoch") {
      const k = plan.find((s): s is Extract<PhaseStep, { kind: "train" }> => s.kind === "train" && s.fromEpoch !== undefined)?.fromEpoch ?? 0;
      if (masks.names().length > 0) throw new Error("the rewind point is computed before any pruning");
      restore(model, initWeights);
      await trainPhase({
        phase: "pretrain", model, train: splits.train, val: splits.val, config: config.pretrain, masks, seed: config.seed, selectBestOnVal: false, toEpoch: k,
        extraLoss: methodPenalty(config, model, "pretrain"),
      });
      out.set("epoch", snapshot(model));
      restore(model, denseWeights);
    }
  }
  return out;
}

/**
 * All of a run's artifacts or none: a failed run has no artifact rows, so a file it wrote before failing (e.g. the
 * weights, before the disk filled up on the masks) would be an orphan keeping the disk full.
 */
function saveArtifacts(job: Job, model: Model, weights: Map<string, Float32Array>, masks: MaskSet): Artifact[] {
  const dir = join(job.paths.artifactsDir, job.key);
  const out: Artifact[] = [];
  const write = (kind: string, file: string, tensors: Map<string, { shape: number[]; data: Float32Array }>) => {
    const path = join(dir, file);
    const { bytes } = writeCheckpoint(path, { tensors, metadata: { runKey: job.key, kind } });
    out.push({ kind, path, bytes, sha256: createHash("sha256").update(readFileSync(path)).digest("hex") });
  };
  const shape = (name: string) => model.params.get(name)!.shape;
  const state = new Map([...model.state].map(([n, v]) => [n, { shape: v.shape, data: v.dataSync() as Float32Array }]));
  try {
    write("pruned-weights", "pruned.safetensors", new Map([...[...weights].map(([n, data]) => [n, { shape: shape(n), data }] as const), ...state]));
    write("masks", "masks.safetensors", new Map(masks.names().map((n) => [n, { shape: shape(n), data: masks.values(n)! }])));
  } catch (e) {
    for (const a of out) rmSync(a.path, { force: true });
    throw e;
  }
  return out;
}

/** The penalty the run's method trains under in `phase` (its loss terms); undefined for most methods. */
function methodPenalty(config: Job["config"], model: Model, phase: LossPhase) {
  return penaltyLoss(model, getMethod(config.method.name).lossTerms?.(config.method.params) ?? [], phase);
}

type MaskChange = { kind: "prune"; density: number } | { kind: "regrow"; fraction: number };

/**
 * What a schedule does to the masks after step `s` of a training phase: prune further (gradual, counted over the
 * fine-tuning steps) or drop and regrow (dynamic, counted over pretraining then fine-tuning of the sparse network).
 */
function maskChanges(schedule: Schedule, density: number, pretrainSteps: number, finetuneSteps: number) {
  return (during: "gradual" | "dynamic", phase: "pretrain" | "finetune", s: number): MaskChange | null => {
    if (during === "gradual") {
      const d = densityAtStep(schedule, density, s, finetuneSteps);
      return d === null ? null : { kind: "prune", density: d };
    }
    const f = updateFractionAtStep(schedule, (phase === "finetune" ? pretrainSteps : 0) + s, pretrainSteps + finetuneSteps);
    return f === null ? null : { kind: "regrow", fraction: f };
  };
}

async function loadPrepared(job: Job): Promise<PreparedData> {
  const { dataset, data } = job.config;
  const key = JSON.stringify([dataset, data, job.paths.dataDir ?? ""]);
  const hit = preparedCache.get(key);
  if (hit) return hit;
  const loading = datasetCache.get(dataset) ?? getDataset(dataset).load({ dataDir: job.paths.dataDir });
  datasetCache.set(dataset, loading);
  const prepared = prepareData(await loading, data);
  preparedCache.clear(); // keep one prepared split per worker: memory stays bounded
  preparedCache.set(key, prepared);
  return prepared;
}
