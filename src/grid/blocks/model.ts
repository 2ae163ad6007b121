/** The `model` block: how conv and dense layers are initialised (a protocol choice that moves results; GUIDE.md §2). */
import type { Checker, TopLevel } from "../checker.js";
import { DEFAULT_MODEL } from "../defaults.js";
import type { InitName, ModelConfig } from "../../core/types.js";

export const INIT_NAMES: readonly InitName[] = ["torch-default", "he-uniform", "he-normal", "glorot-uniform"];

export function readModel(c: Checker, top: TopLevel): ModelConfig {
  return c.block<ModelConfig>(top.get("model"), "model", DEFAULT_MODEL, {
    init: ["init", (n, p) => c.choice(n, p, "init", INIT_NAMES)],
  });
}
