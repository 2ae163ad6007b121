import type { PrunableTensor, PruningMethod } from "./types.js";

/**
 * |w|, as absoluteValues, in a plain loop: the surgery scores a layer's dense weights at each of its updates (up to
 * every step), where Float32Array.map(Math.abs) cost several times the training step of LeNet-300-100.
 */
function magnitudes(tensors: readonly PrunableTensor[]): Map<string, Float32Array> {
  return new Map(tensors.map((t) => {
    const out = new Float32Array(t.values.length);
    for (let i = 0; i < out.length; i++) out[i] = Math.abs(t.values[i]);
    return [t.name, out];
  }));
}

/**
 * Dynamic Network Surgery (Guo, Yao, Chen, "Dynamic Network Surgery for Efficient DNNs", NIPS 2016; authors' Caffe
 * code yiwenguo/Dynamic-Network-Surgery, layers CConvolution / CInnerProduct). From the trained dense model,
 * fine-tuning trains W under masks T with the forward pass on W⊙T and the gradient of W⊙T applied to all of W, so
 * pruned weights keep learning (soft masks). Before step t each layer, with probability (1 + γt)^−power while
 * t < iter_stop, prunes (T → 0) where |w| <= a and splices back (T → 1) where |w| > b, leaving T unchanged in
 * between: a = 0.9·max(μ + cσ, 0), b = 1.1·max(μ + cσ, 0), μ and σ the mean and standard deviation of the layer's
 * nonzero |w| when the surgery starts.
 *
 * Followed from the authors' code where the paper is silent: the defaults c 3, γ 1e-3, power 1, iter_stop 8000
 * (CInnerProductParameter; CConvolutionParameter defaults iter_stop to 10000, one value here); a layer's kernel and
 * bias share μ, σ and thresholds (they prune biases too: here only where the grid's `prunable` has biases); every
 * layer draws its own r and updates when (1 + γt)^−power > r (one rand() per layer per iteration); step 0 updates
 * always, which is the first cut; t counts the surgery's own steps; weight decay and momentum act on all of W.
 *
 * How a run meets its target (the paper's c fixes the thresholds and the sparsity follows; a benchmark compares at
 * the grid's sparsities): with `c_from: target` (default), c is solved from the target so that the first cut keeps
 * exactly the target density, one c for every layer under `scope: global` (scores standardised per layer, the
 * paper's one c_rate) or one per layer with `scope: layer` (every layer cut to the target); with `c_from: c_rate`
 * the paper's fixed c = `c_rate` sets the bands. Either way the surgery then moves the density, and at step
 * min(iter_stop, T) (T the fine-tuning steps) the masks are cut or spliced to exactly the target, by |w| (standardised
 * per layer under global), changing as few weights as it takes; the rest of fine-tuning keeps them, so the stored
 * sparsity is the target. With iter_stop >= T the surgery runs to the end and that cut comes after the last step,
 * with no training after it.
 */
export const dns: PruningMethod = {
  name: "dns",
  summary: "Dynamic network surgery: soft masks while fine-tuning, prune |w| <= a, splice |w| > b, with probability (1 + γt)^-power",
  paper: { authors: "Guo, Yao, Chen", title: "Dynamic Network Surgery for Efficient DNNs", venue: "NeurIPS", year: 2016, url: "https://arxiv.org/abs/1608.04493" },
  params: {
    c_from: { type: "string", default: "target", choices: ["target", "c_rate"], description: "c solved from the run's target (first cut at the target) or the paper's fixed c_rate" },
    c_rate: { type: "number", default: 3, min: -10, max: 10, description: "c in the centre max(μ + cσ, 0) of the band (c_from: c_rate)" },
    scope: { type: "string", default: "global", choices: ["global", "layer"], description: "one c for all layers (standardised |w|) or every layer cut to the target" },
    gamma: { type: "number", default: 1e-3, min: 0, description: "γ in the update probability (1 + γt)^-power" },
    power: { type: "number", default: 1, min: 0, description: "power in the update probability (1 + γt)^-power" },
    iter_stop: { type: "integer", default: 8000, min: 1, description: "fine-tuning steps of surgery; then the exact cut to the target, masks fixed" },
  },
  needs: {},
  distribution: (p) => (p.scope === "layer" ? "layer" : "global"),
  schedule: (p) => ({
    kind: "surgery", c: p.c_from === "c_rate" ? Number(p.c_rate) : "target", lower: 0.9, upper: 1.1,
    gamma: Number(p.gamma), power: Number(p.power), stop: Number(p.iter_stop),
  }),
  score: (ctx) => magnitudes(ctx.tensors),
};
