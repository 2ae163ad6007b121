/**
 * The coordinator's side of the Redis queue: each job is enqueued under its run key (a second add of the same key
 * finds the first job, so a restarted coordinator reattaches to what it, or an earlier run of it, enqueued), its
 * result comes back as the BullMQ job's return value, and the job is removed only once the coordinator has written
 * it (ack). Artifacts come back as sha256 blobs and are written under this machine's artifacts folder.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { Queue, QueueEvents } from "bullmq";
import { type Job, type JobResult, PROTOCOL_VERSION } from "../core/types.js";
import type { RunOptions, Transport } from "./transport.js";
import {
  dropBlob, getBlob, parseQueueUrl, QueueError, QUEUE_NAME, type QueueJobData, type QueueJobReturn, type QueueProgress, queueJobId, queueTimings, writeFileAtomic,
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
  private poller: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly queue: Queue<QueueJobData, QueueJobReturn>,
    private readonly events: QueueEvents,
    private readonly redis: Redis,
    private readonly artifactsDir: string,
  ) {
    events.on("completed", ({ jobId }) => void this.settle(jobId));
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
    const connection = { ...address, maxRetriesPerRequest: null };
    const queue = new Queue<QueueJobData, QueueJobReturn>(QUEUE_NAME, { connection, prefix: "prunebench" });
    const events = new QueueEvents(QUEUE_NAME, { connection, prefix: "prunebench" });
    const redis = new Redis(connection);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueueError(`--queue ${url}: no Redis answered within 10 s; is redis-server running there and reachable from this machine?`)), 10_000);
    });
    try {
      await Promise.race([Promise.all([queue.waitUntilReady(), events.waitUntilReady(), redis.ping()]), timeout]);
    } catch (e) {
      await Promise.allSettled([queue.close(), events.close()]);
      redis.disconnect();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return new QueueTransport(queue, events, redis, artifactsDir);
  }

  async run(job: Job, options: RunOptions = {}): Promise<JobResult> {
    const id = queueJobId(job);
    if (this.closed) return failed(job, "the queue connection is closed");
    const done = new Promise<JobResult>((resolve) => this.pending.set(id, { job, options, resolve, settling: false }));
    // Its paths are this machine's: the worker fills in its own roots (imported architectures' files excepted).
    const wire: Job = { ...job, paths: { cacheDir: "", artifactsDir: "", ...(job.paths.archFiles ? { archFiles: job.paths.archFiles } : {}) } };
    await this.queue.add(job.kind, { job: wire }, {
      jobId: id, attempts: queueTimings().attempts, backoff: { type: "fixed", delay: 1000 }, removeOnComplete: false, removeOnFail: false,
    });
    // Already finished (a restarted coordinator reattaching): no event will come.
    await this.settle(id);
    return done;
  }

  /** The job's result, if it has finished, goes to its waiting run() (once). */
  private async settle(id: string): Promise<void> {
    const p = this.pending.get(id);
    if (!p || p.settling) return;
    p.settling = true;
    try {
      const bj = await this.queue.getJob(id);
      const state = bj ? await bj.getState() : "unknown";
      if (!bj || (state !== "completed" && state !== "failed")) {
        p.settling = false;
        return;
      }
      let result: JobResult;
      if (state === "completed") {
        const back = bj.returnvalue;
        result = await this.bringArtifacts(back.result);
        this.timings.push({ key: p.job.key, roundTripMs: Date.now() - (bj.processedOn ?? Date.now()), ranMs: back.ranMs });
        if (back.worker !== p.worker) p.options.onWorker?.(back.worker);
      } else {
        const tries = bj.attemptsMade > 1 ? ` (after ${bj.attemptsMade} tries)` : "";
        result = failed(p.job, `${bj.failedReason}${tries}`);
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
    if (this.closed) return;
    for (const id of [...this.pending.keys()].slice(0, 200)) await this.settle(id).catch(() => {});
  }

  private async bringArtifacts(result: JobResult): Promise<JobResult> {
    const artifacts = [];
    for (const a of result.artifacts) {
      const path = join(this.artifactsDir, a.path);
      writeFileAtomic(path, await getBlob(this.redis, a.sha256));
      artifacts.push({ ...a, path });
    }
    return { ...result, artifacts };
  }

  async ack(job: Job): Promise<void> {
    const id = queueJobId(job);
    const bj = await this.queue.getJob(id);
    if (!bj) return;
    const back = bj.returnvalue as QueueJobReturn | undefined;
    await bj.remove();
    for (const a of back?.result?.artifacts ?? []) await dropBlob(this.redis, a.sha256);
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
