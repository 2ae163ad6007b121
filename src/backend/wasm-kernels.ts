/**
 * Kernels that @tensorflow/tfjs-backend-wasm 4.22 lacks, or has in a form unfit to train with.
 *
 * Audit (tf.grads on wasm over the ops of MLP, LeNet-5 and ResNet-20: matMul, add, relu, logSoftmax,
 * conv2d 1x1/3x3/5x5 same/valid/numeric pad, stride 1/2, maxPool + MaxPoolGrad, avgPool + AvgPoolGrad,
 * mean, moments, batchNorm (FusedBatchNorm), Step (relu grad), ZerosLike/OnesLike, SGD/Adam ops),
 * each checked against the cpu backend:
 *
 *  - missing: `Conv2DBackpropFilter` (weight gradient of every conv layer) → added; likewise both gradients of
 *    depthwise convs (MobileNetV2), `DepthwiseConv2dNativeBackpropInput` and `…BackpropFilter`, as plain loops.
 *  - wrong: `MaxPoolGrad` loses the gradient of every window whose maximum is ≤ 0 → replaced.
 *  - naive loops 5-20x slower than XNNPACK: `Conv2DBackpropInput` (input gradient of every conv but the
 *    first) and `BatchMatMul` with transposeA/transposeB (both dense-layer gradients) → replaced.
 *    Cases outside the replacements (NCHW, batched matmul, non-float32) go to the original kernel.
 *  - fine: everything else the three models use (AvgPoolGrad, FusedBatchNorm, reductions, elementwise).
 *
 * The convolution kernels are built from wasm's own kernels (Conv2D, BatchMatMul, MaxPool, Transpose,
 * Slice, Reshape) called through the kernel registry on TensorInfos, releasing intermediates as soon
 * as they are consumed; JS only touches the (small) filters, and MaxPoolGrad (see there).
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
 * Conv2DBackpropInput (sub-pixel form, no zero-insertion):
 *   dx[n, i·s + a, j·s + b, ci] for each output phase (a, b) is a stride-1 correlation of dy with the
 *   taps kh ≡ a + padTop (mod s) of the filter, rotated by 180° and with in/out channels swapped. All s²
 *   phases come out of ONE XNNPACK convolution as channel blocks (the sub-filters, built on the JS side
 *   from the small filter, are stacked on the output-channel axis), then a transpose interleaves them
 *   into the [n, H, W, ci] grid. For s = 1 this is the plain "full" correlation with the rotated filter.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { DataId, KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from "@tensorflow/tfjs-core";

const BACKEND = "wasm";

/** The part of tfjs-backend-wasm's BackendWasm this module touches. */
interface WasmBackendLike {
  disposeData(dataId: DataId, force?: boolean): boolean;
  /** Allocates an output on the wasm heap (uninitialised memory). */
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  /** A view of a tensor's heap memory; invalidated when the heap grows (i.e. by any allocation). */
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
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
    // x[:, ::s, ::s, :] as a 1x1 max pool with stride s (XNNPACK; wasm's StridedSlice is a slow JS loop).
    const xs =
      sh === 1 && sw === 1 && outH === inH && outW === inW
        ? x
        : callKernel(tf.MaxPool, backend, { x }, { filterSize: [1, 1], strides: [sh, sw], pad: "valid" });
    if (xs.shape[1] !== outH || xs.shape[2] !== outW) {
      throw new Error(`prunebench wasm Conv2DBackpropFilter: subsampled x [${xs.shape}] does not match dy [${dy.shape}]`);
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

/**
 * The filter of the sub-pixel formulation of dx, built on the JS side (filters are small):
 * for output phase (a, b) (dx row i·sh + a, column j·sw + b) the taps kh ≡ a + padTop (mod sh) of the
 * forward filter, rotated by 180° and with in/out channels swapped, placed so that one stride-1
 * correlation of dy (padded by `pads`) yields all sh·sw phases as channel blocks [(a·sw + b)·ci + c].
 */
function subPixelFilter(backend: WasmBackendLike, filter: TensorInfo, sh: number, sw: number, top: number, left: number) {
  const [fh, fw, ci, co] = filter.shape;
  const taps = (s: number, pad: number, f: number) => {
    // per phase: q = ⌊(phase + pad)/s⌋, first tap k0 = (phase + pad) mod s, count of taps k0 + s·m < f
    const phases = Array.from({ length: s }, (_, a) => {
      const t = a + pad;
      const k0 = t % s;
      return { q: Math.floor(t / s), k0, count: k0 < f ? Math.floor((f - 1 - k0) / s) + 1 : 0 };
    });
    const used = phases.filter((p) => p.count > 0);
    const lead = Math.max(0, ...used.map((p) => p.count - 1 - p.q)); // zero rows of dy needed above
    const size = Math.max(1, ...used.map((p) => p.q + lead + 1)); // sub-filter extent
    return { phases, lead, size };
  };
  const th = taps(sh, top, fh);
  const tw = taps(sw, left, fw);
  const blocks = sh * sw * ci;
  const out = backend.makeOutput([th.size, tw.size, co, blocks], "float32");
  const w = backend.typedArrayFromHeap(filter) as Float32Array; // views only after the allocation
  const o = backend.typedArrayFromHeap(out) as Float32Array;
  o.fill(0);
  th.phases.forEach((pa, a) => {
    for (let m = 0; m < pa.count; m++) {
      const kh = pa.k0 + sh * m;
      const u = pa.q + th.lead - m;
      tw.phases.forEach((pb, b) => {
        for (let n = 0; n < pb.count; n++) {
          const kw = pb.k0 + sw * n;
          const v = pb.q + tw.lead - n;
          const src = (kh * fw + kw) * ci * co;
          const dst = (u * tw.size + v) * co * blocks + (a * sw + b) * ci;
          for (let c = 0; c < ci; c++) {
            for (let k = 0; k < co; k++) o[dst + k * blocks + c] = w[src + c * co + k];
          }
        }
      });
    }
  });
  return { filter: out, leadH: th.lead, leadW: tw.lead };
}

function conv2DBackpropInput(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat);
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
  const { strideHeight: sh, strideWidth: sw } = info;
  if (format !== "channelsLast" || dy.dtype !== "float32" || filter.dtype !== "float32") {
    return originalKernel(tf.Conv2DBackpropInput)(args) as TensorInfo;
  }
  const [, inH, inW, inC] = inputShape;
  const [, outH, outW] = dy.shape;
  const sub = subPixelFilter(backend, filter, sh, sw, info.padInfo.top, info.padInfo.left);
  const [u, v] = sub.filter.shape;
  // Rows i of the phase grid: i·sh + a covers [0, inH).
  const rows = Math.ceil(inH / sh);
  const cols = Math.ceil(inW / sw);
  let r: TensorInfo;
  try {
    r = conv2d(backend, dy, sub.filter, [1, 1], [
      [0, 0],
      [sub.leadH, Math.max(0, rows + u - 1 - outH - sub.leadH)],
      [sub.leadW, Math.max(0, cols + v - 1 - outW - sub.leadW)],
      [0, 0],
    ]); // [n, ≥rows, ≥cols, sh·sw·ci]
  } finally {
    release(backend, sub.filter);
  }
  if (sh > 1 || sw > 1) {
    // Interleave the phases: [n, I, J, sh, sw, ci] → [n, I, sh, J, sw, ci] = [n, I·sh, J·sw, ci]
    // (a transpose: wasm's DepthToSpace does the same 15x slower).
    const [n, I, J] = r.shape;
    const r6 = reshape(backend, r, [n, I, J, sh, sw, inC]);
    release(backend, r);
    const t = permute(backend, r6, [0, 1, 3, 2, 4, 5]);
    release(backend, r6);
    r = reshape(backend, t, [n, I * sh, J * sw, inC]);
    release(backend, t);
  }
  return cropHW(backend, r, inH, inW);
}

// ---------------------------------------------------------------------------------------------------
// MaxPoolGrad (override: wasm's kernel is wrong and slow)

/**
 * wasm 4.22's MaxPoolGrad drops the gradient of every window whose maximum is ≤ 0 (its running max
 * starts at the smallest positive float, not −∞), so e.g. max-pooling before a ReLU, or of batch-norm
 * output, trains on wrong gradients. No composition of wasm kernels reproduces argmax routing exactly
 * (MaxPoolWithArgmax has the same defect), so this is a direct loop over the heap views, with tfjs'
 * semantics: the first maximum of each window in row-major order (strict >, NaN never selected),
 * padding excluded, overlapping windows accumulated. It is also ~10x faster than the original.
 */
function maxPoolGrad(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolGradAttrs;
  if (input.dtype !== "float32" || dy.dtype !== "float32" || input.shape.length !== 4) {
    return originalKernel(tf.MaxPoolGrad)(args) as TensorInfo;
  }
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize: n, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const out = backend.makeOutput(input.shape, "float32");
  const x = backend.typedArrayFromHeap(input) as Float32Array; // views only after the allocation
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < Ho; oh++) {
      const h0 = oh * sh - top;
      for (let ow = 0; ow < Wo; ow++) {
        const w0 = ow * sw - left;
        best.fill(-Infinity);
        where.fill(-1);
        for (let kh = 0; kh < fh; kh += dh) {
          const h = h0 + kh;
          if (h < 0 || h >= H) continue;
          for (let kw = 0; kw < fw; kw += dw) {
            const w = w0 + kw;
            if (w < 0 || w >= W) continue;
            const base = ((b * H + h) * W + w) * C;
            for (let c = 0; c < C; c++) {
              const v = x[base + c];
              if (v > best[c]) {
                best[c] = v;
                where[c] = base + c;
              }
            }
          }
        }
        const gBase = ((b * Ho + oh) * Wo + ow) * C;
        for (let c = 0; c < C; c++) if (where[c] >= 0) dx[where[c]] += g[gBase + c];
      }
    }
  }
  return out;
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
// DepthwiseConv2dNativeBackpropInput / BackpropFilter (missing: the gradients of MobileNetV2's depthwise convs)
//
// Direct loops over the forward pass's windows, one accumulation per (output pixel, tap, channel), multiplier M:
//   dx[n, h, w, c]      += dy[n, oh, ow, c·M + m] · f[kh, kw, c, m]
//   df[kh, kw, c, m]    += x[n, h, w, c] · dy[n, oh, ow, c·M + m]      with h = oh·s − top + kh·d (likewise w).
// Depthwise layers hold a few percent of a network's MACs, so plain JS costs little beside the XNNPACK convs.

