/**
 * Conv and dense layers whose weights are confined to a fixed sparsity pattern (a pruning mask's support), as tfjs
 * kernels: fine-tuning a pruned network then costs about its density instead of the dense network's MACs.
 *
 * The pattern comes from the MASK, not from the weights' zeros: a surviving weight that happens to be 0.0 still gets
 * its gradient. Forward and grad-input read only the pattern's weights; grad-weight is computed only at the pattern's
 * positions and is 0 elsewhere (where the masked optimizer zeroes it anyway). With weights that are 0 outside the
 * pattern (what MaskSet.apply and the masked optimizer steps guarantee) every output equals the dense op's up to the
 * order of float summation.
 *
 * Every backend but "native" gets the composed implementation below: the dense tfjs ops (and, for the gradients, the
 * very kernels tfjs' own Conv2D / BatchMatMul gradients run), pattern ignored. Training does not even reach those: the
 * model's forward takes the sparse op only where `sparseApplies` says so, i.e. on a backend in `sparseBackends`
 * (registered by src/backend/native/) and below the measured density threshold; everywhere else it runs the dense
 * ops it always ran, so results on cpu/wasm do not change by a bit.
 *
 * This module imports tfjs only: importing it must not load the native addon.
 */
import * as tf from "@tensorflow/tfjs-core";

/** Inputs x [N,H,W,C], filter [KH,KW,C,O] (HWIO), pattern (int32, see `SparsePattern`); attrs strides, pad. */
export const SparseConv2D = "PrunebenchSparseConv2D";
/** Inputs dy, filter, pattern; attrs strides, pad, inputShape. Output dx. */
export const SparseConv2DBackpropInput = "PrunebenchSparseConv2DBackpropInput";
/** Inputs x, dy, pattern; attrs strides, pad, filterShape. Output dfilter, 0 outside the pattern. */
export const SparseConv2DBackpropFilter = "PrunebenchSparseConv2DBackpropFilter";
/** Inputs a [B,K], b [K,N], pattern. Output a·b. */
export const SparseMatMul = "PrunebenchSparseMatMul";
/** Inputs dy [B,N], b [K,N], pattern. Output dy·bᵀ. */
export const SparseMatMulGradInput = "PrunebenchSparseMatMulGradInput";
/** Inputs a [B,K], dy [B,N], pattern. Output aᵀ·dy at the pattern's positions, 0 elsewhere. */
export const SparseMatMulGradWeight = "PrunebenchSparseMatMulGradWeight";

/**
 * The highest density (kept fraction of a kernel) at which the sparse kernels run, per layer kind; above it the dense
 * path runs. Measured on this project's 2-core AMD EPYC (Zen 4, AVX2 kernels), batch 128, one thread, CPU time of
 * forward + the gradients training needs, sparse vs dense (oneDNN conv / sgemm), interleaved repetitions:
 *   conv  (LeNet-5-Caffe conv2 20→50 5x5 on 12x12; conv1 1→20 on 28x28): break-even at ~0.8 (conv2 at 0.7: 17.2 vs
 *         20.6 ms, at 0.8: 19.4 vs 20.0; conv1 at 0.8: 3.66 vs 3.67). ResNet-like 3x3 'same' convs break even lower,
 *         ~0.4-0.5 (16→16 on 32x32 at 0.3: 20.9 vs 24.3 ms, at 0.7: 36 vs 25; 64→64 on 8x8 at 0.3: 12.3 vs 18.5, at
 *         0.7: 24.8 vs 18.5). 0.5 keeps LeNet-5-Caffe's convs sparse at ShrinkBench's 2x (density 0.494) and costs a
 *         ResNet conv at most a few % between 0.4 and 0.5.
 *   dense (LeNet-5-Caffe fc1 800→500, LeNet-300-100 fc1 784→300): break-even at ~0.2 (fc1 at 0.2: 3.5 vs 3.75 ms,
 *         at 0.25: 4.6 vs 3.6; 784→300 at 0.2: 2.13 vs 2.11): sgemm runs near peak, the sparse kernels are bound by
 *         the loads of xᵀ rows from L2.
 * Whole steps (`npm run bench:sparse`): LeNet-5-Caffe at ShrinkBench's 2x compression (density 0.49) already runs its
 * convs sparse (0.84 of the dense step forced all-sparse; the dense fc1 is then better left dense).
 */
