/**
 * benchmarks/resnet56-cifar10.yaml, tiny: the grid file itself (its methods, architecture, dataset, reference rows)
 * runs through `bench sweep` on CIFAR-10 files of the exact binary format written here (1 label byte + 3072 CHW pixel
 * bytes per record, cifar-10-batches-bin/data_batch_1..5.bin + test_batch.bin), with only the sizes overridden: a
 * few images, one epoch, small batches, one seed, Li et al.'s pruned-B target. `bench table` must then put the
 * papers' rows beside the measured ones.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { CIFAR_IMAGE_BYTES, CIFAR_RECORD_BYTES, CIFAR10_TEST_BATCH, CIFAR10_TRAIN_BATCHES } from "../datasets/formats/cifar-binary.js";
import { readRuns } from "../reports/read.js";
import { catalog } from "../src/catalog.js";
import { loadGrid } from "../src/grid/index.js";
import { checkIterativeReachable, checkTargetsReachable } from "../src/plan/reachable.js";
import { Store } from "../src/store/store.js";
import { bench, tempDir } from "./helpers/cli.js";

const GRID = fileURLToPath(new URL("../../benchmarks/resnet56-cifar10.yaml", import.meta.url));

/** The six batch files of the binary distribution, a few records each, in <dir>/cifar10/cifar-10-batches-bin/. */
function writeTinyCifar(dir: string): void {
  mkdirSync(join(dir, "cifar10", "cifar-10-batches-bin"), { recursive: true });
  CIFAR10_TRAIN_BATCHES.forEach((name, b) => writeFileSync(join(dir, "cifar10", "cifar-10-batches-bin", name), cifarRecords(8 * b, 8)));
  writeFileSync(join(dir, "cifar10", "cifar-10-batches-bin", CIFAR10_TEST_BATCH), cifarRecords(1000, 16));
}

/** `n` records: label i mod 10, each channel plane a class-dependent gradient plus the record's own offset. */
function cifarRecords(first: number, n: number): Uint8Array {
  const out = new Uint8Array(n * CIFAR_RECORD_BYTES);
  for (let i = 0; i < n; i++) {
    const label = (first + i) % 10;
    const rec = i * CIFAR_RECORD_BYTES;
    out[rec] = label;
    for (let p = 0; p < CIFAR_IMAGE_BYTES; p++) out[rec + 1 + p] = (label * 25 + (p % 1024) * (1 + (p >> 10)) + 17 * (first + i)) % 256;
  }
  return out;
}

/** Replaces one line of the grid, failing loudly when the grid no longer has it (the override would silently not apply). */
function override(text: string, pattern: RegExp, line: string): string {
  assert.match(text, pattern, `the grid has no line matching ${pattern}`);
  return text.replace(pattern, line);
}

