// Native kernel implementations for the "native" tfjs backend. Each kernel
// handles the float32 NHWC cases the addon supports and otherwise defers to the
// cpu backend's kernel of the same name (passed in as `fallback`).

import * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import {
  AdamUpdate, BatchNormTrain, BatchNormTrainGrad, SgdNesterovUpdate, SgdUpdate, SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad,
  composedAdamUpdate, composedBatchNormTrain, composedBatchNormTrainGrad, composedSgdNesterovUpdate, composedSgdUpdate,
  composedSoftmaxCrossEntropy, composedSoftmaxCrossEntropyGrad, type AdamAttrs, type SgdAttrs,
} from "../fused-ops.js";
import {
  SparseConv2D, SparseConv2DBackpropFilter, SparseConv2DBackpropInput, SparseMatMul, SparseMatMulGradInput,
  SparseMatMulGradWeight, composedSparseConv2D, composedSparseConv2DBackpropFilter, composedSparseConv2DBackpropInput,
  composedSparseMatMul, composedSparseMatMulGradInput, composedSparseMatMulGradWeight, type SparseConvAttrs,
} from "../sparse-ops.js";
import {
  BiasActGrad, Conv2DBiasAct, Conv2DBiasActGradFilter, Conv2DBiasActPool, Conv2DBiasActPoolGradFilter, CountZeros, MatMulBiasAct, MatMulBiasActGrad,
  MaxPoolBiasActGrad, SparseConv2DBiasAct, SparseConv2DBiasActPool, SparseConv2DBiasActPoolGrad, SparseMatMulBiasAct, composedBiasActGrad, composedConv2DBiasAct,
  composedConv2DBiasActGradFilter, composedConv2DBiasActPoolGradFilter, composedCountZeros, composedSparseConv2DBiasActPoolGrad, composedMatMulBiasAct, composedMatMulBiasActGrad,
  type Activation, type ConvBiasActAttrs,
} from "../layer-ops.js";
import { BinOp, ReduceOp, UnOp, type NativeAddon } from "./addon.js";

type TensorInfo = tf.TensorInfo;
type KernelArgs = {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
};
export type NativeKernelFunc = (args: KernelArgs, fallback: tf.KernelFunc | undefined) => TensorInfo | TensorInfo[];

/** Names of the custom kernels this backend adds (not part of tfjs). */
export const NativeReluGrad = "PrunebenchNativeReluGrad";
export const NativeBatchNormGrad = "PrunebenchNativeBatchNormGrad";
/** dy reshaped to attrs.expandedShape, broadcast to attrs.shape, divided by attrs.divisor (Sum/Mean gradients). */
export const NativeBroadcastDiv = "PrunebenchNativeBroadcastDiv";
/** dy * 2x (Square gradient). */
export const NativeSquareGrad = "PrunebenchNativeSquareGrad";

const bu = tf.backend_util;
const size = (shape: number[]): number => tf.util.sizeFromShape(shape);

function f32(backend: MathBackendCPU, t: TensorInfo | undefined): Float32Array | null {
  if (t == null || t.dtype !== "float32") return null;
  const v = backend.data.get(t.dataId)?.values;
  return v instanceof Float32Array ? v : null;
}

function i32(backend: MathBackendCPU, t: TensorInfo | undefined): Int32Array | null {
  if (t == null || t.dtype !== "int32") return null;
  const v = backend.data.get(t.dataId)?.values;
  return v instanceof Int32Array ? v : null;
}

/** Output buffer: from the backend's pool when it has one (contents unspecified). */
function alloc(backend: unknown, n: number): Float32Array {
  const pool = backend as { alloc?: (n: number) => Float32Array };
  return typeof pool.alloc === "function" ? pool.alloc(n) : new Float32Array(n);
}

/** An int32 output buffer, pooled like `alloc`'s where the backend can. */
function allocInt32(backend: unknown, n: number): Int32Array {
  const pool = backend as { allocInt32?: (n: number) => Int32Array };
  return typeof pool.allocInt32 === "function" ? pool.allocInt32(n) : new Int32Array(n);
}

function out(backend: MathBackendCPU, shape: number[], values: Float32Array): TensorInfo {
  return backend.makeTensorInfo(shape, "float32", values);
}

function fallbackOr(
  fallback: tf.KernelFunc | undefined, args: KernelArgs, name: string,
): TensorInfo | TensorInfo[] {
  if (!fallback) throw new Error(`native backend: no fallback kernel for ${name}`);
  return fallback(args as Parameters<tf.KernelFunc>[0]);
}

function convGeom(info: tf.backend_util.Conv2DInfo): number[] {
  const p = info.padInfo;
  return [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels,
    info.outHeight, info.outWidth, info.outChannels,
    info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth,
    p.top, p.bottom, p.left, p.right, info.dilationHeight, info.dilationWidth,
  ];
}

function poolGeom(info: tf.backend_util.Conv2DInfo): number[] {
  return [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels,
    info.outHeight, info.outWidth, info.effectiveFilterHeight, info.effectiveFilterWidth,
    info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, 1, 1,
  ];
}

/** Pads with zeros: tfjs reports negative padding for some 'valid'/'same' corner cases. */
function padsOk(info: tf.backend_util.Conv2DInfo): boolean {
  const p = info.padInfo;
  return p.top >= 0 && p.bottom >= 0 && p.left >= 0 && p.right >= 0;
}

