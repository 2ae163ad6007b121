/**
 * An architecture is written once, against this small set of operations, and run under two interpreters:
 * `ShapeOps` walks it symbolically to produce the layer table (params, MACs) that metrics are computed from,
 * and `TensorOps` (src/archs/tensor-ops.ts) runs it on tfjs tensors. So counts and the real network can never
 * disagree about a layer.
 *
 * Widths are data: every architecture reads the size of each structure (a conv's filters, a dense layer's units, a
 * residual stage's channels, a transformer block's heads and MLP neurons) from a `Widths` record whose defaults are
 * the published ones, so a compacted model is the same architecture built with other widths (`withWidths`). Which
 * structures exist (a projection or an identity shortcut, how many blocks) never depends on the widths.
 */
import type { LayerKind } from "../core/types.js";

export type Padding = "same" | "valid" | number;

export interface ConvOptions {
  filters: number;
  kernel: number;
  stride?: number;
  padding: Padding;
  bias?: boolean;
  /** A ReLU right after the bias: the same as `ops.relu` of the layer (backends may fuse it into the layer's kernel). */
  activation?: "relu";
}

export interface DenseOptions {
  units: number;
  bias?: boolean;
  /** A ReLU right after the bias, as in ConvOptions. */
  activation?: "relu";
}

export interface DepthwiseOptions {
  kernel: number;
  stride?: number;
  padding: Padding;
  bias?: boolean;
}

export interface BatchNormOptions {
  epsilon?: number;
}

export interface ZeroPadShortcutOptions {
  /** Spatial subsampling: every `stride`-th row and column, starting at the first (a 1x1 average pool). */
  stride: number;
  /**
   * Output channel j is input channel `source[j]`, or zeros where it is -1; its length is the output width. He et al.'s
   * option A is [0, 1, …, cin − 1, −1, …]: the identity, then zero channels. A compacted model keeps the surviving pairs.
   */
  source: readonly number[];
}

export interface AttentionOptions {
  /** Number of heads; q, k and v hold heads × headDim features, head h in columns [h·headDim, (h+1)·headDim). */
  heads: number;
}

export interface Ops<V> {
  conv(name: string, x: V, options: ConvOptions): V;
  /** Depthwise convolution (one filter per input channel, channel multiplier 1): the output keeps the channels. */
  depthwiseConv(name: string, x: V, options: DepthwiseOptions): V;
  /** A dense layer; on a token sequence [tokens, features] it applies to every token (the same weights). */
  dense(name: string, x: V, options: DenseOptions): V;
  /** Batch norm over the last axis; `epsilon` defaults to 1e-5 (PyTorch's), an imported Keras layer gives its own. */
  batchNorm(name: string, x: V, options?: BatchNormOptions): V;
  /** Layer normalization over the last axis with learned γ and β (no running statistics). */
  layerNorm(name: string, x: V): V;
  relu(x: V): V;
  /** GELU, the exact (erf) form PyTorch's nn.GELU computes by default. */
  gelu(x: V): V;
  maxPool(x: V, size: number, stride?: number): V;
  /**
   * maxPool(conv(name, x, options), size) as one operation, for an interpreter that runs the pair faster together
   * (TensorOps: one kernel on the native backend). Optional, and not forwarded by DelegatingOps: a wrapper that watches
   * conv or maxPool sees them separately. Architectures call it through `convThenMaxPool`.
   */
  convMaxPool?(name: string, x: V, options: ConvOptions, size: number): V;
  /**
   * Average pooling, 'valid' windows (an imported Keras AveragePooling2D; no built-in architecture uses it). Optional
   * so that an interpreter written without it still builds every built-in; an import that needs it says so.
   */
  avgPool?(x: V, size: number, stride?: number): V;
  globalAvgPool(x: V): V;
  flatten(x: V): V;
  add(a: V, b: V): V;
  /**
   * He et al.'s parameter-free shortcut (option A): subsample, then identity or zero channels. `name` is also the key
   * of its channel source list in the architecture's widths, which is how a compacted model gets its new map.
   */
  zeroPadShortcut(name: string, x: V, options: ZeroPadShortcutOptions): V;
  /** An image [h, w, c] as a token sequence [h·w, c], row-major. */
  toTokens(x: V): V;
  /** Prepends a learned token [1, features] to the sequence. */
  classToken(name: string, x: V): V;
  /** Adds a learned embedding [tokens, features] to the sequence. */
  positionEmbedding(name: string, x: V): V;
  /** One token of a sequence, as a feature vector. */
  takeToken(x: V, index: number): V;
  /**
   * Multi-head scaled dot-product self-attention on projected q, k, v [tokens, heads·headDim]: per head
   * softmax(q kᵀ / √headDim) v, heads concatenated back. Parameter-free (the projections are dense layers around it);
   * it appears in the layer table for its MACs and its heads, the structure that head pruning removes.
   */
  attention(name: string, q: V, k: V, v: V, options: AttentionOptions): V;
}

