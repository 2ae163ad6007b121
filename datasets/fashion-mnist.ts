/** Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 28x28 grayscale images of Zalando articles, 10 classes. */
import { fingerprintIdxDataset, idxRequirements, loadIdxDataset, type IdxDatasetSpec } from "./formats/mnist-layout.js";
import type { DatasetSource, LocateOptions } from "./locate.js";
import type { DatasetEntry, LoadedDataset } from "./types.js";

export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

export const FASHION_MNIST_CITATION =
  "Han Xiao, Kashif Rasul, Roland Vollgraf. Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning " +
  "Algorithms. arXiv:1708.07747, 2017.";
export const FASHION_MNIST_LICENSE = "MIT (Copyright (c) 2017 Zalando SE)";

/**
 * SHA-256 of each file's decompressed IDX content (computed from Debian's dataset-fashion-mnist
 * 0.0~git20200523.55506a9-1, whose .gz files are the canonical ones re-wrapped without the gzip file-name field).
 */
export const FASHION_MNIST_CONTENT_SHA256: Record<string, string> = {
  "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
  "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
  "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
  "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
};

/** Our fingerprint of the genuine dataset (see common.ts contentFingerprint); the same for every copy of it. */
export const FASHION_MNIST_FINGERPRINT = "9ae062c77991994e345352479adf974a4df198bdd2cd93b1aca7b65adb0df4ef";

const ZALANDO = "published by Zalando Research (fashion-mnist README) and torchvision";
const TFDS = "widely published (e.g. TensorFlow Datasets, Flux, Keras ports); matches the MD5";

export const FASHION_MNIST_SOURCE: DatasetSource = {
  name: "fashion-mnist",
  title: "Fashion-MNIST",
  layoutHint: "or the same files unpacked with gunzip",
  homepage: "https://github.com/zalandoresearch/fashion-mnist",
  systemDirs: [
    { dir: "/usr/share/datasets/fashion-mnist", install: "on Debian/Ubuntu: sudo apt-get install -y dataset-fashion-mnist" },
  ],
  requirements: idxRequirements({
    baseUrls: [
      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
      "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ],
    files: {
      "train-images-idx3-ubyte": {
        size: 26421880,
        checksums: [
          { algorithm: "md5", hex: "8d4fb7e6c68d591d4c3dfef9ec88bf0d", source: ZALANDO },
          { algorithm: "sha256", hex: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", source: TFDS },
        ],
      },
      "train-labels-idx1-ubyte": {
        size: 29515,
        checksums: [
          { algorithm: "md5", hex: "25c81989df183df01b3e8a0aad5dffbe", source: ZALANDO },
          { algorithm: "sha256", hex: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", source: TFDS },
        ],
      },
      "t10k-images-idx3-ubyte": {
        size: 4422102,
        checksums: [
          { algorithm: "md5", hex: "bef4ecab320f06d8554ea6380940ec79", source: ZALANDO },
          { algorithm: "sha256", hex: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", source: TFDS },
        ],
      },
      "t10k-labels-idx1-ubyte": {
        size: 5148,
        checksums: [
          { algorithm: "md5", hex: "bb300cfdad3c16e7a12a480ee83cd310", source: ZALANDO },
          { algorithm: "sha256", hex: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", source: TFDS },
        ],
      },
    },
  }),
};

const SPEC: IdxDatasetSpec = { name: "fashion-mnist", classNames: FASHION_MNIST_CLASSES, height: 28, width: 28 };

export function loadFashionMnist(options: LocateOptions = {}): Promise<LoadedDataset> {
  return loadIdxDataset(SPEC, FASHION_MNIST_SOURCE, options);
}

export const fashionMnist: DatasetEntry = {
  name: "fashion-mnist",
  summary: "Fashion-MNIST: 60,000 train + 10,000 test 28x28 grayscale images of clothing, 10 classes",
  citation: FASHION_MNIST_CITATION,
  license: FASHION_MNIST_LICENSE,
  inputShape: [28, 28, 1],
  numClasses: 10,
  splitSizes: { train: 60_000, test: 10_000 },
  load: loadFashionMnist,
  fingerprint: (options?: LocateOptions) => fingerprintIdxDataset(SPEC, FASHION_MNIST_SOURCE, options),
  source: FASHION_MNIST_SOURCE,
};
