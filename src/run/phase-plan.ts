/**
 * A run's lifecycle as data: the steps the engine executes for a method's schedule. Every run starts from the
 * seeded initial weights and the dense model pretrained from them (cached, shared with the other runs of its seed);
 * what follows depends only on the schedule, never on the method's name.
 */
import { pruningEvents, type Schedule } from "../prune/schedules.js";

export type PhaseStep =
  /** Back to the weights the model had before dense pretraining (prune-at-initialization). */
  | { kind: "rewind-to-init" }
  /**
   * Score and prune to `density` (fraction of prunable weights kept); `round` numbers the steps of one run; `random`:
   * a uniformly random mask instead of the method's scores (dynamic sparse training starts from one).
   */
  | { kind: "prune"; density: number; round: number; random: boolean }
  /**
   * Train with the masks applied after every step. `during`: what the schedule does to the masks while training:
   * nothing, prune further (gradual), or drop and regrow at constant density (dynamic; its steps count over all the
   * phases that have it).
   */
  | { kind: "train"; phase: "pretrain" | "finetune"; during: "none" | "gradual" | "dynamic" };

export function phasePlan(schedule: Schedule, density: number): PhaseStep[] {
  const random = schedule.kind === "dynamic";
  const prunes = pruningEvents(schedule, density).map((d, round): PhaseStep => ({ kind: "prune", density: d, round, random }));
  switch (schedule.kind) {
    case "one-shot":
      return [...prunes, { kind: "train", phase: "finetune", during: "none" }];
    case "at-init":
      // The sparse network then trains for as many epochs as a dense model plus its fine-tuning: equal budgets.
      return [{ kind: "rewind-to-init" }, ...prunes, { kind: "train", phase: "pretrain", during: "none" }, { kind: "train", phase: "finetune", during: "none" }];
    case "gradual":
      return [{ kind: "train", phase: "finetune", during: "gradual" }];
    case "dynamic":
      // Sparse from the start, like at-init, with the mask moving over both phases.
      return [{ kind: "rewind-to-init" }, ...prunes, { kind: "train", phase: "pretrain", during: "dynamic" }, { kind: "train", phase: "finetune", during: "dynamic" }];
  }
}
