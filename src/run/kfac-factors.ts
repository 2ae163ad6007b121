/**
 * The K-FAC capability (ScoreContext.kfacFactors): per conv and dense layer, A = E[aaᵀ] of its inputs (a conv's input
 * unfolded into patches in the kernel's (kh, kw, c_in) order) and G = E[ggᵀ] of the gradients with respect to its
 * outputs before their activation. Each batch runs twice: a forward pass that accumulates A and notes each layer's
 * output shape, then a pass with a zero "probe" added to every layer's output, whose gradient is the output gradient
 * (tfjs has no backward hooks; a probe is the plain way to ask autodiff for an intermediate's gradient).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BatchSpec, KfacFactors, KfacOptions } from "../../methods/types.js";
import { DelegatingOps, type ConvOptions, type DenseOptions, type Ops } from "../archs/ops.js";
import { TensorOps } from "../archs/tensor-ops.js";
import type { StagedSplit } from "../train/loop.js";
import type { Model } from "../train/model.js";

interface LayerSums {
  hasBias: boolean;
  positions: number;
  inDim: number;
  outDim: number;
  a: tf.Tensor | null;
  trace: tf.Tensor | null;
  g: tf.Tensor | null;
  s2: tf.Tensor | null;
  outShape: number[];
}

/**
 * K-FAC factors over the batches `plan` (see KfacFactors). `random` draws the labels when `options.labels` is
 * "sampled". Batch norm runs in `mode`; its running statistics are not updated.
 */
