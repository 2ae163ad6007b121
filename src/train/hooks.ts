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
}

export interface TrainHooks {
  afterStep?(ctx: StepContext): void | Promise<void>;
  afterEpoch?(record: EpochRecord): void | Promise<void>;
  /** The steps (counted over the phase) after which afterStep needs the dense gradients; none when absent. */
  wantsGradients?(globalStep: number): boolean;
}
