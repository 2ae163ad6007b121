/**
 * Pure aggregation of runs over seeds (the statistics themselves are in ./stats.ts): delta vs the dense
 * baseline of the same dataset x architecture, and Pareto frontiers. Reports aggregate before plotting, so the
 * rendered page stays light however many runs the store holds.
 */
import { toMetricUnit } from "../src/metrics/units.js";
import type { PruneTarget, ReferenceRow } from "../src/core/types.js";
import { METRICS } from "../src/metrics/names.js";
import type { RunRow } from "./model.js";
import { targetLabel } from "../src/grid/label.js";
import { summarize, type Stat } from "./stats.js";

// ---------------------------------------------------------------------------------------------------------------
// Statistics live in ./stats.ts; re-exported here for the modules (and concurrent branches) that import them from here.
export { incompleteBeta, studentTCdf, studentTQuantile, summarize, type Stat } from "./stats.js";

// ---------------------------------------------------------------------------------------------------------------
// Grouping

/** Dimensions a group can be keyed by; "method" means the method label (name plus non-default hyperparameters). */
export type GroupDim = "dataset" | "arch" | "method" | "target";
export const GROUP_DIMS: readonly GroupDim[] = ["dataset", "arch", "method", "target"];

/** Panel label of a dataset x architecture pair, as used for chart facets and table blocks. */
export function panelLabel(dataset: string, arch: string): string {
  return `${dataset} · ${arch}`;
}

/** A group of done runs keyed by a subset of the dimensions, with every metric summarized. */
export interface SummaryGroup {
  /** Values of the grouped dimensions; dimensions not grouped by are absent. */
  by: Partial<Record<GroupDim, string>>;
  /** Present when grouped by "target". */
  targetKind?: PruneTarget["kind"];
  targetValue?: number;
  /** Distinct seeds of the group's runs, ascending. */
  seeds: number[];
  runKeys: string[];
  metrics: Record<string, Stat>;
}

function dimValue(r: RunRow, d: GroupDim): string {
  switch (d) {
    case "dataset":
      return r.dataset;
    case "arch":
      return r.arch;
    case "method":
      return r.methodLabel;
    case "target":
      return targetLabel({ kind: r.targetKind, value: r.targetValue });
  }
}

/** Runs that count for results: status "done". */
export function doneRuns(runs: readonly RunRow[]): RunRow[] {
  return runs.filter((r) => r.status === "done");
}

/** Order of target values inside a kind: sparsity targets, then compression, then MACs reduction, each ascending. */
export function targetOrder(kind: PruneTarget["kind"], value: number): number {
  return (kind === "sparsity" ? 0 : kind === "compression" ? 1e6 : 2e6) + value;
}

/**
 * Group the done runs by `by` (any subset of dataset, arch, method, target, in any order) and summarize every
 * metric over each group's runs. Groups come back sorted by the dimensions in `by` order (targets numerically).
 */
export function summarizeGroups(runs: readonly RunRow[], by: readonly GroupDim[] = GROUP_DIMS): SummaryGroup[] {
  const dims = GROUP_DIMS.filter((d) => by.includes(d));
  const order = by.filter((d, i) => GROUP_DIMS.includes(d) && by.indexOf(d) === i);
  const buckets = new Map<string, RunRow[]>();
  for (const r of runs) {
    if (r.status !== "done") continue;
    const k = dims.map((d) => dimValue(r, d)).join("\u0000");
    let b = buckets.get(k);
    if (!b) buckets.set(k, (b = []));
    b.push(r);
  }
  const groups: SummaryGroup[] = [];
  for (const members of buckets.values()) {
    const first = members[0];
    const g: SummaryGroup = { by: {}, seeds: [], runKeys: members.map((r) => r.key), metrics: {} };
    for (const d of dims) g.by[d] = dimValue(first, d);
    if (dims.includes("target")) {
      g.targetKind = first.targetKind;
      g.targetValue = first.targetValue;
    }
    g.seeds = [...new Set(members.map((r) => r.seed))].sort((a, b) => a - b);
    const names = new Set<string>();
    for (const r of members) for (const k of Object.keys(r.metrics)) names.add(k);
    for (const name of names) {
      const s = summarize(members.map((r) => r.metrics[name]));
      if (s) g.metrics[name] = s;
    }
    groups.push(g);
  }
  groups.sort((a, b) => {
    for (const d of order) {
      if (d === "target") {
        const c = targetOrder(a.targetKind!, a.targetValue!) - targetOrder(b.targetKind!, b.targetValue!);
        if (c !== 0) return c;
      } else {
        const c = a.by[d]!.localeCompare(b.by[d]!);
        if (c !== 0) return c;
      }
    }
    return 0;
  });
  return groups;
}

