/**
 * One structured pruning step: the method scores the units of the channel groups traced from the architecture
 * (src/archs/graph.ts), the engine turns the run's target into the units kept (src/prune/structured.ts: bisection on
 * the removal order until the compacted model reaches it), masks the removed units in the model (and sets its
 * shortcut maps, which the masks cannot reach) and remembers what it kept, so the run can measure the compacted model.
 * The method's name is never asked: only its granularity, distribution, floor and rounding.
 */
import type { ChannelGroupView, PruningMethod, ScoreContext } from "../../methods/types.js";
import { channelGraph, maskedShortcuts, widthPlan, type ChannelGraph, type WidthPlan } from "../archs/graph.js";
import type { ArchDef } from "../archs/ops.js";
import type { HyperValue, PrunablePolicy, PruneTarget } from "../core/types.js";
import { allocateChannels, channelMasks, compactedCounts, keepFromMasks, prunableGroups, removeLowest, type AllocationResult, type CompactedCounts, type StructuredTarget } from "../prune/structured.js";
import { hasKernel } from "../archs/ops.js";
import type { StagedSplit } from "../train/loop.js";
import type { MaskSet } from "../train/masks.js";
import type { Model } from "../train/model.js";
import { compensateAndMask } from "./compensate.js";
import { prunableState } from "./prune-step.js";
import { scoreContext } from "./score-context.js";

/** What a structured run carries from its prune step to its measurements. */
export interface StructuredState {
  /** The architecture as built (the masked model's differs only in its shortcut maps). */
  arch: ArchDef;
  graph: ChannelGraph;
  plan: WidthPlan;
  dense: CompactedCounts;
  keep: boolean[][];
  /** The target's measure on the compacted model, and its channel sparsity. */
  achieved: number | null;
  channelSparsity: number;
  counts: CompactedCounts;
}

export function structuredState(model: Model): StructuredState {
  const graph = channelGraph(model.arch, model.inputShape, model.numClasses);
  const plan = widthPlan(model.arch, graph, model.inputShape, model.numClasses);
  const dense = { params: model.layers.reduce((n, l) => n + l.params, 0), macs: model.layers.reduce((n, l) => n + l.macs, 0) };
  return {
    arch: model.arch, graph, plan, dense, keep: graph.groups.map((g) => Array<boolean>(g.size).fill(true)),
    achieved: null, channelSparsity: 0, counts: dense,
  };
}

/** A run's target as the structured allocation reads it. */
export function structuredTarget(target: PruneTarget): StructuredTarget {
  return { kind: target.kind === "sparsity" ? "channel-sparsity" : target.kind, value: target.value };
}

export interface StructuredStepInput {
  model: Model;
  masks: MaskSet;
  method: PruningMethod;
  params: Readonly<Record<string, HyperValue>>;
  prunable: PrunablePolicy;
  target: StructuredTarget;
  train: StagedSplit;
  seed: number;
  step: number;
  state: StructuredState;
}

/**
 * Groups the prunable policy forbids: a group produced by the first weighted layer when `firstLayer` is off, or by
 * the classifier when `classifier` is off (its outputs are protected anyway; this covers a classifier read by more).
 */
function excludedGroups(state: StructuredState, policy: PrunablePolicy): Set<number> {
  const weighted = state.graph.layers.filter((l) => hasKernel(l.kind));
  const first = weighted[0]?.name;
  const classifier = weighted[weighted.length - 1]?.name;
  const out = new Set<number>();
  state.graph.groups.forEach((g, i) => {
    if ((!policy.firstLayer && g.producers.includes(first)) || (!policy.classifier && g.producers.includes(classifier))) out.add(i);
  });
  return out;
}

/** The groups offered to a method, with their members' current values (read from the model). */
export function channelGroupViews(model: Model, state: StructuredState, offered: readonly number[]): ChannelGroupView[] {
  const values = (name: string) => (model.params.get(name) ?? model.state.get(name))!;
  return offered.map((i) => {
    const g = state.graph.groups[i];
    return {
      name: g.name, producers: g.producers, size: g.size,
      alive: Float32Array.from(state.keep[i], (k) => (k ? 1 : 0)),
      members: g.members.map((m) => ({
        tensor: m.tensor, layer: m.layer, layerKind: m.layerKind, role: m.role, axis: m.axis, side: m.side,
        shape: values(m.tensor).shape, values: values(m.tensor).dataSync() as Float32Array, indices: m.indices,
      })),
    };
  });
}

/** The method's per-group rate multipliers (absent when it declares none), checked: a multiplier below 1 or not finite is a bug. */
function rateMultipliers(method: PruningMethod, params: Readonly<Record<string, HyperValue>>, state: StructuredState, offered: readonly number[]): Map<number, number> | undefined {
  if (!method.rateMultiplier) return undefined;
  return new Map(offered.map((i) => {
    const g = state.graph.groups[i];
    const m = method.rateMultiplier!(params, g.producers);
    if (!(Number.isFinite(m) && m >= 1)) throw new Error(`${method.name}: rate multiplier ${m} for group ${g.name}; expected a finite number >= 1`);
    return [i, m];
  }));
}

