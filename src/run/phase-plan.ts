/**
 * A run's lifecycle as data: the steps the engine executes for a method's schedule. Every run starts from the
 * seeded initial weights and the dense model pretrained from them (cached, shared with the other runs of its seed);
 * what follows depends only on the schedule, never on the method's name.
 */
import { pruningEvents, type Schedule } from "../prune/schedules.js";

export type PhaseStep =
  /** Back to the weights the model had before dense pretraining (prune-at-initialization). */
  | { kind: "rewind-to-init" }
  /** Score and prune to `density` (fraction of prunable weights kept); `round` numbers the steps of one run. */
  | { kind: "prune"; density: number; round: number }
  /** Train with the masks applied after every step; `gradual`: the schedule also prunes during this phase. */
  | { kind: "train"; phase: "pretrain" | "finetune"; gradual: boolean };

export function phasePlan(schedule: Schedule, density: number): PhaseStep[] {
  const prunes = pruningEvents(schedule, density).map((d, round): PhaseStep => ({ kind: "prune", density: d, round }));
  switch (schedule.kind) {
    case "one-shot":
      return [...prunes, { kind: "train", phase: "finetune", gradual: false }];
    case "at-init":
      // The sparse network then trains for as many epochs as a dense model plus its fine-tuning: equal budgets.
      return [{ kind: "rewind-to-init" }, ...prunes, { kind: "train", phase: "pretrain", gradual: false }, { kind: "train", phase: "finetune", gradual: false }];
    case "gradual":
      return [{ kind: "train", phase: "finetune", gradual: true }];
  }
}
