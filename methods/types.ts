/**
 * The pruning-method interface. A method is a small typed object that answers one question, "how important is
 * each weight?" (its score function), plus what it needs to answer it. How the budget is spread over layers
 * (`distribution`), when pruning happens (`schedule`) and at what granularity are separate values the engine
 * composes, so iterative, gradual, prune-at-init, dynamic-sparse and structured methods plug in without special
 * cases in the training loop (the loop only offers hooks; see src/train/hooks.ts).
 */
import type { HyperParamSpec, HyperValue, LayerKind } from "../src/core/types.js";
import type { Distribution } from "../src/prune/allocate.js";
import type { LossTerm } from "../src/prune/loss-terms.js";
import type { Regrowth } from "../src/prune/regrowth.js";
import type { Schedule } from "../src/prune/schedules.js";

export interface Citation {
  authors: string;
  title: string;
  venue: string;
  year: number;
  url?: string;
}

/** A tensor a method may prune, with its current values and mask (1 = alive). */
export interface PrunableTensor {
  /** Tensor name, e.g. "conv1/kernel". */
  name: string;
  layer: string;
  layerKind: LayerKind;
  /** "kernel", "bias", "gamma" or "beta". */
  role: string;
  shape: number[];
  values: Float32Array;
  mask: Float32Array;
}

/**
 * Which training data a statistic is gathered over. Batches are drawn in a seeded random order that depends only on
 * the run's seed (the same images for every method and target of a seed), at most one pass over the training split:
 * either consecutive batches of that order (`ShuffledBatches`) or a class-balanced sample taken from it
 * (`ClassBalancedBatches`).
 */
export type BatchSpec = ShuffledBatches | ClassBalancedBatches;

/** The first `batches` batches of `batchSize` images of the seed's order, the last one partial when the split runs out. */
export interface ShuffledBatches {
  batches: number;
  batchSize: number;
  /**
   * "train": batch norm normalises with the batch's own statistics, as a training step does (ShrinkBench computes
   * its gradients after `model.train()`); "eval": with the running statistics. Scoring never updates the running
   * statistics in either mode: it only reads the model.
   */
  mode: "train" | "eval";
}

/**
 * A class-balanced sample: the first `perClass` images of every class in the seed's order, grouped by class (class 0's
 * first, then class 1's, ...), cut into `batches` consecutive batches of (nearly) equal size, batch k holding images
 * floor(k·n/batches) to floor((k+1)·n/batches) − 1 of the n. A split with fewer than `perClass` images of a class is
 * an error. (GraSP's `GraSP_fetch_data` takes the first images of each class from a shuffled loader the same way.)
 */
export interface ClassBalancedBatches {
  perClass: number;
  batches: number;
  /** As in `ShuffledBatches`. */
  mode: "train" | "eval";
}

/** How the training loss of a second-order statistic is formed from the logits. */
export interface LossSpec {
  /** The logits are divided by it before the softmax (a softened softmax when > 1); 1 when absent. */
  temperature?: number;
}

/** A gradient and the product of the Hessian with it, both of one loss, per prunable tensor name. */
export interface HessianGradient {
  gradient: Map<string, Float32Array>;
  hessianGradient: Map<string, Float32Array>;
}

/**
 * Capabilities a score function asks the engine for, declared up front so the engine provides them without knowing
 * which method it runs. How much data each uses is the method's choice, passed when it calls the capability.
 */
export interface ScoreNeeds {
  /** ctx.gradients: ∂L/∂w of the cross-entropy training loss. */
  gradients?: true;
  /** ctx.activations: mean |input| of each prunable layer. */
  activations?: true;
  /** ctx.pathGradients: the data-free path gradient (SynFlow's objective). */
  pathGradients?: true;
  /** ctx.hessianGradient: the training loss's gradient g and Hessian-gradient product Hg. */
  hessianGradient?: true;
  /** ctx.outputActivations: per-channel statistics of each layer's output activation. */
  outputActivations?: true;
  /** ctx.batchGradients: each batch's gradient on its own, of any trainable tensor. */
  batchGradients?: true;
  /** ctx.kfacFactors: K-FAC's per-layer factors A = E[aaᵀ] and G = E[ggᵀ] of every conv and dense layer. */
  kfacFactors?: true;
}

/**
 * The two Kronecker factors of one conv or dense layer's curvature block, H ≈ A ⊗ G (K-FAC: Martens & Grosse 2015;
 * convolutions as in KFC, Grosse & Martens 2016), over N images of T positions each (T = 1 for a dense layer on
 * vectors; the output's h·w for a conv; the tokens for a dense layer applied per token). The layer's weights read as a
 * d_out × d_in matrix W (with the bias as its last column where the layer has one): row i is output unit i, column j
 * the kernel's input index j in its own order ((kh, kw, c_in) for a conv, the kernel's [..., in, out] layout).
 */
