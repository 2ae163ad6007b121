/**
 * ctx.outputActivations: per-channel statistics of each layer's output activation over the score batches, for the
 * criteria that judge a channel by what it emits (the fraction of zeros after the ReLU, its magnitude, the rank of its
 * feature maps). The model runs forward through `OutputRecorder`, which follows each conv, depthwise and dense layer's
 * output through the ops that keep its channels where they are (batch norm, a residual add) to the activation that
 * follows it, and hands that tensor over; where no activation follows, the layer's output as the next op reads it.
 * On a residual stream the ReLU after the add is every joined layer's output (the block's second conv and, with a
 * projection shortcut, its 1x1 conv), as HRank's hooks on each block's `relu2` read it.
 *
 * The rank of a feature map is counted on the host in float64 (`numericalRank`): the Gram matrix of the map's
 * shorter side, Householder-reduced to a tridiagonal matrix, whose eigenvalues (the squared singular values) above the
 * tolerance are counted with a Sturm sequence; no SVD is formed.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BatchSpec, ChannelActivationStats, OutputActivationOptions } from "../../methods/types.js";
import { DelegatingOps, type AttentionOptions, type BatchNormOptions, type ConvOptions, type DenseOptions, type DepthwiseOptions, type Ops, type ZeroPadShortcutOptions } from "../archs/ops.js";
import { TensorOps } from "../archs/tensor-ops.js";
import type { StagedSplit } from "../train/loop.js";
import type { Model } from "../train/model.js";

interface Accumulator {
  abs: Float64Array;
  zeros: Float64Array;
  positions: number;
  rank: Float64Array;
  images: number;
}

/**
 * Statistics of the output activation of every conv, depthwise and dense layer (or of `options.layers`), per output
 * channel, over the images of `plan`'s batches; the model is only read (batch norm's running statistics are not
 * updated in "train" mode).
 */
export function outputActivationStats(
  model: Model, train: StagedSplit, plan: readonly Int32Array[], mode: BatchSpec["mode"], options: OutputActivationOptions = {},
): Map<string, ChannelActivationStats> {
  if (plan.length === 0) throw new Error("output activation statistics over no training batches");
  const wanted = options.layers ? new Set(options.layers) : null;
  const acc = new Map<string, Accumulator>();
  const onOutput = (layer: string, a: tf.Tensor) => {
    const c = a.shape[a.shape.length - 1];
    let s = acc.get(layer);
    if (!s) {
      s = { abs: new Float64Array(c), zeros: new Float64Array(c), positions: 0, rank: new Float64Array(c), images: 0 };
      acc.set(layer, s);
    }
    if (s.abs.length !== c) throw new Error(`layer ${layer}'s output has ${c} channels here and ${s.abs.length} before`);
    // Reduced on the host from one download: the ranks need the values there anyway, and the tensor ops of a
    // device-side reduction (abs, equal, cast, sum) took 7x longer on the native backend (every layer of ResNet-20,
    // 640 images of 28x28: 14 s against 2 s, the plain forward pass 1.6 s).
    const data = a.dataSync() as Float32Array;
    for (let i = 0; i < data.length; i += c) {
      for (let j = 0; j < c; j++) {
        const v = data[i + j];
        if (v === 0) s.zeros[j]++;
        else s.abs[j] += Math.abs(v);
      }
    }
    s.positions += a.size / c;
    if (options.rank) {
      addRanks(data, a.shape, s.rank);
      s.images += a.shape[0];
    }
  };
  for (const rows of plan) {
    tf.tidy(() => {
      const inner = new TensorOps(new Map<string, tf.Tensor>([...model.params, ...model.state]), mode === "train");
      const recorder = new OutputRecorder(inner, (layer) => wanted === null || wanted.has(layer), onOutput);
      recorder.finish(model.arch.build(recorder, tf.gather(train.x, tf.tensor1d(rows, "int32")), model.numClasses));
      // Running-statistic updates are dropped: scoring reads the model and changes nothing.
      for (const [, t] of inner.stateUpdates) t.dispose();
    });
  }
  for (const layer of wanted ?? []) {
    if (!acc.has(layer)) throw new Error(`layer ${layer} has no conv, depthwise or dense output in ${model.arch.name}`);
  }
  return new Map([...acc].map(([layer, s]) => [layer, {
    meanAbs: Float32Array.from(s.abs, (v) => v / s.positions),
    zeroFraction: Float32Array.from(s.zeros, (v) => v / s.positions),
    ...(options.rank ? { meanRank: Float32Array.from(s.rank, (v) => v / s.images) } : {}),
  }]));
}

