// The "native" tfjs backend: the cpu backend (MathBackendCPU, all of its
// kernels re-registered under "native") with the hot training kernels replaced
// by N-API calls into native/ (libtorch convolutions, oneDNN sgemm, C++ loops
// for pooling, elementwise ops, reductions and batch norm).

import * as tf from "@tensorflow/tfjs-core";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { loadAddon, type NativeAddon } from "./addon.js";
import { makeKernels, NativeBatchNormGrad, NativeReluGrad } from "./kernels.js";

export { addonPath, loadAddon } from "./addon.js";
export type { NativeAddon } from "./addon.js";

export const NATIVE_BACKEND = "native";

/** MathBackendCPU without the "install tfjs-node" banner on first use. */
class NativeBackend extends MathBackendCPU {
  constructor() {
    super();
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }
}

export interface NativeBackendOptions {
  /** Intra-op threads for libtorch/oneDNN (default 1). */
  threads?: number;
}

let registered: { ok: true } | { ok: false; reason: string } | undefined;
let nativeAddon: NativeAddon | undefined;

/** The loaded addon, once registerNativeBackend() succeeded. */
export function getNativeAddon(): NativeAddon | undefined {
  return nativeAddon;
}

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
    const natives = makeKernels(addon);

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
    nativeAddon = addon;
    return (registered = { ok: true });
  } catch (e) {
    return (registered = { ok: false, reason: `native backend registration failed: ${(e as Error).message}` });
  }
}
