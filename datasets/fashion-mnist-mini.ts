/**
 * fashion-mnist-mini: the embedded default dataset. A fixed, class-balanced subset of Fashion-MNIST (600 train and
 * 200 test images per class: 6,000 + 2,000), committed to git under datasets/data/fashion-mnist-mini/ so it works
 * offline anywhere. scripts/make-fashion-mnist-mini.ts regenerates the files bit-identically from the real dataset.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/core/locations.js";
import { FASHION_MNIST_CITATION, FASHION_MNIST_CLASSES } from "./fashion-mnist.js";
import { fingerprintIdxPaths, IDX_FILES, loadIdxPaths, type IdxDatasetSpec } from "./formats/mnist-layout.js";
import { DatasetError, type DatasetEntry, type LoadedDataset, type LoadOptions } from "./types.js";

export const MINI_NAME = "fashion-mnist-mini";
export const MINI_TRAIN_PER_CLASS = 600;
export const MINI_TEST_PER_CLASS = 200;
/** Seeds of the selection shuffles (train, test); changing them changes the dataset. */
export const MINI_SEEDS = { train: 20170825, test: 20170826 };
/** Fingerprint of the committed files; load() refuses files that differ. */
export const FASHION_MNIST_MINI_FINGERPRINT = "634cd044cfa293e0c7f2ecaa0f2ea5d9ec9766bbacb610bf6b0313512df52cc5";

/** The folder holding the four committed .gz files. */
export function miniDataDir(): string {
  return join(packageRoot(), "datasets", "data", MINI_NAME);
}

function miniPaths(): string[] {
  const dir = miniDataDir();
  const paths = IDX_FILES.map((f) => join(dir, `${f}.gz`));
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new DatasetError(
      `fashion-mnist-mini: the embedded files are missing: ${missing.join(", ")}. They are part of the prunebench ` +
        `source tree; restore them (git checkout -- datasets/data/${MINI_NAME}) or regenerate them from Fashion-MNIST ` +
        `with: node dist/scripts/make-fashion-mnist-mini.js`,
    );
  }
  return paths;
}

const SPEC: IdxDatasetSpec = { name: MINI_NAME, classNames: FASHION_MNIST_CLASSES, height: 28, width: 28 };

function checkFingerprint(fp: string): void {
  if (fp !== FASHION_MNIST_MINI_FINGERPRINT) {
    throw new DatasetError(
      `fashion-mnist-mini: the files in ${miniDataDir()} are not the committed ones (fingerprint ${fp}, expected ` +
        `${FASHION_MNIST_MINI_FINGERPRINT}). Restore them (git checkout -- datasets/data/${MINI_NAME}) or regenerate ` +
        `them with: node dist/scripts/make-fashion-mnist-mini.js`,
    );
  }
}

/** Loads the embedded subset. The options are accepted for interface compatibility; nothing is searched or downloaded. */
export async function loadFashionMnistMini(_options: LoadOptions = {}): Promise<LoadedDataset> {
  const data = await loadIdxPaths(SPEC, miniPaths(), miniDataDir());
  checkFingerprint(data.fingerprint);
  return data;
}

export const fashionMnistMini: DatasetEntry = {
  name: MINI_NAME,
  summary:
    "Fashion-MNIST mini (embedded default): a fixed class-balanced subset, 6,000 train + 2,000 test 28x28 grayscale " +
    "images, 10 classes; works offline",
  citation: FASHION_MNIST_CITATION,
  license: "MIT (Copyright (c) 2017 Zalando SE); subset made by prunebench, see datasets/data/fashion-mnist-mini/README.md",
  inputShape: [28, 28, 1],
  numClasses: 10,
  splitSizes: { train: 6_000, test: 2_000 },
  load: loadFashionMnistMini,
  fingerprint: async () => {
    const fp = await fingerprintIdxPaths(MINI_NAME, miniPaths());
    checkFingerprint(fp);
    return fp;
  },
};