/** A conv layer, then a size x size max pool with stride size: as one operation where `ops` offers it. */
export function convThenMaxPool<V>(ops: Ops<V>, name: string, x: V, options: ConvOptions, size: number): V {
  return ops.convMaxPool ? ops.convMaxPool(name, x, options, size) : ops.maxPool(ops.conv(name, x, options), size);
}

/**
 * An Ops that runs another one (`inner`) and watches or alters a few of its operations: a subclass overrides those,
 * and every other operation reaches `inner` unchanged. Which is also what a subclass gets for an operation added to Ops
 * later, so a wrapper that must see every operation of some kind (e.g. every nonlinearity) has to be revisited then.
 * An optional operation is offered exactly when `inner` offers it, so that a build that checks for one (an imported
 * average pool) takes the same path, and gives the same clear error, as on `inner` alone.
 */
export class DelegatingOps<V> implements Ops<V> {
  constructor(protected readonly inner: Ops<V>) {
    // An own property shadows the prototype's method and any subclass's override of it: those forward to inner too.
    if (typeof inner.avgPool !== "function") this.avgPool = undefined;
  }

  conv(name: string, x: V, o: ConvOptions): V { return this.inner.conv(name, x, o); }
  depthwiseConv(name: string, x: V, o: DepthwiseOptions): V { return this.inner.depthwiseConv(name, x, o); }
  dense(name: string, x: V, o: DenseOptions): V { return this.inner.dense(name, x, o); }
  batchNorm(name: string, x: V, o?: BatchNormOptions): V { return this.inner.batchNorm(name, x, o); }
  layerNorm(name: string, x: V): V { return this.inner.layerNorm(name, x); }
  relu(x: V): V { return this.inner.relu(x); }
  gelu(x: V): V { return this.inner.gelu(x); }
  maxPool(x: V, size: number, stride?: number): V { return this.inner.maxPool(x, size, stride); }
  avgPool?(x: V, size: number, stride?: number): V { return this.inner.avgPool!(x, size, stride); }
  globalAvgPool(x: V): V { return this.inner.globalAvgPool(x); }
  flatten(x: V): V { return this.inner.flatten(x); }
  add(a: V, b: V): V { return this.inner.add(a, b); }
  zeroPadShortcut(name: string, x: V, o: ZeroPadShortcutOptions): V { return this.inner.zeroPadShortcut(name, x, o); }
  toTokens(x: V): V { return this.inner.toTokens(x); }
  classToken(name: string, x: V): V { return this.inner.classToken(name, x); }
  positionEmbedding(name: string, x: V): V { return this.inner.positionEmbedding(name, x); }
  takeToken(x: V, index: number): V { return this.inner.takeToken(x, index); }
  attention(name: string, q: V, k: V, v: V, o: AttentionOptions): V { return this.inner.attention(name, q, k, v, o); }
}

/** Widths by structure name (see the top of this file): numbers, or index lists such as a shortcut's channel source. */
export type Widths = Readonly<Record<string, number | readonly number[]>>;

export interface ArchDef {
  name: string;
  summary: string;
  citation: string;
  /** [h, w, c] the architecture was designed for; null = adapts to any image input. */
  inputShape: [number, number, number] | null;
  /** Fixed number of classes, or null when it follows the dataset. */
  numClasses: number | null;
  /** The widths it is built with: the published ones, unless `withWidths` replaced some. */
  widths: Widths;
  build<V>(ops: Ops<V>, input: V, numClasses: number): V;
  /**
   * The same architecture (same name, layers and structure) with some widths replaced, e.g. fewer channels after
   * structured pruning. Unknown keys and non-positive widths are errors.
   */
  withWidths(changes: Widths): ArchDef;
  /** The same architecture with its published widths (what `withWidths` started from). */
  published(): ArchDef;
  /**
   * Weights the network starts from instead of a draw from the configured init (an imported model's file), by tensor
   * name; only on the published widths (`withWidths` drops them: other widths are another network).
   */
  initialWeights?: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;
}

