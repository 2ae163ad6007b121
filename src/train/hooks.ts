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

import type { EpochRecord } from "../core/types.js";

export interface TrainHooks {
  afterStep?(info: StepInfo): void | Promise<void>;
  afterEpoch?(record: EpochRecord): void | Promise<void>;
}
