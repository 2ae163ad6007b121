/**
 * A tick-tock schedule's pruning (src/prune/schedules.ts, You et al. 2019): gates on the prunable channel groups,
 * a tock, then ticks — each trains the gates with the conv layers frozen while the gate statistic accumulates, and
 * prunes a fraction of the remaining channels by the method's scores — with a tock after every `tockEvery` ticks,
 * until the compacted model reaches the run's target. The model is left an ordinary network (the gates folded in),
 * masked, with the structured state saying what was kept; the run then fine-tunes it like any other.
 * Built from the engine's parts (gated training phases, the afterGradients hook, structuredPruneLowest): no method
 * is named here.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { PruningMethod } from "../../methods/types.js";
import type { HyperValue, PrunablePolicy, TrainConfig } from "../core/types.js";
import { makeRng, shuffleInPlace } from "../core/rng.js";
import type { LossPhase } from "../prune/loss-terms.js";
import type { TickTock } from "../prune/schedules.js";
import type { StructuredTarget } from "../prune/structured.js";
import { GateSet, gateTensor } from "../train/gates.js";
import { trainPhase, type PhaseOptions, type StagedSplit } from "../train/loop.js";
import type { MaskSet } from "../train/masks.js";
import type { Model } from "../train/model.js";
import { gatePlacements, structuredPruneLowest, type StructuredState } from "./structured-step.js";

export interface TickTockInput {
  model: Model;
  masks: MaskSet;
  method: PruningMethod;
  params: Readonly<Record<string, HyperValue>>;
  prunable: PrunablePolicy;
  target: StructuredTarget;
  train: StagedSplit;
  seed: number;
  state: StructuredState;
  schedule: TickTock;
  /** The run's fine-tuning config: the ticks' and tocks' optimizer, batch, momentum and weight decay. */
  finetune: TrainConfig;
  /** The method's penalty in a phase (its loss terms), undefined when none acts. */
  penalty(phase: LossPhase): PhaseOptions["extraLoss"];
  /** After each tock epoch and each tick: which one (1-based). */
  onProgress?(phase: "tick" | "tock", index: number): void;
}

export interface TickTockResult {
  ticks: number;
  tocks: number;
  trainSeconds: number;
}

/** Conv weights are what a tick leaves alone (the authors' freeze_conv); depthwise convs are convs too. */
const TICK_FROZEN = ["conv", "depthwise"] as const;

export async function tickTockStep(o: TickTockInput): Promise<TickTockResult> {
  const { model, masks, schedule } = o;
  const placements = gatePlacements(o.state, o.prunable);
  if (placements.length === 0) throw new Error(`${o.method.name}: no channel group of ${model.arch.name} may be pruned, so there is nothing to gate`);
  const gates = new GateSet(model, placements);
  // Progress of the ticks and tocks is the run's; validation accuracy per epoch is not needed to prune.
  const noVal: StagedSplit = { ...o.train, count: 0, dispose() {} };
  const result: TickTockResult = { ticks: 0, tocks: 0, trainSeconds: 0 };
  const tock = async () => {
    if (schedule.tockEpochs === 0) return;
    const n = ++result.tocks;
    const [lo, hi] = schedule.tockLr;
    const T = schedule.tockEpochs;
    const r = await trainPhase({
      phase: "finetune", stream: `tock${n}`, model, train: o.train, val: noVal, masks, seed: o.seed, selectBestOnVal: false, gates,
      config: { ...o.finetune, epochs: T, warmupEpochs: 0 },
      // Triangular: linear from lo to hi over the first half of the tock, back to lo over the second.
      lrAt: (p) => (p < T / 2 ? lo + (hi - lo) * (p / (T / 2)) : hi + (lo - hi) * ((p - T / 2) / (T / 2))),
      extraLoss: o.penalty("tock"),
      hooks: { afterEpoch: () => o.onProgress?.("tock", n) },
    });
    result.trainSeconds += r.trainSeconds;
  };
  try {
    await tock();
    for (let index = 1; ; index++) {
      result.ticks = index;
      const { saliency, trainSeconds } = await tick(o, gates, placements.map((p) => p.layer), index, noVal);
      result.trainSeconds += trainSeconds;
      const { reached, removed } = await structuredPruneLowest({
        model, masks, method: o.method, params: o.params, prunable: o.prunable, target: o.target, train: o.train, seed: o.seed,
        step: index, state: o.state, fraction: schedule.fraction, gateSaliency: saliency,
      });
      o.onProgress?.("tick", index);
      if (reached) break;
      if (removed === 0) {
        throw new Error(`${o.target.kind} ${o.target.value} is unreachable: after ${index} ticks every prunable group is at its floor (${o.state.achieved} reached)`);
      }
      if (index % schedule.tockEvery === 0) await tock();
    }
  } finally {
    gates.dispose();
  }
  return result;
}

/**
 * One tick: one epoch over a fresh seeded subset of the training split, conv layers frozen, constant LR, while
 * Σ |φ·∂L/∂φ| accumulates per gate on the device (read back once, at the end).
 */
export async function tick(o: TickTockInput, gates: GateSet, layers: readonly string[], index: number, noVal: StagedSplit): Promise<{ saliency: Map<string, Float32Array>; trainSeconds: number }> {
  const subset = tickSubset(o.train, o.schedule.tickImages, o.seed, index);
  const sums = new Map<string, tf.Tensor>();
  try {
    const r = await trainPhase({
      phase: "finetune", stream: `tick${index}`, model: o.model, train: subset, val: noVal, masks: o.masks, seed: o.seed, selectBestOnVal: false,
      gates, frozen: TICK_FROZEN,
      config: { ...o.finetune, epochs: 1, lr: o.schedule.tickLr, schedule: "constant", warmupEpochs: 0 },
      hooks: {
        afterGradients: (grads, values) => {
          for (const layer of layers) {
            const name = gateTensor(layer);
            const term = tf.abs(tf.mul(values.get(name)!, grads.get(name)!));
            const prev = sums.get(layer);
            sums.set(layer, tf.keep(prev ? tf.add(prev, term) : term));
            prev?.dispose();
          }
        },
      },
    });
    return { saliency: new Map([...sums].map(([layer, t]) => [layer, Float32Array.from(t.dataSync())])), trainSeconds: r.trainSeconds };
  } finally {
    for (const t of sums.values()) t.dispose();
    if (subset !== o.train) subset.dispose();
  }
}

/** `n` images of the training split drawn without replacement, seeded per tick (the whole split when n is 0 or more). */
export function tickSubset(train: StagedSplit, n: number, seed: number, tick: number): StagedSplit {
  if (n === 0 || n >= train.count) return train;
  const order = shuffleInPlace(new Int32Array(train.count).map((_, i) => i), makeRng(seed, `tick-subset:${tick}`));
  const idx = tf.tensor1d(order.subarray(0, n), "int32");
  try {
    const x = tf.gather(train.x, idx) as tf.Tensor4D;
    const y = tf.gather(train.y, idx) as tf.Tensor1D;
    return { x, y, count: n, augment: train.augment, dispose: () => { x.dispose(); y.dispose(); } };
  } finally {
    idx.dispose();
  }
}
