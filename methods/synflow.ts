import type { PruningMethod } from "./types.js";

/**
 * SynFlow: Iterative Synaptic Flow Pruning (Tanaka, Kunin, Yamins, Ganguli, NeurIPS 2020). Data-free: with every
 * parameter replaced by its absolute value and an all-ones input, R = 1ᵀ f(1) and each weight scores |θ ⊙ ∂R/∂θ|.
 * Pruning in `rounds` rounds whose densities fall exponentially to the target (the authors use 100) lets the scores
 * re-balance after each round, which keeps every layer connected (no layer collapse) where a single global cut by
 * magnitude or gradient can empty a narrow layer. One global threshold, as in the authors' code (ganguli-lab
 * Synaptic-Flow, `--pruner synflow --prune-epochs 100 --compression-schedule exponential`). Computed in float32
 * (the authors use float64: deep networks may overflow here).
 */
export const synflow: PruningMethod = {
  name: "synflow",
  summary: "Prune at initialization, data-free, by synaptic flow |θ·∂R/∂θ| in rounds of exponentially falling density",
  paper: { authors: "Tanaka, Kunin, Yamins, Ganguli", title: "Pruning neural networks without any data by iteratively conserving synaptic flow", venue: "NeurIPS", year: 2020, url: "https://arxiv.org/abs/2006.05467" },
  params: {
    rounds: { type: "integer", default: 100, min: 1, max: 1000, description: "pruning rounds at initialization (density^(k/rounds) after round k)" },
  },
  needs: { pathGradients: true },
  distribution: () => "global",
  schedule: (p) => ({ kind: "at-init", rounds: Number(p.rounds) }),
  async score(ctx) {
    const grads = await ctx.pathGradients!();
    return new Map(ctx.tensors.map((t) => {
      const g = grads.get(t.name)!;
      return [t.name, t.values.map((w, i) => Math.abs(g[i] * w))];
    }));
  },
};