test("resnet56-cifar10.yaml runs end to end on CIFAR-format files (tiny): every method finishes with compacted counts, and the table puts the papers' rows beside ours", () => {
  const dir = tempDir();
  const data = join(dir, "data");
  writeTinyCifar(data);

  let grid = readFileSync(GRID, "utf8");
  grid = override(grid, /^seeds: .*$/m, "seeds: [0]");
  grid = override(grid, /^macs_reductions: .*$/m, "macs_reductions: [0.276]");
  grid = override(grid, /^pretrain: \{epochs: \d+, batch_size: \d+,/m, "pretrain: {epochs: 1, batch_size: 8,");
  grid = override(grid, /^finetune: \{epochs: \d+, batch_size: \d+,/m, "finetune: {epochs: 1, batch_size: 8,");
  grid = override(grid, /^eval: .*$/m, "eval: {latency_batch: 4, latency_repeats: 2}");
  // HRank's score sample, from 5 batches of 128 to what 40 images hold; its reference rows name it by method, so they
  // still match.
  grid = override(grid, /^ {2}- hrank$/m, "  - {name: hrank, batches: 2, batch_size: 8}");
  const file = join(dir, "resnet56-cifar10-tiny.yaml");
  writeFileSync(file, grid);

  const db = join(dir, "r.db");
  const env = { BENCH_OFFLINE: "1", BENCH_DATA_DIR: "" };
  const r = bench(["sweep", file, "--db", db, "--data-dir", data, "--cache-dir", join(dir, "cache"), "--artifacts-dir", join(dir, "art"), "--jobs", "1", "--plain"], env);
  assert.equal(r.code, 0, r.stdout + r.stderr);

  const store = new Store(db);
  const runs = readRuns(store);
  store.close();
  assert.equal(runs.length, 3, runs.map((x) => x.methodLabel).join("\n"));
  for (const run of runs) {
    const m = run.metrics;
    assert.equal(run.status, "done", `${run.methodLabel}: ${run.status}`);
    assert.equal(run.arch, "resnet56");
    assert.equal(m.params_total, 853_018, "ResNet-56 option A");
    assert.equal(m.macs_dense, 125_485_696);
    assert.ok(m.target_achieved! >= 0.276 && Math.abs(1 - m.macs_compacted! / m.macs_dense! - m.target_achieved!) < 1e-9, `${run.methodLabel}: ${m.target_achieved}`);
    assert.ok(m.params_compacted! < m.params_total!, `${run.methodLabel}: ${m.params_compacted} params compacted`);
    assert.ok(m.compacted_max_abs_diff! < 1e-3, `${run.methodLabel}: masked vs compacted ${m.compacted_max_abs_diff}`);
  }

  const t = bench(["table", "--db", db, "--metrics", "top1_after,macs_compacted,params_compacted"]);
  assert.equal(t.code, 0, t.stderr);
  const lines = t.stdout.split("\n");
  const pruneB = 'l1-filter(skip="s1b8/conv1,s1b9/conv1,s2b1/conv1,s2b8/conv1,s3b1/conv1,s3b9/conv1", stage_rates="s1:0.6,s2:0.3,s3:0.1")';
  // Our row (dataset and arch may be left blank while they repeat), not the published one (↳).
  const ours = lines.findIndex((l) => !l.startsWith("| ↳") && l.includes(`| ${pruneB} `));
  assert.ok(ours >= 0, t.stdout);
  // Li et al.'s pruned-B row sits right under our pruned-B group, in our units (93.06 % as a fraction, 9.09e7 MACs).
  const ref = lines[ours + 1];
  assert.match(ref, /^\| ↳ cifar10 .*Li, Kadav, Durdanovic, Samet, Graf 2017.*ResNet-56-pruned-B.*\| +ref \|/, t.stdout);
  assert.match(ref, /0\.9306|93\.06/, ref);
  // The rows of targets not run here (and the dense baselines) are still listed, after ours.
  for (const source of ["ResNet-56-pruned-A", "HRank on ResNet-56: 93.52", "HRank on ResNet-56: 90.72", "UNCONFIRMED"]) {
    assert.ok(lines.some((l) => l.startsWith("| ↳") && l.includes(source)), `${source} missing:\n${t.stdout}`);
  }
});

test("every grid in benchmarks/ validates as bench sweep checks it (targets reachable included)", () => {
  const dir = fileURLToPath(new URL("../../benchmarks/", import.meta.url));
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.includes("resnet56-cifar10.yaml"), files.join(", "));
  const cat = catalog();
  for (const f of files) {
    const { grid, lines } = loadGrid(join(dir, f), cat);
    checkTargetsReachable(grid, lines, cat);
    checkIterativeReachable(grid, lines, cat);
  }
});

test("bench validate says where to put CIFAR-10 when its files are not on this machine, and says nothing once they are", () => {
  const dir = tempDir();
  const env = { BENCH_OFFLINE: "1", BENCH_DATA_DIR: "", XDG_CACHE_HOME: join(dir, "cache"), HOME: dir };
  const empty = join(dir, "empty");
  mkdirSync(empty);
  const missing = bench(["validate", GRID, "--data-dir", empty], env);
  assert.equal(missing.code, 0, missing.stderr);
  assert.match(missing.stdout, /resnet56-cifar10\.yaml: ok — 36 runs/);
  assert.match(missing.stderr, /dataset cifar10 is not on this machine yet/);
  assert.match(missing.stderr, /Needed in one folder: cifar-10-binary\.tar\.gz \(or the cifar-10-batches-bin\/ folder/);
  assert.ok(missing.stderr.includes(join(empty, "cifar10")), missing.stderr);
  const data = join(dir, "data");
  writeTinyCifar(data);
  const present = bench(["validate", GRID, "--data-dir", data], env);
  assert.equal(present.code, 0, present.stderr);
  assert.equal(present.stderr, "");
});