function depthwiseLoops(
  info: tf.backend_util.Conv2DInfo, each: (xIndex: number, fIndex: number, dyIndex: number) => void,
): void {
  const { batchSize: n, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, outChannels: CO } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, filterHeight: fh, filterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const M = CO / C;
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++) {
        const dyBase = ((b * Ho + oh) * Wo + ow) * CO;
        for (let kh = 0; kh < fh; kh++) {
          const h = oh * sh - top + kh * dh;
          if (h < 0 || h >= H) continue;
          for (let kw = 0; kw < fw; kw++) {
            const w = ow * sw - left + kw * dw;
            if (w < 0 || w >= W) continue;
            const xBase = ((b * H + h) * W + w) * C;
            const fBase = (kh * fw + kw) * C * M;
            for (let c = 0; c < C; c++) {
              for (let m = 0; m < M; m++) each(xBase + c, fBase + c * M + m, dyBase + c * M + m);
            }
          }
        }
      }
    }
  }
}

function depthwiseInfo(xShape: number[], filterShape: number[], attrs: tf.DepthwiseConv2dNativeBackpropInputAttrs | tf.DepthwiseConv2dNativeBackpropFilterAttrs) {
  const { strides, dilations, pad, dimRoundingMode } = attrs;
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, dilations, pad, dimRoundingMode, true,
  );
}