/**
 * Adds each image's rank of each channel's map to `sums`: an NHWC activation's h×w maps, or, for [n, c] or [n, t, c],
 * a single position or a column of tokens (rank 1 when any entry is non-zero, else 0).
 */
function addRanks(data: Float32Array, shape: readonly number[], sums: Float64Array): void {
  const n = shape[0];
  const c = shape[shape.length - 1];
  if (shape.length === 4) {
    const [h, w] = [shape[1], shape[2]];
    const map = new Float64Array(h * w);
    for (let i = 0; i < n; i++) {
      const base = i * h * w * c;
      for (let ch = 0; ch < c; ch++) {
        for (let p = 0; p < h * w; p++) map[p] = data[base + p * c + ch];
        sums[ch] += numericalRank(map, h, w);
      }
    }
    return;
  }
  const inner = data.length / (n * c);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      let nonzero = false;
      for (let p = 0; p < inner && !nonzero; p++) nonzero = data[(i * inner + p) * c + ch] !== 0;
      if (nonzero) sums[ch] += 1;
    }
  }
}

/** torch.finfo(torch.float32).eps = 2⁻²³: the activations are float32, and torch.matrix_rank's tolerance uses their ε. */
export const FLOAT32_EPS = 2 ** -23;

let scratch = new Float64Array(0);

/**
 * The numerical rank of the h×w matrix `a` (row-major): how many singular values exceed σ_max·max(h, w)·ε_float32,
 * torch.matrix_rank's default tolerance (which HRank's code calls on each feature map). The singular values are not
 * formed: the eigenvalues λ = σ² of the Gram matrix G of the shorter side are counted above τ² with τ that tolerance,
 * after a Householder reduction of G to tridiagonal form, by Sturm sequences (σ_max² by bisection on the same count).
 * All in float64, so G's rounding (~m·2⁻⁵² of λ_max) stays far below τ² (≥ (2⁻²³)² of λ_max): squaring the condition
 * number costs nothing at a float32 tolerance.
 */
export function numericalRank(a: ArrayLike<number>, h: number, w: number): number {
  const m = Math.min(h, w);
  if (m === 0) return 0;
  const need = m * m + 4 * m;
  if (scratch.length < need) scratch = new Float64Array(need);
  const g = scratch.subarray(0, m * m);
  const d = scratch.subarray(m * m, m * m + m);
  const e2 = scratch.subarray(m * m + m, m * m + 2 * m);
  const v = scratch.subarray(m * m + 2 * m, m * m + 3 * m);
  const p = scratch.subarray(m * m + 3 * m, m * m + 4 * m);
  let trace = 0;
  if (h <= w) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let k = 0; k < w; k++) s += a[i * w + k] * a[j * w + k];
        g[i * m + j] = s;
        g[j * m + i] = s;
      }
      trace += g[i * m + i];
    }
  } else {
    for (let i = 0; i < w; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let k = 0; k < h; k++) s += a[k * w + i] * a[k * w + j];
        g[i * m + j] = s;
        g[j * m + i] = s;
      }
      trace += g[i * m + i];
    }
  }
  if (trace === 0) return 0;
  // One non-zero singular value always clears its own tolerance: max(h, w)·ε < 1 for every map that fits in memory.
  if (m === 1) return 1;
  tridiagonalize(g, m, d, e2, v, p);
  let maxE2 = 0;
  for (let i = 0; i < m - 1; i++) maxE2 = Math.max(maxE2, e2[i]);
  const pivmin = 2.2250738585072014e-308 * Math.max(1, maxE2);
  // λ_max by bisection: the Gershgorin bound of the tridiagonal matrix is within a factor 3 of it.
  let hi = 0;
  for (let i = 0; i < m; i++) hi = Math.max(hi, d[i] + (i > 0 ? Math.sqrt(e2[i - 1]) : 0) + (i < m - 1 ? Math.sqrt(e2[i]) : 0));
  let lo = 0;
  for (let it = 0; it < 60 && hi - lo > 1e-9 * hi; it++) {
    const mid = (lo + hi) / 2;
    if (countBelow(d, e2, m, mid, pivmin) === m) hi = mid;
    else lo = mid;
  }
  const tau = Math.sqrt(hi) * Math.max(h, w) * FLOAT32_EPS;
  return m - countBelow(d, e2, m, tau * tau, pivmin);
}

