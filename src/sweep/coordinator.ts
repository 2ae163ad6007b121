/**
 * The sweep coordinator: grid → plan → store, then every run that is not finished goes to the worker pool, dense
 * models first (each trained once), and each result lands in SQLite as it arrives. The coordinator is the only
 * database writer. A failed run never stops the sweep; a re-run of the same grid skips finished runs.
 */
import { accessSync, constants, mkdirSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";
import { getDataset } from "../../datasets/index.js";
import { DatasetNotFoundError } from "../../datasets/types.js";
import { catalog } from "../catalog.js";
import { countRuns, expandGrid, loadGrid, targetLabel } from "../grid/index.js";
import { importGridArchs } from "../plan/imported-archs.js";
import { type Grid, type Job, type JobResult, type PlannedRun, PROTOCOL_VERSION } from "../core/types.js";
import { checkIterativeReachable, checkTargetsReachable } from "../plan/reachable.js";
import { checkWritableFile, checkWritableFolder } from "../io/paths.js";
import { denseModels, planRuns } from "../plan/plan.js";
import { Store, StoreError } from "../store/store.js";
import { importUnsavedResults, keepUnsavedResult } from "../store/unsaved.js";
import { CODE_VERSION, RESULTS_REVISION } from "../core/version.js";
import { WorkerPool } from "./worker-pool.js";
import { estimatedCost, PriorityLimit } from "./job-order.js";
import type { Transport } from "./transport.js";
import { checkReachable, parseQueueUrl } from "./queue-common.js";
import { fmt, Progress, type ProgressCounts } from "./progress.js";
import { threadsForGpuJob, threadsForJob, type ThreadsSetting } from "./threads.js";
import { gpuWorkerEnv, type GpuPlan } from "./devices.js";

export interface SweepOptions {
  gridFile: string;
  dbPath: string;
  jobs: number;
  backend: string;
  cacheDir: string;
  artifactsDir: string;
  dataDir?: string;
  dryRun?: boolean;
  maxRuns?: number;
  yes?: boolean;
  runTimeoutSec?: number;
  out?: NodeJS.WriteStream;
  plain?: boolean;
  /** Recycle a worker whose resident memory exceeds this many MiB after a run (0 = never). */
  maxWorkerRssMb?: number;
  /** Extra worker environment (tests inject faults through it). */
  workerEnv?: NodeJS.ProcessEnv;
  /** Every result a worker sends back, dense jobs' included (which the database does not keep): `npm run bench:sweep`. */
  onResult?: (result: JobResult) => void;
  /** redis://host:port[/db]: send the runs to queue workers (`bench worker --queue`) instead of forking local ones. */
  queue?: string;
  /** Intra-op threads per job (threads.ts): "auto" shares idle cores among the jobs left; absent: the backend's own. */
  threads?: ThreadsSetting;
  /** Cores that "auto" shares (default: this machine's). */
  cores?: number;
  /** `--gpus`: one worker per slot, each bound to its slot's GPU (devices.ts); `jobs` is then the slot count. */
  gpus?: GpuPlan;
}

export interface SweepSummary {
  sweepId: number | null;
  planned: number;
  skipped: number;
  done: number;
  failed: number;
  diverged: number;
  interrupted: number;
  heldElsewhere: number;
  /** Runs left pending because the sweep was stopped (Ctrl-C / SIGTERM) before launching them. */
  notStarted: number;
  /** The sweep was stopped by Ctrl-C / SIGTERM (exit code 130), whether or not a run had to be interrupted. */
  stopped: boolean;
  /** Why the sweep stopped early because the disk under the database was full (exit code 74); null when it did not. */
  diskFull: string | null;
  /** Finished runs whose results the full database could not take (kept in `keptIn`, or to run again). */
  unsaved: number;
  /** Where those results wait for the next sweep; null when none could be kept (they run again). */
  keptIn: string | null;
  /** Results kept by an earlier sweep while the disk was full, saved by this one (not run again). */
  imported: number;
  seconds: number;
}

export class SweepInputError extends Error {
  override name = "SweepInputError";
}

const LEASE_MS = 60_000;

/** The data fingerprint of runs whose dataset is not on this machine, in a dry run (which never downloads). */
export const UNKNOWN_FINGERPRINT = "not-on-this-machine";

export async function planSweep(options: Pick<SweepOptions, "gridFile" | "dataDir" | "maxRuns" | "yes" | "dryRun">): Promise<{ grid: Grid; gridText: string; planned: PlannedRun[] }> {
  const cat = catalog();
  const { grid, text: gridText, lines } = loadGrid(options.gridFile, cat);
  await importGridArchs(grid, lines, cat);
  checkTargetsReachable(grid, lines, cat);
  // Counted, not expanded: a 10^6-run grid must be refused before it costs a gigabyte and the datasets are read.
  const runCount = countRuns(grid);
  const maxRuns = options.maxRuns ?? 1000;
  if (runCount > maxRuns && !options.yes) {
    throw new SweepInputError(`${options.gridFile}: the grid expands to ${runCount} runs, more than --max-runs ${maxRuns}; pass --yes to run them all or raise --max-runs`);
  }
  const configs = expandGrid(grid);
  // A target an iterative method cannot reach in its rounds is bad input (exit 2), found before any dataset is read.
  checkIterativeReachable(grid, lines, cat);
  const fingerprints = new Map<string, string>();
  // Hashed from the files, not decoded: the workers decode what they use. A dry run touches neither the network
  // nor the cache, so a dataset that would be downloaded has no fingerprint yet, and its runs no key.
  for (const name of grid.datasets) {
    try {
      fingerprints.set(name, await getDataset(name).fingerprint({ dataDir: options.dataDir, download: !options.dryRun }));
    } catch (e) {
      if (!(options.dryRun && e instanceof DatasetNotFoundError)) throw e;
      fingerprints.set(name, UNKNOWN_FINGERPRINT);
    }
  }
  return { grid, gridText, planned: planRuns(configs, fingerprints, cat) };
}

export async function runSweep(options: SweepOptions): Promise<SweepSummary> {
  // On GPUs the workers are the slots (gpus x jobs per GPU), whatever --jobs said (the command line checks they agree).
  if (options.gpus) options = { ...options, jobs: options.gpus.slots.length };
  const out = options.out ?? process.stdout;
  const started = Date.now();
  // A mistyped or unreachable queue address is bad input, said before anything is planned or created.
  if (options.queue) await checkReachable(parseQueueUrl(options.queue), options.queue);
  // A backend asked for by name that cannot start here would fail every run, one by one: say so before planning.
  if (options.backend === "node" || options.backend === "native" || options.backend === "torch") await (await import("../backend/index.js")).checkBackendAvailable(options.backend);
  const { grid, gridText, planned } = await planSweep(options);
  const summary: SweepSummary = {
    sweepId: null, planned: planned.length, skipped: 0, done: 0, failed: 0, diverged: 0, interrupted: 0, heldElsewhere: 0, notStarted: 0, stopped: false,
    diskFull: null, unsaved: 0, keptIn: null, imported: 0, seconds: 0,
  };
  if (options.dryRun) {
    printPlan(out, planned);
    return summary;
  }

  // Every place a sweep writes must be writable before the first run starts, or every run would fail at its end;
  // checked before anything is created (mkdir -p under /proc would wait forever), the database opened first so
  // that a database that cannot be used leaves no folders behind.
  checkWritableFile(options.dbPath, "--db");
  const folders = [[options.artifactsDir, "--artifacts-dir"], [options.cacheDir, "--cache-dir"]] as const;
  for (const [dir, what] of folders) checkWritableFolder(dir, what);
  const store = new Store(options.dbPath);
  try {
    store.checkWritable();
    for (const [dir, what] of folders) {
      try {
        mkdirSync(dir, { recursive: true });
        accessSync(dir, constants.W_OK);
      } catch (e) {
        throw new SweepInputError(`${what} ${dir} cannot be written: ${(e as Error).message}`);
      }
    }
  } catch (e) {
    store.close();
    throw e;
  }
  const owner = `${hostname()}:${process.pid}:${started}`;
  let pool: Transport;
  try {
    pool = options.queue
      ? await (await import("./queue.js")).QueueTransport.connect(options.queue, options.artifactsDir)
      : new WorkerPool({
        size: options.jobs, jobTimeoutSec: options.runTimeoutSec, env: options.workerEnv, maxWorkerRssMb: options.maxWorkerRssMb,
        ...(options.gpus ? { slotEnv: options.gpus.slots.map((s) => gpuWorkerEnv(s.gpu)) } : {}),
      });
  } catch (e) {
    store.close();
    throw e;
  }
  // Queued jobs outlive this process: a stop detaches from them (they go on running; the same command collects them).
  const detach = pool.detachable === true;
  let stopping: "no" | "graceful" | "hard" = "no";
  // Read through a function: the SIGINT handler changes it between awaits, which flow analysis cannot see.
  const stopMode = () => stopping;
  // Dense jobs that only wait for another process's lease, by dense key: a graceful stop lets training finish, but
  // a job with nothing to finish (the wait may last a whole lease, or forever for a sweep on another host) stops at once.
  const waitingDense = new Map<string, AbortController>();
  // Counted apart from `stopping`: a disk-full stop is already graceful, and the user's first Ctrl-C after it must not
  // count as their second (which kills the workers and loses what they are finishing).
  let signals = 0;
  const onSigint = () => {
    summary.stopped = true;
    if (detach) {
      if (stopping === "hard") return;
      stopping = "hard";
      out.write("\nstopping: detaching from the queue; its workers go on, and the same command run again collects their results\n");
      void pool.close("kill");
      return;
    }
    if (++signals === 1) {
      stopping = "graceful";
      out.write("\nstopping: letting running runs finish (Ctrl-C again to stop now; unfinished runs are marked interrupted)\n");
      for (const waiting of waitingDense.values()) waiting.abort("sweep stopped (Ctrl-C / SIGTERM) while waiting for the dense model");
    } else {
      stopping = "hard";
      void pool.close("kill");
    }
  };
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigint);
  const renew = setInterval(() => store.renewLeases(owner, LEASE_MS), LEASE_MS / 4);
  let completed = false;
  // A full disk stops the sweep as one Ctrl-C does: what runs finishes (its result kept if it cannot be saved).
  const stopOnDiskFull = (e: unknown): void => {
    if (!(e instanceof StoreError && e.fault === "full")) throw e;
    summary.diskFull ??= e.message;
    if (stopping === "no") stopping = "graceful";
  };
  store.onClaimRefusedByFullDisk = stopOnDiskFull;
  try {
    summary.sweepId = store.createSweep(grid, gridText, CODE_VERSION, planned);
    store.reclaimDeadOwners(hostname());
    summary.imported = importUnsavedResults(store, options.dbPath).imported.length;
    const statuses = store.statusOf(planned.map((p) => p.key));
    const todo = planned.filter((p) => !["done", "diverged"].includes(statuses.get(p.key)!));
    summary.skipped = planned.length - todo.length;
    const counts: ProgressCounts = { total: planned.length, done: 0, failed: 0, running: 0, skipped: summary.skipped };
    const progress = new Progress(out, options.jobs, options.plain);
    const gpus = options.gpus ? ` (GPU ${options.gpus.gpus.join(", ")}: ${options.gpus.jobsPerGpu} each)` : "";
    const where = options.queue ? `through the queue ${options.queue}` : `on ${options.jobs} worker(s)${gpus}`;
    out.write(`sweep ${grid.name} (#${summary.sweepId}): ${planned.length} runs planned, ${summary.skipped} already finished, ${todo.length} to run ${where}; results in ${options.dbPath}\n`);

    // Everything goes to the queue at once (its workers, however many, take what they can); locally, dense models
    // first, then the longest runs first (job-order.ts): no worker waits on a long tail.
    const limiter = new PriorityLimit(detach ? Number.POSITIVE_INFINITY : options.jobs);
    const cat = catalog();
    // Jobs not finished yet (running, queued, or waiting for their dense model): what --threads auto divides the cores by.
    let jobsLeft = denseModels(todo).length + todo.length;
    const limit = <T>(p: PlannedRun, kind: Job["kind"], fn: () => Promise<T>) =>
      limiter.run([kind === "dense" ? 1 : 0, estimatedCost(p, kind, cat)], () => fn().finally(() => { jobsLeft--; }));
    const cores = options.cores ?? availableParallelism();
    // Runs finished per worker (queue only: which machine does what), shown on the progress line.
    const perWorker = new Map<string, number>();
    const onWorker = (w: string) => {
      if (!perWorker.has(w)) perWorker.set(w, 0);
      progress.setWorkers(perWorker);
    };
    const jobFor = (p: PlannedRun, kind: Job["kind"]): Job => ({
      protocol: PROTOCOL_VERSION, kind, key: kind === "dense" ? p.denseKey : p.key, denseKey: p.denseKey, config: p.config, backend: options.backend,
      paths: { cacheDir: options.cacheDir, artifactsDir: options.artifactsDir, dataDir: options.dataDir, ...(grid.archFiles ? { archFiles: grid.archFiles } : {}) },
      versions: { code: CODE_VERSION, resultsRevision: RESULTS_REVISION, dataFingerprint: p.dataFingerprint },
      // A queue's workers are other machines, whose cores this one cannot share out: they run at their own count.
      ...(options.queue ? {} : options.gpus ? { threads: threadsForGpuJob(options.threads) }
        : options.threads !== undefined ? { threads: threadsForJob(options.threads, cores, options.jobs, jobsLeft) } : {}),
    });
    const dense = new Map<string, Promise<JobResult>>();
    // Which backend the workers train on, said once (and again if a worker ends up on another): a sweep on wasm is
    // 5-10x slower than on the native backend, and the user should not have to find that out from the timings.
    let announced = "";
    const announceBackend = (r: JobResult) => {
      if (r.backend === null) return;
      // With --threads auto the count changes from job to job by design (the tail gets more): said once, as the rule.
      const auto = options.threads === "auto" && r.backend.name === "native" && !options.gpus;
      const said = `${r.backend.name}/${auto ? "auto" : r.backend.threads}/${r.backend.device ?? ""}`;
      if (said === announced) return;
      announced = said;
      const slow = r.backend.name === "wasm" || r.backend.name === "cpu" ? "; the native backend is 5-10x faster: `bench doctor` says how to get it" : "";
      const threads = auto ? `threads: ${cores} core(s) shared among the jobs left (1 per worker while every worker is busy)` : `${r.backend.threads} thread(s) per worker`;
      const device = r.backend.device && r.backend.device !== "cpu" ? ` on ${r.backend.device}` : "";
      progress.event(`backend: ${r.backend.name}${device}, ${threads}${slow}`, counts);
    };
    const stoppedWhileWaiting = new Set<string>();
    const denseLabel = (p: PlannedRun) => `${p.config.arch}/${p.config.dataset}/seed ${p.config.seed}`;
    const runDense = async (d: PlannedRun, freshWorker: boolean): Promise<JobResult> => {
      const abort = new AbortController();
      const r = await pool.run(jobFor(d, "dense"), {
        freshWorker, signal: abort.signal, onWorker,
        onProgress: (phase, _epoch, _epochs, note) => {
          if (phase === "wait-dense") {
            waitingDense.set(d.denseKey, abort);
            if (stopMode() !== "no") abort.abort("sweep stopped (Ctrl-C / SIGTERM) while waiting for the dense model");
          } else if (phase !== "warning") {
            waitingDense.delete(d.denseKey);
          }
          if (note) progress.event(phase === "warning" ? `warning: ${note}` : note, counts);
        },
      });
      waitingDense.delete(d.denseKey);
      if (stopMode() !== "hard") await pool.ack?.(jobFor(d, "dense"));
      if (abort.signal.aborted) stoppedWhileWaiting.add(d.denseKey);
      options.onResult?.(r);
      announceBackend(r);
      return r;
    };
    for (const d of denseModels(todo)) {
      dense.set(d.denseKey, limit(d, "dense", async () => {
        if (stopping !== "no") return interruptedResult(d.denseKey);
        counts.running++;
        progress.draw(counts, true);
        let r = await runDense(d, false);
        // A shared step is worth a second try before all its runs fail: a killed worker or a deleted cache folder is
        // often a one-off, and the retry runs on a new worker so it inherits nothing from the first.
        // (The queue already tried it on as many workers as its attempts allow.)
        if (r.status === "failed" && !detach && !stoppedWhileWaiting.has(d.denseKey) && stopMode() === "no") {
          progress.event(`dense model ${denseLabel(d)} failed (${firstLine(r.error)}); retrying once on a fresh worker`, counts);
          const first = r.error;
          r = await runDense(d, true);
          if (r.status === "failed") r = { ...r, error: `${r.error}\n(first attempt, on another worker: ${first})` };
        }
        counts.running--;
        if (r.status === "done" && r.metrics.pretrain_seconds > 0) {
          progress.event(`dense model ${denseLabel(d)} pretrained in ${fmt(r.metrics.pretrain_seconds)}`, counts);
        }
        return r;
      }));
    }

    await Promise.all(todo.map(async (p) => {
      const denseResult = await dense.get(p.denseKey)!;
      await limit(p, "run", async () => {
        if (stoppedWhileWaiting.has(p.denseKey)) {
          if (store.claim(p.key, owner, LEASE_MS)) {
            store.markFailed(p.key, "interrupted", `sweep stopped (Ctrl-C / SIGTERM) while waiting for dense model ${denseLabel(p)}`);
            summary.interrupted++;
          }
          return;
        }
        if (stopping !== "no") return;
        if (denseResult.status === "diverged") {
          // The same pretraining would diverge again: these runs are finished, like any diverged run.
          if (store.claim(p.key, owner, LEASE_MS)) {
            store.saveResult({ ...denseResult, kind: "run", key: p.key, error: `dense pretraining diverged: ${denseResult.error}`, epochs: [], layers: [], artifacts: [] });
            summary.diverged++;
            counts.failed++;
            progress.event(`DIVERGED ${describe(p)}: dense pretraining diverged: ${firstLine(denseResult.error)}`, counts);
          }
          return;
        }
        if (denseResult.status !== "done") {
          if (stopMode() === "no" && store.claim(p.key, owner, LEASE_MS)) {
            try {
              store.markFailed(p.key, "failed", `dense pretraining failed: ${denseResult.error}`);
            } catch (e) {
              stopOnDiskFull(e); // the run stays claimed; the finally below or the next sweep releases it
              return;
            }
            summary.failed++;
            counts.failed++;
            progress.event(`FAILED ${describe(p)}: dense pretraining failed`, counts);
          }
          return;
        }
        if (!store.claim(p.key, owner, LEASE_MS)) {
          summary.heldElsewhere++;
          counts.skipped++;
          return;
        }
        counts.running++;
        progress.draw(counts, true);
        // A run's notes (a resumed level, a level checkpoint passed over) are the user's to see, like the dense job's.
        let ranOn: string | undefined;
        const result = await pool.run(jobFor(p, "run"), {
          onWorker: (w) => { ranOn = w; onWorker(w); },
          onProgress: (phase, _epoch, _epochs, note) => { if (note) progress.event(phase === "warning" ? `warning: ${note}` : note, counts); },
        });
        counts.running--;
        options.onResult?.(result);
        announceBackend(result);
        if (stopMode() === "hard" && result.status === "failed") {
          try {
            store.markFailed(p.key, "interrupted", "sweep stopped (Ctrl-C) before this run finished");
          } catch (e) {
            stopOnDiskFull(e);
          }
          summary.interrupted++;
          return;
        }
        const saved = await saveOrKeep(store, options.dbPath, result, summary, stopOnDiskFull);
        // Written (or kept aside, or marked to run again): the queue may forget the job now.
        await pool.ack?.(jobFor(p, "run"));
        if (ranOn !== undefined) {
          perWorker.set(ranOn, (perWorker.get(ranOn) ?? 0) + 1);
          progress.setWorkers(perWorker);
        }
        if (!saved) return;
        const seconds = (Date.parse(result.finishedAt) - Date.parse(result.startedAt)) / 1000;
        if (result.status === "done") {
          summary.done++;
          counts.done++;
          progress.event(`done ${describe(p)}  top-1 ${pct(result.metrics.top1_after)} (dense ${pct(result.metrics.top1_dense)})  ${result.metrics.compression_ratio.toFixed(1)}x  ${fmt(seconds)}${ranOn ? `  on ${ranOn}` : ""}`, counts, seconds);
        } else {
          if (result.status === "diverged") summary.diverged++;
          else summary.failed++;
          counts.failed++;
          progress.event(`${result.status.toUpperCase()} ${describe(p)}: ${firstLine(result.error)}`, counts, seconds);
        }
      });
    }));
    progress.finish();
    if (perWorker.size > 0) out.write(`runs per worker: ${[...perWorker].map(([w, n]) => `${w} ${n}`).join(", ")}\n`);
    // The scheduler counts a refused claim as a run held by another sweep; a full disk refused these.
    summary.heldElsewhere -= store.claimsRefusedByFullDisk;
    summary.notStarted = todo.length - summary.done - summary.failed - summary.diverged - summary.interrupted - summary.heldElsewhere - summary.unsaved;
    completed = true;
  } finally {
    clearInterval(renew);
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigint);
    await pool.close(stopMode() === "hard" ? "kill" : "graceful");
    try {
      const released = store.releaseOwned(owner);
      summary.interrupted += released;
      summary.notStarted -= released;
    } catch (e) {
      // Never let a failure here hide the error that is already on its way out. On a full disk the runs stay
      // `running` under this process's lease, which the next sweep takes back at once (this process is gone by then).
      if (completed) stopOnDiskFull(e);
    } finally {
      store.close();
    }
  }
  summary.seconds = (Date.now() - started) / 1000;
  if (summary.imported > 0) out.write(`${summary.imported} result(s) kept while the disk was full were saved (not run again)\n`);
  if (summary.diskFull) {
    out.write(`sweep stopped: ${summary.diskFull}\n` + (summary.unsaved === 0 ? ""
      : summary.keptIn ? `${summary.unsaved} finished run(s) could not be saved: their results are kept in ${summary.keptIn}, and the next \`bench sweep\` on ${options.dbPath} saves them without running them again\n`
      : `${summary.unsaved} finished run(s) could not be saved (nor kept aside): they are marked interrupted and run again next time\n`));
  }
  out.write(`sweep ${summary.stopped || summary.diskFull ? "stopped" : "finished"} in ${fmt(summary.seconds)}: ${summary.done} done, ${summary.failed} failed, ${summary.diverged} diverged, ` +
    `${summary.interrupted} interrupted, ${summary.skipped} skipped (already finished)${summary.heldElsewhere ? `, ${summary.heldElsewhere} run by another sweep` : ""}` +
    `${summary.notStarted > 0 ? `, ${summary.notStarted} not started (run the same command again to finish the grid)` : ""}\n`);
  return summary;
}

