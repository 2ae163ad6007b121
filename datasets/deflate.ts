/**
 * A small, deterministic DEFLATE (RFC 1951) + gzip (RFC 1952) writer.
 *
 * Why not node:zlib? Its output depends on the zlib build inside Node (Node ships Chromium's zlib, whose match finder
 * may differ by CPU features and version) and on the platform (the gzip OS byte). The embedded fashion-mnist-mini files
 * must be regenerated bit-identically on any machine, so they are written by this encoder, whose output depends only on
 * its input. Reading still goes through node:zlib (any conforming inflater decodes this output).
 *
 * Method: LZ77 with hash chains (bounded chain length, one-step lazy matching), then one dynamic-Huffman block per
 * BLOCK_TOKENS tokens with length-limited canonical codes.
 */

const WINDOW = 32768;
const MIN_MATCH = 3;
const MAX_MATCH = 258;
const HASH_BITS = 15;
const HASH_SIZE = 1 << HASH_BITS;
const MAX_CHAIN = 128;
/** Matches at least this long are taken without looking one byte ahead. */
const LAZY_LIMIT = 32;
const BLOCK_TOKENS = 1 << 15;

const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193,
  12289, 16385, 24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
/** Order in which code-length code lengths are transmitted (RFC 1951 section 3.2.7). */
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** lengthIndex[len] = index into LENGTH_BASE for a match length 3..258. */
const lengthIndex = new Uint8Array(MAX_MATCH + 1);
for (let i = 0; i < LENGTH_BASE.length; i++) {
  const end = i + 1 < LENGTH_BASE.length ? LENGTH_BASE[i + 1] : MAX_MATCH + 1;
  for (let len = LENGTH_BASE[i]; len < end; len++) lengthIndex[len] = i;
}
lengthIndex[MAX_MATCH] = LENGTH_BASE.length - 1;
/** distIndex[d] = index into DIST_BASE for a distance 1..32768. */
const distIndex = new Uint8Array(WINDOW + 1);
for (let i = 0; i < DIST_BASE.length; i++) {
  const end = i + 1 < DIST_BASE.length ? DIST_BASE[i + 1] : WINDOW + 1;
  for (let d = DIST_BASE[i]; d < end; d++) distIndex[d] = i;
}

class BitWriter {
  private buf = new Uint8Array(1 << 16);
  private len = 0;
  private bits = 0;
  private count = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Appends the low `n` bits of `value` (n <= 16), least significant bit first. */
  write(value: number, n: number): void {
    this.bits |= (value & ((1 << n) - 1)) << this.count;
    this.count += n;
    this.ensure(3);
    while (this.count >= 8) {
      this.buf[this.len++] = this.bits & 0xff;
      this.bits >>>= 8;
      this.count -= 8;
    }
  }