export function kfacFactors(
  model: Model, train: StagedSplit, plan: readonly Int32Array[], mode: BatchSpec["mode"], options: KfacOptions, random: () => number,
): Map<string, KfacFactors> {
  if (plan.length === 0) throw new Error("K-FAC factors over no training batches");
  const wanted = options.layers ? new Set(options.layers) : null;
  const sums = new Map<string, LayerSums>();
  const eyes = new Map<string, tf.Tensor4D>();
  let images = 0;
  try {
    for (const rows of plan) {
      images += rows.length;
      tf.tidy(() => {
        const idx = tf.tensor1d(rows, "int32");
        const x = tf.gather(train.x, idx);
        const all = new Map<string, tf.Tensor>([...model.params, ...model.state]);
        const seen = new Set<string>();
        const forwardOps = new TensorOps(all, mode === "train");
        const logits = model.arch.build(new KfacProbes(forwardOps, wanted, null, (layer, input, output, bias, conv) => {
          if (seen.has(layer)) throw new Error(`K-FAC factors: layer ${layer} runs twice in ${model.arch.name} (shared weights are not supported)`);
          seen.add(layer);
          const full = options.input !== "trace";
          const d = (conv ? conv.kernel * conv.kernel * input.shape[3]! : input.shape[input.shape.length - 1]!) + (bias ? 1 : 0);
          const outDim = output.shape[output.shape.length - 1]!;
          const n = input.shape[0]!;
          const rows = output.size / outDim;
          const positions = rows / n;
          const prev = sums.get(layer);
          if (prev && (prev.positions !== positions || prev.outDim !== outDim)) throw new Error(`K-FAC factors: layer ${layer} changed shape between batches`);
          const s = prev ?? { hasBias: bias, positions, inDim: d, outDim, a: null, trace: null, g: null, s2: null, outShape: [] };
          s.outShape = output.shape;
          sums.set(layer, s);
          // Σ ‖a‖² over positions: a conv's window sums of x² (a conv of x² with a ones kernel), plus 1 per row for the bias.
          // Each layer's temporaries (a conv's patches: n·T·d floats) go as soon as its sums are taken, not at the end
          // of the batch's forward pass (all layers' patches at once held 2.3 GB on ResNet-20 at 128 images).
          const trace = tf.tidy(() => {
            const t = conv ? tf.sum(unfoldSquares(input, conv)) : tf.sum(tf.square(input));
            return bias ? tf.add(t, rows) : t;
          });
          const oldTrace = s.trace;
          s.trace = tf.keep(oldTrace ? tf.add(oldTrace, trace) : trace);
          oldTrace?.dispose();
          if (full) {
            const aat = tf.tidy(() => {
              let a = tf.reshape(conv ? unfold(input, conv, eyes, layer) : input, [rows, d - (bias ? 1 : 0)]);
              if (bias) a = tf.concat([a, tf.ones([rows, 1])], 1);
              return tf.matMul(a, a, true, false);
            });
            const old = s.a;
            s.a = tf.keep(old ? tf.add(old, aat) : aat);
            old?.dispose();
          }
          const squares = tf.sum(tf.square(tf.reshape(output, [-1, outDim])), 0);
          const oldS2 = s.s2;
          s.s2 = tf.keep(oldS2 ? tf.add(oldS2, squares) : squares);
          oldS2?.dispose();
          s.outShape = output.shape;
          sums.set(layer, s);
        }), x, model.numClasses);
        for (const [, t] of forwardOps.stateUpdates) t.dispose();
        const onehot = tf.oneHot(options.labels === "sampled" ? sampledLabels(logits, random) : tf.gather(train.y, idx), model.numClasses);
        const layers = [...seen];
        const probes = layers.map((l) => tf.zeros(sums.get(l)!.outShape));
        const probeMap = new Map(layers.map((l, i) => [l, probes[i]]));
        // The sum of the images' losses, not their mean: its gradient at image n's outputs is ∂ℓ_n/∂s, image n's own.
        const grads = tf.grads((...ps: tf.Tensor[]) => {
          ps.forEach((p, i) => probeMap.set(layers[i], p));
          const ops = new TensorOps(new Map<string, tf.Tensor>([...model.params, ...model.state]), mode === "train");
          const out = model.arch.build(new KfacProbes(ops, wanted, probeMap, () => {}), x, model.numClasses);
          for (const [, t] of ops.stateUpdates) t.dispose();
          return tf.losses.softmaxCrossEntropy(onehot, out, undefined, undefined, tf.Reduction.SUM) as tf.Scalar;
        })(probes);
        layers.forEach((l, i) => {
          const s = sums.get(l)!;
          const g = tf.reshape(grads[i], [-1, s.outDim]);
          const ggt = tf.matMul(g, g, true, false);
          const prev = s.g;
          s.g = tf.keep(prev ? tf.add(prev, ggt) : ggt);
          prev?.dispose();
        });
      });
    }
    const out = new Map<string, KfacFactors>();
    for (const [layer, s] of sums) {
      const a = s.a ? s.a.dataSync() as Float32Array : new Float32Array(0);
      const g = s.g!.dataSync() as Float32Array;
      const aScale = 1 / (images * s.positions);
      out.set(layer, {
        inDim: s.inDim, outDim: s.outDim, hasBias: s.hasBias, positions: s.positions,
        A: scaled(a, aScale), traceA: s.trace!.dataSync()[0] * aScale, G: scaled(g, 1 / images), outputMeanSquare: scaled(s.s2!.dataSync() as Float32Array, aScale),
      });
    }
    return out;
  } finally {
    for (const s of sums.values()) { s.a?.dispose(); s.trace?.dispose(); s.g?.dispose(); s.s2?.dispose(); }
    for (const e of eyes.values()) e.dispose();
  }
}

/** `v` × `k` in float64 (a plain loop: Float64Array.from with a map function is ~50× slower on millions of entries). */
function scaled(v: Float32Array, k: number): Float64Array {
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] * k;
  return out;
}

