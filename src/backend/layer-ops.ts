/**
 * A conv or dense layer's bias add and ReLU fused into the layer's kernel, as tfjs kernels: on LeNet-5-Caffe every
 * pass over conv1's [128, 24, 24, 20] activations costs ~0.5 ms, and the unfused layer makes seven of them (Add, Relu,
 * ReluGrad, the bias gradient's Sum: reads and writes) where the fused one makes two (the bias-and-ReLU epilogue runs
 * in the conv's own output copy; the gradient of both is one pass).
 *
 *   y  = act(conv2d(x, filter) + bias)      (or x·b + bias; optionally with the filter's sparsity pattern)
 *   dz = act'(dy) from y (ReLU: dy where y > 0), dbias = dz summed over every axis but the last,
 *   dx, dfilter = the conv's (or matmul's, or the sparse kernels') own gradients of dz.
 *
 * Only backends in `fusedBackends` (the native backend adds itself) get the fused kernels from TensorOps; every other
 * backend keeps running the separate ops it always ran, so its results do not change by a bit. The composed
 * implementations below (those separate ops, registered for every other backend) exist for completeness and as the
 * reference the native kernels are tested against: on native the fused kernels give the same bits as the unfused ops
 * (same float32 operations in the same order; the bias gradient accumulates in double like the native Sum).
 *
 * This module imports tfjs only: importing it must not load the native addon.
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  SparseConv2DBackpropFilter, SparseConv2DBackpropInput, SparseMatMulGradInput, SparseMatMulGradWeight, type SparsePattern,
} from "./sparse-ops.js";

export type Activation = "linear" | "relu";

/** Inputs x [N,H,W,C], filter [KH,KW,C,O], bias [O]; attrs strides, pad, activation. Output act(conv + bias). */
export const Conv2DBiasAct = "PrunebenchConv2DBiasAct";
/** The same with the filter's nonzeros confined to input `pattern` (see SparseConv2D). */
export const SparseConv2DBiasAct = "PrunebenchSparseConv2DBiasAct";
/** Inputs a [B,K], b [K,N], bias [N]; attr activation. Output act(a·b + bias). */
export const MatMulBiasAct = "PrunebenchMatMulBiasAct";
/** The same with b's nonzeros confined to input `pattern` (see SparseMatMul). */
export const SparseMatMulBiasAct = "PrunebenchSparseMatMulBiasAct";
/** Inputs dy, y (the fused op's output); attr activation. Outputs dz (dy through the activation) and dbias [C]. */
export const BiasActGrad = "PrunebenchBiasActGrad";
/**
 * A dense layer's gradient except dx, in one kernel: inputs dy, y (the fused op's output), a (its input); attr
 * activation. Outputs dz and dbias (as `BiasActGrad`) and db = aᵀ·dz, the weights' gradient. Every taped kernel costs
 * the engine a dispatch, a tape entry and a thunk; an MLP's backward pass made one BiasActGrad and one BatchMatMul
 * per layer. dx = dz·bᵀ stays a separate matmul, run only where the tape asks for it (never for the first layer).
 */
export const MatMulBiasActGrad = "PrunebenchMatMulBiasActGrad";
/**
 * The conv layer's gradient except dx, in one kernel: inputs x, dy, y (the fused op's output) and, for the sparse op,
 * pattern; attrs strides, pad, activation, filterShape. Outputs dfilter and dbias, those of BiasActGrad followed by
 * the filter gradient. Used where nothing needs the layer's input gradient (a network's first conv, on the data): there
 * dz, BiasActGrad's [N, H, W, C] output, would be written only to be read once, and on LeNet-5-Caffe's conv1 (128 x 24
 * x 24 x 20) each such pass costs about as much as the arithmetic.
 */
