/**
 * Structured (channel) pruning, the pure part: from per-unit scores of the channel groups (src/archs/graph.ts) to the
 * units kept under a target, the tensor masks that zero the removed units in the masked model, and the kept slices
 * of every tensor that make the compacted one. No tfjs here.
 */
import { compactWidths, unsizedGroups, type ChannelGraph, type UnitKeep, type WidthPlan } from "../archs/graph.js";
import { ShapeOps } from "../archs/ops.js";

/**
 * What a structured run aims for, measured on the compacted model against the dense one: the fraction of prunable
 * channels removed ("channel-sparsity"), total params dense / compacted ("compression"), or the fraction of MACs
 * removed ("macs-reduction").
 */
export interface StructuredTarget {
  kind: "channel-sparsity" | "compression" | "macs-reduction";
  value: number;
}

/**
 * The fraction of its measure a structured target keeps, the "density" a schedule is planned with: channels or MACs
 * kept (1 − value), params kept (1 / compression). A weight method's density is the fraction of prunable weights
 * kept, so an iterative schedule's `rate` means the same for both: the fraction of what is left removed per round.
 */
export function keptFraction(target: { kind: StructuredTarget["kind"] | "sparsity"; value: number }): number {
  return target.kind === "compression" ? 1 / target.value : 1 - target.value;
}

/** The target of `kind` that keeps `fraction` of its measure (keptFraction's inverse): an iterative round's target. */
export function targetKeeping(kind: StructuredTarget["kind"], fraction: number): StructuredTarget {
  return { kind, value: kind === "compression" ? 1 / fraction : 1 - fraction };
}

/**
 * What a structured prune step planned at density `d` aims for: the run's own target where `d` is its kept fraction
 * (a one-shot step, an iterative schedule's last round: exactly the target, not a float round trip of it), else the
 * target of the same kind keeping `d` (an iterative schedule's earlier rounds, (1 − rate)^r).
 */
export function roundTarget(target: StructuredTarget, d: number): StructuredTarget {
  return d === keptFraction(target) ? target : targetKeeping(target.kind, d);
}

export interface ChannelAllocation {
  /** "global": one ranking over the units of every group; "layer": the same fraction removed from every group. */
  distribution: "global" | "layer";
  /** Every pruned group keeps at least this fraction of its units (and at least one), so no layer collapses. */
  minKeep: number;
  /** Kept unit counts are multiples of this (hardware-friendly channel counts), where the group has that many. */
  roundTo: number;
  /**
   * "layer" only: per group index, how much faster than the common fraction t the group is pruned (it loses
   * min(1, t × multiplier) of its units); 1 for a group not listed. Fixed ratios between layers (Li et al.'s
   * per-stage rates) whose common scale the target decides.
   */
  rateMultipliers?: ReadonlyMap<number, number>;
}

export interface CompactedCounts {
  params: number;
  macs: number;
}

/** Params and MACs of the compacted architecture, from the layer table of its real shape. */
export function compactedCounts(plan: WidthPlan, keep: UnitKeep, inputShape: readonly number[], numClasses: number): CompactedCounts {
  const arch = plan.arch.withWidths(compactWidths(plan, keep));
  const ops = new ShapeOps();
  arch.build(ops, [...inputShape], numClasses);
  return { params: ops.layers.reduce((n, l) => n + l.params, 0), macs: ops.layers.reduce((n, l) => n + l.macs, 0) };
}

export interface AllocationInput {
  plan: WidthPlan;
  /** Per group name: one score per unit, higher survives. Groups without scores are not pruned. */
  scores: ReadonlyMap<string, Float32Array>;
  /** Units removed before this step (they stay removed); all kept when absent. */
  alive?: UnitKeep;
  /** Groups the policy forbids (e.g. the first layer's outputs when `firstLayer` is off). */
  excluded?: ReadonlySet<number>;
  target: StructuredTarget;
  allocation: ChannelAllocation;
  inputShape: readonly number[];
  numClasses: number;
  /** The dense model's counts, the reference of compression and MACs reduction. */
  dense: CompactedCounts;
}

export interface AllocationResult {
  keep: boolean[][];
  /** The target's measure on the result (it can exceed the target: units are whole). */
  achieved: number;
  counts: CompactedCounts;
  channelSparsity: number;
}

/**
 * The groups a method may score: not protected by the graph, sized by a width (so they can be compacted), and not
 * excluded by the policy.
 */
