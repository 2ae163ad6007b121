// tfjs' own kernels on the torch backend, each a short mapping to ATen operators (schemas as in PyTorch 1.13 and 2.x).
//
// Layout: tfjs keeps images NHWC and filters HWIO; ATen's convolutions and pools take NCHW / OIHW. An NHWC tensor
// permuted to NCHW is a view with channels-last strides, no copy: cuDNN (and oneDNN on the CPU) run channels-last
// convolutions natively, and their outputs come back channels-last, so permuting them back to NHWC is again a
// contiguous view. Filters are permuted the same way (a view); ATen makes the small weight tensor contiguous in the
// input's memory format itself. Uneven 'same' padding (stride 2 on even sizes) is not expressible in ATen's symmetric
// padding: such inputs are padded explicitly (zeros for convs, -inf for max pooling) and the gradients sliced back.
import * as tf from "@tensorflow/tfjs-core";
import type { TorchTensor } from "./addon.js";
import type { TorchBackend, TorchKernel } from "./index.js";

type Args = Parameters<TorchKernel>[0];

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];
const HWIO_TO_OIHW = [3, 2, 0, 1];

/** The cpu backend's kernel for `name`, run on host copies: for inputs a mapping below does not take. */
export function hostFallback(name: string, args: Args): tf.TensorInfo | tf.TensorInfo[] {
  const k = tf.getKernel(name, "cpu");
  if (!k) throw new Error(`torch backend: ${name} is not supported for these inputs and the cpu backend has no kernel for it`);
  return args.backend.fallback(name, k.kernelFunc, args as unknown as Parameters<tf.KernelFunc>[0]);
}

const isFloat = (d: tf.DataType) => d === "float32";

function binary(op: string, out?: "bool" | "float32"): TorchKernel {
  return ({ inputs, backend: b }) => {
    const { a, b: c } = inputs;
    const dtype = out ?? tf.upcastType(a.dtype, c.dtype);
    // A rank-0 operand beside a tensor goes as a CPU scalar (no host-to-device copy): see TorchBackend.scalarOf.
    const ta = c.shape.length > 0 ? b.scalarOf(a) : b.t(a);
    const tc = a.shape.length > 0 ? b.scalarOf(c) : b.t(c);
    return b.out(b.call(op, [ta, tc]), dtype);
  };
}

/** `same`: the output keeps x's dtype; `float32`: ATen computes in float (int inputs promoted). */
function unary(op: string, out: "same" | "float32" | "bool" = "same", extra: unknown[] = []): TorchKernel {
  return ({ inputs, backend: b }) => {
    const x = inputs.x;
    return b.out(b.call(op, [b.t(x), ...extra]), out === "same" ? x.dtype : out);
  };
}

function axesOf(axis: number | number[] | undefined, shape: number[]): number[] {
  return tf.util.parseAxisParam(axis ?? shape.map((_, i) => i), shape);
}

/**
 * The input itself as the output, under one more reference (what tfjs' cpu backend does for Identity): no libtorch
 * call. Gradients pass through Identity hundreds of times per ResNet step; each aten::alias (and its release) was two
 * addon calls.
 */
function alias(b: TorchBackend, x: tf.TensorInfo): tf.TensorInfo {
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function reduce(kind: "sum" | "mean" | "max" | "min" | "prod" | "all" | "any"): TorchKernel {
  return (args) => {
    const { inputs, backend: b, attrs } = args;
    const x = inputs.x;
    const a = attrs as unknown as { axis?: number | number[]; reductionIndices?: number | number[]; keepDims: boolean };
    const axes = axesOf(a.axis ?? a.reductionIndices, x.shape);
    const keep = Boolean(a.keepDims);
    const outShape = x.shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
    const boolOut = kind === "all" || kind === "any";
    let dtype: tf.DataType = boolOut ? "bool" : kind === "mean" ? "float32" : x.dtype === "bool" && (kind === "sum" || kind === "prod") ? "int32" : x.dtype;
    if (axes.length === 0) {
      if (dtype === x.dtype) return alias(b, x);
      return b.out(b.call("aten::to.dtype", [b.t(x), dtype]), dtype, outShape);
    }
    let t = b.t(x);
    switch (kind) {
      case "sum":
        t = b.call("aten::sum.dim_IntList", [t, axes, keep], isFloat(x.dtype) ? undefined : { dtype: "int32" });
        break;
      case "mean":
        if (!isFloat(x.dtype)) t = b.call("aten::to.dtype", [t, "float32"]);
        t = b.call("aten::mean.dim", [t, axes, keep]);
        break;
      case "max":
      case "min":
        t = b.call(kind === "max" ? "aten::amax" : "aten::amin", [t, axes, keep]);
        break;
      default: {
        // prod/all/any take one dim at a time: highest first so the lower indices stay valid without keepDims.
        const op = kind === "prod" ? "aten::prod.dim_int" : kind === "all" ? "aten::all.dim" : "aten::any.dim";
        for (const ax of [...axes].sort((p, q) => q - p)) {
          t = b.call(op, [t, ax, keep], kind === "prod" && !isFloat(x.dtype) ? { dtype: "int32" } : undefined);
        }
        if (boolOut) dtype = "bool";
      }
    }
    return b.out(t, dtype, outShape);
  };
}

function argReduce(op: "aten::argmax" | "aten::argmin"): TorchKernel {
  return ({ inputs, backend: b, attrs }) => {
    const x = inputs.x;
    const axis = axesOf((attrs as unknown as { axis: number | number[] }).axis, x.shape)[0];
    const idx = b.call(op, [b.t(x), axis, false]);
    return b.out(b.call("aten::to.dtype", [idx, "int32"]), "int32", x.shape.filter((_, i) => i !== axis));
  };
}

interface ConvGeometry {
  info: tf.backend_util.Conv2DInfo;
  /** Symmetric padding ATen applies itself, or null when the input must be padded explicitly (uneven). */
  pad: [number, number] | null;
  /** The explicit padding for constant_pad_nd on NCHW: [left, right, top, bottom]. */
  explicit: [number, number, number, number];
}

function geometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  const p = info.padInfo;
  const even = p.top === p.bottom && p.left === p.right;
  return { info, pad: even ? [p.top, p.left] : null, explicit: [p.left, p.right, p.top, p.bottom] };
}

