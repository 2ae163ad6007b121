import type { HyperValue } from "../src/core/types.js";
import type { Distribution } from "../src/prune/allocate.js";
import { HASSIBI_STORK_1993 } from "./citations.js";
import { principal, spdSolve } from "./linalg.js";
import type { PrunableTensor, PruningMethod, ScoreContext } from "./types.js";

/**
 * Optimal Brain Surgeon (Hassibi & Stork, "Second order derivatives for network pruning: Optimal Brain Surgeon",
 * NeurIPS 5, 1993), at the scale of today's networks as WoodFisher does it (Singh & Alistarh, "WoodFisher:
 * Efficient Second-Order Approximation for Neural Network Compression", NeurIPS 2020; code IST-DASLab/WoodFisher,
 * pruners/woodfisherblock.py).
 *
 * Curvature: the Hessian is replaced by the dampened empirical Fisher F = λI + (1/N)·Σₙ gₙgₙᵀ, gₙ the gradient of the
 * mean cross-entropy over the n-th of N small batches of `batch_size` images (WoodFisher's `fisher_mini_bsz`: each
 * batch's gradient is one sample), model in inference mode (their pruner asserts `not model.training`), gradients at
 * already-pruned weights set to 0 as their `_compute_grads` masks them (a pruned weight's row of F is then λeᵀ_q and
 * nothing couples to it). F⁻¹ is never formed from F: it is built by N Woodbury rank-one updates,
 * F₀⁻¹ = I/λ, Fₙ⁻¹ = Fₙ₋₁⁻¹ − (Fₙ₋₁⁻¹g)(Fₙ₋₁⁻¹g)ᵀ / (N + gᵀFₙ₋₁⁻¹g).
 *
 * Blocks: F is taken block-diagonal, each block `block_size` consecutive entries of one tensor's flattened weights
 * (the last block of a tensor shorter; blocks never span two tensors), as WoodFisher splits a layer into chunks of
 * `fittable_params`, flattened in PyTorch's [out, in, kh, kw] order as theirs are (`blockOrder`: a block holds one
 * neuron's or filter's weights, not one input's weights into many neurons as prunebench's [kh, kw, in, out] would). Blocks are inverted one at a time, so memory is bounded:
 *   4·N·P bytes (the N float32 gradients of the P prunable weights, kept while scoring, as WoodFisher keeps its
 *   `_all_grads`) + 8·B² bytes (one float64 block inverse, B = block_size; the joint update's |Q|×|Q| system adds at
 *   most 8·min(B, joint_max)² more),
 * `obsMemoryBytes` computes it. On LeNet-300-100 (P = 266,200) with the defaults: 4·32·P = 34 MB of gradients plus
 * a 32 KB block, where the full F⁻¹ would be 8·P² = 567 GB. Each block of m weights costs about 1.5·N·m² multiply-adds
 * (a matrix-vector product and a symmetric rank-one update per gradient), so a step costs about 1.5·N·B·P, twice: the
 * scores and the update each rebuild the blocks they need, which keeps memory at one block.
 *
 * Saliency: s_q = w_q² / (2·[F⁻¹]_qq), the loss increase (quadratic model, gradient 0) of zeroing w_q and moving the
 * others optimally; loss units in every layer, so one global ranking (`scope: global`, the default, as WoodFisher's
 * `woodburry_joint_sparsify`) sets each layer's ratio; `scope: layer` prunes each tensor to the same fraction.
 *
 * Compensation (`compensate`, after the engine chose the masks): within each block, Q the weights this step prunes,
 * - |Q| <= `joint_max`: the joint OBS update δw = −F⁻¹_{:,Q}·([F⁻¹]_QQ)⁻¹·w_Q, which zeroes every w_Q at once and is
 *   the least loss increase, ½·w_Qᵀ([F⁻¹]_QQ)⁻¹w_Q, of any change that does (solved by Cholesky; [F⁻¹]_QQ is
 *   positive definite);
 * - else WoodFisher's update: the sum of the single-weight updates −(w_q / [F⁻¹]_qq)·F⁻¹e_q over q ∈ Q, which ignores
 *   how the pruned weights interact (it neither zeroes them, the masks do, nor minimises the quadratic model).
 * Default joint_max = 64 = the default block size, so by default every block takes the joint update: it is the
 * exact OBS step for a set of weights under the block's quadratic model (the independent sum ignores the correlation
 * of the pruned weights, and one-shot steps prune most of a block at once; later OBS pruners such as Kurtic et al.'s
 * oBERT, 2022, use this joint form for a set of weights), and it costs at most B³/6 per block, less than the block's
 * Woodbury updates. `joint_max: 0` runs WoodFisher's independent
 * sum.
 *
 * Defaults (WoodFisher's code, scaled): damping λ = 1e-3 (their `fisher_damp` default, also what their MNIST MLPNet
 * runs use); N = 32 gradients (their `fisher_subsample_size` default) of batch_size = 1 image (their `fisher_mini_bsz`
 * default); their CIFAR ResNet-20 one-shot uses N = 1000 at λ = 1e-5 on a GPU. Block size B = 64: their
 * `fittable_params` is sized to a GPU's memory, while here the 1.5·N·B·P multiply-adds run in JavaScript on the host,
 * and LeNet-300-100's prune step takes about 18 s at these defaults on a 2-core machine under load (N and B are
 * hyperparameters for who has the time). One-shot after pretraining, then fine-tuning, as the paper's one-shot
 * experiments.
 */
