// Loading of the compiled N-API addon (native/build/Release/prunebench_native.node).

import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { packageRoot } from "../../core/locations.js";

/** Geometry arrays passed to the addon (see native/src/addon.cc). */
export type ConvGeom = number[]; // [N,H,W,C,OH,OW,O,KH,KW,sh,sw,pt,pb,pl,pr,dh,dw]
/** Stride-1, dilation-1 conv geometry of the sparse kernels: [N,H,W,C,OH,OW,O,KH,KW,pt,pb,pl,pr]. */
export type SparseConvGeom = number[];
export type PoolGeom = number[]; // [N,H,W,C,OH,OW,KH,KW,sh,sw,pt,pl,dh,dw]

export interface NativeAddon {
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** With bias (length O) and/or relu (1): out = act(conv + bias), as a separate Add and Relu would give. */
  conv2d(x: Float32Array, w: Float32Array, out: Float32Array, g: ConvGeom, bias?: Float32Array | null, relu?: number): void;
  conv2dBackpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, g: ConvGeom): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, g: ConvGeom): void;
  /** [1 if the forward conv runs on planar NCHW copies, else 0; filter-gradient batch shards] (tests). Newer builds. */
  convPlan?(g: ConvGeom): [number, number];
  matmul(
    a: Float32Array, b: Float32Array, out: Float32Array,
    batchA: number, batchB: number, m: number, k: number, n: number,
    transA: number, transB: number,
  ): void;
  maxPool(x: Float32Array, out: Float32Array, g: PoolGeom): void;
  maxPoolGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, g: PoolGeom): void;
  avgPool(x: Float32Array, out: Float32Array, g: PoolGeom): void;
  binary(
    op: number, a: Float32Array, aShape: number[], b: Float32Array, bShape: number[],
    out: Float32Array, outShape: number[],
  ): void;
  unary(op: number, x: Float32Array, out: Float32Array, alpha?: number): void;
  addN(xs: Float32Array[], out: Float32Array): void;
  reduce(op: number, x: Float32Array, shape: number[], mask: number[], out: Float32Array): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  batchNorm(
    x: Float32Array, mean: Float32Array, variance: Float32Array,
    offset: Float32Array | null, scale: Float32Array | null,
    out: Float32Array, channels: number, eps: number,
  ): void;
  batchNormGrad(
    dy: Float32Array, x: Float32Array, mean: Float32Array, variance: Float32Array,
    scale: Float32Array | null, channels: number, eps: number,
    dx: Float32Array, dmean: Float32Array, dvar: Float32Array, dscale: Float32Array, doffset: Float32Array,
  ): void;
  /** Training batch norm: y plus the batch mean and biased variance per channel (last axis). */
  batchNormTrain?(
    x: Float32Array, scale: Float32Array, offset: Float32Array, channels: number, eps: number,
    y: Float32Array, mean: Float32Array, variance: Float32Array,
  ): void;
  /** Its gradient, through the batch statistics: dx, dscale, doffset. */
  batchNormTrainGrad?(
    dy: Float32Array, x: Float32Array, mean: Float32Array, variance: Float32Array, scale: Float32Array,
    channels: number, eps: number, dx: Float32Array, dscale: Float32Array, doffset: Float32Array,
  ): void;
  /** SGD (momentum, L2 decay) with the mask folded in; `out` may be `w` (see addon.cc). Optional in older builds. */
  sgdUpdate?(
    w: Float32Array, g: Float32Array, v: Float32Array | null, mask: Float32Array | null, out: Float32Array,
    lr: number, momentum: number, weightDecay: number,
  ): void;
  /** SGD with Nesterov momentum, the composed kernel's float32 ops in one pass; `out` may be `w`. */
  sgdNesterovUpdate?(
    w: Float32Array, g: Float32Array, v: Float32Array | null, mask: Float32Array | null, out: Float32Array,
    lr: number, momentum: number, weightDecay: number,
  ): void;
  /** Adam (L2 decay) with the mask folded in; `out` may be `w`. */
  adamUpdate?(
    w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, mask: Float32Array | null, out: Float32Array,
    lrCorrected: number, beta1: number, beta2: number, oneMinusBeta1: number, oneMinusBeta2: number,
    epsilon: number, weightDecay: number,
  ): void;
  /** Sparse (masked) layers (native/src/sparse.h); pattern: [colPtr | colRow | rowPtr | rowCol]. Optional in older builds. */
  sparseConv2d?(
    x: Float32Array, w: Float32Array, pattern: Int32Array, y: Float32Array, g: SparseConvGeom, bias?: Float32Array | null, relu?: number,
  ): void;
  sparseConv2dGradInput?(dy: Float32Array, w: Float32Array, pattern: Int32Array, dx: Float32Array, g: SparseConvGeom): void;
  sparseConv2dGradFilter?(x: Float32Array, dy: Float32Array, pattern: Int32Array, dw: Float32Array, g: SparseConvGeom): void;
  sparseMatMul?(x: Float32Array, w: Float32Array, pattern: Int32Array, y: Float32Array, B: number, K: number, N: number): void;
  sparseMatMulGradInput?(dy: Float32Array, w: Float32Array, pattern: Int32Array, dx: Float32Array, B: number, K: number, N: number): void;
  sparseMatMulGradWeight?(x: Float32Array, dy: Float32Array, pattern: Int32Array, dw: Float32Array, B: number, K: number, N: number): void;
  /**
   * The fused conv layer's filter and bias gradients from dy and its output y in one pass (native/src/smallconv.h), for
   * the short-filter stride-1 convs the direct kernels take: false (nothing written) for any other. Newer builds only.
   */
  convBiasActGradFilter?(
    x: Float32Array, dy: Float32Array, y: Float32Array, dw: Float32Array, db: Float32Array, g: SparseConvGeom, relu: number, pattern?: Int32Array | null,
  ): boolean;
  /**
   * The same for the layer followed by ReLU and a 2x2 / stride-2 max pool, from the pooled gradient dp and the pool's
   * codes (maxPoolCode): each image's dz is routed in cache. False (nothing written) where the direct kernels do not
   * take the conv. Newer builds only, as the two below.
   */
  convPoolGradFilter?(
    x: Float32Array, dp: Float32Array, code: Int32Array, dw: Float32Array, db: Float32Array, g: SparseConvGeom, pattern?: Int32Array | null,
  ): boolean;
  /**
   * A ReLU output y [N, H, W, C] (H, W even) through a 2x2 / stride-2 max pool: p, and per pooled value the window
   * position its gradient reaches (native/src/smallconv.h); with `zeros`, zeros[0] = how many elements of y are == 0.
   */
  maxPoolCode?(y: Float32Array, p: Float32Array, code: Int32Array, N: number, H: number, W: number, C: number, zeros: Float32Array | null): void;
  /**
   * relu(conv(x, w) + bias) through maxPoolCode's pool, a few images at a time (each chunk's conv output stays in cache),
   * for the convs the direct kernels take (over `pattern`'s rows where given): false (nothing written) for others.
   */
  convPoolSmall?(
    x: Float32Array, w: Float32Array, bias: Float32Array, p: Float32Array, code: Int32Array, g: SparseConvGeom, zeros: Float32Array | null, pattern?: Int32Array | null,
  ): boolean;
  /**
   * The sparse conv (over `pattern`) with ReLU through maxPoolCode's pool, image by image (each image's conv output stays
   * in cache): the bits of sparseConv2d then maxPoolCode. False (nothing written) for the convs convPoolSmall takes.
   */
  sparseConvPool?(
    x: Float32Array, w: Float32Array, bias: Float32Array, p: Float32Array, code: Int32Array, g: SparseConvGeom, zeros: Float32Array | null, pattern: Int32Array,
  ): boolean;
  /**
   * That layer's dx, dw and db from dp and the codes, each image's dz routed in cache and read once for both gradients:
   * the bits of maxPoolRoute, sparseConv2dGradInput and sparseConv2dGradFilter. False (nothing written) where those
   * would not both run the sparse kernels (the scatter kernels pay, or the direct kernels take the conv).
   */
  sparseConvPoolGrads?(
    x: Float32Array, w: Float32Array, dp: Float32Array, code: Int32Array, pattern: Int32Array, dx: Float32Array, dw: Float32Array, db: Float32Array,
    g: SparseConvGeom,
  ): boolean;
  /** dz [N, 2PH, 2PW, C] routed from dp [N, PH, PW, C] and the codes (MaxPoolGrad then BiasActGrad), db its column sums. */
  maxPoolRoute?(dp: Float32Array, code: Int32Array, dz: Float32Array, db: Float32Array, N: number, PH: number, PW: number, C: number): void;
  /** Layer epilogue (src/backend/layer-ops.ts): out = act(y + bias) over rows of C; out may be y. */
  biasAct?(y: Float32Array, bias: Float32Array | null, out: Float32Array, rows: number, C: number, relu: number): void;
  /** Its gradient from the output y: dz = relu ? reluGrad(dy, y) : dy, db = dz summed over the rows. */
  biasActGrad?(dy: Float32Array, y: Float32Array, dz: Float32Array, db: Float32Array, rows: number, C: number, relu: number): void;
  /** out[0] = how many elements of x are == 0. */
  countZeros?(x: Float32Array, out: Float32Array): void;
  /** out row j = x row idx[j], rows of rowLen floats (a training batch's gather). */
  gatherRows?(x: Float32Array, idx: Int32Array, rowLen: number, out: Float32Array): void;
  /** out[0] = mean softmax cross-entropy of logits [B, C] against labels, out[1] = top-1 hits (see fused-ops.ts). */
  softmaxCrossEntropy?(logits: Float32Array, labels: Int32Array, B: number, C: number, out: Float32Array): void;
  /** out [B, C] = float32(dy / B) · (softmax(logits) − onehot(labels)). */
  softmaxCrossEntropyGrad?(logits: Float32Array, labels: Int32Array, dy: number, B: number, C: number, out: Float32Array): void;
}