export function prunableGroups(plan: WidthPlan, excluded: ReadonlySet<number> = new Set()): number[] {
  const unsized = unsizedGroups(plan);
  return plan.graph.groups.flatMap((g, i) => (g.protectedBy === null && !unsized.has(i) && !excluded.has(i) ? [i] : []));
}

/**
 * The kept units that reach the target. The removal order is fixed by the scores (lowest first; ties by group, then
 * unit index): "global" removes the lowest `t` of all prunable units, "layer" the lowest `t` of each group, both
 * within each group's floor and rounding. Every measure grows with t, so t is found by bisection: the smallest t whose
 * compacted model reaches the target. What it reaches is returned as measured, not as asked.
 */
export function allocateChannels(o: AllocationInput): AllocationResult {
  const { graph } = o.plan;
  const alive = o.alive ?? graph.groups.map((g) => Array<boolean>(g.size).fill(true));
  const pruned = prunableGroups(o.plan, o.excluded).filter((i) => o.scores.has(graph.groups[i].name));
  const total = pruned.reduce((n, i) => n + graph.groups[i].size, 0);
  if (total === 0) throw new Error("no channel group may be pruned (every group is protected, excluded or unscored)");
  const order = new Map<number, number[]>();
  for (const i of pruned) {
    const g = graph.groups[i];
    const s = o.scores.get(g.name)!;
    if (s.length !== g.size) throw new Error(`group ${g.name}: ${s.length} scores for ${g.size} units`);
    s.forEach((x, u) => { if (Number.isNaN(x)) throw new Error(`group ${g.name}: score of unit ${u} is NaN`); });
    order.set(i, [...Array(g.size).keys()].filter((u) => alive[i][u]).sort((a, b) => s[a] - s[b] || a - b));
  }
  const floor = (i: number) => Math.max(1, Math.ceil(o.allocation.minKeep * graph.groups[i].size));
  const aliveCount = (i: number) => order.get(i)!.length;
  /** A group's kept count after removing `r` of its alive units, within its floor and rounding. */
  const keptCount = (i: number, r: number) => {
    const n = aliveCount(i);
    let kept = Math.max(n - r, Math.min(n, floor(i)));
    const step = o.allocation.roundTo;
    if (step > 1 && kept < n) kept = Math.min(n, Math.max(step, Math.ceil(kept / step) * step));
    return kept;
  };
  const globalOrder = pruned.flatMap((i) => order.get(i)!.map((u) => ({ i, u, s: o.scores.get(graph.groups[i].name)![u] })))
    .sort((a, b) => a.s - b.s || a.i - b.i || a.u - b.u);
  const totalAlive = globalOrder.length;

  const keepAt = (t: number): boolean[][] => {
    const removals = new Map<number, number>(pruned.map((i) => [i, 0]));
    if (o.allocation.distribution === "layer") {
      for (const i of pruned) {
        const fraction = Math.min(1, t * (o.allocation.rateMultipliers?.get(i) ?? 1));
        removals.set(i, Math.floor(fraction * graph.groups[i].size + 1e-9) - (graph.groups[i].size - aliveCount(i)));
      }
    } else {
      // The lowest-scored units overall, each group stopping at its floor.
      let left = Math.floor(t * totalAlive + 1e-9);
      for (const { i } of globalOrder) {
        if (left <= 0) break;
        if (aliveCount(i) - removals.get(i)! <= floor(i)) continue;
        removals.set(i, removals.get(i)! + 1);
        left--;
      }
    }
    const keep = alive.map((a) => [...a]);
    for (const i of pruned) {
      const kept = keptCount(i, Math.max(0, removals.get(i)!));
      for (const u of order.get(i)!.slice(0, aliveCount(i) - kept)) keep[i][u] = false;
    }
    return keep;
  };
  const measure = (keep: boolean[][]) => {
    const counts = compactedCounts(o.plan, keep, o.inputShape, o.numClasses);
    const kept = pruned.reduce((n, i) => n + keep[i].filter(Boolean).length, 0);
    const channelSparsity = 1 - kept / total;
    const achieved = o.target.kind === "channel-sparsity" ? channelSparsity
      : o.target.kind === "compression" ? o.dense.params / counts.params
      : 1 - counts.macs / o.dense.macs;
    return { counts, channelSparsity, achieved };
  };
  const reaches = (m: { achieved: number }) => m.achieved >= o.target.value - 1e-12;
  const most = measure(keepAt(1));
  if (!reaches(most)) {
    throw new Error(`${describeTarget(o.target)} is unreachable: removing every prunable channel down to each group's floor reaches ${formatMeasure(o.target.kind, most.achieved)}`);
  }
  let [lo, hi] = [0, 1];
  if (reaches(measure(keepAt(0)))) hi = 0;
  for (let k = 0; k < 40 && hi - lo > 1 / (4 * Math.max(1, totalAlive, ...graph.groups.map((g) => g.size))); k++) {
    const mid = (lo + hi) / 2;
    if (reaches(measure(keepAt(mid)))) hi = mid; else lo = mid;
  }
  const keep = keepAt(hi);
  return { keep, ...measure(keep) };
}

