/**
 * A pool of long-lived worker processes. A job whose worker dies (crash, out of memory, SIGKILL) or overruns its
 * timeout resolves as a failed result naming the cause; the worker is replaced and the pool goes on.
 */
import { fork, type ChildProcess } from "node:child_process";
import { hostname } from "node:os";
import { fileURLToPath } from "node:url";
import type { WorkerMessage } from "./protocol.js";
import type { RunOptions, Transport } from "./transport.js";
import { type Job, type JobResult, PROTOCOL_VERSION } from "../core/types.js";

export interface PoolOptions {
  size: number;
  /** Kill a job's worker after this many seconds (0 = no limit). */
  jobTimeoutSec?: number;
  onProgress?: (key: string, phase: string, epoch: number, epochs: number) => void;
  /** Extra environment for workers (e.g. a fault-injection hook in tests). */
  env?: NodeJS.ProcessEnv;
  /** Replace a worker whose resident memory exceeds this after a job (0 = never): bounds memory per worker. */
  maxWorkerRssMb?: number;
  /**
   * Environment of each slot's worker, by slot (e.g. the GPU it is bound to: devices.ts). A slot keeps it for good: the
   * worker that replaces a crashed or recycled one starts with the same, so a GPU never gains or loses a worker.
   */
  slotEnv?: ReadonlyArray<NodeJS.ProcessEnv>;
}

interface Slot {
  child: ChildProcess | null;
  busy: boolean;
  env: NodeJS.ProcessEnv;
}

const WORKER_SCRIPT = fileURLToPath(new URL("./worker.js", import.meta.url));

/**
 * V8 flags for workers. --single-threaded-gc: V8 marks and sweeps on helper threads by default, and a sweep runs one
 * worker per core, so those threads take CPU from the other workers; on the worker's own thread the same collection
 * costs less CPU in all (LeNet-5-Caffe's training step: ~8 % less CPU per step at the same wall time per step).
 * PRUNEBENCH_CONCURRENT_GC=1 keeps V8's default (A/B measurements).
 */
export function workerNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return env.PRUNEBENCH_CONCURRENT_GC === "1" ? [] : ["--single-threaded-gc"];
}

export type { RunOptions };

export class WorkerPool implements Transport {
  private readonly slots: Slot[];
  private readonly waiting: Array<(slot: Slot) => void> = [];
  private closed = false;

  constructor(private readonly options: PoolOptions) {
    if (options.slotEnv && options.slotEnv.length !== options.size) throw new Error(`WorkerPool: ${options.slotEnv.length} slot environments for ${options.size} slots`);
    this.slots = Array.from({ length: options.size }, (_, i) => ({ child: null, busy: false, env: options.slotEnv?.[i] ?? {} }));
  }

  get pids(): number[] {
    return this.slots.flatMap((s) => (s.child?.pid ? [s.child.pid] : []));
  }

  async run(job: Job, runOptions: RunOptions = {}): Promise<JobResult> {
    const slot = await this.acquire();
    try {
      return await this.runOn(slot, job, runOptions);
    } finally {
      slot.busy = false;
      const next = this.waiting.shift();
      if (next) { slot.busy = true; next(slot); }
    }
  }

  /** Start every worker now rather than at its first job: a queue worker waiting for work should be ready for it. */
  warm(): void {
    for (const slot of this.slots) if (!slot.child && !this.closed) slot.child = this.spawn(slot);
  }

  private acquire(): Promise<Slot> {
    if (this.closed) return Promise.reject(new Error("worker pool is closed"));
    const free = this.slots.find((s) => !s.busy);
    if (free) { free.busy = true; return Promise.resolve(free); }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Which slot each live worker is in, by pid (tests: a replaced worker is in its predecessor's slot). */
  get slotPids(): Array<number | null> {
    return this.slots.map((s) => s.child?.pid ?? null);
  }

  private spawn(slot: Slot): ChildProcess {
    // detached: a process group of its own, so Ctrl-C in a terminal (SIGINT to the foreground group) reaches only the
    // coordinator, which decides what stops. The worker's own SIGINT handler is installed only after its imports load
    // (seconds), and a worker started just before a Ctrl-C would otherwise die with its run. Workers still end with
    // the coordinator: they exit when their IPC channel closes or their parent is gone (worker.ts).
    const env = { ...process.env, ...this.options.env, ...slot.env };
    return fork(WORKER_SCRIPT, [], {
      stdio: ["ignore", "inherit", "inherit", "ipc"], env, execArgv: [...process.execArgv, ...workerNodeFlags(env)], serialization: "json", detached: true,
    });
  }

  private runOn(slot: Slot, job: Job, runOptions: RunOptions): Promise<JobResult> {
    const { signal } = runOptions;
    const alive = slot.child && slot.child.exitCode === null && slot.child.signalCode === null;
    if (alive && runOptions.freshWorker) {
      slot.child!.send({ type: "exit" });
      slot.child = null;
    }
    if (!slot.child || !alive) slot.child = this.spawn(slot);
    const child = slot.child;
    const startedAt = new Date().toISOString();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (result: JobResult) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        child.off("message", onMessage);
        child.off("exit", onExit);
        resolve(result);
      };
      const failed = (error: string): JobResult => ({
        protocol: PROTOCOL_VERSION, kind: job.kind, key: job.key, status: "failed", error, backend: null, metrics: {}, layers: [],
        epochs: [], artifacts: [], startedAt, finishedAt: new Date().toISOString(), host: hostname(), pid: child.pid ?? -1,
      });
      const onMessage = (m: WorkerMessage) => {
        if (m.type === "progress" && m.key === job.key) {
          this.options.onProgress?.(m.key, m.phase, m.epoch, m.epochs);
          runOptions.onProgress?.(m.phase, m.epoch, m.epochs, m.note);
        }
        else if (m.type === "result" && m.result.key === job.key) {
          const limit = this.options.maxWorkerRssMb ?? 0;
          if (limit > 0 && (m.rssMb ?? 0) > limit) {
            // Retire it after this job; the slot forks a fresh worker for the next one.
            child.off("exit", onExit);
            child.send({ type: "exit" });
            slot.child = null;
          }
          finish(m.result);
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        slot.child = null;
        finish(failed(`worker process ${child.pid} died (${signal ? `signal ${signal}` : `exit code ${code}`}) while running this job`));
      };
      const onAbort = () => {
        child.off("exit", onExit);
        child.kill("SIGKILL");
        slot.child = null;
        finish(failed(`stopped: ${String(signal!.reason ?? "aborted")}; its worker was killed`));
      };
      child.on("message", onMessage);
      child.on("exit", onExit);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      const timeout = this.options.jobTimeoutSec ?? 0;
      if (timeout > 0) {
        timer = setTimeout(() => {
          child.off("exit", onExit);
          child.kill("SIGKILL");
          slot.child = null;
          finish(failed(`run timed out after ${timeout} s (--run-timeout); its worker was killed`));
        }, timeout * 1000);
      }
      child.send({ type: "job", job });
    });
  }

  /** Stop all workers: after their current job ("graceful") or at once. */
  async close(mode: "graceful" | "kill" = "graceful"): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((slot) => new Promise<void>((resolve) => {
      const child = slot.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      if (mode === "kill") child.kill("SIGKILL");
      else child.send({ type: "exit" });
    })));
  }
}
