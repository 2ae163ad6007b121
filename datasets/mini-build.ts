/**
 * How fashion-mnist-mini is made from Fashion-MNIST (used by scripts/make-fashion-mnist-mini.ts and its test).
 *
 * For each split, the image indices 0..N-1 are shuffled (Fisher-Yates driven by a 32-bit LCG seeded with a fixed
 * seed), then walked in shuffled order keeping the first `perClass` images of each class. The kept images stay in that
 * shuffled order (classes interleaved). The result is the IDX content of each file: the dataset's fingerprint is taken
 * over that content, so the committed .gz files may come from any gzip encoder.
 */
import { encodeIdx } from "./formats/idx.js";
import type { ImageSplit } from "./types.js";

/** Numerical Recipes LCG (a = 1664525, c = 1013904223, mod 2^32); returns floats in [0, 1). */
export function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

/** Indices of a class-balanced subset: `perClass` of each of `numClasses` classes, in shuffled order. */
export function balancedSubset(labels: Uint8Array, numClasses: number, perClass: number, seed: number): number[] {
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i);
  const rand = lcg(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const taken = new Array<number>(numClasses).fill(0);
  const out: number[] = [];
  for (const i of order) {
    const c = labels[i];
    if (taken[c] < perClass) {
      taken[c]++;
      out.push(i);
    }
  }
  const short = taken.findIndex((t) => t < perClass);
  if (short >= 0) throw new Error(`balancedSubset: class ${short} has only ${taken[short]} images, ${perClass} wanted`);
  return out;
}

/** The selected images and labels of `split`, as IDX file contents. */
export function subsetFiles(
  split: ImageSplit,
  indices: number[],
  height: number,
  width: number,
): { images: Uint8Array; labels: Uint8Array } {
  const size = height * width;
  const pixels = new Uint8Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  indices.forEach((src, k) => {
    pixels.set(split.pixels.subarray(src * size, (src + 1) * size), k * size);
    labels[k] = split.labels[src];
  });
  return {
    images: encodeIdx([indices.length, height, width], pixels),
    labels: encodeIdx([indices.length], labels),
  };
}

/** The four mini files' IDX contents (by IDX name, without .gz) made from the full train and test splits. */
export function buildMiniFiles(
  full: { train: ImageSplit; test: ImageSplit },
  opts: { numClasses: number; trainPerClass: number; testPerClass: number; seeds: { train: number; test: number } },
): Map<string, Uint8Array> {
  const train = subsetFiles(full.train, balancedSubset(full.train.labels, opts.numClasses, opts.trainPerClass, opts.seeds.train), 28, 28);
  const test = subsetFiles(full.test, balancedSubset(full.test.labels, opts.numClasses, opts.testPerClass, opts.seeds.test), 28, 28);
  return new Map([
    ["train-images-idx3-ubyte", train.images],
    ["train-labels-idx1-ubyte", train.labels],
    ["t10k-images-idx3-ubyte", test.images],
    ["t10k-labels-idx1-ubyte", test.labels],
  ]);
}
