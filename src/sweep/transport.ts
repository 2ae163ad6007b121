/**
 * "Send a job, receive a result": what the coordinator needs from whatever runs its jobs. Two implementations: the
 * local pool of forked workers (worker-pool.ts) and the Redis queue that workers on any machine consume (queue.ts).
 * Both end in the same worker code (worker.ts → executeJob).
 */
import type { Job, JobResult } from "../core/types.js";

export interface RunOptions {
  /** Progress of this job; `note` is a line for the user (protocol.ts). */
  onProgress?: (phase: string, epoch: number, epochs: number, note?: string) => void;
  /** Abort: the job's worker is killed at once and the job resolves as failed. */
  signal?: AbortSignal;
  /** Run on a newly started worker (a retry should not inherit whatever state broke the first attempt). */
  freshWorker?: boolean;
  /** Which worker (host:pid) took the job, when the transport knows: for per-worker counts. */
  onWorker?: (worker: string) => void;
}

export interface Transport {
  /** Resolves with the job's result; a job that could not run resolves as a failed result naming why (never rejects). */
  run(job: Job, options?: RunOptions): Promise<JobResult>;
  /**
   * The coordinator has stored the job's result (or recorded its failure): a transport that keeps results until then
   * (the queue, so that a coordinator killed before writing finds them again) may drop it now.
   */
  ack?(job: Job): Promise<void>;
  /** Stop: "graceful" lets running jobs finish; "kill" stops at once (the queue detaches: its jobs stay queued). */
  close(mode?: "graceful" | "kill"): Promise<void>;
  /** Whether jobs outlive this process (a queue): a stopped coordinator detaches instead of waiting for them. */
  readonly detachable?: boolean;
}