const nchw = (b: TorchBackend, t: TorchTensor) => b.call("aten::permute", [t, NHWC_TO_NCHW]);
const nhwc = (b: TorchBackend, t: TorchTensor) => b.call("aten::permute", [t, NCHW_TO_NHWC]);

/** conv2d on NHWC x and HWIO w (or [C*M,1,KH,KW] groups weights when `groups` > 1); returns NHWC. */
export function conv2dNHWC(b: TorchBackend, x: TorchTensor, w: TorchTensor, g: ConvGeometry, bias: TorchTensor | null, groups = 1, wIsOIHW = false): TorchTensor {
  let xn = nchw(b, x);
  if (!g.pad) xn = b.call("aten::constant_pad_nd", [xn, g.explicit, 0]);
  const wn = wIsOIHW ? w : b.call("aten::permute", [w, HWIO_TO_OIHW]);
  const { strideHeight, strideWidth, dilationHeight, dilationWidth } = g.info;
  return b.call("aten::convolution", [xn, wn, bias, [strideHeight, strideWidth], g.pad ?? [0, 0], [dilationHeight, dilationWidth], false, [0, 0], groups]);
}

/** dx of a conv (NHWC) from dy (NHWC) by the transposed convolution; `w` OIHW. */
export function conv2dGradInput(b: TorchBackend, dy: TorchTensor, w: TorchTensor, g: ConvGeometry, groups = 1): TorchTensor {
  const i = g.info;
  const dyn = nchw(b, dy);
  const strides = [i.strideHeight, i.strideWidth];
  const dil = [i.dilationHeight, i.dilationWidth];
  const full = (outSize: number, k: number, s: number, d: number) => (outSize - 1) * s + d * (k - 1) + 1;
  const fullH = full(i.outHeight, i.filterHeight, i.strideHeight, i.dilationHeight);
  const fullW = full(i.outWidth, i.filterWidth, i.strideWidth, i.dilationWidth);
  if (g.pad) {
    const [ph, pw] = g.pad;
    const op = [i.inHeight - (fullH - 2 * ph), i.inWidth - (fullW - 2 * pw)];
    return b.call("aten::convolution", [dyn, w, null, strides, [ph, pw], dil, true, op, groups]);
  }
  // Uneven padding: the gradient of the explicitly padded input (its last rows and columns may get none: output
  // padding), cropped back to x.
  const [left, right, top, bottom] = g.explicit;
  const op = [i.inHeight + top + bottom - fullH, i.inWidth + left + right - fullW];
  let dx = b.call("aten::convolution", [dyn, w, null, strides, [0, 0], dil, true, op, groups]);
  dx = b.call("aten::slice.Tensor", [dx, 2, top, top + i.inHeight, 1]);
  return b.call("aten::slice.Tensor", [dx, 3, left, left + i.inWidth, 1]);
}

/** dW (OIHW, or [C*M,1,KH,KW] grouped) of a conv from x and dy (both NHWC, as NCHW views). */
export function conv2dGradFilter(b: TorchBackend, x: TorchTensor, dy: TorchTensor, g: ConvGeometry, wShapeOIHW: number[], groups = 1): TorchTensor {
  const i = g.info;
  let xn = nchw(b, x);
  if (!g.pad) xn = b.call("aten::constant_pad_nd", [xn, g.explicit, 0]);
  const dyn = nchw(b, dy);
  // convolution_backward reads only the weight's shape (and memory format) when its gradient alone is asked for.
  const wDummy = b.call("aten::new_empty", [dyn, wShapeOIHW]);
  const r = b.callN("aten::convolution_backward", [
    dyn, xn, wDummy, null, [i.strideHeight, i.strideWidth], g.pad ?? [0, 0], [i.dilationHeight, i.dilationWidth], false, [0, 0], groups,
    [false, true, false],
  ]);
  return r[1];
}

function convAttrs(attrs: tf.NamedAttrMap) {
  return attrs as unknown as {
    strides: number | [number, number]; pad: "same" | "valid" | number | tf.backend_util.ExplicitPadding; dataFormat?: "NHWC" | "NCHW";
    dilations?: number | [number, number]; dimRoundingMode?: "floor" | "round" | "ceil"; inputShape?: number[]; filterShape?: number[];
  };
}

