/**
 * The training loop: a custom loop (not model.fit) so masks apply after every optimizer step, learning rates
 * change per step, and schedules act through hooks. No per-step host synchronization: loss and accuracy are
 * summed on the device and read once per epoch.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { EpochRecord, TrainConfig } from "../core/types.js";
import { median } from "../metrics/counts.js";
import { cropFlip, type Augmentation } from "./augment.js";
import type { Arrays } from "./data.js";
import type { TrainHooks } from "./hooks.js";
import type { MaskSet } from "./masks.js";
import type { SparsePatterns } from "../backend/sparse-ops.js";
import { fusedApplies } from "../backend/layer-ops.js";
import { softmaxCrossEntropyWithHits } from "../backend/fused-ops.js";
import { applyStateUpdates, byTensorName, forward, restore, snapshot, type Model } from "./model.js";
import { learningRate, makeOptimizer } from "./optim.js";
import { DenseWeights } from "./soft-masks.js";
import { fusedStep } from "./fused-step.js";
import { TrainCost } from "./train-cost.js";
import type { GateSet } from "./gates.js";
import type { LayerKind } from "../core/types.js";
import { makeRng, shuffleInPlace } from "../core/rng.js";

/** The dead-neuron rate is measured on one training batch in this many (the first of each epoch always). */
const DNR_SAMPLE_EVERY = 16;

export class DivergedError extends Error {
  override name = "DivergedError";
  constructor(readonly phase: string, readonly epoch: number, readonly loss: number) {
    super(`training diverged in ${phase} epoch ${epoch}: loss ${loss}`);
  }
}

/** A split staged once as device tensors; batches are gathered from it. */
export interface StagedSplit {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  count: number;
  /** The training split's batch augmentation (only trainPhase's batches get it). */
  augment?: Augmentation;
  dispose(): void;
}

export function stage(arrays: Arrays, inputShape: [number, number, number]): StagedSplit {
  const x = tf.tensor4d(arrays.x, [arrays.count, ...inputShape]);
  const y = tf.tensor1d(arrays.y, "int32");
  return { x, y, count: arrays.count, augment: arrays.augment, dispose: () => { x.dispose(); y.dispose(); } };
}

/** A training batch augmented on the host (a few µs per image), from the phase's own augmentation stream. */
function augmentBatch(xb: tf.Tensor, aug: Augmentation, rng: () => number): tf.Tensor {
  const [n, h, w, c] = xb.shape as [number, number, number, number];
  return tf.tensor4d(cropFlip(xb.dataSync() as Float32Array, n, [h, w, c], aug, rng), [n, h, w, c]);
}

/**
 * The rows `idx` of a staged split. On wasm, rows are copied in JS from views of the wasm heap and uploaded
 * (tfjs-wasm's GatherV2 walks every element: ~4 ms for a 128 x 784 batch, a quarter of an MLP step); other
 * backends gather (the native backend's GatherV2 copies rows).
 */
function gatherBatch(split: StagedSplit, idx: Int32Array): { xb: tf.Tensor; labels: tf.Tensor } {
  const backend = tf.backend() as { typedArrayFromHeap?: (t: tf.TensorInfo) => tf.backend_util.TypedArray };
  if (tf.getBackend() === "wasm" && typeof backend.typedArrayFromHeap === "function" && split.x.dtype === "float32" && split.y.dtype === "int32") {
    const xs = backend.typedArrayFromHeap(split.x);
    const ys = backend.typedArrayFromHeap(split.y);
    if (xs instanceof Float32Array && ys instanceof Int32Array && xs.length === split.x.size) {
      const row = split.x.size / split.x.shape[0];
      const x = new Float32Array(idx.length * row);
      const y = new Int32Array(idx.length);
      for (let i = 0; i < idx.length; i++) {
        const r = idx[i];
        x.set(xs.subarray(r * row, (r + 1) * row), i * row);
        y[i] = ys[r];
      }
      return { xb: tf.tensor(x, [idx.length, ...split.x.shape.slice(1)], "float32"), labels: tf.tensor1d(y, "int32") };
    }
  }
  const indices = tf.tensor1d(idx, "int32");
  return { xb: tf.gather(split.x, indices), labels: tf.gather(split.y, indices) };
}

