// A ReLU conv and its 2x2 max pool as one kernel (layer-ops' Conv2DBiasActPool, native/src/smallconv.cc's
// maxPoolCode2x2 and routePooled): on the native backend it gives the bits of the separate kernels (Conv2DBiasAct,
// MaxPool, MaxPoolGrad, BiasActGrad and the conv gradients), forward and every gradient, dense and sparse, for a first
// conv (no input gradient) and a later one, with tied maxima, ReLU zeros and a NaN; its zero count is countZeros'.
// TensorOps runs it for LeNet-5-Caffe's and LeNet-5's conv + pool pairs, and training runs with it and with
// PRUNEBENCH_CONV_POOL=0 end with the same weights and the same dead-unit rate. A wrapper around TensorOps still sees
// the conv and the pool as two operations. A sparse later conv's three gradients are one pass (dz never written)
// where the sparse kernels take both, and the separate kernels where the scatter kernels pay. Skipped (with the reason) when the addon is not built.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { registerNativeBackend } from "../src/backend/native/index.js";
import {
  Conv2DBiasActPool, Conv2DBiasActPoolGradFilter, MaxPoolBiasActGrad, SparseConv2DBiasActPoolGrad, conv2dBiasAct, conv2dBiasActPool,
  countZeros,
} from "../src/backend/layer-ops.js";
import { SparseConv2DBackpropFilter, SparseConv2DBackpropInput } from "../src/backend/sparse-ops.js";
import { sparsePattern, type SparsePattern } from "../src/backend/sparse-ops.js";
import { makeRng, normal } from "../src/core/rng.js";
import { getArch } from "../src/archs/index.js";
import { DelegatingOps } from "../src/archs/ops.js";
import { TensorOps } from "../src/archs/tensor-ops.js";
import { createModel, disposeModel, forward, snapshot } from "../src/train/model.js";
import { MaskSet, randomKernelMasks } from "../src/train/masks.js";
import { stage, trainPhase } from "../src/train/loop.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";

const reg = await registerNativeBackend();
const skip = reg.ok ? false : `native backend unavailable: ${reg.reason}`;

/** Values on a coarse grid (multiples of 1/4), so that windows hold tied maxima and pre-activations of exactly 0. */
function coarse(n: number, seed: number, scale = 1): Float32Array {
  const rng = makeRng(seed, "conv-pool-test");
  return Float32Array.from({ length: n }, () => Math.round(normal(rng) * 2 * scale) / 4);
}

function sameBits(got: Float32Array, ref: Float32Array, what: string): void {
  assert.equal(got.length, ref.length, `${what}: length`);
  for (let j = 0; j < got.length; j++) {
    if (!Object.is(got[j], ref[j])) assert.fail(`${what}[${j}]: one kernel ${got[j]}, separate kernels ${ref[j]}`);
  }
}

interface Case { x: [number, number, number, number]; w: [number, number, number, number]; pad: "same" | "valid"; density: number; nan?: boolean }

const cases: Case[] = [
  { x: [3, 12, 12, 1], w: [5, 5, 1, 20], pad: "valid", density: 0.6 },     // LeNet-5-Caffe conv1-like: the direct kernels
  { x: [2, 12, 12, 12], w: [5, 5, 12, 16], pad: "valid", density: 0.3 },   // conv2-like, 16 channels (whole vectors)
  { x: [2, 10, 8, 6], w: [3, 3, 6, 11], pad: "same", density: 0.5 },       // padded, 11 channels (a partial vector)
  { x: [2, 8, 8, 1], w: [3, 3, 1, 6], pad: "same", density: 0.7, nan: true }, // a NaN in the data
  { x: [2, 12, 12, 12], w: [5, 5, 12, 16], pad: "valid", density: 0.3, nan: true }, // the same, sparse kernels' side
];