/** The method's scores of the groups it may prune (with `extra` in its context), checked to name only those groups. */
async function scoreGroups(o: StructuredStepInput, extra: Partial<ScoreContext> = {}) {
  const { state, model } = o;
  const excluded = excludedGroups(state, o.prunable);
  const offered = prunableGroups(state.plan, excluded);
  const groups = channelGroupViews(model, state, offered);
  const tensors = prunableState(model, o.masks, o.prunable);
  const ctx = { ...scoreContext({ method: o.method, params: o.params, tensors, model, train: o.train, seed: o.seed, step: o.step }), groups, ...extra };
  const scores = await o.method.score(ctx);
  for (const name of scores.keys()) {
    if (!groups.some((g) => g.name === name)) throw new Error(`${o.method.name} scored "${name}", which is not a channel group it was offered (${groups.map((g) => g.name).join(", ")})`);
  }
  return { excluded, offered, scores, ctx };
}

/**
 * The units kept become the run's state and its masks. The masks zero every removed channel's producers; where an
 * option-A shortcut would carry a kept channel of the stream before into a removed one, its map is what must change.
 */
async function applyKeep(o: StructuredStepInput, ctx: ScoreContext, result: Pick<AllocationResult, "keep" | "achieved" | "channelSparsity" | "counts">): Promise<void> {
  const { state, model } = o;
  state.keep = result.keep;
  state.achieved = result.achieved;
  state.channelSparsity = result.channelSparsity;
  state.counts = result.counts;
  const shapes = new Map([...model.params].map(([n, v]) => [n, v.shape]));
  const next = channelMasks(state.graph, state.keep, shapes);
  for (const [name, mask] of next) o.masks.set(name, mask, shapes.get(name)!);
  await compensateAndMask(o.method, ctx, next, o.params, model, o.masks);
  if (state.graph.shortcuts.length > 0) model.arch = state.arch.withWidths(maskedShortcuts(state.graph, state.keep));
}

export async function structuredPruneStep(o: StructuredStepInput): Promise<void> {
  const { state, model } = o;
  const { excluded, offered, scores, ctx } = await scoreGroups(o);
  const result = allocateChannels({
    plan: state.plan, scores, alive: state.keep, excluded, target: o.target,
    allocation: {
      distribution: o.method.distribution(o.params) === "global" ? "global" : "layer",
      minKeep: o.method.minDensity?.(o.params) ?? 0,
      roundTo: o.method.roundTo?.(o.params) ?? 1,
      rateMultipliers: rateMultipliers(o.method, o.params, state, offered),
    },
    inputShape: model.inputShape, numClasses: model.numClasses, dense: state.dense,
  });
  await applyKeep(o, ctx, result);
}

/**
 * A run resumed after a level: its state read back from the masks the level checkpoint restored (keepFromMasks), the
 * shortcut maps set as the prune step set them. What the target reached is the next prune step's to measure.
 */
export function restoreStructuredState(model: Model, masks: MaskSet, state: StructuredState): void {
  const stored = new Map(masks.names().map((name) => [name, { data: masks.values(name)!, shape: model.params.get(name)!.shape }]));
  state.keep = keepFromMasks(state.graph, stored);
  state.counts = compactedCounts(state.plan, state.keep, model.inputShape, model.numClasses);
  if (state.graph.shortcuts.length > 0) model.arch = state.arch.withWidths(maskedShortcuts(state.graph, state.keep));
}

/**
 * A step toward the target instead of to it (tick-tock's tick): the method scores the offered groups (with
 * `gateSaliency`, the statistic its schedule gathered, in its context), and the engine removes the `fraction` of the
 * remaining prunable units (at least one) with the lowest scores globally, within each group's floor (the method's
 * minDensity), fewer when fewer already reach the target (removeLowest). Returns whether the compacted model reaches
 * the target, and how many units went.
 */
export async function structuredPruneLowest(o: StructuredStepInput & { fraction: number; gateSaliency?: ReadonlyMap<string, Float32Array> }): Promise<{ reached: boolean; removed: number }> {
  const { state, model } = o;
  const { excluded, offered, scores, ctx } = await scoreGroups(o, o.gateSaliency ? { gateSaliency: o.gateSaliency } : {});
  const remaining = offered.filter((i) => scores.has(state.graph.groups[i].name)).reduce((n, i) => n + state.keep[i].filter(Boolean).length, 0);
  const result = removeLowest({
    plan: state.plan, scores, alive: state.keep, excluded, target: o.target, count: Math.max(1, Math.floor(o.fraction * remaining)),
    minKeep: o.method.minDensity?.(o.params) ?? 0, inputShape: model.inputShape, numClasses: model.numClasses, dense: state.dense,
  });
  await applyKeep(o, ctx, result);
  return { reached: result.reached, removed: result.removed };
}

/**
 * Where a gated phase puts the gates of the groups a method may prune (gates.ts): on a group's batch norms where its
 * channels pass through batch norm, else on its producing conv or dense layers' outputs. Keyed like
 * ScoreContext.gateSaliency, by the gated layer.
 */
export function gatePlacements(state: StructuredState, prunable: PrunablePolicy): Array<{ layer: string; at: "norm" | "output" }> {
  const offered = prunableGroups(state.plan, excludedGroups(state, prunable));
  const out = new Map<string, "norm" | "output">();
  for (const i of offered) {
    const out_ = state.graph.groups[i].members.filter((m) => m.side === "out");
    const norms = out_.filter((m) => m.layerKind === "batchnorm" && m.role === "gamma");
    if (norms.length > 0) for (const m of norms) out.set(m.layer, "norm");
    else for (const m of out_) if (m.role === "kernel" && (m.layerKind === "conv" || m.layerKind === "dense")) out.set(m.layer, "output");
  }
  return [...out].map(([layer, at]) => ({ layer, at }));
}
