/**
 * Splits and standardizes a loaded dataset. The validation split is carved from train, class-balanced, with a
 * fixed seed so every run of a grid validates on the same images; test is only ever evaluated, never selected on.
 */
import type { ImageSplit, LoadedDataset } from "../../datasets/types.js";
import type { DataConfig } from "../core/types.js";
import { makeRng, shuffleInPlace } from "../core/rng.js";

export interface Arrays {
  /** Standardized NHWC float images. */
  x: Float32Array;
  y: Int32Array;
  count: number;
}

export interface PreparedData {
  inputShape: [number, number, number];
  numClasses: number;
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
  const standardize = standardizer(ds);
  return {
    inputShape: ds.inputShape,
    numClasses: ds.numClasses,
    train: gather(ds.train, chosenTrain.sort((a, b) => a - b), standardize, ds.inputShape),
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

function standardizer(ds: LoadedDataset): Float32Array {
  // table[c * 256 + p] = (p / 255 - mean[c]) / std[c]
  const channels = ds.inputShape[2];
  const table = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) for (let p = 0; p < 256; p++) table[c * 256 + p] = (p / 255 - ds.mean[c]) / ds.std[c];
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
