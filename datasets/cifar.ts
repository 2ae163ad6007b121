/**
 * The CIFAR-10 binary format: `cifar-10-binary.tar.gz` holding `cifar-10-batches-bin/data_batch_1..5.bin` and
 * `test_batch.bin`. Each record is 1 label byte followed by 3072 pixel bytes: the 32x32 red plane, then green, then
 * blue (CHW, rows top to bottom). Records are converted to NHWC.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { maybeGunzip, plain } from "./idx.js";
import { readTar } from "./tar.js";
import { DatasetError, type ImageSplit } from "./types.js";

export const CIFAR_SIDE = 32;
export const CIFAR_CHANNELS = 3;
export const CIFAR_IMAGE_BYTES = CIFAR_SIDE * CIFAR_SIDE * CIFAR_CHANNELS;
export const CIFAR_RECORD_BYTES = 1 + CIFAR_IMAGE_BYTES;
export const CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz";
export const CIFAR10_FOLDER = "cifar-10-batches-bin";
export const CIFAR10_TRAIN_BATCHES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const CIFAR10_TEST_BATCH = "test_batch.bin";
/** Batch files in fingerprint order. */
export const CIFAR10_BATCHES = [...CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH];

function checkBatchSize(bytes: Uint8Array, file: string): number {
  if (bytes.length === 0 || bytes.length % CIFAR_RECORD_BYTES !== 0) {
    const whole = Math.floor(bytes.length / CIFAR_RECORD_BYTES);
    throw new DatasetError(
      `${file}: truncated or corrupted CIFAR batch: expected a positive multiple of ${CIFAR_RECORD_BYTES} bytes ` +
        `(1 label + ${CIFAR_IMAGE_BYTES} pixels per image), found ${bytes.length} bytes ` +
        `(${whole} whole records + ${bytes.length - whole * CIFAR_RECORD_BYTES} bytes)`,
    );
  }
  return bytes.length / CIFAR_RECORD_BYTES;
}

/** Decodes the records of one batch into `split` starting at image `first`. */
function decodeInto(bytes: Uint8Array, file: string, split: ImageSplit, first: number, numClasses: number): void {
  const count = bytes.length / CIFAR_RECORD_BYTES;
  const plane = CIFAR_SIDE * CIFAR_SIDE;
  const { pixels, labels } = split;
  for (let i = 0; i < count; i++) {
    const rec = i * CIFAR_RECORD_BYTES;
    const label = bytes[rec];
    if (label >= numClasses) {
      throw new DatasetError(`${file}: corrupted CIFAR batch: record ${i} has label ${label}, expected 0..${numClasses - 1}`);
    }
    labels[first + i] = label;
    const out = (first + i) * CIFAR_IMAGE_BYTES;
    for (let c = 0; c < CIFAR_CHANNELS; c++) {
      const src = rec + 1 + c * plane;
      for (let p = 0; p < plane; p++) pixels[out + p * CIFAR_CHANNELS + c] = bytes[src + p];
    }
  }
}

/** Decodes batch files (any number of records each) into one NHWC split, in order. */
export function decodeCifarBatches(files: Array<{ bytes: Uint8Array; origin: string }>, numClasses = 10): ImageSplit {
  const counts = files.map((f) => checkBatchSize(f.bytes, f.origin));
  const count = counts.reduce((a, b) => a + b, 0);
  const split: ImageSplit = { pixels: new Uint8Array(count * CIFAR_IMAGE_BYTES), labels: new Uint8Array(count), count };
  let first = 0;
  files.forEach((f, i) => {
    decodeInto(f.bytes, f.origin, split, first, numClasses);
    first += counts[i];
  });
  return split;
}

/** Decodes one batch file into NHWC pixels and labels. */
export function decodeCifarBatch(bytes: Uint8Array, file: string, numClasses = 10): ImageSplit {
  return decodeCifarBatches([{ bytes, origin: file }], numClasses);
}

export interface CifarBatchFile {
  /** Logical name, e.g. "data_batch_1.bin". */
  name: string;
  /** Where it came from, for messages ("x.tar.gz:cifar-10-batches-bin/data_batch_1.bin"). */
  origin: string;
  bytes: Uint8Array;
}

/** The six batch files' bytes, in CIFAR10_BATCHES order, from the .tar.gz (or an uncompressed .tar). */
export async function readCifar10Archive(archive: string): Promise<CifarBatchFile[]> {
  let raw: Uint8Array;
  try {
    raw = await readFile(archive);
  } catch (err) {
    throw new DatasetError(`${archive}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
  const tar = await maybeGunzip(raw, archive);
  const entries = readTar(tar, archive).filter((e) => e.type === "file");
  const byBase = new Map<string, (typeof entries)[number]>();
  for (const e of entries) {
    const base = e.name.split("/").pop() ?? e.name;
    const preferred = e.name === `${CIFAR10_FOLDER}/${base}`;
    if (!byBase.has(base) || preferred) byBase.set(base, e);
  }
  const missing = CIFAR10_BATCHES.filter((b) => !byBase.has(b));
  if (missing.length > 0) {
    const found = entries.map((e) => e.name).slice(0, 12);
    throw new DatasetError(
      `${archive}: not a CIFAR-10 binary archive: missing ${missing.map((m) => `${CIFAR10_FOLDER}/${m}`).join(", ")}; ` +
        `found ${found.length === 0 ? "no files" : found.join(", ")}${entries.length > found.length ? ", ..." : ""}`,
    );
  }
  return CIFAR10_BATCHES.map((b) => {
    const e = byBase.get(b)!;
    return { name: b, origin: `${archive}:${e.name}`, bytes: e.data };
  });
}

/** The six batch files from an unpacked folder (the one holding data_batch_1.bin ...). */
export async function readCifar10Folder(dir: string): Promise<CifarBatchFile[]> {
  return Promise.all(
    CIFAR10_BATCHES.map(async (b) => {
      const path = join(dir, b);
      try {
        return { name: b, origin: path, bytes: plain(await readFile(path)) };
      } catch (err) {
        throw new DatasetError(`${path}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
      }
    }),
  );
}

/** Decodes the six batches into train (data_batch_1..5, in order) and test splits. */
export function decodeCifar10(batches: CifarBatchFile[]): { train: ImageSplit; test: ImageSplit } {
  return { train: decodeCifarBatches(batches.slice(0, 5)), test: decodeCifarBatches(batches.slice(5)) };
}
