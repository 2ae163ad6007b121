/**
 * Weights on disk in the safetensors layout (8-byte little-endian header length, JSON header, raw little-endian
 * float32 data), readable by PyTorch/NumPy tooling. Writes are atomic (temp file + rename) and leave no temp file
 * behind when they fail (a full disk must not be kept full by orphans). Every file carries a sha256 of its header
 * and data in `__metadata__.checksum`, so a read catches not only truncation but bytes overwritten in place, which
 * would otherwise load as different weights without a sound.
 */
import { createHash } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

export interface Checkpoint {
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  metadata: Record<string, string>;
}

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** The metadata key holding "sha256:<hex>" of the header without this key, followed by the data section. */
export const CHECKSUM_KEY = "checksum";

function checksumOf(headerWithoutChecksum: Record<string, unknown>, data: Iterable<Uint8Array>): string {
  const hash = createHash("sha256").update(JSON.stringify(headerWithoutChecksum));
  for (const bytes of data) hash.update(bytes);
  return `sha256:${hash.digest("hex")}`;
}

export function writeCheckpoint(path: string, checkpoint: Checkpoint): { bytes: number } {
  if (CHECKSUM_KEY in checkpoint.metadata) throw new CheckpointError(`metadata key "${CHECKSUM_KEY}" is reserved for the checksum`);
  const header: Record<string, any> = { __metadata__: { ...checkpoint.metadata } };
  let offset = 0;
  for (const [name, t] of checkpoint.tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1);
    if (expected !== t.data.length) throw new CheckpointError(`${name}: shape [${t.shape}] does not match ${t.data.length} values`);
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const chunks = [...checkpoint.tensors.values()].map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  header.__metadata__[CHECKSUM_KEY] = checksumOf(withoutChecksum(header), chunks);
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  // The folder may have been deleted under a long job (someone cleaning a cache): recreate it rather than lose the work.
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, length);
      writeSync(fd, headerBytes);
      for (const bytes of chunks) writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new CheckpointError(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  return { bytes: 8 + headerBytes.length + offset };
}

export function readCheckpoint(path: string): Checkpoint {
  const buf = readFileSync(path);
  if (buf.length < 8) throw new CheckpointError(`${path}: truncated checkpoint (${buf.length} bytes, not even a header)`);
  const headerLength = Number(buf.readBigUInt64LE(0));
  if (8 + headerLength > buf.length) throw new CheckpointError(`${path}: truncated checkpoint (header claims ${headerLength} bytes, file has ${buf.length})`);
  let header: Record<string, any>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLength).toString("utf8"));
  } catch (e) {
    throw new CheckpointError(`${path}: corrupted checkpoint header (${(e as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) throw new CheckpointError(`${path}: corrupted checkpoint header (not an object)`);
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const chunks: Uint8Array[] = [];
  let expectedEnd = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const offsets = entry?.data_offsets;
    const valid = Array.isArray(offsets) && offsets.length === 2 && offsets.every((o: unknown) => Number.isSafeInteger(o) && (o as number) >= 0) &&
      offsets[0] <= offsets[1] && Array.isArray(entry.shape) && entry.shape.every((d: unknown) => Number.isSafeInteger(d) && (d as number) >= 0);
    if (!valid) throw new CheckpointError(`${path}: corrupted checkpoint header (tensor ${name} has no valid shape and offsets)`);
    const [begin, end] = offsets as [number, number];
    if (entry.dtype !== "F32") throw new CheckpointError(`${path}: tensor ${name} has dtype ${entry.dtype}, expected F32`);
    if (dataStart + end > buf.length) {
      throw new CheckpointError(`${path}: truncated checkpoint (tensor ${name} ends at byte ${dataStart + end}, file has ${buf.length})`);
    }
    if ((end - begin) % 4 !== 0 || (entry.shape as number[]).reduce((a, b) => a * b, 1) * 4 !== end - begin) {
      throw new CheckpointError(`${path}: corrupted checkpoint header (tensor ${name}: shape [${entry.shape}] does not match ${end - begin} bytes)`);
    }
    const bytes = buf.subarray(dataStart + begin, dataStart + end);
    chunks.push(bytes);
    const data = new Float32Array(buf.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    tensors.set(name, { shape: entry.shape, data });
    expectedEnd = Math.max(expectedEnd, end);
  }
  if (dataStart + expectedEnd !== buf.length) throw new CheckpointError(`${path}: ${buf.length - dataStart - expectedEnd} unexpected trailing bytes`);
  const metadata: Record<string, string> = header.__metadata__ ?? {};
  const stored = metadata[CHECKSUM_KEY];
  if (typeof stored !== "string") throw new CheckpointError(`${path}: checkpoint has no checksum (written by an older prunebench, or not by prunebench)`);
  const actual = checksumOf(withoutChecksum(header), chunks);
  if (actual !== stored) throw new CheckpointError(`${path}: checksum mismatch (stored ${stored}, contents hash to ${actual}): the file was modified or damaged after it was written`);
  const { [CHECKSUM_KEY]: _checksum, ...rest } = metadata;
  return { tensors, metadata: rest };
}

/** The header as it was before the checksum was added: same keys, same order, so its JSON is byte-identical. */
function withoutChecksum(header: Record<string, any>): Record<string, unknown> {
  const { [CHECKSUM_KEY]: _checksum, ...metadata } = header.__metadata__ ?? {};
  return { ...header, __metadata__: metadata };
}