/** Waits before each retry of a result the full disk refused: a log rotation or a deleted checkpoint may free space. */
const SAVE_RETRY_MS = [250, 500, 1000, 2000];

/**
 * Save a finished run's result. When the disk stays full through the retries, the sweep stops launching runs, the
 * result goes to the unsaved-results file, and the run becomes `interrupted` (never left `running`) so the next sweep
 * takes it back at once. Returns whether the result is in the database.
 */
async function saveOrKeep(store: Store, dbPath: string, result: JobResult, summary: SweepSummary, stopOnDiskFull: (e: unknown) => void): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      store.saveResult(result);
      return true;
    } catch (e) {
      if (!(e instanceof StoreError && e.fault === "full")) throw e;
      // Only a disk that stays full stops the sweep: space freed meanwhile is not worth an exit code.
      if (attempt === SAVE_RETRY_MS.length) {
        stopOnDiskFull(e);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, SAVE_RETRY_MS[attempt]));
    }
  }
  store.releaseSpaceReserve();
  const kept = keepUnsavedResult(dbPath, result);
  summary.unsaved++;
  summary.keptIn ??= kept;
  try {
    store.markFailed(result.key, "interrupted", kept
      ? `finished, but the disk was full: its result waits in ${kept} and is saved by the next sweep`
      : "finished, but the disk was full and its result could not be kept: it runs again");
  } catch {
    // Even this small write did not fit: the run stays `running` under this process's lease, which the next sweep takes back.
  }
  return false;
}

