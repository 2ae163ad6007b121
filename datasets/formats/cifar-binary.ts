/**
 * The CIFAR-10 binary format: `cifar-10-binary.tar.gz` holding `cifar-10-batches-bin/data_batch_1..5.bin` and
 * `test_batch.bin`. Each record is 1 label byte followed by 3072 pixel bytes: the 32x32 red plane, then green, then
 * blue (CHW, rows top to bottom). Records are converted to NHWC.
 */
import { createReadStream } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import tarStream from "tar-stream";
import { isGzip, plain } from "./idx.js";
import { DatasetError, type ImageSplit } from "../types.js";

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

/**
 * The six batch files' bytes, in CIFAR10_BATCHES order, from the .tar.gz (or an uncompressed .tar), streamed: the
 * archive is read, gunzipped and unpacked chunk by chunk, and only the six batches are kept (about 184 MB for the real
 * archive), never the 170 MB archive or its 180 MB tar beside them.
 */
export async function readCifar10Archive(archive: string): Promise<CifarBatchFile[]> {
  const byBase = new Map<string, { name: string; bytes: Uint8Array }>();
  const seen: string[] = [];
  let current: { name: string; size: number; received: number } | null = null;
  const extract = tarStream.extract();
  const unpack = (async () => {
    for await (const entry of extract) {
      const { name, size = 0, type } = entry.header;
      const base = name.split("/").pop() ?? name;
      const wanted = type === "file" && CIFAR10_BATCHES.includes(base);
      if (type === "file") seen.push(name);
      current = { name, size, received: 0 };
      const chunks: Buffer[] = [];
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        current.received += chunk.length;
        if (wanted) chunks.push(chunk);
      }
      // A batch under cifar-10-batches-bin/ wins over a same-named file elsewhere in the archive.
      if (wanted && (!byBase.has(base) || name === `${CIFAR10_FOLDER}/${base}`)) byBase.set(base, { name, bytes: plain(Buffer.concat(chunks)) });
      current = null;
    }
  })();
  const source = createReadStream(archive);
  const head = await firstBytes(archive, 2);
  try {
    await Promise.all([isGzip(head) ? pipeline(source, createGunzip(), extract) : pipeline(source, extract), unpack]);
  } catch (err) {
    throw archiveError(archive, err as NodeJS.ErrnoException, current);
  }
  const missing = CIFAR10_BATCHES.filter((b) => !byBase.has(b));
  if (missing.length > 0) {
    const found = seen.slice(0, 12);
    throw new DatasetError(
      `${archive}: not a CIFAR-10 binary archive: missing ${missing.map((m) => `${CIFAR10_FOLDER}/${m}`).join(", ")}; ` +
        `found ${found.length === 0 ? "no files" : found.join(", ")}${seen.length > found.length ? ", ..." : ""}`,
    );
  }
  return CIFAR10_BATCHES.map((b) => {
    const e = byBase.get(b)!;
    return { name: b, origin: `${archive}:${e.name}`, bytes: e.bytes };
  });
}

async function firstBytes(path: string, n: number): Promise<Uint8Array> {
  try {
    const fh = await open(path, "r");
    try {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fh.read(buf, 0, n, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw new DatasetError(`${path}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** What went wrong while streaming the archive, in words: a bad gzip stream, a bad tar header, or a cut member. */
function archiveError(archive: string, err: NodeJS.ErrnoException, inMember: { name: string; size: number; received: number } | null): DatasetError {
  if (err instanceof DatasetError) return err;
  // zlib's errors carry Z_* codes (Z_BUF_ERROR: the stream ends early; Z_DATA_ERROR: bad bytes).
  if (err.code?.startsWith("Z_")) return new DatasetError(`${archive}: gunzip failed (${err.message}): the file is truncated or corrupted. Delete it and get it again.`);
  if (err.code === "ENOENT" || err.code === "EACCES" || err.code === "EISDIR") return new DatasetError(`${archive}: cannot read: ${err.message}`);
  if (inMember && inMember.received < inMember.size) {
    return new DatasetError(
      `${archive}: truncated tar archive: member "${inMember.name}" declares ${inMember.size} bytes, the archive ends after ${inMember.received}. Delete it and get it again.`,
    );
  }
  return new DatasetError(`${archive}: corrupted tar archive (${err.message}). Delete it and get it again.`);
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
