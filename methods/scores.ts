/** Score helpers shared by several methods. */
import type { HyperParamSpec, HyperValue } from "../src/core/types.js";
import type { BatchSpec, PrunableTensor, ScoreContext } from "./types.js";

export function absoluteValues(tensors: readonly PrunableTensor[]): Map<string, Float32Array> {
  return new Map(tensors.map((t) => [t.name, t.values.map(Math.abs)]));
}

/**
 * How much training data a data-dependent score looks at. The defaults are ShrinkBench's: its PruningExperiment
 * hands the strategy `next(iter(train_dl))`, one shuffled training batch of 128.
 */
export const SCORE_DATA_PARAMS: Record<string, HyperParamSpec> = {
  batches: { type: "integer", default: 1, min: 1, description: "training batches the statistic is gathered over (ShrinkBench: 1)" },
  batch_size: { type: "integer", default: 128, min: 1, description: "images per batch (ShrinkBench: 128)" },
};

/**
 * The data of a score from a method's `batches` / `batch_size`, in train mode: ShrinkBench's strategies see the model
 * in training mode (get_param_gradients calls `model.train()`; activations are recorded on the freshly built model,
 * which PyTorch leaves in training mode), so batch norm uses the batch's statistics.
 */
export function trainModeBatches(params: Readonly<Record<string, HyperValue>>): BatchSpec {
  return { batches: Number(params.batches), batchSize: Number(params.batch_size), mode: "train" };
}

/** Importance |w · ∂L/∂w| (ShrinkBench's GlobalMagGrad / LayerMagGrad): the first-order loss change of zeroing w. */
export async function weightTimesGradient(ctx: ScoreContext): Promise<Map<string, Float32Array>> {
  if (!ctx.gradients) throw new Error("this method declares needs.gradients but the engine gave its score no gradients");
  const grads = await ctx.gradients(trainModeBatches(ctx.params));
  return new Map(ctx.tensors.map((t) => {
    const g = grads.get(t.name);
    if (!g || g.length !== t.values.length) throw new Error(`${t.name}: ${g?.length ?? "no"} gradient values for ${t.values.length} weights`);
    return [t.name, t.values.map((w, i) => Math.abs(w * g[i]))];
  }));
}

/**
 * Importance |w| × mean |a| of the weight's input unit (ShrinkBench's GlobalMagAct / LayerMagAct,
 * `activation_importance`): a kernel weight is scaled by the activation of the input channel (conv, broadcast over
 * the kernel's positions and outputs) or input feature (dense) it reads; a batch-norm γ by its channel's; a bias or
 * β, which reads no input, by the mean over the layer's input units, as ShrinkBench does for biases.
 */
export async function weightTimesActivation(ctx: ScoreContext): Promise<Map<string, Float32Array>> {
  if (!ctx.activations) throw new Error("this method declares needs.activations but the engine gave its score no activations");
  const acts = await ctx.activations(trainModeBatches(ctx.params));
  return new Map(ctx.tensors.map((t) => {
    const a = acts.get(t.layer);
    if (!a) throw new Error(`${t.name}: no input activations recorded for layer ${t.layer}`);
    return [t.name, scaleByInputUnit(t, a)];
  }));
}

function scaleByInputUnit(t: PrunableTensor, a: Float32Array): Float32Array {
  if (t.role === "bias" || t.role === "beta") {
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    return t.values.map((w) => Math.abs(w) * mean);
  }
  // Kernels are [..., in, out] (conv [kh, kw, cin, cout], dense [in, out]): the input unit is the second-last axis.
  // A batch-norm γ is [channels]: each value is its own unit.
  const [units, stride] = t.role === "kernel" ? [t.shape[t.shape.length - 2], t.shape[t.shape.length - 1]] : [t.values.length, 1];
  if (units !== a.length) throw new Error(`${t.name}: ${a.length} input activations for ${units} input units`);
  return t.values.map((w, i) => Math.abs(w) * a[Math.floor(i / stride) % units]);
}