const conv2D: TorchKernel = (args) => {
  const { inputs, backend: b } = args;
  const a = convAttrs(args.attrs);
  if (a.dataFormat === "NCHW") return hostFallback(tf.Conv2D, args);
  const { x, filter } = inputs;
  const g = geometry(tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, false, "channelsLast"));
  const y = conv2dNHWC(b, b.t(x), b.t(filter), g, null);
  return b.out(nhwc(b, y), "float32", [g.info.batchSize, g.info.outHeight, g.info.outWidth, g.info.outChannels]);
};

const conv2DBackpropInput: TorchKernel = (args) => {
  const { inputs, backend: b } = args;
  const a = convAttrs(args.attrs);
  if (a.dataFormat === "NCHW") return hostFallback(tf.Conv2DBackpropInput, args);
  const { dy, filter } = inputs;
  const shape = a.inputShape as [number, number, number, number];
  const g = geometry(tf.backend_util.computeConv2DInfo(shape, filter.shape as [number, number, number, number],
    a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, false, "channelsLast"));
  const w = b.call("aten::permute", [b.t(filter), HWIO_TO_OIHW]);
  return b.out(nhwc(b, conv2dGradInput(b, b.t(dy), w, g)), "float32", shape);
};

const conv2DBackpropFilter: TorchKernel = (args) => {
  const { inputs, backend: b } = args;
  const a = convAttrs(args.attrs);
  if (a.dataFormat === "NCHW") return hostFallback(tf.Conv2DBackpropFilter, args);
  const { x, dy } = inputs;
  const fs = a.filterShape as [number, number, number, number];
  const g = geometry(tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], fs,
    a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, false, "channelsLast"));
  const dw = conv2dGradFilter(b, b.t(x), b.t(dy), g, [fs[3], fs[2], fs[0], fs[1]]);
  // OIHW -> HWIO, contiguous: the optimizer reads it beside the contiguous weights.
  return b.out(b.call("aten::contiguous", [b.call("aten::permute", [dw, [2, 3, 1, 0]])]), "float32", fs);
};

/** Depthwise filter [KH, KW, C, M] as ATen's grouped weight [C*M, 1, KH, KW] (output channel c*M + m, as tfjs). */
function depthwiseWeight(b: TorchBackend, w: TorchTensor, fs: number[]): TorchTensor {
  const [kh, kw, c, m] = fs;
  const p = b.call("aten::permute", [w, [2, 3, 0, 1]]);
  return b.call("aten::reshape", [p, [c * m, 1, kh, kw]]);
}

const depthwiseConv2D: TorchKernel = (args) => {
  const { inputs, backend: b } = args;
  const a = convAttrs(args.attrs);
  if (a.dataFormat === "NCHW") return hostFallback(tf.DepthwiseConv2dNative, args);
  const { x, filter } = inputs;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true, "channelsLast");
  const g = geometry(info);
  const y = conv2dNHWC(b, b.t(x), depthwiseWeight(b, b.t(filter), filter.shape), g, null, x.shape[3], true);
  return b.out(nhwc(b, y), "float32", [info.batchSize, info.outHeight, info.outWidth, info.outChannels]);
};

const depthwiseBackpropInput: TorchKernel = (args) => {
  const { inputs, backend: b } = args;
  const a = convAttrs(args.attrs);
  if (a.dataFormat === "NCHW") return hostFallback(tf.DepthwiseConv2dNativeBackpropInput, args);
  const { dy, filter } = inputs;
  const shape = a.inputShape as [number, number, number, number];
  const g = geometry(tf.backend_util.computeConv2DInfo(shape, filter.shape as [number, number, number, number],
    a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true, "channelsLast"));
  return b.out(nhwc(b, conv2dGradInput(b, b.t(dy), depthwiseWeight(b, b.t(filter), filter.shape), g, shape[3])), "float32", shape);
};

const depthwiseBackpropFilter: TorchKernel = (args) => {
  const { inputs, backend: b } = args;
  const a = convAttrs(args.attrs);
  if (a.dataFormat === "NCHW") return hostFallback(tf.DepthwiseConv2dNativeBackpropFilter, args);
  const { x, dy } = inputs;
  const fs = a.filterShape as [number, number, number, number];
  const g = geometry(tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], fs,
    a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true, "channelsLast"));
  const [kh, kw, c, m] = fs;
  const dw = conv2dGradFilter(b, b.t(x), b.t(dy), g, [c * m, 1, kh, kw], c);
  // [C*M, 1, KH, KW] -> [C, M, KH, KW] -> [KH, KW, C, M]
  const r = b.call("aten::reshape", [dw, [c, m, kh, kw]]);
  return b.out(b.call("aten::contiguous", [b.call("aten::permute", [r, [2, 3, 0, 1]])]), "float32", fs);
};

function poolInfo(x: tf.TensorInfo, attrs: tf.NamedAttrMap): ConvGeometry {
  const a = attrs as unknown as {
    filterSize: number | [number, number]; strides: number | [number, number]; pad: "same" | "valid" | number; dimRoundingMode?: "floor" | "round" | "ceil";
  };
  return geometry(tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode));
}

/** ATen's pools take symmetric padding of at most half the window. */
function atenPad(g: ConvGeometry): [number, number] | null {
  if (!g.pad) return null;
  return g.pad[0] <= g.info.filterHeight / 2 && g.pad[1] <= g.info.filterWidth / 2 ? g.pad : null;
}

