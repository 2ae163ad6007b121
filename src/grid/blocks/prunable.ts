/** The `prunable` block: which tensors besides conv and dense kernels a method may prune. */
import type { Checker, Reader, TopLevel } from "../checker.js";
import { DEFAULT_PRUNABLE } from "../defaults.js";
import type { PrunablePolicy } from "../../core/types.js";

export function readPrunable(c: Checker, top: TopLevel): PrunablePolicy {
  const boolean: Reader<boolean> = (n, p) => c.bool(n, p);
  return c.block<PrunablePolicy>(top.get("prunable"), "prunable", DEFAULT_PRUNABLE, {
    biases: ["biases", boolean],
    batch_norm: ["batchNorm", boolean],
    classifier: ["classifier", boolean],
    first_layer: ["firstLayer", boolean],
  });
}