/** pooled output, then the gradients of sum(p * r) in x (when asked), w and b. */
function gradsOf(layer: (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor, x: tf.Tensor, w: tf.Variable, b: tf.Variable, inputGrad: boolean): Float32Array[] {
  return tf.tidy(() => {
    const p = layer(x, w, b);
    const r = tf.tensor(coarse(p.size, 99), p.shape);
    const loss = (xx: tf.Tensor) => tf.sum(tf.mul(layer(xx, w, b), r)) as tf.Scalar;
    const out = [p.dataSync() as Float32Array];
    if (inputGrad) {
      const { grads } = tf.variableGrads(() => loss(x), [w, b]);
      const dx = tf.grad(loss)(x);
      out.push(dx.dataSync() as Float32Array, grads[w.name].dataSync() as Float32Array, grads[b.name].dataSync() as Float32Array);
    } else {
      const { grads } = tf.variableGrads(() => loss(x), [w, b]);
      out.push(grads[w.name].dataSync() as Float32Array, grads[b.name].dataSync() as Float32Array);
    }
    return out;
  });
}

test("conv + ReLU + 2x2 max pool in one kernel: the bits of the separate kernels (dense, sparse, first conv and later ones)", { skip }, async () => {
  tf.setBackend("native");
  for (const [i, c] of cases.entries()) {
    const nW = c.w.reduce((a, b) => a * b, 1);
    const rng = makeRng(i, "mask");
    const mask = Float32Array.from({ length: nW }, () => (rng() < c.density ? 1 : 0));
    const xv = coarse(c.x.reduce((a, b) => a * b, 1), 10 + i);
    if (c.nan) xv[17] = NaN;
    const x = tf.tensor(xv, c.x);
    const w = tf.variable(tf.tensor(coarse(nW, 20 + i, 0.5).map((v, j) => v * mask[j]), c.w));
    const b = tf.variable(tf.tensor(coarse(c.w[3], 30 + i), [c.w[3]]));
    const pattern: SparsePattern = sparsePattern(mask, c.w);
    for (const sparse of [undefined, pattern]) {
      for (const inputGrad of [true, false]) {
        const what = `case ${i} ${sparse ? "sparse" : "dense"} ${inputGrad ? "with" : "without"} dx`;
        const one = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => conv2dBiasActPool(xx as tf.Tensor4D, ww as tf.Tensor4D, bb, sparse, 1, c.pad, inputGrad, false).pooled;
        const two = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.maxPool(conv2dBiasAct(xx as tf.Tensor4D, ww as tf.Tensor4D, bb, sparse, 1, c.pad, "relu", inputGrad), 2, 2, "valid");
        const got = gradsOf(one, x, w, b, inputGrad), ref = gradsOf(two, x, w, b, inputGrad);
        const names = inputGrad ? ["p", "dx", "dw", "db"] : ["p", "dw", "db"];
        got.forEach((g, k) => sameBits(g, ref[k], `${what} ${names[k]}`));
        // The data make what the kernel must get right: ties, zeros, and (case 3) NaNs reaching the gradients.
        const y = tf.tidy(() => conv2dBiasAct(x as tf.Tensor4D, w as unknown as tf.Tensor4D, b, sparse, 1, c.pad, "relu"));
        const yv = y.dataSync();
        const zeros = yv.filter((v) => v === 0).length;
        assert.ok(zeros > yv.length / 10, `${what}: ${zeros} of ${yv.length} ReLU outputs are 0`);
        if (c.nan) assert.ok(ref[ref.length - 2].some(Number.isNaN), `${what}: the NaN reaches dw`);
        else assert.ok(ref.every((r) => r.every(Number.isFinite)));
        const counted = tf.tidy(() => conv2dBiasActPool(x as tf.Tensor4D, w as unknown as tf.Tensor4D, b, sparse, 1, c.pad, inputGrad, true).zeros.dataSync()[0]);
        assert.equal(counted, countZeros(y).dataSync()[0], `${what}: zero count`);
        y.dispose();
      }
    }
    // Tied maxima inside windows, with the max > 0: where the rule (the first strict maximum) decides the route.
    const y = tf.tidy(() => conv2dBiasAct(x as tf.Tensor4D, w as unknown as tf.Tensor4D, b, undefined, 1, c.pad, "relu"));
    const [N, H, W, C] = y.shape as number[];
    const yv = y.dataSync();
    let ties = 0;
    for (let n = 0; n < N; n++) for (let py = 0; py + 1 < H; py += 2) for (let px = 0; px + 1 < W; px += 2) for (let ch = 0; ch < C; ch++) {
      const at = (dy: number, dx: number) => yv[((n * H + py + dy) * W + px + dx) * C + ch];
      const win = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
      const m = Math.max(...win);
      if (m > 0 && win.filter((v) => v === m).length > 1) ties++;
    }
    if (!c.nan) assert.ok(ties > 0, `case ${i}: no tied positive maxima`);
    y.dispose();
    pattern.dispose();
    tf.dispose([x, w, b]);
  }
});

test("TensorOps runs LeNet-5-Caffe's conv + pool pairs as one kernel each, and a wrapper still sees the two operations", { skip }, async () => {
  tf.setBackend("native");
  const model = createModel(getArch("lenet5-caffe"), [28, 28, 1], 10, 1, "torch-default");
  const x = tf.randomNormal([4, 28, 28, 1]);
  const vars = [...model.params.values()];
  const { kernels } = await tf.profile(() => tf.tidy(() => {
    tf.variableGrads(() => tf.sum(forward(model, x, true).logits) as tf.Scalar, vars);
  }));
  const kernelNames = kernels.map((k) => k.name);
  assert.equal(kernelNames.filter((k) => k === Conv2DBiasActPool).length, 2, `kernels: ${kernelNames}`);
  assert.ok(kernelNames.includes(Conv2DBiasActPoolGradFilter) && kernelNames.includes(MaxPoolBiasActGrad), `kernels: ${kernelNames}`);
  assert.ok(!kernelNames.includes(tf.MaxPool) && !kernelNames.includes(tf.MaxPoolGrad), `kernels: ${kernelNames}`);

  let convs = 0, pools = 0;
  class Counting extends DelegatingOps<tf.Tensor> {
    override conv(...a: Parameters<TensorOps["conv"]>) { convs++; return super.conv(...a); }
    override maxPool(...a: Parameters<TensorOps["maxPool"]>) { pools++; return super.maxPool(...a); }
  }
  const params = new Map<string, tf.Tensor>([...model.params]);
  const viaWrapper = tf.tidy(() => model.arch.build(new Counting(new TensorOps(params, false)), x, 10).dataSync());
  const direct = tf.tidy(() => model.arch.build(new TensorOps(params, false), x, 10).dataSync());
  assert.deepEqual([convs, pools], [2, 2]);
  sameBits(viaWrapper as Float32Array, direct as Float32Array, "logits through the wrapper");
  x.dispose();
  disposeModel(model);
});

test("a sparse later conv's gradients: one pass where the sparse kernels take both, the separate kernels where scatter pays", { skip }, async () => {
  tf.setBackend("native");
  // density 0.3: the sparse kernels (dy about a fifth nonzero costs more as scatter); 0.95: the scatter kernels pay.
  for (const [density, onePass] of [[0.3, true], [0.95, false]] as const) {
    const shape: [number, number, number, number] = [5, 5, 12, 16];
    const nW = shape.reduce((a, b) => a * b, 1);
    const rng = makeRng(3, "mask");
    const mask = Float32Array.from({ length: nW }, () => (rng() < density ? 1 : 0));
    const x = tf.tensor(coarse(2 * 12 * 12 * 12, 40), [2, 12, 12, 12]);
    const w = tf.variable(tf.tensor(coarse(nW, 41, 0.5).map((v, j) => v * mask[j]), shape));
    const b = tf.variable(tf.tensor(coarse(16, 42), [16]));
    const pattern = sparsePattern(mask, shape);
    const r = tf.tensor(coarse(2 * 4 * 4 * 16, 43), [2, 4, 4, 16]);
    const { kernels } = await tf.profile(() => tf.tidy(() => {
      tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(conv2dBiasActPool(xx as tf.Tensor4D, ww as tf.Tensor4D, b, pattern, 1, "valid", true, false).pooled, r)))([x, w]);
    }));
    const names = kernels.map((k) => k.name);
    const separate = [MaxPoolBiasActGrad, SparseConv2DBackpropInput, SparseConv2DBackpropFilter];
    assert.ok(names.includes(SparseConv2DBiasActPoolGrad), `density ${density}: ${names}`);
    if (onePass) assert.ok(separate.every((k) => !names.includes(k)), `density ${density}, one pass: ${names}`);
    else assert.ok(separate.every((k) => names.includes(k)), `density ${density}, separate kernels: ${names}`);
    r.dispose();
    pattern.dispose();
    tf.dispose([x, w, b]);
  }
});

