/**
 * In Node, `@tensorflow/tfjs-core` resolves to its CommonJS bundle, which registers NO gradient functions
 * (nor the chained `tensor.sum()`-style methods): tf.grads / optimizer.minimize throw "gradient function
 * not found" until something registers them. The full `@tensorflow/tfjs` and `@tensorflow/tfjs-layers`
 * bundles register all of core's gradients into the shared global registry as an import side effect;
 * tfjs-layers is the lighter of the two (~50 ms vs ~220 ms to import), so it is tried first.
 */
import * as tf from "@tensorflow/tfjs-core";

/** Kernels whose gradients training needs; if all are present nothing is imported. */
const PROBE_KERNELS = [tf.Conv2D, tf.BatchMatMul, tf.Relu, tf.MaxPool, tf.Mean, tf.FusedBatchNorm, tf.Add];

export function gradientsRegistered(): boolean {
  return PROBE_KERNELS.every((k) => tf.getGradient(k) != null);
}

let pending: Promise<void> | null = null;

/** Makes sure tfjs gradient functions are registered (idempotent, cheap once done). */
export function ensureGradients(): Promise<void> {
  if (gradientsRegistered()) return Promise.resolve();
  pending ??= (async () => {
    const errors: string[] = [];
    for (const spec of ["@tensorflow/tfjs-layers", "@tensorflow/tfjs"]) {
      try {
        await import(spec);
      } catch (e) {
        errors.push(`${spec}: ${(e as Error).message}`);
        continue;
      }
      if (gradientsRegistered()) return;
      errors.push(`${spec}: imported but gradients still missing`);
    }
    pending = null;
    throw new Error(
      `tfjs gradient functions are not registered and could not be loaded (${errors.join("; ")}). ` +
        `Install @tensorflow/tfjs-layers or @tensorflow/tfjs 4.22.0 next to @tensorflow/tfjs-core.`,
    );
  })();
  return pending;
}
