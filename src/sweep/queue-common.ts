/**
 * What the coordinator (queue.ts) and queue workers (queue-worker.ts) agree on: the Redis address, the queue's name,
 * job ids, the data that travels, and the content-addressed blob store (dense weights, run artifacts) in Redis.
 */
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Redis } from "ioredis";
import type { Job, JobResult } from "../core/types.js";

export class QueueError extends Error {
  override name = "QueueError";
}

export interface RedisAddress {
  host: string;
  port: number;
  db: number;
}

/** `redis://host:port[/db]`; anything else is bad input, said with an example. */
export function parseQueueUrl(url: string, flag = "--queue"): RedisAddress {
  const example = "e.g. redis://127.0.0.1:6379 or redis://queue-host:6379/2";
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueError(`${flag} ${url} is not a Redis address (${example})`);
  }
  if (u.protocol !== "redis:") throw new QueueError(`${flag} ${url}: the scheme must be redis:// (${example})`);
  if (!u.hostname) throw new QueueError(`${flag} ${url}: no host (${example})`);
  const port = u.port === "" ? 6379 : Number(u.port);
  const path = u.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d+$/.test(path)) throw new QueueError(`${flag} ${url}: the database after the port must be a number (${example})`);
  if (u.username || u.password || u.search) throw new QueueError(`${flag} ${url}: only redis://host:port[/db] is understood (${example})`);
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port, db: path === "" ? 0 : Number(path) };
}

/** One queue for every sweep: run keys are unique across grids, so two sweeps of overlapping grids share their runs. */
export const QUEUE_NAME = "prunebench";
const PREFIX = "prunebench";

/** BullMQ job ids: the run key (or dense key), so enqueuing twice never makes two jobs. Ids may not contain ":". */
export function queueJobId(job: Pick<Job, "kind" | "key">): string {
  return `${job.kind}-${job.key}`;
}

/** Timings, shortened by tests through the environment only (a worker that dies is noticed after about lock + interval). */
export function queueTimings(): { lockDuration: number; stalledInterval: number; attempts: number } {
  const lockDuration = Number(process.env.BENCH_QUEUE_LOCK_MS ?? 30_000);
  return { lockDuration, stalledInterval: Math.max(500, Math.round(lockDuration / 2)), attempts: Number(process.env.BENCH_QUEUE_ATTEMPTS ?? 3) };
}

/** What a queued job carries: the job with its paths emptied (the worker fills in its own roots). */
export interface QueueJobData {
  job: Job;
}

/** What a finished queue job returns: artifacts' paths are relative to the artifacts root, their bytes are blobs. */
export interface QueueJobReturn {
  result: JobResult;
  /** host:pid of the queue process that ran it. */
  worker: string;
  /** When the worker's child started and finished (ms since epoch), for the queue-overhead figure. */
  ranMs: number;
}

export interface QueueProgress {
  worker: string;
  phase: string;
  epoch: number;
  epochs: number;
  note?: string;
}

const blobKey = (sha: string) => `${PREFIX}:blob:${sha}`;
/** The cluster's copy of a dense model: dense key → sha256 of its checkpoint. */
export const denseIndexKey = (denseKey: string) => `${PREFIX}:dense:${denseKey}`;

export const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

/** Store bytes under their sha256 (a second put of the same bytes is free). */
export async function putBlob(redis: Redis, bytes: Buffer): Promise<string> {
  const sha = sha256(bytes);
  await redis.set(blobKey(sha), bytes, "NX");
  return sha;
}

/** The bytes stored under `sha`, checked against it; a missing or altered blob is an error naming it. */
export async function getBlob(redis: Redis, sha: string): Promise<Buffer> {
  const bytes = await redis.getBuffer(blobKey(sha));
  if (!bytes) throw new QueueError(`blob ${sha} is not in Redis (evicted, or Redis lost its data)`);
  if (sha256(bytes) !== sha) throw new QueueError(`blob ${sha} in Redis does not match its sha256`);
  return bytes;
}

export async function dropBlob(redis: Redis, sha: string): Promise<void> {
  await redis.del(blobKey(sha));
}

/** Write a file whole or not at all: a reader never sees half of it. */
export function writeFileAtomic(path: string, bytes: Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}