const maxPool: TorchKernel = (args) => {
  const { inputs, backend: b, attrs } = args;
  const x = inputs.x;
  const g = poolInfo(x, attrs);
  const i = g.info;
  let xn = nchw(b, b.t(x));
  let pad = atenPad(g);
  if (!pad) {
    xn = b.call("aten::constant_pad_nd", [xn, g.explicit, -Infinity]);
    pad = [0, 0];
  }
  const [y, indices] = b.callN("aten::max_pool2d_with_indices", [xn, [i.filterHeight, i.filterWidth], [i.strideHeight, i.strideWidth], pad, [1, 1], false]);
  const out = b.out(nhwc(b, y), x.dtype, [i.batchSize, i.outHeight, i.outWidth, i.outChannels]);
  // MaxPoolGrad gets this output: it finds the argmax here instead of pooling again.
  b.side.set(out.dataId, b.keep(indices));
  return out;
};

const maxPoolGrad: TorchKernel = (args) => {
  const { inputs, backend: b, attrs } = args;
  const { dy, input, output } = inputs;
  const g = poolInfo(input, attrs);
  const i = g.info;
  const pad = atenPad(g);
  const kernel = [i.filterHeight, i.filterWidth];
  const strides = [i.strideHeight, i.strideWidth];
  let xn = nchw(b, b.t(input));
  if (!pad) xn = b.call("aten::constant_pad_nd", [xn, g.explicit, -Infinity]);
  const p = pad ?? [0, 0];
  const indices = b.side.get(output.dataId) ?? b.callN("aten::max_pool2d_with_indices", [xn, kernel, strides, p, [1, 1], false])[1];
  let dx = b.call("aten::max_pool2d_with_indices_backward", [nchw(b, b.t(dy)), xn, kernel, strides, p, [1, 1], false, indices]);
  if (!pad) {
    const [left, , top] = g.explicit;
    dx = b.call("aten::slice.Tensor", [dx, 2, top, top + i.inHeight, 1]);
    dx = b.call("aten::slice.Tensor", [dx, 3, left, left + i.inWidth, 1]);
  }
  return b.out(nhwc(b, dx), "float32", input.shape);
};

const avgPool: TorchKernel = (args) => {
  const { inputs, backend: b, attrs } = args;
  const x = inputs.x;
  const g = poolInfo(x, attrs);
  const pad = atenPad(g);
  // tfjs averages over the window's inputs only: explicit zero padding would count; such geometry runs on the host.
  if (!pad) return hostFallback(tf.AvgPool, args);
  const i = g.info;
  const y = b.call("aten::avg_pool2d", [nchw(b, b.t(x)), [i.filterHeight, i.filterWidth], [i.strideHeight, i.strideWidth], pad, false, false, null]);
  return b.out(nhwc(b, y), "float32", [i.batchSize, i.outHeight, i.outWidth, i.outChannels]);
};

const avgPoolGrad: TorchKernel = (args) => {
  const { inputs, backend: b, attrs } = args;
  const { dy, input } = inputs;
  const g = poolInfo(input, attrs);
  const pad = atenPad(g);
  if (!pad) return hostFallback(tf.AvgPoolGrad, args);
  const i = g.info;
  // tfjs' gradient spreads every output over the whole window (1 / window size, padding included), unlike its forward.
  // With padding, CUDA's kernel for channels-last strides (what the NHWC->NCHW permute gives) returns wrong gradients
  // (pytorch/pytorch#188344, found by this op suite on an H100 with PyTorch 2.11): such inputs go in as contiguous NCHW.
  const padded = pad[0] > 0 || pad[1] > 0;
  const asNCHW = (t: TorchTensor) => (padded ? b.call("aten::contiguous", [nchw(b, t)]) : nchw(b, t));
  const dx = b.call("aten::avg_pool2d_backward", [asNCHW(b.t(dy)), asNCHW(b.t(input)), [i.filterHeight, i.filterWidth], [i.strideHeight, i.strideWidth], pad,
    false, true, i.filterHeight * i.filterWidth]);
  return b.out(nhwc(b, dx), "float32", input.shape);
};

/** a·b with tfjs' transposes on the last two axes (batch axes broadcast). */
function matmul(b: TorchBackend, a: TorchTensor, c: TorchTensor, ta: boolean, tb: boolean): TorchTensor {
  const x = ta ? b.call("aten::transpose.int", [a, -1, -2]) : a;
  const y = tb ? b.call("aten::transpose.int", [c, -1, -2]) : c;
  return b.call("aten::matmul", [x, y]);
}

const batchMatMul: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
  return b.out(matmul(b, b.t(inputs.a), b.t(inputs.b), transposeA, transposeB), "float32");
};

type Act = "linear" | "relu" | "relu6" | "prelu" | "elu" | "sigmoid" | "leakyrelu";

/** tfjs' fused activations on a fresh tensor (never an input's data). */
export function activate(b: TorchBackend, y: TorchTensor, act: Act | undefined, prelu?: tf.TensorInfo, leakyAlpha?: number): TorchTensor {
  switch (act ?? "linear") {
    case "linear": return y;
    case "relu": return b.call("aten::relu", [y]);
    case "relu6": return b.call("aten::hardtanh", [y, 0, 6]);
    case "elu": return b.call("aten::elu", [y]);
    case "sigmoid": return b.call("aten::sigmoid", [y]);
    case "leakyrelu": return b.call("aten::leaky_relu", [y, leakyAlpha ?? 0.2]);
    case "prelu": {
      const neg = b.call("aten::mul.Tensor", [y, b.t(prelu!)]);
      return b.call("aten::where.self", [b.call("aten::gt.Scalar", [y, 0]), y, neg]);
    }
  }
  throw new Error(`torch backend: unknown fused activation ${act}`);
}

