/**
 * A run's lifecycle as data: the steps the engine executes for a method's schedule. Every run starts from the
 * seeded initial weights and the dense model pretrained from them (cached, shared with the other runs of its seed);
 * what follows depends only on the schedule, never on the method's name.
 */
import type { AblationName } from "../core/types.js";
import { pruningEvents, roundPeakLr, type Schedule } from "../prune/schedules.js";
import type { TrainBudget } from "./train-budget.js";

/** Weights a rewind step restores under the current masks (pruned ones stay 0). */
export type RewindTarget = "init" | "epoch" | "reinit";

export type PhaseStep =
  /** Back to the weights the model had before dense pretraining (prune-at-initialization). */
  | { kind: "rewind-to-init" }
  /**
   * Score and prune to `density` (fraction of prunable weights kept); `round` numbers the steps of one run; `random`:
   * a uniformly random mask instead of the method's scores (dynamic sparse training starts from one).
   */
  | {
    kind: "prune"; density: number; round: number; random: boolean;
    /**
     * Of the weights surviving before this step, this fraction is removed among the negative ones that moved least
     * since the start of the training before it (Activating-while-Pruning), within the same total; absent: none.
     */
    activate?: number;
  }
  /**
   * Train with the masks applied after every step. `during`: what the schedule does to the masks while training:
   * nothing, prune further (gradual), drop and regrow at constant density (dynamic; its steps count over all the
   * phases that have it), or prune and splice by thresholds (surgery; src/prune/surgery.ts).
   */
  | {
    kind: "train"; phase: "pretrain" | "finetune"; during: "none" | "gradual" | "dynamic" | "surgery";
    /**
     * "soft": the masked weights keep their dense values and learn (the forward pass sees W⊙T, the update uses
     * ∂L/∂(W⊙T) on all of W; the model holds W⊙T whenever it is read; see src/train/soft-masks.ts). Absent: masked
     * weights are exactly 0 after every step.
     */
    masking?: "soft";
    /** First epoch of the phase's config to run (its LR schedule continues from there); 0 when absent. */
    fromEpoch?: number;
    /** The phase's peak LR in place of its config's `lr` (SILO's per-round peaks); the schedule shape is kept. */
    peakLr?: number;
    /**
     * The phase's length set by compute instead of its config's epochs (train-budget.ts): known only once the
     * masks are, so the runner resolves it from the masked model's MACs when the step starts; absent: the config's.
     */
    budget?: TrainBudget;
  }
  /**
   * The surviving weights back to: their initial values ("init"), the dense model's after some pretraining epochs
   * ("epoch"), or a fresh random draw from another seed stream ("reinit"); the masks are applied after.
   */
  | { kind: "rewind"; to: RewindTarget }
  /**
   * A sanity ablation of the masks just computed (see AblationName): "layer-shuffle" moves each tensor's survivors
   * to random positions, which take the values they had before pruning; "reinit" re-draws the survivors from the
   * initialisation distribution. Comes after the last prune step and before any training.
   */
  | { kind: "ablate"; ablation: Exclude<AblationName, "none"> }
  /**
   * A tick-tock schedule's tocks and ticks (schedules.ts), pruning until the run's target is reached: its training
   * phases are its own (gated, some layers frozen), so they are one step run by tick-tock-step.ts.
   */
  | { kind: "tick-tock" }
  /**
   * The model as it is now is one result of the run: level `level` (1-based) of an iterative schedule. The run's own
   * result is its last level.
   */
  | {
    kind: "level"; level: number;
    /**
     * The level's result is a control instead of the model as it is: the weights are set aside, the survivors
     * rewound to `from`, trained by `train` and measured, and the weights put back, so the run goes on from its own.
     */
    control?: { from: RewindTarget; train: Extract<PhaseStep, { kind: "train" }> };
  };

/**
 * The steps of a run. An ablation other than "none" needs masks that are final before training (one-shot, at-init);
 * the grid refuses the others when it is read, and this throws for them, so that no run is an ablation in name only.
 */
