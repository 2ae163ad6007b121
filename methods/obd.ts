import { LECUN_1990 } from "./citations.js";
import type { PruningMethod } from "./types.js";

/**
 * Optimal Brain Damage (LeCun, Denker, Solla, NeurIPS 1990). Each weight's saliency is the loss increase of zeroing
 * it under a quadratic model of the loss at a minimum (gradient 0) with a diagonal Hessian:
 *   s_q = ½·h_qq·w_q²,
 * removed lowest first. No compensation: the other weights stay where they are (which is what separates OBD from OBS,
 * whose update moves them; test/curvature.test.ts checks the prediction equals the real loss increase only without one).
 *
 * Curvature estimate: the paper computes h_qq by back-propagating second derivatives (its Levenberg-Marquardt-style
 * diagonal approximation, dropping the terms with the network's second derivatives). Here h_qq is the diagonal of the
 * empirical Fisher, (1/N)·Σₙ gₙ,q², gₙ the gradient of the mean cross-entropy over the n-th of N batches of
 * `batch_size` images: WoodFisher (Singh & Alistarh 2020) compares OBD this way ("diagonal Fisher"), it is the same
 * Gauss-Newton-type positive estimate the paper's approximation aims at (for cross-entropy the Gauss-Newton matrix is
 * the true Fisher, which the empirical one approximates), it is never negative (a negative h_qq would rank a weight
 * whose removal lowers the loss as the most important), and it needs only gradients, which every architecture here has
 * (second-derivative backpropagation does not exist in tfjs for convolutions; see src/run/score-context.ts). It is
 * the diagonal of exactly the matrix obs inverts (less obs's damping), so obd and obs differ only in the off-diagonal
 * curvature and the compensation.
 *
 * Data and defaults as obs's (WoodFisher's code: gradients of single images, `fisher_mini_bsz` 1, model in inference
 * mode), N = 32 gradients, so the two rank on the same samples; gradients at already-pruned weights are 0 (their
 * saliency is ignored anyway). One global ranking by default (`scope: global`): saliencies are in loss units, so a
 * single threshold sets every layer's ratio; `scope: layer` prunes each tensor to the same fraction. One-shot after
 * pretraining, then fine-tuning (the paper retrains after deleting).
 */
export const obd: PruningMethod = {
  name: "obd",
  summary: "Optimal Brain Damage: remove the least ½·h·w² globally, h the empirical-Fisher diagonal; no compensation",
  paper: LECUN_1990,
  params: {
    gradients: { type: "integer", default: 32, min: 1, max: 100_000, description: "gradients gₙ (batches) the Fisher diagonal (1/N)Σ g² is averaged over, N" },
    batch_size: { type: "integer", default: 1, min: 1, max: 100_000, description: "images per gradient sample (as obs: WoodFisher's fisher_mini_bsz = 1)" },
    scope: { type: "string", default: "global", choices: ["global", "layer"], description: "one ranking over all layers (saliencies are in loss units) or the same fraction per tensor" },
  },
  needs: { batchGradients: true },
  distribution: (p) => (p.scope === "layer" ? "layer" : "global"),
  schedule: () => ({ kind: "one-shot" }),
  async score(ctx) {
    if (!ctx.batchGradients) throw new Error("obd needs the engine's batch gradients");
    const sums = new Map(ctx.tensors.map((t) => [t.name, new Float64Array(t.values.length)]));
    let count = 0;
    await ctx.batchGradients({ batches: Number(ctx.params.gradients), batchSize: Number(ctx.params.batch_size), mode: "eval" }, ctx.tensors.map((t) => t.name), (g) => {
      for (const t of ctx.tensors) {
        const gt = g.get(t.name);
        if (!gt || gt.length !== t.values.length) throw new Error(`${t.name}: ${gt?.length ?? "no"} gradient values for ${t.values.length} weights`);
        const s = sums.get(t.name)!;
        for (let i = 0; i < gt.length; i++) s[i] += gt[i] * gt[i];
      }
      count++;
    });
    if (count === 0) throw new Error("obd: no training batch to take a gradient of");
    return new Map(ctx.tensors.map((t) => {
      const s = sums.get(t.name)!;
      return [t.name, Float32Array.from(t.values, (w, i) => (t.mask[i] !== 0 ? 0.5 * (s[i] / count) * w * w : 0))];
    }));
  },
};
