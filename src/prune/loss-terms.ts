/**
 * Loss terms as data: a method that trains its model under a penalty (network slimming's L1 on batch-norm γ, and
 * later Gate Decorator's gates) states it as values, and the engine adds it to the training loss of the phases it
 * names, inside the loop's gradient computation. The loop only sees a closure (PhaseOptions.extraLoss); nothing here
 * or there knows which method asked.
 */
import type { LayerKind } from "../core/types.js";
import { tensorNames, type LayerInfo } from "../archs/ops.js";

/**
 * "gate": the channel gates a gated training phase trains (src/train/gates.ts; Gate Decorator's φ), one per gated
 * layer of the term's kinds; they exist only in such phases.
 */
export type LossTermRole = "kernel" | "bias" | "gamma" | "beta" | "gate";

export interface LossTerm {
  /** "l1": strength · Σ|w|; "l2": strength · Σw² (no ½: the gradient is 2·strength·w). */
  norm: "l1" | "l2";
  /** The tensors it acts on: every layer of these kinds, the tensors of these roles (e.g. batch norm's γ). */
  layerKinds: readonly LayerKind[];
  roles: readonly LossTermRole[];
  strength: number;
  /**
   * The training phases it acts in. "pretrain" is the dense model's training (and any plan step that trains with the
   * pretraining config): a term acting there makes a dense model of its own, so it is part of the dense key.
   */
  phases: readonly LossPhase[];
}

/**
 * "tock": the training of a tick-tock schedule between its pruning ticks (src/prune/schedules.ts), which trains
 * every parameter and the gates.
 */
export type LossPhase = "pretrain" | "finetune" | "tock";

/** What is wrong with a term, or null. */
export function lossTermProblem(t: LossTerm): string | null {
  if (!(Number.isFinite(t.strength) && t.strength >= 0)) return `strength must be a finite number >= 0, got ${t.strength}`;
  if (t.layerKinds.length === 0 || t.roles.length === 0) return "a loss term names at least one layer kind and one role";
  if (t.phases.length === 0) return "a loss term acts in at least one phase";
  return null;
}

/**
 * The tensor names a term acts on in a model with these layers (layers without such a tensor are skipped). Gates are
 * not the model's tensors: a gated phase finds them by name (penalty.ts).
 */
export function lossTermTensors(layers: readonly LayerInfo[], t: LossTerm): string[] {
  const out: string[] = [];
  for (const layer of layers) {
    if (!t.layerKinds.includes(layer.kind)) continue;
    for (const role of t.roles) {
      if (role === "gate") continue;
      if (role === "bias" && !layer.hasBias) continue;
      out.push(tensorNames[role](layer.name));
    }
  }
  return out;
}

/**
 * The terms that shape the dense model, as they enter its key: those acting while pretraining, without `phases`
 * (two terms that pretrain alike make the same dense model whatever they do later). Empty for most methods, and an
 * empty list leaves the dense key as it always was.
 */
export function pretrainTermsForKey(terms: readonly LossTerm[]): Array<Omit<LossTerm, "phases">> {
  return terms.filter((t) => t.phases.includes("pretrain") && t.strength > 0)
    .map((t) => ({ norm: t.norm, layerKinds: [...t.layerKinds], roles: [...t.roles], strength: t.strength }));
}
