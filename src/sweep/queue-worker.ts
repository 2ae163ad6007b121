/**
 * `bench worker --queue redis://…`: a queue consumer on any machine. This process only talks to Redis (and so keeps
 * renewing its BullMQ locks); the training happens in the local pool's forked workers (worker.ts), the same code a
 * local sweep runs. It fills in its own roots (cache, artifacts, data lookup), refuses jobs planned with other code or
 * data, brings the cluster's dense model into its cache before a run, and sends artifacts back as sha256 blobs.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Redis } from "ioredis";
import { type Job as BullJob, UnrecoverableError, Worker } from "bullmq";
import { getDataset } from "../../datasets/index.js";
import { type Job, PROTOCOL_VERSION } from "../core/types.js";
import { CODE_VERSION, RESULTS_REVISION } from "../core/version.js";
import { denseCheckpointPath } from "../run/dense-cache.js";
import { WorkerPool } from "./worker-pool.js";
import { gpuWorkerEnv, type GpuPlan } from "./devices.js";
import { threadsForGpuJob } from "./threads.js";
import {
  checkReachable, denseIndexKey, getBlob, parseQueueUrl, putBlob, QUEUE_NAME, type QueueJobData, type QueueJobReturn, type QueueProgress, queueTimings, writeFileAtomic,
} from "./queue-common.js";

export interface QueueWorkerOptions {
  url: string;
  jobs: number;
  cacheDir: string;
  dataDir?: string;
  /** Where runs write artifacts before they are sent (emptied after each run). */
  artifactsDir?: string;
  out?: NodeJS.WriteStream;
  /** Extra environment for the training processes (fault injection in tests). */
  env?: NodeJS.ProcessEnv;
  /**
   * Exit once no job has run for this long (ms; never when absent or 0): a Slurm array's tasks then give their nodes
   * back when the sweep has drained, instead of holding them until scancel.
   */
  idleExitMs?: number;
  /** `--gpus`: each training process bound to one GPU (devices.ts); `jobs` is then the slot count. */
  gpus?: GpuPlan;
}

