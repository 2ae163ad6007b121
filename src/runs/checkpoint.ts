/**
 * Weights on disk in the safetensors layout (8-byte little-endian header length, JSON header, raw little-endian
 * float32 data), readable by PyTorch/NumPy tooling. Writes are atomic (temp file + rename); reads check every
 * size so a truncated or corrupted file is a clear error, never half-loaded weights.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";

export interface Checkpoint {
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  metadata: Record<string, string>;
}

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

export function writeCheckpoint(path: string, checkpoint: Checkpoint): { bytes: number } {
  const header: Record<string, unknown> = { __metadata__: checkpoint.metadata };
  let offset = 0;
  for (const [name, t] of checkpoint.tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1);
    if (expected !== t.data.length) throw new CheckpointError(`${name}: shape [${t.shape}] does not match ${t.data.length} values`);
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, length);
    writeSync(fd, headerBytes);
    for (const t of checkpoint.tensors.values()) writeSync(fd, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
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
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  let expectedEnd = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = entry.data_offsets as [number, number];
    if (entry.dtype !== "F32") throw new CheckpointError(`${path}: tensor ${name} has dtype ${entry.dtype}, expected F32`);
    if (dataStart + end > buf.length) {
      throw new CheckpointError(`${path}: truncated checkpoint (tensor ${name} ends at byte ${dataStart + end}, file has ${buf.length})`);
    }
    const data = new Float32Array(buf.buffer.slice(buf.byteOffset + dataStart + begin, buf.byteOffset + dataStart + end));
    tensors.set(name, { shape: entry.shape, data });
    expectedEnd = Math.max(expectedEnd, end);
  }
  if (dataStart + expectedEnd !== buf.length) throw new CheckpointError(`${path}: ${buf.length - dataStart - expectedEnd} unexpected trailing bytes`);
  return { tensors, metadata: header.__metadata__ ?? {} };
}