/**
 * Reduces the symmetric m×m `g` (overwritten) to tridiagonal form by Householder reflections H = I − βvvᵀ applied on
 * both sides, which keep its eigenvalues: `d` gets the diagonal, `e2` the squared off-diagonal.
 */
function tridiagonalize(g: Float64Array, m: number, d: Float64Array, e2: Float64Array, v: Float64Array, p: Float64Array): void {
  for (let k = 0; k < m - 2; k++) {
    d[k] = g[k * m + k];
    const x0 = g[(k + 1) * m + k];
    let tail = 0;
    for (let i = k + 2; i < m; i++) tail += g[i * m + k] * g[i * m + k];
    if (tail === 0) {
      e2[k] = x0 * x0;
      continue;
    }
    const norm = Math.sqrt(tail + x0 * x0);
    // The sign that avoids cancellation in v's first entry.
    const alpha = x0 > 0 ? -norm : norm;
    v[k + 1] = x0 - alpha;
    for (let i = k + 2; i < m; i++) v[i] = g[i * m + k];
    const beta = 2 / (tail + v[k + 1] * v[k + 1]);
    // B ← HBH = B − vqᵀ − qvᵀ with p = βBv, q = p − (β vᵀp / 2) v, on the trailing block B.
    let vp = 0;
    for (let i = k + 1; i < m; i++) {
      let s = 0;
      for (let j = k + 1; j < m; j++) s += g[i * m + j] * v[j];
      p[i] = beta * s;
      vp += v[i] * p[i];
    }
    const half = (beta * vp) / 2;
    for (let i = k + 1; i < m; i++) p[i] -= half * v[i];
    for (let i = k + 1; i < m; i++) {
      for (let j = k + 1; j <= i; j++) {
        const u = g[i * m + j] - v[i] * p[j] - p[i] * v[j];
        g[i * m + j] = u;
        g[j * m + i] = u;
      }
    }
    e2[k] = alpha * alpha;
  }
  d[m - 2] = g[(m - 2) * m + m - 2];
  d[m - 1] = g[(m - 1) * m + m - 1];
  const last = g[(m - 1) * m + m - 2];
  e2[m - 2] = last * last;
}

/** How many eigenvalues of the tridiagonal (d, e²) lie below x: the negative pivots of T − xI's LDLᵀ (Sylvester). */
function countBelow(d: Float64Array, e2: Float64Array, m: number, x: number, pivmin: number): number {
  let count = 0;
  let q = d[0] - x;
  for (let i = 0; ; i++) {
    // A zero pivot is taken as a tiny negative one, as LAPACK's bisection (dstebz) does.
    if (Math.abs(q) <= pivmin) q = -pivmin;
    if (q < 0) count++;
    if (i === m - 1) return count;
    q = d[i + 1] - x - e2[i] / q;
  }
}

/**
 * Runs an architecture on tensor ops, telling `onOutput` the output activation of every conv, depthwise and dense
 * layer that `wanted` accepts: a layer's output is carried through batch norm and residual adds (an add joins the
 * layers of both operands) to the ReLU or GELU that takes it, and reported there; any other op that reads it first
 * (another layer, a pooling, a flatten, attention) reports it as it is. `finish` reports what is left (the logits).
 */
export class OutputRecorder extends DelegatingOps<tf.Tensor> {
  private readonly pending = new Map<tf.Tensor, string[]>();

