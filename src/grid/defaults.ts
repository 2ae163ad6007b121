/** Defaults of every optional grid setting. A grid that spells a default out means the same as one that omits it. */
import type { AblationName, AugmentName, EvalConfig, FinetuneConfig, GridDataConfig, ModelConfig, PrunablePolicy, TrainConfig } from "../core/types.js";

/** PyTorch's own default init: what ShrinkBench and most pruning code start from (GUIDE.md §2, "weight init"). */
export const DEFAULT_MODEL: Readonly<ModelConfig> = Object.freeze({ init: "torch-default" });

export const DEFAULT_PRETRAIN: Readonly<TrainConfig> = Object.freeze({
  epochs: 10,
  batchSize: 128,
  optimizer: "sgd",
  lr: 0.05,
  momentum: 0.9,
  weightDecay: 0.0005,
  schedule: "cosine",
  stepEpochs: 30,
  gamma: 0.1,
  nesterov: false,
  warmupEpochs: 0,
});

export const DEFAULT_FINETUNE: Readonly<FinetuneConfig> = Object.freeze({
  epochs: 5,
  batchSize: 128,
  optimizer: "sgd",
  lr: 0.01,
  momentum: 0.9,
  weightDecay: 0.0005,
  schedule: "cosine",
  stepEpochs: 30,
  gamma: 0.1,
  nesterov: false,
  warmupEpochs: 0,
  select: "best-val",
});

export const DEFAULT_DATA: Readonly<GridDataConfig> = Object.freeze({
  valFraction: 0.1,
  trainSubset: null,
  testSubset: null,
  normalize: "dataset",
  augment: "auto",
});

/**
 * What `augment: auto` means for each dataset: the standard protocol of its literature. CIFAR-10 is trained with a
 * pad-4 random crop and horizontal flip (He et al. 2016 and every pruning paper after it); the 28×28 digit and
 * clothing sets without augmentation (LeNet, Han et al. 2015, ShrinkBench). A dataset not listed gets none.
 */
export const AUTO_AUGMENT: Readonly<Record<string, AugmentName>> = Object.freeze({ cifar10: "crop-flip" });

export function resolveAugment(choice: GridDataConfig["augment"], dataset: string): AugmentName {
  if (choice !== "auto") return choice;
  return Object.hasOwn(AUTO_AUGMENT, dataset) ? AUTO_AUGMENT[dataset] : "none";
}

export const DEFAULT_PRUNABLE: Readonly<PrunablePolicy> = Object.freeze({
  biases: false,
  batchNorm: false,
  classifier: true,
  firstLayer: true,
});

export const DEFAULT_EVAL: Readonly<EvalConfig> = Object.freeze({ latencyBatch: 128, latencyRepeats: 10 });

/** No ablation: each method's own masks and weights. */
export const DEFAULT_ABLATIONS: readonly AblationName[] = Object.freeze(["none"]);
