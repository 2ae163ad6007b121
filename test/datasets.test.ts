import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { CIFAR10_BATCHES, CIFAR_RECORD_BYTES, decodeCifarBatch } from "../datasets/formats/cifar-binary.js";
import { loadCifar10 } from "../datasets/cifar10.js";
import {
  FASHION_MNIST_CONTENT_SHA256,
  FASHION_MNIST_FINGERPRINT,
  FASHION_MNIST_SOURCE,
  loadFashionMnist,
} from "../datasets/fashion-mnist.js";
import {
  FASHION_MNIST_MINI_FINGERPRINT,
  MINI_SEEDS,
  MINI_TEST_PER_CLASS,
  MINI_TRAIN_PER_CLASS,
  fashionMnistMini,
  loadFashionMnistMini,
  miniDataDir,
} from "../datasets/fashion-mnist-mini.js";
import { decodeIdx, encodeIdx } from "../datasets/formats/idx.js";
import { DATASETS, datasetCatalog, getDataset } from "../datasets/index.js";
import { defaultFetcher, downloadFile, locateDataset, type DatasetSource, type Fetcher, type LocateOptions } from "../datasets/locate.js";
import { balancedSubset, buildMiniFiles } from "../datasets/mini-build.js";
import { loadMnist } from "../datasets/mnist.js";
import tarStream from "tar-stream";
import { DatasetError } from "../datasets/types.js";

const DEBIAN_DIR = "/usr/share/datasets/fashion-mnist";
const temps: string[] = [];
after(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "prunebench-datasets-"));
  temps.push(d);
  return d;
}

/** Options that isolate a loader from this machine: nothing but what the test names is searched, nothing downloaded. */
function isolated(extra: LocateOptions = {}): LocateOptions {
  return { env: {}, download: false, log: () => {}, roots: { cacheDir: tmp(), systemDirs: [] }, ...extra };
}

interface Fixture {
  train: { pixels: Uint8Array; labels: Uint8Array };
  test: { pixels: Uint8Array; labels: Uint8Array };
}

function fixture(nTrain: number, nTest: number, salt: number): Fixture {
  const make = (n: number, off: number) => ({
    pixels: Uint8Array.from({ length: n * 784 }, (_, i) => (i * 31 + salt * 7 + off) % 256),
    labels: Uint8Array.from({ length: n }, (_, i) => (i + salt) % 10),
  });
  return { train: make(nTrain, 0), test: make(nTest, 101) };
}

const IDX_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/** Writes the four IDX files for `fx` into `dir`, gzip-compressed (".gz") or raw. */
function writeIdxSet(dir: string, fx: Fixture, gz: boolean): void {
  mkdirSync(dir, { recursive: true });
  const contents = [
    encodeIdx([fx.train.labels.length, 28, 28], fx.train.pixels),
    encodeIdx([fx.train.labels.length], fx.train.labels),
    encodeIdx([fx.test.labels.length, 28, 28], fx.test.pixels),
    encodeIdx([fx.test.labels.length], fx.test.labels),
  ];
  IDX_NAMES.forEach((name, i) => writeFileSync(join(dir, gz ? `${name}.gz` : name), gz ? gzipSync(contents[i]) : contents[i]));
}

async function rejectsWith(p: Promise<unknown>, ...patterns: RegExp[]): Promise<DatasetError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    for (const re of patterns) assert.match(err.message, re);
    return err;
  }
  assert.fail("expected a rejection");
}