export const Conv2DBiasActGradFilter = "PrunebenchConv2DBiasActGradFilter";
/** Input x. Output a float32 scalar: how many elements of x are 0 (ReLU's dead units, see TensorOps). */
export const CountZeros = "PrunebenchCountZeros";
/**
 * A conv layer with ReLU followed by a 2x2 / stride-2 max pool, in one kernel: inputs x, filter, bias (and `pattern`
 * for the sparse one); attrs those of Conv2DBiasAct plus countZeros. Outputs p, the pooled act(conv + bias); code
 * (int32, one per pooled value), which window position its gradient reaches (native/src/smallconv.h, maxPoolCode2x2);
 * and a float32 scalar, how many elements of act(conv + bias) are 0 when countZeros is set (else 0). The layer's
 * [N, H, W, C] output is never a tensor: the backward pass reads dp and the codes (a quarter of the values, as int32)
 * instead of y and MaxPoolGrad's and BiasActGrad's [N, H, W, C] gradients, each a pass over memory: on LeNet-5-Caffe's
 * conv1 (128 x 24 x 24 x 20) those passes cost more than the pooled layer's arithmetic. The gradients are the bits of
 * the separate kernels (Conv2DBiasAct, MaxPool, MaxPoolGrad, BiasActGrad, the filter and input gradients).
 * Only a backend that registers these kernels runs them (the native backend); TensorOps runs the separate ops elsewhere.
 */
export const Conv2DBiasActPool = "PrunebenchConv2DBiasActPool";
export const SparseConv2DBiasActPool = "PrunebenchSparseConv2DBiasActPool";
/** Inputs dp (the pooled gradient), code (Conv2DBiasActPool's). Outputs dz [N, 2PH, 2PW, C] and dbias, BiasActGrad's values. */
export const MaxPoolBiasActGrad = "PrunebenchMaxPoolBiasActGrad";
/**
 * The pooled layer's filter and bias gradients from x, dp and code (and pattern), as Conv2DBiasActGradFilter takes
 * them from dy and y: for a first conv, whose input gradient nothing asks for. Attrs strides, pad, filterShape.
 */
export const Conv2DBiasActPoolGradFilter = "PrunebenchConv2DBiasActPoolGradFilter";
/**
 * The sparse pooled layer's three gradients in one kernel: inputs x, filter, dp, code, pattern; attrs strides, pad.
 * Outputs dx, dfilter, dbias: MaxPoolBiasActGrad's dz through the sparse input and filter gradients, where the native
 * kernel routes each image's dz in cache and reads it once for both (LeNet-5-Caffe's conv2: the [N, 8, 8, 50] dz is
 * never written, and its two planar copies become one). Registered by the backends that register SparseConv2DBiasActPool.
 */
export const SparseConv2DBiasActPoolGrad = "PrunebenchSparseConv2DBiasActPoolGrad";

export interface ConvBiasActAttrs {
  strides: number | [number, number]; pad: "same" | "valid"; activation: Activation;
  /** false: nothing asks for the gradient of x (the data), so the backward pass may skip dz (Conv2DBiasActGradFilter). */
  inputGrad?: boolean;
}

/** Backends whose fused kernels are faster than the separate ops (the native backend adds itself when registered). */
export const fusedBackends = new Set<string>();

/** Whether TensorOps should run the fused layer kernels on the active backend. */
export function fusedApplies(): boolean {
  return fusedBackends.has(tf.getBackend());
}

/**
 * act(conv2d(x, filter) + bias), with `pattern` the sparse kernels' (the caller decides, see sparseApplies).
 * `inputGrad` false says x is data no gradient is asked of (the backward pass then skips dz; asking anyway still works).
 */
export function conv2dBiasAct(
  x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, pattern: SparsePattern | undefined, strides: number, pad: "same" | "valid",
  activation: Activation, inputGrad = true,
): tf.Tensor4D {
  const attrs = { strides, pad, activation, ...(inputGrad ? {} : { inputGrad: false }) } as unknown as tf.NamedAttrMap;
  return (pattern
    ? tf.engine().runKernel(SparseConv2DBiasAct, { x, filter, bias, pattern: pattern.tensor() }, attrs)
    : tf.engine().runKernel(Conv2DBiasAct, { x, filter, bias }, attrs)) as tf.Tensor4D;
}