const fusedMatMul: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const a = attrs as unknown as { transposeA: boolean; transposeB: boolean; activation?: Act; leakyreluAlpha?: number };
  let y = matmul(b, b.t(inputs.a), b.t(inputs.b), a.transposeA, a.transposeB);
  if (inputs.bias) y = b.call("aten::add.Tensor", [y, b.t(inputs.bias)]);
  return b.out(activate(b, y, a.activation, inputs.preluActivationWeights, a.leakyreluAlpha), "float32");
};

const fusedConv2D: TorchKernel = (args) => {
  const { inputs, backend: b } = args;
  const a = convAttrs(args.attrs) as ReturnType<typeof convAttrs> & { activation?: Act; leakyreluAlpha?: number };
  if (a.dataFormat === "NCHW") return hostFallback(tf.FusedConv2D, args);
  const { x, filter, bias } = inputs;
  const g = geometry(tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, false, "channelsLast"));
  // A per-channel bias goes into the convolution; any other shape is added after.
  const channelBias = bias != null && bias.shape.length === 1 && bias.shape[0] === g.info.outChannels;
  let y = nhwc(b, conv2dNHWC(b, b.t(x), b.t(filter), g, channelBias ? b.t(bias) : null));
  if (bias && !channelBias) y = b.call("aten::add.Tensor", [y, b.t(bias)]);
  const i = g.info;
  return b.out(activate(b, y, a.activation, inputs.preluActivationWeights, a.leakyreluAlpha), "float32", [i.batchSize, i.outHeight, i.outWidth, i.outChannels]);
};

const fusedBatchNorm: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const { x, mean, variance, offset, scale } = inputs;
  const eps = (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
  let k = b.call("aten::rsqrt", [b.call("aten::add.Scalar", [b.t(variance), eps])]);
  if (scale) k = b.call("aten::mul.Tensor", [k, b.t(scale)]);
  let y = b.call("aten::mul.Tensor", [b.call("aten::sub.Tensor", [b.t(x), b.t(mean)]), k]);
  if (offset) y = b.call("aten::add.Tensor", [y, b.t(offset)]);
  return b.out(y, "float32", x.shape);
};

const reshape: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  const shape = tf.util.inferFromImplicitShape((attrs as unknown as { shape: number[] }).shape, tf.util.sizeFromShape(x.shape));
  return b.out(b.call("aten::reshape", [b.t(x), shape]), x.dtype, shape);
};

const transpose: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  const perm = (attrs as unknown as { perm: number[] }).perm;
  const t = b.call("aten::contiguous", [b.call("aten::permute", [b.t(x), perm])]);
  return b.out(t, x.dtype, perm.map((p) => x.shape[p]));
};

const slice: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  const a = attrs as unknown as { begin: number | number[]; size: number | number[] };
  const [begin, size] = tf.slice_util.parseSliceParams(x, a.begin, a.size);
  let t = b.t(x);
  let changed = false;
  for (let d = 0; d < x.shape.length; d++) {
    if (begin[d] === 0 && size[d] === x.shape[d]) continue;
    t = b.call("aten::slice.Tensor", [t, d, begin[d], begin[d] + size[d], 1]);
    changed = true;
  }
  if (!changed) return alias(b, x);
  return b.out(t, x.dtype, size);
};

const concat: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const list = Object.values(inputs) as tf.TensorInfo[];
  const axis = tf.util.parseAxisParam((attrs as unknown as { axis: number }).axis, list[0].shape)[0];
  const nonEmpty = list.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
  const use = nonEmpty.length > 0 ? nonEmpty : list;
  const dtype = use.map((t) => t.dtype).reduce((p, q) => tf.upcastType(p, q));
  if (use.length === 1) return alias(b, use[0]);
  return b.out(b.call("aten::cat", [use.map((t) => b.t(t)), axis]), dtype);
};

const pack: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const list = Object.values(inputs) as tf.TensorInfo[];
  const axis = (attrs as unknown as { axis: number }).axis;
  return b.out(b.call("aten::stack", [list.map((t) => b.t(t)), axis]), list[0].dtype);
};

const unpack: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.value;
  let axis = (attrs as unknown as { axis: number }).axis;
  if (axis < 0) axis += x.shape.length;
  const shape = x.shape.filter((_, i) => i !== axis);
  return b.callN("aten::unbind.int", [b.t(x), axis]).map((t) => b.out(t, x.dtype, shape));
};

const tile: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  const reps = (attrs as unknown as { reps: number[] }).reps;
  return b.out(b.call("aten::repeat", [b.t(x), reps]), x.dtype, x.shape.map((d, i) => d * reps[i]));
};

const padV2: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  const { paddings, constantValue } = attrs as unknown as { paddings: Array<[number, number]>; constantValue: number };
  const pad = [...paddings].reverse().flat();
  return b.out(b.call("aten::constant_pad_nd", [b.t(x), pad, constantValue]), x.dtype, x.shape.map((d, i) => d + paddings[i][0] + paddings[i][1]));
};

const reverse: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  const dims = axesOf((attrs as unknown as { dims: number | number[] }).dims, x.shape);
  if (dims.length === 0) return alias(b, x);
  return b.out(b.call("aten::flip", [b.t(x), dims]), x.dtype, x.shape);
};

