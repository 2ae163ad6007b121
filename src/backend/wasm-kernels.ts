/**
 * Kernels that @tensorflow/tfjs-backend-wasm 4.22 lacks, or has in a form too slow to train with.
 *
 * Audit (tf.grads on wasm over the ops of MLP, LeNet-5 and ResNet-20: matMul, add, relu, logSoftmax,
 * conv2d 1x1/3x3/5x5 same/valid/numeric pad, stride 1/2, maxPool + MaxPoolGrad, avgPool + AvgPoolGrad,
 * mean, moments, batchNorm (FusedBatchNorm), Step (relu grad), ZerosLike/OnesLike, SGD/Adam ops):
 *
 *  - missing: `Conv2DBackpropFilter` (weight gradient of every conv layer) → added here.
 *  - present but naive loops, 10-20x slower than XNNPACK: `Conv2DBackpropInput` (input gradient of every
 *    conv but the first) and `BatchMatMul` whenever transposeA/transposeB is set (both dense-layer
 *    gradients). Replaced here by formulations on wasm's XNNPACK kernels; cases outside them (NCHW,
 *    batched matmul, pads larger than the filter) still go to the original kernel.
 *
 * Everything is built from wasm's own kernels (Conv2D, BatchMatMul, Transpose, Reverse, PadV2, Slice,
 * StridedSlice, Reshape) called through the kernel registry on the backend, on TensorInfos: no JS loops
 * over data, and intermediates are released as soon as they are consumed.
 *
 * Conv2DBackpropFilter:
 *   dW[kh,kw,ci,co] = Σ_{n,h,w} x[n, h·s + kh − padTop, w·s + kw − padLeft, ci] · dy[n,h,w,co]
 * is a stride-1 convolution of xT = x transposed to [ci, H, W, n] (ci is the batch, n the channels) with
 * the filter dyT = dy transposed to [Ho, Wo, n, co], dilated by the forward stride s; its output
 * [ci, kh, kw, co] is transposed to [kh, kw, ci, co]. Pads go to XNNPACK as explicit pads (no padded
 * copy of x): top/left as in the forward pass, bottom/right such that the output is exactly the filter
 * size; when the forward pass never reached the last rows/columns of x (valid padding with H − kh not a
 * multiple of s), the surplus output is cropped. Unpadded 1x1 filters (ResNet shortcuts) are one matmul
 * xsᵀ·dy over the N·Ho·Wo rows, xs being x subsampled by the stride.
 *
 * Conv2DBackpropInput:
 *   dx = (dy with s−1 zeros inserted between rows/columns) correlated with the filter rotated by 180°
 *   and transposed to [kh, kw, co, ci], with pads (kh−1−padTop, ...) — one XNNPACK convolution.
 *   Unpadded 1x1 filters multiply first and insert the zeros after (s² less work).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { DataId, KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from "@tensorflow/tfjs-core";

const BACKEND = "wasm";

/** The part of tfjs-backend-wasm's BackendWasm this module touches. */
interface WasmBackendLike {
  disposeData(dataId: DataId, force?: boolean): boolean;
}

type KernelArgs = Parameters<KernelFunc>[0];

type Explicit = [[number, number], [number, number], [number, number], [number, number]];

function callKernel(name: string, backend: WasmBackendLike, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
  const config = tf.getKernel(name, BACKEND);
  if (config == null) {
    throw new Error(`prunebench wasm kernels: the wasm backend has no '${name}' kernel to build on`);
  }
  return config.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}

function release(backend: WasmBackendLike, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}

function reshape(backend: WasmBackendLike, x: TensorInfo, shape: number[]): TensorInfo {
  return callKernel(tf.Reshape, backend, { x }, { shape });
}

/**
 * Transposes x by perm. When perm only moves size-1 axes the memory order is unchanged, so this is a
 * copy-free reshape instead of wasm's Transpose (which would copy).
 */