// ---------------------------------------------------------------------------------------------------------------
// Dense baselines and full groups

/** The dense model of one dataset x architecture, summarized over seeds. */
export interface Baseline {
  dataset: string;
  arch: string;
  panel: string;
  /** top1_dense: first averaged per seed (all runs of a seed share the dense model), then over seeds. */
  top1: Stat;
  top5: Stat | null;
  paramsTotal: number | null;
  macsDense: number | null;
  latencyDenseMs: Stat | null;
}

/** Dense baselines of every dataset x architecture with done runs, keyed by panelLabel(dataset, arch). */
export function denseBaselines(runs: readonly RunRow[]): Map<string, Baseline> {
  const byPanel = new Map<string, RunRow[]>();
  for (const r of runs) {
    if (r.status !== "done") continue;
    const p = panelLabel(r.dataset, r.arch);
    let b = byPanel.get(p);
    if (!b) byPanel.set(p, (b = []));
    b.push(r);
  }
  const out = new Map<string, Baseline>();
  for (const [panel, members] of byPanel) {
    const perSeed = (name: string): Stat | null => {
      const seeds = new Map<number, number[]>();
      for (const r of members) {
        const v = r.metrics[name];
        if (v === null || v === undefined || !Number.isFinite(v)) continue;
        let l = seeds.get(r.seed);
        if (!l) seeds.set(r.seed, (l = []));
        l.push(v);
      }
      return summarize([...seeds.values()].map((l) => l.reduce((a, b) => a + b, 0) / l.length));
    };
    const top1 = perSeed("top1_dense");
    if (!top1) continue;
    out.set(panel, {
      dataset: members[0].dataset,
      arch: members[0].arch,
      panel,
      top1,
      top5: perSeed("top5_dense"),
      paramsTotal: summarize(members.map((r) => r.metrics.params_total))?.mean ?? null,
      macsDense: summarize(members.map((r) => r.metrics.macs_dense))?.mean ?? null,
      latencyDenseMs: summarize(members.map((r) => r.metrics.latency_dense_ms)),
    });
  }
  return out;
}

/** One (dataset, arch, method label, target) group over seeds: the unit every chart and table row shows. */
export interface GroupAggregate {
  /** Stable identifier (dataset, arch, method label, target joined). */
  id: string;
  dataset: string;
  arch: string;
  method: string;
  methodLabel: string;
  targetKind: PruneTarget["kind"];
  targetValue: number;
  /** targetLabel(targetKind, targetValue). */
  target: string;
  panel: string;
  seeds: number[];
  runKeys: string[];
  metrics: Record<string, Stat>;
  /** top1_dense summary of the same dataset x arch (null when no run recorded it). */
  baseline: Baseline | null;
  /** top1_after minus the baseline's mean top-1, per run, summarized (so its std / CI are top1_after's). */
  deltaTop1: Stat | null;
}

export function groupId(dataset: string, arch: string, methodLabel: string, kind: string, value: number): string {
  return `${dataset}|${arch}|${methodLabel}|${kind}|${value}`;
}