  bytes(data: Uint8Array): void {
    this.flushToByte();
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  flushToByte(): void {
    if (this.count > 0) {
      this.ensure(1);
      this.buf[this.len++] = this.bits & 0xff;
      this.bits = 0;
      this.count = 0;
    }
  }

  finish(): Uint8Array {
    this.flushToByte();
    return this.buf.slice(0, this.len);
  }
}

/**
 * Code lengths of a Huffman code for `freq`, none longer than `limit`. Deterministic: ties are broken by symbol order.
 * At least two symbols always get a code (a decoder needs a complete code), even when fewer are used.
 */
export function huffmanLengths(freq: ArrayLike<number>, limit: number): Uint8Array {
  const n = freq.length;
  const f = Array.from(freq, (v) => v);
  let used = f.reduce((acc, v) => acc + (v > 0 ? 1 : 0), 0);
  for (let s = 0; used < 2 && s < n; s++) {
    if (f[s] === 0) {
      f[s] = 1;
      used++;
    }
  }
  for (;;) {
    const lengths = plainHuffman(f);
    let max = 0;
    for (const l of lengths) max = Math.max(max, l);
    if (max <= limit) return lengths;
    // Flatten the distribution and try again; converges because equal weights give a balanced tree.
    for (let s = 0; s < n; s++) if (f[s] > 0) f[s] = (f[s] >> 1) | 1;
  }
}

/** Unlimited Huffman code lengths via the two-queue method over leaves sorted by (weight, symbol). */
function plainHuffman(f: number[]): Uint8Array {
  const n = f.length;
  const leaves: number[] = [];
  for (let s = 0; s < n; s++) if (f[s] > 0) leaves.push(s);
  leaves.sort((a, b) => f[a] - f[b] || a - b);
  const m = leaves.length;
  // Nodes 0..m-1 are leaves (in sorted order), m.. are internal nodes.
  const weight: number[] = leaves.map((s) => f[s]);
  const parent: number[] = new Array(2 * m - 1).fill(-1);
  let leafNext = 0;
  let internalNext = m;
  let created = m;
  const pick = (): number => {
    if (leafNext < m && (internalNext >= created || weight[leafNext] <= weight[internalNext])) return leafNext++;
    return internalNext++;
  };
  while (created < 2 * m - 1) {
    const a = pick();
    const b = pick();
    weight[created] = weight[a] + weight[b];
    parent[a] = created;
    parent[b] = created;
    created++;
  }
  const depth: number[] = new Array(2 * m - 1).fill(0);
  for (let i = 2 * m - 3; i >= 0; i--) depth[i] = depth[parent[i]] + 1;
  const lengths = new Uint8Array(n);
  for (let i = 0; i < m; i++) lengths[leaves[i]] = depth[i];
  return lengths;
}

/** Canonical Huffman codes (RFC 1951 section 3.2.2), returned bit-reversed for LSB-first output. */
function canonicalCodes(lengths: Uint8Array): Uint16Array {
  const maxLen = 16;
  const blCount = new Uint16Array(maxLen);
  for (const l of lengths) if (l > 0) blCount[l]++;
  const nextCode = new Uint16Array(maxLen);
  let code = 0;
  for (let bits = 1; bits < maxLen; bits++) {
    code = (code + blCount[bits - 1]) << 1;
    nextCode[bits] = code;
  }
  const codes = new Uint16Array(lengths.length);
  for (let s = 0; s < lengths.length; s++) {
    const l = lengths[s];
    if (l === 0) continue;
    let c = nextCode[l]++;
    let r = 0;
    for (let i = 0; i < l; i++) {
      r = (r << 1) | (c & 1);
      c >>= 1;
    }
    codes[s] = r;
  }
  return codes;
}

interface Tokens {
  /** 0 for a literal, else the match length. */
  len: Uint16Array;
  /** The literal byte, or the match distance. */
  val: Uint16Array;
  count: number;
}

/** LZ77 parse of `data` into literals and (length, distance) matches. */
function lz77(data: Uint8Array): Tokens {
  const n = data.length;
  const tokens: Tokens = { len: new Uint16Array(Math.max(n, 1)), val: new Uint16Array(Math.max(n, 1)), count: 0 };
  const head = new Int32Array(HASH_SIZE).fill(-1);
  const prev = new Int32Array(Math.max(n, 1));
  const hash = (i: number): number => ((data[i] << 10) ^ (data[i + 1] << 5) ^ data[i + 2]) & (HASH_SIZE - 1);
  const insert = (i: number): void => {
    if (i + MIN_MATCH > n) return;
    const h = hash(i);
    prev[i] = head[h];
    head[h] = i;
  };
  let bestDist = 0;
  /** Longest match for position i among earlier positions; sets bestDist, returns the length (0 if < MIN_MATCH). */
  const find = (i: number): number => {
    if (i + MIN_MATCH > n) return 0;
    const maxLen = Math.min(MAX_MATCH, n - i);
    let best = MIN_MATCH - 1;
    bestDist = 0;
    let j = head[hash(i)];
    let chain = MAX_CHAIN;
    while (j >= 0 && i - j <= WINDOW && chain-- > 0) {
      if (data[j + best] === data[i + best]) {
        let k = 0;
        while (k < maxLen && data[j + k] === data[i + k]) k++;
        if (k > best) {
          best = k;
          bestDist = i - j;
          if (k === maxLen) break;
        }
      }
      j = prev[j];
    }
    return best >= MIN_MATCH ? best : 0;
  };
  const push = (len: number, val: number): void => {
    tokens.len[tokens.count] = len;
    tokens.val[tokens.count] = val;
    tokens.count++;
  };
  let i = 0;
  while (i < n) {
    const len = find(i);
    const dist = bestDist;
    insert(i);
    if (len === 0) {
      push(0, data[i]);
      i++;
      continue;
    }
    if (len < LAZY_LIMIT && i + 1 < n && find(i + 1) > len) {
      push(0, data[i]);
      i++;
      continue;
    }
    push(len, dist);
    for (let k = i + 1; k < i + len; k++) insert(k);
    i += len;
  }
  return tokens;
}

/** Run-length encodes the concatenated code lengths with symbols 16/17/18; returns [symbol, extraValue] pairs. */
function encodeCodeLengths(lengths: Uint8Array): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let i = 0;
  while (i < lengths.length) {
    const l = lengths[i];
    let run = 1;
    while (i + run < lengths.length && lengths[i + run] === l) run++;
    if (l === 0) {
      let left = run;
      while (left >= 11) {
        const r = Math.min(left, 138);
        out.push([18, r - 11]);
        left -= r;
      }
      if (left >= 3) {
        out.push([17, left - 3]);
        left = 0;
      }
      while (left-- > 0) out.push([0, 0]);
    } else {
      out.push([l, 0]);
      let left = run - 1;
      while (left >= 3) {
        const r = Math.min(left, 6);
        out.push([16, r - 3]);
        left -= r;
      }
      while (left-- > 0) out.push([l, 0]);
    }
    i += run;
  }
  return out;
}