/**
 * Whether TensorOps may run conv + ReLU + 2x2 max pool as Conv2DBiasActPool on the active backend: it registers the
 * kernel, and PRUNEBENCH_CONV_POOL is not 0 (A/B runs; the separate ops give the same bits).
 */
export function convPoolApplies(): boolean {
  return process.env.PRUNEBENCH_CONV_POOL !== "0" && tf.getKernel(Conv2DBiasActPool, tf.getBackend()) != null;
}

/**
 * maxPool(relu(conv2d(x, filter) + bias), 2) with its conv output's zeros counted when `countZeros` (a scalar, else
 * 0): Conv2DBiasActPool. The conv's output height and width must be even (the caller checks; the pool then covers it).
 */
export function conv2dBiasActPool(
  x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, pattern: SparsePattern | undefined, strides: number, pad: "same" | "valid",
  inputGrad: boolean, countZeros: boolean,
): { pooled: tf.Tensor4D; zeros: tf.Scalar } {
  const attrs = { strides, pad, activation: "relu", countZeros, ...(inputGrad ? {} : { inputGrad: false }) } as unknown as tf.NamedAttrMap;
  const [pooled, code, zeros] = (pattern
    ? tf.engine().runKernel(SparseConv2DBiasActPool, { x, filter, bias, pattern: pattern.tensor() }, attrs)
    : tf.engine().runKernel(Conv2DBiasActPool, { x, filter, bias }, attrs)) as tf.Tensor[];
  code.dispose();
  return { pooled: pooled as tf.Tensor4D, zeros: zeros as tf.Scalar };
}

/** act(a·b + bias), with `pattern` the sparse kernels'. */
export function matMulBiasAct(a: tf.Tensor2D, b: tf.Tensor2D, bias: tf.Tensor, pattern: SparsePattern | undefined, activation: Activation): tf.Tensor2D {
  const attrs = { activation } as unknown as tf.NamedAttrMap;
  return (pattern
    ? tf.engine().runKernel(SparseMatMulBiasAct, { a, b, bias, pattern: pattern.tensor() }, attrs)
    : tf.engine().runKernel(MatMulBiasAct, { a, b, bias }, attrs)) as tf.Tensor2D;
}

/** How many elements of x are exactly 0, as a float32 scalar: sum(cast(equal(x, 0), "float32")). */
export function countZeros(x: tf.Tensor): tf.Scalar {
  return tf.engine().runKernel(CountZeros, { x }) as tf.Scalar;
}

type Args = Parameters<tf.KernelFunc>[0];
type Out = tf.TensorInfo | tf.TensorInfo[];

function tensors(args: Args): Record<string, tf.Tensor> {
  return args.inputs as unknown as Record<string, tf.Tensor>;
}

function act(y: tf.Tensor, activation: Activation): tf.Tensor {
  return activation === "relu" ? tf.relu(y) : y;
}

/** The ops TensorOps ran before the fusion: conv2d, add, relu (a sparse pattern does not change the values). */
export function composedConv2DBiasAct(args: Args): Out {
  const { x, filter, bias } = tensors(args);
  const a = args.attrs as unknown as ConvBiasActAttrs;
  return tf.tidy(() => act(tf.add(tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, a.strides, a.pad), bias), a.activation));
}

export function composedMatMulBiasAct(args: Args): Out {
  const { a, b, bias } = tensors(args);
  const activation = (args.attrs as unknown as { activation: Activation }).activation;
  return tf.tidy(() => act(tf.add(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D), bias), activation));
}

/** What autodiff computes through those ops: Relu's gradient (dy · step, of y: y > 0 exactly where y's input is), Add's bias gradient. */
export function composedBiasActGrad(args: Args): Out {
  const { dy, y } = tensors(args);
  const activation = (args.attrs as unknown as { activation: Activation }).activation;
  return tf.tidy(() => {
    const dz = activation === "relu" ? tf.mul(dy, tf.cast(tf.step(y), "float32")) : tf.clone(dy);
    const C = dz.shape[dz.shape.length - 1];
    return [dz, tf.reshape(tf.sum(dz, dz.shape.map((_, i) => i).slice(0, -1)), [C])];
  });
}

