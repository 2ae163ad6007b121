/**
 * Splits and standardizes a loaded dataset. The validation split is carved from train, class-balanced, with a
 * fixed seed so every run of a grid validates on the same images; test is only ever evaluated, never selected on.
 */
import type { ImageSplit, LoadedDataset } from "../../datasets/types.js";
import type { DataConfig } from "../core/types.js";
import { makeRng, shuffleInPlace } from "../core/rng.js";
import type { Augmentation } from "./augment.js";

export interface Arrays {
  /** Standardized NHWC float images. */
  x: Float32Array;
  y: Int32Array;
  count: number;
  /** Set on the training split only: what the training loop does to each of its batches. */
  augment?: Augmentation;
}

export interface PreparedData {
  inputShape: [number, number, number];
  numClasses: number;
  /** The dataset's class names, by label (per-class results are stored with them). */
  classNames: readonly string[];
  train: Arrays;
  val: Arrays;
  test: Arrays;
}

const SPLIT_SEED = 20240611;

export function prepareData(ds: LoadedDataset, config: DataConfig): PreparedData {
  const byClass: number[][] = Array.from({ length: ds.numClasses }, () => []);
  for (let i = 0; i < ds.train.count; i++) byClass[ds.train.labels[i]].push(i);
  const rng = makeRng(SPLIT_SEED, "split");
  const trainIdx: number[] = [];
  const valIdx: number[] = [];
  for (const members of byClass) {
    shuffleInPlace(members, rng);
    const nVal = Math.round(members.length * config.valFraction);
    valIdx.push(...members.slice(0, nVal));
    trainIdx.push(...members.slice(nVal));
  }
  shuffleInPlace(trainIdx, rng);
  let chosenTrain = trainIdx;
  if (config.trainSubset !== null && config.trainSubset < trainIdx.length) chosenTrain = balancedPrefix(trainIdx, ds.train.labels, ds.numClasses, config.trainSubset);
  const testIdx = Array.from({ length: ds.test.count }, (_, i) => i);
  const chosenTest = config.testSubset !== null && config.testSubset < testIdx.length
    ? balancedPrefix(shuffleInPlace(testIdx, makeRng(SPLIT_SEED, "test")), ds.test.labels, ds.numClasses, config.testSubset)
    : testIdx;
  const standardize = standardizer(ds, config.normalize);
  const train = gather(ds.train, chosenTrain.sort((a, b) => a - b), standardize, ds.inputShape);
  if (config.augment === "crop-flip") {
    const channels = ds.inputShape[2];
    train.augment = { kind: "crop-flip", pad: 4, fill: Float32Array.from({ length: channels }, (_, c) => standardize[c * 256]) };
  }
  return {
    inputShape: ds.inputShape,
    numClasses: ds.numClasses,
    classNames: ds.classNames,
    train,
    val: gather(ds.train, valIdx.sort((a, b) => a - b), standardize, ds.inputShape),
    test: gather(ds.test, chosenTest.sort((a, b) => a - b), standardize, ds.inputShape),
  };
}

/** The first `n` of `order` taking classes round-robin, so subsets stay class-balanced. */
function balancedPrefix(order: number[], labels: Uint8Array, numClasses: number, n: number): number[] {
  const queues: number[][] = Array.from({ length: numClasses }, () => []);
  for (const i of order) queues[labels[i]].push(i);
  const out: number[] = [];
  for (let k = 0; out.length < n; k++) {
    let added = false;
    for (const q of queues) if (k < q.length && out.length < n) { out.push(q[k]); added = true; }
    if (!added) break;
  }
  return out;
}

/** The per-channel statistics `normalize` names: the dataset's own train statistics, none (mean 0, std 1), or given ones. */
export function normalizationStats(ds: Pick<LoadedDataset, "mean" | "std" | "inputShape">, normalize: DataConfig["normalize"]): { mean: number[]; std: number[] } {
  const channels = ds.inputShape[2];
  if (normalize === "dataset") return { mean: ds.mean, std: ds.std };
  if (normalize === "none") return { mean: new Array(channels).fill(0), std: new Array(channels).fill(1) };
  if (normalize.mean.length !== channels || normalize.std.length !== channels) {
    throw new Error(`normalize: ${normalize.mean.length} means and ${normalize.std.length} stds for ${channels} channels`);
  }
  return normalize;
}

/** table[c * 256 + p] = (p / 255 - mean[c]) / std[c]: one lookup per pixel. */
export function standardizer(ds: Pick<LoadedDataset, "mean" | "std" | "inputShape">, normalize: DataConfig["normalize"]): Float32Array {
  const { mean, std } = normalizationStats(ds, normalize);
  const channels = ds.inputShape[2];
  const table = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) for (let p = 0; p < 256; p++) table[c * 256 + p] = (p / 255 - mean[c]) / std[c];
  return table;
}

function gather(split: ImageSplit, indices: number[], table: Float32Array, shape: [number, number, number]): Arrays {
  const size = shape[0] * shape[1] * shape[2];
  const channels = shape[2];
  const x = new Float32Array(indices.length * size);
  const y = new Int32Array(indices.length);
  indices.forEach((src, row) => {
    const from = src * size;
    const to = row * size;
    for (let k = 0; k < size; k++) x[to + k] = table[(k % channels) * 256 + split.pixels[from + k]];
    y[row] = split.labels[src];
  });
  return { x, y, count: indices.length };
}
