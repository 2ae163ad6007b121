import type { PruningMethod } from "./types.js";

/** Added to |Σ S| before dividing, as the authors' code does (eps = 1e-10), so an all-zero score stays finite. */
const NORM_EPS = 1e-10;

/**
 * GraSP: Gradient Signal Preservation (Wang, Zhang, Grosse, "Picking Winning Tickets Before Training by Preserving
 * Gradient Flow", ICLR 2020). At initialization each weight gets S(θ) = −θ ⊙ Hg, g the gradient of the training loss
 * and Hg its Hessian-gradient product: removing a weight with a high S reduces the gradient norm ‖g‖² the most (to
 * first order), so GraSP REMOVES the highest scores and keeps the lowest, under one global threshold over every
 * prunable tensor; the sparse network is then trained. Unlike SNIP's |g ⊙ θ| the sign matters: a weight whose removal
 * would increase the gradient flow (very negative S) is kept first, however small its effect on the loss.
 *
 * prunebench keeps the highest scores, so this returns −S normalised, θ ⊙ Hg / (|Σ S| + 1e-10): the authors'
 * normalised score with its sign flipped, which keeps exactly the weights the authors keep. Where the paper is
 * silent, the authors' code (alecwangcq/GraSP, pruner/GraSP.py, run by main_prune_non_imagenet.py with the configs'
 * samples_per_class 10 and num_iters 1) is followed:
 * - Data: `samples_per_class` training images of every class (the first of each class in the seed's shuffle, so the
 *   same images for every target of a seed), grouped by class and cut into two halves, each half one batch: the
 *   authors' num_iters = 1 splits its sample in two the same way. g is the gradient of the mean cross-entropy over
 *   the halves and Hg is computed on the same two batches (the authors sum the halves: 2g and 4Hg, a positive factor
 *   the normalisation removes).
 * - The logits are divided by the temperature T = 200 before the softmax, for g and Hg alike.
 * - Batch norm in train mode (batch statistics of each half): the authors score a copy of the freshly built network,
 *   which PyTorch leaves in training mode; the running statistics are not updated here.
 * - Scored tensors: the authors score every conv and linear weight (first layer and classifier included, no biases,
 *   no batch norm), which is prunebench's default prunable set; g and Hg are taken over the prunable tensors only,
 *   the other parameters held fixed, as the authors differentiate with respect to the weights only. A grid that makes
 *   biases or batch norm prunable adds them to θ.
 * - Normalisation: the scores are divided by |Σ S| over all scored weights (+1e-10); it does not change the ranking.
 * - Exactly the budget's count is removed (the authors' `<=` at the k-th largest score keeps one weight too many).
 * - Not followed: the authors' `reinit=True` redraws every nn.Linear weight (Xavier normal) on the scoring copy only,
 *   so the linear layers' masks are chosen for weights the trained network never has (all of LeNet-300-100's); the
 *   paper's algorithm scores the network at its initialization, as does Tanaka et al.'s reimplementation
 *   (ganguli-lab/Synaptic-Flow), and so does this.
 * The Hessian-gradient product is a central finite difference with the ReLU and max-pool pattern frozen, which equals
 * autodiff's (double backprop's) Hg up to rounding (src/run/score-context.ts says why).
 */
export const grasp: PruningMethod = {
  name: "grasp",
  summary: "Prune at initialization by gradient-flow preservation: remove the highest −θ·Hg (T = 200, 10 images per class)",
  paper: { authors: "Wang, Zhang, Grosse", title: "Picking Winning Tickets Before Training by Preserving Gradient Flow", venue: "ICLR", year: 2020, url: "https://arxiv.org/abs/2002.07376" },
  params: {
    samples_per_class: { type: "integer", default: 10, min: 1, max: 1000, description: "training images of every class g and Hg are computed on (authors' configs: 10)" },
    temperature: { type: "number", default: 200, min: 0.001, max: 1e6, description: "the logits are divided by it before the softmax (authors: T = 200)" },
  },
  needs: { hessianGradient: true },
  distribution: () => "global",
  schedule: () => ({ kind: "at-init", rounds: 1 }),
  async score(ctx) {
    if (!ctx.hessianGradient) throw new Error("grasp declares needs.hessianGradient but the engine gave its score no Hessian-gradient product");
    const { hessianGradient } = await ctx.hessianGradient(
      { perClass: Number(ctx.params.samples_per_class), batches: 2, mode: "train" },
      { temperature: Number(ctx.params.temperature) },
    );
    // θ ⊙ Hg = −S; |Σ S| = |Σ θ ⊙ Hg|.
    const kept = new Map(ctx.tensors.map((t) => {
      const hg = hessianGradient.get(t.name);
      if (!hg || hg.length !== t.values.length) throw new Error(`${t.name}: ${hg?.length ?? "no"} Hessian-gradient values for ${t.values.length} weights`);
      return [t.name, Float64Array.from(t.values, (w, i) => w * hg[i])];
    }));
    let sum = 0;
    for (const s of kept.values()) for (const x of s) sum += x;
    const norm = Math.abs(sum) + NORM_EPS;
    return new Map([...kept].map(([name, s]) => [name, Float32Array.from(s, (x) => x / norm)]));
  },
};