export interface PhaseOptions {
  phase: "pretrain" | "finetune";
  model: Model;
  train: StagedSplit;
  val: StagedSplit;
  config: TrainConfig;
  masks: MaskSet;
  seed: number;
  /** Keep the weights of the epoch with the best validation accuracy (else the last epoch's). */
  selectBestOnVal: boolean;
  /**
   * The first epoch whose weights may be selected: a schedule that still prunes during the phase must not hand back
   * the weights of an epoch before its final mask. Default 0.
   */
  selectFromEpoch?: number;
  /**
   * Run only epochs [fromEpoch, toEpoch) of `config` (defaults 0 and config.epochs), with the LR schedule and the data
   * order those epochs have in the whole phase: a rewind to epoch k resumes there, and the weights after epoch k are
   * reproduced by running [0, k).
   */
  fromEpoch?: number;
  toEpoch?: number;
  hooks?: TrainHooks;
  /**
   * A penalty added to every step's training loss, differentiated with it (a method's loss terms, built by
   * src/train/penalty.ts). The epoch's recorded loss stays the cross-entropy alone, comparable across methods.
   */
  extraLoss?: (tensors?: ReadonlyMap<string, tf.Tensor>) => tf.Scalar;
  /**
   * "hard" (default): masked weights and their gradients are zeroed at every step. "soft": the masked weights keep
   * their dense values, which the unmasked gradient of W⊙T updates, while the model's variables hold W⊙T, during the
   * phase and after it (soft-masks.ts); the variables' values when the phase starts are the dense weights.
   */
  masking?: "hard" | "soft";
  /**
   * Channel gates trained as extra parameters (gates.ts): the forward pass and the penalty read the gated view, the
   * optimizer updates the gates and the gated tensors' stand-ins, and the model holds the gated products after every
   * step. Absent: no gates (hard or soft masking as above; gates use hard masking).
   */
  gates?: GateSet;
  /** Layer kinds whose tensors this phase does not train (a gate on such a layer still trains); none when absent. */
  frozen?: readonly LayerKind[];
  /**
   * The LR at a fractional epoch position of this phase, in place of the config's schedule (a curve of the phase's
   * own, e.g. a triangular one); the config's schedule when absent.
   */
  lrAt?: (epochPosition: number) => number;
  /**
   * Names the phase's data-order and augmentation streams apart from other phases of the same kind (several short
   * phases of one run then see different orders); the phase's own name alone when absent.
   */
  stream?: string;
}

export interface PhaseResult {
  epochs: EpochRecord[];
  bestEpoch: number;
  trainSeconds: number;
  imagesPerSecond: number;
  /** Images through training steps, and their training MACs (train-cost.ts). */
  images: number;
  macs: number;
}