export const SPARSE_MAX_DENSITY: Readonly<Record<"conv" | "dense", number>> = { conv: 0.5, dense: 0.2 };

/**
 * Convs with more weights than this run sparse only at or below LARGE_CONV_MAX_DENSITY: oneDNN's dense conv runs near
 * peak on wide layers, so the break-even moves far down. The cut is the largest conv the 0.5 above was measured on
 * (64→64 3x3); VGG-16-BN (128–512 channels) at density 0.5 trained at 6,174 ms/step sparse against 2,485 dense, at 0.2
 * 2,521 vs 2,505, at 0.1 2,504 vs 2,490 (batch 128, one thread, quiet machine).
 */
export const LARGE_CONV_WEIGHTS = 64 * 64 * 9;
export const LARGE_CONV_MAX_DENSITY = 0.1;

/**
 * Convs with 5x5 or larger filters (and no more weights than LARGE_CONV_WEIGHTS) run sparse up to this density: each
 * input the sparse kernels load serves 25+ taps, so they win longer than on 3x3 filters. LeNet-5-Caffe's conv2 (20→50
 * 5x5 on 12x12, batch 128, forward + both gradients, CPU ms at load 11): dense 18.4-19.0, sparse at 0.5 13.0, 0.6 15.1,
 * 0.7 17.1-17.3, 0.8 19.5. Global magnitude pruning at ShrinkBench's 2x leaves that conv at density ~0.65.
 */
export const WIDE_FILTER_TAPS = 25;
export const WIDE_FILTER_MAX_DENSITY = 0.7;

/**
 * The thresholds in force: SPARSE_MAX_DENSITY unless a benchmark or test overrides them (1 forces the sparse kernels
 * at every density, -1 never runs them).
 */
export const sparseThresholds: Record<"conv" | "dense", number> = { ...SPARSE_MAX_DENSITY };

/** Backends whose sparse kernels are faster than dense ones (the native backend adds itself when registered). */
export const sparseBackends = new Set<string>();

/**
 * A [K, N] pattern (a dense kernel [in, out]; a conv kernel HWIO flattened to [KH·KW·C, O]) as one int32 array:
 * CSC [colPtr (N+1) | colRow (nnz)] then CSR [rowPtr (K+1) | rowCol (nnz)], indices ascending within a column / row.
 */
export class SparsePattern {
  readonly nnz: number;
  readonly density: number;
  private t: tf.Tensor1D | null = null;

  /** `taps`: the filter's KH·KW for a conv kernel (1 for a dense kernel). */
  constructor(readonly K: number, readonly N: number, readonly packed: Int32Array, readonly taps = 1) {
    this.nnz = packed[N];
    this.density = K * N > 0 ? this.nnz / (K * N) : 1;
  }

  /** The packed pattern as an int32 tensor, made once (on the backend active then) and kept until `dispose`. */
  tensor(): tf.Tensor1D {
    if (!this.t || this.t.isDisposed) this.t = tf.keep(tf.tensor1d(this.packed, "int32"));
    return this.t;
  }

  dispose(): void {
    this.t?.dispose();
    this.t = null;
  }
}

