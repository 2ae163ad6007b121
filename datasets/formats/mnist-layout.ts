/** Loading an MNIST-style dataset: four IDX files (train/test images and labels), 28x28 grayscale, 10 classes. */
import { cachedFingerprint, channelStats, contentFingerprint, filesIdentity, rememberFingerprint } from "../common.js";
import { decodeIdx, readIdxFile, maybeGunzip, type IdxFile } from "./idx.js";
import { locateDataset, type Checksum, type DatasetSource, type FileRequirement, type LocateOptions } from "../locate.js";
import { readFile } from "node:fs/promises";
import { DatasetError, type ImageSplit, type LoadedDataset } from "../types.js";

/** Logical names of the four files, in fingerprint order. */
export const IDX_FILES = [
  "train-images-idx3-ubyte",
  "train-labels-idx1-ubyte",
  "t10k-images-idx3-ubyte",
  "t10k-labels-idx1-ubyte",
] as const;
export type IdxFileName = (typeof IDX_FILES)[number];

const LABELS: Record<IdxFileName, string> = {
  "train-images-idx3-ubyte": "training images",
  "train-labels-idx1-ubyte": "training labels",
  "t10k-images-idx3-ubyte": "test images",
  "t10k-labels-idx1-ubyte": "test labels",
};

/** Requirements for the four files, each accepted gzip-compressed (`.gz`, preferred) or unpacked. */
export function idxRequirements(
  downloads?: { baseUrls: string[]; files: Record<IdxFileName, { checksums: Checksum[]; size?: number }> },
): FileRequirement[] {
  return IDX_FILES.map((f) => ({
    label: LABELS[f],
    alternatives: [[`${f}.gz`], [f]],
    download: downloads
      ? {
          name: `${f}.gz`,
          urls: downloads.baseUrls.map((b) => `${b}${f}.gz`),
          checksums: downloads.files[f].checksums,
          size: downloads.files[f].size,
        }
      : undefined,
  }));
}

export interface IdxDatasetSpec {
  name: string;
  classNames: string[];
  height: number;
  width: number;
}

function toSplit(images: IdxFile, labels: IdxFile, imagesPath: string, labelsPath: string, spec: IdxDatasetSpec): ImageSplit {
  const id = images.idx.dims;
  if (id.length !== 3 || id[1] !== spec.height || id[2] !== spec.width) {
    throw new DatasetError(
      `${imagesPath}: expected images of shape [N, ${spec.height}, ${spec.width}], found [${id.join(", ")}]`,
    );
  }
  const ld = labels.idx.dims;
  if (ld.length !== 1) throw new DatasetError(`${labelsPath}: expected a 1-dimensional label file, found [${ld.join(", ")}]`);
  if (ld[0] !== id[0]) {
    throw new DatasetError(`${imagesPath} holds ${id[0]} images but ${labelsPath} holds ${ld[0]} labels`);
  }
  const k = spec.classNames.length;
  const lab = labels.idx.data;
  for (let i = 0; i < lab.length; i++) {
    if (lab[i] >= k) throw new DatasetError(`${labelsPath}: label ${i} is ${lab[i]}, expected 0..${k - 1}`);
  }
  return { pixels: images.idx.data, labels: lab, count: id[0] };
}

/** Reads the four files at `paths` (in IDX_FILES order) into a LoadedDataset. */
export async function loadIdxPaths(spec: IdxDatasetSpec, paths: string[], sourceDir: string): Promise<LoadedDataset> {
  const files = await Promise.all(paths.map((p) => readIdxFile(p)));
  const train = toSplit(files[0], files[1], paths[0], paths[1], spec);
  const test = toSplit(files[2], files[3], paths[2], paths[3], spec);
  const identity = await filesIdentity(spec.name, paths);
  let fingerprint = cachedFingerprint(identity);
  if (fingerprint === undefined) {
    fingerprint = contentFingerprint(
      spec.name,
      files.map((f, i) => ({ name: IDX_FILES[i], bytes: f.content })),
    );
    rememberFingerprint(identity, fingerprint);
  }
  const { mean, std } = channelStats(train.pixels, 1);
  return {
    name: spec.name,
    inputShape: [spec.height, spec.width, 1],
    numClasses: spec.classNames.length,
    classNames: [...spec.classNames],
    train,
    test,
    mean,
    std,
    fingerprint,
    source: sourceDir,
  };
}

/**
 * The fingerprint of the four files at `paths` without decoding the images (cached in-process). Each file's IDX
 * header is still checked against its size, so a truncated file is refused here, before a sweep starts.
 */
export async function fingerprintIdxPaths(name: string, paths: string[]): Promise<string> {
  const identity = await filesIdentity(name, paths);
  const hit = cachedFingerprint(identity);
  if (hit !== undefined) return hit;
  const contents = await Promise.all(paths.map(async (p) => {
    const content = await maybeGunzip(await readFile(p), p);
    decodeIdx(content, p);
    return content;
  }));
  const fp = contentFingerprint(name, contents.map((bytes, i) => ({ name: IDX_FILES[i], bytes })));
  rememberFingerprint(identity, fp);
  return fp;
}

/** Locates and loads an MNIST-style dataset described by `source`. */
export async function loadIdxDataset(spec: IdxDatasetSpec, source: DatasetSource, options: LocateOptions = {}): Promise<LoadedDataset> {
  const located = await locateDataset(source, options);
  return loadIdxPaths(spec, located.chosen.map((c) => c.paths[0]), located.dir);
}

export async function fingerprintIdxDataset(spec: IdxDatasetSpec, source: DatasetSource, options: LocateOptions = {}): Promise<string> {
  const located = await locateDataset(source, options);
  return fingerprintIdxPaths(spec.name, located.chosen.map((c) => c.paths[0]));
}
