/** The method registry: adding a method is one file in methods/ plus one line here. */
import type { Catalog, HyperValue } from "../src/core/types.js";
import { scheduleProblem } from "../src/prune/schedules.js";
import { apoz } from "./apoz.js";
import { fpgm } from "./fpgm.js";
import { gateDecorator } from "./gate-decorator.js";
import { hrank } from "./hrank.js";
import { globalActivation } from "./global-activation.js";
import { globalGradient } from "./global-gradient.js";
import { globalMagnitude } from "./global-magnitude.js";
import { dns } from "./dns.js";
import { dropnet } from "./dropnet.js";
import { gmp } from "./gmp.js";
import { grasp } from "./grasp.js";
import { imp } from "./imp.js";
import { impRandomReinit } from "./imp-random-reinit.js";
import { layerActivation } from "./layer-activation.js";
import { layerGradient } from "./layer-gradient.js";
import { layerMagnitude } from "./layer-magnitude.js";
import { l1Filter } from "./l1-filter.js";
import { magnitudeAtInit } from "./magnitude-at-init.js";
import { obd } from "./obd.js";
import { obs } from "./obs.js";
import { platon } from "./platon.js";
import { nap } from "./nap.js";
import { napChannel } from "./nap-channel.js";
import { random } from "./random.js";
import { randomChannel } from "./random-channel.js";
import { rigl } from "./rigl.js";
import { scratch } from "./scratch.js";
import { set } from "./set.js";
import { slimming } from "./slimming.js";
import { snip } from "./snip.js";
import { staticSparse } from "./static-sparse.js";
import { synflow } from "./synflow.js";
import { taylor } from "./taylor.js";
import type { PruningMethod } from "./types.js";

export const METHODS: readonly PruningMethod[] = [
  random,
  globalMagnitude,
  layerMagnitude,
  globalGradient,
  layerGradient,
  globalActivation,
  layerActivation,
  snip,
  synflow,
  grasp,
  magnitudeAtInit,
  gmp,
  dns,
  imp,
  impRandomReinit,
  scratch,
  staticSparse,
  set,
  rigl,
  randomChannel,
  l1Filter,
  fpgm,
  apoz,
  hrank,
  slimming,
  taylor,
  dropnet,
  gateDecorator,
  obd,
  obs,
  platon,
  nap,
  napChannel,
];

export function getMethod(name: string): PruningMethod {
  const method = METHODS.find((m) => m.name === name);
  if (!method) throw new Error(`unknown method "${name}"; valid: ${METHODS.map((m) => m.name).join(", ")}`);
  return method;
}

/**
 * The engine prunes channels in one step after pretraining, or in rounds after it (iterative). Not (yet) while
 * training or at initialization, and not with Activating-while-Pruning, whose share picks single weights.
 */
function channelScheduleProblem(m: PruningMethod, p: Readonly<Record<string, HyperValue>>): string | null {
  if (m.granularity !== "channel") return m.schedule(p).kind === "tick-tock" ? "a tick-tock schedule prunes channels: it needs a channel method" : null;
  const schedule = m.schedule(p);
  if (schedule.kind === "tick-tock") return null;
  if (schedule.kind !== "one-shot" && schedule.kind !== "iterative") return `a channel method runs one-shot, iterative or tick-tock, and this schedule is ${schedule.kind}`;
  return schedule.kind === "iterative" && (schedule.apRate ?? 0) > 0 ? "a channel method's rounds remove whole channels: ap_rate (which removes single weights) must be 0" : null;
}

/** A training tracker is fed only while a gradual schedule fine-tunes: another schedule would score from nothing. */
function trackerScheduleProblem(m: PruningMethod, p: Readonly<Record<string, HyperValue>>): string | null {
  const kind = m.schedule(p).kind;
  return m.tracker && kind !== "gradual" ? `the method's training tracker is fed only under a gradual schedule, and this one is ${kind}` : null;
}

function schedulePrefix(problem: string | null): string | null {
  return problem === null ? null : `its schedule cannot run: ${problem}`;
}

export function methodCatalog(): Catalog["methods"] {
  return Object.fromEntries(METHODS.map((m) => [m.name, { params: m.params, check: (p: Readonly<Record<string, HyperValue>>) => m.paramsProblem?.(p) ?? schedulePrefix(scheduleProblem(m.schedule(p)) ?? channelScheduleProblem(m, p) ?? trackerScheduleProblem(m, p)),
    scheduleKind: (p: Readonly<Record<string, HyperValue>>) => m.schedule(p).kind, granularity: m.granularity ?? "weight" }]));
}

export type { LossTerm } from "../src/prune/loss-terms.js";
export type { BatchSpec, ChannelActivationStats, ChannelGroupView, ChannelMember, ClassBalancedBatches, HessianGradient, KfacFactors, KfacOptions, LossSpec, OutputActivationOptions, PruningMethod, PrunableTensor, ScoreContext, ScoreNeeds, ShuffledBatches, TrainingTracker } from "./types.js";
