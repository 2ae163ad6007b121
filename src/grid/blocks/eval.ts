/** The `eval` block: how latency is measured. */
import type { Checker, TopLevel } from "../checker.js";
import { DEFAULT_EVAL } from "../defaults.js";
import type { EvalConfig } from "../../core/types.js";

export function readEval(c: Checker, top: TopLevel): EvalConfig {
  return c.block<EvalConfig>(top.get("eval"), "eval", DEFAULT_EVAL, {
    latency_batch: ["latencyBatch", (n, p) => c.number(n, p, { integer: true, min: 1 })],
    latency_repeats: ["latencyRepeats", (n, p) => c.number(n, p, { integer: true, min: 1 })],
  });
}
