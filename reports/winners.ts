/**
 * Which method wins, by how much, and is the difference real: pairwise comparisons of two methods' runs at one
 * (dataset, arch, target), and the winner at each target, per dataset × arch only (leaderboards per pair, never one
 * global ranking: PruningBench, 2024). `bench compare`, the report's winner table and the results table's bold all
 * come from here, so they cannot disagree. The statistics are in ./stats.ts.
 */
import { DATASETS } from "../datasets/index.js";
import type { PruneTarget } from "../src/core/types.js";
import { targetLabel } from "../src/grid/label.js";
import { METRICS } from "../src/metrics/names.js";
import { groupId, panelLabel, targetOrder } from "./aggregate.js";
import type { RunRow } from "./model.js";
import { ALPHA, pairedTTest, seedsToSeparate, summarize, twoProportionTest, wilsonInterval, type Stat } from "./stats.js";

/**
 * How a metric varies between runs that differ only by chance:
 * - binomial: an accuracy on n test images (one run has a Wilson interval; two single runs a two-proportion test);
 * - measured: timings and losses, whose noise only repeated seeds reveal (one seed: no claim);
 * - deterministic: counts fixed by the mask (params, MACs, compression), where only a difference beyond rounding counts.
 */
export type NoiseKind = "binomial" | "measured" | "deterministic";

/** Relative difference below which two deterministic counts are the same (rounding a weight budget, not a method's doing). */
export const DETERMINISTIC_TOLERANCE = 0.01;

export function noiseOf(metric: string): NoiseKind {
  if (/^(top1|top5|val_top1)_/.test(metric)) return "binomial";
  const unit = METRICS.get(metric)?.unit;
  if (unit === "count" || unit === "MACs" || metric === "compression_ratio" || metric === "theoretical_speedup" || metric.endsWith("sparsity")) return "deterministic";
  return "measured";
}

/**
 * Test images a run was evaluated on: the grid's `test_subset` when it is smaller than the dataset's test split,
 * else the whole split (src/train/data.ts takes exactly that many, class-balanced). null when the dataset is not one
 * of prunebench's (e.g. a database from a newer version).
 */
export function testImagesOf(run: Pick<RunRow, "dataset" | "config">): number | null {
  const split = DATASETS.find((d) => d.name === run.dataset)?.splitSizes.test;
  if (split === undefined) return null;
  const subset = (run.config as { data?: { testSubset?: unknown } } | null)?.data?.testSubset;
  return typeof subset === "number" && subset > 0 && subset < split ? subset : split;
}

/** Wilson interval of one run's accuracy metric on its test images; null when the test-set size is unknown. */
export function runWilson(run: RunRow, metric = "top1_after"): [number, number] | null {
  const v = run.metrics[metric];
  const n = testImagesOf(run);
  if (v === null || v === undefined || !Number.isFinite(v) || n === null || v < 0 || v > 1) return null;
  return wilsonInterval(v, n);
}

export type CompareTest = "paired-t" | "two-proportion" | "tolerance" | "none";

/** Method A against method B at one (dataset, arch, target) on one metric. */
export interface MethodComparison {
  dataset: string;
  arch: string;
  targetKind: PruneTarget["kind"];
  targetValue: number;
  target: string;
  metric: string;
  a: string;
  b: string;
  /** Over all of each method's done runs (every seed, paired or not). */
  statA: Stat;
  statB: Stat;
  /** Seeds run by both with the same dense model: the pairs. */
  pairedSeeds: number[];
  /** Seeds only one of the two has (or whose dense models differ): left out of the paired test. */
  unpairedSeeds: number[];
  test: CompareTest;
  /** A − B: the mean per-seed difference (paired), the difference of the single runs, or of the means. */
  diff: number;
  ci: [number, number] | null;
  p: number | null;
  /** Per-seed differences' sample std (paired test only). */
  diffStd: number | null;
  significant: boolean;
  /** The better method when significant; null: a tie. */
  better: string | null;
  /** Seeds at which this mean difference with this std would be significant (paired test only; Infinity: never). */
  seedsNeeded: number | null;
  /** Test images behind the binomial test (the smaller of the two when they differ). */
  testImages: number | null;
  /** How the verdict was reached, in words. */
  method: string;
}

function finite(v: number | null | undefined): v is number {
  return v !== null && v !== undefined && Number.isFinite(v);
}

/** One value per seed: the run's (the mean if a seed somehow has several runs) and its dense key. */
function bySeed(runs: readonly RunRow[], metric: string): Map<number, { v: number; dense: string | undefined; run: RunRow }> {
  const acc = new Map<number, { sum: number; n: number; dense: string | undefined; run: RunRow }>();
  for (const r of runs) {
    const v = r.metrics[metric];
    if (r.status !== "done" || !finite(v)) continue;
    const e = acc.get(r.seed);
    if (e) { e.sum += v; e.n++; } else acc.set(r.seed, { sum: v, n: 1, dense: r.denseKey, run: r });
  }
  return new Map([...acc].map(([s, e]) => [s, { v: e.sum / e.n, dense: e.dense, run: e.run }]));
}