describe("IDX datasets (fashion-mnist, mnist loaders)", () => {
  test("loads gzip-compressed files from <dataDir>/<name>/ with exact pixels, labels and stats", async () => {
    const root = tmp();
    const fx = fixture(20, 7, 1);
    writeIdxSet(join(root, "fashion-mnist"), fx, true);
    const d = await loadFashionMnist(isolated({ dataDir: root }));
    assert.equal(d.name, "fashion-mnist");
    assert.equal(d.source, join(root, "fashion-mnist"));
    assert.deepEqual(d.inputShape, [28, 28, 1]);
    assert.equal(d.numClasses, 10);
    assert.equal(d.classNames[0], "T-shirt/top");
    assert.equal(d.train.count, 20);
    assert.equal(d.test.count, 7);
    assert.deepEqual(d.train.pixels, fx.train.pixels);
    assert.deepEqual(d.test.labels, fx.test.labels);
    let sum = 0;
    for (const v of fx.train.pixels) sum += v / 255;
    const mean = sum / fx.train.pixels.length;
    let sq = 0;
    for (const v of fx.train.pixels) sq += (v / 255 - mean) ** 2;
    assert.ok(Math.abs(d.mean[0] - mean) < 1e-12);
    assert.ok(Math.abs(d.std[0] - Math.sqrt(sq / fx.train.pixels.length)) < 1e-12);
    assert.match(d.fingerprint, /^[0-9a-f]{64}$/);
  });

  test("raw (unpacked) files directly in dataDir load too, with the same fingerprint as the .gz copy", async () => {
    const fx = fixture(12, 5, 2);
    const gzRoot = tmp();
    const rawRoot = tmp();
    writeIdxSet(join(gzRoot, "mnist"), fx, true);
    writeIdxSet(rawRoot, fx, false);
    const a = await loadMnist(isolated({ dataDir: gzRoot }));
    const b = await loadMnist(isolated({ dataDir: rawRoot }));
    assert.equal(b.source, rawRoot);
    assert.deepEqual(b.train.pixels, fx.train.pixels);
    assert.equal(a.fingerprint, b.fingerprint);
    assert.deepEqual(a.classNames, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  });

  test("the fingerprint changes when one pixel changes", async () => {
    const fx = fixture(10, 3, 3);
    const r1 = tmp();
    writeIdxSet(r1, fx, true);
    const before = (await loadFashionMnist(isolated({ dataDir: r1 }))).fingerprint;
    fx.test.pixels[17] ^= 1;
    const r2 = tmp();
    writeIdxSet(r2, fx, true);
    assert.notEqual((await loadFashionMnist(isolated({ dataDir: r2 }))).fingerprint, before);
  });

  test("a truncated .gz gives a clear gunzip error naming the file", async () => {
    const root = tmp();
    writeIdxSet(root, fixture(30, 3, 4), true);
    const file = join(root, "train-images-idx3-ubyte.gz");
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await rejectsWith(loadFashionMnist(isolated({ dataDir: root })), /train-images-idx3-ubyte\.gz: gunzip failed/, /truncated or corrupted/);
  });

  test("a truncated raw IDX file reports expected vs found byte counts", async () => {
    const root = tmp();
    writeIdxSet(root, fixture(4, 2, 5), false);
    const file = join(root, "t10k-images-idx3-ubyte");
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 10));
    await rejectsWith(
      loadFashionMnist(isolated({ dataDir: root })),
      /t10k-images-idx3-ubyte: truncated/,
      /dimensions \[2, 28, 28\]/,
      new RegExp(`= ${bytes.length} bytes, found ${bytes.length - 10} bytes`),
    );
  });

  test("a file gzip-compressed twice is reported as bad magic", async () => {
    const root = tmp();
    writeIdxSet(root, fixture(4, 2, 6), true);
    const file = join(root, "train-labels-idx1-ubyte.gz");
    writeFileSync(file, gzipSync(readFileSync(file)));
    await rejectsWith(loadFashionMnist(isolated({ dataDir: root })), /train-labels-idx1-ubyte\.gz: not an IDX file/, /found 1f 8b/, /compressed twice/);
  });

  test("image/label count mismatch and out-of-range labels are rejected", async () => {
    const root = tmp();
    const fx = fixture(5, 2, 7);
    writeIdxSet(root, fx, false);
    writeFileSync(join(root, "train-labels-idx1-ubyte"), encodeIdx([4], fx.train.labels.subarray(0, 4)));
    await rejectsWith(loadFashionMnist(isolated({ dataDir: root })), /holds 5 images but .*train-labels-idx1-ubyte holds 4 labels/);
    const bad = Uint8Array.from(fx.train.labels);
    bad[3] = 12;
    writeFileSync(join(root, "train-labels-idx1-ubyte"), encodeIdx([5], bad));
    await rejectsWith(loadFashionMnist(isolated({ dataDir: root })), /label 3 is 12, expected 0\.\.9/);
  });

  test("decodeIdx: wrong image shape, unsupported dtype, short header", async () => {
    const root = tmp();
    const fx = fixture(3, 2, 8);
    writeIdxSet(root, fx, false);
    writeFileSync(join(root, "train-images-idx3-ubyte"), encodeIdx([3, 392, 2], fx.train.pixels));
    await rejectsWith(loadFashionMnist(isolated({ dataDir: root })), /expected images of shape \[N, 28, 28\], found \[3, 392, 2\]/);
    assert.throws(() => decodeIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]), "f"), /unsupported IDX dtype 0xd/);
    assert.throws(() => decodeIdx(Uint8Array.from([0, 0, 8, 3, 0, 0]), "f"), /3 dimensions need 16 header bytes, found 6/);
    assert.deepEqual(decodeIdx(encodeIdx([2, 3], Uint8Array.of(1, 2, 3, 4, 5, 6)), "f").dims, [2, 3]);
  });
});