/** `BiasActGrad`'s ops, then the weight gradient as BatchMatMul's own gradient takes it (aᵀ·dz). */
export function composedMatMulBiasActGrad(args: Args): Out {
  const { a } = tensors(args);
  const [dz, dbias] = composedBiasActGrad(args) as tf.Tensor[];
  return [dz, dbias, tf.matMul(a as tf.Tensor2D, dz as tf.Tensor2D, true, false)];
}

/** BiasActGrad's ops, then the filter gradient as the layer's gradient takes it from dz (the sparse kernel with a pattern). */
export function composedConv2DBiasActGradFilter(args: Args): Out {
  const { x, dy, y, pattern } = tensors(args);
  const a = args.attrs as unknown as ConvBiasActAttrs & { filterShape: number[] };
  const [dz, dbias] = tf.engine().runKernel(BiasActGrad, { dy, y }, { activation: a.activation } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  const dfilter = (pattern
    ? tf.engine().runKernel(SparseConv2DBackpropFilter, { x, dy: dz, pattern }, { strides: a.strides, pad: a.pad, filterShape: a.filterShape } as unknown as tf.NamedAttrMap)
    : tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: dz }, backpropAttrs(a, { filterShape: a.filterShape }))) as tf.Tensor;
  dz.dispose();
  return [dfilter, dbias];
}

/** Conv2DBiasActPoolGradFilter as separate kernels: dz and dbias routed from the pooled gradient, then dz's filter gradient. */
export function composedConv2DBiasActPoolGradFilter(args: Args): Out {
  const { x, dp, code, pattern } = tensors(args);
  const a = args.attrs as unknown as ConvBiasActAttrs & { filterShape: number[] };
  const [dz, dbias] = tf.engine().runKernel(MaxPoolBiasActGrad, { dp, code }) as tf.Tensor[];
  const dfilter = convFilterGrad(x, dz, pattern ?? null, a, a.filterShape);
  dz.dispose();
  return [dfilter, dbias];
}

/** SparseConv2DBiasActPoolGrad as separate kernels: dz and dbias routed from the pooled gradient, then dz's two gradients. */
export function composedSparseConv2DBiasActPoolGrad(args: Args): Out {
  const { x, filter, dp, code, pattern } = tensors(args);
  const a = args.attrs as unknown as ConvBiasActAttrs;
  const [dz, dbias] = tf.engine().runKernel(MaxPoolBiasActGrad, { dp, code }) as tf.Tensor[];
  const dx = convInputGrad(dz, filter, pattern, a, x.shape);
  const dfilter = convFilterGrad(x, dz, pattern, a, filter.shape);
  dz.dispose();
  return [dx, dfilter, dbias];
}

export function composedCountZeros(args: Args): Out {
  const { x } = tensors(args);
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(x, 0), "float32")));
}

const composed: Record<string, (args: Args) => Out> = {
  [Conv2DBiasAct]: composedConv2DBiasAct,
  [SparseConv2DBiasAct]: composedConv2DBiasAct,
  [MatMulBiasAct]: composedMatMulBiasAct,
  [SparseMatMulBiasAct]: composedMatMulBiasAct,
  [BiasActGrad]: composedBiasActGrad,
  [MatMulBiasActGrad]: composedMatMulBiasActGrad,
  [Conv2DBiasActGradFilter]: composedConv2DBiasActGradFilter,
  [CountZeros]: composedCountZeros,
};

/** Registers the composed kernels for `backendName` where it has none of that name yet. Idempotent. */
export function registerComposedLayerKernels(backendName: string): void {
  for (const [kernelName, fn] of Object.entries(composed)) {
    if (tf.getKernel(kernelName, backendName) == null) {
      tf.registerKernel({ kernelName, backendName, kernelFunc: fn as unknown as tf.KernelFunc });
    }
  }
}

