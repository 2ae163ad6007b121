/**
 * A sanity ablation of a run's masks, after its last pruning step and before training (the "ablate" phase step). It
 * touches only the masked tensors, and never asks which method made the masks.
 */
import type { AblationName, InitName } from "../core/types.js";
import { shuffledMask } from "../prune/ablation.js";
import type { MaskSet } from "../train/masks.js";
import { redrawnInitialWeights, restore, snapshot, type Model } from "../train/model.js";

/**
 * The seed stream of the reinit ablation's draw: not the model's own ("init:") nor the lottery-ticket control's
 * ("reinit:"), so the surviving weights are an independent draw from the same distribution.
 */
export const REINIT_ABLATION_STREAM = "ablation-reinit";

export interface AblateStepInput {
  model: Model;
  masks: MaskSet;
  ablation: Exclude<AblationName, "none">;
  seed: number;
  init: InitName;
  /**
   * Every tensor's values before the first pruning step (the dense model for one-shot, the initial weights for
   * at-init): a shuffled mask's survivors take their values from here, since the model holds zeros where they land.
   */
  beforePruning: ReadonlyMap<string, Float32Array>;
}

export function ablateStep(o: AblateStepInput): void {
  const weights = snapshot(o.model);
  if (o.ablation === "layer-shuffle") {
    for (const name of o.masks.names()) {
      const shape = o.model.params.get(name)!.shape;
      o.masks.set(name, shuffledMask(o.masks.values(name)!, o.seed, `ablation-layer-shuffle:${name}`), shape);
      weights.set(name, o.beforePruning.get(name)!.slice());
    }
  } else {
    // Only the masked tensors are drawn again: what the method did not prune (biases by default, batch norm) is
    // not part of its mask and keeps its values, as it does without the ablation.
    const fresh = redrawnInitialWeights(o.model, o.seed, o.init, REINIT_ABLATION_STREAM);
    for (const name of o.masks.names()) weights.set(name, fresh.get(name)!);
  }
  restore(o.model, weights);
  o.masks.apply(o.model.params);
}
