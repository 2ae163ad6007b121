/** CIFAR-10 (Krizhevsky 2009): 60,000 32x32 colour images in 10 classes, from the binary distribution. */
import { join } from "node:path";
import { cachedFingerprint, channelStats, contentFingerprint, filesIdentity, rememberFingerprint } from "./common.js";
import {
  CIFAR10_ARCHIVE,
  CIFAR10_BATCHES,
  CIFAR10_FOLDER,
  decodeCifar10,
  readCifar10Archive,
  readCifar10Folder,
  type CifarBatchFile,
} from "./formats/cifar-binary.js";
import { locateDataset, type DatasetSource, type Located, type LocateOptions } from "./locate.js";
import type { DatasetEntry, LoadedDataset } from "./types.js";

export const CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

export const CIFAR10_SOURCE: DatasetSource = {
  name: "cifar10",
  title: "CIFAR-10 (binary version)",
  layoutHint: "or the cifar-10-batches-bin/ folder unpacked from it",
  homepage: "https://www.cs.toronto.edu/~kriz/cifar.html",
  requirements: [
    {
      label: "CIFAR-10 binary batches",
      alternatives: [[CIFAR10_ARCHIVE], CIFAR10_BATCHES.map((b) => `${CIFAR10_FOLDER}/${b}`), [...CIFAR10_BATCHES]],
      download: {
        name: CIFAR10_ARCHIVE,
        urls: ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"],
        size: 170052171,
        checksums: [
          { algorithm: "md5", hex: "c32a1d4ab5d03f1284b67883e8d87530", source: "CIFAR-10 home page (www.cs.toronto.edu/~kriz/cifar.html)" },
          {
            algorithm: "sha256",
            hex: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            source: "widely published (e.g. TensorFlow Datasets); matches the MD5",
          },
        ],
      },
    },
  ],
};

async function readBatches(located: Located): Promise<{ batches: CifarBatchFile[]; files: string[] }> {
  const chosen = located.chosen[0];
  if (chosen.alternative === 0) return { batches: await readCifar10Archive(chosen.paths[0]), files: chosen.paths };
  const dir = chosen.alternative === 1 ? join(located.dir, CIFAR10_FOLDER) : located.dir;
  return { batches: await readCifar10Folder(dir), files: chosen.paths };
}

async function fingerprintOf(batches: CifarBatchFile[], files: string[]): Promise<string> {
  const identity = await filesIdentity("cifar10", files);
  let fp = cachedFingerprint(identity);
  if (fp === undefined) {
    fp = contentFingerprint("cifar10", batches.map((b) => ({ name: `${CIFAR10_FOLDER}/${b.name}`, bytes: b.bytes })));
    rememberFingerprint(identity, fp);
  }
  return fp;
}

export async function loadCifar10(options: LocateOptions = {}): Promise<LoadedDataset> {
  const located = await locateDataset(CIFAR10_SOURCE, options);
  const { batches, files } = await readBatches(located);
  const { train, test } = decodeCifar10(batches);
  const fingerprint = await fingerprintOf(batches, files);
  const { mean, std } = channelStats(train.pixels, 3);
  return {
    name: "cifar10",
    inputShape: [32, 32, 3],
    numClasses: 10,
    classNames: [...CIFAR10_CLASSES],
    train,
    test,
    mean,
    std,
    fingerprint,
    source: located.dir,
  };
}

export async function fingerprintCifar10(options: LocateOptions = {}): Promise<string> {
  const located = await locateDataset(CIFAR10_SOURCE, options);
  const identity = await filesIdentity("cifar10", located.chosen[0].paths);
  const hit = cachedFingerprint(identity);
  if (hit !== undefined) return hit;
  const { batches, files } = await readBatches(located);
  return fingerprintOf(batches, files);
}

export const cifar10: DatasetEntry = {
  name: "cifar10",
  summary: "CIFAR-10: 50,000 train + 10,000 test 32x32 colour images, 10 classes (binary version)",
  citation: "Alex Krizhevsky. Learning Multiple Layers of Features from Tiny Images. Technical report, University of Toronto, 2009.",
  license: "No formal license; the authors ask that the technical report be cited (Krizhevsky 2009)",
  inputShape: [32, 32, 3],
  numClasses: 10,
  splitSizes: { train: 50_000, test: 10_000 },
  load: loadCifar10,
  fingerprint: fingerprintCifar10,
  source: CIFAR10_SOURCE,
};