export interface KfacFactors {
  /** d_in columns of W: the kernel's inputs (kh·kw·c_in for a conv), plus 1 where there is a bias. */
  inDim: number;
  outDim: number;
  hasBias: boolean;
  /** T, the positions each image contributes. */
  positions: number;
  /**
   * inDim², row-major: (1/(N·T)) Σ_n Σ_t a aᵀ, a the input at position t (a conv's unfolded patch) with a trailing 1
   * where there is a bias. Empty under `input: "trace"`.
   */
  A: Float64Array;
  /** tr A, (1/(N·T)) Σ_n Σ_t ‖a‖², gathered either way (K-FAC's π needs only it). */
  traceA: number;
  /**
   * outDim², row-major: (1/N) Σ_n Σ_t g gᵀ, g = ∂ℓ_n/∂s_t the gradient of image n's own cross-entropy with respect to
   * the layer's output s at position t, before any activation (summed over positions, as K-FAC does for convs, so that
   * A ⊗ G has the scale of the Fisher of the mean loss).
   */
  G: Float64Array;
  /**
   * outDim values: (1/(N·T)) Σ_n Σ_t s_i², the mean square of each output s = W·a before its activation, i.e. the
   * diagonal of W·A·Wᵀ at the current weights, gathered on the device (on the host it costs d_out·d_in² per layer).
   */
  outputMeanSquare: Float64Array;
}

/** What `ctx.kfacFactors` gathers. */
export interface KfacOptions {
  /**
   * "data" (the default): the gradients are taken with the images' real labels, the empirical Fisher; "sampled": with
   * labels drawn from the model's own softmax (seeded), the true Fisher as K-FAC defines it.
   */
  labels?: "data" | "sampled";
  /** Only these layers (every conv and dense layer when absent). */
  layers?: readonly string[];
  /**
   * "full" (the default): A as a matrix; "trace": only its trace, without unfolding a conv's patches or forming the
   * d_in² products (most of the capability's cost on convs).
   */
  input?: "full" | "trace";
}

/** What `ctx.outputActivations` gathers besides mean |a| and the fraction of zeros, and over which layers. */
export interface OutputActivationOptions {
  /** Also the mean numerical rank of each channel's feature map (computed on the host, O(h³) per map and image). */
  rank?: boolean;
  /** Only these layers' outputs (every conv, depthwise and dense layer when absent): the others cost nothing. */
  layers?: readonly string[];
}

/**
 * Per output channel of one layer (a conv's filters, a dense layer's neurons): statistics of its output activation
 * as the network passes it on, i.e. after the batch norm, residual add and ReLU (or GELU) that directly follow the
 * layer, or of the layer's raw output where no activation follows before another layer, a pooling or a flatten reads it.
 */
export interface ChannelActivationStats {
  /** Mean |a| over the images and every spatial position (token). */
  meanAbs: Float32Array;
  /** Fraction of the (image, position) entries that are exactly 0 (after a ReLU: Hu et al.'s APoZ, as a fraction). */
  zeroFraction: Float32Array;
  /**
   * With `rank`: the mean over images of the numerical rank of the channel's h×w feature map, counting singular
   * values above σ_max·max(h, w)·ε_float32 (torch.matrix_rank's default tolerance); a map of one position per image (a
   * dense neuron) or a token sequence (a column) has rank 1 when non-zero, else 0.
   */
  meanRank?: Float32Array;
}

/**
 * One tensor axis of a channel group (src/archs/graph.ts): unit u of the group covers `indices[u]` along `axis`.
 * "out" members produce the unit (its filter, bias, batch-norm γ/β and running statistics, a depthwise filter);
 * "in" members read it (the next layer's input slice; after a flatten, the unit's h·w rows of the dense kernel).
 */
export interface ChannelMember {
  tensor: string;
  layer: string;
  layerKind: LayerKind;
  /** "kernel", "bias", "gamma", "beta", "moving_mean", "moving_var" or "embedding". */
  role: string;
  axis: number;
  side: "out" | "in";
  shape: number[];
  values: Float32Array;
  indices: ReadonlyArray<readonly number[]>;
}

/**
 * Channels that must be removed together (a conv's filters with their batch norm and the next layer's inputs; every
 * conv of a residual stream; one attention head's q, k, v columns and output rows): pruning a unit removes all its
 * members' slices.
 */
