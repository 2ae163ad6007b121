// Layers with the bias add and ReLU fused into their kernels (src/backend/layer-ops.ts): on the native backend the
// fused kernels (dense and sparse conv, dense and sparse matmul) give the same bits as the separate ops they replace,
// forward and every gradient (x, weight, bias), for ReLU and linear layers with ReLU outputs exactly 0 and negative
// pre-activations; the zero count matches sum(cast(equal(y, 0))). On cpu the composed implementations are those ops.
// Then TensorOps: a LeNet-5-Caffe training step on native runs the fused kernels and matches, bit for bit, the same
// step with the fusion switched off. The native parts are skipped (with the reason) when the addon is not built.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { registerNativeBackend } from "../src/backend/native/index.js";
import {
  Conv2DBiasAct, CountZeros, MatMulBiasAct, MatMulBiasActGrad, SparseConv2DBiasAct, conv2dBiasAct, countZeros, fusedBackends, matMulBiasAct, type Activation,
} from "../src/backend/layer-ops.js";
import { sparseConv2d, sparseMatMul, sparsePattern, type SparsePattern } from "../src/backend/sparse-ops.js";
import { makeRng, normal } from "../src/core/rng.js";
import { getArch } from "../src/archs/index.js";
import { createModel, disposeModel, snapshot } from "../src/train/model.js";
import { MaskSet, randomKernelMasks } from "../src/train/masks.js";
import { stage, trainPhase } from "../src/train/loop.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";

const reg = await registerNativeBackend();
const skip = reg.ok ? false : `native backend unavailable: ${reg.reason}`;

function randn(n: number, seed: number): Float32Array {
  const rng = makeRng(seed, "layer-ops-test");
  return Float32Array.from({ length: n }, () => normal(rng));
}

function maskOf(n: number, density: number, seed: number): Float32Array {
  const rng = makeRng(seed, "mask");
  return Float32Array.from({ length: n }, () => (rng() < density ? 1 : 0));
}

type Layer = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/** y and the gradients of sum(y * r) in x, w and b for a fixed random r. */
function run(f: Layer, x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): Float32Array[] {
  return tf.tidy(() => {
    const y = f(x, w, b);
    const r = tf.tensor(randn(y.size, 999), y.shape);
    const grads = tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(f(a, c, d), r)))([x, w, b]);
    return [y, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

function assertSameBits(got: Float32Array[], ref: Float32Array[], what: string): void {
  const names = ["y", "dx", "dw", "db"];
  got.forEach((g, i) => {
    assert.equal(g.length, ref[i].length, `${what} ${names[i]} length`);
    for (let j = 0; j < g.length; j++) {
      if (!Object.is(g[j], ref[i][j])) {
        assert.fail(`${what} ${names[i]}[${j}]: fused ${g[j]} vs unfused ${ref[i][j]}`);
      }
    }
  });
}

interface ConvCase { x: [number, number, number, number]; w: [number, number, number, number]; pad: "same" | "valid"; density: number }

const convCases: ConvCase[] = [
  { x: [3, 12, 12, 1], w: [5, 5, 1, 20], pad: "valid", density: 0.3 },   // LeNet-5-Caffe conv1-like (Cin 1)
  { x: [2, 10, 10, 12], w: [5, 5, 12, 16], pad: "valid", density: 0.25 }, // conv2-like
  { x: [3, 9, 7, 6], w: [3, 3, 6, 11], pad: "same", density: 0.5 },
];

function convLayers(pattern: SparsePattern, activation: Activation): { fused: Layer; fusedSparse: Layer; unfused: Layer; unfusedSparse: Layer } {
  const act = (y: tf.Tensor) => (activation === "relu" ? tf.relu(y) : y);
  return {
    fused: (x, w, b) => conv2dBiasAct(x as tf.Tensor4D, w as tf.Tensor4D, b, undefined, 1, pad, activation),
    fusedSparse: (x, w, b) => conv2dBiasAct(x as tf.Tensor4D, w as tf.Tensor4D, b, pattern, 1, pad, activation),
    unfused: (x, w, b) => act(tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, pad), b)),
    unfusedSparse: (x, w, b) => act(tf.add(sparseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, pattern, 1, pad), b)),
  };
}
let pad: "same" | "valid" = "valid";

test("fused conv + bias + ReLU: the bits of the separate ops on native (dense and sparse kernels) and on cpu", { skip }, () => {
  for (const backend of ["native", "cpu"]) {
    tf.setBackend(backend);
    for (const [i, c] of convCases.entries()) {
      pad = c.pad;
      const nW = c.w.reduce((a, b) => a * b, 1);
      const mask = maskOf(nW, c.density, i);
      const pattern = sparsePattern(mask, c.w);
      const x = tf.tensor(randn(c.x.reduce((a, b) => a * b, 1), 10 + i), c.x);
      const w = tf.tensor(randn(nW, 20 + i).map((v, j) => v * mask[j]), c.w);
      // Biases that push about half the outputs below 0 (ReLU's zeros and gradients of 0 get exercised).
      const b = tf.tensor(randn(c.w[3], 30 + i), [c.w[3]]);
      for (const activation of ["relu", "linear"] as const) {
        const l = convLayers(pattern, activation);
        const what = `${backend} conv case ${i} ${activation}`;
        assertSameBits(run(l.fused, x, w, b), run(l.unfused, x, w, b), `${what} dense`);
        assertSameBits(run(l.fusedSparse, x, w, b), run(l.unfusedSparse, x, w, b), `${what} sparse`);
        if (activation === "relu") {
          const y = tf.tidy(() => l.fused(x, w, b));
          const zeros = y.dataSync().filter((v) => v === 0).length;
          assert.ok(zeros > y.size / 10 && zeros < y.size * 0.9, `${what}: ${zeros} of ${y.size} outputs are 0`);
          assert.equal(countZeros(y).dataSync()[0], zeros);
          y.dispose();
        }
      }
      pattern.dispose();
      tf.dispose([x, w, b]);
    }
  }
  tf.setBackend("native");
});

