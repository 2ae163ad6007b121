import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { getArch } from "../src/archs/index.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import type { TrainConfig } from "../src/core/types.js";
import { initBackend } from "../src/backend/index.js";
import { evaluate, LATENCY_MS_PER_REPEAT, latencyTimings, stage, trainPhase, type StagedSplit } from "../src/train/loop.js";
import { MaskSet, randomKernelMasks } from "../src/train/masks.js";
import { createModel, disposeModel, forward, snapshot } from "../src/train/model.js";
import { readCounts } from "../src/archs/ops.js";
import { learningRate } from "../src/train/optim.js";
import { makeRng } from "../src/core/rng.js";

before(async () => {
  await initBackend("wasm");
});

function syntheticSplit(n: number, seed: number): StagedSplit {
  const rng = makeRng(seed, "data");
  const x = new Float32Array(n * 28 * 28).map(() => rng() - 0.5);
  const y = new Int32Array(n).map(() => Math.floor(rng() * 10));
  return stage({ x, y, count: n }, [28, 28, 1]);
}

async function trainMasked(arch: string, config: TrainConfig, seed = 0) {
  const model = createModel(getArch(arch), [28, 28, 1], 10, seed);
  const masks = randomKernelMasks(model.params, 0.7, seed);
  const pruned = Object.fromEntries(masks.names().map((name) => [name, masks.values(name)!]));
  const train = syntheticSplit(96, 1);
  const val = syntheticSplit(32, 2);
  await trainPhase({ phase: "finetune", model, train, val, config, masks, seed, selectBestOnVal: false });
  const weights = snapshot(model);
  train.dispose(); val.dispose(); masks.dispose(); disposeModel(model);
  return { weights, pruned };
}

for (const optimizer of ["sgd", "adam"] as const) {
  test(`masked weights are exactly zero after every ${optimizer} step (mlp and lenet5)`, async () => {
    for (const arch of ["mlp", "lenet5"]) {
      const config: TrainConfig = { ...DEFAULT_FINETUNE, optimizer, epochs: 2, batchSize: 32, lr: 0.1, weightDecay: 0.01 };
      const { weights, pruned } = await trainMasked(arch, config);
      for (const [name, mask] of Object.entries(pruned)) {
        const w = weights.get(name)!;
        let zerosWhereMasked = 0, masked = 0, moved = 0;
        for (let i = 0; i < w.length; i++) {
          if (mask[i] === 0) { masked++; if (w[i] === 0) zerosWhereMasked++; } else if (w[i] !== 0) moved++;
        }
        assert.equal(zerosWhereMasked, masked, `${arch} ${name}: ${masked - zerosWhereMasked} pruned weights became nonzero`);
        assert.ok(moved > 0, `${arch} ${name}: surviving weights should be nonzero`);
      }
    }
  });
}

test("training is deterministic: same seed, same weights bit for bit; another seed differs", async () => {
  const config: TrainConfig = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 32 };
  const a = await trainMasked("lenet5", config, 3);
  const b = await trainMasked("lenet5", config, 3);
  const c = await trainMasked("lenet5", config, 4);
  for (const [name, w] of a.weights) assert.deepEqual(Buffer.from(w.buffer), Buffer.from(b.weights.get(name)!.buffer), name);
  assert.notDeepEqual([...a.weights.get("fc1/kernel")!.slice(0, 50)], [...c.weights.get("fc1/kernel")!.slice(0, 50)]);
});

test("training lowers the loss on a learnable problem", async () => {
  const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0);
  // Labels are a function of the input: the class is the index of the largest of the first 10 pixels.
  const rng = makeRng(5, "x");
  const n = 256;
  const x = new Float32Array(n * 784).map(() => rng());
  const y = new Int32Array(n).map((_, i) => { let best = 0; for (let k = 1; k < 10; k++) if (x[i * 784 + k] > x[i * 784 + best]) best = k; return best; });
  const train = stage({ x, y, count: n }, [28, 28, 1]);
  const r = await trainPhase({ phase: "pretrain", model, train, val: train, config: { ...DEFAULT_FINETUNE, epochs: 8, batchSize: 32, lr: 0.05 }, masks: new MaskSet(), seed: 0, selectBestOnVal: false });
  assert.ok(r.epochs[7].loss < r.epochs[0].loss * 0.8, `loss ${r.epochs[0].loss} -> ${r.epochs[7].loss}`);
  train.dispose(); disposeModel(model);
});

test("learning-rate schedules: constant, step (gamma every step_epochs), cosine to zero", () => {
  const base = { ...DEFAULT_FINETUNE, lr: 0.1, epochs: 10 };
  assert.equal(learningRate({ ...base, schedule: "constant" }, 7.5), 0.1);
  assert.equal(learningRate({ ...base, schedule: "step", stepEpochs: 3, gamma: 0.5 }, 6.2), 0.1 * 0.25);
  assert.equal(learningRate({ ...base, schedule: "cosine" }, 0), 0.1);
  assert.ok(Math.abs(learningRate({ ...base, schedule: "cosine" }, 5) - 0.05) < 1e-12);
  assert.ok(learningRate({ ...base, schedule: "cosine" }, 10) < 1e-12);
});

test("no tensors leak across a training phase", async () => {
  const config: TrainConfig = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 32 };
  await trainMasked("mlp", config); // warm-up allocations (kernels, caches)
  const before = tf.memory().numTensors;
  await trainMasked("mlp", config);
  assert.equal(tf.memory().numTensors, before);
});

