/**
 * The surgery schedule run over one fine-tuning phase with soft masks (src/prune/surgery.ts has the rules): the
 * first cut before the phase's first step, band updates before later steps, each layer with probability
 * (1 + γt)^−power from its own seeded draw, and the exact cut to the run's target at min(iter_stop, T). Scores are
 * the method's, of the dense weights (for |w|-scored methods, the magnitude the authors threshold).
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { PrunableTensor, PruningMethod } from "../../methods/types.js";
import { makeRng } from "../core/rng.js";
import type { HyperValue, PrunablePolicy } from "../core/types.js";
import {
  bandOf, bandUpdate, cutToDensity, layerMoments, standardized, surgeryEnd, targetCut, updatesAt,
  type Band, type Moments, type SurgerySchedule, type SurgeryTensor,
} from "../prune/surgery.js";
import type { StepContext } from "../train/hooks.js";
import type { StagedSplit } from "../train/loop.js";
import type { MaskSet } from "../train/masks.js";
import type { Model } from "../train/model.js";
import { prunableState } from "./prune-step.js";
import { scoreContext } from "./score-context.js";

export interface SurgeryInput {
  model: Model;
  masks: MaskSet;
  method: PruningMethod;
  params: Readonly<Record<string, HyperValue>>;
  prunable: PrunablePolicy;
  schedule: SurgerySchedule;
  /** The run's target: fraction of the prunable weights kept when the surgery ends. */
  density: number;
  train: StagedSplit;
  seed: number;
  /** Steps of the phase the surgery runs in. */
  totalSteps: number;
}

export interface Surgery {
  /** The phase step after which the last mask change (the exact cut) is made: epochs before it are not final. */
  lastChangeStep: number;
  /** The afterStep hook: the update before step globalStep + 1. Needs the loop's soft masks (denseWeights). */
  afterStep(ctx: StepContext): Promise<void>;
}

/**
 * Statistics and the first cut (step 0, always made: (1 + γ·0)^−power = 1) from the model's weights as they are,
 * dense. The masks are set, not applied: the soft-mask phase that follows takes the variables' values as its dense
 * weights and applies the masks itself.
 */
export async function startSurgery(o: SurgeryInput): Promise<Surgery> {
  const { schedule, method } = o;
  const distribution = method.distribution(o.params);
  const refs = prunableState(o.model, o.masks, o.prunable);
  let calls = 0;
  const scoreOf = async (tensors: PrunableTensor[]) => method.score(scoreContext({
    method, params: o.params, tensors, model: o.model, train: o.train, seed: o.seed, step: ++calls,
  }));
  const asSurgery = (tensors: PrunableTensor[], scores: Map<string, Float32Array>): SurgeryTensor[] =>
    tensors.map((t) => ({ name: t.name, layer: t.layer, scores: scores.get(t.name)!, mask: t.mask, shape: t.shape }));

  const first = asSurgery(refs, await scoreOf(refs));
  const moments: ReadonlyMap<string, Moments> = layerMoments(first);
  let bands: Map<string, Band>;
  if (schedule.c === "target") {
    const cut = targetCut(first, moments, o.density, distribution, schedule);
    bands = cut.bands;
    for (const t of first) o.masks.set(t.name, cut.masks.get(t.name)!, refs.find((r) => r.name === t.name)!.shape);
  } else {
    const c = schedule.c;
    bands = new Map(first.map((t) => [t.name, bandOf(moments.get(t.layer)!, c, schedule)]));
    for (const t of first) o.masks.set(t.name, bandUpdate(t.mask, t.scores, bands.get(t.name)!), refs.find((r) => r.name === t.name)!.shape);
  }

  const end = surgeryEnd(schedule, o.totalSteps);
  const layers = [...new Set(refs.map((r) => r.layer))];
  const draw = makeRng(o.seed, "surgery");
  return {
    lastChangeStep: end - 1,
    async afterStep(ctx) {
      const t = ctx.globalStep + 1;
      if (t > end) return;
      if (!ctx.denseWeights) throw new Error("the surgery schedule needs soft masks: the training phase gave no dense weights");
      // Every layer draws at every step, updating or not, so a layer's draws do not depend on the others'.
      const updating = t === end ? layers : layers.filter((_) => updatesAt(schedule, t, draw()));
      if (updating.length === 0) return;
      const tensors = denseState(o, refs.filter((r) => updating.includes(r.layer)), ctx.denseWeights);
      const now = asSurgery(tensors, await scoreOf(tensors));
      if (t === end) {
        // Comparable across layers under one threshold: the scores standardised by the moments the surgery started with.
        const pooled = distribution === "global" ? now.map((x) => ({ ...x, scores: standardized(x, moments.get(x.layer)!, schedule.lower) })) : now;
        const exact = cutToDensity(pooled, o.density, distribution);
        for (const x of tensors) o.masks.set(x.name, exact.get(x.name)!, x.shape);
      } else {
        for (const x of now) {
          const next = bandUpdate(x.mask, x.scores, bands.get(x.name)!);
          if (next !== x.mask) o.masks.set(x.name, next, tensors.find((r) => r.name === x.name)!.shape);
        }
      }
    },
  };
}

/** The prunable tensors `refs` with their dense values (what the scores and bands look at) and current masks. */
function denseState(o: SurgeryInput, refs: readonly PrunableTensor[], dense: ReadonlyMap<string, tf.Tensor>): PrunableTensor[] {
  return refs.map((r) => {
    const w = dense.get(r.name);
    if (!w) throw new Error(`no dense weights for ${r.name}: the soft-mask phase did not see its mask`);
    return { ...r, values: w.dataSync() as Float32Array, mask: o.masks.values(r.name)! };
  });
}
