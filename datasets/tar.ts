/**
 * A minimal tar reader: POSIX ustar headers (name + prefix), GNU long names ('L') and pax path records ('x'),
 * octal or base-256 sizes, header checksums verified. Reads an in-memory archive; member data are views into it.
 */
import { DatasetError } from "./types.js";

export interface TarEntry {
  /** Path inside the archive, without a leading "./". */
  name: string;
  type: "file" | "directory" | "other";
  data: Uint8Array;
}

const BLOCK = 512;
const decoder = new TextDecoder("utf-8");

function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return decoder.decode(nul >= 0 ? bytes.subarray(0, nul) : bytes);
}

function parseNumber(field: Uint8Array, what: string, file: string, offset: number): number {
  if (field[0] & 0x80) {
    // GNU base-256: big-endian two's complement, high bit of the first byte as a marker.
    let value = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i];
    return value;
  }
  const text = cString(field).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) {
    throw new DatasetError(`${file}: corrupted tar header at byte ${offset}: ${what} field is not octal (${JSON.stringify(text)})`);
  }
  return parseInt(text, 8);
}

function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function paxPath(data: Uint8Array): string | undefined {
  const text = decoder.decode(data);
  let pos = 0;
  let path: string | undefined;
  while (pos < text.length) {
    const space = text.indexOf(" ", pos);
    if (space < 0) break;
    const len = parseInt(text.slice(pos, space), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = text.slice(space + 1, pos + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0 && record.slice(0, eq) === "path") path = record.slice(eq + 1);
    pos += len;
  }
  return path;
}

/** Lists the members of a tar archive. `file` names the archive in error messages. */
export function readTar(archive: Uint8Array, file: string): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  let sawEnd = false;
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (isZeroBlock(header)) {
      sawEnd = true;
      break;
    }
    const stored = parseNumber(header.subarray(148, 156), "checksum", file, offset);
    let computed = 0;
    for (let i = 0; i < BLOCK; i++) computed += i >= 148 && i < 156 ? 0x20 : header[i];
    if (stored !== computed) {
      throw new DatasetError(
        `${file}: corrupted tar archive: header at byte ${offset} has checksum ${stored}, computed ${computed}`,
      );
    }
    let name = cString(header.subarray(0, 100));
    const size = parseNumber(header.subarray(124, 136), "size", file, offset);
    const typeflag = String.fromCharCode(header[156]);
    const magic = decoder.decode(header.subarray(257, 263));
    if (magic === "ustar\0") {
      const prefix = cString(header.subarray(345, 500));
      if (prefix) name = `${prefix}/${name}`;
    }
    const start = offset + BLOCK;
    if (start + size > archive.length) {
      throw new DatasetError(
        `${file}: truncated tar archive: member ${JSON.stringify(name)} declares ${size} bytes at byte ${start}, ` +
          `only ${Math.max(0, archive.length - start)} bytes remain`,
      );
    }
    const data = archive.subarray(start, start + size);
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
    if (typeflag === "L") {
      longName = cString(data);
      continue;
    }
    if (typeflag === "x") {
      longName = paxPath(data) ?? longName;
      continue;
    }
    if (typeflag === "g") continue;
    if (longName !== undefined) {
      name = longName;
      longName = undefined;
    }
    name = name.replace(/^(\.\/)+/, "");
    const type = typeflag === "0" || typeflag === "\0" || typeflag === "7" ? "file" : typeflag === "5" ? "directory" : "other";
    entries.push({ name, type, data });
  }
  if (!sawEnd && offset < archive.length) {
    throw new DatasetError(
      `${file}: truncated tar archive: ${archive.length - offset} stray bytes at byte ${offset}, less than a 512-byte header`,
    );
  }
  return entries;
}

/** A ustar archive of regular files (used by tests to build fixtures). */
export function writeTar(files: Array<{ name: string; data: Uint8Array }>): Uint8Array {
  const encoder = new TextEncoder();
  const blocks: Uint8Array[] = [];
  for (const f of files) {
    const header = new Uint8Array(BLOCK);
    const name = encoder.encode(f.name);
    if (name.length > 100) throw new Error(`writeTar: name too long: ${f.name}`);
    header.set(name, 0);
    const octal = (value: number, width: number): Uint8Array => encoder.encode(value.toString(8).padStart(width - 1, "0") + "\0");
    header.set(octal(0o644, 8), 100);
    header.set(octal(0, 8), 108);
    header.set(octal(0, 8), 116);
    header.set(octal(f.data.length, 12), 124);
    header.set(octal(0, 12), 136);
    header[156] = "0".charCodeAt(0);
    header.set(encoder.encode("ustar\0"), 257);
    header.set(encoder.encode("00"), 263);
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    blocks.push(header);
    const padded = new Uint8Array(Math.ceil(f.data.length / BLOCK) * BLOCK);
    padded.set(f.data);
    blocks.push(padded);
  }
  blocks.push(new Uint8Array(2 * BLOCK));
  const total = blocks.reduce((a, b) => a + b.length, 0);
  const out = new Uint8Array(total);
  let pos = 0;
  for (const b of blocks) {
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}