function writeBlock(w: BitWriter, t: Tokens, start: number, end: number, final: boolean): void {
  const litFreq = new Uint32Array(286);
  const distFreq = new Uint32Array(30);
  for (let k = start; k < end; k++) {
    if (t.len[k] === 0) litFreq[t.val[k]]++;
    else {
      litFreq[257 + lengthIndex[t.len[k]]]++;
      distFreq[distIndex[t.val[k]]]++;
    }
  }
  litFreq[256] = 1;
  const litLen = huffmanLengths(litFreq, 15);
  const distLen = huffmanLengths(distFreq, 15);
  let hlit = 286;
  while (hlit > 257 && litLen[hlit - 1] === 0) hlit--;
  let hdist = 30;
  while (hdist > 1 && distLen[hdist - 1] === 0) hdist--;
  const all = new Uint8Array(hlit + hdist);
  all.set(litLen.subarray(0, hlit), 0);
  all.set(distLen.subarray(0, hdist), hlit);
  const rle = encodeCodeLengths(all);
  const clFreq = new Uint32Array(19);
  for (const [sym] of rle) clFreq[sym]++;
  const clLen = huffmanLengths(clFreq, 7);
  let hclen = 19;
  while (hclen > 4 && clLen[CL_ORDER[hclen - 1]] === 0) hclen--;

  w.write(final ? 1 : 0, 1);
  w.write(2, 2);
  w.write(hlit - 257, 5);
  w.write(hdist - 1, 5);
  w.write(hclen - 4, 4);
  for (let k = 0; k < hclen; k++) w.write(clLen[CL_ORDER[k]], 3);
  const clCodes = canonicalCodes(clLen);
  for (const [sym, extra] of rle) {
    w.write(clCodes[sym], clLen[sym]);
    if (sym === 16) w.write(extra, 2);
    else if (sym === 17) w.write(extra, 3);
    else if (sym === 18) w.write(extra, 7);
  }
  const litCodes = canonicalCodes(litLen);
  const distCodes = canonicalCodes(distLen);
  for (let k = start; k < end; k++) {
    const len = t.len[k];
    if (len === 0) {
      const b = t.val[k];
      w.write(litCodes[b], litLen[b]);
    } else {
      const li = lengthIndex[len];
      w.write(litCodes[257 + li], litLen[257 + li]);
      if (LENGTH_EXTRA[li] > 0) w.write(len - LENGTH_BASE[li], LENGTH_EXTRA[li]);
      const dist = t.val[k];
      const di = distIndex[dist];
      w.write(distCodes[di], distLen[di]);
      if (DIST_EXTRA[di] > 0) w.write(dist - DIST_BASE[di], DIST_EXTRA[di]);
    }
  }
  w.write(litCodes[256], litLen[256]);
}

/** Raw DEFLATE stream of `data`. */
export function deflateDeterministic(data: Uint8Array): Uint8Array {
  const w = new BitWriter();
  const t = lz77(data);
  if (t.count === 0) {
    writeBlock(w, t, 0, 0, true);
  } else {
    for (let start = 0; start < t.count; start += BLOCK_TOKENS) {
      const end = Math.min(start + BLOCK_TOKENS, t.count);
      writeBlock(w, t, start, end, end === t.count);
    }
  }
  return w.finish();
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A gzip member holding `data`: no file name, mtime 0, OS byte 255 ("unknown"), so the bytes are the same everywhere.
 */
export function gzipDeterministic(data: Uint8Array): Uint8Array {
  const body = deflateDeterministic(data);
  const out = new Uint8Array(10 + body.length + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], 0);
  out.set(body, 10);
  const view = new DataView(out.buffer);
  view.setUint32(10 + body.length, crc32(data), true);
  view.setUint32(14 + body.length, data.length >>> 0, true);
  return out;
}