function depthwiseBackpropInput(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const info = depthwiseInfo(attrs.inputShape, filter.shape, attrs);
  const out = backend.makeOutput(attrs.inputShape, "float32");
  const f = backend.typedArrayFromHeap(filter) as Float32Array; // views only after the allocation
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  depthwiseLoops(info, (xi, fi, gi) => { dx[xi] += g[gi] * f[fi]; });
  return out;
}

function depthwiseBackpropFilter(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = depthwiseInfo(x.shape, attrs.filterShape, attrs);
  const out = backend.makeOutput(attrs.filterShape, "float32");
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const df = backend.typedArrayFromHeap(out) as Float32Array;
  df.fill(0);
  depthwiseLoops(info, (xi, fi, gi) => { df[fi] += xs[xi] * g[gi]; });
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
export const addedKernels: readonly KernelConfig[] = [
  conv2DBackpropFilterConfig,
  { kernelName: tf.DepthwiseConv2dNativeBackpropInput, backendName: BACKEND, kernelFunc: depthwiseBackpropInput as unknown as KernelFunc },
  { kernelName: tf.DepthwiseConv2dNativeBackpropFilter, backendName: BACKEND, kernelFunc: depthwiseBackpropFilter as unknown as KernelFunc },
];

/** Replacements for slow wasm kernels (they keep the original's setup/dispose functions). */
export const overriddenKernels: readonly { kernelName: string; kernelFunc: KernelFunc }[] = [
  { kernelName: tf.Conv2DBackpropInput, kernelFunc: conv2DBackpropInput as unknown as KernelFunc },
  { kernelName: tf.BatchMatMul, kernelFunc: batchMatMul as unknown as KernelFunc },
  { kernelName: tf.MaxPoolGrad, kernelFunc: maxPoolGrad as unknown as KernelFunc },
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