  constructor(
    inner: Ops<tf.Tensor>,
    private readonly wanted: (layer: string) => boolean,
    private readonly onOutput: (layer: string, activation: tf.Tensor) => void,
  ) { super(inner); }

  private take(x: tf.Tensor): string[] {
    const layers = this.pending.get(x) ?? [];
    this.pending.delete(x);
    return layers;
  }

  /** x is read by an op that mixes or moves its channels: it is the output activation of the layers it carries. */
  private settle(...xs: tf.Tensor[]): void {
    for (const x of xs) for (const layer of this.take(x)) this.onOutput(layer, x);
  }

  private produced(name: string, y: tf.Tensor, activated: boolean): tf.Tensor {
    if (!this.wanted(name)) return y;
    if (activated) this.onOutput(name, y);
    else this.pending.set(y, [name]);
    return y;
  }

  private carried(x: tf.Tensor, y: tf.Tensor): tf.Tensor {
    const layers = this.take(x);
    if (layers.length > 0) this.pending.set(y, layers);
    return y;
  }

  private activated(x: tf.Tensor, y: tf.Tensor): tf.Tensor {
    for (const layer of this.take(x)) this.onOutput(layer, y);
    return y;
  }

  finish(y: tf.Tensor): void {
    this.settle(y, ...this.pending.keys());
  }

  override conv(name: string, x: tf.Tensor, o: ConvOptions): tf.Tensor { this.settle(x); return this.produced(name, this.inner.conv(name, x, o), o.activation === "relu"); }
  override dense(name: string, x: tf.Tensor, o: DenseOptions): tf.Tensor { this.settle(x); return this.produced(name, this.inner.dense(name, x, o), o.activation === "relu"); }
  override depthwiseConv(name: string, x: tf.Tensor, o: DepthwiseOptions): tf.Tensor { this.settle(x); return this.produced(name, this.inner.depthwiseConv(name, x, o), false); }
  override batchNorm(name: string, x: tf.Tensor, o?: BatchNormOptions): tf.Tensor { return this.carried(x, this.inner.batchNorm(name, x, o)); }
  override add(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    const layers = [...this.take(a), ...this.take(b)];
    const y = this.inner.add(a, b);
    if (layers.length > 0) this.pending.set(y, layers);
    return y;
  }
  override relu(x: tf.Tensor): tf.Tensor { return this.activated(x, this.inner.relu(x)); }
  override gelu(x: tf.Tensor): tf.Tensor { return this.activated(x, this.inner.gelu(x)); }
  override layerNorm(name: string, x: tf.Tensor): tf.Tensor { this.settle(x); return this.inner.layerNorm(name, x); }
  override maxPool(x: tf.Tensor, size: number, stride?: number): tf.Tensor { this.settle(x); return this.inner.maxPool(x, size, stride); }
  override avgPool?(x: tf.Tensor, size: number, stride?: number): tf.Tensor { this.settle(x); return this.inner.avgPool!(x, size, stride); }
  override globalAvgPool(x: tf.Tensor): tf.Tensor { this.settle(x); return this.inner.globalAvgPool(x); }
  override flatten(x: tf.Tensor): tf.Tensor { this.settle(x); return this.inner.flatten(x); }
  override zeroPadShortcut(name: string, x: tf.Tensor, o: ZeroPadShortcutOptions): tf.Tensor { this.settle(x); return this.inner.zeroPadShortcut(name, x, o); }
  override toTokens(x: tf.Tensor): tf.Tensor { this.settle(x); return this.inner.toTokens(x); }
  override classToken(name: string, x: tf.Tensor): tf.Tensor { this.settle(x); return this.inner.classToken(name, x); }
  override positionEmbedding(name: string, x: tf.Tensor): tf.Tensor { this.settle(x); return this.inner.positionEmbedding(name, x); }
  override takeToken(x: tf.Tensor, index: number): tf.Tensor { this.settle(x); return this.inner.takeToken(x, index); }
  override attention(name: string, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, o: AttentionOptions): tf.Tensor {
    this.settle(q, k, v);
    return this.inner.attention(name, q, k, v, o);
  }
}