export interface LowestInput extends Omit<AllocationInput, "allocation"> {
  /** At most this many units are removed. */
  count: number;
  /** Every pruned group keeps at least this fraction of its units (and at least one), as ChannelAllocation.minKeep. */
  minKeep: number;
}

/**
 * One step of pruning toward a target rather than to it: the alive units of the scored groups in one global order
 * (lowest score first; ties by group, then unit index), a group's units passed over once it is at its floor; of the
 * first `count` of them, the fewest that make the compacted model reach the target, or all `count` when they do not.
 * `reached` says whether it did; `removed` how many units went (0 when every group is at its floor).
 */
export function removeLowest(o: LowestInput): AllocationResult & { reached: boolean; removed: number } {
  const { graph } = o.plan;
  const alive = o.alive ?? graph.groups.map((g) => Array<boolean>(g.size).fill(true));
  const pruned = prunableGroups(o.plan, o.excluded).filter((i) => o.scores.has(graph.groups[i].name));
  const total = pruned.reduce((n, i) => n + graph.groups[i].size, 0);
  if (total === 0) throw new Error("no channel group may be pruned (every group is protected, excluded or unscored)");
  const units: Array<{ i: number; u: number; s: number }> = [];
  for (const i of pruned) {
    const g = graph.groups[i];
    const s = o.scores.get(g.name)!;
    if (s.length !== g.size) throw new Error(`group ${g.name}: ${s.length} scores for ${g.size} units`);
    s.forEach((x, u) => {
      if (Number.isNaN(x)) throw new Error(`group ${g.name}: score of unit ${u} is NaN`);
      if (alive[i][u]) units.push({ i, u, s: x });
    });
  }
  units.sort((a, b) => a.s - b.s || a.i - b.i || a.u - b.u);
  const left = new Map(pruned.map((i) => [i, alive[i].filter(Boolean).length]));
  const floor = (i: number) => Math.max(1, Math.ceil(o.minKeep * graph.groups[i].size));
  const chosen: Array<{ i: number; u: number }> = [];
  for (const unit of units) {
    if (chosen.length >= o.count) break;
    if (left.get(unit.i)! <= floor(unit.i)) continue;
    left.set(unit.i, left.get(unit.i)! - 1);
    chosen.push(unit);
  }
  const keepAt = (k: number) => {
    const keep = alive.map((a) => [...a]);
    for (const { i, u } of chosen.slice(0, k)) keep[i][u] = false;
    return keep;
  };
  const measure = (keep: boolean[][]) => {
    const counts = compactedCounts(o.plan, keep, o.inputShape, o.numClasses);
    const kept = pruned.reduce((n, i) => n + keep[i].filter(Boolean).length, 0);
    const channelSparsity = 1 - kept / total;
    const achieved = o.target.kind === "channel-sparsity" ? channelSparsity
      : o.target.kind === "compression" ? o.dense.params / counts.params
      : 1 - counts.macs / o.dense.macs;
    return { counts, channelSparsity, achieved };
  };
  const reaches = (k: number) => measure(keepAt(k)).achieved >= o.target.value - 1e-12;
  // Every measure grows with the units removed: the fewest that reach the target, by bisection.
  let k = chosen.length;
  if (reaches(k)) {
    let [lo, hi] = [0, k];
    if (reaches(0)) hi = 0;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (reaches(mid)) hi = mid; else lo = mid;
    }
    k = hi;
  }
  const keep = keepAt(k);
  const m = measure(keep);
  return { keep, ...m, reached: m.achieved >= o.target.value - 1e-12, removed: k };
}

export function describeTarget(t: StructuredTarget): string {
  return `${t.kind} ${formatMeasure(t.kind, t.value)}`;
}

function formatMeasure(kind: StructuredTarget["kind"], v: number): string {
  return kind === "compression" ? `${+v.toFixed(4)}x` : `${+(100 * v).toFixed(2)}%`;
}