/** A tensor on the device to hang new tensors from (new_full & co. take the device and dtype from it). */
function anchor(b: TorchBackend): TorchTensor {
  return b.constant("anchor", () => ({ values: new Float32Array(1), shape: [], dtype: "float32" }));
}

const fill: TorchKernel = (args) => {
  const { backend: b, attrs } = args;
  const { shape, value, dtype } = attrs as unknown as { shape: number[]; value: number; dtype: tf.DataType };
  if (dtype === "string" || dtype === "complex64") return hostFallback(tf.Fill, args);
  return b.out(b.call("aten::new_full", [anchor(b), shape, dtype === "bool" ? Number(Boolean(value)) : value], { dtype }), dtype, shape);
};

function likeKernel(op: string): TorchKernel {
  return ({ inputs, backend: b }) => {
    const x = inputs.x;
    return b.out(b.call(op, [b.t(x)]), x.dtype, x.shape);
  };
}

const range: TorchKernel = ({ backend: b, attrs }) => {
  const { start, stop, step, dtype } = attrs as unknown as { start: number; stop: number; step: number; dtype: "float32" | "int32" };
  const n = Math.max(Math.ceil((stop - start) / step), 0);
  const v = dtype === "int32" ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = start + i * step;
  return b.outHost(v, [n], dtype);
};

/** 0..n-1 on the device, int32. */
export function iota(b: TorchBackend, n: number): TorchTensor {
  return b.constant(`iota:${n}`, () => ({ values: Int32Array.from({ length: n }, (_, i) => i), shape: [n], dtype: "int32" }));
}

const oneHot: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const idx = inputs.indices;
  const { depth, onValue, offValue, dtype } = attrs as unknown as { depth: number; onValue: number; offValue: number; dtype: tf.DataType };
  const mask = b.call("aten::eq.Tensor", [b.call("aten::unsqueeze", [b.t(idx), -1]), iota(b, depth)]);
  let t = b.call("aten::to.dtype", [mask, dtype]);
  if (onValue !== 1 || offValue !== 0) t = b.call("aten::add.Scalar", [b.call("aten::mul.Scalar", [t, onValue - offValue]), offValue]);
  return b.out(t, dtype, [...idx.shape, depth]);
};

const gatherV2: TorchKernel = (args) => {
  const { inputs, backend: b, attrs } = args;
  const { x, indices } = inputs;
  const a = attrs as unknown as { axis: number; batchDims: number };
  if ((a.batchDims ?? 0) !== 0) return hostFallback(tf.GatherV2, args);
  const axis = tf.util.parseAxisParam(a.axis, x.shape)[0];
  const flat = indices.shape.length === 1 ? b.t(indices) : b.call("aten::reshape", [b.t(indices), [-1]]);
  const r = b.call("aten::index_select", [b.t(x), axis, flat]);
  const shape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  return b.out(indices.shape.length === 1 ? r : b.call("aten::reshape", [r, shape]), x.dtype, shape);
};

const select: TorchKernel = ({ inputs, backend: b }) => {
  const { condition, t, e } = inputs;
  let c = b.t(condition);
  // tfjs: a rank-1 condition picks whole rows of higher-rank t/e.
  if (condition.shape.length === 1 && t.shape.length > 1) c = b.call("aten::reshape", [c, [condition.shape[0], ...t.shape.slice(1).map(() => 1)]]);
  return b.out(b.call("aten::where.self", [c, b.t(t), b.t(e)]), tf.upcastType(t.dtype, e.dtype), t.shape);
};

const topK: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  const { k, sorted } = attrs as unknown as { k: number; sorted: boolean };
  const [values, indices] = b.callN("aten::topk", [b.t(x), k, -1, true, sorted]);
  const shape = [...x.shape.slice(0, -1), k];
  return [b.out(values, x.dtype, shape), b.out(b.call("aten::to.dtype", [indices, "int32"]), "int32", shape)];
};

const cast: TorchKernel = (args) => {
  const { inputs, backend: b, attrs } = args;
  const x = inputs.x;
  const dtype = (attrs as unknown as { dtype: tf.DataType }).dtype;
  if (dtype === "string" || dtype === "complex64" || x.dtype === "string" || x.dtype === "complex64") return hostFallback(tf.Cast, args);
  if (dtype === x.dtype) return alias(b, x);
  return b.out(b.call("aten::to.dtype", [b.t(x), dtype]), dtype, x.shape);
};

const addN: TorchKernel = ({ inputs, backend: b }) => {
  const list = Object.values(inputs) as tf.TensorInfo[];
  if (list.length === 1) return alias(b, list[0]);
  let t = b.call("aten::add.Tensor", [b.t(list[0]), b.t(list[1])]);
  for (let i = 2; i < list.length; i++) t = b.call("aten::add.Tensor", [t, b.t(list[i])]);
  return b.out(t, list[0].dtype, list[0].shape);
};

const softmax: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.logits;
  let dim = (attrs as unknown as { dim: number }).dim;
  if (dim < 0) dim += x.shape.length;
  return b.out(b.call("aten::_softmax", [b.t(x), dim, false]), "float32", x.shape);
};

const step: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  const alpha = (attrs as unknown as { alpha: number }).alpha ?? 0;
  let t = b.call("aten::to.dtype", [b.call("aten::gt.Scalar", [b.t(x), 0]), "float32"]);
  if (alpha !== 0) t = b.call("aten::add.Scalar", [b.call("aten::mul.Scalar", [t, 1 - alpha]), alpha]);
  return b.out(t, "float32", x.shape);
};

