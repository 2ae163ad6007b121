/** The score context (src/run/score-context.ts): which images a data-dependent score sees, and what it computes there. */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { getMethod } from "../methods/index.js";
import type { PrunableTensor } from "../methods/types.js";
import { getArch } from "../src/archs/index.js";
import { defineArch, type ArchDef } from "../src/archs/ops.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import { meanGradients, meanInputActivations, scoreBatches, scoreContext } from "../src/run/score-context.js";
import { stage } from "../src/train/loop.js";
import { createModel, disposeModel, snapshot, type Model } from "../src/train/model.js";

before(async () => {
  await initBackend("wasm");
});

const N = 64;
const rng = makeRng(7, "data");
const X = new Float32Array(N * 28 * 28).map(() => rng() - 0.5);
const Y = new Int32Array(N).map(() => Math.floor(rng() * 10));

function tensorsOf(model: Model, names: string[]): PrunableTensor[] {
  return names.map((name) => {
    const v = model.params.get(name)!;
    return { name, layer: name.split("/")[0], layerKind: "dense", role: name.split("/")[1], shape: v.shape, values: v.dataSync() as Float32Array, mask: new Float32Array(v.size).fill(1) };
  });
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

test("score batches depend on the seed alone: the same for every run of a seed, others for another seed, one pass at most", () => {
  assert.deepEqual(scoreBatches(1000, 2, 128, 0), scoreBatches(1000, 2, 128, 0));
  assert.notDeepEqual([...scoreBatches(1000, 1, 128, 0)[0]], [...scoreBatches(1000, 1, 128, 1)[0]]);
  const first = scoreBatches(1000, 1, 128, 3)[0];
  assert.deepEqual([...first], [...scoreBatches(1000, 4, 128, 3)[0]], "more batches extend the same order");
  assert.equal(new Set(first).size, 128);
  const clamped = scoreBatches(10, 5, 4, 0);
  assert.deepEqual(clamped.map((b) => b.length), [4, 4, 2]);
  assert.deepEqual([...clamped.flatMap((b) => [...b])].sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i));
});

test("the context's gradients are those of the seed's batch, whichever method asks; another seed gives others", async () => {
  const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0);
  const split = stage({ x: X, y: Y, count: N }, [28, 28, 1]);
  const tensors = tensorsOf(model, ["fc1/kernel", "fc2/kernel", "fc2/bias"]);
  const spec = { batches: 1, batchSize: 16, mode: "train" as const };
  const grads = async (method: string, seed: number) =>
    scoreContext({ method: getMethod(method), params: {}, tensors, model, train: split, seed }).gradients!(spec);
  const a = await grads("global-gradient", 0);
  const b = await grads("layer-gradient", 0);
  const c = await grads("global-gradient", 1);
  assert.deepEqual([...a.get("fc2/kernel")!], [...b.get("fc2/kernel")!]);
  assert.ok(maxDiff(a.get("fc2/kernel")!, c.get("fc2/kernel")!) > 1e-6, "seed 1 scores on other images");
  // The batch is exactly scoreBatches' first: the same gradient from a split holding only those 16 images.
  const rows = scoreBatches(N, 1, 16, 0)[0];
  const only = stage({ x: Float32Array.from([...rows].flatMap((r) => [...X.subarray(r * 784, (r + 1) * 784)])), y: Int32Array.from([...rows].map((r) => Y[r])), count: 16 }, [28, 28, 1]);
  const direct = await meanGradients(model, only, ["fc1/kernel"], 1, 16, 0, "train");
  assert.ok(maxDiff(a.get("fc1/kernel")!, direct.get("fc1/kernel")!) < 1e-6);
  assert.equal(scoreContext({ method: getMethod("global-magnitude"), params: {}, tensors, model, train: split, seed: 0 }).gradients, undefined);
  only.dispose(); split.dispose(); disposeModel(model);
});

test("activations are mean |input| per input unit over the seed's images: the pixels for fc1, relu(fc1) for fc2", async () => {
  const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0);
  const split = stage({ x: X, y: Y, count: N }, [28, 28, 1]);
  const spec = { batches: 2, batchSize: 8, mode: "eval" as const };
  const acts = await meanInputActivations(model, split, ["fc1", "fc2"], spec, 5);
  assert.deepEqual([...acts.keys()], ["fc1", "fc2"], "only the layers asked for");
  const rows = scoreBatches(N, 2, 8, 5).flatMap((b) => [...b]);
  const fc1 = new Float32Array(784);
  for (const r of rows) for (let p = 0; p < 784; p++) fc1[p] += Math.abs(X[r * 784 + p]) / rows.length;
  assert.ok(maxDiff(acts.get("fc1")!, fc1) < 1e-6);
  const fc2 = tf.tidy(() => {
    const x = tf.tensor2d(Float32Array.from(rows.flatMap((r) => [...X.subarray(r * 784, (r + 1) * 784)])), [rows.length, 784]);
    const h = tf.relu(tf.add(tf.matMul(x, model.params.get("fc1/kernel")! as tf.Tensor2D), model.params.get("fc1/bias")!));
    return tf.mean(h, 0).dataSync() as Float32Array;
  });
  assert.equal(acts.get("fc2")!.length, 300);
  assert.ok(maxDiff(acts.get("fc2")!, fc2) < 1e-5);
  split.dispose(); disposeModel(model);
});

/** conv 3@3x3 → batch norm → relu → global average → dense: the smallest network with a batch norm. */
const tinyBn: ArchDef = defineArch({
  name: "tiny-bn", summary: "test network", citation: "none", inputShape: null, numClasses: null, widths: { conv: 3 },
  build(ops, x, numClasses, w) {
    const h = ops.relu(ops.batchNorm("bn", ops.conv("conv", x, { filters: w.n("conv"), kernel: 3, padding: "same" })));
    return ops.dense("fc", ops.globalAvgPool(h), { units: numClasses });
  },
});

test("train mode scores with batch statistics yet leaves running statistics and memory as they were", async () => {
  const model = createModel(tinyBn, [28, 28, 1], 10, 0);
  const split = stage({ x: X.map((v) => 3 * v + 1), y: Y, count: N }, [28, 28, 1]); // far from the initial running stats
  const before = snapshot(model);
  const run = async (mode: "train" | "eval") => {
    const g = await meanGradients(model, split, ["conv/kernel", "bn/gamma"], 1, 32, 0, mode);
    const a = await meanInputActivations(model, split, ["conv", "bn", "fc"], { batches: 1, batchSize: 32, mode }, 0);
    return { g, a };
  };
  await run("train"); // warm-up: kernels and caches allocate once
  const tensorsBefore = tf.memory().numTensors;
  const train = await run("train");
  assert.equal(tf.memory().numTensors, tensorsBefore, "no tensor leaks, queued running-stat updates included");
  const evalMode = await run("eval");
  assert.ok(maxDiff(train.g.get("conv/kernel")!, evalMode.g.get("conv/kernel")!) > 1e-4, "train mode normalises with batch statistics");
  assert.ok(maxDiff(train.a.get("fc")!, evalMode.a.get("fc")!) > 1e-4);
  assert.deepEqual([...train.a.get("conv")!], [...evalMode.a.get("conv")!], "a conv's input precedes any batch norm");
  assert.equal(train.a.get("bn")!.length, 3, "one value per batch-norm channel");
  const after = snapshot(model);
  for (const [name, v] of before) assert.deepEqual([...after.get(name)!], [...v], `${name} unchanged`);
  split.dispose(); disposeModel(model);
});
