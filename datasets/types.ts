import type { DatasetSource } from "./locate.js";

/** The dataset shelf's shared shapes. A loader returns raw pixels; normalization happens in the training pipeline. */

export interface ImageSplit {
  /** N·H·W·C bytes, row-major NHWC, values 0..255. */
  pixels: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface LoadedDataset {
  name: string;
  /** [height, width, channels]. */
  inputShape: [number, number, number];
  numClasses: number;
  classNames: string[];
  train: ImageSplit;
  test: ImageSplit;
  /** Per-channel mean and std of train pixels scaled to [0, 1]; used to standardize inputs. */
  mean: number[];
  std: number[];
  /** sha256 over the source files' bytes (stable across machines): part of every run key. */
  fingerprint: string;
  /** Where the files were read from (a folder), for the record. */
  source: string;
}

export interface LoadOptions {
  /** --data-dir / BENCH_DATA_DIR: searched first. */
  dataDir?: string;
  /** Try downloading (with a SHA-256 check) when the files are nowhere to be found. Default true. */
  download?: boolean;
}

export interface DatasetEntry {
  name: string;
  summary: string;
  citation: string;
  license: string;
  inputShape: [number, number, number];
  numClasses: number;
  /** Images in the published train and test splits, so a grid's data subsets are checked before anything loads. */
  splitSizes: { train: number; test: number };
  load(options?: LoadOptions): Promise<LoadedDataset>;
  /**
   * The files it reads and where they are searched (datasets/locate.ts), so `bench validate` can say before a sweep
   * whether they are on this machine and where to put them; absent for a dataset embedded in prunebench.
   */
  source?: DatasetSource;
  /** The same fingerprint load() reports, without decoding the images (reads and hashes the files; cached in-process). */
  fingerprint(options?: LoadOptions): Promise<string>;
}

export class DatasetError extends Error {
  override name = "DatasetError";
}

/** The files are nowhere on this machine and were not downloaded (downloading disabled, offline, or it failed). */
export class DatasetNotFoundError extends DatasetError {}
