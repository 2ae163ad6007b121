/**
 * npm run bench:scaling — sweep-level throughput: the same grid with --jobs 1 and --jobs N (default 2), each into a
 * fresh database and dense cache, printing runs/hour and the speedup; plus worker start-up cost (fork → ready →
 * backend initialized), which a long-lived worker pays once for many runs.
 *
 *   node dist/scripts/bench-scaling.js [grid=benchmarks/quickstart.yaml] [--jobs 2]
 */
import { fork, spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Store } from "../src/store/store.js";
import { readRuns } from "../reports/read.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bench = join(root, "bin", "bench.js");
const grid = process.argv[2] && !process.argv[2].startsWith("--") ? process.argv[2] : join(root, "benchmarks", "quickstart.yaml");
const jobsIdx = process.argv.indexOf("--jobs");
const maxJobs = jobsIdx > 0 ? Number(process.argv[jobsIdx + 1]) : 2;

function sweep(jobs: number): { seconds: number; runs: number; rssMb: number } {
  const dir = mkdtempSync(join(tmpdir(), "prunebench-scaling-"));
  const db = join(dir, "results.db");
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bench, "sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--jobs", String(jobs), "--plain"], { encoding: "utf8" });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`sweep --jobs ${jobs} failed:\n${r.stdout}\n${r.stderr}`);
  const store = new Store(db);
  const runs = readRuns(store, { status: "done" });
  store.close();
  return { seconds, runs: runs.length, rssMb: Math.max(...runs.map((x) => x.metrics.peak_rss_mb ?? 0)) };
}

async function workerStartup(): Promise<{ forkToReadyMs: number; backendInitMs: number }> {
  const t0 = performance.now();
  const child = fork(join(root, "dist", "src", "sweep", "worker.js"), [], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  await new Promise<void>((res) => child.once("message", () => res()));
  const ready = performance.now() - t0;
  child.kill();
  const t1 = performance.now();
  const init = spawnSync(process.execPath, ["--input-type=module", "-e", `const { initBackend } = await import(${JSON.stringify(join(root, "dist", "src", "backend", "index.js"))}); const t = performance.now(); await initBackend(); console.log(performance.now() - t);`], { encoding: "utf8" });
  void t1;
  return { forkToReadyMs: ready, backendInitMs: Number(init.stdout.trim().split("\n").pop()) };
}

/**
 * The machine's own ceiling: training img/s of two identical training processes side by side vs one alone. Cores
 * that share caches, memory bandwidth or a physical core (cloud vCPUs) give less than 2x whatever the scheduler does.
 */
async function hardwareCeiling(): Promise<{ alone: number; together: number }> {
  const script = join(root, "dist", "scripts", "bench-throughput.js");
  const args = [script, "--child", "--backend", "auto", "--arch", "lenet5", "--steps", "100"];
  const imgPerS = (out: string) => JSON.parse(out.trim().split("\n").pop()!).train_img_per_s as number;
  const once = () => new Promise<number>((res, rej) => {
    const c = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    c.stdout.on("data", (d) => (out += d));
    c.on("exit", (code) => (code === 0 ? res(imgPerS(out)) : rej(new Error(`throughput child exited ${code}`))));
  });
  const alone = await once();
  const pair = await Promise.all(Array.from({ length: maxJobs }, once));
  return { alone, together: pair.reduce((a, b) => a + b, 0) };
}

const ceiling = await hardwareCeiling();
console.log(JSON.stringify({ measure: "hardware-ceiling", arch: "lenet5", alone_img_per_s: Math.round(ceiling.alone), together_img_per_s: Math.round(ceiling.together), processes: maxJobs, ratio: Number((ceiling.together / ceiling.alone).toFixed(2)) }));
const startup = await workerStartup();
console.log(JSON.stringify({ measure: "worker-startup", fork_to_ready_ms: Math.round(startup.forkToReadyMs), backend_init_ms: Math.round(startup.backendInitMs) }));
const one = sweep(1);
console.log(JSON.stringify({ measure: "sweep", jobs: 1, runs: one.runs, seconds: Math.round(one.seconds), runs_per_hour: Math.round((one.runs / one.seconds) * 3600), worker_peak_rss_mb: Math.round(one.rssMb) }));
const many = sweep(maxJobs);
console.log(JSON.stringify({ measure: "sweep", jobs: maxJobs, runs: many.runs, seconds: Math.round(many.seconds), runs_per_hour: Math.round((many.runs / many.seconds) * 3600), worker_peak_rss_mb: Math.round(many.rssMb) }));
console.log(`\n${grid}: --jobs 1 ${one.seconds.toFixed(0)} s, --jobs ${maxJobs} ${many.seconds.toFixed(0)} s → ${(one.seconds / many.seconds).toFixed(2)}x runs/hour on ${availableParallelism()} cores` +
  `; worker start-up ${startup.forkToReadyMs.toFixed(0)} ms + backend init ${startup.backendInitMs.toFixed(0)} ms (paid once per worker, not per run); peak worker RSS ${many.rssMb.toFixed(0)} MiB` +
  `\nceiling of this machine: ${maxJobs} training processes side by side reach ${(ceiling.together / ceiling.alone).toFixed(2)}x the img/s of one alone`);