function interruptedResult(key: string): JobResult {
  const now = new Date().toISOString();
  return { protocol: PROTOCOL_VERSION, kind: "dense", key, status: "failed", error: "sweep stopped", backend: null, metrics: {}, layers: [], epochs: [], artifacts: [], startedAt: now, finishedAt: now, host: hostname(), pid: process.pid };
}

function describe(p: PlannedRun): string {
  const t = p.config.target;
  return `${p.config.dataset}/${p.config.arch} ${p.methodLabel} ${targetLabel(t)} seed ${p.config.seed} [${p.key}]`;
}

const pct = (x: number | undefined) => (x === undefined ? "?" : `${(100 * x).toFixed(2)}%`);
const firstLine = (s: string | null) => (s ?? "").split("\n")[0];

function printPlan(out: NodeJS.WriteStream, planned: readonly PlannedRun[]): void {
  const dense = denseModels(planned).length;
  out.write(`${planned.length} runs, ${dense} dense model(s) to pretrain\n`);
  const absent = [...new Set(planned.filter((p) => p.dataFingerprint === UNKNOWN_FINGERPRINT).map((p) => p.config.dataset))];
  if (absent.length > 0) {
    out.write(`not on this machine (a sweep would download them; a dry run does not): ${absent.join(", ")}; their runs' keys depend on the files, shown as ?\n`);
  }
  const keyOf = (p: PlannedRun, key: string) => (p.dataFingerprint === UNKNOWN_FINGERPRINT ? "?" : key);
  out.write(`${"key".padEnd(17)}${"dataset".padEnd(20)}${"arch".padEnd(10)}${"method".padEnd(28)}${"target".padEnd(20)}seed  dense\n`);
  for (const p of planned) {
    const t = p.config.target;
    out.write(`${keyOf(p, p.key).padEnd(17)}${p.config.dataset.padEnd(20)}${p.config.arch.padEnd(10)}${p.methodLabel.padEnd(28)}${targetLabel(t).padEnd(20)}${String(p.config.seed).padEnd(6)}${keyOf(p, p.denseKey)}\n`);
  }
}
