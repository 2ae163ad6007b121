// The project's own kernels (src/backend/fused-ops.ts, layer-ops.ts) on the torch backend: each layer's conv or
// matmul with its bias and ReLU, the loss, batch norm and the optimizer steps as a few ATen operators, where the
// composed tfjs ops would launch several times as many kernels (what decides a small model's speed on a GPU). The
// sparse kernels are not mapped: on this backend training runs the dense ops (it is not in sparseBackends), and
// their composed implementations run on the mapped kernels if called directly.
import * as tf from "@tensorflow/tfjs-core";
import {
  AdamUpdate, BatchNormTrain, BatchNormTrainGrad, SgdNesterovUpdate, SgdUpdate, SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad,
  type AdamAttrs, type SgdAttrs,
} from "../fused-ops.js";
import { BiasActGrad, Conv2DBiasAct, CountZeros, MatMulBiasAct, MatMulBiasActGrad, type ConvBiasActAttrs } from "../layer-ops.js";
import type { TorchTensor } from "./addon.js";
import type { TorchBackend, TorchKernel } from "./index.js";
import { conv2dNHWC, iota } from "./kernels.js";

function act(b: TorchBackend, y: TorchTensor, activation: string): TorchTensor {
  // In place: y is the conv's / addmm's fresh output, nothing else refers to it.
  return activation === "relu" ? b.call("aten::relu_", [y]) : y;
}

const conv2dBiasAct: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const { x, filter, bias } = inputs;
  const a = attrs as unknown as ConvBiasActAttrs;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    a.strides, 1, a.pad, undefined, false, "channelsLast");
  const p = info.padInfo;
  const even = p.top === p.bottom && p.left === p.right;
  const g = { info, pad: even ? [p.top, p.left] as [number, number] : null, explicit: [p.left, p.right, p.top, p.bottom] as [number, number, number, number] };
  const bt = bias.shape.length === 1 && bias.shape[0] === info.outChannels ? b.t(bias) : null;
  const shape = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  const y = conv2dNHWC(b, b.t(x), b.t(filter), g, bt);
  if (bt) return b.out(b.call("aten::permute", [act(b, y, a.activation), [0, 2, 3, 1]]), "float32", shape);
  // A bias of another shape broadcasts against the NHWC output, as tf.add does.
  const z = b.call("aten::add.Tensor", [b.call("aten::permute", [y, [0, 2, 3, 1]]), b.t(bias)]);
  return b.out(act(b, z, a.activation), "float32", shape);
};

const matMulBiasAct: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const { a, b: w, bias } = inputs;
  const activation = (attrs as unknown as { activation: string }).activation;
  const y = b.call("aten::addmm", [b.t(bias), b.t(a), b.t(w)]);
  return b.out(act(b, y, activation), "float32", [a.shape[0], w.shape[1]]);
};

/** dz = dy through the activation (from its output y), and dbias = dz summed over every axis but the last. */
function biasActGrad(b: TorchBackend, dy: tf.TensorInfo, y: tf.TensorInfo, activation: string): [TorchTensor, TorchTensor] {
  const dz = activation === "relu" ? b.call("aten::threshold_backward", [b.t(dy), b.t(y), 0]) : b.call("aten::alias", [b.t(dy)]);
  const axes = dy.shape.map((_, i) => i).slice(0, -1);
  return [dz, b.call("aten::sum.dim_IntList", [dz, axes, false])];
}

const biasActGradKernel: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const { dy, y } = inputs;
  const [dz, dbias] = biasActGrad(b, dy, y, (attrs as unknown as { activation: string }).activation);
  const C = dy.shape[dy.shape.length - 1];
  return [b.out(dz, "float32", dy.shape), b.out(dbias, "float32", [C])];
};

const matMulBiasActGrad: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const { dy, y, a } = inputs;
  const [dz, dbias] = biasActGrad(b, dy, y, (attrs as unknown as { activation: string }).activation);
  const db = b.call("aten::mm", [b.call("aten::t", [b.t(a)]), dz]);
  const N = dy.shape[1];
  return [b.out(dz, "float32", dy.shape), b.out(dbias, "float32", [N]), b.out(db, "float32", [a.shape[1], N])];
};

