import type { PruningMethod } from "./types.js";
import { absoluteValues } from "./scores.js";

/**
 * RigL: Rigging the Lottery (Evci, Gale, Menick, Castro, Elsen, ICML 2020). Sparse from initialization: a random
 * mask spread by Erdős–Rényi-Kernel; every `interval` steps each layer drops the fraction α_t of its active weights
 * with the smallest |w| and grows as many inactive ones where the dense gradient of that step's batch is largest,
 * α_t = α/2·(1 + cos(πt/T_end)) with T_end = `end` × training steps; grown weights start at 0 with fresh optimizer
 * state. Defaults are the paper's: ΔT = 100, α = 0.3, T_end at 75 % of training, ERK. As in the authors' code,
 * weights dropped in an update may be grown again in the same update.
 */
export const rigl: PruningMethod = {
  name: "rigl",
  summary: "Dynamic sparse training: drop smallest |w|, grow largest dense gradient, at constant density (ERK)",
  paper: { authors: "Evci, Gale, Menick, Castro, Elsen", title: "Rigging the Lottery: Making All Tickets Winners", venue: "ICML", year: 2020, url: "https://arxiv.org/abs/1911.11134" },
  params: {
    interval: { type: "integer", default: 100, min: 1, description: "steps between mask updates (ΔT)" },
    drop_fraction: { type: "number", default: 0.3, min: 0.01, max: 1, description: "initial fraction of active weights updated (α)" },
    end: { type: "number", default: 0.75, min: 0.01, max: 1, description: "no updates after this fraction of training (T_end)" },
    distribution: { type: "string", default: "erk", choices: ["erk", "layer"], description: "how density is spread over layers" },
  },
  needs: {},
  distribution: (p) => (p.distribution === "layer" ? "layer" : "erk"),
  schedule: (p) => ({ kind: "dynamic", interval: Number(p.interval), dropFraction: Number(p.drop_fraction), end: Number(p.end), decay: "cosine" }),
  regrowth: () => "gradient",
  score: (ctx) => absoluteValues(ctx.tensors),
};
