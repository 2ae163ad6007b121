/**
 * A training phase whose length is set by compute rather than by its config (a "train" phase step with `budget`):
 * pure functions of a config and the masked model's MAC counts (src/metrics), so the phase plan stays data and the
 * runner only supplies the counts of the masks it holds when the step starts.
 */
import type { LayerInfo } from "../archs/ops.js";
import type { TrainConfig } from "../core/types.js";
import { maskedMacs, theoreticalSpeedup } from "../metrics/counts.js";

/** Train for as much compute as `epochs` dense epochs buy: epochs × min(cap, dense MACs ÷ effective MACs). */
export interface TrainBudget { by: "macs"; cap: number }

/**
 * Epochs of a budgeted phase: floor(epochs × min(cap, ratio)), as the authors' Scratch-B scripts truncate
 * (int(epochs · flops_dense / flops_sparse)); never fewer than `epochs` (a sparse model costs no more than the dense
 * one). The tolerance keeps a product that is an integer up to float rounding (10 × 2.3) from losing an epoch.
 */
export function budgetEpochs(epochs: number, macsRatio: number, cap: number): number {
  if (!(cap >= 1)) throw new Error(`a training budget's cap must be >= 1, got ${cap}`);
  if (!(macsRatio >= 1)) throw new Error(`dense / effective MACs must be >= 1, got ${macsRatio}`);
  return Math.max(epochs, Math.floor(epochs * Math.min(cap, macsRatio) + 1e-9));
}

/**
 * `config` lengthened to `epochs`, its LR schedule stretched with it: the step period and the warmup scale by the
 * same factor (the authors move their LR milestones to the same fractions of the longer run); cosine follows
 * `epochs` by itself.
 */
export function stretchedConfig<T extends TrainConfig>(config: T, epochs: number): T {
  if (epochs === config.epochs) return config;
  const f = epochs / config.epochs;
  return { ...config, epochs, stepEpochs: config.stepEpochs * f, warmupEpochs: config.warmupEpochs * f };
}

/** Dense ÷ effective MACs of the model under `masks` (tensor name → mask; metrics/counts.ts maskedMacs). */
export function macsRatio(layers: readonly LayerInfo[], masks: ReadonlyMap<string, Float32Array>): number {
  const macs = maskedMacs(layers, (name) => masks.get(name));
  return theoreticalSpeedup(macs.dense, macs.effective);
}

/** The config a budgeted phase trains with, given the masked model's MAC ratio. */
export function budgetedConfig<T extends TrainConfig>(config: T, budget: TrainBudget, ratio: number): T {
  return stretchedConfig(config, budgetEpochs(config.epochs, ratio, budget.cap));
}
