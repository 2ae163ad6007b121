import * as tf from "@tensorflow/tfjs-core";
import { batchNormTrain } from "../backend/fused-ops.js";
import { conv2dBiasAct, conv2dBiasActPool, convPoolApplies, countZeros, fusedApplies, matMulBiasAct } from "../backend/layer-ops.js";
import { sparseApplies, sparseConv2d, sparseMatMul, type SparsePatterns } from "../backend/sparse-ops.js";
import {
  outputSize, readCounts, tensorNames, type ArchDef, type AttentionOptions, type BatchNormOptions, type ConvOptions, type DenseOptions, type DepthwiseOptions, type Ops, type ZeroPadShortcutOptions,
} from "./ops.js";

const BN_EPSILON = 1e-5;
const BN_MOMENTUM = 0.9;
/** timm's and DeiT's ViT LayerNorm epsilon (PyTorch's default is 1e-5). */
const LN_EPSILON = 1e-6;

/**
 * Runs an architecture on tfjs tensors, reading parameters by name. In training mode, batch norm normalizes
 * with batch statistics and queues running-statistic updates, which the caller applies after the step
 * (`applyStateUpdates`) so they stay outside the gradient tape.
 */
export class TensorOps implements Ops<tf.Tensor> {
  readonly stateUpdates: Array<[string, tf.Tensor]> = [];
  /**
   * With `countReluZeros`: per ReLU, the number of its outputs that are exactly 0 (device scalars, nothing read back),
   * and how many outputs the ReLUs had in all (known from shapes on the host) — the dynamic dead neuron rate's parts.
   */
  readonly reluZeros: tf.Tensor[] = [];
  reluUnits = 0;

  constructor(
    private readonly params: ReadonlyMap<string, tf.Tensor>,
    private readonly training: boolean,
    private readonly countReluZeros = false,
    /**
     * Where masked kernels' sparsity patterns come from: a kernel whose pattern is sparse enough runs the sparse
     * kernels on a backend that has them (`sparseApplies`), else the dense op, as without patterns.
     */
    private readonly sparse?: SparsePatterns,
    /** The network's input (data): a conv reading it leaves out its input gradient's intermediates (see conv2dBiasAct). */
    private readonly input?: tf.Tensor,
  ) {}