/** What an architecture file declares: `build` receives the complete widths to read its sizes from. */
export interface ArchSpec extends Pick<ArchDef, "name" | "summary" | "citation" | "inputShape" | "numClasses" | "initialWeights"> {
  /** The published widths. */
  widths: Widths;
  /** Keys `withWidths` may add that have no default (index lists computed from the widths unless given). */
  optionalWidths?: (key: string) => boolean;
  build<V>(ops: Ops<V>, input: V, numClasses: number, widths: WidthReader): V;
}

/** Reads a width by key; a missing key is a defect of the architecture file, so it throws. */
export interface WidthReader {
  n(key: string): number;
  /** An optional index list (undefined: the architecture's default for it). */
  list(key: string): readonly number[] | undefined;
}

export function defineArch(spec: ArchSpec): ArchDef {
  const make = (widths: Widths, published: boolean): ArchDef => {
    const reader = widthReader(spec.name, widths);
    return {
      name: spec.name, summary: spec.summary, citation: spec.citation, inputShape: spec.inputShape, numClasses: spec.numClasses,
      widths,
      ...(published && spec.initialWeights ? { initialWeights: spec.initialWeights } : {}),
      build: <V>(ops: Ops<V>, input: V, numClasses: number): V => spec.build(ops, input, numClasses, reader),
      withWidths(changes: Widths): ArchDef {
        for (const [key, value] of Object.entries(changes)) {
          const known = Object.hasOwn(spec.widths, key) || (spec.optionalWidths?.(key) ?? false);
          if (!known) throw new Error(`${spec.name}: no width named "${key}"; widths: ${Object.keys(spec.widths).join(", ")}`);
          const ok = typeof value === "number" ? Number.isInteger(value) && value > 0
            : Array.isArray(value) && value.every((i) => Number.isInteger(i) && i >= -1);
          if (!ok) throw new Error(`${spec.name}: width "${key}" must be ${typeof value === "number" ? "a positive integer" : "a list of channel indices (−1: zeros)"}, got ${JSON.stringify(value)}`);
        }
        return make({ ...widths, ...changes }, false);
      },
      published: () => make(spec.widths, true),
    };
  };
  return make(spec.widths, true);
}

function widthReader(arch: string, widths: Widths): WidthReader {
  return {
    n(key) {
      const v = widths[key];
      if (typeof v !== "number") throw new Error(`${arch}: width "${key}" is ${v === undefined ? "missing" : "not a number"}`);
      return v;
    },
    list(key) {
      const v = widths[key];
      if (v !== undefined && typeof v === "number") throw new Error(`${arch}: width "${key}" must be an index list`);
      return v as readonly number[] | undefined;
    },
  };
}

/**
 * How many times `arch`'s build reads each value it makes, in the order its operations make them. The build runs on
 * opaque tokens (it cannot look inside a value, so every interpreter follows the same path), which lets an inference
 * run free each activation right after its last read (`releasingOps`). `offers`: whether the interpreter has an
 * operation, so that a build that checks an optional one takes the same path here.
 */
export function readCounts(arch: ArchDef, numClasses: number, offers: (operation: string) => boolean): number[] {
  const reads: number[] = [];
  class Token {
    constructor(readonly id: number) {}
  }
  const recorder = new Proxy({} as Ops<Token>, {
    get(_target, operation) {
      if (typeof operation !== "string" || !offers(operation)) return undefined;
      return (...args: unknown[]) => {
        for (const a of args) if (a instanceof Token && a.id >= 0) reads[a.id]++;
        reads.push(0);
        return new Token(reads.length - 1);
      };
    },
  });
  arch.build(recorder, new Token(-1), numClasses);
  return reads;
}