const clip: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  const { clipValueMin, clipValueMax } = attrs as unknown as { clipValueMin: number; clipValueMax: number };
  return b.out(b.call("aten::clamp", [b.t(x), clipValueMin, clipValueMax]), x.dtype, x.shape);
};

const leakyRelu: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  return b.out(b.call("aten::leaky_relu", [b.t(x), (attrs as unknown as { alpha: number }).alpha]), "float32", x.shape);
};

const prelu: TorchKernel = ({ inputs, backend: b }) => {
  const { x, alpha } = inputs;
  const t = b.t(x);
  const neg = b.call("aten::mul.Tensor", [t, b.t(alpha)]);
  return b.out(b.call("aten::where.self", [b.call("aten::gt.Scalar", [t, 0]), t, neg]), "float32", x.shape);
};

const eluGrad: TorchKernel = ({ inputs, backend: b }) => {
  const { dy, y } = inputs;
  return b.out(b.call("aten::elu_backward", [b.t(dy), 1, 1, 1, true, b.t(y)]), "float32", dy.shape);
};

const squaredDifference: TorchKernel = ({ inputs, backend: b }) => {
  const { a, b: c } = inputs;
  return b.out(b.call("aten::square", [b.call("aten::sub.Tensor", [b.t(a), b.t(c)])]), tf.upcastType(a.dtype, c.dtype));
};

const cumsum: TorchKernel = (args) => {
  const { inputs, backend: b, attrs } = args;
  const x = inputs.x;
  const { axis, exclusive, reverse: rev } = attrs as unknown as { axis: number; exclusive: boolean; reverse: boolean };
  const dim = tf.util.parseAxisParam(axis, x.shape)[0];
  let t = b.t(x);
  if (rev) t = b.call("aten::flip", [t, [dim]]);
  const dtype = isFloat(x.dtype) ? "float32" : "int32";
  let s = b.call("aten::cumsum", [t, dim], { dtype });
  if (exclusive) s = b.call("aten::sub.Tensor", [s, t]);
  if (rev) s = b.call("aten::flip", [s, [dim]]);
  return b.out(s, dtype, x.shape);
};

/** tfjs' floorDiv gives int32 whatever its inputs (float inputs floored, then converted). */
const floorDiv: TorchKernel = (args) => {
  const r = binary("aten::floor_divide")(args) as tf.TensorInfo;
  if (r.dtype === "int32") return r;
  const b = args.backend;
  const t = b.call("aten::to.dtype", [b.t(r), "int32"]);
  b.disposeData(r.dataId);
  return b.out(t, "int32", r.shape);
};

const stridedSlice: TorchKernel = (args) => {
  const { inputs, backend: b, attrs } = args;
  const x = inputs.x;
  const a = attrs as unknown as {
    begin: number[]; end: number[]; strides: number[]; beginMask: number; endMask: number; ellipsisMask: number; newAxisMask: number; shrinkAxisMask: number;
  };
  const info = tf.slice_util.sliceInfo(x.shape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask);
  // ATen slices take positive steps only.
  if (info.strides.some((st) => st <= 0)) return hostFallback(tf.StridedSlice, args);
  let t = b.t(x);
  for (let d = 0; d < x.shape.length; d++) {
    const begin = info.begin[d], end = Math.max(info.end[d], begin), step = info.strides[d];
    if (begin === 0 && end >= x.shape[d] && step === 1) continue;
    t = b.call("aten::slice.Tensor", [t, d, begin, end, step]);
  }
  return b.out(b.call("aten::reshape", [t, info.finalShape]), x.dtype, info.finalShape);
};

const splitV: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x;
  const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
  const dim = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, dim);
  return b.callN("aten::split_with_sizes", [b.t(x), sizes, dim]).map((t, i) => {
    const shape = x.shape.slice();
    shape[dim] = sizes[i];
    return b.out(t, x.dtype, shape);
  });
};

