import type { PruningMethod } from "./types.js";

/**
 * SNIP: Single-shot Network Pruning based on connection sensitivity (Lee, Ajanthan, Torr, ICLR 2019). At
 * initialization, before any training, each weight is scored by |g ⊙ w|, the gradient of the training loss on one
 * mini-batch times the weight (the paper's sensitivity, normalised by its sum, which does not change the ranking), and
 * one global threshold keeps the most sensitive; the sparse network is then trained. The authors use a single batch
 * (`batches: 1`, here of 128 images); the model is in inference mode for it (batch norm on its running statistics,
 * which are the initial ones at initialization).
 */
export const snip: PruningMethod = {
  name: "snip",
  summary: "Prune at initialization by connection sensitivity |g·w| on one batch, then train the sparse network",
  paper: { authors: "Lee, Ajanthan, Torr", title: "SNIP: Single-shot Network Pruning based on Connection Sensitivity", venue: "ICLR", year: 2019, url: "https://arxiv.org/abs/1810.02340" },
  params: {
    batches: { type: "integer", default: 1, min: 1, max: 100, description: "training batches the gradient is averaged over" },
    batch_size: { type: "integer", default: 128, min: 1, description: "images per batch" },
  },
  needs: { gradients: true },
  distribution: () => "global",
  schedule: () => ({ kind: "at-init", rounds: 1 }),
  async score(ctx) {
    const grads = await ctx.gradients!({ batches: Number(ctx.params.batches), batchSize: Number(ctx.params.batch_size), mode: "eval" });
    return new Map(ctx.tensors.map((t) => {
      const g = grads.get(t.name)!;
      return [t.name, t.values.map((w, i) => Math.abs(g[i] * w))];
    }));
  },
};
