/**
 * The MNIST reference grids through the real code path, at a tiny size: small MNIST files written in the exact IDX
 * format, the shipped DNS protocol grid (benchmarks/mnist-dns2016.yaml) with only its training lengths, archs and seeds
 * shrunk, `bench sweep` on it, then `bench reproduce guo2016-t1` grading the cells it ran against the published table.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { encodeIdx } from "../datasets/formats/idx.js";
import { packageRoot } from "../src/core/locations.js";
import { bench, tempDir } from "./helpers/cli.js";

/** n images whose class c lights rows 2c to 2c+4 (learnable), with some noise, and their labels. */
function digits(n: number, salt: number): { pixels: Uint8Array; labels: Uint8Array } {
  const labels = Uint8Array.from({ length: n }, (_, i) => (i * 7 + salt) % 10);
  const pixels = Uint8Array.from({ length: n * 784 }, (_, k) => {
    const [i, p] = [Math.floor(k / 784), k % 784];
    const row = Math.floor(p / 28);
    return (row >= 2 * labels[i] + 2 && row < 2 * labels[i] + 6 ? 200 : 0) + ((k * 31 + salt) % 40);
  });
  return { pixels, labels };
}

test("a tiny mnist-dns2016 grid sweeps on IDX files and bench reproduce grades the DNS cells it ran", () => {
  const dir = tempDir("reference-mnist-");
  const data = join(dir, "data", "mnist");
  mkdirSync(data, { recursive: true });
  const [train, t10k] = [digits(300, 1), digits(100, 2)];
  const files: Array<[string, Uint8Array]> = [
    ["train-images-idx3-ubyte", encodeIdx([300, 28, 28], train.pixels)], ["train-labels-idx1-ubyte", encodeIdx([300], train.labels)],
    ["t10k-images-idx3-ubyte", encodeIdx([100, 28, 28], t10k.pixels)], ["t10k-labels-idx1-ubyte", encodeIdx([100], t10k.labels)],
  ];
  for (const [name, bytes] of files) writeFileSync(join(data, `${name}.gz`), gzipSync(bytes));
  const shipped = readFileSync(join(packageRoot(), "benchmarks/mnist-dns2016.yaml"), "utf8");
  const tiny = shipped
    .replace(/^archs: .*$/m, "archs: [mlp]")
    .replace(/^seeds: .*$/m, "seeds: [0]")
    .replace(/^pretrain: .*$/m, "pretrain: {epochs: 2, batch_size: 64, lr: 0.05}")
    .replace(/^finetune: .*$/m, "finetune: {epochs: 2, batch_size: 64, lr: 0.01}")
    .replace(/^data: .*$/m, "data: {val_fraction: 0.2}");
  assert.notEqual(tiny, shipped);
  assert.match(tiny, /- \{name: dns, iter_stop: 3000\}/, "the shipped method entries are kept");
  const grid = join(dir, "tiny.yaml");
  writeFileSync(grid, tiny);
  const env = { XDG_CACHE_HOME: join(dir, "xdg"), BENCH_DATA_DIR: join(dir, "data"), BENCH_OFFLINE: "1" };
  const db = join(dir, "r.db");
  const sweep = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--jobs", "1", "--plain"], env);
  assert.equal(sweep.code, 0, sweep.stdout + sweep.stderr);
  const r = bench(["reproduce", "guo2016-t1", "--db", db], env);
  assert.equal(r.code, 0, r.stderr);
  const line = (cell: string, metric: string) => r.stdout.split("\n").find((l) => l.includes(cell) && l.includes(metric)) ?? "";
  for (const metric of ["top1_after", "delta_top1"]) {
    const l = line("mlp · dns(iter_stop=3000) · compression 56x", metric);
    assert.match(l, /\(n=1/, `graded from the run: ${l}`);
    assert.match(l, /(reproduced|outside tolerance by [\d.]+ pt)$/, l);
  }
  // The grid ran no LeNet-5-Caffe: its cells are "not run", and the dataset is present, so not "dataset absent".
  assert.match(line("lenet5-caffe · dns(iter_stop=3000) · compression 108x", "top1_after"), /not run/);
  assert.doesNotMatch(r.stdout, /dataset absent/);
});