export async function trainPhase(o: PhaseOptions): Promise<PhaseResult> {
  const { model, config, masks } = o;
  const optimizer = makeOptimizer(config);
  const tag = o.stream === undefined ? o.phase : `${o.phase}:${o.stream}`;
  const rng = makeRng(o.seed, `order:${tag}`);
  const augmentRng = makeRng(o.seed, `augment:${tag}`);
  const stepsPerEpoch = Math.ceil(o.train.count / config.batchSize);
  const order = new Int32Array(o.train.count).map((_, i) => i);
  const epochs: EpochRecord[] = [];
  let best: { epoch: number; valAcc: number; weights: Map<string, Float32Array> | null } = { epoch: -1, valAcc: -1, weights: null };
  let trainSeconds = 0;
  let images = 0;
  const cost = new TrainCost(model.layers, masks);
  // Taken before the masks apply: soft masks keep the dense values.
  const soft = o.masking === "soft" ? new DenseWeights(model.params, masks) : null;
  if (soft && (o.gates || o.frozen)) throw new Error("soft masks train every masked weight: no gates or frozen layers with them");
  // Restoring a best epoch's weights would leave the gates behind them.
  if (o.gates && o.selectBestOnVal) throw new Error("a gated phase keeps its last epoch's weights");
  masks.apply(model.params);
  o.gates?.begin(masks);
  // The tensors this phase updates, by name (all of the model's unless gates or frozen layers say otherwise).
  const trained = o.gates ? o.gates.variables(o.frozen) : o.frozen && o.frozen.length > 0 ? frozenOut(model, o.frozen) : model.params;
  // The loss and the batch's hits from one kernel where the backend has the fused kernels; elsewhere the separate ops
  // it always ran (the same values there to the bit).
  const fusedLoss = fusedApplies();
  // Steps that need nothing of the tape but the new weights run as one kernel where the backend has it (fused-step.ts).
  const oneKernel = fusedStep({
    model, masks, optimizer, needsTape: Boolean(o.hooks?.afterGradients || o.extraLoss || o.gates || soft || o.train.augment || trained !== model.params),
  });
  try {
    for (let epoch = 0; epoch < (o.toEpoch ?? config.epochs); epoch++) {
      const started = performance.now();
      shuffleInPlace(order, rng);
      if (epoch < (o.fromEpoch ?? 0)) continue;
      let lossSum: tf.Tensor = tf.scalar(0);
      let correctSum: tf.Tensor = tf.scalar(0);
      // The dynamic dead neuron rate's parts, summed like the loss: zeros on the device, units on the host. Counted on
      // every DNR_SAMPLE_EVERY-th training batch only: counting on every one cost 40 % of the step (LeNet-5, ResNet-20).
      let zerosSum: tf.Tensor = tf.scalar(0);
      let reluUnits = 0;
      let lastLr = config.lr;
      for (let step = 0; step < stepsPerEpoch; step++) {
        const lr = o.lrAt ? o.lrAt(epoch + step / stepsPerEpoch) : learningRate(config, epoch + step / stepsPerEpoch);
        lastLr = lr;
        const idx = order.subarray(step * config.batchSize, Math.min(o.train.count, (step + 1) * config.batchSize));
        const batchSize = idx.length;
        // Written inside the tidy scope below, read after it (an object: flow analysis cannot see into the closure).
        const kept: { grads: Map<string, tf.Tensor> | null; ce: tf.Scalar | null } = { grads: null, ce: null };
        const countZeros = step % DNR_SAMPLE_EVERY === 0;
        const wantsGradients = o.hooks?.wantsGradients?.(epoch * stepsPerEpoch + step) ?? false;
        if (oneKernel?.applies(wantsGradients)) {
          const sums = oneKernel.run(o.train.x, o.train.y, idx, lr, { loss: lossSum, hits: correctSum, zeros: countZeros ? zerosSum : undefined });
          lossSum.dispose();
          correctSum.dispose();
          lossSum = sums.loss;
          correctSum = sums.hits;
          if (sums.zeros) {
            zerosSum.dispose();
            zerosSum = sums.zeros;
            reluUnits += oneKernel.reluUnits(batchSize);
          }
        } else tf.tidy(() => {
          const batch = gatherBatch(o.train, idx);
          const { labels } = batch;
          const xb = o.train.augment ? augmentBatch(batch.xb, o.train.augment, augmentRng) : batch.xb;
          const onehot = fusedLoss ? null : tf.oneHot(labels, model.numClasses);
          let correct: tf.Tensor | null = null;
          let zeros: tf.Tensor | null = null;
          let updates: Array<[string, tf.Tensor]> = [];
          const { value, grads } = tf.variableGrads(() => {
            // Masked kernels run sparse (src/backend/sparse-ops.ts) unless a hook needs this step's dense gradient, or
            // soft masks need the gradient of every masked weight (the sparse kernels compute it on the mask only).
            const view = o.gates?.view();
            const out = forward(view ? { ...model, params: view as Map<string, tf.Variable> } : model, xb, true, countZeros, wantsGradients || soft ? undefined : masks);
            updates = out.stateUpdates;
            let ce: tf.Scalar;
            if (onehot) {
              correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(out.logits, 1), labels), "float32")));
              ce = tf.losses.softmaxCrossEntropy(onehot, out.logits) as tf.Scalar;
            } else {
              const fused = softmaxCrossEntropyWithHits(out.logits as tf.Tensor2D, labels as tf.Tensor1D);
              correct = tf.keep(fused.hits);
              ce = fused.loss;
            }
            if (countZeros) {
              zeros = tf.keep(out.reluZeros!);
              reluUnits += out.reluUnits;
            }
            if (!o.extraLoss) return ce;
            kept.ce = tf.keep(ce);
            return tf.add(ce, view ? o.extraLoss(view) : o.extraLoss()) as tf.Scalar;
          }, [...trained.values()]);
          const named = trained === model.params ? byTensorName(model, grads) : byName(trained, grads);
          // Before the update: the hook sees the gradient at the values it was taken at.
          o.hooks?.afterGradients?.(new Map(Object.entries(named)), trained);
          // Kept for the hook before the optimizer sees them: a schedule that grows weights needs the dense gradient.
          if (wantsGradients) kept.grads = new Map(Object.entries(named).map(([n, g]) => [n, tf.keep(g.clone())]));
          // Masks the gradients of pruned tensors and the weights after the update (fused on the native backend); soft
          // masks update the dense weights with the whole gradient and derive W⊙T from them.
          if (soft) {
            optimizer.step(soft.optimizerParams(), named, lr);
            soft.refresh();
          } else optimizer.step(trained, named, lr, masks);
          o.gates?.sync();
          applyStateUpdates(model, updates);
          const newLoss = tf.add(lossSum, tf.mul(kept.ce ?? value, batchSize));
          kept.ce?.dispose();
          const newCorrect = tf.add(correctSum, correct!);
          const newZeros = zeros ? tf.add(zerosSum, zeros) : zerosSum;
          lossSum.dispose();
          correctSum.dispose();
          if (newZeros !== zerosSum) zerosSum.dispose();
          (correct as tf.Tensor | null)?.dispose();
          (zeros as tf.Tensor | null)?.dispose();
          lossSum = tf.keep(newLoss);
          correctSum = tf.keep(newCorrect);
          zerosSum = tf.keep(newZeros);
        });
        images += batchSize;
        // Before the hook: a mask it changes applies from the next step on.
        cost.step(batchSize);
        try {
          await o.hooks?.afterStep?.({
            phase: o.phase, epoch, step, globalStep: epoch * stepsPerEpoch + step, stepsPerEpoch, gradients: kept.grads ?? undefined,
            resetOptimizerState: (name, where) => optimizer.resetState(name, where),
            ...(soft ? { denseWeights: soft.weights() } : {}),
          });
          soft?.sync();
        } finally {
          kept.grads?.forEach((g) => g.dispose());
        }
      }
      const loss = (await lossSum.data())[0] / o.train.count;
      const trainAcc = (await correctSum.data())[0] / o.train.count;
      const dnr = reluUnits > 0 ? (await zerosSum.data())[0] / reluUnits : NaN;
      lossSum.dispose();
      correctSum.dispose();
      zerosSum.dispose();
      trainSeconds += (performance.now() - started) / 1000;
      if (!Number.isFinite(loss)) throw new DivergedError(o.phase, epoch, loss);
      const valAcc = o.val.count > 0 ? (await evaluate(model, o.val, 512, masks)).top1 : NaN;
      const record: EpochRecord = { phase: o.phase, epoch, loss, trainAcc, valAcc, lr: lastLr, seconds: (performance.now() - started) / 1000, dnr };
      epochs.push(record);
      await o.hooks?.afterEpoch?.(record);
      if (o.selectBestOnVal && o.val.count > 0 && epoch >= (o.selectFromEpoch ?? 0) && valAcc > best.valAcc) best = { epoch, valAcc, weights: snapshot(model) };
    }
  } finally {
    optimizer.dispose();
    soft?.dispose();
  }
  if (o.selectBestOnVal && best.weights && best.epoch !== epochs.length - 1) restore(model, best.weights);
  return {
    epochs,
    bestEpoch: best.weights ? best.epoch : epochs.length - 1,
    trainSeconds,
    imagesPerSecond: trainSeconds > 0 ? images / trainSeconds : 0,
    images: cost.images,
    macs: cost.macs,
  };
}