export interface ChannelGroupView {
  /** The first layer producing the units; the key of the group's scores. */
  name: string;
  /** Layers (and shortcuts) whose outputs are the units: more than one where residual adds join them. */
  producers: readonly string[];
  size: number;
  /** 1 where the unit is still there, 0 where an earlier step removed it. */
  alive: Float32Array;
  members: readonly ChannelMember[];
}

/** What the engine hands a score function. Optional capabilities are present when the method `needs` them. */
export interface ScoreContext {
  tensors: readonly PrunableTensor[];
  /**
   * Channel methods only: the groups the engine may prune (not protected, allowed by the prunable policy), with
   * their members' current values.
   */
  groups?: readonly ChannelGroupView[];
  params: Readonly<Record<string, HyperValue>>;
  /** A seeded uniform [0, 1) generator, deterministic per run. */
  random(): number;
  /**
   * Gradient of the mean cross-entropy training loss, averaged over the batches of `spec`, per prunable tensor name
   * (needs.gradients).
   */
  gradients?(spec: BatchSpec): Promise<Map<string, Float32Array>>;
  /**
   * Mean |input activation| per input unit of every layer with a prunable tensor, keyed by layer name, over all the
   * images of `spec` (and, for a conv, over every spatial position): one value per input channel of a conv, per input
   * feature of a dense layer, per channel of a batch norm (needs.activations).
   */
  activations?(spec: BatchSpec): Promise<Map<string, Float32Array>>;
  /**
   * ∂R/∂θ at |θ| with R the sum of the outputs for an all-ones input, parameters replaced by their absolute values,
   * inference mode: data-free (needs.pathGradients; SynFlow's objective).
   */
  pathGradients?(): Promise<Map<string, Float32Array>>;
  /**
   * g = ∂L/∂θ and Hg = (∂²L/∂θ²)·g at the current weights, θ the prunable tensors (every entry, pruned ones included;
   * the other parameters held fixed) and L the mean cross-entropy training loss, averaged over the batches of `spec`
   * (each batch's mean loss weighs the same), with the logits divided by `loss.temperature`. H is the Hessian autodiff
   * gives: ReLU's second derivative is 0 and max pooling routes through the inputs it selected (needs.hessianGradient).
   */
  hessianGradient?(spec: BatchSpec, loss?: LossSpec): Promise<HessianGradient>;
  /**
   * Per-channel statistics of each conv, depthwise and dense layer's output activation (see ChannelActivationStats),
   * keyed by layer name, over every image of `spec` (needs.outputActivations). A channel group's units map to a
   * producing layer's output channels through its "out" kernel member's `indices`.
   */
  outputActivations?(spec: BatchSpec, options?: OutputActivationOptions): Promise<Map<string, ChannelActivationStats>>;
  /**
   * The gradient of each batch's mean cross-entropy loss on its own, batch by batch in the order of `spec`, for the
   * trainable tensors named (any of the model's: batch-norm γ and β too, prunable or not), handed to `visit` and not
   * kept (needs.batchGradients). For statistics that are not linear in the gradient, such as a mean of squares.
   */
  batchGradients?(spec: BatchSpec, tensors: readonly string[], visit: (gradients: ReadonlyMap<string, Float32Array>, batch: number) => void): Promise<void>;
  /**
   * Under a tick-tock schedule (src/prune/schedules.ts), at each tick's prune step: per gated layer (a batch norm, or
   * a conv or dense layer with no batch norm after it; src/train/gates.ts), per channel, Σ over the tick's minibatches
   * of |φ·∂L/∂φ|, φ the channel's gate and L the minibatch's mean cross-entropy, at the values the step's gradient
   * was taken at. A channel group's units map to a gated layer's channels through that layer's "out" member's
   * `indices`.
   */
  gateSaliency?: ReadonlyMap<string, Float32Array>;
  /**
   * K-FAC's factors (see KfacFactors) of each conv and dense layer, keyed by layer name, over every image of `spec`
   * (needs.kfacFactors). Depthwise convs, batch norm, layer norm and attention's own parameters are not included.
   */
  kfacFactors?(spec: BatchSpec, options?: KfacOptions): Promise<Map<string, KfacFactors>>;
  /** The run's training tracker (PruningMethod.tracker), fed with every window so far; absent when the method has none. */
  tracker?: TrainingTracker;
}

export type { LossTerm, Schedule };

