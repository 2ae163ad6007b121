// Intra-op threads on the native backend: results must not depend on how many threads a run was given (issue 18).
// The conv filter gradient is the one kernel whose own threading changed the bits; it now sums fixed batch shards in
// a fixed order. Skipped when the addon is not built (scripts/build-native.sh).

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { registerNativeBackend } from "../src/backend/native/index.js";
import { loadAddon } from "../src/backend/native/addon.js";
import { initBackend } from "../src/backend/index.js";
import { getArch } from "../src/archs/index.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { stage, trainPhase } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, snapshot } from "../src/train/model.js";
import { makeRng, normal } from "../src/core/rng.js";
import { parseThreads, threadsForJob } from "../src/sweep/threads.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

const reg = await registerNativeBackend();
const skip = reg.ok ? false : `native backend unavailable: ${reg.reason}`;

function randn(n: number, seed: number): Float32Array {
  const rng = makeRng(seed, "threads-test");
  return Float32Array.from({ length: n }, () => normal(rng));
}

async function withThreads<T>(threads: number, f: () => T | Promise<T>): Promise<T> {
  await registerNativeBackend({ threads });
  try {
    return await f();
  } finally {
    await registerNativeBackend({ threads: 1 });
  }
}

function threadCount(): number {
  const loaded = loadAddon();
  if ("error" in loaded) throw new Error(loaded.error);
  return loaded.addon.getNumThreads();
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let differ = 0, first = -1;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) { differ++; if (first < 0) first = i; }
  assert.equal(differ, 0, `${what}: ${differ} of ${a.length} values differ (first at ${first}: ${a[first]} vs ${b[first]})`);
}

// Batches that make 4 shards (128, 64), 2 uneven ones (40), and 1 (17: below two shards of 16, run on one thread).
const convCases = [
  { name: "lenet conv2 5x5 valid", x: [128, 14, 14, 6], w: [5, 5, 6, 16], stride: 1, pad: "valid" as const },
  { name: "resnet 3x3 same 16", x: [64, 32, 32, 16], w: [3, 3, 16, 16], stride: 1, pad: "same" as const },
  { name: "resnet 3x3 stride 2 same (uneven pad)", x: [40, 16, 16, 16], w: [3, 3, 16, 32], stride: 2, pad: "same" as const },
  { name: "resnet 1x1 stride 2 valid", x: [64, 16, 16, 32], w: [1, 1, 32, 64], stride: 2, pad: "valid" as const },
  { name: "1x1 stride 1 (libtorch's small-batch kernel switch)", x: [40, 8, 8, 32], w: [1, 1, 32, 32], stride: 1, pad: "valid" as const },
  { name: "one shard", x: [17, 8, 8, 16], w: [3, 3, 16, 16], stride: 1, pad: "same" as const },
];

for (const c of convCases) {
  test(`conv filter gradient is bit-identical at 1, 2 and 3 threads and matches the cpu kernel: ${c.name}`, { skip }, async () => {
    const xv = randn(c.x.reduce((p, q) => p * q, 1), 1);
    const [n, h, w] = c.x;
    const oh = c.pad === "same" ? Math.ceil(h / c.stride) : Math.floor((h - c.w[0]) / c.stride) + 1;
    const ow = c.pad === "same" ? Math.ceil(w / c.stride) : Math.floor((w - c.w[1]) / c.stride) + 1;
    const dyShape = [n, oh, ow, c.w[3]];
    const dyv = randn(dyShape.reduce((p, q) => p * q, 1), 2);
    const grad = (backend: string) => {
      assert.ok(tf.setBackend(backend));
      return tf.tidy(() => {
        const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
        const dy = tf.tensor4d(dyv, dyShape as [number, number, number, number]);
        const w0 = tf.zeros(c.w);
        const dw = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, w as tf.Tensor4D, c.stride, c.pad), dy)))(w0);
        return Float32Array.from(dw.dataSync());
      });
    };
    const one = await withThreads(1, () => grad("native"));
    const [two, after] = await withThreads(2, () => [grad("native"), threadCount()] as const);
    sameBits(two, one, `${c.name}, 2 threads`);
    // The kernel runs its shards on one thread each: that setting must not outlive the call.
    assert.equal(after, 2, "thread count after the kernel");
    sameBits(await withThreads(3, () => grad("native")), one, `${c.name}, 3 threads`);
    const ref = grad("cpu");
    let maxRef = 0, maxDiff = 0;
    for (let i = 0; i < ref.length; i++) { maxRef = Math.max(maxRef, Math.abs(ref[i])); maxDiff = Math.max(maxDiff, Math.abs(ref[i] - one[i])); }
    assert.ok(maxDiff <= 1e-5 * maxRef, `${c.name}: max |native - cpu| = ${maxDiff} against max |cpu| = ${maxRef}`);
  });
}