test("meanGradients (the score context's gradients) averages per-batch gradients of the training loss", async () => {
  const { meanGradients } = await import("../src/run/score-context.js");
  const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0);
  const split = syntheticSplit(64, 9);
  const names = ["fc1/kernel", "fc3/kernel"];
  const two = await meanGradients(model, split, names, 2, 32, 0);
  const one = await meanGradients(model, split, names, 1, 32, 0);
  const all = await meanGradients(model, split, names, 1, 64, 0);
  // Two half batches averaged = one full batch (mean losses over equal-size batches), up to float rounding.
  const a = two.get("fc3/kernel")!, b = all.get("fc3/kernel")!;
  let maxDiff = 0, maxAbs = 0;
  for (let i = 0; i < a.length; i++) { maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i])); maxAbs = Math.max(maxAbs, Math.abs(b[i])); }
  assert.ok(maxAbs > 0 && maxDiff < 1e-5 * Math.max(1, maxAbs), `diff ${maxDiff}`);
  assert.notDeepEqual([...one.get("fc3/kernel")!.slice(0, 20)], [...a.slice(0, 20)]);
  assert.equal(two.get("fc1/kernel")!.length, 784 * 300);
  split.dispose(); disposeModel(model);
});

test("evaluation holds one batch's activations at a time: peak memory does not grow with the split", async () => {
  const model = createModel(getArch("lenet5"), [28, 28, 1], 10, 0, "torch-default");
  const rng = makeRng(3, "eval-memory");
  const split = (n: number) => stage({ x: Float32Array.from({ length: n * 784 }, () => rng()), y: Int32Array.from({ length: n }, (_, i) => i % 10), count: n }, [28, 28, 1]);
  const one = split(64);
  const eight = split(512);
  const peak = async (s: StagedSplit) => (await tf.profile(async () => { await evaluate(model, s, 64); return []; })).peakBytes;
  const p1 = await peak(one);
  const p8 = await peak(eight);
  // Eight batches of 64 must cost about what one does (a tidy around the loop made it ~8x).
  assert.ok(p8 < 1.5 * p1, `peak bytes: 1 batch ${p1}, 8 batches ${p8}`);
  const before = tf.memory().numTensors;
  const r = await evaluate(model, eight, 64);
  assert.equal(tf.memory().numTensors, before, "no tensor left behind");
  assert.ok(r.top1 >= 0 && r.top1 <= 1 && Number.isFinite(r.loss));
  one.dispose(); eight.dispose(); disposeModel(model);
});

test("inference with release frees each activation after its last use: the same logits, a fraction of the peak memory", async () => {
  // ResNet-20's residual blocks read a value twice (its shortcut); the ViT reads one value three times (q, k, v).
  for (const [arch, shape, factor] of [["resnet20", [32, 32, 3], 0.2], ["vit-tiny", [32, 32, 3], 0.1], ["lenet5", [28, 28, 1], 0.8]] as const) {
    const model = createModel(getArch(arch), [...shape], 10, 0);
    const reads = readCounts(model.arch, 10, () => true);
    assert.equal(reads.at(-1), 0, `${arch}: the output is read by nobody`);
    assert.ok(reads.slice(0, -1).every((n) => n >= 1), `${arch}: every other value is read`);
    if (arch !== "lenet5") assert.ok(reads.some((n) => n >= 2), `${arch}: some value is read more than once`);
    const rng = makeRng(5, arch);
    const x = tf.tensor4d(Float32Array.from({ length: 4 * shape[0] * shape[1] * shape[2] }, () => rng() - 0.5), [4, ...shape]);
    const run = async (release: boolean) => {
      let logits: Float32Array = new Float32Array(0);
      const base = tf.memory().numBytes;
      const info = await tf.profile(() => {
        const out = tf.tidy(() => forward(model, x, false, false, undefined, release).logits);
        logits = out.dataSync() as Float32Array;
        out.dispose();
        return [];
      });
      return { logits, peak: info.peakBytes - base };
    };
    const before = tf.memory().numTensors;
    const held = await run(false);
    const freed = await run(true);
    assert.equal(tf.memory().numTensors, before, `${arch}: no tensor left behind`);
    assert.deepEqual([...freed.logits], [...held.logits], `${arch}: the same logits, bit for bit`);
    assert.ok(freed.peak < factor * held.peak, `${arch}: activations' peak bytes ${freed.peak} with release, ${held.peak} without`);
    x.dispose(); disposeModel(model);
  }
});

test("latency timing: fast batches get repeated until repeats x LATENCY_MS_PER_REPEAT; the models alternate", async () => {
  const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0);
  const other = createModel(getArch("mlp"), [28, 28, 1], 10, 1);
  const split = syntheticSplit(8, 3);
  try {
    const started = performance.now();
    const times = await latencyTimings([model, other], split, 1, 4);
    const elapsed = performance.now() - started;
    // A batch-1 MLP forward takes well under a millisecond: 4 repetitions alone would be over in a few ms.
    assert.equal(times[0].length, times[1].length, "one time per model per round");
    assert.ok(times[0].length > 4, `more than the 4 asked: ${times[0].length}`);
    assert.ok(times[0].length <= 4 * 50, "capped at 50x the repetitions asked");
    assert.ok(elapsed >= 4 * LATENCY_MS_PER_REPEAT || times[0].length === 200, `timed for ${elapsed.toFixed(0)} ms`);
    // Without the floor (a masked model whose timing equals the dense one's up to noise): exactly the repetitions asked.
    const bare = await latencyTimings([model], split, 1, 4, 0);
    assert.deepEqual(bare.map((t) => t.length), [4]);
  } finally {
    disposeModel(model);
    disposeModel(other);
    split.dispose();
  }
});
