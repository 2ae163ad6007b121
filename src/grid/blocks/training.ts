/** The `pretrain` and `finetune` blocks: one training phase each, every key optional. */
import type { Checker, Reader, TopLevel } from "../checker.js";
import { DEFAULT_FINETUNE, DEFAULT_PRETRAIN } from "../defaults.js";
import type { TrainConfig } from "../../core/types.js";

function trainFields(c: Checker, minEpochs: number): Record<string, [keyof TrainConfig, Reader<TrainConfig[keyof TrainConfig]>]> {
  return {
    epochs: ["epochs", (n, p) => c.number(n, p, { integer: true, min: minEpochs })],
    batch_size: ["batchSize", (n, p) => c.number(n, p, { integer: true, min: 1 })],
    optimizer: ["optimizer", (n, p) => c.choice(n, p, "optimizer", ["sgd", "adam"] as const)],
    lr: ["lr", (n, p) => c.number(n, p, { min: 0, minExclusive: true })],
    momentum: ["momentum", (n, p) => c.number(n, p, { min: 0, max: 1, maxExclusive: true })],
    weight_decay: ["weightDecay", (n, p) => c.number(n, p, { min: 0 })],
    schedule: ["schedule", (n, p) => c.choice(n, p, "schedule", ["constant", "step", "cosine"] as const)],
    step_epochs: ["stepEpochs", (n, p) => c.number(n, p, { integer: true, min: 1 })],
    gamma: ["gamma", (n, p) => c.number(n, p, { min: 0, minExclusive: true })],
  };
}

/** A dense model needs at least one epoch of training; fine-tuning may be skipped (0 epochs: prune only). */
export function readTraining(c: Checker, top: TopLevel): { pretrain: TrainConfig; finetune: TrainConfig } {
  const pretrain = c.block<TrainConfig>(top.get("pretrain"), "pretrain", DEFAULT_PRETRAIN, trainFields(c, 1));
  const finetune = c.block<TrainConfig>(top.get("finetune"), "finetune", DEFAULT_FINETUNE, trainFields(c, 0));
  return { pretrain, finetune };
}