for (const arch of ["lenet5-caffe", "lenet5"]) for (const pruned of [0.8, 0]) {
  test(`${arch} trained on native (${pruned * 100} % pruned): the same weights and dead-unit rate with the conv + pool kernel and without`, { skip }, async () => {
    tf.setBackend("native");
    const shape: [number, number, number] = [28, 28, 1];
    const count = 48;
    const rng = makeRng(5, "data");
    const train = stage({ x: new Float32Array(count * 784).map(() => rng() - 0.5), y: new Int32Array(count).map(() => Math.floor(rng() * 10)), count }, shape);
    const empty = stage({ x: new Float32Array(0), y: new Int32Array(0), count: 0 }, shape);
    const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 16, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0 };
    const runs: Array<{ weights: Map<string, Float32Array>; dnr: number }> = [];
    const before = process.env.PRUNEBENCH_CONV_POOL;
    try {
      for (const setting of ["1", "0"]) {
        process.env.PRUNEBENCH_CONV_POOL = setting;
        const model = createModel(getArch(arch), shape, 10, 3, "torch-default");
        const masks = pruned > 0 ? randomKernelMasks(model.params, pruned, 7) : new MaskSet();
        const r = await trainPhase({ phase: "finetune", model, train, val: empty, config, masks, seed: 1, selectBestOnVal: false });
        runs.push({ weights: snapshot(model), dnr: r.epochs[0].dnr });
        masks.dispose();
        disposeModel(model);
      }
    } finally {
      if (before === undefined) delete process.env.PRUNEBENCH_CONV_POOL;
      else process.env.PRUNEBENCH_CONV_POOL = before;
      train.dispose();
      empty.dispose();
    }
    assert.ok(runs[0].dnr > 0 && runs[0].dnr < 1, `dead-unit rate ${runs[0].dnr}`);
    assert.equal(runs[0].dnr, runs[1].dnr);
    for (const [name, v] of runs[0].weights) sameBits(v, runs[1].weights.get(name)!, name);
  });
}
