/**
 * npm run bench:sweep — what a whole sweep costs: the ShrinkBench protocol grid (benchmarks/shrinkbench-fmnist.yaml,
 * 150 runs and 6 dense models) into a fresh temporary database and dense cache on 2 workers, printing its wall time,
 * its CPU-seconds (workers and coordinator), the ratio to ShrinkBench's own 1,227 s (the goal: at most half), and
 * where the CPU went per phase, from the cpu_* fields every job records (src/run/cpu-clock.ts): worker start-up, set-up,
 * dense pretraining, pruning/scoring, fine-tuning, evaluation, latency timing, saving; plus the worker CPU no job
 * accounts for, the coordinator's, and the worker-seconds the pool left idle.
 *
 * On a shared machine the wall time measures the neighbours; compare CPU-seconds per phase on a subset instead:
 *
 *   node dist/scripts/bench-sweep.js [grid] [--jobs 2] [--seeds 0] [--compressions 8] [--archs mlp] [--methods 2]
 *        [--cache-dir DIR] [--backend auto] [--keep]
 *
 * --seeds / --compressions / --archs replace the grid's lists; --methods N keeps its first N methods; --cache-dir
 * reuses (and fills) a dense cache, so a second run measures the pruning runs without pretraining; --keep leaves the
 * temporary folder (database, artifacts) in place.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument } from "yaml";
import type { JobResult } from "../src/core/types.js";
import { CPU_PHASES } from "../src/run/cpu-clock.js";
import { runSweep } from "../src/sweep/coordinator.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SHRINKBENCH_SECONDS = 1227;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const first = process.argv[2];
const gridFile = resolve(first && !first.startsWith("--") ? first : join(root, "benchmarks", "shrinkbench-fmnist.yaml"));
const jobs = Number(arg("jobs") ?? 2);
const dir = mkdtempSync(join(tmpdir(), "prunebench-sweep-"));

// The subset: the grid's own file with some of its lists replaced, so everything else (configs, keys) stays as it is.
const doc = parseDocument(readFileSync(gridFile, "utf8"));
const list = (s: string) => s.split(",").map((x) => (/^-?\d+(\.\d+)?$/.test(x) ? Number(x) : x));
for (const key of ["seeds", "compressions", "archs"]) {
  const v = arg(key);
  if (v !== undefined) doc.set(key, list(v));
}
const methods = arg("methods");
if (methods !== undefined) doc.set("methods", (doc.toJS().methods as unknown[]).slice(0, Number(methods)));
const subset = ["seeds", "compressions", "archs", "methods"].some((k) => arg(k) !== undefined);
const grid = join(dir, "grid.yaml");
writeFileSync(grid, doc.toString());

/** CPU seconds (user + system) of this process's children that have ended and been waited for: the workers. */
function childrenCpuSeconds(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the command name: field 3 is index 0, so cutime (16) and cstime (17) are indices 13 and 14.
  const ticks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
  return (Number(fields[13]) + Number(fields[14])) / ticks;
}
const ownCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const results: JobResult[] = [];
const load0 = loadavg()[0];
const children0 = childrenCpuSeconds();
const own0 = ownCpu();
const t0 = performance.now();
const summary = await runSweep({
  gridFile: grid, dbPath: join(dir, "results.db"), jobs, backend: arg("backend") ?? "auto", cacheDir: arg("cache-dir") ?? join(dir, "cache"),
  artifactsDir: join(dir, "artifacts"), yes: true, plain: true, out: process.stderr, onResult: (r) => results.push(r),
});
const wall = (performance.now() - t0) / 1000;
const coordinator = ownCpu() - own0;
const workers = childrenCpuSeconds() - children0;
const load1 = loadavg()[0];

const sum = (rs: readonly JobResult[], name: string) => rs.reduce((n, r) => n + (r.metrics[name] ?? 0), 0);
const phases = CPU_PHASES.map((p) => [p, sum(results, `cpu_${p}_seconds`)] as const);
const recorded = phases.reduce((n, [, s]) => n + s, 0);
// Worker-seconds the pool had no job on: the sweep's span times the workers, less the jobs' own spans.
const busy = results.reduce((n, r) => n + (Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000, 0);
const idle = Math.max(0, wall * jobs - busy);
const total = workers + coordinator;
const backends = [...new Set(results.flatMap((r) => (r.backend ? [`${r.backend.name}/${r.backend.threads}`] : [])))];

const labels: Record<string, string> = {
  startup: "worker start-up (imports, backend)", setup: "set-up (data, model, dense checkpoint, counts)", pretrain: "dense pretraining",
  prune: "pruning / scoring", finetune: "fine-tuning", eval: "evaluation", latency: "latency timing", save: "saving artifacts",
};
const pct = (s: number) => `${((100 * s) / total).toFixed(1)}%`.padStart(6);
const line = (label: string, s: number) => console.log(`  ${label.padEnd(48)}${s.toFixed(1).padStart(8)} s ${pct(s)}`);
console.log(`${gridFile}${subset ? ` (subset: ${["seeds", "compressions", "archs", "methods"].filter((k) => arg(k) !== undefined).map((k) => `${k} ${arg(k)}`).join(", ")})` : ""}`);
console.log(`${summary.done} runs done (${summary.failed} failed) and ${results.filter((r) => r.kind === "dense").length} dense models on ${jobs} workers (${backends.join(", ") || "?"}), ${availableParallelism()} cores, load average ${load0.toFixed(2)} at the start, ${load1.toFixed(2)} at the end`);
console.log(`wall ${wall.toFixed(1)} s = ${(wall / SHRINKBENCH_SECONDS).toFixed(3)} x ShrinkBench's ${SHRINKBENCH_SECONDS} s (goal <= 0.5${subset ? "; a subset: compare CPU-seconds with the same subset, not this ratio" : ""})`);
console.log(`CPU ${total.toFixed(1)} s: workers ${workers.toFixed(1)} s, coordinator ${coordinator.toFixed(1)} s`);
for (const [p, s] of phases) line(labels[p], s);
line("workers, outside any job (IPC, exit)", workers - recorded);
line("coordinator (planning, database, progress)", coordinator);
console.log(`pool idle: ${idle.toFixed(1)} worker-seconds of ${(wall * jobs).toFixed(1)} (${((100 * idle) / (wall * jobs)).toFixed(1)}%)`);
console.log(JSON.stringify({
  measure: "sweep", grid: gridFile, subset, jobs, runs: summary.done, failed: summary.failed, wall_s: wall, cpu_s: total, workers_cpu_s: workers,
  coordinator_cpu_s: coordinator, ratio_to_shrinkbench: wall / SHRINKBENCH_SECONDS, idle_worker_s: idle, load_start: load0, load_end: load1,
  ...Object.fromEntries(phases.map(([p, s]) => [`cpu_${p}_s`, s])),
}));
if (process.argv.includes("--keep")) console.log(`kept: ${dir}`);
else rmSync(dir, { recursive: true, force: true });
