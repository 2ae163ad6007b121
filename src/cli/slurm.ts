/**
 * `bench slurm`: an sbatch array whose tasks each start one queue worker (`bench worker --queue`). Slurm only starts
 * workers here; the queue hands out runs and the coordinator (`bench sweep --queue`) writes results, so a task that
 * dies costs its run a retry, not the sweep.
 */
import { spawnSync } from "node:child_process";
import { chmodSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { catalog } from "../catalog.js";
import { loadGrid } from "../grid/index.js";
import { writeOutput } from "../io/paths.js";
import { PRUNEBENCH_VERSION } from "../core/version.js";
import { parseQueueUrl } from "../sweep/queue-common.js";
import { UsageError } from "./errors.js";

export interface SlurmScriptOptions {
  gridFile: string;
  gridName: string;
  queue: string;
  array: number;
  cpusPerTask: number;
  gpusPerTask: number;
  /** With GPUs: training processes per GPU (the worker runs gpusPerTask x this many at a time). */
  jobsPerGpu?: number;
  partition?: string;
  time?: string;
  /** Folder the tasks start in: the project whose bench they run. */
  projectDir: string;
  /** The node binary and bench entry point the tasks run: the ones running now, so workers match the coordinator's code. */
  node: string;
  bench: string;
  /** Folder for the tasks' log files (Slurm does not create it). */
  logDir: string;
  /** Seconds without a job after which a task's worker exits (0: it serves until scancel). */
  exitIdle: number;
}

/** A word for a POSIX shell: single-quoted, so spaces, $ and backticks in paths stay literal. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function slurmScript(o: SlurmScriptOptions): string {
  const job = `prunebench-${o.gridName.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
  const lines = [
    "#!/bin/bash",
    `# Written by \`bench slurm\` (prunebench ${PRUNEBENCH_VERSION}) for ${o.gridFile}: ${o.array} array task(s), each one queue worker`,
    `# running ${o.cpusPerTask} run(s) at a time. Results reach the database through the coordinator:`,
    `#   bench sweep ${shellQuote(o.gridFile)} --queue ${shellQuote(o.queue)}`,
    `#SBATCH --job-name=${job}`,
    `#SBATCH --array=0-${o.array - 1}`,
    "#SBATCH --ntasks=1",
    `#SBATCH --cpus-per-task=${o.cpusPerTask}`,
    ...(o.gpusPerTask > 0 ? [`#SBATCH --gpus-per-task=${o.gpusPerTask}`] : []),
    ...(o.partition ? [`#SBATCH --partition=${o.partition}`] : []),
    ...(o.time ? [`#SBATCH --time=${o.time}`] : []),
    // %A/%a: the array's job id and the task's index, so each task keeps its own log.
    `#SBATCH --output=${o.logDir}/${job}-%A_%a.log`,
    "set -euo pipefail",
    `cd ${shellQuote(o.projectDir)}`,
    // exec: Slurm's signals at the time limit or scancel reach the worker itself, which gives its job back to the queue.
    // With GPUs, Slurm sets CUDA_VISIBLE_DEVICES to the task's list; --gpus all binds each training process to one of them.
    `exec ${shellQuote(o.node)} ${shellQuote(o.bench)} worker --queue ${shellQuote(o.queue)} ${o.gpusPerTask > 0 ? `--gpus all --jobs-per-gpu ${slurmJobsPerGpu(o)}` : `--jobs ${o.cpusPerTask}`}${o.exitIdle > 0 ? ` --exit-idle ${o.exitIdle}` : ""}`,
  ];
  return `${lines.join("\n")}\n`;
}

/** Training processes per GPU of a task: as asked, else the task's CPUs shared among its GPUs (at least 1). */
export function slurmJobsPerGpu(o: Pick<SlurmScriptOptions, "cpusPerTask" | "gpusPerTask" | "jobsPerGpu">): number {
  return o.jobsPerGpu ?? Math.max(1, Math.floor(o.cpusPerTask / Math.max(1, o.gpusPerTask)));
}

/** The queue's own parser (bad input names the flag), plus a warning the cluster's nodes make worth giving. */
export function checkQueueUrl(url: string): void {
  const { host } = parseQueueUrl(url);
  if (host === "localhost" || host === "::1" || host.startsWith("127.")) {
    process.stderr.write(`note: --queue ${url} names this machine; tasks on other nodes will not reach it (give the host name or address the nodes see)\n`);
  }
}

/** Slurm's --time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, or UNLIMITED/INFINITE. */
const SLURM_TIME = /^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}|UNLIMITED|INFINITE)$/;

