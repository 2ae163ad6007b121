/**
 * Feeds a method's training tracker (methods/types.ts TrainingTracker) from a training phase: the per-weight quantity
 * is computed from each step's gradient on the device and summed there, and only each window's mean comes back to
 * the host, once per window, so the steps in between stay asynchronous. Knows quantities, never methods.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { TrainingTracker } from "../../methods/types.js";
import type { StepContext, TrainHooks } from "../train/hooks.js";

export interface WindowFeed {
  /** For TrainHooks.afterGradients: adds this step's quantity to the window's sums. */
  afterGradients: NonNullable<TrainHooks["afterGradients"]>;
  /** Call from afterStep before any mask change: hands the window's mean to the tracker when the window ends. */
  afterStep(ctx: Pick<StepContext, "globalStep">): void;
  dispose(): void;
}

/** A feed for `tracker` over the tensors `names` (the prunable ones). */
export function windowFeed(tracker: TrainingTracker, names: readonly string[]): WindowFeed {
  if (!Number.isInteger(tracker.window) || tracker.window < 1) throw new Error(`a tracker's window must be an integer number of steps >= 1, got ${tracker.window}`);
  const sums = new Map<string, tf.Tensor>();
  let steps = 0;
  const dispose = () => { sums.forEach((t) => t.dispose()); sums.clear(); };
  return {
    afterGradients(gradients, values) {
      for (const name of names) {
        const g = gradients.get(name);
        const w = values.get(name);
        if (!g || !w) throw new Error(`the tracker needs the gradient and value of ${name}, which this phase does not train`);
        const quantity = tf.abs(tf.mul(w, g));
        const old = sums.get(name);
        // Kept past the step's tidy scope; the previous sum was kept the same way and is ours to free.
        sums.set(name, tf.keep(old ? tf.add(old, quantity) : quantity));
        old?.dispose();
      }
      steps++;
    },
    afterStep({ globalStep }) {
      if ((globalStep + 1) % tracker.window !== 0 || steps === 0) return;
      const means = new Map([...sums].map(([name, sum]) => [name, Float32Array.from(sum.dataSync() as Float32Array, (x) => x / steps)]));
      dispose();
      steps = 0;
      tracker.observe(means);
    },
    dispose,
  };
}