/** Option A's channel source: the input's channels, then zero channels up to `out`. */
export function identityThenZeros(cin: number, out: number): number[] {
  if (out < cin) throw new Error(`zero-padded shortcut: ${out} output channels cannot hold the ${cin} input channels; give its source list`);
  return Array.from({ length: out }, (_, j) => (j < cin ? j : -1));
}

/** One parametrized layer, as the symbolic walk sees it. Shapes exclude the batch dimension. */
export interface LayerInfo {
  name: string;
  kind: LayerKind;
  /**
   * conv: [kh, kw, cin, cout]; depthwise: [kh, kw, channels, 1]; dense: [in, out]; batchnorm, layernorm: [channels];
   * embedding: [tokens, features]; attention (no tensors): [heads, headDim].
   */
  weightShape: number[];
  hasBias: boolean;
  inputShape: number[];
  outputShape: number[];
  /** Trainable parameters: weights + bias (BN: gamma + beta; running statistics are not parameters). */
  params: number;
  /**
   * Multiply-accumulates for one input: conv, depthwise and dense layers, and attention's two matmuls (q·kᵀ and the
   * weighted sum of v). Normalization, activations, pooling, residual adds and embeddings count 0.
   */
  macs: number;
}

/** Kinds whose layer owns a kernel (and maybe a bias) drawn by the configured init: the weights methods prune. */
export const KERNEL_KINDS: readonly LayerKind[] = ["conv", "depthwise", "dense"];
export const hasKernel = (kind: LayerKind): boolean => KERNEL_KINDS.includes(kind);
/** Kinds with γ and β (batch norm also has running statistics). */
export const isNorm = (kind: LayerKind): boolean => kind === "batchnorm" || kind === "layernorm";

/** Names of a layer's tensors, shared by the model, the masks and saved weights. */
export const tensorNames = {
  kernel: (layer: string) => `${layer}/kernel`,
  bias: (layer: string) => `${layer}/bias`,
  gamma: (layer: string) => `${layer}/gamma`,
  beta: (layer: string) => `${layer}/beta`,
  movingMean: (layer: string) => `${layer}/moving_mean`,
  movingVar: (layer: string) => `${layer}/moving_var`,
  embedding: (layer: string) => `${layer}/embedding`,
};

/** Output size of a conv/pool along one axis, with TF's 'same'/'valid' conventions or an explicit pad. */
export function outputSize(input: number, kernel: number, stride: number, padding: Padding): number {
  if (padding === "same") return Math.ceil(input / stride);
  const pad = padding === "valid" ? 0 : padding;
  return Math.floor((input + 2 * pad - kernel) / stride) + 1;
}

export class ShapeOps implements Ops<number[]> {
  readonly layers: LayerInfo[] = [];

  conv(name: string, x: number[], o: ConvOptions): number[] {
    const [h, w, cin] = expectRank(x, 3, name);
    const stride = o.stride ?? 1;
    const out = [outputSize(h, o.kernel, stride, o.padding), outputSize(w, o.kernel, stride, o.padding), o.filters];
    const hasBias = o.bias ?? true;
    const weights = o.kernel * o.kernel * cin * o.filters;
    this.layers.push({
      name, kind: "conv", weightShape: [o.kernel, o.kernel, cin, o.filters], hasBias,
      inputShape: x, outputShape: out,
      params: weights + (hasBias ? o.filters : 0),
      macs: out[0] * out[1] * o.kernel * o.kernel * cin * o.filters,
    });
    return out;
  }

  depthwiseConv(name: string, x: number[], o: DepthwiseOptions): number[] {
    const [h, w, c] = expectRank(x, 3, name);
    const stride = o.stride ?? 1;
    const out = [outputSize(h, o.kernel, stride, o.padding), outputSize(w, o.kernel, stride, o.padding), c];
    const hasBias = o.bias ?? true;
    this.layers.push({
      name, kind: "depthwise", weightShape: [o.kernel, o.kernel, c, 1], hasBias, inputShape: x, outputShape: out,
      params: o.kernel * o.kernel * c + (hasBias ? c : 0),
      macs: out[0] * out[1] * o.kernel * o.kernel * c,
    });
    return out;
  }