function count(value: string, flag: string, min: number): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${flag} must be ${min === 0 ? "a whole number >= 0" : "a positive integer"}, got "${value}"`);
  }
  return n;
}

export interface SlurmCommandOptions {
  queue: string;
  array: string;
  cpusPerTask: string;
  gpusPerTask: string;
  jobsPerGpu?: string;
  partition?: string;
  time?: string;
  submit?: boolean;
  out?: string;
  force?: boolean;
  exitIdle: string;
}

export default function slurm(gridFile: string, o: SlurmCommandOptions): number {
  checkQueueUrl(o.queue);
  const array = count(o.array, "--array", 1);
  const cpusPerTask = count(o.cpusPerTask, "--cpus-per-task", 1);
  const gpusPerTask = count(o.gpusPerTask, "--gpus-per-task", 0);
  const exitIdle = count(o.exitIdle, "--exit-idle", 0);
  if (o.jobsPerGpu !== undefined && gpusPerTask === 0) throw new UsageError("--jobs-per-gpu needs --gpus-per-task (how many GPUs each task gets)");
  const jobsPerGpu = o.jobsPerGpu === undefined ? undefined : count(o.jobsPerGpu, "--jobs-per-gpu", 1);
  if (o.partition !== undefined && !/^[A-Za-z0-9_.,-]+$/.test(o.partition)) {
    throw new UsageError(`--partition "${o.partition}" is not a partition name (letters, digits, _ . - and commas between several)`);
  }
  if (o.time !== undefined && !SLURM_TIME.test(o.time)) {
    throw new UsageError(`--time "${o.time}" is not a Slurm time; give minutes, H:M:S, D-H, D-H:M:S or UNLIMITED, e.g. 2-00:00:00`);
  }
  // A broken grid is found here, not by every task of the array.
  const { grid } = loadGrid(gridFile, catalog());
  const out = o.out ?? `${basename(gridFile).replace(/\.[^.]+$/, "")}.sbatch`;
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  const script = slurmScript({
    gridFile, gridName: grid.name, queue: o.queue, array, cpusPerTask, gpusPerTask, ...(jobsPerGpu ? { jobsPerGpu } : {}), partition: o.partition, time: o.time,
    projectDir: root, node: process.execPath, bench: resolve(root, "bin/bench.js"), logDir: dirname(resolve(out)), exitIdle,
  });
  writeOutput(out, script, { kind: "sbatch", force: o.force, flag: "--out" });
  chmodSync(out, 0o755);
  const perTask = gpusPerTask > 0 ? `${gpusPerTask * slurmJobsPerGpu({ cpusPerTask, gpusPerTask, jobsPerGpu })} run(s) at a time on ${gpusPerTask} GPU(s)` : `${cpusPerTask} run(s) at a time`;
  process.stdout.write(`wrote ${out}: ${array} worker task(s) x ${perTask}\n`);
  if (!o.submit) {
    process.stderr.write(`submit it with: sbatch ${shellQuote(out)}; then start the coordinator: bench sweep ${shellQuote(gridFile)} --queue ${shellQuote(o.queue)}\n`);
    return 0;
  }
  const r = spawnSync("sbatch", ["--parsable", out], { encoding: "utf8" });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new UsageError(`--submit: sbatch is not on PATH (run this on a Slurm login node, or copy ${out} there and run sbatch ${out})`);
  }
  if (r.status !== 0) throw new UsageError(`sbatch refused ${out} (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`);
  // --parsable prints "jobid" or "jobid;cluster".
  const id = r.stdout.trim().split(";")[0];
  process.stdout.write(`submitted job ${id}\n`);
  process.stderr.write(`now start the coordinator: bench sweep ${shellQuote(gridFile)} --queue ${shellQuote(o.queue)}; ` +
    (exitIdle > 0 ? `each worker exits once no job has come for ${exitIdle} s\n` : `the workers serve until stopped: scancel ${id} once it reports the sweep finished\n`));
  return 0;
}