/**
 * The masks of the masked model: per trainable tensor of a group with a removed unit, 0 at every entry of a removed
 * unit (on any axis: a kernel loses its removed filters and the rows that read removed channels), 1 elsewhere.
 * Running statistics are state and get no mask: a removed channel's γ and β are 0, so its output is 0 whatever they are.
 */
export function channelMasks(graph: ChannelGraph, keep: UnitKeep, shapes: ReadonlyMap<string, readonly number[]>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  graph.groups.forEach((g, gi) => {
    if (keep[gi].every(Boolean)) return;
    for (const m of g.members) {
      if (m.state) continue;
      const shape = shapes.get(m.tensor);
      if (!shape) throw new Error(`channel graph names tensor ${m.tensor}, which the model does not have`);
      let mask = out.get(m.tensor);
      if (!mask) { mask = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1); out.set(m.tensor, mask); }
      const inner = shape.slice(m.axis + 1).reduce((a, b) => a * b, 1);
      const outer = shape.slice(0, m.axis).reduce((a, b) => a * b, 1);
      const n = shape[m.axis];
      m.indices.forEach((idx, u) => {
        if (keep[gi][u]) return;
        for (const a of idx) for (let o = 0; o < outer; o++) mask.fill(0, (o * n + a) * inner, (o * n + a + 1) * inner);
      });
    }
  });
  return out;
}

/**
 * Per channel group, the units `channelMasks` kept, read back from its masks (a resumed run's, an exported run's): a
 * removed unit's mask is 0 over its whole slice of every tensor producing it (filter, bias, BN γ and β); a kept
 * one's is not (it loses at most the rows of removed inputs, and every group keeps a unit). A group none of whose
 * producing tensors has a mask kept every unit.
 */
export function keepFromMasks(graph: ChannelGraph, masks: ReadonlyMap<string, { data: Float32Array; shape: readonly number[] }>): boolean[][] {
  return graph.groups.map((g) => {
    const producing = g.members.filter((m) => m.side === "out" && !m.state && masks.has(m.tensor));
    return Array.from({ length: g.size }, (_, u) => producing.length === 0 || !producing.every((m) => sliceIsZero(masks.get(m.tensor)!, m.axis, m.indices[u])));
  });
}

/** Every entry of a tensor's slices `indices` along `axis` is 0 (row-major data). */
function sliceIsZero(t: { data: Float32Array; shape: readonly number[] }, axis: number, indices: readonly number[]): boolean {
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = t.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = t.shape[axis];
  for (const a of indices) {
    for (let o = 0; o < outer; o++) {
      for (let i = (o * n + a) * inner, end = i + inner; i < end; i++) if (t.data[i] !== 0) return false;
    }
  }
  return true;
}

/** Per tensor and axis, the indices kept, ascending (the compacted tensor keeps them in this order). */
export function keptSlices(graph: ChannelGraph, keep: UnitKeep): Map<string, Map<number, number[]>> {
  const out = new Map<string, Map<number, number[]>>();
  graph.groups.forEach((g, gi) => {
    if (keep[gi].every(Boolean)) return;
    for (const m of g.members) {
      const kept = m.indices.flatMap((idx, u) => (keep[gi][u] ? idx : [])).sort((a, b) => a - b);
      const axes = out.get(m.tensor) ?? new Map<number, number[]>();
      if (axes.has(m.axis)) throw new Error(`tensor ${m.tensor}: axis ${m.axis} belongs to two groups`);
      axes.set(m.axis, kept);
      out.set(m.tensor, axes);
    }
  });
  return out;
}

/** The entries of `values` (row-major, `shape`) at the kept indices of each listed axis. */
export function gatherAxes(values: Float32Array, shape: readonly number[], axes: ReadonlyMap<number, readonly number[]>): { values: Float32Array; shape: number[] } {
  let data = values;
  const cur = [...shape];
  for (const [axis, idx] of [...axes].sort((a, b) => a[0] - b[0])) {
    const outer = cur.slice(0, axis).reduce((a, b) => a * b, 1);
    const inner = cur.slice(axis + 1).reduce((a, b) => a * b, 1);
    const n = cur[axis];
    const next = new Float32Array(outer * idx.length * inner);
    for (let o = 0; o < outer; o++) {
      idx.forEach((a, k) => next.set(data.subarray((o * n + a) * inner, (o * n + a + 1) * inner), (o * idx.length + k) * inner));
    }
    data = next;
    cur[axis] = idx.length;
  }
  return { values: data, shape: cur };
}