export const obs: PruningMethod = {
  name: "obs",
  summary: "Optimal Brain Surgeon at scale as WoodFisher (Singh & Alistarh 2020): blocked Woodbury inverse of the empirical Fisher, remove the least w²/(2[F⁻¹]qq) globally, move the survivors by the OBS update",
  paper: HASSIBI_STORK_1993,
  params: {
    gradients: { type: "integer", default: 32, min: 1, max: 100_000, description: "gradients gₙ (batches) in the empirical Fisher, N (WoodFisher: fisher_subsample_size = 32)" },
    batch_size: { type: "integer", default: 1, min: 1, max: 100_000, description: "images per gradient sample (WoodFisher: fisher_mini_bsz = 1)" },
    damping: { type: "number", default: 1e-3, min: 1e-12, max: 1e6, description: "λ in F = λI + (1/N)Σ ggᵀ (WoodFisher: fisher_damp = 1e-3)" },
    block_size: { type: "integer", default: 64, min: 1, max: 16_384, description: "consecutive weights of one tensor per diagonal block of F (memory 8·B² bytes per block)" },
    joint_max: { type: "integer", default: 64, min: 0, max: 16_384, description: "a block whose pruned set Q is at most this large gets the joint OBS update; larger ones WoodFisher's sum of single-weight updates (0: always the sum)" },
    scope: { type: "string", default: "global", choices: ["global", "layer"], description: "one ranking over all layers (saliencies are in loss units) or the same fraction per tensor" },
  },
  needs: { batchGradients: true },
  distribution: (p) => scopeDistribution(p),
  schedule: () => ({ kind: "one-shot" }),
  async score(ctx) {
    const samples = await fisherGradients(ctx, "obs");
    SAMPLES.set(ctx, samples);
    const { damping, blockSize } = settings(ctx.params);
    return new Map(ctx.tensors.map((t) => {
      const grads = samples.grads.get(t.name)!;
      const order = blockOrder(t.shape);
      const s = new Float32Array(t.values.length);
      forEachBlock(t.values.length, blockSize, (start, end) => {
        const inv = woodburyInverse(end - start, samples.count, damping, (n) => grads.subarray(n * t.values.length + start, n * t.values.length + end));
        const m = end - start;
        for (let j = 0; j < m; j++) {
          const q = order[start + j];
          if (t.mask[q] !== 0) s[q] = (t.values[q] * t.values[q]) / (2 * inv[j * m + j]);
        }
      });
      return [t.name, s];
    }));
  },
  async compensate(ctx, newMasks, params) {
    // The gradients scoring gathered for this step; gathered again (the same batches, so the same F) if absent.
    const samples = SAMPLES.get(ctx) ?? await fisherGradients(ctx, "obs");
    SAMPLES.delete(ctx);
    const { damping, blockSize } = settings(params);
    const jointMax = Number(params.joint_max);
    const out = new Map<string, Float32Array>();
    for (const t of ctx.tensors) {
      const next = newMasks.get(t.name);
      if (!next) continue;
      const grads = samples.grads.get(t.name)!;
      const size = t.values.length;
      const order = blockOrder(t.shape);
      const w = Float64Array.from(t.values);
      let changed = false;
      forEachBlock(size, blockSize, (start, end) => {
        const pruned: number[] = [];
        for (let j = 0; j < end - start; j++) {
          const q = order[start + j];
          if (t.mask[q] !== 0 && next[q] === 0) pruned.push(j);
        }
        if (pruned.length === 0) return;
        const inv = woodburyInverse(end - start, samples.count, damping, (n) => grads.subarray(n * size + start, n * size + end));
        const blockValues = Float64Array.from({ length: end - start }, (_, j) => t.values[order[start + j]]);
        const delta = obsUpdate(inv, end - start, pruned, blockValues, jointMax);
        for (let j = 0; j < delta.length; j++) w[order[start + j]] += delta[j];
        changed = true;
      });
      if (changed) out.set(t.name, Float32Array.from(w));
    }
    return out;
  },
};