function permute(backend: WasmBackendLike, x: TensorInfo, perm: number[]): TensorInfo {
  const outShape = perm.map((p) => x.shape[p]);
  const moved = perm.filter((p) => x.shape[p] !== 1);
  if (moved.every((p, i) => i === 0 || moved[i - 1] < p)) return reshape(backend, x, outShape);
  return callKernel(tf.Transpose, backend, { x }, { perm });
}

function conv2d(backend: WasmBackendLike, x: TensorInfo, filter: TensorInfo, dilations: [number, number], pad: Explicit): TensorInfo {
  return callKernel(tf.Conv2D, backend, { x, filter }, {
    strides: [1, 1],
    dilations,
    pad,
    dataFormat: "NHWC",
  } as unknown as NamedAttrMap);
}

/** x[:, :h, :w, :] (a copy) when x is larger than [_, h, w, _]; x itself otherwise. */
function cropHW(backend: WasmBackendLike, x: TensorInfo, h: number, w: number): TensorInfo {
  if (x.shape[1] === h && x.shape[2] === w) return x;
  const out = callKernel(tf.Slice, backend, { x }, { begin: [0, 0, 0, 0], size: [x.shape[0], h, w, x.shape[3]] });
  release(backend, x);
  return out;
}

/**
 * a·b for rank-2 operands through wasm's fast (XNNPACK) non-transposed path: a transposed operand is
 * materialised first, which is far cheaper than wasm's transposed matmul loop.
 */