/** The pattern of a kernel's mask (values of shape `shape`; the last axis is the output one): its nonzeros. */
export function sparsePattern(mask: ArrayLike<number>, shape: readonly number[]): SparsePattern {
  const N = shape[shape.length - 1] ?? 1;
  const K = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  if (mask.length !== K * N) throw new Error(`sparsePattern: ${mask.length} mask values for shape [${shape}]`);
  const colCount = new Int32Array(N);
  const rowCount = new Int32Array(K);
  let nnz = 0;
  for (let k = 0, i = 0; k < K; k++) {
    for (let n = 0; n < N; n++, i++) {
      if (mask[i] !== 0) {
        colCount[n]++;
        rowCount[k]++;
        nnz++;
      }
    }
  }
  const packed = new Int32Array(N + 1 + nnz + K + 1 + nnz);
  const colPtr = packed.subarray(0, N + 1), colRow = packed.subarray(N + 1, N + 1 + nnz);
  const rowPtr = packed.subarray(N + 1 + nnz, N + 2 + nnz + K), rowCol = packed.subarray(N + 2 + nnz + K);
  for (let n = 0; n < N; n++) colPtr[n + 1] = colPtr[n] + colCount[n];
  for (let k = 0; k < K; k++) rowPtr[k + 1] = rowPtr[k] + rowCount[k];
  const colPos = colPtr.slice(0, N);
  for (let k = 0, i = 0, r = 0; k < K; k++) {
    for (let n = 0; n < N; n++, i++) {
      if (mask[i] !== 0) {
        colRow[colPos[n]++] = k;
        rowCol[r++] = n;
      }
    }
  }
  return new SparsePattern(K, N, packed, shape.length === 4 ? shape[0] * shape[1] : 1);
}

/** Where a forward pass finds the pattern of a parameter tensor (by the model's tensor name); MaskSet is one. */
export interface SparsePatterns {
  pattern(name: string): SparsePattern | undefined;
}

/** Whether a layer of `kind` with pattern `p` should run sparse on the active backend. */
export function sparseApplies(p: SparsePattern | undefined, kind: "conv" | "dense"): p is SparsePattern {
  if (p == null || !sparseBackends.has(tf.getBackend())) return false;
  // A forced threshold (1 or -1, from a benchmark or test) applies to every layer.
  const forced = sparseThresholds[kind] >= 1 || sparseThresholds[kind] < 0;
  let limit = kind === "conv" && !forced && p.K * p.N > LARGE_CONV_WEIGHTS ? Math.min(LARGE_CONV_MAX_DENSITY, sparseThresholds.conv) : sparseThresholds[kind];
  // Only where the threshold in force is the measured default (a benchmark may lower it to compare).
  if (kind === "conv" && !forced && p.taps >= WIDE_FILTER_TAPS && p.K * p.N <= LARGE_CONV_WEIGHTS && sparseThresholds.conv === SPARSE_MAX_DENSITY.conv) {
    limit = WIDE_FILTER_MAX_DENSITY;
  }
  return p.density <= limit;
}

export interface SparseConvAttrs { strides: number | [number, number]; pad: "same" | "valid" }

/** conv2d(x, filter) with filter's nonzeros confined to `pattern` (NHWC / HWIO, dilation 1). */
export function sparseConv2d(x: tf.Tensor4D, filter: tf.Tensor4D, pattern: SparsePattern, strides: number, pad: "same" | "valid"): tf.Tensor4D {
  return tf.engine().runKernel(SparseConv2D, { x, filter, pattern: pattern.tensor() },
    { strides, pad } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** a [B,K] · b [K,N] with b's nonzeros confined to `pattern`. */
export function sparseMatMul(a: tf.Tensor2D, b: tf.Tensor2D, pattern: SparsePattern): tf.Tensor2D {
  return tf.engine().runKernel(SparseMatMul, { a, b, pattern: pattern.tensor() }) as tf.Tensor2D;
}

type Args = Parameters<tf.KernelFunc>[0];
type Out = tf.TensorInfo | tf.TensorInfo[];

function tensors(args: Args): Record<string, tf.Tensor> {
  return args.inputs as unknown as Record<string, tf.Tensor>;
}

/** The Conv2DBackprop* attrs tfjs' own Conv2D gradient passes (NHWC, no rounding mode). */
function backpropAttrs(a: SparseConvAttrs, extra: Record<string, unknown>): tf.NamedAttrMap {
  return { strides: a.strides, pad: a.pad, dataFormat: "NHWC", dimRoundingMode: undefined, ...extra } as unknown as tf.NamedAttrMap;
}

export function composedSparseConv2D(args: Args): Out {
  const { x, filter } = tensors(args);
  const a = args.attrs as unknown as SparseConvAttrs;
  return tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, a.strides, a.pad);
}

export function composedSparseConv2DBackpropInput(args: Args): Out {
  const { dy, filter } = tensors(args);
  const a = args.attrs as unknown as SparseConvAttrs & { inputShape: number[] };
  return tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, backpropAttrs(a, { inputShape: a.inputShape })) as tf.Tensor;
}

