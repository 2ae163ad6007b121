/**
 * The channel criteria beyond the filter norm: fpgm removes the filter nearest the geometric median of its layer (He
 * et al. 2019), apoz the channel most often zero after its ReLU (Hu et al. 2016), hrank the channel whose feature maps
 * have the lowest rank (Lin et al. 2020); and the score capability behind the last two (ctx.outputActivations), checked
 * against a hand computation and against the inputs the next layers read, with its numerical rank at its tolerance.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { getMethod } from "../methods/index.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import type { HyperValue } from "../src/core/types.js";
import { prunableGroups } from "../src/prune/structured.js";
import { FLOAT32_EPS, numericalRank, outputActivationStats } from "../src/run/output-activations.js";
import { meanInputActivations, scoreBatches } from "../src/run/score-context.js";
import { channelGroupViews, structuredPruneStep, structuredState } from "../src/run/structured-step.js";
import { stage } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, forward, type Model } from "../src/train/model.js";
import { DEFAULT_PRUNABLE } from "../src/grid/index.js";

const MNIST: [number, number, number] = [28, 28, 1];
const CIFAR: [number, number, number] = [32, 32, 3];

before(async () => {
  await initBackend("wasm");
});

function params(name: string, overrides: Record<string, HyperValue>): Record<string, HyperValue> {
  return { ...Object.fromEntries(Object.entries(getMethod(name).params).map(([k, p]) => [k, p.default])), ...overrides };
}

/** A random h×r times r×w product (rank r in general position), row-major, entries from `draw`. */
function lowRank(h: number, w: number, r: number, draw: () => number): Float64Array {
  const u = Array.from({ length: h * r }, draw);
  const v = Array.from({ length: w * r }, draw);
  const a = new Float64Array(h * w);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) for (let k = 0; k < r; k++) a[i * w + j] += u[i * r + k] * v[j * r + k];
  return a;
}

/** A random n×n orthogonal matrix (Gram-Schmidt of a random one, twice for float64 orthogonality). */
function orthogonal(n: number, rng: () => number): Float64Array {
  const q = Float64Array.from({ length: n * n }, () => rng() - 0.5);
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += q[i * n + j] * q[i * n + k];
        for (let i = 0; i < n; i++) q[i * n + j] -= dot * q[i * n + k];
      }
      let norm = 0;
      for (let i = 0; i < n; i++) norm += q[i * n + j] ** 2;
      for (let i = 0; i < n; i++) q[i * n + j] /= Math.sqrt(norm);
    }
  }
  return q;
}

test("numericalRank: a product of rank r has rank r, and singular values count exactly when above σ_max·max(h, w)·ε_float32", () => {
  const rng = makeRng(11, "rank");
  const gauss = () => rng() + rng() + rng() - 1.5;
  for (const [h, w] of [[32, 32], [28, 28], [8, 16], [16, 8], [1, 5], [5, 1]]) {
    for (let r = 0; r <= Math.min(h, w); r++) assert.equal(numericalRank(lowRank(h, w, r, gauss), h, w), r, `${h}x${w} of rank ${r}`);
  }
  // Rank 2 plus noise 1e-9 (singular values ~1e-8, far below the tolerance ~σ_max·3.8e-6) stays 2; noise 0.1 is full rank.
  const base = lowRank(32, 32, 2, gauss);
  const noise = Float64Array.from({ length: 32 * 32 }, gauss);
  assert.equal(numericalRank(base.map((x, i) => x + 1e-9 * noise[i]), 32, 32), 2);
  assert.equal(numericalRank(base.map((x, i) => x + 0.1 * noise[i]), 32, 32), 32);
  // U·diag(σ)·Vᵀ with σ on both sides of the tolerance 32·2⁻²³ ≈ 3.81e-6 (σ_max = 1): 5e-6 counts, 3e-6 does not.
  const sigma = [1, 0.5, 1e-2, 1e-4, 5e-6, 3e-6, 1e-9, ...Array(25).fill(0)];
  assert.ok(5e-6 > 32 * FLOAT32_EPS && 3e-6 < 32 * FLOAT32_EPS);
  const [u, v] = [orthogonal(32, rng), orthogonal(32, rng)];
  const a = new Float64Array(32 * 32);
  for (let i = 0; i < 32; i++) for (let j = 0; j < 32; j++) for (let k = 0; k < 32; k++) a[i * 32 + j] += u[i * 32 + k] * sigma[k] * v[j * 32 + k];
  assert.equal(numericalRank(a, 32, 32), 5);
  assert.equal(numericalRank(new Float64Array(64), 8, 8), 0);
});

