/**
 * npm run bench:scale — what the Redis queue costs. For one grid (default: the quickstart), a local sweep with
 * --jobs 2 vs the same sweep through a Redis queue with 2 `bench worker --queue` processes on this machine (runs per
 * hour both, fresh database and caches each), and the queue's overhead per run: from a worker taking a job to the
 * coordinator holding its result with its artifacts, minus the training process's own time for it (target < 50 ms).
 * Then the coordinator's write rate: 10,000 synthetic results through Redis (a no-op worker in this process returns
 * them) into SQLite, one transaction each, each acknowledged (its job removed) after its write; and SQLite alone.
 *
 *   node dist/scripts/bench-scale.js [grid=benchmarks/quickstart.yaml] [--results 10000] [--no-sweeps]
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "bullmq";
import { type Job, type JobResult, type PlannedRun, PROTOCOL_VERSION } from "../src/core/types.js";
import { CODE_VERSION, RESULTS_REVISION } from "../src/core/version.js";
import { Store } from "../src/store/store.js";
import { planSweep } from "../src/sweep/coordinator.js";
import { parseQueueUrl, QUEUE_NAME, type QueueJobData, type QueueJobReturn } from "../src/sweep/queue-common.js";
import { QueueTransport } from "../src/sweep/queue.js";
import { readRuns } from "../reports/read.js";
import { redisMissing, startRedis } from "../test/helpers/redis.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bench = join(root, "bin", "bench.js");
const grid = process.argv[2] && !process.argv[2].startsWith("--") ? resolve(process.argv[2]) : join(root, "benchmarks", "quickstart.yaml");
const resultsIdx = process.argv.indexOf("--results");
const nResults = resultsIdx > 0 ? Number(process.argv[resultsIdx + 1]) : 10_000;
const doSweeps = !process.argv.includes("--no-sweeps");

const doneRuns = (db: string) => {
  const store = new Store(db);
  const n = readRuns(store, { status: "done" }).length;
  store.close();
  return n;
};

function localSweep(dir: string): { seconds: number; runs: number } {
  const db = join(dir, "local.db");
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bench, "sweep", grid, "--db", db, "--cache-dir", join(dir, "cache-local"), "--jobs", "2", "--plain"], { encoding: "utf8" });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`local sweep failed:\n${r.stdout}\n${r.stderr}`);
  return { seconds, runs: doneRuns(db) };
}

async function queueSweep(dir: string, url: string): Promise<{ seconds: number; runs: number; overheadMs: number[] }> {
  const db = join(dir, "queue.db");
  const timings = join(dir, "timings.jsonl");
  // Workers first, as on a cluster that waits for work: their start-up is not the queue's cost.
  const workers = [1, 2].map((i) => spawn(process.execPath, [bench, "worker", "--queue", url, "--cache-dir", join(dir, `cache-w${i}`)], { stdio: "ignore" }));
  await new Promise((r) => setTimeout(r, 3000));
  try {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [bench, "sweep", grid, "--db", db, "--cache-dir", join(dir, "cache-c"), "--queue", url, "--plain"], {
      encoding: "utf8", env: { ...process.env, BENCH_QUEUE_TIMINGS: timings },
    });
    const seconds = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`queue sweep failed:\n${r.stdout}\n${r.stderr}`);
    const rows = readFileSync(timings, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { key: string; roundTripMs: number; ranMs: number });
    return { seconds, runs: doneRuns(db), overheadMs: rows.map((t) => t.roundTripMs - t.ranMs) };
  } finally {
    for (const w of workers) w.kill("SIGKILL");
  }
}

function syntheticPlan(n: number, like: PlannedRun[]): PlannedRun[] {
  return Array.from({ length: n }, (_, i) => ({ ...like[i % like.length], key: `s${String(i).padStart(15, "0")}` }));
}

function syntheticResult(key: string): JobResult {
  const now = new Date().toISOString();
  const metrics = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`m${i}`, i * 0.5]));
  return {
    protocol: PROTOCOL_VERSION, kind: "run", key, status: "done", error: null, backend: { name: "native", tfjsVersion: "4.22.0", threads: 1 }, metrics,
    layers: Array.from({ length: 4 }, (_, i) => ({ name: `l${i}`, kind: "dense", shape: [100, 100], params: 10_000, nonzero: 1000, macs: 10_000, macsEffective: 1000, prunable: true })) as unknown as JobResult["layers"],
    epochs: Array.from({ length: 11 }, (_, i) => ({ phase: i < 8 ? "pretrain" : "finetune", epoch: i, loss: 1, trainAcc: 0.5, valAcc: 0.5, lr: 0.01, seconds: 1 })) as JobResult["epochs"],
    artifacts: [], startedAt: now, finishedAt: now, host: "synthetic", pid: 1,
  };
}

async function writeRate(dir: string, url: string, planned: PlannedRun[]): Promise<{ throughRedis: number; sqliteOnly: number; noOpMs: number[] }> {
  const { grid: g } = await planSweep({ gridFile: grid });
  const plan = syntheticPlan(nResults, planned);

  // SQLite alone: the coordinator's write, one transaction per result.
  const alone = new Store(join(dir, "alone.db"));
  alone.createSweep(g, "", CODE_VERSION, plan);
  let t0 = performance.now();
  for (const p of plan) alone.saveResult(syntheticResult(p.key));
  const sqliteOnly = nResults / ((performance.now() - t0) / 1000);
  alone.close();

  // Through Redis: enqueue, a no-op worker returns the result, the coordinator writes it and removes the job.
  const store = new Store(join(dir, "redis.db"));
  store.createSweep(g, "", CODE_VERSION, plan);
  const worker = new Worker<QueueJobData, QueueJobReturn>(QUEUE_NAME, async (bj) => ({ result: syntheticResult(bj.data.job.key), worker: "no-op", ranMs: 0, takenAt: Date.now() }), {
    connection: { ...parseQueueUrl(url), maxRetriesPerRequest: null }, prefix: "prunebench", concurrency: 50,
  });
  const transport = await QueueTransport.connect(url, join(dir, "artifacts"));
  const jobOf = (p: PlannedRun): Job => ({
    protocol: PROTOCOL_VERSION, kind: "run", key: p.key, denseKey: p.denseKey, config: p.config, backend: "auto", paths: { cacheDir: "", artifactsDir: "" },
    versions: { code: CODE_VERSION, resultsRevision: RESULTS_REVISION, dataFingerprint: p.dataFingerprint },
  });
  // The queue's own floor: one no-op job at a time, enqueue to result in hand (no training process, no artifacts).
  const noOpMs: number[] = [];
  for (const p of syntheticPlan(200, planned).map((x, i) => ({ ...x, key: `n${String(i).padStart(15, "0")}` }))) {
    const t = performance.now();
    await transport.run(jobOf(p));
    noOpMs.push(performance.now() - t);
    await transport.ack(jobOf(p));
  }
  t0 = performance.now();
  let inFlight = 0;
  const limit = 500;
  const waiters: Array<() => void> = [];
  await Promise.all(plan.map(async (p) => {
    if (inFlight >= limit) await new Promise<void>((r) => waiters.push(r));
    inFlight++;
    const job = jobOf(p);
    const r = await transport.run(job);
    store.saveResult(r);
    await transport.ack(job);
    inFlight--;
    waiters.shift()?.();
  }));
  const throughRedis = nResults / ((performance.now() - t0) / 1000);
  await transport.close();
  await worker.close();
  store.close();
  return { throughRedis, sqliteOnly, noOpMs };
}

const missing = redisMissing();
if (missing) {
  console.error(`bench:scale needs redis-server: ${missing}`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), "prunebench-scale-"));
const redis = await startRedis();
try {
  console.log(`grid ${grid}; load average at start ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  if (doSweeps) {
    const local = localSweep(dir);
    console.log(`local --jobs 2:          ${local.runs} runs in ${local.seconds.toFixed(1)} s = ${Math.round((local.runs / local.seconds) * 3600)} runs/hour`);
    const q = await queueSweep(dir, redis.url);
    console.log(`queue, 2 workers:        ${q.runs} runs in ${q.seconds.toFixed(1)} s = ${Math.round((q.runs / q.seconds) * 3600)} runs/hour`);
    const o = [...q.overheadMs].sort((a, b) => a - b);
    const mean = o.reduce((a, b) => a + b, 0) / o.length;
    console.log(`queue overhead per run:  mean ${mean.toFixed(1)} ms, median ${o[Math.floor(o.length / 2)].toFixed(1)} ms, max ${o[o.length - 1].toFixed(1)} ms over ${o.length} jobs (target < 50 ms)`);
  }
  const { planned } = await planSweep({ gridFile: grid });
  const w = await writeRate(dir, redis.url, planned);
  const n = [...w.noOpMs].sort((a, b) => a - b);
  console.log(`queue round trip, no-op:  median ${n[Math.floor(n.length / 2)].toFixed(1)} ms, p90 ${n[Math.floor(n.length * 0.9)].toFixed(1)} ms (${n.length} jobs one at a time: enqueue, a worker takes it, result back; no training process, no artifacts)`);
  console.log(`coordinator write rate:  ${Math.round(w.throughRedis)} results/s through Redis (${nResults} synthetic results, each written in one transaction, then its job removed); SQLite alone ${Math.round(w.sqliteOnly)} results/s`);
  console.log(`load average at end ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
} finally {
  await redis.dispose();
  rmSync(dir, { recursive: true, force: true });
}
