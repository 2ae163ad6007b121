import type { PruningMethod } from "./types.js";
import { BLALOCK_2020 } from "./citations.js";

/**
 * Random pruning: every surviving weight gets an i.i.d. uniform score, so the weights removed are a uniform random
 * subset. The floor every real criterion must beat (Blalock et al. 2020, "What is the State of Neural Network
 * Pruning?", MLSys, use it as the control in ShrinkBench). `scope: layer` removes the same fraction from every
 * prunable tensor; `scope: global` draws one random subset over all of them (equal in expectation, not per draw).
 */
export const random: PruningMethod = {
  name: "random",
  summary: "Remove a uniformly random subset of weights (control baseline)",
  paper: BLALOCK_2020,
  params: {
    scope: { type: "string", default: "layer", choices: ["layer", "global"], description: "spread the budget per layer or over all prunable tensors" },
  },
  needs: {},
  distribution: (p) => (p.scope === "global" ? "global" : "layer"),
  schedule: () => ({ kind: "one-shot" }),
  score(ctx) {
    return new Map(ctx.tensors.map((t) => {
      const s = new Float32Array(t.values.length);
      for (let i = 0; i < s.length; i++) s[i] = ctx.random();
      return [t.name, s];
    }));
  },
};
