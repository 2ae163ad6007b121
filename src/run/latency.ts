/**
 * Latency of structured runs: the dense model against the compacted one (a smaller network, not a dense-shaped one
 * full of zeros), same backend and threads, timed in alternation repetition by repetition after a warm-up, at each
 * batch size asked for. Median and interquartile range of the repetitions, so a speedup comes with its spread.
 */
import { median, quantile } from "../metrics/counts.js";
import { latencyTimings, type StagedSplit } from "../train/loop.js";
import type { Model } from "../train/model.js";

export interface LatencyStat {
  medianMs: number;
  /** Third minus first quartile of the repetitions (linear interpolation). */
  iqrMs: number;
}

export async function latencyStats(models: readonly Model[], split: StagedSplit, batchSize: number, repeats: number): Promise<LatencyStat[]> {
  const times = await latencyTimings(models, split, batchSize, repeats);
  return times.map((t) => ({ medianMs: median(t), iqrMs: quantile(t, 0.75) - quantile(t, 0.25) }));
}