/**
 * Compare two methods' runs at one (dataset, arch, target). The pairs are the seeds both ran on the same dense model
 * (runs of one seed prune one pretrained model, so the difference removes the dense model's luck). Then:
 * - 2 or more pairs: paired t-test of the per-seed differences (any metric but deterministic counts);
 * - 1 pair, an accuracy: the two-proportion (Agresti–Caffo) test of those two runs on their test images;
 * - deterministic counts: different when the means differ by more than DETERMINISTIC_TOLERANCE (relative);
 * - otherwise no test: a tie, since nothing shows the noise.
 * A difference that is not significant is a tie.
 */
export function compareMethodRuns(runsA: readonly RunRow[], runsB: readonly RunRow[], metric = "top1_after", options: { seedsNeeded?: boolean } = {}): MethodComparison | null {
  return compareSeeds(seedValues(runsA, metric), seedValues(runsB, metric), metric, options);
}

/** A method's runs at one target reduced to what a comparison reads: one value per seed and their summary. */
interface SeedValues { bySeed: ReturnType<typeof bySeed>; stat: Stat | null; first: RunRow | null }

function seedValues(runs: readonly RunRow[], metric: string): SeedValues {
  const m = bySeed(runs, metric);
  const values = [...m.values()];
  return { bySeed: m, stat: summarize(values.map((e) => e.v)), first: values[0]?.run ?? null };
}

function compareSeeds(A: SeedValues, B: SeedValues, metric: string, options: { seedsNeeded?: boolean }): MethodComparison | null {
  const sa = A.bySeed;
  const sb = B.bySeed;
  if (!A.first || !B.first || !A.stat || !B.stat) return null;
  const first = A.first;
  const statA = A.stat;
  const statB = B.stat;
  const paired: number[] = [];
  const unpaired: number[] = [];
  for (const s of new Set([...sa.keys(), ...sb.keys()])) {
    const a = sa.get(s);
    const b = sb.get(s);
    if (a && b && (a.dense === undefined || b.dense === undefined || a.dense === b.dense)) paired.push(s);
    else unpaired.push(s);
  }
  paired.sort((x, y) => x - y);
  unpaired.sort((x, y) => x - y);
  const kind = noiseOf(metric);
  const hib = METRICS.get(metric)?.higherIsBetter ?? true;
  const base = {
    dataset: first.dataset, arch: first.arch, targetKind: first.targetKind, targetValue: first.targetValue,
    target: targetLabel({ kind: first.targetKind, value: first.targetValue }), metric, a: first.methodLabel, b: B.first.methodLabel,
    statA, statB, pairedSeeds: paired, unpairedSeeds: unpaired,
  };
  const verdict = (diff: number, significant: boolean) => (significant && diff !== 0 ? ((diff > 0) === hib ? base.a : base.b) : null);
  if (kind === "deterministic") {
    const diff = statA.mean - statB.mean;
    const scale = Math.max(Math.abs(statA.mean), Math.abs(statB.mean));
    const significant = scale > 0 && Math.abs(diff) / scale > DETERMINISTIC_TOLERANCE;
    return {
      ...base, test: "tolerance", diff, ci: null, p: null, diffStd: null, significant, better: verdict(diff, significant), seedsNeeded: null, testImages: null,
      method: `counts fixed by the masks: different when the means differ by more than ${DETERMINISTIC_TOLERANCE * 100} %`,
    };
  }
  if (paired.length >= 2) {
    const t = pairedTTest(paired.map((s) => sa.get(s)!.v - sb.get(s)!.v));
    return {
      ...base, test: "paired-t", diff: t.diff, ci: t.ci, p: t.p, diffStd: t.std, significant: t.significant, better: verdict(t.diff, t.significant),
      // Only asked for where it is shown (runner-up, bench compare): the search costs more than the test.
      seedsNeeded: options.seedsNeeded === false ? null : seedsToSeparate(t.diff, t.std), testImages: null,
      method: `paired t-test over ${paired.length} seeds (same seed, same dense model)`,
    };
  }
  if (kind === "binomial" && paired.length === 1) {
    const ra = sa.get(paired[0])!;
    const rb = sb.get(paired[0])!;
    const na = testImagesOf(ra.run);
    const nb = testImagesOf(rb.run);
    if (na !== null && nb !== null && ra.v >= 0 && ra.v <= 1 && rb.v >= 0 && rb.v <= 1) {
      const t = twoProportionTest(ra.v, na, rb.v, nb);
      return {
        ...base, test: "two-proportion", diff: t.diff, ci: t.ci, p: t.p, diffStd: null, significant: t.significant, better: verdict(t.diff, t.significant),
        seedsNeeded: null, testImages: Math.min(na, nb),
        method: `1 seed: two-proportion (Agresti–Caffo) test on ${Math.min(na, nb).toLocaleString("en-US")} test images; seed-to-seed variation not measured`,
      };
    }
  }
  const diff = paired.length === 1 ? sa.get(paired[0])!.v - sb.get(paired[0])!.v : statA.mean - statB.mean;
  return {
    ...base, test: "none", diff, ci: null, p: null, diffStd: null, significant: false, better: null, seedsNeeded: null, testImages: null,
    method: paired.length === 0 ? "no seed run by both on the same dense model: no paired comparison" : "1 seed: no estimate of the noise, so no claim",
  };
}