/** The model's parameters less those of layers of the `frozen` kinds. */
function frozenOut(model: Model, frozen: readonly LayerKind[]): Map<string, tf.Variable> {
  const skip = new Set(model.layers.filter((l) => frozen.includes(l.kind)).map((l) => l.name));
  return new Map([...model.params].filter(([name]) => !skip.has(name.slice(0, name.lastIndexOf("/")))));
}

/** Gradients from tf.variableGrads re-keyed by the names of `vars`. */
function byName(vars: ReadonlyMap<string, tf.Variable>, grads: tf.NamedTensorMap): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, v] of vars) if (grads[v.name]) out[name] = grads[v.name];
  return out;
}

export interface Evaluation {
  top1: number;
  top5: number;
  loss: number;
  /** Per true class (index = label): top-1 hits and images, from the same pass (Σ correct / Σ count = top1). */
  perClass: { correct: number[]; count: number[] };
}

/**
 * Top-1, top-5 and mean loss over a split. `sparse`: the masks the model's weights are under (pruned weights exactly
 * 0), so masked kernels may run on the sparse kernels as in training; the same numbers up to summation order.
 */
export async function evaluate(model: Model, split: StagedSplit, batchSize = 512, sparse?: SparsePatterns): Promise<Evaluation> {
  const k = Math.min(5, model.numClasses);
  // One tidy per batch, the running sums kept across them: a tidy around the whole loop held every batch's
  // activations until the end (≈ 1 GB per 512 images of ResNet-20, 20 GB over a 10,000-image test split).
  let totals = tf.zeros([3]);
  // Row 0: top-1 hits per true class; row 1: images per class.
  let classes = tf.zeros([2, model.numClasses]);
  for (let start = 0; start < split.count; start += batchSize) {
    const size = Math.min(batchSize, split.count - start);
    const [next, nextClasses] = tf.tidy(() => {
      const xb = tf.slice(split.x, [start, 0, 0, 0], [size, -1, -1, -1]);
      const yb = tf.slice(split.y, [start], [size]);
      // Each activation freed after its last use: a batch of 512 ResNet-20 images held ≈ 1.4 GB until the tidy's end.
      const logits = forward(model, xb, false, false, sparse, true).logits;
      const topk = tf.topk(logits, k).indices;
      const hits = tf.cast(tf.equal(topk, tf.expandDims(yb, 1)), "float32");
      const onehot = tf.oneHot(yb, model.numClasses);
      const loss = tf.mul(tf.losses.softmaxCrossEntropy(onehot, logits), size);
      const hits1 = tf.slice(hits, [0, 0], [-1, 1]);
      const oh = tf.cast(onehot, "float32");
      const perClass = tf.stack([tf.sum(tf.mul(oh, hits1), 0), tf.sum(oh, 0)]);
      return [tf.add(totals, tf.stack([tf.sum(hits1), tf.sum(hits), loss])), tf.add(classes, perClass)];
    });
    totals.dispose();
    classes.dispose();
    totals = next;
    classes = nextClasses;
  }
  const [top1, top5, loss] = await totals.data();
  const perClass = await classes.data();
  totals.dispose();
  classes.dispose();
  const c = model.numClasses;
  return {
    top1: top1 / split.count, top5: top5 / split.count, loss: loss / split.count,
    perClass: { correct: Array.from(perClass.subarray(0, c)), count: Array.from(perClass.subarray(c, 2 * c)) },
  };
}

