/**
 * One pruning step of a run: the method scores the prunable tensors as they are now, the budget is spread by the
 * method's distribution, and the masks shrink (a pruned weight never returns). The capabilities a score function may
 * ask for (training gradients, the data-free path gradient) are built here, only when the method `needs` them; the
 * engine never asks which method it runs.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { PruningMethod, ScoreContext } from "../../methods/types.js";
import type { HyperValue, PrunablePolicy } from "../core/types.js";
import { makeRng, shuffleInPlace } from "../core/rng.js";
import { allocateMasks } from "../prune/allocate.js";
import { prunableTensors } from "../prune/policy.js";
import type { StagedSplit } from "../train/loop.js";
import type { MaskSet } from "../train/masks.js";
import { forward, type Model } from "../train/model.js";

export interface PruneStepInput {
  model: Model;
  masks: MaskSet;
  method: PruningMethod;
  params: Readonly<Record<string, HyperValue>>;
  prunable: PrunablePolicy;
  /** Fraction of the prunable weights to keep after this step. */
  density: number;
  /** Training data, for methods that need gradients; seeds the batches they see. */
  train: StagedSplit;
  batchSize: number;
  seed: number;
  /** Distinguishes the random draws of successive steps of one run (round k of an iterative schedule). */
  step: number;
}

/** Prune `model` to `density` in place: masks replaced (monotonically) and applied to the weights. */
export async function pruneStep(o: PruneStepInput): Promise<void> {
  const refs = prunableTensors(o.model.layers, o.prunable);
  const tensors = refs.map((r) => {
    const v = o.model.params.get(r.name)!;
    return { ...r, shape: v.shape, values: v.dataSync() as Float32Array, mask: o.masks.values(r.name) ?? new Float32Array(v.size).fill(1) };
  });
  const names = refs.map((r) => r.name);
  const ctx: ScoreContext = {
    tensors,
    params: o.params,
    // Step 0 keeps the stream name one-shot runs always had, so their results did not move with the engine.
    random: makeRng(o.seed, o.step === 0 ? `method:${o.method.name}` : `method:${o.method.name}:${o.step}`),
    gradients: o.method.needs.gradients ? (batches) => meanGradients(o.model, o.train, names, batches, o.batchSize, o.seed) : undefined,
    pathGradients: o.method.needs.pathGradients ? async () => pathGradients(o.model, names) : undefined,
  };
  const scores = await o.method.score(ctx);
  const next = allocateMasks(
    tensors.map((t) => ({ name: t.name, scores: scores.get(t.name)!, mask: t.mask, shape: t.shape })),
    o.density, o.method.distribution(o.params), { minDensity: o.method.minDensity?.(o.params) },
  );
  for (const t of tensors) o.masks.set(t.name, next.get(t.name)!, t.shape);
  o.masks.apply(o.model.params);
}

/** Mean gradient of the training loss over `batches` seeded-random training batches, for gradient-based scores. */
export async function meanGradients(model: Model, train: StagedSplit, names: string[], batches: number, batchSize: number, seed: number): Promise<Map<string, Float32Array>> {
  const order = shuffleInPlace(new Int32Array(train.count).map((_, i) => i), makeRng(seed, "score-batches"));
  const n = Math.min(batches, Math.ceil(train.count / batchSize));
  const vars = names.map((name) => model.params.get(name)!);
  const sums: tf.Tensor[] = vars.map((v) => tf.keep(tf.zerosLike(v)));
  for (let b = 0; b < n; b++) {
    tf.tidy(() => {
      const idx = tf.tensor1d(order.subarray(b * batchSize, Math.min(train.count, (b + 1) * batchSize)), "int32");
      const labels = tf.gather(train.y, idx);
      const { grads } = tf.variableGrads(() => {
        const { logits } = forward(model, tf.gather(train.x, idx), false);
        return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, model.numClasses), logits) as tf.Scalar;
      }, vars);
      vars.forEach((v, i) => {
        const next = tf.keep(tf.add(sums[i], grads[v.name]));
        sums[i].dispose();
        sums[i] = next;
      });
    });
  }
  const out = new Map(names.map((name, i) => [name, (sums[i].dataSync() as Float32Array).map((g) => g / n)]));
  sums.forEach((t) => t.dispose());
  return out;
}

/**
 * ∂R/∂θ at |θ| for R = 1ᵀ f(1): the sum of the network's outputs on one all-ones input, every parameter replaced by
 * its absolute value (pruned ones stay 0), inference mode (batch norm on its running statistics). Needs no data:
 * SynFlow's objective (Tanaka et al. 2020), whose θ ⊙ ∂R/∂θ sums to R in every layer (synaptic flow is conserved).
 * The model's weights are restored afterwards.
 */
export function pathGradients(model: Model, names: string[]): Map<string, Float32Array> {
  const originals = new Map([...model.params].map(([name, v]) => [name, tf.keep(v.clone())]));
  try {
    for (const v of model.params.values()) tf.tidy(() => v.assign(tf.abs(v)));
    const vars = names.map((name) => model.params.get(name)!);
    const out = new Map<string, Float32Array>();
    tf.tidy(() => {
      const ones = tf.ones([1, ...model.inputShape]);
      const { grads } = tf.variableGrads(() => tf.sum(forward(model, ones, false).logits) as tf.Scalar, vars);
      names.forEach((name, i) => out.set(name, grads[vars[i].name].dataSync() as Float32Array));
    });
    return out;
  } finally {
    for (const [name, v] of model.params) {
      const original = originals.get(name)!;
      v.assign(original);
      original.dispose();
    }
  }
}
