/** Defaults of every optional grid setting. A grid that spells a default out means the same as one that omits it. */
import type { DataConfig, EvalConfig, PrunablePolicy, TrainConfig } from "../core/types.js";

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
});

export const DEFAULT_FINETUNE: Readonly<TrainConfig> = Object.freeze({
  epochs: 5,
  batchSize: 128,
  optimizer: "sgd",
  lr: 0.01,
  momentum: 0.9,
  weightDecay: 0.0005,
  schedule: "cosine",
  stepEpochs: 30,
  gamma: 0.1,
});

export const DEFAULT_DATA: Readonly<DataConfig> = Object.freeze({ valFraction: 0.1, trainSubset: null, testSubset: null });

export const DEFAULT_PRUNABLE: Readonly<PrunablePolicy> = Object.freeze({
  biases: false,
  batchNorm: false,
  classifier: true,
  firstLayer: true,
});

export const DEFAULT_EVAL: Readonly<EvalConfig> = Object.freeze({ latencyBatch: 128, latencyRepeats: 10 });