/** Every weight and running statistic after a few SGD steps at batch 64 (four filter-gradient shards). */
async function train(arch: string, inputShape: [number, number, number]): Promise<Map<string, Float32Array>> {
  const model = createModel(getArch(arch), inputShape, 10, 0);
  const size = inputShape.reduce((p, q) => p * q, 1);
  const rng = makeRng(1, "data");
  const n = 192;
  const data = stage({ x: new Float32Array(n * size).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, inputShape);
  const masks = new MaskSet();
  const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 64, lr: 0.1, weightDecay: 5e-4 };
  await trainPhase({ phase: "finetune", model, train: data, val: data, config, masks, seed: 0, selectBestOnVal: false });
  const out = snapshot(model);
  data.dispose(); masks.dispose(); disposeModel(model);
  return out;
}

for (const [arch, shape] of [["lenet5", [28, 28, 1]], ["resnet20-b", [32, 32, 3]]] as const) {
  test(`training ${arch} on 2 threads gives the same bits as on 1 (every weight and running statistic)`, { skip }, async () => {
    await initBackend("native");
    const one = await withThreads(1, () => train(arch, [...shape]));
    const [two, after] = await withThreads(2, async () => [await train(arch, [...shape]), threadCount()] as const);
    assert.equal(after, 2, "still 2 threads at the end of training");
    assert.ok(one.size > 5);
    for (const [name, v] of one) sameBits(two.get(name)!, v, `${arch} ${name}`);
    // The test would pass vacuously if training left the weights where they started.
    const fresh = createModel(getArch(arch), [...shape], 10, 0);
    const init = snapshot(fresh);
    disposeModel(fresh);
    assert.ok([...init].some(([name, v]) => v.some((x, i) => x !== one.get(name)![i])), `${arch}: training changed nothing`);
  });
}

test("--threads: auto divides the cores among the jobs that can run at once; N is N; anything else is refused", () => {
  assert.equal(threadsForJob("auto", 2, 2, 10), 1, "every worker busy: 1 each");
  assert.equal(threadsForJob("auto", 2, 2, 1), 2, "the last job gets both cores");
  assert.equal(threadsForJob("auto", 16, 4, 3), 5, "3 jobs left on 16 cores");
  assert.equal(threadsForJob("auto", 2, 1, 5), 2, "one worker on two cores");
  assert.equal(threadsForJob("auto", 2, 4, 3), 1, "more workers than cores: never 0");
  assert.equal(threadsForJob(3, 2, 2, 1), 3);
  assert.equal(parseThreads("auto"), "auto");
  assert.equal(parseThreads("4"), 4);
  for (const bad of ["0", "-1", "1.5", "two", ""]) assert.ok(parseThreads(bad) instanceof Error, bad);
  const r = bench(["sweep", "grid.yaml", "--threads", "two"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--threads must be "auto" or a positive integer, got "two"/);
});

test("a sweep's last run gets the idle cores, records how many, and computes what it computes on 1 thread", { skip }, () => {
  const dir = tempDir();
  const sweep = (sub: string, threads: string) => {
    const d = join(dir, sub);
    mkdirSync(d);
    const grid = writeTinyGrid(d, "", { methods: "[global-magnitude]", archs: "[lenet5]", targets: "sparsities: [0.9]", pretrain: "{epochs: 1, batch_size: 64, lr: 0.05}" });
    // Separate caches: the dense model is pretrained in each sweep, at the thread count that sweep gives it.
    const r = bench(["sweep", grid, "--db", join(d, "r.db"), "--cache-dir", join(d, "cache"), "--jobs", "2", "--backend", "native", "--threads", threads, "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const db = new Database(join(d, "r.db"), { readonly: true });
    const run = db.prepare(`SELECT key, threads FROM runs`).get() as { key: string; threads: number };
    const metrics = Object.fromEntries((db.prepare(`SELECT name, value FROM metrics WHERE run_key = ?`).all(run.key) as Array<{ name: string; value: number }>).map((m) => [m.name, m.value]));
    db.close();
    return { run, metrics };
  };
  const cores = availableParallelism();
  const auto = sweep("auto", "auto");
  const one = sweep("one", "1");
  assert.equal(auto.run.threads, cores, "the only run left has every core");
  assert.equal(auto.metrics.compute_threads, cores);
  assert.equal(auto.metrics.latency_threads, cores);
  assert.equal(one.run.threads, 1);
  assert.equal(one.metrics.compute_threads, 1);
  assert.equal(auto.run.key, one.run.key, "the thread count is not part of the run key");
  const timing = (name: string) => /seconds|_ms$|_iqr|speedup|img_per_s|rss|threads/.test(name);
  const results = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => !timing(k)));
  assert.ok(Object.keys(results(one.metrics)).length > 10);
  assert.deepEqual(results(auto.metrics), results(one.metrics), "every result metric identical");
});