export function makeKernels(addon: NativeAddon): Record<string, NativeKernelFunc> {
  const k: Record<string, NativeKernelFunc> = {};

  // ------------------------------------------------------------ convolution
  k[tf.Conv2D] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { x, filter } = args.inputs;
    const a = args.attrs as unknown as tf.Conv2DAttrs;
    const xv = f32(b, x), wv = f32(b, filter);
    if (!xv || !wv || a.dataFormat === "NCHW" || x!.shape.length !== 4) return fallbackOr(fb, args, "Conv2D");
    const info = bu.computeConv2DInfo(
      x!.shape as [number, number, number, number], filter!.shape as [number, number, number, number],
      a.strides, a.dilations, a.pad, a.dimRoundingMode, false, "channelsLast");
    if (!padsOk(info) || size(info.outShape) === 0) return fallbackOr(fb, args, "Conv2D");
    const o = alloc(b, size(info.outShape));
    addon.conv2d(xv, wv, o, convGeom(info));
    return out(b, info.outShape, o);
  };

  k[tf.Conv2DBackpropInput] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { dy, filter } = args.inputs;
    const a = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const dyv = f32(b, dy), wv = f32(b, filter);
    if (!dyv || !wv || a.dataFormat === "NCHW") return fallbackOr(fb, args, "Conv2DBackpropInput");
    const info = bu.computeConv2DInfo(
      a.inputShape as [number, number, number, number], filter!.shape as [number, number, number, number],
      a.strides, 1, a.pad, a.dimRoundingMode, false, "channelsLast");
    if (!padsOk(info) || size(a.inputShape) === 0) return fallbackOr(fb, args, "Conv2DBackpropInput");
    const o = alloc(b, size(a.inputShape));
    addon.conv2dBackpropInput(dyv, wv, o, convGeom(info));
    return out(b, [...a.inputShape], o);
  };

  k[tf.Conv2DBackpropFilter] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { x, dy } = args.inputs;
    const a = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    const xv = f32(b, x), dyv = f32(b, dy);
    if (!xv || !dyv || a.dataFormat === "NCHW") return fallbackOr(fb, args, "Conv2DBackpropFilter");
    const info = bu.computeConv2DInfo(
      x!.shape as [number, number, number, number], a.filterShape as [number, number, number, number],
      a.strides, 1, a.pad, a.dimRoundingMode, false, "channelsLast");
    if (!padsOk(info) || size(a.filterShape) === 0) return fallbackOr(fb, args, "Conv2DBackpropFilter");
    const o = alloc(b, size(a.filterShape));
    addon.conv2dBackpropFilter(xv, dyv, o, convGeom(info));
    return out(b, [...a.filterShape], o);
  };

  // ------------------------------------------------------------ matmul
  function matmul(
    b: MathBackendCPU, A: TensorInfo, B: TensorInfo, ta: boolean, tb: boolean,
  ): TensorInfo | null {
    const av = f32(b, A), bv = f32(b, B);
    if (!av || !bv || A.shape.length < 2 || B.shape.length < 2) return null;
    const ra = A.shape.length, rb = B.shape.length;
    const M = ta ? A.shape[ra - 1] : A.shape[ra - 2];
    const K = ta ? A.shape[ra - 2] : A.shape[ra - 1];
    const K2 = tb ? B.shape[rb - 1] : B.shape[rb - 2];
    const N = tb ? B.shape[rb - 2] : B.shape[rb - 1];
    if (K !== K2) return null;
    const batchShapeA = A.shape.slice(0, -2), batchShapeB = B.shape.slice(0, -2);
    const batchA = size(batchShapeA), batchB = size(batchShapeB);
    if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
    const outBatch = bu.assertAndGetBroadcastShape(batchShapeA, batchShapeB);
    if (size(outBatch) !== Math.max(batchA, batchB)) return null;
    const o = alloc(b, Math.max(batchA, batchB) * M * N);
    addon.matmul(av, bv, o, batchA, batchB, M, K, N, ta ? 1 : 0, tb ? 1 : 0);
    return out(b, [...outBatch, M, N], o);
  }

  k[tf.BatchMatMul] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { a: A, b: B } = args.inputs;
    const a = args.attrs as unknown as tf.BatchMatMulAttrs;
    const r = matmul(b, A!, B!, a.transposeA, a.transposeB);
    return r ?? fallbackOr(fb, args, "BatchMatMul");
  };

  k[tf._FusedMatMul] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { a: A, b: B, bias, preluActivationWeights } = args.inputs;
    const a = args.attrs as unknown as tf._FusedMatMulAttrs;
    if (preluActivationWeights != null || (a.activation !== "linear" && a.activation !== "relu")) {
      return fallbackOr(fb, args, "_FusedMatMul");
    }
    if (bias != null && !f32(b, bias)) return fallbackOr(fb, args, "_FusedMatMul");
    const r = matmul(b, A!, B!, a.transposeA, a.transposeB);
    if (!r) return fallbackOr(fb, args, "_FusedMatMul");
    let vals = b.data.get(r.dataId).values as Float32Array;
    let shape = r.shape;
    if (bias != null) {
      const bshape = bu.assertAndGetBroadcastShape(r.shape, bias.shape);
      const o = alloc(b, size(bshape));
      addon.binary(BinOp.add, vals, r.shape, f32(b, bias)!, bias.shape, o, bshape);
      vals = o;
      shape = bshape;
    }
    if (a.activation === "relu") addon.unary(UnOp.relu, vals, vals);
    if (vals === b.data.get(r.dataId).values) return r;
    b.disposeIntermediateTensorInfo(r);
    return out(b, shape, vals);
  };

  // ------------------------------------------------------------ pooling
  k[tf.MaxPool] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { x } = args.inputs;
    const a = args.attrs as unknown as tf.MaxPoolAttrs;
    const xv = f32(b, x);
    if (!xv || x!.shape.length !== 4) return fallbackOr(fb, args, "MaxPool");
    const info = bu.computePool2DInfo(
      x!.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    const o = alloc(b, size(info.outShape));
    addon.maxPool(xv, o, poolGeom(info));
    return out(b, info.outShape, o);
  };

  k[tf.MaxPoolGrad] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { dy, input } = args.inputs;
    const a = args.attrs as unknown as tf.MaxPoolGradAttrs;
    const dyv = f32(b, dy), xv = f32(b, input);
    if (!dyv || !xv || input!.shape.length !== 4) return fallbackOr(fb, args, "MaxPoolGrad");
    const info = bu.computePool2DInfo(
      input!.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    const o = alloc(b, size(input!.shape));
    addon.maxPoolGrad(dyv, xv, o, poolGeom(info));
    return out(b, [...input!.shape], o);
  };

  k[tf.AvgPool] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { x } = args.inputs;
    const a = args.attrs as unknown as tf.AvgPoolAttrs;
    const xv = f32(b, x);
    if (!xv || x!.shape.length !== 4) return fallbackOr(fb, args, "AvgPool");
    const info = bu.computePool2DInfo(
      x!.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    const o = alloc(b, size(info.outShape));
    addon.avgPool(xv, o, poolGeom(info));
    return out(b, info.outShape, o);
  };

  // ------------------------------------------------------------ elementwise
  const binaries: Array<[string, number]> = [
    [tf.Add, BinOp.add], [tf.Sub, BinOp.sub], [tf.Multiply, BinOp.mul], [tf.RealDiv, BinOp.div],
    [tf.SquaredDifference, BinOp.sqdiff], [tf.Maximum, BinOp.maximum], [tf.Minimum, BinOp.minimum],
  ];
  for (const [name, op] of binaries) {
    k[name] = (args, fb) => {
      const b = args.backend as MathBackendCPU;
      const { a: A, b: B } = args.inputs;
      const av = f32(b, A), bv = f32(b, B);
      if (!av || !bv) return fallbackOr(fb, args, name);
      const shape = bu.assertAndGetBroadcastShape(A!.shape, B!.shape);
      const o = alloc(b, size(shape));
      if (o.length > 0) addon.binary(op, av, A!.shape, bv, B!.shape, o, shape);
      return out(b, shape, o);
    };
  }

  k[NativeReluGrad] = (args) => {
    const b = args.backend as MathBackendCPU;
    const { dy, x } = args.inputs;
    const dyv = f32(b, dy), xv = f32(b, x);
    if (!dyv || !xv) throw new Error(`${NativeReluGrad} needs float32 dy and x`);
    const shape = bu.assertAndGetBroadcastShape(dy!.shape, x!.shape);
    const o = alloc(b, size(shape));
    if (o.length > 0) addon.binary(BinOp.reluGrad, dyv, dy!.shape, xv, x!.shape, o, shape);
    return out(b, shape, o);
  };

  k[NativeSquareGrad] = (args) => {
    const b = args.backend as MathBackendCPU;
    const { dy, x } = args.inputs;
    const dyv = f32(b, dy), xv = f32(b, x);
    if (!dyv || !xv) throw new Error(`${NativeSquareGrad} needs float32 dy and x`);
    const shape = bu.assertAndGetBroadcastShape(dy!.shape, x!.shape);
    const o = alloc(b, size(shape));
    if (o.length > 0) addon.binary(BinOp.mul2, dyv, dy!.shape, xv, x!.shape, o, shape);
    return out(b, shape, o);
  };

  k[NativeBroadcastDiv] = (args) => {
    const b = args.backend as MathBackendCPU;
    const { dy } = args.inputs;
    const a = args.attrs as unknown as { shape: number[]; expandedShape: number[]; divisor: number };
    const dyv = f32(b, dy);
    if (!dyv) throw new Error(`${NativeBroadcastDiv} needs a float32 dy`);
    const o = alloc(b, size(a.shape));
    if (o.length > 0) addon.binary(BinOp.div, dyv, a.expandedShape, new Float32Array([a.divisor]), [], o, a.shape);
    return out(b, [...a.shape], o);
  };

  const unaries: Array<[string, number]> = [
    [tf.Relu, UnOp.relu], [tf.Neg, UnOp.neg], [tf.Exp, UnOp.exp], [tf.Log, UnOp.log],
    [tf.Sqrt, UnOp.sqrt], [tf.Rsqrt, UnOp.rsqrt], [tf.Square, UnOp.square], [tf.Sigmoid, UnOp.sigmoid],
    [tf.Tanh, UnOp.tanh], [tf.Abs, UnOp.abs], [tf.Relu6, UnOp.relu6], [tf.Step, UnOp.step],
  ];
  for (const [name, op] of unaries) {
    k[name] = (args, fb) => {
      const b = args.backend as MathBackendCPU;
      const { x } = args.inputs;
      const xv = f32(b, x);
      if (!xv) return fallbackOr(fb, args, name);
      const o = alloc(b, xv.length);
      const alpha = name === tf.Step ? Number((args.attrs as { alpha?: number } | undefined)?.alpha ?? 0) : 0;
      addon.unary(op, xv, o, alpha);
      return out(b, [...x!.shape], o);
    };
  }

  k[tf.AddN] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const ts = args.inputs as unknown as TensorInfo[];
    const vs = ts.map((t) => f32(b, t));
    if (ts.length === 0 || vs.some((v) => v == null)) return fallbackOr(fb, args, "AddN");
    const o = alloc(b, vs[0]!.length);
    addon.addN(vs as Float32Array[], o);
    return out(b, [...ts[0].shape], o);
  };

  // ------------------------------------------------------------ reductions
  function reduction(name: string, op: number, axisAttr: string): NativeKernelFunc {
    return (args, fb) => {
      const b = args.backend as MathBackendCPU;
      const { x } = args.inputs;
      const xv = f32(b, x);
      if (!xv) return fallbackOr(fb, args, name);
      const attrs = (args.attrs ?? {}) as Record<string, unknown>;
      const axes = tf.util.parseAxisParam(attrs[axisAttr] as number | number[], x!.shape);
      const [outShape] = bu.computeOutAndReduceShapes(x!.shape, axes);
      const mask = x!.shape.map((_, i) => (axes.includes(i) ? 1 : 0));
      const o = alloc(b, size(outShape));
      if (xv.length === 0 && (op === ReduceOp.max || op === ReduceOp.min)) return fallbackOr(fb, args, name);
      addon.reduce(op, xv, x!.shape, mask, o);
      const shape = attrs.keepDims ? bu.expandShapeToKeepDim(outShape, axes) : outShape;
      return out(b, shape, o);
    };
  }
  k[tf.Sum] = reduction(tf.Sum, ReduceOp.sum, "axis");
  k[tf.Mean] = reduction(tf.Mean, ReduceOp.mean, "axis");
  k[tf.Max] = reduction(tf.Max, ReduceOp.max, "reductionIndices");
  k[tf.Min] = reduction(tf.Min, ReduceOp.min, "axis");

  k[tf.Softmax] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { logits } = args.inputs;
    const a = args.attrs as unknown as tf.SoftmaxAttrs;
    const xv = f32(b, logits);
    const rank = logits!.shape.length;
    if (!xv || rank === 0 || (a.dim !== -1 && a.dim !== rank - 1)) return fallbackOr(fb, args, "Softmax");
    const cols = logits!.shape[rank - 1];
    const o = alloc(b, xv.length);
    if (cols > 0) addon.softmax(xv, o, xv.length / cols, cols);
    return out(b, [...logits!.shape], o);
  };

  // ------------------------------------------------------------ data movement
  // Slice as contiguous-run copies: the cpu kernel walks every element through index arithmetic, which made the
  // gradient of an explicit pad (a slice of the padded input's gradient) 0.8 s of a 2 s ResNet-20 step.
  k[tf.Slice] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { x } = args.inputs;
    const a = args.attrs as unknown as tf.SliceAttrs;
    const xv = b.data.get(x!.dataId)?.values;
    if (!(xv instanceof Float32Array || xv instanceof Int32Array) || (x!.dtype !== "float32" && x!.dtype !== "int32")) {
      return fallbackOr(fb, args, "Slice");
    }
    const [begin, sizes] = tf.slice_util.parseSliceParams(x!, a.begin, a.size);
    const shape = x!.shape;
    const rank = shape.length;
    // The innermost axes the slice takes whole (plus the first one it cuts) form one contiguous run per outer index.
    let inner = rank;
    let run = 1;
    while (inner > 0 && begin[inner - 1] === 0 && sizes[inner - 1] === shape[inner - 1]) run *= shape[--inner];
    if (inner > 0) run *= sizes[--inner];
    const strides = new Array<number>(rank);
    for (let d = rank - 1, st = 1; d >= 0; d--) { strides[d] = st; st *= shape[d]; }
    const n = sizes.reduce((p, q) => p * q, 1);
    const o = xv instanceof Float32Array ? alloc(b, n) : new Int32Array(n);
    const runs = n === 0 ? 0 : n / run;
    const idx = new Array<number>(inner).fill(0);
    const firstOffset = begin.reduce((acc, bd, d) => acc + bd * strides[d], 0);
    for (let r = 0, dst = 0; r < runs; r++, dst += run) {
      let src = firstOffset;
      for (let d = 0; d < inner; d++) src += idx[d] * strides[d];
      if (run < 64) for (let q = 0; q < run; q++) o[dst + q] = xv[src + q];
      else o.set(xv.subarray(src, src + run), dst);
      for (let d = inner - 1; d >= 0; d--) {
        if (++idx[d] < sizes[d]) break;
        idx[d] = 0;
      }
    }
    return b.makeTensorInfo(sizes, x!.dtype, o);
  };

  // A 1x1 average pool is a strided subsample (option-A ResNet shortcuts): its gradient puts each dy value at its
  // input position and zeros elsewhere, instead of the cpu kernel's per-element window walk (150 ms of a ResNet-20 step).
  k[tf.AvgPoolGrad] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { dy, input } = args.inputs;
    const a = args.attrs as unknown as tf.AvgPoolGradAttrs;
    const [fh, fw] = typeof a.filterSize === "number" ? [a.filterSize, a.filterSize] : a.filterSize;
    const [sh, sw] = typeof a.strides === "number" ? [a.strides, a.strides] : a.strides;
    const dv = b.data.get(dy!.dataId)?.values;
    if (fh !== 1 || fw !== 1 || a.pad !== "valid" || !(dv instanceof Float32Array) || input!.shape.length !== 4) {
      return fallbackOr(fb, args, "AvgPoolGrad");
    }
    const [n, h, w, c] = input!.shape;
    const [, oh, ow] = dy!.shape;
    const o = alloc(b, n * h * w * c).fill(0);
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
          const src = ((i * oh + y) * ow + x) * c;
          const dst = ((i * h + y * sh) * w + x * sw) * c;
          for (let q = 0; q < c; q++) o[dst + q] = dv[src + q];
        }
      }
    }
    return b.makeTensorInfo(input!.shape, "float32", o);
  };

  // GatherV2 (batchDims 0) and PadV2 as contiguous row copies: the cpu kernels walk every element through
  // index arithmetic (8 ms to gather a 128 x 784 batch; 7 ms to pad LeNet-5's input).
  const gatherRows = addon.gatherRows;
  k[tf.GatherV2] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { x, indices } = args.inputs;
    const a = args.attrs as unknown as tf.GatherV2Attrs;
    const xv = b.data.get(x!.dataId)?.values;
    const iv = b.data.get(indices!.dataId)?.values;
    if ((a.batchDims ?? 0) !== 0 || indices!.dtype !== "int32" || !(iv instanceof Int32Array) ||
        !(xv instanceof Float32Array || xv instanceof Int32Array) || (x!.dtype !== "float32" && x!.dtype !== "int32")) {
      return fallbackOr(fb, args, "GatherV2");
    }
    const axis = tf.util.parseAxisParam(a.axis, x!.shape)[0];
    const rows = x!.shape[axis];
    for (let i = 0; i < iv.length; i++) if (!(iv[i] >= 0 && iv[i] < rows)) return fallbackOr(fb, args, "GatherV2");
    const outer = size(x!.shape.slice(0, axis));
    const inner = size(x!.shape.slice(axis + 1));
    const shape = [...x!.shape.slice(0, axis), ...indices!.shape, ...x!.shape.slice(axis + 1)];
    const n = outer * iv.length * inner;
    const o = xv instanceof Float32Array ? alloc(b, n) : new Int32Array(n);
    if (gatherRows && outer === 1 && inner >= 64 && xv instanceof Float32Array && o instanceof Float32Array) {
      gatherRows.call(addon, xv, iv, inner, o);
      return b.makeTensorInfo(shape, x!.dtype, o);
    }
    for (let p = 0, dst = 0; p < outer; p++) {
      const base = p * rows * inner;
      if (inner === 1) {
        for (let j = 0; j < iv.length; j++) o[dst++] = xv[base + iv[j]];
      } else {
        for (let j = 0; j < iv.length; j++, dst += inner) {
          const src = base + iv[j] * inner;
          if (inner < 64) for (let q = 0; q < inner; q++) o[dst + q] = xv[src + q];
          else o.set(xv.subarray(src, src + inner), dst);
        }
      }
    }
    return b.makeTensorInfo(shape, x!.dtype, o);
  };

  k[tf.PadV2] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { x } = args.inputs;
    const a = args.attrs as unknown as tf.PadV2Attrs;
    const xv = f32(b, x);
    const r = x!.shape.length;
    if (!xv || r === 0 || a.paddings.length !== r || a.paddings.some(([p, q]) => p < 0 || q < 0)) {
      return fallbackOr(fb, args, "PadV2");
    }
    const shape = x!.shape.map((d, i) => d + a.paddings[i][0] + a.paddings[i][1]);
    const o = alloc(b, size(shape));
    o.fill(a.constantValue ?? 0);
    if (xv.length === 0) return out(b, shape, o);
    // Merge trailing unpadded dims into the one before them, so rows are as long as possible
    // (LeNet-5's [N, 28, 28, 1] input padded in H and W copies rows of 28, not of 1).
    const xs = [...x!.shape];
    const pads = a.paddings.map(([p, q]) => [p, q]);
    while (xs.length > 1 && pads[xs.length - 1][0] === 0 && pads[xs.length - 1][1] === 0) {
      const inner = xs.pop()!;
      pads.pop();
      xs[xs.length - 1] *= inner;
      pads[xs.length - 1] = [pads[xs.length - 1][0] * inner, pads[xs.length - 1][1] * inner];
    }
    const rr = xs.length;
    const os = xs.map((d, i) => d + pads[i][0] + pads[i][1]);
    const ostr = new Array<number>(rr);
    ostr[rr - 1] = 1;
    for (let i = rr - 2; i >= 0; i--) ostr[i] = ostr[i + 1] * os[i + 1];
    const last = xs[rr - 1];
    const rowsX = xv.length / last;
    const idx = new Array<number>(rr).fill(0);
    let dst = 0;
    for (let i = 0; i < rr; i++) dst += pads[i][0] * ostr[i];
    for (let row = 0, src = 0; row < rowsX; row++, src += last) {
      if (last < 64) for (let j = 0; j < last; j++) o[dst + j] = xv[src + j];
      else o.set(xv.subarray(src, src + last), dst);
      for (let d = rr - 2; d >= 0; d--) {
        dst += ostr[d];
        if (++idx[d] < xs[d]) break;
        dst -= ostr[d] * xs[d];
        idx[d] = 0;
      }
    }
    return out(b, shape, o);
  };

  // ------------------------------------------------------------ batch norm
  /** Parameter values when its size is 1 or the channel count, else undefined. */
  function chan(b: MathBackendCPU, t: TensorInfo | undefined, C: number): Float32Array | null | undefined {
    if (t == null) return null;
    const v = f32(b, t);
    if (!v || (v.length !== C && v.length !== 1)) return undefined;
    return v;
  }

  k[tf.FusedBatchNorm] = (args, fb) => {
    const b = args.backend as MathBackendCPU;
    const { x, mean, variance, offset, scale } = args.inputs;
    const a = args.attrs as unknown as tf.FusedBatchNormAttrs;
    const xv = f32(b, x);
    if (!xv || x!.shape.length === 0) return fallbackOr(fb, args, "FusedBatchNorm");
    const C = x!.shape[x!.shape.length - 1];
    const mv = chan(b, mean, C), vv = chan(b, variance, C), ov = chan(b, offset, C), sv = chan(b, scale, C);
    if (!mv || !vv || ov === undefined || sv === undefined || C === 0) return fallbackOr(fb, args, "FusedBatchNorm");
    const o = alloc(b, xv.length);
    addon.batchNorm(xv, mv, vv, ov, sv, o, C, a.varianceEpsilon ?? 0.001);
    return out(b, [...x!.shape], o);
  };

  // outputs: dx, dmean, dvar, dscale, doffset (per-channel ones of shape [C])
  k[NativeBatchNormGrad] = (args) => {
    const b = args.backend as MathBackendCPU;
    const { dy, x, mean, variance, scale } = args.inputs;
    const eps = Number((args.attrs as { varianceEpsilon?: number }).varianceEpsilon ?? 0.001);
    const xv = f32(b, x), dyv = f32(b, dy);
    const C = x!.shape[x!.shape.length - 1];
    const mv = chan(b, mean, C), vv = chan(b, variance, C), sv = chan(b, scale, C);
    if (!xv || !dyv || !mv || !vv || sv === undefined) throw new Error(`${NativeBatchNormGrad}: unsupported inputs`);
    const dx = alloc(b, xv.length);
    const dm = new Float32Array(C), dv = new Float32Array(C), ds = new Float32Array(C), doff = new Float32Array(C);
    addon.batchNormGrad(dyv, xv, mv, vv, sv, C, eps, dx, dm, dv, ds, doff);
    return [out(b, [...x!.shape], dx), out(b, [C], dm), out(b, [C], dv), out(b, [C], ds), out(b, [C], doff)];
  };

  // Fused training batch norm (registered only when the addon exports it). Inputs it cannot run (another
  // dtype, rank < 2, parameters not of shape [C], no elements) take the composed tfjs-op implementation.
  const bnTrain = addon.batchNormTrain, bnTrainGrad = addon.batchNormTrainGrad;
  if (bnTrain && bnTrainGrad) {
    k[BatchNormTrain] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { x, scale, offset } = args.inputs;
      const eps = Number((args.attrs as { varianceEpsilon?: number } | undefined)?.varianceEpsilon ?? 0.001);
      const xv = f32(b, x), sv = f32(b, scale), ov = f32(b, offset);
      const C = x!.shape[x!.shape.length - 1];
      if (!xv || !sv || !ov || x!.shape.length < 2 || sv.length !== C || ov.length !== C || xv.length === 0) {
        return composedBatchNormTrain(args as Parameters<tf.KernelFunc>[0]);
      }
      const y = alloc(b, xv.length), mean = new Float32Array(C), variance = new Float32Array(C);
      bnTrain.call(addon, xv, sv, ov, C, eps, y, mean, variance);
      return [out(b, [...x!.shape], y), out(b, [C], mean), out(b, [C], variance)];
    };
    k[BatchNormTrainGrad] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { dy, x, mean, variance, scale } = args.inputs;
      const eps = Number((args.attrs as { varianceEpsilon?: number } | undefined)?.varianceEpsilon ?? 0.001);
      const dyv = f32(b, dy), xv = f32(b, x), mv = f32(b, mean), vv = f32(b, variance), sv = f32(b, scale);
      const C = x!.shape[x!.shape.length - 1];
      if (!dyv || !xv || !mv || !vv || !sv || x!.shape.length < 2 || dyv.length !== xv.length || xv.length === 0 ||
          mv.length !== C || vv.length !== C || sv.length !== C) {
        return composedBatchNormTrainGrad(args as Parameters<tf.KernelFunc>[0]);
      }
      const dx = alloc(b, xv.length), dscale = new Float32Array(C), doffset = new Float32Array(C);
      bnTrainGrad.call(addon, dyv, xv, mv, vv, sv, C, eps, dx, dscale, doffset);
      return [out(b, [...x!.shape], dx), out(b, [...scale!.shape], dscale), out(b, [C], doffset)];
    };
  }

  // Fused optimizer updates: one native pass per tensor, written into the variables' own arrays when nothing
  // else can see them (see `target`). Anything else (another dtype, a size mismatch, a backend without the
  // pool) takes the composed tfjs-op implementation.
  const sgdUpdate = addon.sgdUpdate, adamUpdate = addon.adamUpdate;
  if (sgdUpdate && adamUpdate) {
    k[SgdUpdate] = (args) => {
      const b = args.backend as MathBackendCPU & Partial<InPlace>;
      const { w, g, v, mask } = args.inputs;
      const a = args.attrs as unknown as SgdAttrs;
      const vals = updateInputs(b, w!, g, mask, v ? [v] : []);
      if (!vals) return composedSgdUpdate(args as Parameters<tf.KernelFunc>[0]);
      const wt = target(vals.b, w!, false), vt = v ? target(vals.b, v, true) : null;
      sgdUpdate.call(addon, vals.w, vals.g, vt?.values ?? null, vals.mask, wt.values, a.lr, a.momentum, a.weightDecay > 0 ? a.weightDecay : 0);
      return vt ? [wt.done(), vt.done()] : [wt.done()];
    };
    const nesterov = addon.sgdNesterovUpdate;
    if (nesterov) {
      k[SgdNesterovUpdate] = (args) => {
        const b = args.backend as MathBackendCPU & Partial<InPlace>;
        const { w, g, v, mask } = args.inputs;
        const a = args.attrs as unknown as SgdAttrs;
        const vals = updateInputs(b, w!, g, mask, v ? [v] : []);
        if (!vals) return composedSgdNesterovUpdate(args as Parameters<tf.KernelFunc>[0]);
        const wt = target(vals.b, w!, false), vt = v ? target(vals.b, v, true) : null;
        nesterov.call(addon, vals.w, vals.g, vt?.values ?? null, vals.mask, wt.values, a.lr, a.momentum, a.weightDecay > 0 ? a.weightDecay : 0);
        return vt ? [wt.done(), vt.done()] : [wt.done()];
      };
    }
    k[AdamUpdate] = (args) => {
      const b = args.backend as MathBackendCPU & Partial<InPlace>;
      const { w, g, m, v, mask } = args.inputs;
      const a = args.attrs as unknown as AdamAttrs;
      const vals = updateInputs(b, w!, g, mask, [m, v]);
      if (!vals) return composedAdamUpdate(args as Parameters<tf.KernelFunc>[0]);
      const wt = target(vals.b, w!, false), mt = target(vals.b, m!, true), vt = target(vals.b, v!, true);
      adamUpdate.call(addon, vals.w, vals.g, mt.values!, vt.values!, vals.mask, wt.values, a.lr, a.beta1, a.beta2,
        1 - a.beta1, 1 - a.beta2, a.epsilon, a.weightDecay > 0 ? a.weightDecay : 0);
      return [wt.done(), mt.done(), vt.done()];
    };
  }

  /** The sparse kernels' conv geometry (stride 1, dilation 1, non-negative padding), else null. */
  const geom = (xShape: number[], wShape: number[], a: SparseConvAttrs): number[] | null => {
    if (xShape.length !== 4 || wShape.length !== 4) return null;
    const info = bu.computeConv2DInfo(xShape as [number, number, number, number], wShape as [number, number, number, number],
      a.strides, 1, a.pad, undefined, false, "channelsLast");
    if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1 ||
        !padsOk(info) || size(info.outShape) === 0 || size(info.inShape) === 0) return null;
    const p = info.padInfo;
    return [info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth, info.outChannels,
      info.filterHeight, info.filterWidth, p.top, p.bottom, p.left, p.right];
  };

  // Sparse (masked) layers: stride-1 convs and 2-d matmuls; anything else (strides, dilations, other dtypes or ranks)
  // takes the composed implementation, i.e. the dense kernels.
  const spConv = addon.sparseConv2d, spConvIn = addon.sparseConv2dGradInput, spConvW = addon.sparseConv2dGradFilter;
  const spMm = addon.sparseMatMul, spMmIn = addon.sparseMatMulGradInput, spMmW = addon.sparseMatMulGradWeight;
  if (spConv && spConvIn && spConvW && spMm && spMmIn && spMmW) {
    type Composed = (args: Parameters<tf.KernelFunc>[0]) => TensorInfo | TensorInfo[];
    const or = (fn: Composed, args: KernelArgs) => fn(args as Parameters<tf.KernelFunc>[0]);

    k[SparseConv2D] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { x, filter, pattern } = args.inputs;
      const xv = f32(b, x), wv = f32(b, filter), pv = i32(b, pattern);
      const g = xv && wv && pv ? geom(x!.shape, filter!.shape, args.attrs as unknown as SparseConvAttrs) : null;
      if (!g) return or(composedSparseConv2D, args);
      const shape = [g[0], g[4], g[5], g[6]];
      const o = alloc(b, size(shape));
      spConv.call(addon, xv!, wv!, pv!, o, g);
      return out(b, shape, o);
    };
    k[SparseConv2DBackpropInput] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { dy, filter, pattern } = args.inputs;
      const a = args.attrs as unknown as SparseConvAttrs & { inputShape: number[] };
      const dyv = f32(b, dy), wv = f32(b, filter), pv = i32(b, pattern);
      const g = dyv && wv && pv ? geom(a.inputShape, filter!.shape, a) : null;
      if (!g) return or(composedSparseConv2DBackpropInput, args);
      const o = alloc(b, size(a.inputShape));
      spConvIn.call(addon, dyv!, wv!, pv!, o, g);
      return out(b, [...a.inputShape], o);
    };
    k[SparseConv2DBackpropFilter] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { x, dy, pattern } = args.inputs;
      const a = args.attrs as unknown as SparseConvAttrs & { filterShape: number[] };
      const xv = f32(b, x), dyv = f32(b, dy), pv = i32(b, pattern);
      const g = xv && dyv && pv ? geom(x!.shape, a.filterShape, a) : null;
      if (!g) return or(composedSparseConv2DBackpropFilter, args);
      const o = alloc(b, size(a.filterShape));
      spConvW.call(addon, xv!, dyv!, pv!, o, g);
      return out(b, [...a.filterShape], o);
    };
    k[SparseMatMul] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { a: A, b: W, pattern } = args.inputs;
      const av = f32(b, A), wv = f32(b, W), pv = i32(b, pattern);
      if (!av || !wv || !pv || A!.shape.length !== 2 || W!.shape.length !== 2 || A!.shape[1] !== W!.shape[0] || av.length === 0) {
        return or(composedSparseMatMul, args);
      }
      const [B, K] = A!.shape, N = W!.shape[1];
      const o = alloc(b, B * N);
      spMm.call(addon, av, wv, pv, o, B, K, N);
      return out(b, [B, N], o);
    };
    k[SparseMatMulGradInput] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { dy, b: W, pattern } = args.inputs;
      const dyv = f32(b, dy), wv = f32(b, W), pv = i32(b, pattern);
      if (!dyv || !wv || !pv || dy!.shape.length !== 2 || W!.shape.length !== 2 || dy!.shape[1] !== W!.shape[1] || dyv.length === 0) {
        return or(composedSparseMatMulGradInput, args);
      }
      const [B, N] = dy!.shape, K = W!.shape[0];
      const o = alloc(b, B * K);
      spMmIn.call(addon, dyv, wv, pv, o, B, K, N);
      return out(b, [B, K], o);
    };
    k[SparseMatMulGradWeight] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { a: A, dy, pattern } = args.inputs;
      const av = f32(b, A), dyv = f32(b, dy), pv = i32(b, pattern);
      if (!av || !dyv || !pv || A!.shape.length !== 2 || dy!.shape.length !== 2 || A!.shape[0] !== dy!.shape[0]) {
        return or(composedSparseMatMulGradWeight, args);
      }
      const [B, K] = A!.shape, N = dy!.shape[1];
      const o = alloc(b, K * N);
      spMmW.call(addon, av, dyv, pv, o, B, K, N);
      return out(b, [K, N], o);
    };
  }

  // The training loss and its gradient (src/backend/fused-ops.ts) as loops in the addon: a batch's logits are a few
  // thousand floats, and the composed ops cost ~25 kernel dispatches. Each value is the composed ops' float32
  // operation in the same order (max, exp(x - max), the row sum in double rounded once, log, the log-softmax, the
  // batch sum in double, the mean's division), so results differ from them by exp/log rounding at most. Inputs the
  // loops do not take (and an addon built before them) run the composed ops.
  const lossInputs = (b: MathBackendCPU, logits: TensorInfo | undefined, labels: TensorInfo | undefined) => {
    const xv = f32(b, logits), yv = i32(b, labels);
    if (!xv || !yv || logits!.shape.length !== 2 || labels!.shape.length !== 1 || yv.length !== logits!.shape[0] || xv.length === 0) return null;
    return { xv, yv, B: logits!.shape[0], C: logits!.shape[1] };
  };
  const composedOr = (fn: (args: Parameters<tf.KernelFunc>[0]) => TensorInfo | TensorInfo[], args: KernelArgs) => fn(args as Parameters<tf.KernelFunc>[0]);
  const nativeLoss = addon.softmaxCrossEntropy, nativeLossGrad = addon.softmaxCrossEntropyGrad;

  k[SoftmaxCrossEntropy] = (args) => {
    const b = args.backend as MathBackendCPU;
    const v = nativeLoss && lossInputs(b, args.inputs.logits, args.inputs.labels);
    if (!v) return composedOr(composedSoftmaxCrossEntropy, args);
    const r = new Float32Array(2);
    nativeLoss.call(addon, v.xv, v.yv, v.B, v.C, r);
    return [out(b, [], Float32Array.of(r[0])), out(b, [], Float32Array.of(r[1]))];
  };

  k[SoftmaxCrossEntropyGrad] = (args) => {
    const b = args.backend as MathBackendCPU;
    const v = nativeLossGrad && lossInputs(b, args.inputs.logits, args.inputs.labels);
    const dyv = f32(b, args.inputs.dy);
    if (!v || !dyv || dyv.length !== 1) return composedOr(composedSoftmaxCrossEntropyGrad, args);
    const o = alloc(b, v.xv.length);
    nativeLossGrad.call(addon, v.xv, v.yv, dyv[0], v.B, v.C, o);
    return out(b, [v.B, v.C], o);
  };

  // Layers with their bias add and activation fused (src/backend/layer-ops.ts): the conv's or matmul's result gets the
  // epilogue in the same pass that writes it (convs) or in one pass over the L2-resident result (matmuls). Inputs the
  // conv / matmul kernels above would not run natively take the composed implementation.
  const biasAct = addon.biasAct, biasActGrad = addon.biasActGrad, countZeros = addon.countZeros;
  if (biasAct && biasActGrad && countZeros && spConv && spMm) {
    type Composed = (args: Parameters<tf.KernelFunc>[0]) => TensorInfo | TensorInfo[];
    const or = (fn: Composed, args: KernelArgs) => fn(args as Parameters<tf.KernelFunc>[0]);
    const relu = (a: Activation) => (a === "relu" ? 1 : 0);
    /** The bias's values when it is a float32 vector of the output channels, else null. */
    const biasOf = (b: MathBackendCPU, t: TensorInfo | undefined, C: number) => {
      const v = f32(b, t);
      return v && t!.shape.length === 1 && v.length === C ? v : null;
    };

    /** act(conv + bias) of a (Sparse)Conv2DBiasAct call, into an array from `make`; null where the addon does not take it. */
    const convBiasActInto = (b: MathBackendCPU, args: KernelArgs, sparse: boolean, make: (n: number) => Float32Array) => {
      const { x, filter, bias, pattern } = args.inputs;
      const a = args.attrs as unknown as ConvBiasActAttrs;
      const xv = f32(b, x), wv = f32(b, filter);
      if (!xv || !wv) return null;
      if (sparse) {
        const pv = i32(b, pattern);
        const g = pv ? geom(x!.shape, filter!.shape, a) : null;
        const bv = g ? biasOf(b, bias, g[6]) : null;
        if (!g || !bv) return null;
        const shape = [g[0], g[4], g[5], g[6]];
        const o = make(size(shape));
        spConv.call(addon, xv, wv, pv!, o, g, bv, relu(a.activation));
        return { values: o, shape };
      }
      if (x!.shape.length !== 4 || filter!.shape.length !== 4) return null;
      const info = bu.computeConv2DInfo(
        x!.shape as [number, number, number, number], filter!.shape as [number, number, number, number],
        a.strides, 1, a.pad, undefined, false, "channelsLast");
      const bv = biasOf(b, bias, info.outChannels);
      if (!bv || !padsOk(info) || size(info.outShape) === 0) return null;
      const o = make(size(info.outShape));
      addon.conv2d(xv, wv, o, convGeom(info), bv, relu(a.activation));
      return { values: o, shape: info.outShape as number[] };
    };
    const convBiasAct = (args: KernelArgs, sparse: boolean): TensorInfo | TensorInfo[] => {
      const b = args.backend as MathBackendCPU;
      const r = convBiasActInto(b, args, sparse, (n) => alloc(b, n));
      return r ? out(b, r.shape, r.values) : or(composedConv2DBiasAct, args);
    };
    k[Conv2DBiasAct] = (args) => convBiasAct(args, false);
    k[SparseConv2DBiasAct] = (args) => convBiasAct(args, true);

    // The pooled layer (layer-ops' Conv2DBiasActPool): its conv output lives in one array kept between calls (calls run
    // one at a time), so the [N, H, W, C] activations never become a tensor; the pool pass keeps p and the codes.
    const poolCode = addon.maxPoolCode, poolRoute = addon.maxPoolRoute, poolGradFilter = addon.convPoolGradFilter, small = addon.convPoolSmall;
    const sparsePool = addon.sparseConvPool, sparsePoolGrads = addon.sparseConvPoolGrads;
    if (poolCode && poolRoute && poolGradFilter && small) {
      let convOut = new Float32Array(0);
      const scratch = (n: number) => {
        if (convOut.length < n) convOut = new Float32Array(n);
        return convOut.subarray(0, n);
      };
      const convPool = (args: KernelArgs, sparse: boolean): TensorInfo[] => {
        const b = args.backend as MathBackendCPU;
        const a = args.attrs as unknown as ConvBiasActAttrs & { countZeros?: boolean };
        const zeros = new Float32Array(1);
        const outputs = (shape: number[], p: Float32Array, code: Int32Array) => [out(b, shape, p), b.makeTensorInfo(shape, "int32", code), out(b, [], zeros)];
        // The direct kernels' convs: conv and pool chunk by chunk in the addon. Else the buffers go to the path below.
        const { x, filter, bias, pattern } = args.inputs;
        const xv = f32(b, x), wv = f32(b, filter), pv = sparse ? i32(b, pattern) : null;
        const g = xv && wv && (!sparse || pv) ? geom(x!.shape, filter!.shape, a) : null;
        const bv = g ? biasOf(b, bias, g[6]) : null;
        let buffers: { p: Float32Array; code: Int32Array } | null = null;
        if (g && bv && g[4] % 2 === 0 && g[5] % 2 === 0) {
          const shape = [g[0], g[4] / 2, g[5] / 2, g[6]];
          buffers = { p: alloc(b, size(shape)), code: allocInt32(b, size(shape)) };
          const z = a.countZeros ? zeros : null;
          if (small.call(addon, xv!, wv!, bv, buffers.p, buffers.code, g, z, pv)) return outputs(shape, buffers.p, buffers.code);
          // The sparse kernels' convs: conv and pool image by image in the addon.
          if (pv && sparsePool?.call(addon, xv!, wv!, bv, buffers.p, buffers.code, g, z, pv)) return outputs(shape, buffers.p, buffers.code);
        }
        let r = convBiasActInto(b, args, sparse, scratch);
        // Inputs the addon's convs do not take: the composed conv, its output read and dropped.
        const composed = r ? null : (or(composedConv2DBiasAct, args) as TensorInfo);
        if (composed) r = { values: f32(b, composed)!, shape: [...composed.shape] };
        const [N, H, W, C] = r!.shape;
        if (H % 2 || W % 2) throw new Error(`${Conv2DBiasActPool}: the conv's output is ${H}x${W}, and the pool needs even sides`);
        const shape = [N, H / 2, W / 2, C];
        if (buffers?.p.length !== size(shape)) buffers = { p: alloc(b, size(shape)), code: allocInt32(b, size(shape)) };
        poolCode.call(addon, r!.values, buffers.p, buffers.code, N, H, W, C, a.countZeros ? zeros : null);
        if (composed) b.disposeIntermediateTensorInfo(composed);
        return outputs(shape, buffers.p, buffers.code);
      };
      k[Conv2DBiasActPool] = (args) => convPool(args, false);
      k[SparseConv2DBiasActPool] = (args) => convPool(args, true);

      k[MaxPoolBiasActGrad] = (args) => {
        const b = args.backend as MathBackendCPU;
        const { dp, code } = args.inputs;
        const dpv = f32(b, dp), cv = i32(b, code);
        if (!dpv || !cv || dp!.shape.length !== 4 || cv.length !== dpv.length) {
          throw new Error(`${MaxPoolBiasActGrad}: needs a float32 [N, H, W, C] gradient and its int32 codes`);
        }
        const [N, PH, PW, C] = dp!.shape;
        const dz = alloc(b, 4 * dpv.length), db = new Float32Array(C);
        poolRoute.call(addon, dpv, cv, dz, db, N, PH, PW, C);
        return [out(b, [N, 2 * PH, 2 * PW, C], dz), out(b, [C], db)];
      };

      // The direct kernels where they take the conv (each image's dz routed in cache); else the separate kernels.
      k[Conv2DBiasActPoolGradFilter] = (args) => {
        const b = args.backend as MathBackendCPU;
        const { x, dp, code, pattern } = args.inputs;
        const a = args.attrs as unknown as ConvBiasActAttrs & { filterShape: number[] };
        const xv = f32(b, x), dpv = f32(b, dp), cv = i32(b, code), pv = pattern ? i32(b, pattern) : null;
        const g = xv && dpv && cv && (!pattern || pv) ? geom(x!.shape, a.filterShape, a) : null;
        if (g && 4 * dpv!.length === g[0] * g[4] * g[5] * g[6] && cv!.length === dpv!.length) {
          const dw = alloc(b, size(a.filterShape)), db = new Float32Array(g[6]);
          if (poolGradFilter.call(addon, xv!, dpv!, cv!, dw, db, g, pv)) return [out(b, [...a.filterShape], dw), out(b, [g[6]], db)];
        }
        return or(composedConv2DBiasActPoolGradFilter, args);
      };

      // The sparse layer's three gradients in one pass where the addon's sparse kernels take both; else the separate
      // kernels (the scatter kernels' side of their cost edges), and the output buffers wait for the next call.
      let spare: { dx: Float32Array; dw: Float32Array } | null = null;
      k[SparseConv2DBiasActPoolGrad] = (args) => {
        const b = args.backend as MathBackendCPU;
        const { x, filter, dp, code, pattern } = args.inputs;
        const xv = f32(b, x), wv = f32(b, filter), dpv = f32(b, dp), cv = i32(b, code), pv = i32(b, pattern);
        const g = sparsePoolGrads && xv && wv && dpv && cv && pv ? geom(x!.shape, filter!.shape, args.attrs as unknown as SparseConvAttrs) : null;
        if (g && 4 * dpv!.length === g[0] * g[4] * g[5] * g[6] && cv!.length === dpv!.length) {
          const fits = spare?.dx.length === xv!.length && spare.dw.length === wv!.length;
          const dx = fits ? spare!.dx : alloc(b, xv!.length), dw = fits ? spare!.dw : alloc(b, wv!.length), db = new Float32Array(g[6]);
          spare = null;
          if (sparsePoolGrads!.call(addon, xv!, wv!, dpv!, cv!, pv!, dx, dw, db, g)) {
            return [out(b, [...x!.shape], dx), out(b, [...filter!.shape], dw), out(b, [g[6]], db)];
          }
          spare = { dx, dw };
        }
        return or(composedSparseConv2DBiasActPoolGrad, args);
      };
    }

    const matMulBiasAct = (args: KernelArgs, sparse: boolean): TensorInfo | TensorInfo[] => {
      const b = args.backend as MathBackendCPU;
      const { a: A, b: W, bias, pattern } = args.inputs;
      const activation = (args.attrs as unknown as { activation: Activation }).activation;
      const av = f32(b, A), wv = f32(b, W), pv = sparse ? i32(b, pattern) : null;
      const fits = av && wv && (!sparse || pv) && A!.shape.length === 2 && W!.shape.length === 2 && A!.shape[1] === W!.shape[0] &&
        av.length > 0 && W!.shape[1] > 0;
      const bv = fits ? biasOf(b, bias, W!.shape[1]) : null;
      if (!bv) return or(composedMatMulBiasAct, args);
      const [B, K] = A!.shape, N = W!.shape[1];
      if (sparse) {
        const o = alloc(b, B * N);
        spMm.call(addon, av!, wv!, pv!, o, B, K, N);
        biasAct.call(addon, o, bv, o, B, N, relu(activation));
        return out(b, [B, N], o);
      }
      const r = matmul(b, A!, W!, false, false);
      if (!r) return or(composedMatMulBiasAct, args);
      const o = b.data.get(r.dataId).values as Float32Array;
      biasAct.call(addon, o, bv, o, B, N, relu(activation));
      return r;
    };
    k[MatMulBiasAct] = (args) => matMulBiasAct(args, false);
    k[SparseMatMulBiasAct] = (args) => matMulBiasAct(args, true);

    k[BiasActGrad] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { dy, y } = args.inputs;
      const activation = (args.attrs as unknown as { activation: Activation }).activation;
      const dyv = f32(b, dy), yv = f32(b, y);
      const C = y!.shape[y!.shape.length - 1] ?? 0;
      if (!dyv || !yv || y!.shape.length < 2 || dyv.length !== yv.length || yv.length === 0 || C === 0) {
        return or(composedBiasActGrad, args);
      }
      const dz = alloc(b, yv.length), db = new Float32Array(C);
      biasActGrad.call(addon, dyv, yv, dz, db, yv.length / C, C, relu(activation));
      return [out(b, [...y!.shape], dz), out(b, [C], db)];
    };

    // The conv layer's filter and bias gradients without dz written out, where the addon's direct kernels take the conv
    // (it says false otherwise); everything else composes BiasActGrad and the filter gradient kernels.
    const convGradFilter = addon.convBiasActGradFilter;
    k[Conv2DBiasActGradFilter] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { x, dy, y, pattern } = args.inputs;
      const a = args.attrs as unknown as ConvBiasActAttrs & { filterShape: number[] };
      const xv = f32(b, x), dyv = f32(b, dy), yv = f32(b, y), pv = pattern ? i32(b, pattern) : null;
      const g = convGradFilter && xv && dyv && yv && (!pattern || pv) ? geom(x!.shape, a.filterShape, a) : null;
      if (g && dyv!.length === yv!.length && yv!.length === g[0] * g[4] * g[5] * g[6]) {
        const dw = alloc(b, size(a.filterShape)), db = new Float32Array(g[6]);
        if (convGradFilter!.call(addon, xv!, dyv!, yv!, dw, db, g, relu(a.activation), pv)) {
          return [out(b, [...a.filterShape], dw), out(b, [g[6]], db)];
        }
      }
      return or(composedConv2DBiasActGradFilter, args);
    };

    // BiasActGrad's pass, then aᵀ·dz straight into the addon's sgemm (the BatchMatMul kernel's call for tf.matMul(a, dz,
    // true, false): the same bits).
    k[MatMulBiasActGrad] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { dy, y, a } = args.inputs;
      const activation = (args.attrs as unknown as { activation: Activation }).activation;
      const dyv = f32(b, dy), yv = f32(b, y), av = f32(b, a);
      if (!dyv || !yv || !av || y!.shape.length !== 2 || a!.shape.length !== 2 || dyv.length !== yv.length ||
          a!.shape[0] !== y!.shape[0] || yv.length === 0 || av.length === 0) {
        return or(composedMatMulBiasActGrad, args);
      }
      const [B, N] = y!.shape, K = a!.shape[1];
      const dz = alloc(b, yv.length), db = new Float32Array(N), dw = alloc(b, K * N);
      biasActGrad.call(addon, dyv, yv, dz, db, B, N, relu(activation));
      addon.matmul(av, dz, dw, 1, 1, K, B, N, 1, 0);
      return [out(b, [B, N], dz), out(b, [N], db), out(b, [K, N], dw)];
    };

    k[CountZeros] = (args) => {
      const b = args.backend as MathBackendCPU;
      const { x } = args.inputs;
      const xv = f32(b, x);
      if (!xv) return or(composedCountZeros, args);
      const o = new Float32Array(1);
      countZeros.call(addon, xv, o);
      return out(b, [], o);
    };
  }

  return k;
}