test("outputActivations: LeNet-5's conv1 after its ReLU and the raw logits, per channel, as computed by hand over the score batches", () => {
  const model = createModel(getArch("lenet5"), MNIST, 10, 5);
  const rng = makeRng(2, "data");
  const n = 10;
  const split = stage({ x: new Float32Array(n * 784).map(() => rng() - 0.3), y: new Int32Array(n), count: n }, MNIST);
  const plan = scoreBatches(n, 2, 4, 9);
  const stats = outputActivationStats(model, split, plan, "eval", { rank: true });
  assert.deepEqual([...stats.keys()].sort(), ["conv1", "conv2", "fc1", "fc2", "fc3"]);
  const rows = tf.tensor1d(Int32Array.from(plan.flatMap((b) => [...b])), "int32");
  const x = tf.gather(split.x, rows);
  const [conv1, logits] = tf.tidy(() => {
    const padded = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]]);
    const y = tf.relu(tf.add(tf.conv2d(padded as tf.Tensor4D, model.params.get("conv1/kernel") as tf.Tensor4D, 1, "valid"), model.params.get("conv1/bias")!));
    return [y.dataSync() as Float32Array, forward(model, x, false).logits.dataSync() as Float32Array];
  });
  const images = 8;
  for (let c = 0; c < 6; c++) {
    let [abs, zeros, rank] = [0, 0, 0];
    for (let i = 0; i < images; i++) {
      const map = new Float64Array(784);
      for (let p = 0; p < 784; p++) {
        const a = conv1[(i * 784 + p) * 6 + c];
        map[p] = a;
        abs += Math.abs(a);
        if (a === 0) zeros++;
      }
      rank += numericalRank(map, 28, 28);
    }
    const s = stats.get("conv1")!;
    assert.ok(Math.abs(s.meanAbs[c] - abs / (images * 784)) < 1e-5 * (1 + abs / (images * 784)), `conv1 channel ${c} mean |a|`);
    // One borderline entry may round to 0 on one side and not the other (the layer's fused kernel sums in another order).
    assert.ok(Math.abs(s.zeroFraction[c] - zeros / (images * 784)) <= 2 / (images * 784), `conv1 channel ${c} zeros`);
    assert.ok(zeros > 0, "the ReLU zeroes some of every channel on these inputs");
    assert.equal(s.meanRank![c], rank / images);
  }
  const fc3 = stats.get("fc3")!;
  for (let c = 0; c < 10; c++) {
    let abs = 0;
    for (let i = 0; i < images; i++) abs += Math.abs(logits[i * 10 + c]);
    assert.ok(Math.abs(fc3.meanAbs[c] - abs / images) < 1e-4, `logit ${c}`);
    assert.equal(fc3.meanRank![c], 1, "a dense neuron's one value has rank 1 when non-zero");
  }
  tf.dispose([rows, x]);
  split.dispose();
  disposeModel(model);
});

test("outputActivations on ResNets: a block's second conv (and its projection shortcut) report the ReLU after the add, the activation the next block reads", async () => {
  const rng = makeRng(3, "data");
  const n = 4;
  const split = stage({ x: new Float32Array(n * 32 * 32 * 3).map(() => rng() - 0.5), y: new Int32Array(n), count: n }, CIFAR);
  const spec = { batches: 2, batchSize: 2, mode: "eval" as const };
  for (const arch of ["resnet20", "resnet20-b"]) {
    const model: Model = createModel(getArch(arch), CIFAR, 10, 1);
    const out = outputActivationStats(model, split, scoreBatches(n, 2, 2, 4), "eval", { layers: ["conv0", "s1b1/conv2", "s2b1/conv2", ...(arch === "resnet20-b" ? ["s2b1/convsc"] : [])] });
    const inputs = await meanInputActivations(model, split, ["s1b1/conv1", "s1b2/conv1", "s2b2/conv1"], spec, 4);
    const close = (a: Float32Array, b: Float32Array, what: string) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-5 * (1 + Math.abs(b[i])), `${arch} ${what} channel ${i}: ${v} vs ${b[i]}`));
    close(out.get("conv0")!.meanAbs, inputs.get("s1b1/conv1")!, "conv0");
    close(out.get("s1b1/conv2")!.meanAbs, inputs.get("s1b2/conv1")!, "s1b1/conv2");
    close(out.get("s2b1/conv2")!.meanAbs, inputs.get("s2b2/conv1")!, "s2b1/conv2");
    if (arch === "resnet20-b") assert.deepEqual(out.get("s2b1/convsc"), out.get("s2b1/conv2"));
    assert.deepEqual([...out.keys()].sort(), [...(arch === "resnet20-b" ? ["s2b1/convsc"] : []), "conv0", "s1b1/conv2", "s2b1/conv2"].sort());
    disposeModel(model);
  }
  split.dispose();
});