for (const b of ["cpu", "wasm", "tensorflow", "webgl"]) registerComposedLayerKernels(b);

/** The Conv2DBackprop* attrs tfjs' own Conv2D gradient passes (NHWC, no rounding mode). */
function backpropAttrs(a: ConvBiasActAttrs, extra: Record<string, unknown>): tf.NamedAttrMap {
  return { strides: a.strides, pad: a.pad, dataFormat: "NHWC", dimRoundingMode: undefined, ...extra } as unknown as tf.NamedAttrMap;
}

/**
 * dz and dbias, computed when the gradient function runs (not in an input's thunk: each thunk runs in its own tidy, and
 * both the input's and the filter's need dz). They live until the backward pass ends, as autodiff's intermediate
 * gradients always do.
 */
function biasActGrad(dys: tf.Tensor | tf.Tensor[], y: tf.Tensor, activation: Activation): [tf.Tensor, tf.Tensor] {
  const dy = Array.isArray(dys) ? dys[0] : dys;
  return tf.engine().runKernel(BiasActGrad, { dy, y }, { activation } as unknown as tf.NamedAttrMap) as unknown as [tf.Tensor, tf.Tensor];
}

/** A conv layer's input gradient from dz: the sparse kernel's with a pattern, else tfjs' Conv2DBackpropInput. */
function convInputGrad(dz: tf.Tensor, filter: tf.Tensor, pattern: tf.Tensor | null, a: ConvBiasActAttrs, inputShape: number[]): tf.Tensor {
  return (pattern
    ? tf.engine().runKernel(SparseConv2DBackpropInput, { dy: dz, filter, pattern }, { strides: a.strides, pad: a.pad, inputShape } as unknown as tf.NamedAttrMap)
    : tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: dz, filter }, backpropAttrs(a, { inputShape }))) as tf.Tensor;
}

/** A conv layer's filter gradient from dz: the sparse kernel's with a pattern, else tfjs' Conv2DBackpropFilter. */
function convFilterGrad(x: tf.Tensor, dz: tf.Tensor, pattern: tf.Tensor | null, a: ConvBiasActAttrs, filterShape: number[]): tf.Tensor {
  return (pattern
    ? tf.engine().runKernel(SparseConv2DBackpropFilter, { x, dy: dz, pattern }, { strides: a.strides, pad: a.pad, filterShape } as unknown as tf.NamedAttrMap)
    : tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: dz }, backpropAttrs(a, { filterShape }))) as tf.Tensor;
}

