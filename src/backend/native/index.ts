// The "native" tfjs backend: the cpu backend (MathBackendCPU, all of its
// kernels re-registered under "native") with the hot training kernels replaced
// by N-API calls into native/ (libtorch convolutions, oneDNN sgemm, C++ loops
// for pooling, elementwise ops, reductions and batch norm).

import * as tf from "@tensorflow/tfjs-core";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { loadAddon, type NativeAddon } from "./addon.js";
import { SparseConv2D, sparseBackends } from "../sparse-ops.js";
import { Conv2DBiasAct, fusedBackends } from "../layer-ops.js";
import { makeDenseStepKernels } from "./dense-step.js";
import { makeKernels, NativeBatchNormGrad, NativeBroadcastDiv, NativeReluGrad, NativeSquareGrad } from "./kernels.js";

export { addonPath, loadAddon } from "./addon.js";
export type { NativeAddon } from "./addon.js";

export const NATIVE_BACKEND = "native";

/** Output buffers at least this long come from the recycling pool. */
const POOL_MIN_LENGTH = 1024;
/** Upper bound on memory parked in the pool. */
const POOL_MAX_BYTES = (Number(process.env.PRUNEBENCH_NATIVE_POOL_MB) || 2048) * 1024 * 1024;

/**
 * MathBackendCPU (without the "install tfjs-node" banner) plus a pool that
 * recycles the Float32Arrays native kernels write their outputs into: a fresh
 * multi-megabyte array costs more in page faults than most kernels cost to run.
 *
 * An array is recycled only when (1) the pool allocated it, (2) no live
 * dataId refers to its ArrayBuffer any more (counted in write/move, so views
 * made by kernels such as Slice are counted too), and (3) it was never handed
 * out by readSync/read/bufferSync (dataSync() returns the backing array itself
 * on this backend, and callers may keep it after disposing the tensor).
 */
export class NativeBackend extends MathBackendCPU {
  private readonly owners = new Map<ArrayBufferLike, number>();
  private readonly pooled = new WeakSet<ArrayBufferLike>();
  private readonly free = new Map<number, Float32Array[]>();
  private freeBytes = 0;

  constructor() {
    super();
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** A Float32Array of `n` elements with unspecified contents (the caller overwrites all of it). */
  alloc(n: number): Float32Array {
    if (n < POOL_MIN_LENGTH) return new Float32Array(n);
    const list = this.free.get(n);
    const a = list?.pop();
    if (a) {
      this.freeBytes -= a.byteLength;
      return a;
    }
    const fresh = new Float32Array(n);
    this.pooled.add(fresh.buffer);
    return fresh;
  }

  /** An Int32Array of `n` elements with unspecified contents, on a pooled buffer (recycled as the float arrays are). */
  allocInt32(n: number): Int32Array {
    const a = this.alloc(n);
    return new Int32Array(a.buffer, a.byteOffset, n);
  }

  private own(values: unknown): void {
    if ((values instanceof Float32Array || values instanceof Int32Array) && this.pooled.has(values.buffer)) {
      this.owners.set(values.buffer, (this.owners.get(values.buffer) ?? 0) + 1);
    }
  }

  private expose(values: unknown): void {
    if (ArrayBuffer.isView(values) && this.pooled.has(values.buffer)) this.pooled.delete(values.buffer);
  }

  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): object {
    this.own(values);
    return super.write(values, shape, dtype);
  }

