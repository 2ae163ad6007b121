/**
 * Latency of structured runs: the dense model against the compacted one (a smaller network, not a dense-shaped one
 * full of zeros), same backend and threads, timed in alternation repetition by repetition after a warm-up, at each
 * batch size asked for. Median and interquartile range of the repetitions, so a speedup comes with its spread.
 */
import * as tf from "@tensorflow/tfjs-core";
import { median } from "../metrics/counts.js";
import type { StagedSplit } from "../train/loop.js";
import { forward, type Model } from "../train/model.js";

export interface LatencyStat {
  medianMs: number;
  /** Third minus first quartile of the repetitions (linear interpolation). */
  iqrMs: number;
}

export async function latencyStats(models: readonly Model[], split: StagedSplit, batchSize: number, repeats: number): Promise<LatencyStat[]> {
  const size = Math.min(batchSize, split.count);
  const xb = tf.slice(split.x, [0, 0, 0, 0], [size, -1, -1, -1]);
  const once = async (model: Model) => {
    const t0 = performance.now();
    const out = tf.tidy(() => forward(model, xb, false).logits);
    await out.data();
    out.dispose();
    return performance.now() - t0;
  };
  try {
    for (let i = 0; i < 3; i++) for (const m of models) await once(m);
    const times: number[][] = models.map(() => []);
    for (let i = 0; i < repeats; i++) for (let k = 0; k < models.length; k++) times[k].push(await once(models[k]));
    return times.map((t) => ({ medianMs: median(t), iqrMs: quantile(t, 0.75) - quantile(t, 0.25) }));
  } finally {
    xb.dispose();
  }
}

function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
}