// The pattern is a constant: the tape never asks for its gradient (only inputs that depend on the watched variables
// are backpropagated through).
for (const sparse of [false, true]) {
  const convName = sparse ? SparseConv2DBiasAct : Conv2DBiasAct;
  if (tf.getGradient(convName) == null) {
    tf.registerGradient({
      kernelName: convName,
      inputsToSave: sparse ? ["x", "filter", "pattern"] : ["x", "filter"],
      outputsToSave: [true],
      gradFunc: (dys, saved, attrs) => {
        const [x, filter] = saved;
        const pattern = sparse ? saved[2] : null;
        const y = saved[saved.length - 1];
        const a = attrs as unknown as ConvBiasActAttrs;
        if (a.inputGrad === false) {
          const dy = Array.isArray(dys) ? dys[0] : dys;
          const [dfilter, dbias] = tf.engine().runKernel(Conv2DBiasActGradFilter, pattern ? { x, dy, y, pattern } : { x, dy, y },
            { strides: a.strides, pad: a.pad, activation: a.activation, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor[];
          // Should x's gradient be asked for after all, dz is made for it alone (its thunk's tidy frees it).
          return { x: () => convInputGrad(biasActGrad(dys, y, a.activation)[0], filter, pattern, a, x.shape), filter: () => dfilter, bias: () => dbias };
        }
        const [dz, dbias] = biasActGrad(dys, y, a.activation);
        return { x: () => convInputGrad(dz, filter, pattern, a, x.shape), filter: () => convFilterGrad(x, dz, pattern, a, filter.shape), bias: () => dbias };
      },
    });
  }
  const poolName = sparse ? SparseConv2DBiasActPool : Conv2DBiasActPool;
  if (tf.getGradient(poolName) == null) {
    tf.registerGradient({
      kernelName: poolName,
      inputsToSave: sparse ? ["x", "filter", "pattern"] : ["x", "filter"],
      // p, code, zeros: the gradient needs the codes alone.
      outputsToSave: [false, true, false],
      gradFunc: (dys, saved, attrs) => {
        const [x, filter] = saved;
        const pattern = sparse ? saved[2] : null;
        const code = saved[saved.length - 1];
        const a = attrs as unknown as ConvBiasActAttrs;
        const dp = Array.isArray(dys) ? dys[0] : dys;
        const route = () => tf.engine().runKernel(MaxPoolBiasActGrad, { dp, code }) as unknown as [tf.Tensor, tf.Tensor];
        if (a.inputGrad === false) {
          const [dfilter, dbias] = tf.engine().runKernel(Conv2DBiasActPoolGradFilter, pattern ? { x, dp, code, pattern } : { x, dp, code },
            { strides: a.strides, pad: a.pad, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor[];
          return { x: () => convInputGrad(route()[0], filter, pattern, a, x.shape), filter: () => dfilter, bias: () => dbias };
        }
        if (pattern && tf.getKernel(SparseConv2DBiasActPoolGrad, tf.getBackend()) != null) {
          const [dx, dfilter, dbias] = tf.engine().runKernel(SparseConv2DBiasActPoolGrad, { x, filter, dp, code, pattern },
            { strides: a.strides, pad: a.pad } as unknown as tf.NamedAttrMap) as tf.Tensor[];
          return { x: () => dx, filter: () => dfilter, bias: () => dbias };
        }
        const [dz, dbias] = route();
        return { x: () => convInputGrad(dz, filter, pattern, a, x.shape), filter: () => convFilterGrad(x, dz, pattern, a, filter.shape), bias: () => dbias };
      },
    });
  }
  const mmName = sparse ? SparseMatMulBiasAct : MatMulBiasAct;
  if (tf.getGradient(mmName) == null) {
    tf.registerGradient({
      kernelName: mmName,
      inputsToSave: sparse ? ["a", "b", "pattern"] : ["a", "b"],
      outputsToSave: [true],
      gradFunc: (dys, saved, attrs) => {
        const [a, b] = saved;
        const pattern = sparse ? saved[2] : null;
        const y = saved[saved.length - 1];
        const activation = (attrs as unknown as { activation: Activation }).activation;
        if (!pattern) {
          const dy = Array.isArray(dys) ? dys[0] : dys;
          const [dz, dbias, db] = tf.engine().runKernel(MatMulBiasActGrad, { dy, y, a }, { activation } as unknown as tf.NamedAttrMap) as tf.Tensor[];
          return { a: () => tf.matMul(dz as tf.Tensor2D, b as tf.Tensor2D, false, true), b: () => db, bias: () => dbias };
        }
        const [dz, dbias] = biasActGrad(dys, y, activation);
        // BatchMatMul's own gradient for a·b: dz·bᵀ and aᵀ·dz.
        return {
          a: () => (pattern
            ? tf.engine().runKernel(SparseMatMulGradInput, { dy: dz, b, pattern }) as tf.Tensor
            : tf.matMul(dz as tf.Tensor2D, b as tf.Tensor2D, false, true)),
          b: () => (pattern
            ? tf.engine().runKernel(SparseMatMulGradWeight, { a, dy: dz, pattern }) as tf.Tensor
            : tf.matMul(a as tf.Tensor2D, dz as tf.Tensor2D, true, false)),
          bias: () => dbias,
        };
      },
    });
  }
}
