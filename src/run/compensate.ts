/**
 * The engine side of a method's `compensate` hook (OBS-style methods): after a prune step has chosen its masks, the
 * method may hand back new values for surviving weights, which go into the model before training resumes. Pruned
 * entries are zeroed whatever the method returned (the masks are applied after), so a compensation can never revive
 * a pruned weight. Methods without the hook are never called and their steps stay bit-identical.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { PruningMethod, ScoreContext } from "../../methods/types.js";
import type { HyperValue } from "../core/types.js";
import type { MaskSet } from "../train/masks.js";
import type { Model } from "../train/model.js";

/**
 * Calls `method.compensate` (when it has one) with the step's context and new masks, writes what it returns into the
 * model's parameters, then applies the masks. A tensor it names must be a parameter of the model, of that parameter's
 * size, and finite: anything else is a bug in the method, reported with its name and the tensor's.
 */
export async function compensateAndMask(
  method: PruningMethod, ctx: ScoreContext, newMasks: ReadonlyMap<string, Float32Array>,
  params: Readonly<Record<string, HyperValue>>, model: Model, masks: MaskSet,
): Promise<void> {
  if (method.compensate) {
    const updates = await method.compensate(ctx, newMasks, params);
    for (const [name, values] of updates) {
      const v = model.params.get(name);
      if (!v) throw new Error(`${method.name}: compensate returned values for "${name}", which is no parameter of the model`);
      if (values.length !== v.size) throw new Error(`${method.name}: compensate returned ${values.length} values for ${name}, which has ${v.size}`);
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i])) throw new Error(`${method.name}: compensate returned a non-finite value (${values[i]}) at ${name}[${i}]`);
      }
      tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
    }
  }
  masks.apply(model.params);
}
