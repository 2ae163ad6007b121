/**
 * The pruning-method interface. A method is a small typed object that answers one question, "how important is
 * each weight?" (its score function), plus what it needs to answer it. How the budget is spread over layers
 * (`distribution`), when pruning happens (`schedule`) and at what granularity are separate values the engine
 * composes, so iterative, gradual, prune-at-init, dynamic-sparse and structured methods plug in without special
 * cases in the training loop (the loop only offers hooks; see src/train/hooks.ts).
 */
import type { HyperParamSpec, HyperValue } from "../src/core/types.js";
import type { Distribution } from "../src/prune/allocate.js";
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
  layerKind: "conv" | "dense" | "batchnorm";
  /** "kernel", "bias", "gamma" or "beta". */
  role: string;
  shape: number[];
  values: Float32Array;
  mask: Float32Array;
}

/** What the engine hands a score function. Optional capabilities are present when the method `needs` them. */
export interface ScoreContext {
  tensors: readonly PrunableTensor[];
  params: Readonly<Record<string, HyperValue>>;
  /** A seeded uniform [0, 1) generator, deterministic per run. */
  random(): number;
  /** Mean gradient of the training loss over `batches` training batches, per tensor (needs.gradients). */
  gradients?(batches: number): Promise<Map<string, Float32Array>>;
  /**
   * ∂R/∂θ at |θ| with R the sum of the outputs for an all-ones input, parameters replaced by their absolute values,
   * inference mode: data-free (needs.pathGradients; SynFlow's objective).
   */
  pathGradients?(): Promise<Map<string, Float32Array>>;
}

export type { Schedule };

export interface PruningMethod {
  name: string;
  /** One line for `bench methods`. */
  summary: string;
  paper: Citation;
  params: Record<string, HyperParamSpec>;
  needs: { gradients?: boolean; pathGradients?: boolean };
  distribution(params: Readonly<Record<string, HyperValue>>): Distribution;
  /** When masks change (src/prune/schedules.ts): one-shot, at initialization in rounds, gradually while fine-tuning. */
  schedule(params: Readonly<Record<string, HyperValue>>): Schedule;
  /** A floor on every tensor's density under a global threshold (prevents layer collapse); none when absent. */
  minDensity?(params: Readonly<Record<string, HyperValue>>): number | undefined;
  /** Importance per tensor (same length as its values); higher survives. Already-pruned weights are ignored. */
  score(ctx: ScoreContext): Promise<Map<string, Float32Array>> | Map<string, Float32Array>;
}