const countZeros: TorchKernel = ({ inputs, backend: b }) => {
  const z = b.call("aten::eq.Scalar", [b.t(inputs.x), 0]);
  return b.out(b.call("aten::sum", [z], { dtype: "float32" }), "float32", []);
};

/** The labels as a one-hot mask [B, C] (bool). */
function onehotMask(b: TorchBackend, labels: tf.TensorInfo, C: number): TorchTensor {
  return b.call("aten::eq.Tensor", [b.call("aten::unsqueeze", [b.t(labels), 1]), iota(b, C)]);
}

const softmaxCrossEntropy: TorchKernel = ({ inputs, backend: b }) => {
  const { logits, labels } = inputs;
  const [B, C] = logits.shape;
  const l = b.t(logits);
  const logp = b.call("aten::_log_softmax", [l, 1, false]);
  const mask = onehotMask(b, labels, C);
  const picked = b.call("aten::sum", [b.call("aten::mul.Tensor", [logp, mask])]);
  const loss = b.call("aten::mul.Scalar", [picked, -1 / B]);
  const pred = b.call("aten::argmax", [l, 1, false]);
  const hits = b.call("aten::sum", [b.call("aten::eq.Tensor", [pred, b.t(labels)])], { dtype: "float32" });
  return [b.out(loss, "float32", []), b.out(hits, "float32", [])];
};

const softmaxCrossEntropyGrad: TorchKernel = ({ inputs, backend: b }) => {
  const { dy, logits, labels } = inputs;
  const [B, C] = logits.shape;
  const p = b.call("aten::_softmax", [b.t(logits), 1, false]);
  const diff = b.call("aten::sub.Tensor", [p, b.call("aten::to.dtype", [onehotMask(b, labels, C), "float32"])]);
  const scale = b.call("aten::mul.Scalar", [b.t(dy), 1 / B]);
  return b.out(b.call("aten::mul.Tensor", [diff, scale]), "float32", logits.shape);
};

/** Masked gradient plus L2 decay: mask·g + weightDecay·w. */
function decayed(b: TorchBackend, w: TorchTensor, g: TorchTensor, mask: TorchTensor | null, weightDecay: number): TorchTensor {
  let d = mask ? b.call("aten::mul.Tensor", [g, mask]) : g;
  if (weightDecay > 0) d = b.call("aten::add.Tensor", [d, w], { alpha: weightDecay });
  return d;
}

// Out of place: tfjs tensors are immutable and another tensor may share a variable's data; the caching allocator
// (CUDA) makes the new tensors cheap.
function sgd(nesterov: boolean): TorchKernel {
  return ({ inputs, backend: b, attrs }) => {
    const { w, g, v, mask } = inputs;
    const { lr, momentum, weightDecay } = attrs as unknown as SgdAttrs;
    const wt = b.t(w);
    const m = mask ? b.t(mask) : null;
    let d = decayed(b, wt, b.t(g), m, weightDecay);
    const outs: tf.TensorInfo[] = [];
    let v2: TorchTensor | null = null;
    if (v) {
      v2 = b.call("aten::add.Tensor", [b.call("aten::mul.Scalar", [b.t(v), momentum]), d]);
      d = nesterov ? b.call("aten::add.Tensor", [d, v2], { alpha: momentum }) : v2;
    }
    let next = b.call("aten::sub.Tensor", [wt, d], { alpha: lr });
    if (m) next = b.call("aten::mul.Tensor", [next, m]);
    outs.push(b.out(next, "float32", w.shape));
    if (v2) outs.push(b.out(v2, "float32", w.shape));
    return outs;
  };
}