export const torchKernels: Record<string, TorchKernel> = {
  [tf.Add]: binary("aten::add.Tensor"),
  [tf.Sub]: binary("aten::sub.Tensor"),
  [tf.Multiply]: binary("aten::mul.Tensor"),
  [tf.RealDiv]: binary("aten::div.Tensor", "float32"),
  [tf.FloorDiv]: floorDiv,
  [tf.Mod]: binary("aten::remainder.Tensor"),
  [tf.Maximum]: binary("aten::maximum"),
  [tf.Minimum]: binary("aten::minimum"),
  [tf.Pow]: binary("aten::pow.Tensor_Tensor"),
  [tf.Atan2]: binary("aten::atan2", "float32"),
  [tf.Equal]: binary("aten::eq.Tensor", "bool"),
  [tf.NotEqual]: binary("aten::ne.Tensor", "bool"),
  [tf.Less]: binary("aten::lt.Tensor", "bool"),
  [tf.LessEqual]: binary("aten::le.Tensor", "bool"),
  [tf.Greater]: binary("aten::gt.Tensor", "bool"),
  [tf.GreaterEqual]: binary("aten::ge.Tensor", "bool"),
  [tf.LogicalAnd]: binary("aten::logical_and", "bool"),
  [tf.LogicalOr]: binary("aten::logical_or", "bool"),
  [tf.SquaredDifference]: squaredDifference,
  [tf.LogicalNot]: unary("aten::logical_not", "bool"),
  [tf.Abs]: unary("aten::abs"),
  [tf.Neg]: unary("aten::neg"),
  [tf.Square]: unary("aten::square"),
  [tf.Sign]: unary("aten::sign"),
  [tf.Floor]: unary("aten::floor"),
  [tf.Ceil]: unary("aten::ceil"),
  [tf.Round]: unary("aten::round"),
  [tf.Relu]: unary("aten::relu"),
  [tf.Relu6]: unary("aten::hardtanh", "same", [0, 6]),
  [tf.Exp]: unary("aten::exp", "float32"),
  [tf.Expm1]: unary("aten::expm1", "float32"),
  [tf.Log]: unary("aten::log", "float32"),
  [tf.Log1p]: unary("aten::log1p", "float32"),
  [tf.Sqrt]: unary("aten::sqrt", "float32"),
  [tf.Rsqrt]: unary("aten::rsqrt", "float32"),
  [tf.Reciprocal]: unary("aten::reciprocal", "float32"),
  [tf.Sigmoid]: unary("aten::sigmoid", "float32"),
  [tf.Tanh]: unary("aten::tanh", "float32"),
  [tf.Sin]: unary("aten::sin", "float32"),
  [tf.Cos]: unary("aten::cos", "float32"),
  [tf.Erf]: unary("aten::erf", "float32"),
  [tf.Tan]: unary("aten::tan", "float32"),
  [tf.Asin]: unary("aten::asin", "float32"),
  [tf.Acos]: unary("aten::acos", "float32"),
  [tf.Atan]: unary("aten::atan", "float32"),
  [tf.Sinh]: unary("aten::sinh", "float32"),
  [tf.Cosh]: unary("aten::cosh", "float32"),
  [tf.Asinh]: unary("aten::asinh", "float32"),
  [tf.Acosh]: unary("aten::acosh", "float32"),
  [tf.Atanh]: unary("aten::atanh", "float32"),
  [tf.StridedSlice]: stridedSlice,
  [tf.SplitV]: splitV,
  [tf.Elu]: unary("aten::elu", "float32"),
  [tf.Selu]: unary("aten::selu", "float32"),
  [tf.Softplus]: unary("aten::softplus", "float32"),
  [tf.IsNan]: unary("aten::isnan", "bool"),
  [tf.IsInf]: unary("aten::isinf", "bool"),
  [tf.IsFinite]: unary("aten::isfinite", "bool"),
  [tf.Step]: step,
  [tf.ClipByValue]: clip,
  [tf.LeakyRelu]: leakyRelu,
  [tf.Prelu]: prelu,
  [tf.EluGrad]: eluGrad,
  [tf.Identity]: ({ inputs, backend: b }) => alias(b, inputs.x),
  [tf.Cast]: cast,
  [tf.Sum]: reduce("sum"),
  [tf.Mean]: reduce("mean"),
  [tf.Max]: reduce("max"),
  [tf.Min]: reduce("min"),
  [tf.Prod]: reduce("prod"),
  [tf.All]: reduce("all"),
  [tf.Any]: reduce("any"),
  [tf.ArgMax]: argReduce("aten::argmax"),
  [tf.ArgMin]: argReduce("aten::argmin"),
  [tf.Softmax]: softmax,
  [tf.AddN]: addN,
  [tf.Cumsum]: cumsum,
  [tf.Conv2D]: conv2D,
  [tf.Conv2DBackpropInput]: conv2DBackpropInput,
  [tf.Conv2DBackpropFilter]: conv2DBackpropFilter,
  [tf.DepthwiseConv2dNative]: depthwiseConv2D,
  [tf.DepthwiseConv2dNativeBackpropInput]: depthwiseBackpropInput,
  [tf.DepthwiseConv2dNativeBackpropFilter]: depthwiseBackpropFilter,
  [tf.FusedConv2D]: fusedConv2D,
  [tf.MaxPool]: maxPool,
  [tf.MaxPoolGrad]: maxPoolGrad,
  [tf.AvgPool]: avgPool,
  [tf.AvgPoolGrad]: avgPoolGrad,
  [tf.BatchMatMul]: batchMatMul,
  [tf._FusedMatMul]: fusedMatMul,
  [tf.FusedBatchNorm]: fusedBatchNorm,
  [tf.Reshape]: reshape,
  [tf.ExpandDims]: ({ inputs, backend: b, attrs }) => {
    const x = inputs.input;
    let dim = (attrs as unknown as { dim: number }).dim;
    if (dim < 0) dim += x.shape.length + 1;
    const shape = [...x.shape.slice(0, dim), 1, ...x.shape.slice(dim)];
    return b.out(b.call("aten::reshape", [b.t(x), shape]), x.dtype, shape);
  },
  [tf.Transpose]: transpose,
  [tf.Slice]: slice,
  [tf.Concat]: concat,
  [tf.Pack]: pack,
  [tf.Unpack]: unpack,
  [tf.Tile]: tile,
  [tf.PadV2]: padV2,
  [tf.Reverse]: reverse,
  [tf.Fill]: fill,
  [tf.ZerosLike]: likeKernel("aten::zeros_like"),
  [tf.OnesLike]: likeKernel("aten::ones_like"),
  [tf.Range]: range,
  [tf.OneHot]: oneHot,
  [tf.GatherV2]: gatherV2,
  [tf.Select]: select,
  [tf.TopK]: topK,
};
