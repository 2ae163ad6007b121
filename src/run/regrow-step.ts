/**
 * One drop-and-grow update of dynamic sparse training, at constant density in every tensor: the method's score picks
 * the active weights to drop, its regrowth criterion the inactive ones to grow (the dense gradient of this step's
 * batch for RigL, a seeded draw for SET). Grown weights start at zero with fresh optimizer state, as in RigL.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { PruningMethod } from "../../methods/types.js";
import type { HyperValue, PrunablePolicy } from "../core/types.js";
import { dropAndGrow, type Regrowth } from "../prune/regrowth.js";
import type { StagedSplit } from "../train/loop.js";
import type { MaskSet } from "../train/masks.js";
import type { Model } from "../train/model.js";
import { prunableState } from "./prune-step.js";
import { scoreContext } from "./score-context.js";

export interface RegrowStepInput {
  model: Model;
  masks: MaskSet;
  method: PruningMethod;
  params: Readonly<Record<string, HyperValue>>;
  prunable: PrunablePolicy;
  /** Fraction of each tensor's active weights dropped and regrown. */
  fraction: number;
  regrowth: Regrowth;
  train: StagedSplit;
  seed: number;
  step: number;
  /** This step's dense gradients (needed for regrowth "gradient"). */
  gradients?: ReadonlyMap<string, tf.Tensor>;
  resetOptimizerState(name: string, where: tf.Tensor): void;
}

export async function regrowStep(o: RegrowStepInput): Promise<void> {
  const tensors = prunableState(o.model, o.masks, o.prunable);
  const ctx = scoreContext({ method: o.method, params: o.params, tensors, model: o.model, train: o.train, seed: o.seed, step: o.step });
  const dropScores = await o.method.score(ctx);
  for (const t of tensors) {
    let growScores: Float32Array;
    if (o.regrowth === "gradient") {
      const g = o.gradients?.get(t.name);
      if (!g) throw new Error(`regrowth by gradient needs this step's dense gradient of ${t.name}`);
      growScores = (g.dataSync() as Float32Array).map(Math.abs);
    } else {
      growScores = t.values.map(() => ctx.random());
    }
    const active = t.mask.reduce((n, m) => n + m, 0);
    const { mask, grown } = dropAndGrow(t.mask, dropScores.get(t.name)!, growScores, Math.round(o.fraction * active));
    o.masks.set(t.name, mask, t.shape);
    tf.tidy(() => o.resetOptimizerState(t.name, tf.tensor(grown, t.shape)));
  }
  // Dropped weights become exactly 0; grown ones already are (they were masked), so they start at zero.
  o.masks.apply(o.model.params);
}