export function composedSparseConv2DBackpropFilter(args: Args): Out {
  const { x, dy } = tensors(args);
  const a = args.attrs as unknown as SparseConvAttrs & { filterShape: number[] };
  return tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, backpropAttrs(a, { filterShape: a.filterShape })) as tf.Tensor;
}

export function composedSparseMatMul(args: Args): Out {
  const { a, b } = tensors(args);
  return tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
}

export function composedSparseMatMulGradInput(args: Args): Out {
  const { dy, b } = tensors(args);
  return tf.matMul(dy as tf.Tensor2D, b as tf.Tensor2D, false, true);
}

export function composedSparseMatMulGradWeight(args: Args): Out {
  const { a, dy } = tensors(args);
  return tf.matMul(a as tf.Tensor2D, dy as tf.Tensor2D, true, false);
}

const composed: Record<string, (args: Args) => Out> = {
  [SparseConv2D]: composedSparseConv2D,
  [SparseConv2DBackpropInput]: composedSparseConv2DBackpropInput,
  [SparseConv2DBackpropFilter]: composedSparseConv2DBackpropFilter,
  [SparseMatMul]: composedSparseMatMul,
  [SparseMatMulGradInput]: composedSparseMatMulGradInput,
  [SparseMatMulGradWeight]: composedSparseMatMulGradWeight,
};

/** Registers the composed kernels for `backendName` where it has none of that name yet. Idempotent. */
export function registerComposedSparseKernels(backendName: string): void {
  for (const [kernelName, fn] of Object.entries(composed)) {
    if (tf.getKernel(kernelName, backendName) == null) {
      tf.registerKernel({ kernelName, backendName, kernelFunc: fn as unknown as tf.KernelFunc });
    }
  }
}

for (const b of ["cpu", "wasm", "tensorflow", "webgl"]) registerComposedSparseKernels(b);

// The pattern is a constant: the tape never asks for its gradient (only inputs that depend on the watched variables
// are backpropagated through).
if (tf.getGradient(SparseConv2D) == null) {
  tf.registerGradient({
    kernelName: SparseConv2D,
    inputsToSave: ["x", "filter", "pattern"],
    gradFunc: (dys, saved, attrs) => {
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [x, filter, pattern] = saved;
      return {
        x: () => tf.engine().runKernel(SparseConv2DBackpropInput, { dy, filter, pattern }, { ...attrs, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
        filter: () => tf.engine().runKernel(SparseConv2DBackpropFilter, { x, dy, pattern }, { ...attrs, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
      };
    },
  });
}

if (tf.getGradient(SparseMatMul) == null) {
  tf.registerGradient({
    kernelName: SparseMatMul,
    inputsToSave: ["a", "b", "pattern"],
    gradFunc: (dys, saved) => {
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [a, b, pattern] = saved;
      return {
        a: () => tf.engine().runKernel(SparseMatMulGradInput, { dy, b, pattern }) as tf.Tensor,
        b: () => tf.engine().runKernel(SparseMatMulGradWeight, { a, dy, pattern }) as tf.Tensor,
      };
    },
  });
}