/**
 * Latency timing's floor: each repetition asked for stands for at least this much timing, so repetitions continue (up
 * to LATENCY_MAX_FACTOR × the number asked) until repeats × LATENCY_MS_PER_REPEAT have passed (1 s for 20).
 */
export const LATENCY_MS_PER_REPEAT = 50;
const LATENCY_MAX_FACTOR = 50;

/**
 * Wall times (ms) of one inference batch for each model, at least `repeats` per model (more for fast batches, see
 * LATENCY_MS_PER_REPEAT), after warm-up. Models are timed in
 * alternation, repetition by repetition, so drift (other processes, allocator and JIT warm-up) hits all of them alike
 * and their ratio (measured speedup) stays meaningful. Synchronizes on every repetition.
 */
export async function latencyTimings(
  models: readonly Model[], split: StagedSplit, batchSize: number, repeats: number, floorMs = repeats * LATENCY_MS_PER_REPEAT,
): Promise<number[][]> {
  const size = Math.min(batchSize, split.count);
  const xb = tf.slice(split.x, [0, 0, 0, 0], [size, -1, -1, -1]);
  const once = async (model: Model) => {
    const t0 = performance.now();
    const out = tf.tidy(() => forward(model, xb, false).logits);
    await out.data();
    out.dispose();
    return performance.now() - t0;
  };
  try {
    for (let i = 0; i < 3; i++) for (const m of models) await once(m);
    const times: number[][] = models.map(() => []);
    // At least `repeats` rounds, and more until repeats × LATENCY_MS_PER_REPEAT of timing: a batch-1 forward of a small network takes
    // a few ms, so 20 of them are at the mercy of one scheduler hiccup on a busy machine (ResNet-20's batch-1
    // "speedups" ranged 0.5-9x with 20); a batch that takes longer than the floor gets exactly `repeats`.
    const started = performance.now();
    for (let i = 0; i < repeats || (performance.now() - started < floorMs && i < repeats * LATENCY_MAX_FACTOR); i++) {
      for (let k = 0; k < models.length; k++) times[k].push(await once(models[k]));
    }
    return times;
  } finally {
    xb.dispose();
  }
}

/**
 * Median wall time (ms) of one inference batch for each model (latencyTimings; `floorMs` 0: exactly `repeats`
 * repetitions, for a model whose timing is known to equal another's up to noise).
 */
export async function measureLatencies(models: readonly Model[], split: StagedSplit, batchSize: number, repeats: number, floorMs?: number): Promise<number[]> {
  return (await latencyTimings(models, split, batchSize, repeats, floorMs)).map(median);
}

export async function measureLatency(model: Model, split: StagedSplit, batchSize: number, repeats: number): Promise<number> {
  return (await measureLatencies([model], split, batchSize, repeats))[0];
}