test("fpgm removes the filter at the geometric median of its layer, not the smallest norm, and scores by summed Euclidean distance", async () => {
  const model = createModel(getArch("lenet5"), MNIST, 10, 3);
  // conv2's 16 filters (150 weights each): the centre c = 1 everywhere (filter 0), pairs c ± d_k (filters 2k−1, 2k,
  // k = 1..7) and c + d_8 (filter 15), every d_k with entries in (0, 0.5). Filter 0 minimises the summed distance (by
  // the triangle inequality) though c − d_k has a smaller L1 norm than c for every k.
  const rng = makeRng(8, "filters");
  const d = Array.from({ length: 8 }, () => Float64Array.from({ length: 150 }, () => 0.5 * rng()));
  const filters = [new Float64Array(150).fill(1)];
  for (let k = 0; k < 7; k++) filters.push(d[k].map((x) => 1 + x), d[k].map((x) => 1 - x));
  filters.push(d[7].map((x) => 1 + x));
  const kernel = model.params.get("conv2/kernel")!;
  const values = new Float32Array(kernel.size);
  for (let i = 0; i < 150; i++) for (let j = 0; j < 16; j++) values[i * 16 + j] = filters[j][i];
  kernel.assign(tf.tensor(values, kernel.shape));

  const state = structuredState(model);
  const views = channelGroupViews(model, state, prunableGroups(state.plan));
  const p = (name: string) => params(name, { layers: "all", skip: "conv1,fc1,fc2", min_keep: 0 });
  const fp = (await getMethod("fpgm").score({ tensors: [], groups: views, params: p("fpgm"), random: makeRng(1, "t") })).get("conv2")!;
  const l1 = (await getMethod("l1-filter").score({ tensors: [], groups: views, params: p("l1-filter"), random: makeRng(1, "t") })).get("conv2")!;
  const argmin = (s: Float32Array) => s.indexOf(Math.min(...s));
  assert.equal(argmin(fp), 0);
  assert.notEqual(argmin(l1), 0);
  // s_0 = Σ_k 2‖d_k‖ + ‖d_8‖ exactly: Euclidean distances, not squared ones.
  const norm = (x: Float64Array) => Math.sqrt(x.reduce((a, b) => a + b * b, 0));
  const expected = d.slice(0, 7).reduce((a, x) => a + 2 * norm(x), 0) + norm(d[7]);
  assert.ok(Math.abs(fp[0] - expected) < 1e-4 * expected, `s_0 = ${fp[0]}, expected ${expected}`);

  const masks = new MaskSet();
  const split = stage({ x: new Float32Array(2 * 784), y: new Int32Array(2), count: 2 }, MNIST);
  await structuredPruneStep({
    model, masks, method: getMethod("fpgm"), params: p("fpgm"), prunable: DEFAULT_PRUNABLE,
    target: { kind: "channel-sparsity", value: 0.05 }, train: split, seed: 1, step: 0, state,
  });
  const conv2 = state.graph.groups.findIndex((g) => g.name === "conv2");
  assert.deepEqual(state.keep[conv2].flatMap((k, j) => (k ? [] : [j])), [0]);
  split.dispose();
  masks.dispose();
  disposeModel(model);
});

test("apoz removes the channel most often zero after its ReLU, though it has the largest weights and the largest mean activation", async () => {
  const model = createModel(getArch("lenet5"), MNIST, 10, 3);
  // conv1's 6 filters read one pixel each (a 5x5 delta at the centre, padding 2): filter 0 is relu(10x − 7), zero
  // wherever x < 0.7 (≈ 70 % of uniform [0, 1) pixels) and ≈ 0.45 on average; filter j ≥ 1 is relu(0.1j·x + 0.05),
  // never zero, 0.1 on average for j = 1.
  const kernel = new Float32Array(25 * 6);
  const bias = new Float32Array(6).fill(0.05);
  kernel[12 * 6] = 10;
  bias[0] = -7;
  for (let j = 1; j < 6; j++) kernel[12 * 6 + j] = 0.1 * j;
  model.params.get("conv1/kernel")!.assign(tf.tensor(kernel, [5, 5, 1, 6]));
  model.params.get("conv1/bias")!.assign(tf.tensor(bias));
  const rng = makeRng(5, "pixels");
  const n = 16;
  const split = stage({ x: new Float32Array(n * 784).map(() => rng()), y: new Int32Array(n), count: n }, MNIST);
  const p = params("apoz", { skip: "conv2,fc1,fc2", min_keep: 0, batches: 2, batch_size: 8 });

  const stats = outputActivationStats(model, split, scoreBatches(n, 2, 8, 1), "eval", { layers: ["conv1"] }).get("conv1")!;
  assert.ok(Math.abs(stats.zeroFraction[0] - 0.7) < 0.02 && stats.zeroFraction.slice(1).every((z) => z === 0), `${stats.zeroFraction}`);
  assert.ok(stats.meanAbs[0] > 3 * stats.meanAbs[1], "filter 0's mean activation is the largest");

  const state = structuredState(model);
  const masks = new MaskSet();
  await structuredPruneStep({
    model, masks, method: getMethod("apoz"), params: p, prunable: DEFAULT_PRUNABLE,
    target: { kind: "channel-sparsity", value: 0.15 }, train: split, seed: 1, step: 0, state,
  });
  const conv1 = state.graph.groups.findIndex((g) => g.name === "conv1");
  assert.deepEqual(state.keep[conv1].flatMap((k, j) => (k ? [] : [j])), [0]);
  split.dispose();
  masks.dispose();
  disposeModel(model);
});

