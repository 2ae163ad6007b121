/**
 * What the training loop offers the pruning schedule (and anything else that must act during training):
 * iterative, gradual and dynamic-sparse methods update masks from these hooks; the loop itself knows nothing
 * about methods.
 */
export interface StepInfo {
  phase: "pretrain" | "finetune";
  epoch: number;
  /** Step within the epoch, and over the whole phase. */
  step: number;
  globalStep: number;
  stepsPerEpoch: number;
}

import type * as tf from "@tensorflow/tfjs-core";
import type { EpochRecord } from "../core/types.js";

/** What a hook may see and do after a step: enough for masks that move while training (RigL, SET, DNS). */
export interface StepContext extends StepInfo {
  /**
   * This step's gradient of the batch loss per parameter, dense (before any mask), when `wantsGradients` asked for it
   * at this step; disposed when the hook returns.
   */
  gradients?: ReadonlyMap<string, tf.Tensor>;
  /** Zero the optimizer state of tensor `name` where `where` is 1: regrown or rewound weights start fresh. */
  resetOptimizerState(name: string, where: tf.Tensor): void;
  /**
   * With soft masks only (PhaseOptions.masking): the dense weights W of every masked tensor, which the optimizer
   * updates with the unmasked gradient while the model's variables hold W⊙T. Read them, never write them. A hook
   * that changes masks (MaskSet.set) leaves applying them to the loop, which derives W⊙T again when the hook returns.
   */
  denseWeights?: ReadonlyMap<string, tf.Tensor>;
}

export interface TrainHooks {
  afterStep?(ctx: StepContext): void | Promise<void>;
  afterEpoch?(record: EpochRecord): void | Promise<void>;
  /**
   * After every step's gradient, before the optimizer uses it: the gradient of the step's loss (the penalty's
   * included) per tensor the phase trains, and those tensors at the values it was taken at (a gated phase's gates
   * under their own names; see gates.ts). Inside the step's tidy scope: keep (tf.keep) anything computed from them
   * that must outlive the call, and read nothing back to the host (the step stays asynchronous).
   */
  afterGradients?(gradients: ReadonlyMap<string, tf.Tensor>, values: ReadonlyMap<string, tf.Tensor>): void;
  /** The steps (counted over the phase) after which afterStep needs the dense gradients; none when absent. */
  wantsGradients?(globalStep: number): boolean;
}