/** The gradients of one prune step, kept from `score` to `compensate` (keyed by the step's context: no state across steps or runs). */
const SAMPLES = new WeakMap<ScoreContext, FisherSamples>();

/** N gradient samples of the prunable tensors: sample n of tensor t at grads.get(t)[n·size + p], p the weight's place in `blockOrder`. */
export interface FisherSamples {
  count: number;
  grads: Map<string, Float32Array>;
}

function settings(params: Readonly<Record<string, HyperValue>>): { damping: number; blockSize: number } {
  return { damping: Number(params.damping), blockSize: Number(params.block_size) };
}

export function scopeDistribution(params: Readonly<Record<string, HyperValue>>): Distribution {
  return params.scope === "layer" ? "layer" : "global";
}

/**
 * Each of `gradients` batches of `batch_size` images gives one gradient of the prunable tensors (inference mode), its
 * entries at already-pruned weights set to 0. Fewer samples when the training split runs out; none is an error.
 */
export async function fisherGradients(ctx: ScoreContext, method: string): Promise<FisherSamples> {
  if (!ctx.batchGradients) throw new Error(`${method} needs the engine's batch gradients`);
  const n = Number(ctx.params.gradients);
  const tensors = ctx.tensors;
  const grads = new Map(tensors.map((t) => [t.name, new Float32Array(n * t.values.length)]));
  let count = 0;
  const orders = tensors.map((t) => blockOrder(t.shape));
  await ctx.batchGradients({ batches: n, batchSize: Number(ctx.params.batch_size), mode: "eval" }, tensors.map((t) => t.name), (g, b) => {
    tensors.forEach((t, k) => storeMasked(t, orders[k], g.get(t.name)!, grads.get(t.name)!, b));
    count = Math.max(count, b + 1);
  });
  if (count === 0) throw new Error(`${method}: no training batch to take a gradient of`);
  return { count, grads: count === n ? grads : new Map([...grads].map(([k, v]) => [k, v.slice(0, count * (v.length / n))])) };
}

/** Stores sample b of a tensor's gradient in block order (`blockOrder`), 0 at its already-pruned weights. */
function storeMasked(t: PrunableTensor, order: Int32Array, g: Float32Array, into: Float32Array, b: number): void {
  if (g.length !== t.values.length) throw new Error(`${t.name}: ${g.length} gradient values for ${t.values.length} weights`);
  const at = b * t.values.length;
  for (let p = 0; p < g.length; p++) {
    const i = order[p];
    into[at + p] = t.mask[i] !== 0 ? g[i] : 0;
  }
}

/**
 * The order blocks cut a tensor in, as WoodFisher flattens PyTorch's weights: output unit first, then input unit, then
 * kernel position ([out, in, kh, kw]), so a block holds the weights of one neuron or filter (whose curvature is
 * coupled through that unit's inputs). prunebench's kernels are [kh, kw, in, out] (dense [in, out]): entry p of the
 * order is the flat index of the p-th weight in PyTorch's. A 1-D tensor keeps its own order.
 */
