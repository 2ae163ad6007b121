/** The dataset shelf: every dataset prunebench can load, by name. */
import { cifar10 } from "./cifar10.js";
import { fashionMnist } from "./fashion-mnist.js";
import { fashionMnistMini } from "./fashion-mnist-mini.js";
import { mnist } from "./mnist.js";
import { DatasetError, type DatasetEntry } from "./types.js";

export { DatasetError } from "./types.js";
export type { DatasetEntry, ImageSplit, LoadedDataset, LoadOptions } from "./types.js";

/** All datasets; the first is the embedded default. */
export const DATASETS: DatasetEntry[] = [fashionMnistMini, fashionMnist, mnist, cifar10];

export const DEFAULT_DATASET = fashionMnistMini.name;

export function getDataset(name: string): DatasetEntry {
  const entry = DATASETS.find((d) => d.name === name);
  if (!entry) {
    throw new DatasetError(`unknown dataset ${JSON.stringify(name)}; valid names: ${DATASETS.map((d) => d.name).join(", ")}`);
  }
  return entry;
}

/** What the grid validator needs to know about each dataset. */
export function datasetCatalog(): Record<string, { inputShape: [number, number, number]; numClasses: number }> {
  const out: Record<string, { inputShape: [number, number, number]; numClasses: number }> = {};
  for (const d of DATASETS) out[d.name] = { inputShape: [...d.inputShape], numClasses: d.numClasses };
  return out;
}