export async function runQueueWorker(options: QueueWorkerOptions): Promise<void> {
  const out = options.out ?? process.stderr;
  const address = parseQueueUrl(options.url);
  const connection = { ...address, maxRetriesPerRequest: null };
  const name = `${hostname()}:${process.pid}`;
  const artifactsDir = options.artifactsDir ?? join(tmpdir(), `prunebench-worker-${process.pid}-artifacts`);
  await checkReachable(address, options.url);
  const redis = new Redis(connection);
  redis.on("error", () => {}); // the BullMQ worker's own connection reports outages (below)
  const jobs = options.gpus?.slots.length ?? options.jobs;
  const pool = new WorkerPool({ size: jobs, env: options.env, ...(options.gpus ? { slotEnv: options.gpus.slots.map((s) => gpuWorkerEnv(s.gpu)) } : {}) });
  pool.warm();
  const fingerprints = new Map<string, Promise<string>>();
  const { lockDuration, stalledInterval } = queueTimings();

  const check = async (job: Job): Promise<void> => {
    const v = job.versions;
    const refuse = (why: string) => new UnrecoverableError(`worker ${name} refused this job: ${why}`);
    if (job.protocol !== PROTOCOL_VERSION) throw refuse(`job protocol ${job.protocol}, this worker speaks ${PROTOCOL_VERSION}`);
    if (!v) throw refuse("the job names no code version or data fingerprint");
    if (v.code !== CODE_VERSION || v.resultsRevision !== RESULTS_REVISION) {
      throw refuse(`it was planned with code ${v.code} (results revision ${v.resultsRevision}), this worker runs ${CODE_VERSION} (results revision ${RESULTS_REVISION}); install the same prunebench on every machine`);
    }
    const dataset = job.config.dataset;
    if (!fingerprints.has(dataset)) fingerprints.set(dataset, getDataset(dataset).fingerprint({ dataDir: options.dataDir, download: true }));
    let mine: string;
    try {
      mine = await fingerprints.get(dataset)!;
    } catch (e) {
      fingerprints.delete(dataset);
      throw refuse(`dataset ${dataset} cannot be read here: ${(e as Error).message}`);
    }
    if (mine !== v.dataFingerprint) {
      throw refuse(`its dataset ${dataset} has fingerprint ${v.dataFingerprint}, the copy on this machine has ${mine}: the files differ`);
    }
  };

  // The cluster trains each dense model once: a worker that lacks it in its cache takes the copy in Redis.
  const fetchDense = async (denseKey: string): Promise<void> => {
    const path = denseCheckpointPath(options.cacheDir, denseKey);
    if (existsSync(path)) return;
    const sha = await redis.get(denseIndexKey(denseKey));
    if (sha) writeFileAtomic(path, await getBlob(redis, sha));
  };

  const process_ = async (bj: BullJob<QueueJobData, QueueJobReturn>): Promise<QueueJobReturn> => {
    const takenAt = Date.now();
    const wire = bj.data.job;
    await check(wire);
    await fetchDense(wire.denseKey);
    const job: Job = {
      ...wire, paths: { ...wire.paths, cacheDir: options.cacheDir, artifactsDir, ...(options.dataDir ? { dataDir: options.dataDir } : {}) },
      ...(options.gpus ? { threads: threadsForGpuJob(wire.threads) } : {}),
    };
    const tell = (p: Omit<QueueProgress, "worker">) => { void bj.updateProgress({ worker: name, ...p }).catch(() => {}); };
    tell({ phase: "start", epoch: 0, epochs: 0 });
    const result = await pool.run(job, { onProgress: (phase, epoch, epochs, note) => tell({ phase, epoch, epochs, ...(note ? { note } : {}) }) });
    const ranMs = Date.parse(result.finishedAt) - Date.parse(result.startedAt);
    // A failed run throws so that BullMQ tries it again (elsewhere, perhaps); after the last try the coordinator
    // records this message. A diverged run is a result: the same run diverges again.
    if (result.status === "failed") throw new Error(result.error ?? "failed");
    if (job.kind === "dense") {
      const path = denseCheckpointPath(options.cacheDir, job.denseKey);
      const sha = await putBlob(redis, readFileSync(path));
      await redis.set(denseIndexKey(job.denseKey), sha);
    }
    // Sent under the sha256 the run computed when it wrote them (not hashed again here); the coordinator checks it.
    await Promise.all(result.artifacts.map((a) => putBlob(redis, readFileSync(a.path), a.sha256)));
    const artifacts = result.artifacts.map((a) => ({ ...a, path: relative(artifactsDir, a.path) }));
    rmSync(join(artifactsDir, job.key), { recursive: true, force: true });
    return { result: { ...result, artifacts }, worker: name, ranMs, takenAt };
  };

  const worker = new Worker<QueueJobData, QueueJobReturn>(QUEUE_NAME, process_, {
    connection, prefix: "prunebench", concurrency: jobs, lockDuration, stalledInterval, maxStalledCount: 2, autorun: false,
  });
  // Said once per outage, not at every reconnection attempt.
  let lastError = "";
  worker.on("error", (e) => {
    if (e.message !== lastError) out.write(`worker ${name}: ${e.message}\n`);
    lastError = e.message;
  });
  worker.on("ready", () => { lastError = ""; });
  worker.on("failed", (bj, e) => out.write(`worker ${name}: job ${bj?.id} failed: ${e.message.split("\n")[0]}\n`));
  worker.on("active", (bj) => out.write(`worker ${name}: job ${bj.id} started (try ${bj.attemptsMade + 1})\n`));
  worker.on("completed", (bj) => out.write(`worker ${name}: job ${bj.id} done\n`));

  // Idle = no job held by this worker since `idleSince`; a job ending (done or failed) restarts the clock.
  let held = 0;
  let idleSince = Date.now();
  worker.on("active", () => { held++; });
  const released = () => { held = Math.max(0, held - 1); idleSince = Date.now(); };
  worker.on("completed", released);
  worker.on("failed", released);
  const idleMs = options.idleExitMs ?? 0;
  const idleTimer = idleMs > 0 ? setInterval(() => {
    if (held > 0 || Date.now() - idleSince < idleMs) return;
    clearInterval(idleTimer);
    out.write(`worker ${name}: no job for ${Math.round(idleMs / 1000)} s; exiting\n`);
    void worker.close();
  }, Math.min(1000, idleMs)) : undefined;

  let signals = 0;
  const stop = () => {
    if (++signals === 1) {
      out.write(`worker ${name}: stopping after the running job(s) (Ctrl-C again to stop now; the queue gives them to another worker)\n`);
      void worker.close();
    } else {
      void pool.close("kill").then(() => process.exit(130));
    }
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  const onGpus = options.gpus ? ` on GPU ${options.gpus.gpus.join(", ")} (${options.gpus.jobsPerGpu} each)` : "";
  out.write(`worker ${name}: ${jobs} training process(es)${onGpus}, queue ${options.url}, code ${CODE_VERSION}, cache ${options.cacheDir}\n`);
  try {
    await worker.run();
  } finally {
    clearInterval(idleTimer);
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await pool.close("graceful");
    await redis.quit().catch(() => {});
    rmSync(artifactsDir, { recursive: true, force: true });
  }
}