  private get(name: string): tf.Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`missing parameter ${name}`);
    return t;
  }

  /** The conv's input (explicitly padded where the padding is a number) and the padding tfjs then applies. */
  private convInput(x: tf.Tensor, o: ConvOptions): { input: tf.Tensor4D; pad: "same" | "valid" } {
    if (o.padding === "same") return { input: x as tf.Tensor4D, pad: "same" };
    if (typeof o.padding === "number" && o.padding > 0) {
      return { input: tf.pad(x as tf.Tensor4D, [[0, 0], [o.padding, o.padding], [o.padding, o.padding], [0, 0]]), pad: "valid" };
    }
    return { input: x as tf.Tensor4D, pad: "valid" };
  }

  conv(name: string, x: tf.Tensor, o: ConvOptions): tf.Tensor {
    const stride = o.stride ?? 1;
    const { input, pad } = this.convInput(x, o);
    const w = this.get(tensorNames.kernel(name)) as tf.Tensor4D;
    const pattern = this.sparse?.pattern(tensorNames.kernel(name));
    const sparse = sparseApplies(pattern, "conv") ? pattern : undefined;
    // Bias and ReLU fused into the conv's kernel (src/backend/layer-ops.ts) where the backend has it; elsewhere the
    // separate ops, as always.
    if ((o.bias ?? true) && fusedApplies()) {
      const y = conv2dBiasAct(input, w, this.get(tensorNames.bias(name)), sparse, stride, pad, o.activation ?? "linear", x !== this.input);
      return o.activation === "relu" ? this.countedRelu(y) : y;
    }
    let y = sparse ? sparseConv2d(input, w, sparse, stride, pad) : tf.conv2d(input, w, stride, pad);
    if (o.bias ?? true) y = tf.add(y, this.get(tensorNames.bias(name)));
    return o.activation === "relu" ? this.relu(y) : y;
  }

  /**
   * A ReLU conv and a 2x2 / stride-2 max pool as one kernel (Conv2DBiasActPool) where the backend has it and the conv's
   * output sides are even (the pool then covers all of it); otherwise the two operations. The same values either way.
   */
  convMaxPool(name: string, x: tf.Tensor, o: ConvOptions, size: number): tf.Tensor {
    const stride = o.stride ?? 1;
    const [n, h, w] = x.shape;
    const side = (s: number | undefined) => outputSize(s ?? 0, o.kernel, stride, o.padding ?? "valid");
    const fits = size === 2 && o.activation === "relu" && (o.bias ?? true) && x.rank === 4 && side(h) % 2 === 0 && side(w) % 2 === 0;
    if (!fits || !convPoolApplies() || !fusedApplies()) return this.maxPool(this.conv(name, x, o), size);
    const { input, pad } = this.convInput(x, o);
    const filter = this.get(tensorNames.kernel(name)) as tf.Tensor4D;
    const pattern = this.sparse?.pattern(tensorNames.kernel(name));
    const { pooled, zeros } = conv2dBiasActPool(input, filter, this.get(tensorNames.bias(name)), sparseApplies(pattern, "conv") ? pattern : undefined,
      stride, pad, x !== this.input, this.countReluZeros);
    if (this.countReluZeros) {
      this.reluZeros.push(zeros);
      this.reluUnits += n! * side(h) * side(w) * filter.shape[3];
    } else zeros.dispose();
    return pooled;
  }

  dense(name: string, x: tf.Tensor, o: DenseOptions): tf.Tensor {
    if (x.rank === 3) return this.perToken(x, (rows) => this.dense(name, rows, o));
    const w = this.get(tensorNames.kernel(name)) as tf.Tensor2D;
    const pattern = this.sparse?.pattern(tensorNames.kernel(name));
    const sparse = sparseApplies(pattern, "dense") ? pattern : undefined;
    if ((o.bias ?? true) && fusedApplies()) {
      const y = matMulBiasAct(x as tf.Tensor2D, w, this.get(tensorNames.bias(name)), sparse, o.activation ?? "linear");
      return o.activation === "relu" ? this.countedRelu(y) : y;
    }
    let y = sparse ? sparseMatMul(x as tf.Tensor2D, w, sparse) : tf.matMul(x as tf.Tensor2D, w);
    if (o.bias ?? true) y = tf.add(y, this.get(tensorNames.bias(name)));
    return o.activation === "relu" ? this.relu(y) : y;
  }

  batchNorm(name: string, x: tf.Tensor, o: BatchNormOptions = {}): tf.Tensor {
    const eps = o.epsilon ?? BN_EPSILON;
    const gamma = this.get(tensorNames.gamma(name));
    const beta = this.get(tensorNames.beta(name));
    if (!this.training) {
      return tf.batchNorm(x, this.get(tensorNames.movingMean(name)), this.get(tensorNames.movingVar(name)), beta, gamma, eps);
    }
    const { y, mean, variance } = batchNormTrain(x, gamma, beta, eps);
    this.queueRunningStats(name, x, mean, variance);
    return y;
  }

  /** Queues the running-statistic updates from the batch mean and (biased) variance of x. */
  private queueRunningStats(name: string, x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor): void {
    const n = x.size / x.shape[x.shape.length - 1];
    const movingMean = this.get(tensorNames.movingMean(name));
    const movingVar = this.get(tensorNames.movingVar(name));
    // Running variance uses the unbiased estimate, as PyTorch does.
    this.stateUpdates.push(
      [tensorNames.movingMean(name), tf.keep(tf.add(tf.mul(movingMean, BN_MOMENTUM), tf.mul(mean, 1 - BN_MOMENTUM)))],
      [tensorNames.movingVar(name), tf.keep(tf.add(tf.mul(movingVar, BN_MOMENTUM), tf.mul(variance, (1 - BN_MOMENTUM) * n / Math.max(1, n - 1))))],
    );
  }

  relu(x: tf.Tensor): tf.Tensor {
    return this.countedRelu(tf.relu(x));
  }

  /** A ReLU's output y, its zeros counted when asked to (one native pass where the fused kernels run). */
  private countedRelu(y: tf.Tensor): tf.Tensor {
    if (this.countReluZeros) {
      this.reluZeros.push(fusedApplies() ? countZeros(y) : tf.sum(tf.cast(tf.equal(y, 0), "float32")));
      this.reluUnits += y.size;
    }
    return y;
  }

  maxPool(x: tf.Tensor, size: number, stride = size): tf.Tensor {
    return tf.maxPool(x as tf.Tensor4D, size, stride, "valid");
  }

  avgPool(x: tf.Tensor, size: number, stride = size): tf.Tensor {
    return tf.avgPool(x as tf.Tensor4D, size, stride, "valid");
  }

  globalAvgPool(x: tf.Tensor): tf.Tensor { return tf.mean(x, [1, 2]); }

  flatten(x: tf.Tensor): tf.Tensor { return tf.reshape(x, [x.shape[0], -1]); }

  add(a: tf.Tensor, b: tf.Tensor): tf.Tensor { return tf.add(a, b); }

  // Operations of the architectures beyond the plain conv nets (depthwise convs, option-A shortcuts, transformers):
  // standard tfjs ops only, so every backend runs them (native through the cpu kernels it inherits).

  depthwiseConv(name: string, x: tf.Tensor, o: DepthwiseOptions): tf.Tensor {
    let input = x as tf.Tensor4D;
    let pad: "same" | "valid" = "valid";
    if (o.padding === "same") pad = "same";
    else if (typeof o.padding === "number" && o.padding > 0) {
      input = tf.pad(input, [[0, 0], [o.padding, o.padding], [o.padding, o.padding], [0, 0]]);
    }
    let y = tf.depthwiseConv2d(input, this.get(tensorNames.kernel(name)) as tf.Tensor4D, o.stride ?? 1, pad);
    if (o.bias ?? true) y = tf.add(y, this.get(tensorNames.bias(name)));
    return y;
  }

  /** A dense layer over the last axis of [batch, tokens, features]: one matmul on the tokens as rows. */
  private perToken(x: tf.Tensor, f: (rows: tf.Tensor) => tf.Tensor): tf.Tensor {
    const [b, t, d] = x.shape;
    const y = f(tf.reshape(x, [b * t, d]));
    return tf.reshape(y, [b, t, y.shape[1]!]);
  }

  layerNorm(name: string, x: tf.Tensor): tf.Tensor {
    const axis = x.rank - 1;
    const mean = tf.mean(x, axis, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), axis, true);
    const normalized = tf.mul(centered, tf.rsqrt(tf.add(variance, LN_EPSILON)));
    return tf.add(tf.mul(normalized, this.get(tensorNames.gamma(name))), this.get(tensorNames.beta(name)));
  }

  gelu(x: tf.Tensor): tf.Tensor {
    return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
  }

  zeroPadShortcut(_name: string, x: tf.Tensor, o: ZeroPadShortcutOptions): tf.Tensor {
    // A 1x1 average pool with a stride keeps rows and columns 0, s, 2s, … (tfjs has no strided-slice gradient).
    const sub = o.stride > 1 ? tf.avgPool(x as tf.Tensor4D, 1, o.stride, "valid") : x;
    const cin = x.shape[3]!;
    if (o.source.length >= cin && o.source.every((src, j) => src === (j < cin ? j : -1))) {
      return o.source.length === cin ? sub : tf.pad(sub, [[0, 0], [0, 0], [0, 0], [0, o.source.length - cin]]);
    }
    // Any other channel map (a compacted model's): a 0/1 selection matrix, exact in float, and differentiable on
    // every backend (gather's gradient needs UnsortedSegmentSum, which wasm lacks).
    const select = new Float32Array(cin * o.source.length);
    o.source.forEach((src, j) => { if (src >= 0) select[src * o.source.length + j] = 1; });
    const [b, h, w] = sub.shape;
    const y = tf.matMul(tf.reshape(sub, [-1, cin]) as tf.Tensor2D, tf.tensor2d(select, [cin, o.source.length]));
    return tf.reshape(y, [b, h, w, o.source.length]);
  }

  toTokens(x: tf.Tensor): tf.Tensor {
    const [b, h, w, c] = x.shape;
    return tf.reshape(x, [b, h * w, c]);
  }

  classToken(name: string, x: tf.Tensor): tf.Tensor {
    const token = this.get(tensorNames.embedding(name));
    const [b, , d] = x.shape;
    return tf.concat([tf.tile(tf.reshape(token, [1, 1, d]), [b, 1, 1]), x], 1);
  }

  positionEmbedding(name: string, x: tf.Tensor): tf.Tensor {
    return tf.add(x, this.get(tensorNames.embedding(name)));
  }

  takeToken(x: tf.Tensor, index: number): tf.Tensor {
    const [b, , d] = x.shape;
    return tf.reshape(tf.slice(x, [0, index, 0], [b, 1, d]), [b, d]);
  }

  attention(_name: string, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, o: AttentionOptions): tf.Tensor {
    const [b, t, width] = q.shape;
    const headDim = width / o.heads;
    // [batch, tokens, heads·headDim] -> [batch·heads, tokens, headDim]: one batched matmul per product.
    const split = (x: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(x, [b, t, o.heads, headDim]), [0, 2, 1, 3]), [b * o.heads, t, headDim]);
    const scores = tf.mul(tf.matMul(split(q) as tf.Tensor3D, split(k) as tf.Tensor3D, false, true), 1 / Math.sqrt(headDim));
    const mixed = tf.matMul(tf.softmax(scores) as tf.Tensor3D, split(v) as tf.Tensor3D);
    return tf.reshape(tf.transpose(tf.reshape(mixed, [b, o.heads, t, headDim]), [0, 2, 1, 3]), [b, t, width]);
  }
}

