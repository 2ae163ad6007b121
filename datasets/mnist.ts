/** MNIST handwritten digits (LeCun et al. 1998): 70,000 28x28 grayscale images, 10 classes. */
import { fingerprintIdxDataset, idxRequirements, loadIdxDataset, type IdxDatasetSpec } from "./formats/mnist-layout.js";
import type { DatasetSource, LocateOptions } from "./locate.js";
import type { DatasetEntry, LoadedDataset } from "./types.js";

export const MNIST_CLASSES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

const TORCHVISION = "torchvision.datasets.MNIST resources";
const SHA = "widely published (e.g. TensorFlow Datasets); matches the MD5";

export const MNIST_SOURCE: DatasetSource = {
  name: "mnist",
  title: "MNIST",
  layoutHint: "or the same files unpacked with gunzip",
  homepage: "http://yann.lecun.com/exdb/mnist/",
  requirements: idxRequirements({
    baseUrls: [
      "https://ossci-datasets.s3.amazonaws.com/mnist/",
      "https://storage.googleapis.com/cvdf-datasets/mnist/",
      "http://yann.lecun.com/exdb/mnist/",
    ],
    files: {
      "train-images-idx3-ubyte": {
        size: 9912422,
        checksums: [
          { algorithm: "md5", hex: "f68b3c2dcbeaaa9fbdd348bbdeb94873", source: TORCHVISION },
          { algorithm: "sha256", hex: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", source: SHA },
        ],
      },
      "train-labels-idx1-ubyte": {
        size: 28881,
        checksums: [
          { algorithm: "md5", hex: "d53e105ee54ea40749a09fcbcd1e9432", source: TORCHVISION },
          { algorithm: "sha256", hex: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", source: SHA },
        ],
      },
      "t10k-images-idx3-ubyte": {
        size: 1648877,
        checksums: [
          { algorithm: "md5", hex: "9fb629c4189551a2d022fa330f9573f3", source: TORCHVISION },
          { algorithm: "sha256", hex: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", source: SHA },
        ],
      },
      "t10k-labels-idx1-ubyte": {
        size: 4542,
        checksums: [
          { algorithm: "md5", hex: "ec29112dd5afa0611ce80d1b7f02629c", source: TORCHVISION },
          { algorithm: "sha256", hex: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", source: SHA },
        ],
      },
    },
  }),
};

const SPEC: IdxDatasetSpec = { name: "mnist", classNames: MNIST_CLASSES, height: 28, width: 28 };

export function loadMnist(options: LocateOptions = {}): Promise<LoadedDataset> {
  return loadIdxDataset(SPEC, MNIST_SOURCE, options);
}

export const mnist: DatasetEntry = {
  name: "mnist",
  summary: "MNIST: 60,000 train + 10,000 test 28x28 grayscale handwritten digits, 10 classes",
  citation:
    "Yann LeCun, Leon Bottou, Yoshua Bengio, Patrick Haffner. Gradient-Based Learning Applied to Document " +
    "Recognition. Proceedings of the IEEE 86(11):2278-2324, 1998.",
  license: "No license stated by the authors (Yann LeCun, Corinna Cortes, Christopher J.C. Burges); commonly redistributed as CC BY-SA 3.0",
  inputShape: [28, 28, 1],
  numClasses: 10,
  splitSizes: { train: 60_000, test: 10_000 },
  load: loadMnist,
  fingerprint: (options?: LocateOptions) => fingerprintIdxDataset(SPEC, MNIST_SOURCE, options),
  source: MNIST_SOURCE,
};
