import type { PruningMethod } from "./types.js";
import { absoluteValues } from "./scores.js";
import { iterativeAddOnParams, iterativeAddOns } from "./imp.js";

/**
 * The lottery ticket's control (Frankle & Carbin, ICLR 2019, section 2, "random reinitialization"): "we retain the
 * structure of a winning ticket (i.e., the mask m) but randomly sample a new initialization". The run prunes exactly
 * as `imp` does (rate, rounds, global threshold, rewind to the initial weights each round), so its masks are imp's
 * tickets, level by level; each level's result is that mask retrained, with the same training as imp's round, from a
 * fresh draw of the surviving weights from the initial distribution (another seed stream of the same seed, one draw
 * per run) — the schedule's `control: "reinit"`. The ticket's own trained weights are set aside meanwhile and the
 * next round prunes from them. The paper shows such networks learn slower and reach lower accuracy than winning
 * tickets as sparsity grows: the mask alone is not the ticket. It costs twice imp's training (the ticket's round and
 * the control's). It takes imp's add-ons (ap_rate, lr_peaks) so each has its control.
 */
export const impRandomReinit: PruningMethod = {
  name: "imp-random-reinit",
  summary: "Lottery-ticket control: each level of imp's tickets (its exact masks) retrained from a fresh random initialisation",
  paper: { authors: "Frankle, Carbin", title: "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks", venue: "ICLR", year: 2019, url: "https://arxiv.org/abs/1803.03635" },
  params: {
    rate: { type: "number", default: 0.2, min: 0.01, max: 0.99, description: "fraction of the remaining weights pruned per round" },
    max_rounds: { type: "integer", default: 20, min: 1, max: 100, description: "most rounds a run may take (a target that needs more is refused when the sweep is planned)" },
    scope: { type: "string", default: "global", choices: ["global", "layer"], description: "one threshold over all layers, or the same rate in every layer" },
    ...iterativeAddOnParams,
  },
  needs: {},
  distribution: (p) => (p.scope === "layer" ? "layer" : "global"),
  schedule: (p) => ({ kind: "iterative", rate: Number(p.rate), maxRounds: Number(p.max_rounds), rewind: "init", rewindEpoch: 0, control: "reinit", ...iterativeAddOns(p) }),
  score: (ctx) => absoluteValues(ctx.tensors),
};
