/**
 * Level checkpoints of an iterative run: after each finished level, the model (weights, BN state), its masks and the
 * results of every level so far are written to `<cacheDir>/levels/<runKey>/level-<r>.safetensors`, so that a run
 * killed in round r + 1 (a worker SIGKILLed, Ctrl-C twice, a reboot) starts again from there instead of from round 1.
 * Nothing else needs keeping: each round's retraining builds a fresh optimizer and fresh data-order generators
 * (trainPhase), the rewind weights are recomputed from the seed, and the pruning steps are keyed by their round, so
 * the rounds after a resume compute exactly what they would have computed uninterrupted.
 *
 * A checkpoint that fails its checksum, belongs to another run or does not fit the model is skipped with a warning,
 * and the next lower level (or the start) is used: a damaged file costs rounds, never wrong results.
 */
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { LevelResult } from "../core/types.js";
import type { MaskSet } from "../train/masks.js";
import type { Model } from "../train/model.js";
import { readCheckpoint, writeCheckpoint } from "./checkpoint.js";

/** What the rounds after a level need, besides the model and masks. */
export interface LevelState {
  /** The results of levels 1..level, in order. */
  levels: LevelResult[];
  /** Whether a rewind step has run (the levels' epoch histories depend on it). */
  rewound: boolean;
  /** Seconds of retraining in the finished rounds, and the last round's throughput: the run-wide timing metrics. */
  trainSeconds: number;
  imagesPerSecond: number;
  /** The weights at the start of the last round's training, where AP measures movement from; only when AP is on. */
  roundStart: Map<string, Float32Array> | null;
  /** Training on the way to this level (images, MACs, seconds: run-cost.ts); absent in checkpoints written before it. */
  trainCost?: { images: number; macs: number; seconds: number };
}

export interface Resumed extends LevelState {
  level: number;
  weights: Map<string, Float32Array>;
  masks: Map<string, { shape: number[]; data: Float32Array }>;
  path: string;
}

const KIND = "imp-level";
const FILE = /^level-(\d+)\.safetensors$/;

export function levelDir(cacheDir: string, runKey: string): string {
  return join(cacheDir, "levels", runKey);
}

/**
 * Metrics and epochs hold NaN (no validation split) and possibly ±Infinity, which plain JSON turns into null: they are
 * written as {"$num": "NaN"} so a resumed level reads back the very values it measured (-0 too).
 */
const encode = (value: unknown): string => JSON.stringify(value, (_k, v) =>
  typeof v === "number" && (!Number.isFinite(v) || Object.is(v, -0)) ? { $num: Object.is(v, -0) ? "-0" : String(v) } : v);
const decode = (text: string): any => JSON.parse(text, (_k, v) =>
  v !== null && typeof v === "object" && typeof v.$num === "string" && Object.keys(v).length === 1 ? Number(v.$num) : v);

export function writeLevel(cacheDir: string, runKey: string, level: number, model: Model, masks: MaskSet, state: LevelState): void {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, v] of [...model.params, ...model.state]) tensors.set(`weights/${name}`, { shape: v.shape, data: v.dataSync() as Float32Array });
  for (const name of masks.names()) tensors.set(`masks/${name}`, { shape: model.params.get(name)!.shape, data: masks.values(name)! });
  if (state.roundStart) {
    for (const [name, data] of state.roundStart) tensors.set(`roundStart/${name}`, { shape: tensorShape(model, name), data });
  }
  writeCheckpoint(join(levelDir(cacheDir, runKey), `level-${level}.safetensors`), {
    tensors,
    metadata: {
      kind: KIND, runKey, level: String(level), levels: encode(state.levels), rewound: String(state.rewound),
      trainSeconds: encode(state.trainSeconds), imagesPerSecond: encode(state.imagesPerSecond), ap: String(state.roundStart !== null),
      ...(state.trainCost ? { trainCost: encode(state.trainCost) } : {}),
    },
  });
}

/**
 * The highest level of `runKey` (at most `maxLevel`) whose checkpoint reads back intact and fits `model`, or null.
 * Every checkpoint passed over is reported through `warn`.
 */
export function findLevel(cacheDir: string, runKey: string, maxLevel: number, model: Model, warn: (message: string) => void): Resumed | null {
  const dir = levelDir(cacheDir, runKey);
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return null; // no level finished yet (or the cache folder was cleaned)
  }
  const candidates = files.map((f) => ({ f, m: FILE.exec(f) })).filter((c) => c.m !== null)
    .map((c) => ({ path: join(dir, c.f), level: Number(c.m![1]) })).filter((c) => c.level >= 1 && c.level <= maxLevel)
    .sort((a, b) => b.level - a.level);
  for (const { path, level } of candidates) {
    try {
      return { ...readLevel(path, runKey, level, model), path };
    } catch (e) {
      warn(`level checkpoint ${path} is unusable (${(e as Error).message}); ignored, resuming from an earlier level`);
    }
  }
  return null;
}

function readLevel(path: string, runKey: string, level: number, model: Model): Omit<Resumed, "path"> {
  const { tensors, metadata } = readCheckpoint(path);
  if (metadata.kind !== KIND || metadata.runKey !== runKey || metadata.level !== String(level)) {
    throw new Error(`it is not level ${level} of run ${runKey} (kind ${metadata.kind}, run ${metadata.runKey}, level ${metadata.level})`);
  }
  const levels = decode(metadata.levels) as LevelResult[];
  if (!Array.isArray(levels) || levels.length !== level || levels.some((l, i) => l.level !== i + 1)) throw new Error(`its results do not hold levels 1-${level}`);
  const group = (prefix: string) => new Map([...tensors].filter(([n]) => n.startsWith(prefix)).map(([n, t]) => [n.slice(prefix.length), t]));
  const weights = new Map([...group("weights/")].map(([n, t]) => [n, t.data]));
  for (const [name, v] of [...model.params, ...model.state]) {
    const w = weights.get(name);
    if (!w || w.length !== v.size) throw new Error(`tensor ${name} is missing or has another size`);
  }
  const masks = group("masks/");
  for (const [name, t] of masks) {
    const p = model.params.get(name);
    if (!p || t.data.length !== p.size) throw new Error(`mask ${name} does not fit the model`);
  }
  const roundStart = metadata.ap === "true" ? new Map([...group("roundStart/")].map(([n, t]) => [n, t.data])) : null;
  return {
    level, weights, masks, levels, rewound: metadata.rewound === "true", roundStart,
    trainSeconds: decode(metadata.trainSeconds), imagesPerSecond: decode(metadata.imagesPerSecond),
    ...(metadata.trainCost === undefined ? {} : { trainCost: decode(metadata.trainCost) }),
  };
}

/** The run's result is out: its levels are the store's business now. */
export function removeLevels(cacheDir: string, runKey: string): void {
  rmSync(levelDir(cacheDir, runKey), { recursive: true, force: true });
}

function tensorShape(model: Model, name: string): number[] {
  const v = model.params.get(name) ?? model.state.get(name);
  if (!v) throw new Error(`no tensor ${name} in the model`);
  return v.shape;
}
