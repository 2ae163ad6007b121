/**
 * The dense pretrained model, trained once per dense key and shared by every run that needs it, also when
 * several workers (or sweeps) ask at once: the first takes an exclusive lock file, the others wait for the
 * checkpoint to appear. A lock left by a dead process is taken over.
 */
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { EpochRecord } from "../train/hooks.js";
import { readCheckpoint, writeCheckpoint, CheckpointError } from "./checkpoint.js";
import { restore, snapshot, type Model } from "../train/model.js";

export interface DenseOutcome {
  epochs: EpochRecord[];
  /** Seconds spent pretraining in this process (0 when the cache was hit). */
  trainedSeconds: number;
  path: string;
}

export async function ensureDense(
  cacheDir: string,
  denseKey: string,
  model: Model,
  train: () => Promise<{ epochs: EpochRecord[]; seconds: number }>,
): Promise<DenseOutcome> {
  const dir = join(cacheDir, "dense");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${denseKey}.safetensors`);
  const lock = `${path}.lock`;
  for (;;) {
    if (existsSync(path)) return { ...load(path, model), trainedSeconds: 0, path };
    if (tryLock(lock)) break;
    await sleep(250);
  }
  try {
    if (existsSync(path)) return { ...load(path, model), trainedSeconds: 0, path };
    const { epochs, seconds } = await train();
    const tensors = new Map([...snapshot(model)].map(([name, data]) => [name, { shape: shapeOf(model, name), data }]));
    writeCheckpoint(path, { tensors, metadata: { denseKey, epochs: JSON.stringify(epochs), format: "prunebench-dense-1" } });
    return { epochs, trainedSeconds: seconds, path };
  } finally {
    rmSync(lock, { force: true });
  }
}

function load(path: string, model: Model): { epochs: EpochRecord[] } {
  let checkpoint;
  try {
    checkpoint = readCheckpoint(path);
  } catch (e) {
    if (e instanceof CheckpointError) {
      throw new CheckpointError(`cached dense model unusable: ${e.message}. Delete ${path} and run the sweep again to retrain it.`);
    }
    throw e;
  }
  restore(model, new Map([...checkpoint.tensors].map(([n, t]) => [n, t.data])));
  return { epochs: JSON.parse(checkpoint.metadata.epochs ?? "[]") };
}

function shapeOf(model: Model, name: string): number[] {
  return (model.params.get(name) ?? model.state.get(name))!.shape;
}

function tryLock(lock: string): boolean {
  try {
    const fd = openSync(lock, "wx");
    writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname() }));
    closeSync(fd);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  if (lockIsStale(lock)) rmSync(lock, { force: true });
  return false;
}

function lockIsStale(lock: string): boolean {
  try {
    const { pid, host } = JSON.parse(readFileSync(lock, "utf8"));
    if (host !== hostname()) return false;
    process.kill(pid, 0);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ESRCH: the owner is gone. A lock still unparsable after a few seconds was left by a process killed mid-write.
    if (code === "ESRCH") return true;
    if (e instanceof SyntaxError) return Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 5000;
    return false;
  }
}
