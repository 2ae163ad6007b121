/**
 * A method's loss terms (src/prune/loss-terms.ts) as the closure the training loop adds to its loss
 * (PhaseOptions.extraLoss). Built from the model's layer table: the loop never learns what the terms are for.
 */
import * as tf from "@tensorflow/tfjs-core";
import { lossTermProblem, lossTermTensors, type LossPhase, type LossTerm } from "../prune/loss-terms.js";
import { gateTensor } from "./gates.js";
import type { Model } from "./model.js";

/**
 * Σ over the terms acting in `phase` of strength · ‖tensors‖; undefined when none acts (the loop then runs as ever).
 * The closure reads the model's variables, or, when the loop hands it the tensors the step computes with (a gated
 * phase's view, gates.ts), those, by name: a term on gates ("gate") acts on every gate of its layer kinds there.
 */
export function penaltyLoss(model: Model, terms: readonly LossTerm[], phase: LossPhase): ((tensors?: ReadonlyMap<string, tf.Tensor>) => tf.Scalar) | undefined {
  const acting = terms.filter((t) => t.phases.includes(phase) && t.strength > 0);
  if (acting.length === 0) return undefined;
  const parts = acting.map((t) => {
    const problem = lossTermProblem(t);
    if (problem) throw new Error(`loss term ${JSON.stringify(t)}: ${problem}`);
    const names = lossTermTensors(model.layers, t);
    const gates = t.roles.includes("gate") ? model.layers.filter((l) => t.layerKinds.includes(l.kind)).map((l) => gateTensor(l.name)) : [];
    if (names.length === 0 && gates.length === 0) throw new Error(`a ${t.norm} loss term on ${t.roles.join("/")} of ${t.layerKinds.join("/")} layers: ${model.arch.name} has none`);
    return { t, names, gates, vars: names.map((n) => {
      const v = model.params.get(n);
      if (!v) throw new Error(`loss term: no trainable tensor ${n}`);
      return v;
    }) };
  });
  // Called inside the loop's gradient scope, which disposes the intermediates.
  return (tensors) => tf.addN(parts.map(({ t, names, gates, vars }) => {
    const of = tensors ? [...names.map((n) => tensors.get(n)!), ...gates.flatMap((n) => tensors.get(n) ?? [])] : vars;
    if (of.length === 0) throw new Error(`a ${t.norm} loss term on the gates of ${t.layerKinds.join("/")} layers acts in ${phase}, where ${model.arch.name} has no such gate`);
    // |w| as w·sign(w): tfjs differentiates abs at 0 as −1, sign has a zero gradient, so this gives the subgradient
    // sign(w) with sign(0) = 0, the one network slimming adds to γ's gradient (torch.sign).
    const norms = of.map((v) => (t.norm === "l1" ? tf.sum(tf.mul(v, tf.sign(v))) : tf.sum(tf.square(v))));
    return tf.mul(tf.addN(norms), t.strength);
  })) as tf.Scalar;
}