/** The winner at one (dataset, arch, target) on one metric, against every other method there. */
export interface TargetWinner {
  dataset: string;
  arch: string;
  panel: string;
  targetKind: PruneTarget["kind"];
  targetValue: number;
  target: string;
  metric: string;
  /** Methods by mean, best first. */
  ranking: { method: string; stat: Stat }[];
  /** Best mean. */
  best: string;
  runnerUp: string | null;
  /** |best − runner-up| of the means (metric units); null with one method. */
  margin: number | null;
  /** Best against runner-up. */
  vsRunnerUp: MethodComparison | null;
  /** The best is significantly better than every other method at this target. */
  significant: boolean;
  /** Methods not significantly worse than the best, the best first (just the best when significant). */
  tied: string[];
  /** Most seeds any method has here. */
  seeds: number;
  /** group ids (aggregate.groupId) by method, to mark table rows. */
  groupIds: Map<string, string>;
}

/**
 * The winner at every (dataset, arch, target) of the done runs, on `metric` (by its direction in
 * src/metrics/names.ts). Sorted by dataset, arch, then target order. Methods compared by label.
 */
export function winnersAt(runs: readonly RunRow[], metric = "top1_after"): TargetWinner[] {
  // The winner table and the results table ask for the same runs and metric: compute once per page.
  let byMetric = winnersCache.get(runs);
  if (!byMetric) winnersCache.set(runs, (byMetric = new Map()));
  const hit = byMetric.get(metric);
  if (hit) return hit;
  const out = computeWinners(runs, metric);
  byMetric.set(metric, out);
  return out;
}

const winnersCache = new WeakMap<readonly RunRow[], Map<string, TargetWinner[]>>();

function computeWinners(runs: readonly RunRow[], metric: string): TargetWinner[] {
  const hib = METRICS.get(metric)?.higherIsBetter ?? true;
  const cells = new Map<string, Map<string, RunRow[]>>();
  for (const r of runs) {
    if (r.status !== "done" || !finite(r.metrics[metric])) continue;
    const k = `${r.dataset}\u0000${r.arch}\u0000${r.targetKind}\u0000${r.targetValue}`;
    let m = cells.get(k);
    if (!m) cells.set(k, (m = new Map()));
    let l = m.get(r.methodLabel);
    if (!l) m.set(r.methodLabel, (l = []));
    l.push(r);
  }
  const out: TargetWinner[] = [];
  for (const methods of cells.values()) {
    const f = [...methods.values()][0][0];
    const ranking = [...methods].map(([method, rs]) => {
      const sv = seedValues(rs, metric);
      return { method, sv, stat: sv.stat! };
    });
    ranking.sort((x, y) => (hib ? y.stat.mean - x.stat.mean : x.stat.mean - y.stat.mean) || x.method.localeCompare(y.method));
    const best = ranking[0];
    const tied = [best.method];
    let vsRunnerUp: MethodComparison | null = null;
    for (let i = 1; i < ranking.length; i++) {
      const c = compareSeeds(best.sv, ranking[i].sv, metric, { seedsNeeded: i === 1 });
      if (i === 1) vsRunnerUp = c;
      if (!c || c.better !== best.method) tied.push(ranking[i].method);
    }
    out.push({
      dataset: f.dataset, arch: f.arch, panel: panelLabel(f.dataset, f.arch), targetKind: f.targetKind, targetValue: f.targetValue,
      target: targetLabel({ kind: f.targetKind, value: f.targetValue }), metric,
      ranking: ranking.map(({ method, stat }) => ({ method, stat })),
      best: best.method,
      runnerUp: ranking[1]?.method ?? null,
      margin: ranking.length > 1 ? Math.abs(best.stat.mean - ranking[1].stat.mean) : null,
      vsRunnerUp,
      significant: ranking.length > 1 && tied.length === 1,
      tied,
      seeds: Math.max(...ranking.map((r) => r.stat.n)),
      groupIds: new Map(ranking.map((r) => [r.method, groupId(f.dataset, f.arch, r.method, f.targetKind, f.targetValue)])),
    });
  }
  out.sort((x, y) => x.dataset.localeCompare(y.dataset) || x.arch.localeCompare(y.arch) || targetOrder(x.targetKind, x.targetValue) - targetOrder(y.targetKind, y.targetValue));
  return out;
}

/** Ids of the groups that win their target on `metric` outside the noise: what a results table may bold. */
export function significantWinnerIds(runs: readonly RunRow[], metric: string): Set<string> {
  const ids = new Set<string>();
  for (const w of winnersAt(runs, metric)) if (w.significant) ids.add(w.groupIds.get(w.best)!);
  return ids;
}

export { ALPHA };