export function blockOrder(shape: readonly number[]): Int32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const order = new Int32Array(size);
  if (shape.length < 2) return order.map((_, i) => i);
  const out = shape[shape.length - 1];
  const inputs = shape[shape.length - 2];
  const spatial = size / (out * inputs);
  let p = 0;
  for (let o = 0; o < out; o++) for (let i = 0; i < inputs; i++) for (let k = 0; k < spatial; k++) order[p++] = (k * inputs + i) * out + o;
  return order;
}

/** Calls `visit` with [start, end) of each block of `blockSize` consecutive entries of a tensor of `size` (the last one shorter). */
export function forEachBlock(size: number, blockSize: number, visit: (start: number, end: number) => void): void {
  if (!(Number.isInteger(blockSize) && blockSize >= 1)) throw new Error(`block size must be an integer >= 1, got ${blockSize}`);
  for (let start = 0; start < size; start += blockSize) visit(start, Math.min(size, start + blockSize));
}

/**
 * (λI + (1/N)·Σₙ gₙgₙᵀ)⁻¹ for the m×m block whose n-th gradient sample is `grad(n)` (n < count = N), by N Woodbury
 * rank-one updates from I/λ, row-major float64. Memory: the m² result and one m-vector.
 */
export function woodburyInverse(m: number, count: number, damping: number, grad: (n: number) => ArrayLike<number>): Float64Array {
  if (!(damping > 0)) throw new Error(`damping must be > 0, got ${damping}`);
  const inv = new Float64Array(m * m);
  for (let i = 0; i < m; i++) inv[i * m + i] = 1 / damping;
  const u = new Float64Array(m);
  for (let n = 0; n < count; n++) {
    const g = grad(n);
    if (g.length !== m) throw new Error(`gradient sample ${n} has ${g.length} entries for a block of ${m}`);
    let gu = 0;
    for (let i = 0; i < m; i++) {
      let s = 0;
      const row = i * m;
      for (let j = 0; j < m; j++) s += inv[row + j] * g[j];
      u[i] = s;
      gu += g[i] * s;
    }
    const denom = count + gu;
    // The inverse stays symmetric: update the upper triangle and mirror it (half the multiply-adds).
    for (let i = 0; i < m; i++) {
      const ui = u[i] / denom;
      if (ui === 0) continue;
      const row = i * m;
      for (let j = i; j < m; j++) {
        const v = inv[row + j] - ui * u[j];
        inv[row + j] = v;
        inv[j * m + i] = v;
      }
    }
  }
  return inv;
}

/**
 * The change of a block's weights `w` when the entries `pruned` (block-local indices) are removed, given the block's
 * inverse curvature `inv` (m×m, row-major): the joint OBS update when |Q| <= `jointMax`, else the sum of single-weight
 * OBS updates (see the method's docstring).
 */
export function obsUpdate(inv: Float64Array, m: number, pruned: readonly number[], w: ArrayLike<number>, jointMax: number): Float64Array {
  const delta = new Float64Array(m);
  const k = pruned.length;
  // Coefficients c with δw = −F⁻¹_{:,Q}·c: c = ([F⁻¹]_QQ)⁻¹w_Q jointly, c_q = w_q / [F⁻¹]_qq independently.
  let c: Float64Array;
  if (k <= jointMax) {
    c = spdSolve(principal(inv, m, pruned), k, Float64Array.from(pruned, (q) => w[q]), "the pruned weights' block of F⁻¹");
  } else {
    c = Float64Array.from(pruned, (q) => w[q] / inv[q * m + q]);
  }
  for (let i = 0; i < m; i++) {
    let s = 0;
    const row = i * m;
    for (let r = 0; r < k; r++) s += inv[row + pruned[r]] * c[r];
    delta[i] = -s;
  }
  return delta;
}

/** Peak memory of one OBS prune step, bytes: the float32 gradients, one float64 block and the joint update's system. */
export function obsMemoryBytes(weights: number, gradients: number, blockSize: number, jointMax: number): { gradients: number; block: number; joint: number; total: number } {
  const b = Math.min(blockSize, Math.max(1, weights));
  const q = Math.min(b, jointMax);
  const out = { gradients: 4 * gradients * weights, block: 8 * b * b, joint: 8 * q * q };
  return { ...out, total: out.gradients + out.block + out.joint };
}
