/**
 * A worker process: receives jobs, runs them one after another (so start-up is paid once per worker), and sends
 * back results. Transport: node IPC when forked by the local pool, else JSON lines on stdin/stdout (so any
 * launcher — a queue consumer, ssh, Slurm — can drive it).
 */
import { appendFileSync, rmSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { executeJob } from "../run/execute-job.js";
import type { CoordinatorMessage, WorkerMessage } from "./protocol.js";
import { PROTOCOL_VERSION } from "../core/types.js";
import { boundGpu } from "./devices.js";

// The coordinator decides what stops, not the worker. Forked workers have a process group of their own (pool.ts), so a
// terminal's Ctrl-C does not reach them; this covers launchers that signal a whole group anyway.
process.on("SIGINT", () => {});

// A forked worker whose coordinator died (SIGKILL, OOM) must stop at once: its result has nowhere to go, and it
// must not keep writing artifacts. The IPC "disconnect" event only fires when the event loop polls, which a training
// loop may not do for a long time, so the parent pid is also checked at every progress point (the orphan is
// re-parented, so process.ppid changes).
const parentPid = process.ppid;
const orphaned = (): boolean => process.send !== undefined && (process.ppid !== parentPid || !process.connected);
const exitIfOrphaned = (): void => {
  if (orphaned()) process.exit(0);
};
if (process.send) {
  // A send to a coordinator that just died fails with EPIPE / ERR_IPC_CHANNEL_CLOSED: exit quietly, not with a trace.
  process.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE" || e.code === "ERR_IPC_CHANNEL_CLOSED") process.exit(0);
    throw e;
  });
  setInterval(exitIfOrphaned, 1000).unref();
}

const send: (m: WorkerMessage) => void = process.send
  ? (m) => {
      exitIfOrphaned();
      process.send!(m);
    }
  : (m) => process.stdout.write(`${JSON.stringify(m)}\n`);

let queue = Promise.resolve();
// Fault injection for the reliability tests: a slow machine (every epoch takes this much longer), so that a test can
// act while a run is surely mid-training however fast the backend is.
const epochDelayMs = Number(process.env.BENCH_FAULT_EPOCH_DELAY_MS ?? 0);

/**
 * Fault injection for the reliability tests, in a dense job's pretraining: `env` names a counter file shared by all
 * workers (one byte per fault injected), so a fault strikes a given number of times across worker processes.
 */
function injectDenseFault(env: string, times: number, fault: () => void): void {
  const counter = process.env[env];
  if (!counter) return;
  const struck = statSync(counter, { throwIfNoEntry: false })?.size ?? 0;
  if (struck >= times) return;
  appendFileSync(counter, "x");
  fault();
}

function handle(message: CoordinatorMessage): void {
  if (message.type === "exit") {
    queue.then(() => process.exit(0));
    return;
  }
  const { job } = message;
  queue = queue.then(async () => {
    exitIfOrphaned();
    if (job.protocol !== PROTOCOL_VERSION) throw new Error(`job protocol ${job.protocol}, worker speaks ${PROTOCOL_VERSION}`);
    const result = await executeJob(job, (phase, epoch, epochs, note) => {
      send({ type: "progress", key: job.key, phase, epoch, epochs, ...(note ? { note } : {}) });
      if (phase === "warning") process.stderr.write(`warning: ${note}\n`);
      if (epoch === 0) return;
      // For the reliability tests: a log of every training epoch a run's worker went through (appended, so it spans
      // workers and sweeps), to show which rounds a resumed run did not train again.
      const epochLog = process.env.BENCH_FAULT_EPOCH_LOG;
      if (epochLog && job.kind !== "dense" && (phase === "pretrain" || phase === "finetune")) appendFileSync(epochLog, `${job.key} ${phase} ${epoch}\n`);
      // Fault injection: die like an OOM kill right after an iterative run finished (and saved) level N.
      if (phase === "level" && process.env.BENCH_FAULT_KILL_AFTER_LEVEL === String(epoch)) process.kill(process.pid, "SIGKILL");
      if (epochDelayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, epochDelayMs);
      if (job.kind === "dense" && phase === "pretrain") {
        // Die like an OOM kill in the middle of pretraining a shared dense model ...
        injectDenseFault("BENCH_FAULT_KILL_DENSE", Number(process.env.BENCH_FAULT_KILL_DENSE_TIMES ?? 1), () => process.kill(process.pid, "SIGKILL"));
        // ... or have someone delete the cache folder under it.
        injectDenseFault("BENCH_FAULT_RM_CACHE", 1, () => rmSync(job.paths.cacheDir, { recursive: true, force: true }));
      }
      // Fault injection for the reliability tests: die like an OOM kill in the middle of a run's training.
      if (process.env.BENCH_FAULT_KILL_RUN === job.key && phase === "finetune") process.kill(process.pid, "SIGKILL");
      // ... and throw like a bug in a method or the training loop would.
      if (process.env.BENCH_FAULT_THROW_RUN === job.key && phase === "finetune") throw new Error(`injected fault (BENCH_FAULT_THROW_RUN) in ${phase} epoch ${epoch}`);
    });
    // The GPU this worker was bound to is the scheduler's fact, not the backend's: recorded here, beside the device.
    const gpu = result.backend ? boundGpu(process.env, result.backend.device) : null;
    const recorded = gpu !== null && result.backend ? { ...result, backend: { ...result.backend, gpu } } : result;
    send({ type: "result", result: recorded, rssMb: process.memoryUsage().rss / 2 ** 20 });
  });
}

if (process.send) {
  process.on("message", (m) => handle(m as CoordinatorMessage));
  process.on("disconnect", () => process.exit(0));
} else {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => { if (line.trim()) handle(JSON.parse(line)); });
  lines.on("close", () => queue.then(() => process.exit(0)));
}
send({ type: "ready", pid: process.pid });