test("hrank removes the channel whose feature maps have the lowest rank, though its filter has the largest norm", async () => {
  const model = createModel(getArch("conv2"), CIFAR, 10, 3);
  // Each image's three input channels are positive products of rank 3, 1 and 2. conv1's filter 0 passes channel 1
  // (rank 1) at weight 5, the largest; filter j ≥ 1 passes channel 0 or 2 (rank 3 or 2) at 0.1 + 0.001j. Positive
  // maps pass the ReLU unchanged, so the maps' ranks are the inputs'.
  const rng = makeRng(6, "maps");
  const n = 4;
  const x = new Float32Array(n * 32 * 32 * 3);
  const ranks = [3, 1, 2];
  for (let i = 0; i < n; i++) {
    ranks.forEach((r, ch) => {
      lowRank(32, 32, r, () => 0.1 + rng()).forEach((v, p) => { x[(i * 1024 + p) * 3 + ch] = v; });
    });
  }
  const kernel = new Float32Array(9 * 3 * 64);
  const source = Array.from({ length: 64 }, (_, j) => (j === 0 ? 1 : j % 2 === 0 ? 0 : 2));
  source.forEach((ch, j) => { kernel[(4 * 3 + ch) * 64 + j] = j === 0 ? 5 : 0.1 + 0.001 * j; });
  model.params.get("conv1/kernel")!.assign(tf.tensor(kernel, [3, 3, 3, 64]));
  model.params.get("conv1/bias")!.assign(tf.zeros([64]));
  const split = stage({ x, y: new Int32Array(n), count: n }, CIFAR);
  const p = params("hrank", { skip: "conv2", min_keep: 0, batches: 2, batch_size: 2 });

  const stats = outputActivationStats(model, split, scoreBatches(n, 2, 2, 1), "eval", { rank: true, layers: ["conv1"] }).get("conv1")!;
  assert.deepEqual([...stats.meanRank!], source.map((ch) => ranks[ch]));

  const state = structuredState(model);
  const masks = new MaskSet();
  await structuredPruneStep({
    model, masks, method: getMethod("hrank"), params: p, prunable: DEFAULT_PRUNABLE,
    target: { kind: "channel-sparsity", value: 0.01 }, train: split, seed: 1, step: 0, state,
  });
  const conv1 = state.graph.groups.findIndex((g) => g.name === "conv1");
  assert.deepEqual(state.keep[conv1].flatMap((k, j) => (k ? [] : [j])), [0]);
  assert.ok(state.keep.every((k, i) => i === conv1 || k.every(Boolean)), "only conv1 loses a channel");
  split.dispose();
  masks.dispose();
  disposeModel(model);
});

test("fpgm, apoz and hrank are listed with typed hyperparameters; apoz and hrank ask for output activations, fpgm for nothing", () => {
  for (const name of ["fpgm", "apoz", "hrank"]) {
    const m = getMethod(name);
    assert.equal(m.granularity, "channel");
    assert.ok(m.paper.year >= 2016 && m.paper.url);
    assert.equal(m.params.scope.default, "layer");
  }
  assert.deepEqual(getMethod("fpgm").needs, {});
  assert.deepEqual(getMethod("apoz").needs, { outputActivations: true });
  assert.equal(getMethod("hrank").params.batches.default, 5);
  assert.equal(getMethod("hrank").params.batch_size.default, 128);
  assert.equal(getMethod("hrank").params.layers.default, "conv");
  assert.equal(getMethod("apoz").params.layers.default, "all");
});
