import type { PruningMethod } from "./types.js";
import { absoluteValues } from "./scores.js";

/**
 * Gradual magnitude pruning with the automated gradual pruner (AGP) of Zhu & Gupta, "To prune, or not to prune:
 * exploring the efficacy of pruning for model compression" (ICLR workshop 2018, arXiv 1710.01878). Starting from the
 * pretrained dense model, sparsity rises during fine-tuning along s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³,
 * updated every `frequency` steps between the fractions `start` and `end` of the fine-tuning steps, each update
 * removing the smallest-|w| weights; the rest of fine-tuning recovers with the mask fixed. The paper prunes every
 * layer to the same sparsity (`scope: layer`).
 */
export const gmp: PruningMethod = {
  name: "gmp",
  summary: "Gradual magnitude pruning along Zhu & Gupta's cubic schedule during fine-tuning (AGP)",
  paper: { authors: "Zhu, Gupta", title: "To prune, or not to prune: exploring the efficacy of pruning for model compression", venue: "ICLR Workshop", year: 2018, url: "https://arxiv.org/abs/1710.01878" },
  params: {
    start: { type: "number", default: 0, min: 0, max: 1, description: "first update, as a fraction of the fine-tuning steps" },
    end: { type: "number", default: 0.75, min: 0, max: 1, description: "last update by this fraction of the fine-tuning steps; the rest recovers" },
    frequency: { type: "integer", default: 20, min: 1, description: "steps between mask updates (Δt)" },
    initial_sparsity: { type: "number", default: 0, min: 0, max: 0.99, description: "sparsity of the first update (s_i)" },
    scope: { type: "string", default: "layer", choices: ["layer", "global"], description: "same sparsity in every layer (the paper) or one threshold" },
  },
  needs: {},
  distribution: (p) => (p.scope === "global" ? "global" : "layer"),
  schedule: (p) => ({ kind: "gradual", start: Number(p.start), end: Number(p.end), frequency: Number(p.frequency), initialSparsity: Number(p.initial_sparsity) }),
  score: (ctx) => absoluteValues(ctx.tensors),
};
