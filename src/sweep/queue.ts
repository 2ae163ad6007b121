/**
 * The coordinator's side of the Redis queue: each job is enqueued under its run key (a second add of the same key
 * finds the first job, so a restarted coordinator reattaches to what it, or an earlier run of it, enqueued), its
 * result comes back as the BullMQ job's return value, and the job is removed only once the coordinator has written
 * it (ack). Artifacts come back as sha256 blobs and are written under this machine's artifacts folder.
 */
import { appendFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { Queue, QueueEvents } from "bullmq";
import { type Job, type JobResult, PROTOCOL_VERSION } from "../core/types.js";
import type { RunOptions, Transport } from "./transport.js";
import {
  checkReachable, dropBlob, getBlob, parseQueueUrl, QUEUE_NAME, type QueueJobData, type QueueJobReturn, type QueueProgress, queueJobId, queueTimings, writeFileAtomic,
} from "./queue-common.js";

interface Pending {
  job: Job;
  options: RunOptions;
  resolve: (r: JobResult) => void;
  settling: boolean;
  worker?: string;
}

/** Per-run timings, for the queue-overhead figure (scripts/bench-scale.ts). */
export interface QueueTiming {
  key: string;
  /** From the worker taking the job to this coordinator holding its result (artifacts written), in ms. */
  roundTripMs: number;
  /** The training child's own time for the job, in ms. */
  ranMs: number;
}

export class QueueTransport implements Transport {
  readonly detachable = true;
  readonly timings: QueueTiming[] = [];
  private readonly pending = new Map<string, Pending>();
  /** Artifact blobs of results handed out and not yet acknowledged, by job id. */
  private readonly shas = new Map<string, string[]>();
  private poller: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly queue: Queue<QueueJobData, QueueJobReturn>,
    private readonly events: QueueEvents,
    private readonly redis: Redis,
    private readonly artifactsDir: string,
  ) {
    // The event carries the return value: no round trip to read the job back.
    events.on("completed", ({ jobId, returnvalue }) => void this.settle(jobId, returnvalue as unknown as QueueJobReturn));
    events.on("failed", ({ jobId }) => void this.settle(jobId));
    events.on("progress", ({ jobId, data }) => {
      const p = this.pending.get(jobId);
      if (!p || typeof data !== "object" || data === null) return;
      const d = data as unknown as QueueProgress;
      if (d.worker && d.worker !== p.worker) {
        p.worker = d.worker;
        p.options.onWorker?.(d.worker);
      }
      if (d.phase !== "start") p.options.onProgress?.(d.phase, d.epoch, d.epochs, d.note);
    });
    events.on("error", () => {}); // Redis restarting: ioredis reconnects, and the poll below catches what was missed
    // Events are a fast path; this poll is what guarantees no result is missed (a Redis restart, a reconnect gap).
    this.poller = setInterval(() => void this.poll(), 2000);
  }

  static async connect(url: string, artifactsDir: string): Promise<QueueTransport> {
    const address = parseQueueUrl(url);
    await checkReachable(address, url);
    const connection = { ...address, maxRetriesPerRequest: null };
    const queue = new Queue<QueueJobData, QueueJobReturn>(QUEUE_NAME, { connection, prefix: "prunebench" });
    const events = new QueueEvents(QUEUE_NAME, { connection, prefix: "prunebench" });
    const redis = new Redis(connection);
    // Outages are ridden out (ioredis reconnects; the poll catches up); their errors are not the user's to read.
    queue.on("error", () => {});
    redis.on("error", () => {});
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), redis.ping()]);
    return new QueueTransport(queue, events, redis, artifactsDir);
  }

  async run(job: Job, options: RunOptions = {}): Promise<JobResult> {
    const id = queueJobId(job);
    if (this.closed) return failed(job, "the queue connection is closed");
    const done = new Promise<JobResult>((resolve) => this.pending.set(id, { job, options, resolve, settling: false }));
    // Its paths are this machine's: the worker fills in its own roots (imported architectures' files excepted).
    const wire: Job = { ...job, paths: { cacheDir: "", artifactsDir: "", ...(job.paths.archFiles ? { archFiles: job.paths.archFiles } : {}) } };
    try {
      await this.queue.add(job.kind, { job: wire }, {
        jobId: id, attempts: queueTimings().attempts, backoff: { type: "fixed", delay: 1000 }, removeOnComplete: false, removeOnFail: false,
      });
    } catch (e) {
      this.pending.get(id)?.resolve(failed(job, `could not be queued: ${(e as Error).message}`));
      this.pending.delete(id);
      return done;
    }
    // Already finished (a restarted coordinator reattaching): no event will come.
    await this.settle(id);
    return done;
  }

  /** The job's result, if it has finished, goes to its waiting run() (once). */
  private async settle(id: string, completed?: QueueJobReturn): Promise<void> {
    const p = this.pending.get(id);
    if (!p || p.settling) return;
    p.settling = true;
    try {
      // The state first, then the job: read the other way round, a job failing in between has no reason yet.
      const state = completed ? "completed" : await this.queue.getJobState(id);
      const bj = completed || (state !== "completed" && state !== "failed") ? null : await this.queue.getJob(id);
      if (!completed && !bj) {
        p.settling = false;
        return;
      }
      let result: JobResult;
      if (state === "completed") {
        const back = completed ?? bj!.returnvalue;
        result = await this.bringArtifacts(back.result);
        this.shas.set(id, back.result.artifacts.map((a) => a.sha256));
        const timing = { key: p.job.key, roundTripMs: Date.now() - back.takenAt, ranMs: back.ranMs };
        this.timings.push(timing);
        // For scripts/bench-scale.ts, whose coordinator is another process.
        if (process.env.BENCH_QUEUE_TIMINGS) appendFileSync(process.env.BENCH_QUEUE_TIMINGS, `${JSON.stringify(timing)}\n`);
        if (back.worker !== p.worker) p.options.onWorker?.(back.worker);
      } else {
        const tries = bj!.attemptsMade > 1 ? ` (after ${bj!.attemptsMade} tries)` : "";
        result = failed(p.job, `${bj!.failedReason}${tries}`);
      }
      this.pending.delete(id);
      p.resolve(result);
    } catch (e) {
      // Redis away for a moment, or a blob missing: the next poll tries again.
      p.settling = false;
      if (!(e instanceof Error && /blob/.test(e.message))) return;
      this.pending.delete(id);
      p.resolve(failed(p.job, `its result came back without its artifacts: ${e.message}`));
    }
  }

  private async poll(): Promise<void> {
    if (this.closed || this.pending.size === 0) return;
    try {
      // Finished jobs stay until acknowledged, so these sets hold only what waits to be written: small.
      const finished = await this.queue.getJobs(["completed", "failed"], 0, 999);
      for (const bj of finished) if (bj?.id && this.pending.has(bj.id)) await this.settle(bj.id);
    } catch {
      // Redis away: the next poll tries again.
    }
  }

  private async bringArtifacts(result: JobResult): Promise<JobResult> {
    const artifacts = await Promise.all(result.artifacts.map(async (a) => {
      const path = join(this.artifactsDir, a.path);
      writeFileAtomic(path, await getBlob(this.redis, a.sha256));
      return { ...a, path };
    }));
    return { ...result, artifacts };
  }

  async ack(job: Job): Promise<void> {
    const id = queueJobId(job);
    try {
      await this.queue.remove(id);
      for (const sha of this.shas.get(id) ?? []) await dropBlob(this.redis, sha);
    } catch {
      // The result is written, which is what counts: a finished job left in Redis is only a few kB it keeps.
    }
    this.shas.delete(id);
  }

  /** The coordinator goes; jobs stay in Redis, and the next coordinator with the same grid collects their results. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.poller);
    for (const p of this.pending.values()) p.resolve(failed(p.job, "the coordinator stopped; the job stays queued, and the same command run again collects its result"));
    this.pending.clear();
    await Promise.allSettled([this.queue.close(), this.events.close(), this.redis.quit()]);
  }
}

function failed(job: Job, error: string): JobResult {
  const now = new Date().toISOString();
  return {
    protocol: PROTOCOL_VERSION, kind: job.kind, key: job.key, status: "failed", error, backend: null, metrics: {}, layers: [], epochs: [], artifacts: [],
    startedAt: now, finishedAt: now, host: hostname(), pid: process.pid,
  };
}