function matMul2D(backend: WasmBackendLike, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean, plain: KernelFunc): TensorInfo {
  const a2 = transposeA ? permute(backend, a, [1, 0]) : a;
  const b2 = transposeB ? permute(backend, b, [1, 0]) : b;
  try {
    return plain({ inputs: { a: a2, b: b2 }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
  } finally {
    if (a2 !== a) release(backend, a2);
    if (b2 !== b) release(backend, b2);
  }
}

/** Original wasm kernels replaced by overrides, to delegate the cases the overrides do not handle. */
const originals = new Map<string, KernelConfig>();

function originalKernel(name: string): KernelFunc {
  const config = originals.get(name) ?? tf.getKernel(name, BACKEND);
  if (config == null) throw new Error(`prunebench wasm kernels: no '${name}' kernel on the wasm backend`);
  return config.kernelFunc;
}

// ---------------------------------------------------------------------------------------------------
// Conv2DBackpropFilter (missing)

function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat);
  if (format !== "channelsLast") {
    throw new Error(`prunebench wasm Conv2DBackpropFilter supports only NHWC (dataFormat '${dataFormat}' given)`);
  }
  if (x.dtype !== "float32" || dy.dtype !== "float32") {
    throw new Error(`prunebench wasm Conv2DBackpropFilter needs float32 inputs (got ${x.dtype}, ${dy.dtype})`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    format,
  );
  const [batch, inH, inW, inC] = x.shape;
  const { filterHeight: fh, filterWidth: fw, outHeight: outH, outWidth: outW, outChannels: outC } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  if (dy.shape.length !== 4 || dy.shape[0] !== batch || dy.shape[1] !== outH || dy.shape[2] !== outW || dy.shape[3] !== outC) {
    throw new Error(`prunebench wasm Conv2DBackpropFilter: dy shape [${dy.shape}] is not the forward output [${info.outShape}]`);
  }

  if (fh === 1 && fw === 1 && top === 0 && left === 0) {
    // 1x1: dW[0,0] = xsᵀ·dy with xs = x[:, ::s, ::s, :] (rows N·Ho·Wo).
    let xs = x;
    if (sh !== 1 || sw !== 1 || outH !== inH || outW !== inW) {
      xs = callKernel(tf.StridedSlice, backend, { x }, {
        begin: [0, 0, 0, 0],
        end: [batch, (outH - 1) * sh + 1, (outW - 1) * sw + 1, inC],
        strides: [1, sh, sw, 1],
        beginMask: 0,
        endMask: 0,
        ellipsisMask: 0,
        newAxisMask: 0,
        shrinkAxisMask: 0,
      });
    }
    const rows = batch * outH * outW;
    const a = reshape(backend, xs, [rows, inC]);
    const b = reshape(backend, dy, [rows, outC]);
    if (xs !== x) release(backend, xs);
    const plain = originalKernel(tf.BatchMatMul);
    let prod: TensorInfo;
    try {
      // Transpose whichever operand is smaller: xsᵀ·dy, or (dyᵀ·xs)ᵀ.
      prod = inC <= outC ? matMul2D(backend, a, b, true, false, plain) : matMul2D(backend, b, a, true, false, plain);
    } finally {
      release(backend, a, b);
    }
    if (inC > outC) {
      const t = permute(backend, prod, [1, 0]);
      release(backend, prod);
      prod = t;
    }
    const out = reshape(backend, prod, [1, 1, inC, outC]);
    release(backend, prod);
    return out;
  }

  // Bottom/right pads that make the dilated "filter" (dy) end exactly at row fh−1 / column fw−1 of dW.
  const bottom = (outH - 1) * sh + fh - inH - top;
  const right = (outW - 1) * sw + fw - inW - left;
  const xT = permute(backend, x, [3, 1, 2, 0]); // [ci, H, W, n]
  const dyT = permute(backend, dy, [1, 2, 0, 3]); // [Ho, Wo, n, co]
  let r: TensorInfo;
  try {
    r = conv2d(backend, xT, dyT, [sh, sw], [
      [0, 0],
      [top, Math.max(bottom, 0)],
      [left, Math.max(right, 0)],
      [0, 0],
    ]); // [ci, ≥fh, ≥fw, co]
  } finally {
    release(backend, xT, dyT);
  }
  r = cropHW(backend, r, fh, fw);
  const out = permute(backend, r, [1, 2, 0, 3]); // [fh, fw, ci, co]
  release(backend, r);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Conv2DBackpropInput (override of wasm's loop implementation)

/** dy with s−1 zero rows/columns after each row/column: [n, Ho·sh, Wo·sw, c]. */
function insertZeros(backend: WasmBackendLike, dy: TensorInfo, sh: number, sw: number): TensorInfo {
  if (sh === 1 && sw === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const d6 = reshape(backend, dy, [n, h, 1, w, 1, c]);
  const padded = callKernel(tf.PadV2, backend, { x: d6 }, {
    paddings: [
      [0, 0],
      [0, 0],
      [0, sh - 1],
      [0, 0],
      [0, sw - 1],
      [0, 0],
    ],
    constantValue: 0,
  });
  release(backend, d6);
  const out = reshape(backend, padded, [n, h * sh, w * sw, c]);
  release(backend, padded);
  return out;
}

function conv2DBackpropInput(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat);
  const fallback = () => originalKernel(tf.Conv2DBackpropInput)(args) as TensorInfo;
  if (format !== "channelsLast" || dy.dtype !== "float32" || filter.dtype !== "float32") return fallback();
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    format,
  );
  const [, inH, inW] = inputShape;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const padTop = fh - 1 - top;
  const padLeft = fw - 1 - left;
  if (padTop < 0 || padLeft < 0) return fallback(); // forward pads larger than the filter: rare, leave to wasm

  // Filter rotated by 180° with in/out channels swapped: [fh, fw, co, ci].
  const rotated = fh === 1 && fw === 1 ? reshape(backend, filter, filter.shape) : callKernel(tf.Reverse, backend, { x: filter }, { dims: [0, 1] });
  const flipped = permute(backend, rotated, [0, 1, 3, 2]);
  release(backend, rotated);

  try {
    if (fh === 1 && fw === 1 && top === 0 && left === 0 && dy.shape[1] * sh >= inH && dy.shape[2] * sw >= inW) {
      // 1x1: multiply at dy's resolution, then spread the result over the input grid.
      const small = conv2d(backend, dy, flipped, [1, 1], [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ]);
      const spread = insertZeros(backend, small, sh, sw);
      if (spread !== small) release(backend, small);
      return cropHW(backend, spread, inH, inW);
    }
    const d = insertZeros(backend, dy, sh, sw);
    const padBottom = inH + fh - 1 - d.shape[1] - padTop;
    const padRight = inW + fw - 1 - d.shape[2] - padLeft;
    let r: TensorInfo;
    try {
      r = conv2d(backend, d, flipped, [1, 1], [
        [0, 0],
        [padTop, Math.max(padBottom, 0)],
        [padLeft, Math.max(padRight, 0)],
        [0, 0],
      ]);
    } finally {
      if (d !== dy) release(backend, d);
    }
    return cropHW(backend, r, inH, inW);
  } finally {
    release(backend, flipped);
  }
}

// ---------------------------------------------------------------------------------------------------
// BatchMatMul (override: wasm's transposed variants are a slow loop)

function batchMatMul(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  const plain = originalKernel(tf.BatchMatMul);
  const batchA = a.shape.slice(0, -2).reduce((p, d) => p * d, 1);
  const batchB = b.shape.slice(0, -2).reduce((p, d) => p * d, 1);
  // wasm's fast path is the unbatched, untransposed product; batched products are loops either way.
  if ((!transposeA && !transposeB) || batchA !== 1 || batchB !== 1 || a.dtype !== "float32" || b.dtype !== "float32") {
    return plain(args) as TensorInfo;
  }
  const a2 = reshape(backend, a, a.shape.slice(-2));
  const b2 = reshape(backend, b, b.shape.slice(-2));
  let r: TensorInfo;
  try {
    r = matMul2D(backend, a2, b2, transposeA, transposeB, plain);
  } finally {
    release(backend, a2, b2);
  }
  const rank = Math.max(a.shape.length, b.shape.length);
  if (rank === 2) return r;
  const out = reshape(backend, r, [...new Array<number>(rank - 2).fill(1), ...r.shape.slice(-2)]);
  release(backend, r);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Registration

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: BACKEND,
  kernelFunc: conv2DBackpropFilter as unknown as KernelFunc,
};

/** Kernels wasm lacks. */
export const addedKernels: readonly KernelConfig[] = [conv2DBackpropFilterConfig];

/** Replacements for slow wasm kernels (they keep the original's setup/dispose functions). */
export const overriddenKernels: readonly { kernelName: string; kernelFunc: KernelFunc }[] = [
  { kernelName: tf.Conv2DBackpropInput, kernelFunc: conv2DBackpropInput as unknown as KernelFunc },
  { kernelName: tf.BatchMatMul, kernelFunc: batchMatMul as unknown as KernelFunc },
];

const OURS = Symbol.for("prunebench.wasmKernel");

function isOurs(config: KernelConfig | undefined): boolean {
  return config != null && (config as unknown as Record<symbol, unknown>)[OURS] === true;
}

/**
 * Registers the missing wasm kernels and (unless `overrides` is false) replaces the slow ones.
 * Idempotent. A missing kernel that wasm already has (a newer tfjs-backend-wasm) is left alone.
 * Returns the kernel names registered or replaced by this call.
 */
export function registerWasmKernels(options: { overrides?: boolean } = {}): string[] {
  const changed: string[] = [];
  for (const config of addedKernels) {
    if (tf.getKernel(config.kernelName, BACKEND) != null) continue;
    tf.registerKernel({ ...config, [OURS]: true } as KernelConfig);
    changed.push(config.kernelName);
  }
  if (options.overrides === false) return changed;
  for (const { kernelName, kernelFunc } of overriddenKernels) {
    const current = tf.getKernel(kernelName, BACKEND);
    if (current == null || isOurs(current)) continue;
    originals.set(kernelName, current);
    tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel({ ...current, kernelFunc, [OURS]: true } as KernelConfig);
    changed.push(kernelName);
  }
  return changed;
}

/** Puts wasm's original kernels back in place of the overrides (for comparisons and tests). */
export function restoreWasmKernels(): string[] {
  const restored: string[] = [];
  for (const [kernelName, config] of originals) {
    if (isOurs(tf.getKernel(kernelName, BACKEND))) tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel(config);
    restored.push(kernelName);
  }
  originals.clear();
  return restored;
}