test("fused dense + bias + ReLU: the bits of the separate ops on native (dense and sparse kernels) and on cpu", { skip }, () => {
  for (const backend of ["native", "cpu"]) {
    tf.setBackend(backend);
    for (const [i, [B, K, N, density]] of ([[32, 80, 50, 0.2], [7, 33, 10, 0.5]] as const).entries()) {
      const mask = maskOf(K * N, density, i);
      const pattern = sparsePattern(mask, [K, N]);
      const x = tf.tensor(randn(B * K, 40 + i), [B, K]);
      const w = tf.tensor(randn(K * N, 50 + i).map((v, j) => v * mask[j]), [K, N]);
      const b = tf.tensor(randn(N, 60 + i), [N]);
      for (const activation of ["relu", "linear"] as const) {
        const act = (y: tf.Tensor) => (activation === "relu" ? tf.relu(y) : y);
        const what = `${backend} dense case ${i} ${activation}`;
        assertSameBits(
          run((a, c, d) => matMulBiasAct(a as tf.Tensor2D, c as tf.Tensor2D, d, undefined, activation), x, w, b),
          run((a, c, d) => act(tf.add(tf.matMul(a as tf.Tensor2D, c as tf.Tensor2D), d)), x, w, b), `${what} dense`);
        assertSameBits(
          run((a, c, d) => matMulBiasAct(a as tf.Tensor2D, c as tf.Tensor2D, d, pattern, activation), x, w, b),
          run((a, c, d) => act(tf.add(sparseMatMul(a as tf.Tensor2D, c as tf.Tensor2D, pattern), d)), x, w, b), `${what} sparse`);
      }
      pattern.dispose();
      tf.dispose([x, w, b]);
    }
  }
  tf.setBackend("native");
});

test("the native backend runs the fused kernels natively; TensorOps uses them on native only", { skip }, () => {
  assert.ok(fusedBackends.has("native"));
  assert.ok(!fusedBackends.has("cpu"));
  for (const name of [Conv2DBiasAct, SparseConv2DBiasAct, MatMulBiasAct, MatMulBiasActGrad, CountZeros]) {
    assert.ok(tf.getKernel(name, "native"), `${name} registered for native`);
  }
});

test("a dense layer's backward pass is one kernel, plus the dx matmul only where the tape needs dx", { skip }, async () => {
  tf.setBackend("native");
  const x = tf.tensor(randn(16 * 20, 1), [16, 20]), w = tf.variable(tf.tensor(randn(20 * 8, 2), [20, 8])), b = tf.variable(tf.tensor(randn(8, 3), [8]));
  const kernelsOf = async (f: () => void) => [...new Set((await tf.profile(() => tf.tidy(f))).kernelNames)];
  const layer = (a: tf.Tensor) => tf.sum(matMulBiasAct(a as tf.Tensor2D, w as unknown as tf.Tensor2D, b, undefined, "relu"));
  // Weights only (a first layer): no dx matmul.
  const weightsOnly = await kernelsOf(() => { tf.variableGrads(() => layer(x) as tf.Scalar, [w, b]); });
  assert.ok(weightsOnly.includes(MatMulBiasActGrad), `kernels: ${weightsOnly}`);
  assert.ok(!weightsOnly.includes(tf.BatchMatMul), `kernels: ${weightsOnly}`);
  // With dx (a later layer): one BatchMatMul for it.
  const withInput = await kernelsOf(() => { tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(matMulBiasAct(a as tf.Tensor2D, c as tf.Tensor2D, d, undefined, "relu")))([x, w, b]); });
  assert.ok(withInput.includes(MatMulBiasActGrad) && withInput.includes(tf.BatchMatMul), `kernels: ${withInput}`);
  tf.dispose([x, w, b]);
});

for (const pruned of [0.9, 0]) test(`a LeNet-5-Caffe training run on native (${pruned * 100} % pruned): the same bits with and without the fused kernels`, { skip }, async () => {
  tf.setBackend("native");
  const shape: [number, number, number] = [28, 28, 1];
  const count = 64;
  const rng = makeRng(5, "data");
  const train = stage({ x: new Float32Array(count * 784).map(() => rng() - 0.5), y: new Int32Array(count).map(() => Math.floor(rng() * 10)), count }, shape);
  const empty = stage({ x: new Float32Array(0), y: new Int32Array(0), count: 0 }, shape);
  const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 16, lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 0 };
  const results: Array<Map<string, Float32Array>> = [];
  for (const fused of [true, false]) {
    if (fused) fusedBackends.add("native");
    else fusedBackends.delete("native");
    const model = createModel(getArch("lenet5-caffe"), shape, 10, 3, "torch-default");
    const masks = pruned > 0 ? randomKernelMasks(model.params, pruned, 7) : new MaskSet();
    const r = await trainPhase({ phase: "finetune", model, train, val: empty, config, masks, seed: 1, selectBestOnVal: false });
    assert.ok(Number.isFinite(r.epochs[0].loss));
    results.push(snapshot(model));
    masks.dispose();
    disposeModel(model);
  }
  fusedBackends.add("native");
  train.dispose();
  empty.dispose();
  for (const [name, v] of results[0]) {
    const ref = results[1].get(name)!;
    assert.ok(v.every((x, i) => Object.is(x, ref[i])), `${name}: fused and unfused training differ`);
  }
});
