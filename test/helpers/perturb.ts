import * as tf from "@tensorflow/tfjs-core";
import { makeRng } from "../../src/core/rng.js";
import type { Model } from "../../src/train/model.js";

/**
 * Non-trivial batch norm (γ, β, running statistics) and biases, so that a channel left alive by mistake shows in a
 * compacted model's outputs (fresh ones are 1, 0 and 0: a removed channel's bias and shift would be invisible).
 */
export function perturb(model: Model, seed: number): void {
  const rng = makeRng(seed, "perturb");
  for (const [name, v] of [...model.params, ...model.state]) {
    if (name.endsWith("/kernel") || name.endsWith("/embedding")) continue;
    const positive = name.endsWith("moving_var") || name.endsWith("gamma");
    tf.tidy(() => v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => (positive ? 0.5 + rng() : rng() - 0.5)), v.shape)));
  }
}
