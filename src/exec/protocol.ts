/**
 * The worker protocol: a job in, a result out, both plain JSON. Nothing here depends on how a worker is started
 * (a forked child process here; a queue consumer on another machine later) or where results are stored.
 */
import type { EpochRecord } from "../train/hooks.js";
import type { LayerCount } from "../metrics/counts.js";
import type { RunConfig } from "../grid/types.js";

export const PROTOCOL_VERSION = 1;

export interface JobPaths {
  /** Shared dense-model cache (content-addressed by dense key). */
  cacheDir: string;
  /** Where a run writes its pruned weights and masks. */
  artifactsDir: string;
  /** --data-dir, searched first for dataset files. */
  dataDir?: string;
}

/** "dense": make sure the pretrained dense model for `denseKey` is cached. "run": the whole pruning run. */
export interface Job {
  protocol: typeof PROTOCOL_VERSION;
  kind: "dense" | "run";
  key: string;
  denseKey: string;
  config: RunConfig;
  paths: JobPaths;
  /** Requested compute backend ("auto", "wasm", "node", "native", "cpu"). */
  backend: string;
}

export interface BackendRecord {
  name: string;
  tfjsVersion: string;
  threads: number;
}

export interface Artifact {
  kind: string;
  path: string;
  sha256: string;
  bytes: number;
}

export type JobStatus = "done" | "failed" | "diverged";

export interface JobResult {
  protocol: typeof PROTOCOL_VERSION;
  kind: Job["kind"];
  key: string;
  status: JobStatus;
  error: string | null;
  backend: BackendRecord | null;
  metrics: Record<string, number>;
  layers: LayerCount[];
  epochs: EpochRecord[];
  artifacts: Artifact[];
  startedAt: string;
  finishedAt: string;
  host: string;
  pid: number;
}

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
