/** Helpers shared by the dataset loaders: statistics, fingerprints, the package root. */
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { ImageSplit } from "./types.js";

/** Per-channel mean and (population) std of NHWC pixels scaled to [0, 1], exact via a 256-bin histogram. */
export function channelStats(pixels: Uint8Array, channels: number): { mean: number[]; std: number[] } {
  const hist = Array.from({ length: channels }, () => new Float64Array(256));
  for (let c = 0; c < channels; c++) {
    const h = hist[c];
    for (let i = c; i < pixels.length; i += channels) h[pixels[i]]++;
  }
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    const h = hist[c];
    let n = 0;
    let sum = 0;
    for (let v = 0; v < 256; v++) {
      n += h[v];
      sum += h[v] * (v / 255);
    }
    const m = n > 0 ? sum / n : 0;
    let sq = 0;
    for (let v = 0; v < 256; v++) sq += h[v] * (v / 255 - m) ** 2;
    mean.push(m);
    std.push(n > 0 ? Math.sqrt(sq / n) : 0);
  }
  return { mean, std };
}

export interface FingerprintPart {
  /** Logical file name (not a path), e.g. "train-images-idx3-ubyte". */
  name: string;
  /** The file's decompressed content. */
  bytes: Uint8Array;
}

/**
 * sha256 over the source files' decompressed bytes in a fixed order, each framed by its logical name and length.
 * Decompressed, so that the same data compressed differently (the Debian package re-gzips the canonical files) or
 * unpacked by the user gives the same fingerprint.
 */
export function contentFingerprint(dataset: string, parts: FingerprintPart[]): string {
  const hash = createHash("sha256");
  hash.update(`prunebench-dataset-v1\0${dataset}\0${parts.length}\0`);
  for (const p of parts) {
    hash.update(`${p.name}\0${p.bytes.length}\0`);
    hash.update(p.bytes);
  }
  return hash.digest("hex");
}

/** In-process fingerprint cache, keyed by the source files' paths, sizes and modification times. */
const fingerprintCache = new Map<string, string>();

export async function filesIdentity(dataset: string, files: string[]): Promise<string> {
  const parts: string[] = [dataset];
  for (const f of files) {
    const s = await stat(f);
    parts.push(`${resolve(f)}|${s.size}|${s.mtimeMs}|${s.ino}`);
  }
  return parts.join("\n");
}

export function cachedFingerprint(identity: string): string | undefined {
  return fingerprintCache.get(identity);
}

export function rememberFingerprint(identity: string, fingerprint: string): void {
  fingerprintCache.set(identity, fingerprint);
}

export function splitOf(pixels: Uint8Array, labels: Uint8Array): ImageSplit {
  return { pixels, labels, count: labels.length };
}