/** Aggregate the done runs into (dataset, arch, method label, target kind, target value) groups over seeds. */
export function aggregateRuns(runs: readonly RunRow[]): GroupAggregate[] {
  const baselines = denseBaselines(runs);
  const byKey = new Map<string, RunRow[]>();
  for (const r of runs) {
    if (r.status !== "done") continue;
    const id = groupId(r.dataset, r.arch, r.methodLabel, r.targetKind, r.targetValue);
    let b = byKey.get(id);
    if (!b) byKey.set(id, (b = []));
    b.push(r);
  }
  const out: GroupAggregate[] = [];
  for (const [id, members] of byKey) {
    const f = members[0];
    const metrics: Record<string, Stat> = {};
    const names = new Set<string>();
    for (const r of members) for (const k of Object.keys(r.metrics)) names.add(k);
    for (const name of names) {
      const s = summarize(members.map((r) => r.metrics[name]));
      if (s) metrics[name] = s;
    }
    const panel = panelLabel(f.dataset, f.arch);
    const baseline = baselines.get(panel) ?? null;
    const deltaTop1 = baseline
      ? summarize(members.map((r) => (r.metrics.top1_after ?? null) === null ? null : (r.metrics.top1_after as number) - baseline.top1.mean))
      : null;
    out.push({
      id,
      dataset: f.dataset,
      arch: f.arch,
      method: f.method,
      methodLabel: f.methodLabel,
      targetKind: f.targetKind,
      targetValue: f.targetValue,
      target: targetLabel({ kind: f.targetKind, value: f.targetValue }),
      panel,
      seeds: [...new Set(members.map((r) => r.seed))].sort((a, b) => a - b),
      runKeys: members.map((r) => r.key),
      metrics,
      baseline,
      deltaTop1,
    });
  }
  out.sort(
    (a, b) =>
      a.dataset.localeCompare(b.dataset) ||
      a.arch.localeCompare(b.arch) ||
      a.methodLabel.localeCompare(b.methodLabel) ||
      targetOrder(a.targetKind, a.targetValue) - targetOrder(b.targetKind, b.targetValue),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Pareto frontier

/**
 * The points not dominated in (x, y) where larger y is better and x is better when larger ("higher", e.g.
 * compression, speedup) or smaller ("lower", e.g. latency). A point is dominated when another is at least as good on
 * both axes and strictly better on one; of exact duplicates only one is kept. Points with a missing or non-finite
 * coordinate are ignored. The frontier comes back sorted by x ascending.
 */
export function paretoFrontier<T>(
  points: readonly T[],
  x: (p: T) => number | null | undefined,
  y: (p: T) => number | null | undefined,
  xBetter: "higher" | "lower" = "higher",
): T[] {
  const pts: { p: T; x: number; y: number }[] = [];
  for (const p of points) {
    const px = x(p);
    const py = y(p);
    if (px === null || px === undefined || py === null || py === undefined || !Number.isFinite(px) || !Number.isFinite(py)) continue;
    pts.push({ p, x: px, y: py });
  }
  const sign = xBetter === "higher" ? -1 : 1;
  pts.sort((a, b) => sign * (a.x - b.x) || b.y - a.y);
  const front: { p: T; x: number; y: number }[] = [];
  let best = -Infinity;
  for (const q of pts) {
    if (q.y > best) {
      front.push(q);
      best = q.y;
    }
  }
  front.sort((a, b) => a.x - b.x);
  return front.map((q) => q.p);
}

/** Ids of the groups on the (metric mean, top1_after mean) Pareto frontier of their panel. */
export function paretoIdsByPanel(groups: readonly GroupAggregate[], xMetric: string, xBetter: "higher" | "lower"): Set<string> {
  const panels = new Map<string, GroupAggregate[]>();
  for (const g of groups) {
    let l = panels.get(g.panel);
    if (!l) panels.set(g.panel, (l = []));
    l.push(g);
  }
  const ids = new Set<string>();
  for (const l of panels.values()) {
    for (const g of paretoFrontier(l, (g) => g.metrics[xMetric]?.mean, (g) => g.metrics.top1_after?.mean, xBetter)) ids.add(g.id);
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------------------------
// Reference (published) numbers

/** One published value converted to this harness's unit for the metric where that is possible. */
export interface ReferenceValue {
  metric: string;
  /** As published. */
  value: number;
  unit: string;
  /** In the harness's unit for `metric` (src/metrics/names.ts); null when the units are not convertible. */
  normalized: number | null;
  /** How the unit was read, e.g. "percent -> fraction", "FLOPs as 2×MACs"; empty when identical. */
  conversion: string;
}

/** Convert a published value into the harness's unit for `metric`. */
export function normalizeReferenceValue(metric: string, value: number, unit: string): ReferenceValue {
  const ours = METRICS.get(metric)?.unit ?? null;
  const normalized = toMetricUnit(metric, value, unit);
  const conversion = normalized === null || unit === ours ? "" : `${unit} → ${ours}${/2xMACs/.test(unit) ? " (FLOPs as 2×MACs)" : ""}`;
  return { metric, value, unit, normalized, conversion };
}

/** Whether a reference row describes the same experiment as a group (method compared by name or label). */
export function referenceMatches(ref: ReferenceRow, g: Pick<GroupAggregate, "dataset" | "arch" | "method" | "methodLabel" | "targetKind" | "targetValue">): boolean {
  const eq = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();
  return (
    eq(ref.dataset, g.dataset) &&
    eq(ref.arch, g.arch) &&
    (eq(ref.method, g.methodLabel) || eq(ref.method, g.method)) &&
    ref.target.kind === g.targetKind &&
    Math.abs(ref.target.value - g.targetValue) <= 1e-9 * Math.max(1, Math.abs(g.targetValue))
  );
}

/** Method names that mean "the unpruned model" in a reference row. */
const DENSE_NAMES = new Set(["dense", "baseline", "unpruned", "none", "reference", "ref"]);

/** Whether a reference row describes the dense (unpruned) model: method "dense" (or similar), compression 1, sparsity 0. */
export function isDenseReference(ref: ReferenceRow): boolean {
  return (
    DENSE_NAMES.has(ref.method.trim().toLowerCase()) ||
    (ref.target.kind === "compression" && ref.target.value === 1) ||
    (ref.target.kind === "sparsity" && ref.target.value === 0)
  );
}

/** Same dataset, architecture and target (any method). */
export function referenceSameTarget(ref: ReferenceRow, g: Pick<GroupAggregate, "dataset" | "arch" | "targetKind" | "targetValue">): boolean {
  const eq = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();
  return (
    eq(ref.dataset, g.dataset) &&
    eq(ref.arch, g.arch) &&
    ref.target.kind === g.targetKind &&
    Math.abs(ref.target.value - g.targetValue) <= 1e-9 * Math.max(1, Math.abs(g.targetValue))
  );
}

/** Every published value of a reference row, normalized where possible. */
export function referenceValues(ref: ReferenceRow): ReferenceValue[] {
  return Object.entries(ref.metrics).map(([m, v]) => normalizeReferenceValue(m, v.value, v.unit));
}

/** Normalized value of one metric of a reference row, or null. */
export function referenceMetric(ref: ReferenceRow, metric: string): number | null {
  const v = ref.metrics[metric];
  return v ? normalizeReferenceValue(metric, v.value, v.unit).normalized : null;
}

// ---------------------------------------------------------------------------------------------------------------
// Comparison of two result sets

export interface ComparedGroup {
  id: string;
  a: GroupAggregate | null;
  b: GroupAggregate | null;
}

/** Pair the groups of two aggregations on (dataset, arch, method label, target). Order: a's order, then b-only. */
export function pairGroups(a: readonly GroupAggregate[], b: readonly GroupAggregate[]): ComparedGroup[] {
  const bm = new Map(b.map((g) => [g.id, g]));
  const out: ComparedGroup[] = [];
  const seen = new Set<string>();
  for (const g of a) {
    out.push({ id: g.id, a: g, b: bm.get(g.id) ?? null });
    seen.add(g.id);
  }
  for (const g of b) if (!seen.has(g.id)) out.push({ id: g.id, a: null, b: g });
  return out;
}