  override move(
    dataId: object, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType, refCount: number,
  ): void {
    this.own(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: object): tf.backend_util.BackendValues {
    this.expose(this.data.get(dataId)?.values);
    return super.readSync(dataId);
  }

  override disposeData(dataId: object, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const done = super.disposeData(dataId, force);
    if ((values instanceof Float32Array || values instanceof Int32Array) && !this.data.has(dataId)) this.release(values);
    return done;
  }

  /** One owner less for the buffer of `values`; back to the pool when it was the last. */
  private release(values: Float32Array | Int32Array): void {
    const buf = values.buffer;
    const n = this.owners.get(buf);
    if (n == null) return;
    if (n > 1) {
      this.owners.set(buf, n - 1);
      return;
    }
    this.owners.delete(buf);
    if (this.pooled.has(buf) && this.freeBytes + buf.byteLength <= POOL_MAX_BYTES) {
      const whole = new Float32Array(buf);
      let list = this.free.get(whole.length);
      if (!list) this.free.set(whole.length, (list = []));
      list.push(whole);
      this.freeBytes += buf.byteLength;
    }
  }

  /**
   * Where an in-place update of a variable's values may be written: its own array when nothing else can
   * observe the write (the pool allocated it, it was never handed out by dataSync()/data(), no other tensor
   * or view refers to its buffer), else a fresh array to install with `commitValues` (copy on write).
   * null when another tensor shares the variable's data (its refCount is above 1) or it is not float32:
   * then the caller must assign a new tensor instead.
   */
  updatable(dataId: object): Float32Array | null {
    const e = this.data.get(dataId);
    if (!e || e.refCount !== 1 || e.dtype !== "float32" || !(e.values instanceof Float32Array)) return null;
    const v = e.values;
    if (this.pooled.has(v.buffer) && this.owners.get(v.buffer) === 1 && v.byteLength === v.buffer.byteLength) return v;
    return this.alloc(v.length);
  }

  /** Installs `values` (from `updatable`) as the data of `dataId`, releasing the previous array. */
  commitValues(dataId: object, values: Float32Array): void {
    const e = this.data.get(dataId);
    if (!e) throw new Error("commitValues: unknown tensor data");
    const old = e.values;
    if (old === values) return;
    if (!(old instanceof Float32Array) || values.length !== old.length) throw new Error("commitValues: size mismatch");
    e.values = values;
    this.own(values);
    if (old instanceof Float32Array) this.release(old);
  }

  override dispose(): void {
    this.free.clear();
    this.freeBytes = 0;
    super.dispose();
  }
}

export interface NativeBackendOptions {
  /** Intra-op threads for libtorch/oneDNN (default 1). */
  threads?: number;
}

let registered: { ok: true } | { ok: false; reason: string } | undefined;
let nativeAddon: NativeAddon | undefined;

/** Names of the kernels the native backend implements natively (others run the cpu kernels). */
export const nativeKernelNames: string[] = [];

function isNative(): boolean {
  return tf.getBackend() === NATIVE_BACKEND;
}

/**
 * Node's CommonJS tfjs-core registers no gradients; tfjs-layers (or tfjs) does as an
 * import side effect. Load it first so that it cannot overwrite our overrides later.
 */
async function ensureCoreGradients(): Promise<void> {
  if (tf.getGradient(tf.Relu) != null && tf.getGradient(tf.FusedBatchNorm) != null) return;
  for (const spec of ["@tensorflow/tfjs-layers", "@tensorflow/tfjs"]) {
    try {
      await import(spec);
    } catch {
      continue;
    }
    if (tf.getGradient(tf.Relu) != null) return;
  }
}

function registerGradients(): void {
  // Relu: one fused native pass instead of step + cast + mul.
  const reluGrad = tf.getGradient(tf.Relu);
  if (reluGrad) {
    tf.registerGradient({
      kernelName: tf.Relu,
      inputsToSave: ["x"],
      gradFunc: (dy, saved, attrs) => {
        if (!isNative() || Array.isArray(dy)) return reluGrad.gradFunc(dy, saved, attrs);
        const [x] = saved;
        return { x: () => tf.engine().runKernel(NativeReluGrad, { dy, x }) as tf.Tensor };
      },
    });
  }

  // Sum / Mean: broadcast dy back over the reduced axes in one pass (tfjs: ones + mul [+ div]).
  for (const [name, isMean] of [[tf.Sum, false], [tf.Mean, true]] as const) {
    const orig = tf.getGradient(name);
    if (!orig) continue;
    tf.registerGradient({
      kernelName: name,
      inputsToSave: ["x"],
      gradFunc: (dy, saved, attrs) => {
        const [x] = saved;
        if (!isNative() || Array.isArray(dy) || dy.dtype !== "float32" || x.dtype !== "float32") {
          return orig.gradFunc(dy, saved, attrs);
        }
        const axes = tf.util.parseAxisParam((attrs as { axis: number | number[] }).axis, x.shape);
        const expandedShape = x.shape.slice();
        for (const ax of axes) expandedShape[ax] = 1;
        const divisor = isMean ? tf.util.sizeFromShape(axes.map((ax) => x.shape[ax])) : 1;
        return {
          x: () => tf.engine().runKernel(NativeBroadcastDiv, { dy },
            { shape: x.shape, expandedShape, divisor } as unknown as tf.NamedAttrMap) as tf.Tensor,
        };
      },
    });
  }

  // Square: dy * 2x in one pass (tfjs: cast + mul + mul).
  const squareGrad = tf.getGradient(tf.Square);
  if (squareGrad) {
    tf.registerGradient({
      kernelName: tf.Square,
      inputsToSave: ["x"],
      gradFunc: (dy, saved, attrs) => {
        const [x] = saved;
        if (!isNative() || Array.isArray(dy) || dy.dtype !== "float32" || x.dtype !== "float32") {
          return squareGrad.gradFunc(dy, saved, attrs);
        }
        return { x: () => tf.engine().runKernel(NativeSquareGrad, { dy, x }) as tf.Tensor };
      },
    });
  }

  // FusedBatchNorm: all five gradients in one native pass over dy and x.
  const bnGrad = tf.getGradient(tf.FusedBatchNorm);
  if (bnGrad) {
    tf.registerGradient({
      kernelName: tf.FusedBatchNorm,
      inputsToSave: bnGrad.inputsToSave ?? ["x", "mean", "variance", "scale"],
      gradFunc: (dy, saved, attrs) => {
        const [x, mean, variance, scale] = saved;
        const C = x.shape[x.rank - 1];
        const fits = (t: tf.Tensor | undefined) => t == null || (t.rank === 1 && t.size === C);
        if (!isNative() || Array.isArray(dy) || x.rank < 2 || x.dtype !== "float32" || mean.rank !== 1 ||
            mean.size !== C || !fits(variance) || variance == null || !fits(scale)) {
          return bnGrad.gradFunc(dy, saved, attrs);
        }
        const inputs: tf.NamedTensorMap = { dy, x, mean, variance };
        if (scale != null) inputs.scale = scale;
        const [dx, dmean, dvar, dscale, doffset] = tf.engine().runKernel(
          NativeBatchNormGrad, inputs, { varianceEpsilon: (attrs as unknown as tf.FusedBatchNormAttrs).varianceEpsilon },
        ) as tf.Tensor[];
        return {
          x: () => dx,
          mean: () => dmean,
          variance: () => dvar,
          scale: () => dscale,
          offset: () => doffset,
        };
      },
    });
  }
}

/**
 * Loads the addon and registers the "native" backend (priority 0: it is only
 * used when selected with tf.setBackend("native")). Never throws; idempotent.
 */
export async function registerNativeBackend(
  opts: NativeBackendOptions = {},
): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (registered?.ok) {
    if (opts.threads != null) nativeAddon?.setNumThreads(opts.threads);
    return registered;
  }
  try {
    const loaded = loadAddon();
    if ("error" in loaded) return (registered = { ok: false, reason: loaded.error });
    const addon = loaded.addon;
    addon.setNumThreads(Math.max(1, Math.floor(opts.threads ?? 1)));

    // Importing @tensorflow/tfjs-backend-cpu registered the cpu kernels.
    const cpuKernels = tf.getKernelsForBackend("cpu");
    if (cpuKernels.length === 0) {
      return (registered = { ok: false, reason: "no cpu kernels registered (tfjs-backend-cpu not loaded)" });
    }
    const fallbacks = new Map(cpuKernels.map((c) => [c.kernelName, c.kernelFunc]));
    const natives = { ...makeKernels(addon), ...makeDenseStepKernels(addon) };

    if (!tf.findBackendFactory(NATIVE_BACKEND)) {
      tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(), 0);
    }
    const already = new Set(tf.getKernelsForBackend(NATIVE_BACKEND).map((c) => c.kernelName));
    for (const [name, fn] of Object.entries(natives)) {
      if (already.has(name)) continue;
      const fb = fallbacks.get(name);
      tf.registerKernel({
        kernelName: name,
        backendName: NATIVE_BACKEND,
        kernelFunc: ((args: Parameters<tf.KernelFunc>[0]) => fn(args, fb)) as tf.KernelFunc,
      });
      nativeKernelNames.push(name);
      already.add(name);
    }
    for (const c of cpuKernels) {
      if (already.has(c.kernelName)) continue;
      tf.registerKernel({ ...c, backendName: NATIVE_BACKEND });
    }
    await ensureCoreGradients();
    registerGradients();
    if (natives[SparseConv2D]) sparseBackends.add(NATIVE_BACKEND);
    if (natives[Conv2DBiasAct]) fusedBackends.add(NATIVE_BACKEND);
    nativeAddon = addon;
    return (registered = { ok: true });
  } catch (e) {
    return (registered = { ok: false, reason: `native backend registration failed: ${(e as Error).message}` });
  }
}