/**
 * `inner` for an inference run that no gradient tape records: each operation's own temporaries, and each value the
 * build reads for the last time, are freed at once. Inference then holds a few activations at a time instead of all
 * of them until the caller's tidy ends (ResNet-20 on 512 images: ≈ 1.4 GB of wasm heap, which never shrinks). The same
 * operations on the same values: the same numbers. Never frees the input or a tensor of `keep` (the model's); the
 * output is the caller's.
 */
export function releasingOps(inner: TensorOps, arch: ArchDef, numClasses: number, keep: ReadonlySet<tf.Tensor>): Ops<tf.Tensor> {
  const reads = readCounts(arch, numClasses, (operation) => typeof Reflect.get(inner, operation) === "function");
  const left = new Map<tf.Tensor, number>();
  let made = 0;
  return new Proxy(inner, {
    get(target, operation) {
      const f = Reflect.get(target, operation) as unknown;
      if (typeof f !== "function") return f;
      return (...args: unknown[]) => {
        const out = tf.tidy(() => f.apply(target, args) as tf.Tensor);
        const n = reads[made++] ?? 0;
        for (const a of args) {
          if (!(a instanceof tf.Tensor) || !left.has(a)) continue;
          const rest = left.get(a)! - 1;
          if (rest > 0) left.set(a, rest);
          else {
            left.delete(a);
            if (a !== out && !keep.has(a)) a.dispose();
          }
        }
        if (n > 0) left.set(out, (left.get(out) ?? 0) + n);
        return out;
      };
    },
  });
}
