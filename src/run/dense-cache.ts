/**
 * The dense pretrained model, trained once per dense key and shared by every run that needs it, also when several
 * workers (or sweeps, or machines on a shared folder) ask at once: the first takes a lease (a proper-lockfile mkdir
 * lock whose mtime it renews while it trains), the others wait for the checkpoint to appear. A lease that is not
 * renewed expires and is taken over, whoever left it: a dead process, a live process that reused a dead one's pid,
 * another host. A lease left on this host by a process that is gone is taken over at once.
 *
 * A cached checkpoint is only used if its checksum and its shapes match the model; otherwise it is discarded (by the
 * lease holder only, so a concurrent retrain is never deleted) and retrained, with a warning.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import lockfile from "proper-lockfile";
import type { EpochRecord } from "../core/types.js";
import { readCheckpoint, writeCheckpoint, CheckpointError } from "./checkpoint.js";
import { restore, snapshot, type Model } from "../train/model.js";

export interface DenseOutcome {
  epochs: EpochRecord[];
  /** Seconds spent pretraining in this process (0 when the cache was hit). */
  trainedSeconds: number;
  /**
   * What training the dense model cost whoever trained it, kept with the checkpoint so that every run starting from
   * it can be charged for it; null for a checkpoint cached before prunebench recorded it.
   */
  cost: DenseCost | null;
  path: string;
}

/** Seconds of the training steps, images through them, and their training MACs (src/train/train-cost.ts). */
export interface DenseCost { seconds: number; images: number; macs: number }

export interface DenseEvents {
  /** This process waits for another one's lease; `note` is set once the wait is long enough to tell the user. */
  onWait?(note: string | undefined): void;
  /** The lease is ours: this process trains now. */
  onTrain?(): void;
  /** Something the user must hear about: a discarded cache file, a lease lost while training. */
  onWarning?(message: string): void;
}

/** How long a lease lives without renewal. Tests shorten it; proper-lockfile enforces at least 2 s. */
export function denseLeaseMs(): number {
  const raw = process.env.BENCH_DENSE_LEASE_MS;
  if (raw === undefined || raw === "") return 60_000;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms <= 0) throw new Error(`BENCH_DENSE_LEASE_MS must be a positive number of milliseconds, got "${raw}"`);
  return Math.max(ms, 2000);
}

/** A wait shorter than this is normal contention and stays quiet. */
const QUIET_WAIT_MS = 3000;
const NOTE_EVERY_MS = 10_000;
const POLL_MS = 250;

/**
 * `train` receives `keepLeaseAlive`, to be awaited often while training: the lease is renewed by proper-lockfile's
 * timer, which only fires when the event loop gets a turn, and a training loop may not give it one for minutes.
 */
export async function ensureDense(
  cacheDir: string,
  denseKey: string,
  label: string,
  model: Model,
  train: (keepLeaseAlive: () => Promise<void>) => Promise<{ epochs: EpochRecord[] } & DenseCost>,
  events: DenseEvents = {},
): Promise<DenseOutcome> {
  const leaseMs = denseLeaseMs();
  const path = denseCheckpointPath(cacheDir, denseKey);
  const lock = `${path}.lock`;
  const ownerFile = `${path}.lock-owner`;
  let lostLease: Error | null = null;
  const waitStarted = Date.now();
  let lastNote = 0;
  let release: (() => Promise<void>) | null = null;
  for (;;) {
    if (existsSync(path)) {
      const loaded = tryLoad(path, model);
      if ("epochs" in loaded) return { epochs: loaded.epochs, trainedSeconds: 0, cost: loaded.cost, path };
    }
    mkdirSync(dirname(path), { recursive: true }); // also when someone deleted the cache folder while we waited
    release = await tryLease(lock, ownerFile, leaseMs, (e) => {
      lostLease = e;
      events.onWarning?.(`lost the lease on dense model ${label} while training (${e.message}); another process may train it too`);
    });
    if (release) break;
    const now = Date.now();
    const longWait = now - waitStarted >= QUIET_WAIT_MS && now - lastNote >= NOTE_EVERY_MS;
    if (longWait) lastNote = now;
    events.onWait?.(longWait ? `waiting for dense model ${label} (${describeHolder(lock, ownerFile, leaseMs)})` : undefined);
    await sleep(POLL_MS);
  }
  try {
    writeOwner(ownerFile);
    if (existsSync(path)) {
      const loaded = tryLoad(path, model);
      if ("epochs" in loaded) return { epochs: loaded.epochs, trainedSeconds: 0, cost: loaded.cost, path };
      rmSync(path, { force: true });
      events.onWarning?.(`cached dense model ${denseKey} (${label}) ${loaded.problem}; discarded and retrained (${loaded.detail})`);
    }
    events.onTrain?.();
    let lastTurn = Date.now();
    const keepLeaseAlive = async () => {
      if (Date.now() - lastTurn < 100) return;
      lastTurn = Date.now();
      await nextTurn();
    };
    const { epochs, seconds, images, macs } = await train(keepLeaseAlive);
    const cost = { seconds, images, macs };
    const tensors = new Map([...snapshot(model)].map(([name, data]) => [name, { shape: shapeOf(model, name), data }]));
    // An added metadata key keeps the format: older readers ignore it, and older checkpoints read back with cost null.
    writeCheckpoint(path, { tensors, metadata: { denseKey, epochs: JSON.stringify(epochs), cost: JSON.stringify(cost), format: "prunebench-dense-1" } });
    return { epochs, trainedSeconds: seconds, cost, path };
  } finally {
    if (!lostLease) rmSync(ownerFile, { force: true });
    await release().catch(() => {}); // a lost lease has nothing left to release
  }
}

