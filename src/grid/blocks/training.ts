/** The `pretrain` and `finetune` blocks: one training phase each, every key optional. */
import { entryIn, type Checker, type Reader, type TopLevel } from "../checker.js";
import { DEFAULT_FINETUNE, DEFAULT_PRETRAIN } from "../defaults.js";
import type { LNode } from "../parse.js";
import type { FinetuneConfig, SelectName, TrainConfig } from "../../core/types.js";

type Fields<T> = Record<string, [keyof T, Reader<T[keyof T]>]>;

function trainFields(c: Checker, minEpochs: number): Fields<TrainConfig> {
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
    nesterov: ["nesterov", (n, p) => c.bool(n, p)],
    warmup_epochs: ["warmupEpochs", (n, p) => c.number(n, p, { min: 0, hint: " (epochs of linear LR warmup from 0)" })],
  };
}

export const SELECT_NAMES: readonly SelectName[] = ["best-val", "final"];

/** Settings that are each valid alone but not together: refused at the key that would be ignored or meaningless. */
function checkPhase(c: Checker, node: LNode | undefined, path: string, t: TrainConfig): void {
  const nesterov = entryIn(node, "nesterov");
  if (t.nesterov && nesterov !== undefined) {
    if (t.optimizer !== "sgd") {
      c.error(nesterov.value.line, `${path}.nesterov`, `nesterov momentum is an SGD setting, but ${path}.optimizer is ${t.optimizer}; valid with ${t.optimizer}: false (or use optimizer: sgd)`);
    } else if (t.momentum === 0) {
      // PyTorch refuses it too: Nesterov's look-ahead is along the momentum buffer.
      c.error(nesterov.value.line, `${path}.nesterov`, `nesterov needs momentum > 0, but ${path}.momentum is 0`);
    }
  }
  const warmup = entryIn(node, "warmup_epochs");
  if (warmup !== undefined && t.warmupEpochs > t.epochs) {
    c.error(warmup.value.line, `${path}.warmup_epochs`, `warmup of ${t.warmupEpochs} epochs is longer than the phase (${path}.epochs ${t.epochs}): the LR would never reach lr; valid: a number in [0, ${t.epochs}]`);
  }
}

/** A dense model needs at least one epoch of training; fine-tuning may be skipped (0 epochs: prune only). */
export function readTraining(c: Checker, top: TopLevel): { pretrain: TrainConfig; finetune: FinetuneConfig } {
  const pretrain = c.block<TrainConfig>(top.get("pretrain"), "pretrain", DEFAULT_PRETRAIN, trainFields(c, 1));
  const finetuneFields: Fields<FinetuneConfig> = {
    ...(trainFields(c, 0) as unknown as Fields<FinetuneConfig>),
    select: ["select", (n, p) => c.choice(n, p, "selection", SELECT_NAMES)],
  };
  const finetune = c.block<FinetuneConfig>(top.get("finetune"), "finetune", DEFAULT_FINETUNE, finetuneFields);
  checkPhase(c, top.get("pretrain"), "pretrain", pretrain);
  checkPhase(c, top.get("finetune"), "finetune", finetune);
  return { pretrain, finetune };
}