/** Pixel value of image n at (y, x, channel c) in the CIFAR fixtures. */
const cifarPixel = (n: number, y: number, x: number, c: number): number => (n * 13 + y * 7 + x * 3 + c * 101) % 256;

/** A CIFAR batch file: `n` records starting at global image index `first` (CHW planes). */
function cifarBatch(first: number, n: number): Uint8Array {
  const out = new Uint8Array(n * CIFAR_RECORD_BYTES);
  for (let i = 0; i < n; i++) {
    const rec = i * CIFAR_RECORD_BYTES;
    out[rec] = (first + i) % 10;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) out[rec + 1 + c * 1024 + y * 32 + x] = cifarPixel(first + i, y, x, c);
    }
  }
  return out;
}

/** data_batch_1..5 with 2 images each (images 0..9), test_batch with 3 (images 100..102). */
function cifarBatches(): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (let b = 0; b < 5; b++) m.set(`data_batch_${b + 1}.bin`, cifarBatch(b * 2, 2));
  m.set("test_batch.bin", cifarBatch(100, 3));
  return m;
}

/** A tar archive (through tar-stream, as GNU tar would write it) of `files`, gzipped unless `gzip` is false. */
async function tarOf(files: Array<{ name: string; data: Uint8Array }>, gzip = true): Promise<Uint8Array> {
  const pack = tarStream.pack();
  for (const f of files) pack.entry({ name: f.name, size: f.data.length }, Buffer.from(f.data));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  const tar = Buffer.concat(chunks);
  return gzip ? gzipSync(tar) : tar;
}

function cifarArchive(batches = cifarBatches()): Promise<Uint8Array> {
  return tarOf([...batches].map(([name, data]) => ({ name: `cifar-10-batches-bin/${name}`, data })));
}