export function phasePlan(schedule: Schedule, density: number, ablation: AblationName = "none"): PhaseStep[] {
  const random = schedule.kind === "dynamic";
  const prunes = pruningEvents(schedule, density).map((d, round): PhaseStep => ({ kind: "prune", density: d, round, random }));
  const ablate: PhaseStep[] = ablation === "none" ? [] : [{ kind: "ablate", ablation }];
  if (ablation !== "none" && schedule.kind !== "one-shot" && schedule.kind !== "at-init") {
    throw new Error(`ablation ${ablation} needs masks that are fixed before training, and a ${schedule.kind} schedule keeps changing them`);
  }
  switch (schedule.kind) {
    case "one-shot":
      if (schedule.scratch) {
        // Training from scratch (Liu et al. 2019): only the mask is kept (an ablation's too: the re-draw comes after
        // it); fresh weights are trained like the dense model, for its epochs or for its compute.
        const { scratch } = schedule;
        const train: PhaseStep = scratch.budget === "macs"
          ? { kind: "train", phase: "pretrain", during: "none", budget: { by: "macs", cap: scratch.cap } }
          : { kind: "train", phase: "pretrain", during: "none" };
        return [...prunes, ...ablate, { kind: "rewind", to: "reinit" }, train];
      }
      return [...prunes, ...ablate, { kind: "train", phase: "finetune", during: "none" }];
    case "at-init":
      // The sparse network then trains for as many epochs as a dense model plus its fine-tuning: equal budgets.
      return [{ kind: "rewind-to-init" }, ...prunes, ...ablate, { kind: "train", phase: "pretrain", during: "none" }, { kind: "train", phase: "finetune", during: "none" }];
    case "gradual":
      return [{ kind: "train", phase: "finetune", during: "gradual" }];
    case "surgery":
      // From the trained dense model, as the paper prunes a pretrained network; the first cut is the surgery's own.
      return [{ kind: "train", phase: "finetune", during: "surgery", masking: "soft" }];
    case "dynamic":
      // Sparse from the start, like at-init, with the mask moving over both phases.
      return [{ kind: "rewind-to-init" }, ...prunes, { kind: "train", phase: "pretrain", during: "dynamic" }, { kind: "train", phase: "finetune", during: "dynamic" }];
    case "tick-tock":
      // From the trained dense model; the ticks prune it to the target, then the usual fine-tuning.
      return [{ kind: "tick-tock" }, { kind: "train", phase: "finetune", during: "none" }];
    case "iterative": {
      // Each round: prune, go back to where the schedule retrains from, retrain, and record the level. Rewound
      // weights get the dense model's whole training again (from the rewind epoch on for "epoch"), LR rewinding the
      // pretraining schedule from its start; "none" is classic prune-and-fine-tune.
      const { rewind, rewindEpoch } = schedule;
      const retrain: PhaseStep = rewind === "none" ? { kind: "train", phase: "finetune", during: "none" }
        : { kind: "train", phase: "pretrain", during: "none", ...(rewind === "epoch" ? { fromEpoch: rewindEpoch } : {}) };
      const control: Extract<PhaseStep, { kind: "train" }> = { kind: "train", phase: "pretrain", during: "none" };
      const ap = schedule.apRate ?? 0;
      // NaN stands for "the configured LR": only a SILO round past the delay gets a peak of its own.
      const peak = (r: number) => roundPeakLr(schedule, r + 1, NaN);
      return prunes.flatMap((p, r): PhaseStep[] => [
        ap > 0 ? { ...p, activate: ap } as PhaseStep : p,
        ...(rewind === "init" || rewind === "epoch" || rewind === "reinit" ? [{ kind: "rewind", to: rewind } as const] : []),
        Number.isNaN(peak(r)) ? retrain : { ...retrain, peakLr: peak(r) } as PhaseStep,
        // The control retrains the ticket like the round does (from the start of the pretraining config).
        schedule.control ? { kind: "level", level: r + 1, control: { from: schedule.control, train: Number.isNaN(peak(r)) ? control : { ...control, peakLr: peak(r) } } }
          : { kind: "level", level: r + 1 },
      ]);
    }
  }
}