export const BinOp = { add: 0, sub: 1, mul: 2, div: 3, sqdiff: 4, maximum: 5, minimum: 6, reluGrad: 7, pow: 8, mul2: 9 } as const;
export const UnOp = {
  relu: 0, neg: 1, exp: 2, log: 3, sqrt: 4, rsqrt: 5, square: 6, sigmoid: 7, tanh: 8, abs: 9, relu6: 10, step: 11,
} as const;
export const ReduceOp = { sum: 0, mean: 1, max: 2, min: 3 } as const;

/** Path of the compiled addon; PRUNEBENCH_NATIVE_ADDON overrides it. */
export function addonPath(): string {
  const env = process.env.PRUNEBENCH_NATIVE_ADDON;
  if (env) return resolve(env);
  return join(packageRoot(), "native", "build", "Release", "prunebench_native.node");
}

let cached: { addon: NativeAddon } | { error: string } | undefined;

/**
 * Why this CPU cannot run the addon, or null. It is built for x86-64-v3 (binding.gyp) and its kernels use AVX2 and
 * FMA: loading it elsewhere would die of an illegal instruction instead of falling back to wasm.
 */
export function cpuProblem(arch: string = process.arch, cpuinfo?: string): string | null {
  if (arch !== "x64") return `the native kernels are built for x86-64 with AVX2 and FMA, and this is ${arch}`;
  let info = cpuinfo;
  if (info === undefined) {
    try {
      info = readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return null; // not Linux: the build checked the machine it ran on
    }
  }
  const flags = new Set((/^flags\s*:(.*)$/m.exec(info)?.[1] ?? "").trim().split(/\s+/));
  const missing = ["avx2", "fma"].filter((f) => !flags.has(f));
  return missing.length > 0 ? `this CPU lacks ${missing.join(" and ")}, which the native kernels are built for` : null;
}

/** Loads the addon once; never throws. */
export function loadAddon(): { addon: NativeAddon } | { error: string } {
  if (cached) return cached;
  let path: string;
  try {
    path = addonPath();
  } catch (e) {
    return (cached = { error: (e as Error).message });
  }
  if (!existsSync(path)) {
    return (cached = {
      error: `native addon not built: ${path} is missing (run scripts/build-native.sh)`,
    });
  }
  const cpu = cpuProblem();
  if (cpu) return (cached = { error: cpu });
  try {
    const require = createRequire(import.meta.url);
    const addon = require(path) as NativeAddon;
    if (typeof addon.conv2d !== "function" || typeof addon.matmul !== "function") {
      return (cached = { error: `native addon at ${path} does not export the expected functions` });
    }
    return (cached = { addon });
  } catch (e) {
    return (cached = { error: `native addon at ${path} failed to load: ${(e as Error).message}` });
  }
}