const adam: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const { w, g, m, v, mask } = inputs;
  const { lr, beta1, beta2, epsilon, weightDecay } = attrs as unknown as AdamAttrs;
  const wt = b.t(w);
  const mk = mask ? b.t(mask) : null;
  const d = decayed(b, wt, b.t(g), mk, weightDecay);
  const m2 = b.call("aten::add.Tensor", [b.call("aten::mul.Scalar", [b.t(m), beta1]), d], { alpha: 1 - beta1 });
  const v2 = b.call("aten::add.Tensor", [b.call("aten::mul.Scalar", [b.t(v), beta2]), b.call("aten::square", [d])], { alpha: 1 - beta2 });
  const denom = b.call("aten::add.Scalar", [b.call("aten::sqrt", [v2]), epsilon]);
  let next = b.call("aten::sub.Tensor", [wt, b.call("aten::div.Tensor", [b.call("aten::mul.Scalar", [m2, lr]), denom])]);
  if (mk) next = b.call("aten::mul.Tensor", [next, mk]);
  return [b.out(next, "float32", w.shape), b.out(m2, "float32", w.shape), b.out(v2, "float32", w.shape)];
};

/** x as the [N, C, ...] tensor ATen's batch norm takes: NHWC as a channels-last NCHW view, [N, C] as is, else [-1, C]. */
function bnInput(b: TorchBackend, x: tf.TensorInfo): TorchTensor {
  const t = b.t(x);
  if (x.shape.length === 4) return b.call("aten::permute", [t, [0, 3, 1, 2]]);
  if (x.shape.length === 2) return t;
  return b.call("aten::reshape", [t, [-1, x.shape[x.shape.length - 1]]]);
}

function bnOutput(b: TorchBackend, y: TorchTensor, x: tf.TensorInfo): TorchTensor {
  if (x.shape.length === 4) return b.call("aten::permute", [y, [0, 2, 3, 1]]);
  if (x.shape.length === 2) return y;
  return b.call("aten::reshape", [y, x.shape]);
}

const batchNormTrain: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const { x, scale, offset } = inputs;
  const eps = (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
  const C = x.shape[x.shape.length - 1];
  const [y, mean, invstd] = b.callN("aten::native_batch_norm", [bnInput(b, x), b.t(scale), b.t(offset), null, null, true, 0.1, eps]);
  // The biased batch variance back from 1/sqrt(var + eps): only the running statistics read it.
  const variance = b.call("aten::sub.Scalar", [b.call("aten::reciprocal", [b.call("aten::square", [invstd])]), eps]);
  return [b.out(bnOutput(b, y, x), "float32", x.shape), b.out(mean, "float32", [C]), b.out(variance, "float32", [C])];
};

const batchNormTrainGrad: TorchKernel = ({ inputs, backend: b, attrs }) => {
  const { dy, x, mean, variance, scale } = inputs;
  const eps = (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
  const C = x.shape[x.shape.length - 1];
  const invstd = b.call("aten::rsqrt", [b.call("aten::add.Scalar", [b.t(variance), eps])]);
  const [dx, dscale, doffset] = b.callN("aten::native_batch_norm_backward", [
    bnInput(b, dy), bnInput(b, x), b.t(scale), null, null, b.t(mean), invstd, true, eps, [true, true, true],
  ]);
  return [b.out(bnOutput(b, dx, x), "float32", x.shape), b.out(dscale, "float32", [C]), b.out(doffset, "float32", [C])];
};

export const torchFusedKernels: Record<string, TorchKernel> = {
  [Conv2DBiasAct]: conv2dBiasAct,
  [MatMulBiasAct]: matMulBiasAct,
  [BiasActGrad]: biasActGradKernel,
  [MatMulBiasActGrad]: matMulBiasActGrad,
  [CountZeros]: countZeros,
  [SoftmaxCrossEntropy]: softmaxCrossEntropy,
  [SoftmaxCrossEntropyGrad]: softmaxCrossEntropyGrad,
  [SgdUpdate]: sgd(false),
  [SgdNesterovUpdate]: sgd(true),
  [AdamUpdate]: adam,
  [BatchNormTrain]: batchNormTrain,
  [BatchNormTrainGrad]: batchNormTrainGrad,
};