/**
 * A per-weight statistic of training that a method follows while its masks change during training (a gradual
 * schedule), for scores that depend on the history of training rather than on the weights as they are now. The engine
 * computes `quantity` at every training step on the device, averages it over windows of `window` steps (counted from
 * the phase's start: steps 1..window, window+1..2·window, ...) and hands each window's mean to `observe` when the
 * window ends, before any mask change at that step. The method's score function reads what it folded through
 * ScoreContext.tracker. One fresh tracker per run (PruningMethod.tracker).
 */
export interface TrainingTracker {
  /** "abs-weight-gradient": |w ⊙ ∂L/∂w| per weight, the step's minibatch loss at the values its gradient was taken at. */
  quantity: "abs-weight-gradient";
  /** Steps per window (>= 1). */
  window: number;
  /** One window's mean per prunable tensor name (every entry, pruned ones included: their w is 0). */
  observe(means: ReadonlyMap<string, Float32Array>): void;
}

export interface PruningMethod {
  name: string;
  /** One line for `bench methods`. */
  summary: string;
  paper: Citation;
  params: Record<string, HyperParamSpec>;
  needs: ScoreNeeds;
  distribution(params: Readonly<Record<string, HyperValue>>): Distribution;
  /** When masks change (src/prune/schedules.ts): one-shot, at initialization in rounds, gradually while fine-tuning. */
  schedule(params: Readonly<Record<string, HyperValue>>): Schedule;
  /**
   * Penalties the method trains under (src/prune/loss-terms.ts: a norm of the tensors of some layer kinds and roles,
   * its strength, the phases it acts in), added to the training loss by the engine; none when absent. A term acting
   * while pretraining gives the method a dense model of its own (its dense key includes the term).
   */
  lossTerms?(params: Readonly<Record<string, HyperValue>>): LossTerm[];
  /** For dynamic schedules: how inactive weights are chosen to grow (src/prune/regrowth.ts); random when absent. */
  regrowth?(params: Readonly<Record<string, HyperValue>>): Regrowth;
  /**
   * A fresh per-run training tracker (see TrainingTracker), fed during the fine-tuning of a gradual schedule (the
   * phase whose masks the method's scores move); none when absent.
   */
  tracker?(params: Readonly<Record<string, HyperValue>>): TrainingTracker;
  /** A floor on every tensor's density under a global threshold (prevents layer collapse); none when absent. */
  minDensity?(params: Readonly<Record<string, HyperValue>>): number | undefined;
  /**
   * What a score is a score of. "weight" (the default): one score per weight of each prunable tensor, and masks
   * zero single weights. "channel": one score per unit of each channel group in `ctx.groups`, keyed by the group's
   * name (a group left out keeps all its units: how a method skips layers, e.g. Li et al.'s residual streams); the
   * engine spreads the run's target over the groups (`distribution`: "global" ranks all units, "layer" removes the
   * same fraction of each), keeps at least `minDensity` of every group, rounds kept counts to `roundTo`, masks the
   * removed units and measures the compacted model.
   */
  granularity?: "weight" | "channel";
  /** Channel methods: kept channel counts are multiples of this where a group has that many (1 when absent). */
  roundTo?(params: Readonly<Record<string, HyperValue>>): number;
  /**
   * Channel methods under the "layer" distribution: how much faster than the common fraction t this group loses its
   * channels (it loses min(1, t × multiplier), still within its floor), so that per-stage rates such as Li et al.'s
   * 60/30/10 % keep their ratios while the engine scales them to the run's target. 1 when absent; must be >= 1 and
   * finite. Called once per offered group with the names of the layers producing it.
   */
  rateMultiplier?(params: Readonly<Record<string, HyperValue>>, producers: readonly string[]): number;
  /** What is wrong with these (filled-in) hyperparameters beyond their declared types and ranges; null if nothing. Checked at grid time. */
  paramsProblem?(params: Readonly<Record<string, HyperValue>>): string | null;
  /**
   * Importance per tensor (same length as its values), or per channel group for channel methods; higher survives.
   * Already-pruned weights (units) are ignored.
   */
  score(ctx: ScoreContext): Promise<Map<string, Float32Array>> | Map<string, Float32Array>;
  /**
   * After the engine has chosen the new masks at a prune step: new values for surviving weights (OBS's compensation
   * update), per tensor name; tensors left out keep their values. The engine zeroes pruned entries whatever is
   * returned, writes the values into the model before training resumes, and never calls it for methods without it.
   */
  compensate?(ctx: ScoreContext, newMasks: ReadonlyMap<string, Float32Array>, params: Readonly<Record<string, HyperValue>>):
    Promise<Map<string, Float32Array>> | Map<string, Float32Array>;
}