/** What the native backend (./index.ts) offers for writing a tensor's values in place. */
export interface InPlace {
  updatable(dataId: object): Float32Array | null;
  commitValues(dataId: object, values: Float32Array): void;
  alloc(n: number): Float32Array;
}

interface UpdateArrays { b: MathBackendCPU & InPlace; w: Float32Array; g: Float32Array; mask: Float32Array | null }

/**
 * The float32 arrays an update reads, or null when the backend cannot write in place or an input (gradient,
 * mask, optimizer state) is missing, not float32 or not of w's size.
 */
function updateInputs(
  b: MathBackendCPU & Partial<InPlace>, w: TensorInfo, g: TensorInfo | undefined, mask: TensorInfo | undefined,
  state: Array<TensorInfo | undefined>,
): UpdateArrays | null {
  if (typeof b.updatable !== "function" || typeof b.commitValues !== "function" || typeof b.alloc !== "function") return null;
  const wv = f32(b, w), gv = f32(b, g);
  const fits = (t: TensorInfo | undefined) => f32(b, t)?.length === wv!.length;
  if (!wv || !gv || gv.length !== wv.length || (mask && !fits(mask)) || !state.every(fits)) return null;
  return { b: b as MathBackendCPU & InPlace, w: wv, g: gv, mask: mask ? f32(b, mask) : null };
}

/**
 * Where an update writes the new values of input `t`: its own array, or a copy-on-write replacement installed
 * under the same data, when no other tensor shares that data (`done` then returns `t`'s data, one reference
 * more); else a fresh tensor. `keep`: the array must start with t's values (the addon updates it in place).
 */
export function target(b: MathBackendCPU & InPlace, t: TensorInfo, keep: boolean): { values: Float32Array; done(): TensorInfo } {
  const cur = f32(b, t)!;
  const own = b.updatable(t.dataId);
  const values = own ?? b.alloc(cur.length);
  if (keep && values !== cur) values.set(cur);
  if (!own) return { values, done: () => out(b, [...t.shape], values) };
  return {
    values,
    done: () => {
      b.commitValues(t.dataId, values);
      b.incRef(t.dataId);
      return { dataId: t.dataId, shape: [...t.shape], dtype: "float32" };
    },
  };
}
