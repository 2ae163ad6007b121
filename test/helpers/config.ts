/** Test helpers: a complete RunConfig with small, fast settings. */
import { DEFAULT_DATA, DEFAULT_EVAL, DEFAULT_FINETUNE, DEFAULT_MODEL, DEFAULT_PRETRAIN, DEFAULT_PRUNABLE, resolveAugment } from "../../src/grid/index.js";
import type { RunConfig } from "../../src/core/types.js";

export function smallConfig(overrides: Partial<RunConfig> = {}): RunConfig {
  return {
    method: { name: "global-magnitude", params: {} },
    ablation: "none",
    arch: "mlp",
    dataset: "fashion-mnist-mini",
    target: { kind: "sparsity", value: 0.9 },
    seed: 0,
    model: { ...DEFAULT_MODEL },
    pretrain: { ...DEFAULT_PRETRAIN, epochs: 1, batchSize: 64 },
    finetune: { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 64 },
    data: { ...DEFAULT_DATA, augment: resolveAugment(DEFAULT_DATA.augment, "fashion-mnist-mini"), trainSubset: 600, testSubset: 300 },
    prunable: { ...DEFAULT_PRUNABLE },
    eval: { ...DEFAULT_EVAL, latencyBatch: 32, latencyRepeats: 2 },
    ...overrides,
  };
}