  dense(name: string, x: number[], o: DenseOptions): number[] {
    if (x.length !== 1 && x.length !== 2) throw new Error(`${name}: expected features or [tokens, features], got shape [${x}]`);
    const units = x[x.length - 1];
    const tokens = x.length === 2 ? x[0] : 1;
    const out = [...x.slice(0, -1), o.units];
    const hasBias = o.bias ?? true;
    this.layers.push({
      name, kind: "dense", weightShape: [units, o.units], hasBias, inputShape: x, outputShape: out,
      params: units * o.units + (hasBias ? o.units : 0), macs: tokens * units * o.units,
    });
    return out;
  }

  batchNorm(name: string, x: number[]): number[] {
    const channels = x[x.length - 1];
    this.layers.push({
      name, kind: "batchnorm", weightShape: [channels], hasBias: true, inputShape: x, outputShape: x,
      params: 2 * channels, macs: 0,
    });
    return x;
  }

  layerNorm(name: string, x: number[]): number[] {
    const features = x[x.length - 1];
    this.layers.push({
      name, kind: "layernorm", weightShape: [features], hasBias: true, inputShape: x, outputShape: x,
      params: 2 * features, macs: 0,
    });
    return x;
  }

  relu(x: number[]): number[] { return x; }

  gelu(x: number[]): number[] { return x; }

  maxPool(x: number[], size: number, stride = size): number[] {
    const [h, w, c] = expectRank(x, 3, "maxPool");
    return [outputSize(h, size, stride, "valid"), outputSize(w, size, stride, "valid"), c];
  }

  avgPool(x: number[], size: number, stride = size): number[] {
    return this.maxPool(x, size, stride);
  }

  globalAvgPool(x: number[]): number[] {
    return [expectRank(x, 3, "globalAvgPool")[2]];
  }

  flatten(x: number[]): number[] { return [x.reduce((a, b) => a * b, 1)]; }

  add(a: number[], b: number[]): number[] {
    if (a.join() !== b.join()) throw new Error(`add: shapes differ (${a} vs ${b})`);
    return a;
  }

  zeroPadShortcut(_name: string, x: number[], o: ZeroPadShortcutOptions): number[] {
    const [h, w, c] = expectRank(x, 3, "zeroPadShortcut");
    const bad = o.source.find((i) => i < -1 || i >= c || !Number.isInteger(i));
    if (bad !== undefined) throw new Error(`zeroPadShortcut: source channel ${bad} outside the input's ${c} channels`);
    return [Math.ceil(h / o.stride), Math.ceil(w / o.stride), o.source.length];
  }

  toTokens(x: number[]): number[] {
    const [h, w, c] = expectRank(x, 3, "toTokens");
    return [h * w, c];
  }

  classToken(name: string, x: number[]): number[] {
    const [tokens, features] = expectRank(x, 2, name);
    this.pushEmbedding(name, x, [1, features]);
    return [tokens + 1, features];
  }

  positionEmbedding(name: string, x: number[]): number[] {
    expectRank(x, 2, name);
    this.pushEmbedding(name, x, x);
    return x;
  }

  private pushEmbedding(name: string, x: number[], shape: number[]): void {
    this.layers.push({
      name, kind: "embedding", weightShape: shape, hasBias: false, inputShape: x, outputShape: x,
      params: shape[0] * shape[1], macs: 0,
    });
  }

  takeToken(x: number[], index: number): number[] {
    const [tokens, features] = expectRank(x, 2, "takeToken");
    if (index < 0 || index >= tokens) throw new Error(`takeToken: token ${index} of ${tokens}`);
    return [features];
  }

  attention(name: string, q: number[], k: number[], v: number[], o: AttentionOptions): number[] {
    const [tokens, width] = expectRank(q, 2, name);
    if (k.join() !== q.join() || v.join() !== q.join()) throw new Error(`${name}: q, k, v shapes differ ([${q}], [${k}], [${v}])`);
    if (width % o.heads !== 0) throw new Error(`${name}: ${width} features do not split into ${o.heads} heads`);
    this.layers.push({
      name, kind: "attention", weightShape: [o.heads, width / o.heads], hasBias: false, inputShape: q, outputShape: q,
      params: 0, macs: 2 * tokens * tokens * width,
    });
    return q;
  }
}

function expectRank(x: number[], rank: number, where: string): number[] {
  if (x.length !== rank) throw new Error(`${where}: expected a rank-${rank} input, got shape [${x}]`);
  return x;
}
