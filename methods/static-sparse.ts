import type { PruningMethod } from "./types.js";

/**
 * Static sparse training: a random mask at initialization, spread by Erdős–Rényi-Kernel (or uniformly per layer),
 * trained with the mask fixed. The control that dynamic sparse training (SET, RigL; Evci et al. 2020, "Static" in
 * their figures) must beat at equal density and training.
 */
export const staticSparse: PruningMethod = {
  name: "static-sparse",
  summary: "A random ERK mask at initialization, fixed while training (control for SET and RigL)",
  paper: { authors: "Evci, Gale, Menick, Castro, Elsen", title: "Rigging the Lottery: Making All Tickets Winners", venue: "ICML", year: 2020, url: "https://arxiv.org/abs/1911.11134" },
  params: {
    distribution: { type: "string", default: "erk", choices: ["erk", "layer"], description: "how density is spread over layers" },
  },
  needs: {},
  distribution: (p) => (p.distribution === "layer" ? "layer" : "erk"),
  schedule: () => ({ kind: "at-init", rounds: 1 }),
  score: (ctx) => new Map(ctx.tensors.map((t) => [t.name, t.values.map(() => ctx.random())])),
};