/** One label per row of `logits`, drawn from its softmax with `random`. */
function sampledLabels(logits: tf.Tensor, random: () => number): tf.Tensor1D {
  const p = tf.softmax(logits).dataSync() as Float32Array;
  const [n, c] = logits.shape as [number, number];
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let u = random();
    let k = 0;
    for (; k < c - 1; k++) { u -= p[r * c + k]; if (u < 0) break; }
    labels[r] = k;
  }
  return tf.tensor1d(labels, "int32");
}

/**
 * A conv's input unfolded into its patches, [n, oh, ow, kh·kw·c_in] in the kernel's (kh, kw, c_in) order: a conv with
 * a 0/1 kernel that copies each (kh, kw, c) entry of the window to its own output channel, run with the layer's own
 * stride and padding, so the windows are exactly the ones the layer sees.
 */
export function unfold(x: tf.Tensor, o: ConvOptions, eyes: Map<string, tf.Tensor4D>, key: string): tf.Tensor4D {
  const cin = x.shape[3]!;
  const k = o.kernel;
  let eye = eyes.get(key);
  if (!eye) {
    const d = k * k * cin;
    const values = new Float32Array(d * d);
    for (let j = 0; j < d; j++) values[j * d + j] = 1;
    eye = tf.keep(tf.tensor4d(values, [k, k, cin, d]));
    eyes.set(key, eye);
  }
  let input = x as tf.Tensor4D;
  let pad: "same" | "valid" = "valid";
  if (o.padding === "same") pad = "same";
  else if (typeof o.padding === "number" && o.padding > 0) input = tf.pad(input, [[0, 0], [o.padding, o.padding], [o.padding, o.padding], [0, 0]]);
  return tf.conv2d(input, eye, o.stride ?? 1, pad);
}

/** Per output position, Σ of x² over the conv's window (‖patch‖², the patch's squared norm), with the layer's padding and stride. */
function unfoldSquares(x: tf.Tensor, o: ConvOptions): tf.Tensor4D {
  let input = tf.square(x) as tf.Tensor4D;
  let pad: "same" | "valid" = "valid";
  if (o.padding === "same") pad = "same";
  else if (typeof o.padding === "number" && o.padding > 0) input = tf.pad(input, [[0, 0], [o.padding, o.padding], [o.padding, o.padding], [0, 0]]);
  return tf.conv2d(input, tf.ones([o.kernel, o.kernel, x.shape[3]!, 1]) as tf.Tensor4D, o.stride ?? 1, pad);
}

type OnLayer = (layer: string, input: tf.Tensor, output: tf.Tensor, bias: boolean, conv: ConvOptions | null) => void;

/**
 * Runs an architecture on tensor ops, telling `onLayer` each wanted conv and dense layer's input and output (before
 * its ReLU), and adding `probes`' tensor to that output where given.
 */
class KfacProbes extends DelegatingOps<tf.Tensor> {
  constructor(
    inner: Ops<tf.Tensor>, private readonly wanted: ReadonlySet<string> | null,
    private readonly probes: ReadonlyMap<string, tf.Tensor> | null, private readonly onLayer: OnLayer,
  ) { super(inner); }

  private probed(name: string, x: tf.Tensor, y: tf.Tensor, bias: boolean, conv: ConvOptions | null, activation: "relu" | undefined): tf.Tensor {
    let out = y;
    if (this.wanted === null || this.wanted.has(name)) {
      this.onLayer(name, x, y, bias, conv);
      const probe = this.probes?.get(name);
      if (probe) out = tf.add(y, probe);
    }
    return activation === "relu" ? this.inner.relu(out) : out;
  }

  override conv(name: string, x: tf.Tensor, o: ConvOptions): tf.Tensor {
    const { activation, ...rest } = o;
    return this.probed(name, x, this.inner.conv(name, x, rest), o.bias ?? true, o, activation);
  }
  override dense(name: string, x: tf.Tensor, o: DenseOptions): tf.Tensor {
    const { activation, ...rest } = o;
    return this.probed(name, x, this.inner.dense(name, x, rest), o.bias ?? true, null, activation);
  }
}