/** Where the dense model for `denseKey` lives under a cache root (a queue worker fills it from the cluster's copy). */
export function denseCheckpointPath(cacheDir: string, denseKey: string): string {
  return join(cacheDir, "dense", `${denseKey}.safetensors`);
}

/** The checkpoint restored into `model`, or what is wrong with it (it is then left untouched on disk). */
function tryLoad(path: string, model: Model): { epochs: EpochRecord[]; cost: DenseCost | null } | { problem: string; detail: string } {
  try {
    const checkpoint = readCheckpoint(path);
    const expected = new Map([...model.params, ...model.state].map(([name, v]) => [name, v.shape]));
    for (const [name, t] of checkpoint.tensors) {
      const shape = expected.get(name);
      if (!shape) throw new CheckpointError(`${path}: tensor ${name} is not part of the model`);
      if (shape.join("x") !== t.shape.join("x")) throw new CheckpointError(`${path}: tensor ${name} has shape [${t.shape}], the model expects [${shape}]`);
    }
    for (const name of expected.keys()) if (!checkpoint.tensors.has(name)) throw new CheckpointError(`${path}: tensor ${name} is missing`);
    const epochs = JSON.parse(checkpoint.metadata.epochs ?? "[]") as EpochRecord[];
    const cost = checkpoint.metadata.cost === undefined ? null : JSON.parse(checkpoint.metadata.cost) as DenseCost;
    restore(model, new Map([...checkpoint.tensors].map(([n, t]) => [n, t.data])));
    return { epochs, cost };
  } catch (e) {
    const message = (e as Error).message;
    if (/checksum mismatch/.test(message)) return { problem: "failed its checksum", detail: message };
    if (/has no checksum/.test(message)) return { problem: "has no checksum", detail: message };
    return { problem: "is unreadable", detail: message };
  }
}

function shapeOf(model: Model, name: string): number[] {
  return (model.params.get(name) ?? model.state.get(name))!.shape;
}

interface Owner { host: string; pid: number }

/** Take the lease if it is free, expired, or left on this host by a process that is gone; else null. */
async function tryLease(lock: string, ownerFile: string, leaseMs: number, onLost: (e: Error) => void): Promise<(() => Promise<void>) | null> {
  const stat = statSync(lock, { throwIfNoEntry: false });
  if (stat) {
    // A plain file is the lock of an older prunebench (it held {pid, host}): same rules, removed by hand.
    const owner = stat.isFile() ? parseOwner(() => readFileSync(lock, "utf8")) : readOwner(ownerFile, stat);
    const expired = Date.now() - stat.mtimeMs > leaseMs;
    if (ownerIsGone(owner) || (stat.isFile() && expired)) rmSync(lock, { recursive: true, force: true });
    else if (stat.isFile()) return null;
  }
  try {
    return await lockfile.lock(lock.slice(0, -".lock".length), {
      stale: leaseMs, update: leaseMs / 4, realpath: false, retries: 0, onCompromised: onLost,
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ELOCKED") return null;
    throw e;
  }
}

/** The owner file is only trusted if it is at least as recent as the lock: else it names an earlier holder. */
function readOwner(ownerFile: string, lockStat: Stats): Owner | null {
  const stat = statSync(ownerFile, { throwIfNoEntry: false });
  if (!stat || stat.mtimeMs + 1000 < lockStat.birthtimeMs) return null;
  return parseOwner(() => readFileSync(ownerFile, "utf8"));
}

function parseOwner(read: () => string): Owner | null {
  try {
    const { host, pid } = JSON.parse(read());
    return typeof host === "string" && Number.isSafeInteger(pid) ? { host, pid } : null;
  } catch {
    return null; // being written, or left half-written: the lease decides
  }
}

function ownerIsGone(owner: Owner | null): boolean {
  if (!owner || owner.host !== hostname()) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

function writeOwner(ownerFile: string): void {
  const tmp = `${ownerFile}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, JSON.stringify({ host: hostname(), pid: process.pid }));
    renameSync(tmp, ownerFile);
  } catch {
    // Only a courtesy for waiters' messages and same-host takeover; the lease itself is the lock.
    rmSync(tmp, { force: true });
  }
}

function describeHolder(lock: string, ownerFile: string, leaseMs: number): string {
  const stat = statSync(lock, { throwIfNoEntry: false });
  if (!stat) return "lock just released";
  const owner = stat.isFile() ? parseOwner(() => readFileSync(lock, "utf8")) : readOwner(ownerFile, stat);
  const left = Math.max(0, Math.ceil((stat.mtimeMs + leaseMs - Date.now()) / 1000));
  return `locked by ${owner ? `${owner.host}:${owner.pid}` : "an unknown process"}, lease expires in ${left} s`;
}
