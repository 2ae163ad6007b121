/**
 * The worker protocol: a job in, a result out, both plain JSON. Nothing here depends on how a worker is started
 * (a forked child process here; a queue consumer on another machine later) or where results are stored.
 */
import type { Job, JobResult } from "../core/types.js";

/** Messages a worker sends while it works. */
export type WorkerMessage =
  | { type: "ready"; pid: number }
  /**
   * phase "pretrain" / "finetune": training, epoch of epochs (epoch 0: it starts). "wait-dense": waiting for another
   * process's lease on the dense model. "warning": something the user must hear about. `note`: a line for the user.
   */
  | { type: "progress"; key: string; phase: string; epoch: number; epochs: number; note?: string }
  /** rssMb: the worker's resident memory after the job, so a pool can recycle workers that grew too large. */
  | { type: "result"; result: JobResult; rssMb?: number };

export type CoordinatorMessage = { type: "job"; job: Job } | { type: "exit" };
