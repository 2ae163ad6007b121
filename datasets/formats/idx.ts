/**
 * The IDX format (used by MNIST and Fashion-MNIST): magic 00 00 <dtype> <ndims>, then ndims big-endian uint32 sizes,
 * then the data, row-major. Only dtype 0x08 (unsigned byte) is supported, which is what both datasets use.
 * Files may be gzip-compressed (detected by the gzip magic, not by the file name).
 */
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { DatasetError } from "../types.js";

const gunzipAsync = promisify(gunzip);

export interface IdxArray {
  /** Sizes of each dimension, outermost first. */
  dims: number[];
  /** prod(dims) unsigned bytes. */
  data: Uint8Array;
}

const DTYPES: Record<number, { name: string; size: number }> = {
  0x08: { name: "unsigned byte", size: 1 },
  0x09: { name: "signed byte", size: 1 },
  0x0b: { name: "short (int16)", size: 2 },
  0x0c: { name: "int (int32)", size: 4 },
  0x0d: { name: "float (float32)", size: 4 },
  0x0e: { name: "double (float64)", size: 8 },
};
const MAX_DIMS = 8;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** A plain Uint8Array view of the same bytes (a Buffer is a Uint8Array subclass with different equality/printing). */
export function plain(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** gunzip with an error that names the file; `bytes` that are not gzip-compressed are returned as they are. */
export async function maybeGunzip(bytes: Uint8Array, file: string): Promise<Uint8Array> {
  if (!isGzip(bytes)) return plain(bytes);
  try {
    const out = await gunzipAsync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DatasetError(
      `${file}: gunzip failed (${reason}): the file is truncated or corrupted (${bytes.length} bytes on disk). ` +
        `Delete it and get it again.`,
    );
  }
}

/** Parses IDX bytes (already decompressed). `file` only names the source in error messages. */
export function decodeIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4) {
    throw new DatasetError(`${file}: not an IDX file: expected at least the 4-byte magic, found ${bytes.length} bytes`);
  }
  const [z0, z1, dtype, ndims] = bytes;
  if (z0 !== 0 || z1 !== 0 || DTYPES[dtype] === undefined || ndims < 1 || ndims > MAX_DIMS) {
    const hint = isGzip(bytes)
      ? " (this looks gzip-compressed twice)"
      : file.endsWith(".gz")
        ? " (the name ends in .gz but the content is not gzip-compressed)"
        : "";
    throw new DatasetError(
      `${file}: not an IDX file: expected magic 00 00 <dtype 08..0e> <1..${MAX_DIMS} dims>, ` +
        `found ${hex(bytes.subarray(0, 4))}${hint}`,
    );
  }
  if (dtype !== 0x08) {
    throw new DatasetError(`${file}: unsupported IDX dtype 0x${dtype.toString(16)} (${DTYPES[dtype].name}); expected 0x08 (unsigned byte)`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new DatasetError(
      `${file}: truncated IDX header: ${ndims} dimensions need ${headerBytes} header bytes, found ${bytes.length} bytes`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let d = 0; d < ndims; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    count *= size;
  }
  if (!Number.isSafeInteger(count) || count > 2 ** 32) {
    throw new DatasetError(`${file}: corrupted IDX header: dimensions [${dims.join(", ")}] are implausibly large`);
  }
  const expected = headerBytes + count;
  if (bytes.length !== expected) {
    const what = bytes.length < expected ? "truncated" : "corrupted (trailing bytes)";
    throw new DatasetError(
      `${file}: ${what}: the header declares dimensions [${dims.join(", ")}] = ${headerBytes} header + ${count} data bytes ` +
        `= ${expected} bytes, found ${bytes.length} bytes`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

/** IDX bytes (uncompressed, dtype unsigned byte) for `data` with the given dimensions. */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`encodeIdx: dims [${dims.join(", ")}] hold ${count} bytes, data has ${data.length}`);
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

export interface IdxFile {
  idx: IdxArray;
  /** The decompressed file content (what the dataset fingerprint hashes). */
  content: Uint8Array;
}

/** Reads an IDX file, gzip-compressed or raw. */
export async function readIdxFile(file: string): Promise<IdxFile> {
  let raw: Uint8Array;
  try {
    raw = await readFile(file);
  } catch (err) {
    throw new DatasetError(`${file}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
  const content = await maybeGunzip(raw, file);
  return { idx: decodeIdx(content, file), content };
}