describe("CIFAR-10 binary (cifar10 loader, tar reader)", () => {
  test("loads cifar-10-binary.tar.gz from <dataDir>/cifar10/ and converts CHW records to NHWC", async () => {
    const root = tmp();
    mkdirSync(join(root, "cifar10"));
    writeFileSync(join(root, "cifar10", "cifar-10-binary.tar.gz"), await cifarArchive());
    const d = await loadCifar10(isolated({ dataDir: root }));
    assert.deepEqual(d.inputShape, [32, 32, 3]);
    assert.equal(d.train.count, 10);
    assert.equal(d.test.count, 3);
    assert.equal(d.classNames[9], "truck");
    assert.deepEqual([...d.train.labels], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual([...d.test.labels], [0, 1, 2]);
    for (const [n, y, x, c] of [[0, 0, 0, 0], [3, 5, 31, 2], [9, 31, 0, 1], [7, 16, 16, 0]]) {
      assert.equal(d.train.pixels[((n * 32 + y) * 32 + x) * 3 + c], cifarPixel(n, y, x, c), `train[${n}](${y},${x},${c})`);
    }
    assert.equal(d.test.pixels[((2 * 32 + 4) * 32 + 9) * 3 + 1], cifarPixel(102, 4, 9, 1));
    assert.equal(d.mean.length, 3);
    let s = 0;
    for (let n = 0; n < 10; n++) for (let p = 0; p < 1024; p++) s += cifarPixel(n, Math.floor(p / 32), p % 32, 2) / 255;
    assert.ok(Math.abs(d.mean[2] - s / 10240) < 1e-12);
  });

  test("the unpacked cifar-10-batches-bin/ folder gives the same data and fingerprint as the archive", async () => {
    const a = tmp();
    writeFileSync(join(a, "cifar-10-binary.tar.gz"), await cifarArchive());
    const b = tmp();
    mkdirSync(join(b, "cifar-10-batches-bin"));
    for (const [name, data] of cifarBatches()) writeFileSync(join(b, "cifar-10-batches-bin", name), data);
    const da = await loadCifar10(isolated({ dataDir: a }));
    const db = await loadCifar10(isolated({ dataDir: b }));
    assert.equal(db.source, b);
    assert.deepEqual(db.train.pixels, da.train.pixels);
    assert.equal(da.fingerprint, db.fingerprint);
  });

  test("corrupted or incomplete archives give clear errors", async () => {
    const root = tmp();
    const file = join(root, "cifar-10-binary.tar.gz");
    const tar = gunzipSync(await cifarArchive());
    // Header checksum mismatch.
    const flipped = Uint8Array.from(tar);
    flipped[512 * 0 + 10] ^= 0x01;
    writeFileSync(file, gzipSync(flipped));
    await rejectsWith(loadCifar10(isolated({ dataDir: root })), /cifar-10-binary\.tar\.gz: corrupted tar archive \(Invalid tar header.*\)\. Delete it and get it again/);
    // Tar cut inside a member.
    writeFileSync(file, gzipSync(tar.subarray(0, 512 * 4)));
    await rejectsWith(loadCifar10(isolated({ dataDir: root })), /truncated tar archive: member "cifar-10-batches-bin\/data_batch_1\.bin" declares 6146 bytes, the archive ends after \d+/);
    // Truncated gzip stream.
    const gz = await cifarArchive();
    writeFileSync(file, gz.subarray(0, gz.length - 100));
    await rejectsWith(loadCifar10(isolated({ dataDir: root })), /gunzip failed/);
    // A member missing.
    const partial = cifarBatches();
    partial.delete("test_batch.bin");
    writeFileSync(file, await cifarArchive(partial));
    await rejectsWith(loadCifar10(isolated({ dataDir: root })), /not a CIFAR-10 binary archive: missing cifar-10-batches-bin\/test_batch\.bin/);
    // A batch whose length is not a whole number of records.
    const short = cifarBatches();
    short.set("data_batch_3.bin", short.get("data_batch_3.bin")!.subarray(0, 5000));
    writeFileSync(file, await cifarArchive(short));
    await rejectsWith(
      loadCifar10(isolated({ dataDir: root })),
      /data_batch_3\.bin: truncated or corrupted CIFAR batch: expected a positive multiple of 3073 bytes .* found 5000 bytes/,
    );
  });

  test("decodeCifarBatch rejects labels >= 10", () => {
    const b = cifarBatch(0, 2);
    b[CIFAR_RECORD_BYTES] = 10;
    assert.throws(() => decodeCifarBatch(b, "x.bin"), /record 1 has label 10/);
  });

  test("an uncompressed tar with long (pax) member names and other files beside the batches loads like the archive", async () => {
    const root = tmp();
    const deep = "d/".repeat(60);
    const files = [
      { name: "cifar-10-batches-bin/readme.html", data: new TextEncoder().encode("<p>readme</p>") },
      ...[...cifarBatches()].map(([name, data]) => ({ name: `${deep}${name}`, data })),
    ];
    writeFileSync(join(root, "cifar-10-binary.tar.gz"), await tarOf(files, false));
    const viaLongNames = await loadCifar10(isolated({ dataDir: root }));
    const plainRoot = tmp();
    writeFileSync(join(plainRoot, "cifar-10-binary.tar.gz"), await cifarArchive());
    const reference = await loadCifar10(isolated({ dataDir: plainRoot }));
    assert.deepEqual(viaLongNames.train.pixels, reference.train.pixels);
    assert.deepEqual(viaLongNames.test.labels, reference.test.labels);
    assert.equal(viaLongNames.fingerprint, reference.fingerprint);
    assert.equal(CIFAR10_BATCHES.length, 6);
  });
});

describe("lookup order, download, missing data", () => {
  const debianLike = (dir: string) => [{ dir, install: "sudo apt-get install -y dataset-fashion-mnist" }];

  test("dataDir beats BENCH_DATA_DIR beats the cache beats the system folder; incomplete folders are skipped", async () => {
    const dataDir = tmp();
    const envDir = tmp();
    const cache = tmp();
    const system = tmp();
    writeIdxSet(join(dataDir, "fashion-mnist"), fixture(3, 1, 10), true);
    writeIdxSet(envDir, fixture(3, 1, 11), true);
    writeIdxSet(join(cache, "fashion-mnist"), fixture(3, 1, 12), true);
    writeIdxSet(system, fixture(3, 1, 13), true);
    const opts = (extra: LocateOptions): LocateOptions => ({
      download: false,
      log: () => {},
      env: { BENCH_DATA_DIR: envDir },
      roots: { cacheDir: cache, systemDirs: debianLike(system) },
      ...extra,
    });
    const fps = new Set<string>();
    const load = async (extra: LocateOptions) => {
      const d = await loadFashionMnist(opts(extra));
      fps.add(d.fingerprint);
      return d;
    };
    assert.equal((await load({ dataDir })).source, join(dataDir, "fashion-mnist"));
    assert.equal((await load({})).source, envDir);
    assert.equal((await load({ env: {} })).source, join(cache, "fashion-mnist"));
    rmSync(join(cache, "fashion-mnist", "t10k-labels-idx1-ubyte.gz"));
    assert.equal((await load({ env: {} })).source, system, "an incomplete cache folder is skipped");
    rmSync(join(dataDir, "fashion-mnist", "train-images-idx3-ubyte.gz"));
    assert.equal((await load({ dataDir })).source, envDir, "an incomplete data dir is skipped");
    assert.equal(fps.size, 4, "each folder held different data");

    const located = await locateDataset(FASHION_MNIST_SOURCE, opts({ env: {} }));
    assert.equal(located.origin, "system");
    assert.deepEqual(
      located.chosen.map((c) => c.paths[0]),
      IDX_NAMES.map((n) => join(system, `${n}.gz`)),
    );
  });

  test("missing data: the error lists every place searched, in order, and how to get the files", async () => {
    const dataDir = tmp();
    const cache = tmp();
    const system = join(tmp(), "absent");
    writeFileSync(join(dataDir, "train-images-idx3-ubyte.gz"), gzipSync(encodeIdx([1, 28, 28], new Uint8Array(784))));
    const err = await rejectsWith(
      loadFashionMnist({ dataDir, download: false, env: {}, roots: { cacheDir: cache, systemDirs: debianLike(system) } }),
      /Fashion-MNIST \(dataset "fashion-mnist"\): files not found/,
      /apt-get install -y dataset-fashion-mnist/,
      /https:\/\/raw\.githubusercontent\.com\/zalandoresearch\/fashion-mnist\/master\/data\/fashion\/t10k-labels-idx1-ubyte\.gz/,
      /--data-dir <folder>/,
      /BENCH_DATA_DIR/,
      /downloading is disabled/,
    );
    const m = err.message;
    const order = [join(dataDir, "fashion-mnist"), `${dataDir}  [--data-dir]: missing`, join(cache, "fashion-mnist"), system];
    let last = -1;
    for (const o of order) {
      const at = m.indexOf(o, last + 1);
      assert.ok(at > last, `${o} listed after the previous location in:\n${m}`);
      last = at;
    }
    assert.match(m, new RegExp(`into ${join(cache, "fashion-mnist").replace(/[/\\.]/g, "\\$&")}/`));
    const dataDirLine = m.split("\n").find((l) => l.includes(`${dataDir}  [--data-dir]`))!;
    assert.match(dataDirLine, /t10k-labels-idx1-ubyte\.gz/);
    assert.doesNotMatch(dataDirLine, /train-images/, "the file present there is not listed as missing");

    await rejectsWith(
      loadCifar10({ download: false, env: {}, roots: { cacheDir: cache, systemDirs: [] } }),
      /https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar-10-binary\.tar\.gz/,
      /cifar10\/ subfolder/,
    );
  });

  test("BENCH_OFFLINE=1 prevents any download", async () => {
    let calls = 0;
    const fetcher: Fetcher = async () => {
      calls++;
      return Readable.from([Buffer.from("x")]);
    };
    await rejectsWith(
      loadMnist({ env: { BENCH_OFFLINE: "1" }, fetcher, roots: { dataDirs: [], cacheDir: tmp(), systemDirs: [] } }),
      /Download not attempted: BENCH_OFFLINE=1/,
    );
    assert.equal(calls, 0);
  });

  /** A one-file dataset whose download we control. */
  function tinySource(bytes: Uint8Array, urls: string[], algorithm: "sha256" | "md5" = "sha256"): DatasetSource {
    return {
      name: "tiny",
      title: "Tiny",
      requirements: [
        {
          label: "payload",
          alternatives: [["payload.bin"]],
          download: { name: "payload.bin", urls, checksums: [{ algorithm, hex: createHash(algorithm).update(bytes).digest("hex") }] },
        },
      ],
    };
  }

  test("a download whose checksum does not match is rejected and leaves no file behind", async () => {
    const cache = tmp();
    const good = Buffer.from("the real payload");
    const fetcher: Fetcher = async () => Readable.from([Buffer.from("tampered payload")]);
    await rejectsWith(
      locateDataset(tinySource(good, ["https://example.invalid/payload.bin"]), { env: {}, fetcher, log: () => {}, roots: { dataDirs: [], cacheDir: cache, systemDirs: [] } }),
      /checksum mismatch: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/,
      /download rejected/,
    );
    assert.deepEqual(readdirSync(join(cache, "tiny")), [], "neither the file nor a temporary file remains");
  });

  test("a verified download lands in the cache (md5 accepted too) and is found there next time", async () => {
    const cache = tmp();
    const payload = Buffer.from("payload bytes ".repeat(1000));
    let calls = 0;
    const fetcher: Fetcher = async () => {
      calls++;
      return Readable.from([payload.subarray(0, 5000), payload.subarray(5000)]);
    };
    const source = tinySource(payload, ["https://example.invalid/payload.bin"], "md5");
    const opts: LocateOptions = { env: {}, fetcher, log: () => {}, roots: { dataDirs: [], cacheDir: cache, systemDirs: [] } };
    const first = await locateDataset(source, opts);
    assert.equal(first.origin, "download");
    assert.deepEqual(readFileSync(join(cache, "tiny", "payload.bin")), payload);
    assert.deepEqual(readdirSync(join(cache, "tiny")), ["payload.bin"]);
    const second = await locateDataset(source, opts);
    assert.equal(second.origin, "cache");
    assert.equal(calls, 1);
  });

  test("downloading a real loader's files: a fake mirror serving the right bytes yields a loadable dataset", async () => {
    const fx = fixture(6, 2, 20);
    const staging = tmp();
    writeIdxSet(staging, fx, true);
    const files = new Map(IDX_NAMES.map((n) => [`${n}.gz`, readFileSync(join(staging, `${n}.gz`))]));
    const source: DatasetSource = {
      ...FASHION_MNIST_SOURCE,
      systemDirs: [],
      requirements: FASHION_MNIST_SOURCE.requirements.map((r) => {
        const name = r.download!.name;
        return { ...r, download: { name, urls: [`mem://${name}`], checksums: [{ algorithm: "sha256", hex: createHash("sha256").update(files.get(name)!).digest("hex") }] } };
      }),
    };
    const fetcher: Fetcher = async (url) => Readable.from([files.get(url.slice("mem://".length))!]);
    const cache = tmp();
    const located = await locateDataset(source, { env: {}, fetcher, log: () => {}, roots: { dataDirs: [], cacheDir: cache } });
    assert.equal(located.origin, "download");
    const d = await loadFashionMnist(isolated({ roots: { dataDirs: [], cacheDir: cache, systemDirs: [] } }));
    assert.equal(d.source, join(cache, "fashion-mnist"));
    assert.deepEqual(d.train.pixels, fx.train.pixels);
  });

  test("the default fetcher over HTTP on 127.0.0.1: 404 and bad mirrors are skipped, redirects followed, mismatches rejected", async () => {
    const good = Buffer.from("genuine file content\n".repeat(50));
    let hits = 0;
    const server: Server = createServer((req, res) => {
      hits++;
      if (req.url === "/good") res.end(good);
      else if (req.url === "/bad") res.end(Buffer.from("not the file"));
      else if (req.url === "/redirect") {
        res.writeHead(302, { location: "/good" });
        res.end();
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as { port: number }).port;
      const base = `http://127.0.0.1:${port}`;
      const sha = createHash("sha256").update(good).digest("hex");
      const remote = { name: "f.bin", checksums: [{ algorithm: "sha256" as const, hex: sha }], size: good.length };
      const dir = tmp();
      const path = await downloadFile({ ...remote, urls: [`${base}/missing`, `${base}/bad`, `${base}/redirect`] }, dir, defaultFetcher);
      assert.deepEqual(readFileSync(path), good);
      assert.equal(hits, 4);
      const dir2 = tmp();
      await assert.rejects(downloadFile({ ...remote, urls: [`${base}/bad`, `${base}/missing`] }, dir2, defaultFetcher), (err: Error) => {
        assert.ok(err instanceof DatasetError);
        assert.match(err.message, /size mismatch: expected 1050 bytes, got 12/);
        assert.match(err.message, /HTTP 404/);
        return true;
      });
      assert.deepEqual(readdirSync(dir2), []);
      const dir3 = tmp();
      await assert.rejects(
        downloadFile({ name: "f.bin", urls: [`${base}/bad`], checksums: [{ algorithm: "md5", hex: "0".repeat(32) }] }, dir3, defaultFetcher),
        /checksum mismatch: expected md5 0{32}/,
      );
      assert.deepEqual(readdirSync(dir3), []);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe("fashion-mnist-mini (embedded default)", () => {
  test("loads offline: 6,000 + 2,000 images, balanced classes, [28, 28, 1], 10 classes, pinned fingerprint", async () => {
    const d = await loadFashionMnistMini();
    assert.equal(d.name, "fashion-mnist-mini");
    assert.equal(d.train.count, 6000);
    assert.equal(d.test.count, 2000);
    assert.equal(d.train.pixels.length, 6000 * 784);
    assert.deepEqual(d.inputShape, [28, 28, 1]);
    assert.equal(d.numClasses, 10);
    assert.equal(d.classNames.length, 10);
    const counts = (labels: Uint8Array) => {
      const c = new Array<number>(10).fill(0);
      for (const l of labels) c[l]++;
      return c;
    };
    assert.deepEqual(counts(d.train.labels), new Array(10).fill(600));
    assert.deepEqual(counts(d.test.labels), new Array(10).fill(200));
    // Classes are interleaved, not sorted.
    assert.notDeepEqual([...d.train.labels.subarray(0, 600)], new Array(600).fill(d.train.labels[0]));
    assert.equal(d.fingerprint, "634cd044cfa293e0c7f2ecaa0f2ea5d9ec9766bbacb610bf6b0313512df52cc5");
    assert.equal(d.fingerprint, FASHION_MNIST_MINI_FINGERPRINT);
    assert.equal(d.source, miniDataDir());
    assert.ok(d.mean[0] > 0.2 && d.mean[0] < 0.4, `mean ${d.mean[0]}`);
    assert.ok(d.std[0] > 0.25 && d.std[0] < 0.45, `std ${d.std[0]}`);
    assert.equal((await loadFashionMnistMini()).fingerprint, d.fingerprint);
    assert.equal(await fashionMnistMini.fingerprint!(), d.fingerprint);
    assert.ok(existsSync(join(miniDataDir(), "LICENSE")) && existsSync(join(miniDataDir(), "README.md")));
  });

  test("the subset selection is deterministic and balanced", () => {
    const labels = Uint8Array.from({ length: 500 }, (_, i) => (i * 7) % 10);
    const a = balancedSubset(labels, 10, 20, 99);
    assert.deepEqual(balancedSubset(labels, 10, 20, 99), a);
    assert.notDeepEqual(balancedSubset(labels, 10, 20, 100), a);
    assert.equal(new Set(a).size, 200);
    assert.throws(() => balancedSubset(labels, 10, 51, 1), /class 0 has only 50 images, 51 wanted/);
  });

  test("regenerating from the real Fashion-MNIST reproduces the committed files' contents byte for byte", async (t) => {
    if (!existsSync(DEBIAN_DIR)) {
      t.skip(`${DEBIAN_DIR} not present (apt-get install -y dataset-fashion-mnist)`);
      return;
    }
    const full = await loadFashionMnist(isolated({ roots: { dataDirs: [], cacheDir: tmp(), systemDirs: [DEBIAN_DIR] } }));
    const files = buildMiniFiles(full, { numClasses: 10, trainPerClass: MINI_TRAIN_PER_CLASS, testPerClass: MINI_TEST_PER_CLASS, seeds: MINI_SEEDS });
    for (const [name, content] of files) {
      assert.ok(Buffer.from(content).equals(gunzipSync(readFileSync(join(miniDataDir(), `${name}.gz`)))), `${name} differs from the committed file's content`);
    }
  });
});

describe("the real Fashion-MNIST", () => {
  test("loads from the Debian package folder with the genuine fingerprint", async (t) => {
    if (!existsSync(DEBIAN_DIR)) {
      t.skip(`${DEBIAN_DIR} not present (apt-get install -y dataset-fashion-mnist)`);
      return;
    }
    const d = await loadFashionMnist(isolated({ roots: { dataDirs: [], cacheDir: tmp(), systemDirs: [DEBIAN_DIR] } }));
    assert.equal(d.source, DEBIAN_DIR);
    assert.equal(d.train.count, 60000);
    assert.equal(d.test.count, 10000);
    assert.equal(d.fingerprint, FASHION_MNIST_FINGERPRINT);
    assert.ok(Math.abs(d.mean[0] - 0.2860) < 1e-4, `mean ${d.mean[0]}`);
    assert.ok(Math.abs(d.std[0] - 0.3530) < 1e-4, `std ${d.std[0]}`);
    const content = gunzipSync(readFileSync(join(DEBIAN_DIR, "t10k-labels-idx1-ubyte.gz")));
    assert.equal(createHash("sha256").update(content).digest("hex"), FASHION_MNIST_CONTENT_SHA256["t10k-labels-idx1-ubyte"]);
  });
});

describe("catalog", () => {
  test("getDataset, DATASETS and datasetCatalog", () => {
    assert.deepEqual(DATASETS.map((d) => d.name), ["fashion-mnist-mini", "fashion-mnist", "mnist", "cifar10"]);
    assert.equal(getDataset("cifar10").numClasses, 10);
    assert.throws(() => getDataset("imagenet"), (err: Error) => err instanceof DatasetError && /valid names: fashion-mnist-mini, fashion-mnist, mnist, cifar10/.test(err.message));
    assert.deepEqual(datasetCatalog(), {
      "fashion-mnist-mini": { inputShape: [28, 28, 1], numClasses: 10 },
      "fashion-mnist": { inputShape: [28, 28, 1], numClasses: 10 },
      mnist: { inputShape: [28, 28, 1], numClasses: 10 },
      cifar10: { inputShape: [32, 32, 3], numClasses: 10 },
    });
    for (const d of DATASETS) {
      assert.ok(d.summary.length > 10 && d.citation.length > 10 && d.license.length > 2, d.name);
    }
  });
});
