// The "native" backend against tfjs' cpu backend: every natively implemented
// kernel (forward and gradient) and whole training-step gradients of the real
// LeNet-5 and ResNet-20 (src/archs). Skipped when the addon is not built
// (scripts/build-native.sh).

import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { loadAddon, registerNativeBackend, nativeKernelNames } from "../src/backend/native/index.js";
import { getArch } from "../src/archs/index.js";
import { createModel, disposeModel, forward } from "../src/train/model.js";
import { makeRng, normal } from "../src/core/rng.js";
import {
  AdamUpdate, BatchNormTrain, BatchNormTrainGrad, SgdNesterovUpdate, SgdUpdate, SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad, adamUpdate, batchNormTrain,
  composedSgdNesterovUpdate, sgdUpdate, softmaxCrossEntropyWithHits,
} from "../src/backend/fused-ops.js";
import { TensorOps } from "../src/archs/tensor-ops.js";
import { tensorNames } from "../src/archs/ops.js";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const reg = await registerNativeBackend();
const skip = reg.ok ? false : `native backend unavailable: ${reg.reason}`;

let seed = 100;
type Spec = { shape: number[]; relu?: boolean; positive?: boolean; dtype?: "float32" | "int32" };
/** Input arrays created once, so both backends see identical values. */
function inputs(...specs: Spec[]): Array<() => tf.Tensor> {
  return specs.map((s) => {
    const n = tf.util.sizeFromShape(s.shape);
    const v = randn(n, seed++);
    for (let i = 0; i < n; i++) {
      if (s.relu) v[i] = Math.max(0, v[i]);
      if (s.positive) v[i] = Math.abs(v[i]) + 0.5;
      if (s.dtype === "int32") v[i] = Math.round(v[i] * 3);
    }
    return () => tf.tensor(s.dtype === "int32" ? Int32Array.from(v) : v, s.shape, s.dtype ?? "float32");
  });
}

function runOn(backend: string, f: () => tf.Tensor | tf.Tensor[]): { shape: number[]; values: Float32Array }[] {
  assert.ok(tf.setBackend(backend));
  return tf.tidy(() => {
    const r = f();
    return (Array.isArray(r) ? r : [r]).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) }));
  });
}

/** max |native - cpu| / max |cpu| per output; asserts shapes match and the ratio is within tol. */
function compare(name: string, f: () => tf.Tensor | tf.Tensor[], tol = 1e-5): number[] {
  const ref = runOn("cpu", f);
  const got = runOn("native", f);
  assert.equal(got.length, ref.length, `${name}: output count`);
  return ref.map((r, i) => {
    const g = got[i];
    assert.deepEqual(g.shape, r.shape, `${name}[${i}]: shape`);
    let maxRef = 0, maxDiff = 0;
    for (let j = 0; j < r.values.length; j++) {
      const a = r.values[j], b = g.values[j];
      if (Number.isNaN(a) || Number.isNaN(b)) {
        assert.ok(Number.isNaN(a) && Number.isNaN(b), `${name}[${i}]: NaN mismatch at ${j}`);
        continue;
      }
      maxRef = Math.max(maxRef, Math.abs(a));
      maxDiff = Math.max(maxDiff, Math.abs(a - b));
    }
    const rel = maxRef === 0 ? maxDiff : maxDiff / maxRef;
    assert.ok(rel <= tol, `${name}[${i}]: relative error ${rel.toExponential(2)} > ${tol} (max |ref| ${maxRef})`);
    return rel;
  });
}

/** Gradients of sum(f(xs) * r) with a fixed random r, so dy is not uniform. */
function gradsOf(f: (...xs: tf.Tensor[]) => tf.Tensor, makers: Array<() => tf.Tensor>): () => tf.Tensor[] {
  return () => {
    const xs = makers.map((m) => m());
    const probe = f(...xs);
    const r = tf.tensor(randn(probe.size, 999), probe.shape);
    const g = tf.grads((...ys: tf.Tensor[]) => tf.sum(tf.mul(f(...ys), r)));
    return [f(...xs), ...g(xs)];
  };
}

test("native backend registers and overrides the hot kernels", { skip }, () => {
  for (const k of [tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter, tf.BatchMatMul, tf.MaxPool,
    tf.MaxPoolGrad, tf.Relu, tf.Add, tf.Sub, tf.Multiply, tf.RealDiv, tf.Sum, tf.Mean, tf.FusedBatchNorm, tf.Slice, tf.AvgPoolGrad]) {
    assert.ok(nativeKernelNames.includes(k), `${k} is native`);
    assert.notEqual(tf.getKernel(k, "native")!.kernelFunc, tf.getKernel(k, "cpu")!.kernelFunc);
  }
  // every cpu kernel is available under "native"
  const nat = new Set(tf.getKernelsForBackend("native").map((c) => c.kernelName));
  for (const c of tf.getKernelsForBackend("cpu")) assert.ok(nat.has(c.kernelName), `${c.kernelName} registered`);
});

test("registerNativeBackend is idempotent", { skip }, async () => {
  assert.deepEqual(await registerNativeBackend(), { ok: true });
});

type ConvCase = { name: string; x: number[]; w: number[]; stride: number; pad: "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]]; dil?: number };
const convCases: ConvCase[] = [
  { name: "lenet conv1 5x5 same", x: [8, 28, 28, 1], w: [5, 5, 1, 6], stride: 1, pad: "same" },
  { name: "lenet conv2 5x5 valid", x: [8, 14, 14, 6], w: [5, 5, 6, 16], stride: 1, pad: "valid" },
  { name: "resnet 3x3 same 16", x: [4, 32, 32, 16], w: [3, 3, 16, 16], stride: 1, pad: "same" },
  { name: "resnet 3x3 stride 2 same (uneven pad)", x: [4, 32, 32, 16], w: [3, 3, 16, 32], stride: 2, pad: "same" },
  { name: "resnet 1x1 stride 2 valid", x: [4, 16, 16, 32], w: [1, 1, 32, 64], stride: 2, pad: "valid" },
  { name: "resnet 3x3 64ch same", x: [2, 8, 8, 64], w: [3, 3, 64, 64], stride: 1, pad: "same" },
  { name: "odd size stride 2 same", x: [3, 7, 9, 5], w: [3, 3, 5, 4], stride: 2, pad: "same" },
  { name: "4x4 stride 2 same (pad 1/2)", x: [2, 10, 10, 3], w: [4, 4, 3, 5], stride: 2, pad: "same" },
  { name: "explicit uneven pad", x: [2, 9, 8, 3], w: [3, 2, 3, 4], stride: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { name: "dilation 2", x: [2, 12, 12, 3], w: [3, 3, 3, 4], stride: 1, pad: "same", dil: 2 },
];

for (const c of convCases) {
  test(`conv2d forward: ${c.name}`, { skip }, () => {
    const [x, w] = inputs({ shape: c.x }, { shape: c.w });
    const [rel] = compare(c.name, () => tf.conv2d(x() as tf.Tensor4D, w() as tf.Tensor4D, c.stride, c.pad, "NHWC", c.dil ?? 1), 0);
    assert.equal(rel, 0); // bit-identical to tfjs' cpu kernel
  });
  if (c.dil && c.dil > 1) continue; // tfjs has no gradient for dilated conv2d with stride > 1 mixes; keep to dil 1
  test(`conv2d gradients: ${c.name}`, { skip }, () => {
    const [x, w] = inputs({ shape: c.x }, { shape: c.w });
    compare(c.name, gradsOf((a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), [x, w]));
  });
}

test("conv2d NCHW falls back to the cpu kernel", { skip }, () => {
  const [x, w] = inputs({ shape: [2, 3, 6, 6] }, { shape: [3, 3, 3, 4] });
  compare("nchw", () => tf.conv2d(x() as tf.Tensor4D, w() as tf.Tensor4D, 1, "same", "NCHW"));
});

test("matMul forward and gradients (dense shapes, transposes, batches)", { skip }, () => {
  const [a, b] = inputs({ shape: [128, 784] }, { shape: [784, 300] });
  compare("dense 784x300", gradsOf((p, q) => tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D), [a, b]));
  const [c, d] = inputs({ shape: [20, 7] }, { shape: [9, 20] });
  compare("transposeA+B", gradsOf((p, q) => tf.matMul(p, q, true, true), [c, d]));
  const [e, f] = inputs({ shape: [3, 4, 5] }, { shape: [3, 5, 6] });
  compare("batched", gradsOf((p, q) => tf.matMul(p, q), [e, f]));
  const [g, h] = inputs({ shape: [1, 4, 5] }, { shape: [3, 6, 5] });
  compare("broadcast batch", () => tf.matMul(g(), h(), false, true));
  const [i, j, k] = inputs({ shape: [16, 12] }, { shape: [12, 8] }, { shape: [8] });
  compare("fused matMul bias relu", () => tf.fused.matMul({ a: i() as tf.Tensor2D, b: j() as tf.Tensor2D, bias: k(), activation: "relu" }));
});

test("maxPool forward and gradient (ties after relu, overlapping windows, same padding)", { skip }, () => {
  const [x] = inputs({ shape: [8, 28, 28, 6], relu: true });
  compare("2x2/2 valid", gradsOf((a) => tf.maxPool(a as tf.Tensor4D, 2, 2, "valid"), [x]), 0);
  const [y] = inputs({ shape: [4, 9, 11, 5], relu: true });
  compare("3x3/2 same", gradsOf((a) => tf.maxPool(a as tf.Tensor4D, 3, 2, "same"), [y]), 1e-6);
  compare("3x3/1 same", gradsOf((a) => tf.maxPool(a as tf.Tensor4D, 3, 1, "same"), [y]), 1e-6);
  const [z] = inputs({ shape: [2, 7, 7, 3] });
  compare("2x2/2 valid odd", gradsOf((a) => tf.maxPool(a as tf.Tensor4D, 2, 2, "valid"), [z]), 0);
});

test("avgPool forward", { skip }, () => {
  const [x] = inputs({ shape: [4, 9, 9, 5] });
  compare("avg 3x3/2 same", () => tf.avgPool(x() as tf.Tensor4D, 3, 2, "same"));
  compare("avg 2x2/2 valid", () => tf.avgPool(x() as tf.Tensor4D, 2, 2, "valid"));
});

test("avgPool 1x1 strided (option-A shortcut subsample) gradient, and slices of every shape, equal the cpu kernels", { skip }, () => {
  const [x, y] = inputs({ shape: [3, 8, 8, 5] }, { shape: [2, 7, 9, 4] });
  compare("avg 1x1/2 valid grad", gradsOf((a) => tf.avgPool(a as tf.Tensor4D, 1, 2, "valid"), [x]), 0);
  compare("avg 1x1/2 valid grad, odd sizes", gradsOf((a) => tf.avgPool(a as tf.Tensor4D, 1, 2, "valid"), [y]), 0);
  compare("avg 2x2/2 grad (the cpu kernel)", gradsOf((a) => tf.avgPool(a as tf.Tensor4D, 2, 2, "valid"), [x]), 1e-6);
  const [big, ints] = inputs({ shape: [4, 10, 10, 6] }, { shape: [5, 7], dtype: "int32" });
  compare("pad gradient: slice [0,1,1,0] of [4,10,10,6]", () => tf.slice(big(), [0, 1, 1, 0], [4, 8, 8, 6]), 0);
  compare("inner axis cut", () => tf.slice(big(), [1, 0, 2, 1], [2, 10, 5, 3]), 0);
  compare("whole tensor", () => tf.slice(big(), [0, 0, 0, 0], [-1, -1, -1, -1]), 0);
  compare("leading axis only", () => tf.slice(big(), [2, 0, 0, 0], [1, -1, -1, -1]), 0);
  compare("empty", () => tf.slice(big(), [0, 0, 0, 0], [0, 10, 10, 6]), 0);
  compare("int32 2-D", () => tf.slice(ints(), [1, 2], [3, 4]), 0);
  compare("1-D", () => tf.slice(tf.range(0, 20), [3], [9]), 0);
});

test("relu forward and gradient", { skip }, () => {
  const [x] = inputs({ shape: [4, 8, 8, 6] });
  compare("relu", gradsOf((a) => tf.relu(a), [x]), 0);
});

test("binary elementwise ops with broadcasting, forward and gradients", { skip }, () => {
  const shapes: Array<[number[], number[]]> = [
    [[4, 5, 6, 7], [4, 5, 6, 7]], [[4, 5, 6, 7], [7]], [[4, 1, 6, 1], [4, 5, 6, 7]], [[5, 1], [1, 6]],
    [[3, 4], []], [[], [3, 4]], [[2, 3, 4], [3, 1]], [[128, 10], [10]],
  ];
  const ops: Array<[string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor]> = [
    ["add", tf.add], ["sub", tf.sub], ["mul", tf.mul], ["div", tf.div],
    ["squaredDifference", tf.squaredDifference], ["maximum", tf.maximum], ["minimum", tf.minimum],
  ];
  for (const [sa, sb] of shapes) {
    for (const [name, op] of ops) {
      const [a, b] = inputs({ shape: sa }, { shape: sb, positive: name === "div" });
      const label = `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`;
      // tfjs' SquaredDifference/Maximum/Minimum gradients do not reduce broadcast axes (on any backend)
      if (["squaredDifference", "maximum", "minimum"].includes(name) && sa.join() !== sb.join()) compare(label, () => op(a(), b()));
      else compare(label, gradsOf(op, [a, b]));
    }
  }
  const [i, j] = inputs({ shape: [3, 4], dtype: "int32" }, { shape: [4], dtype: "int32" });
  compare("int32 add falls back", () => tf.add(i(), j()), 0);
});

test("unary ops", { skip }, () => {
  const [x] = inputs({ shape: [3, 5, 7] });
  const [p] = inputs({ shape: [3, 5, 7], positive: true });
  const cases: Array<[string, () => tf.Tensor]> = [
    ["neg", () => tf.neg(x())], ["exp", () => tf.exp(x())], ["log", () => tf.log(p())],
    ["sqrt", () => tf.sqrt(p())], ["rsqrt", () => tf.rsqrt(p())], ["square", () => tf.square(x())],
    ["sigmoid", () => tf.sigmoid(x())], ["tanh", () => tf.tanh(x())], ["abs", () => tf.abs(x())],
    ["relu6", () => tf.relu6(tf.mul(x(), 5))], ["step", () => tf.step(x(), 0.3)],
  ];
  for (const [name, f] of cases) compare(name, f);
  compare("unary grads", gradsOf((a) => tf.add(tf.sqrt(a), tf.mul(tf.exp(tf.neg(a)), tf.square(a))), [p]));
});

test("reductions over axes (sum, mean, max, min; keepDims)", { skip }, () => {
  const [x] = inputs({ shape: [16, 8, 8, 12] });
  const axes: Array<number | number[] | undefined> = [undefined, 0, 3, [0, 1, 2], [1, 2], [0, 2], [1, 3]];
  for (const ax of axes) {
    for (const keep of [false, true]) {
      compare(`sum ${ax} ${keep}`, gradsOf((a) => tf.sum(a, ax, keep), [x]));
      compare(`mean ${ax} ${keep}`, gradsOf((a) => tf.mean(a, ax, keep), [x]));
      compare(`max ${ax} ${keep}`, () => tf.max(x(), ax, keep), 0);
      compare(`min ${ax} ${keep}`, () => tf.min(x(), ax, keep), 0);
    }
  }
});

test("addN, softmax, logSoftmax and softmax cross-entropy gradient", { skip }, () => {
  const [a, b, c] = inputs({ shape: [5, 6] }, { shape: [5, 6] }, { shape: [5, 6] });
  compare("addN", () => tf.addN([a(), b(), c()]));
  const [l] = inputs({ shape: [128, 10] });
  compare("softmax", gradsOf((t) => tf.softmax(t), [l]));
  compare("logSoftmax", gradsOf((t) => tf.logSoftmax(t), [l]));
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: 128 }, (_, i) => i % 10), "int32"), 10);
  const onehot = Float32Array.from(labels.dataSync());
  labels.dispose();
  compare("softmaxCrossEntropy", gradsOf((t) => tf.losses.softmaxCrossEntropy(tf.tensor(onehot, [128, 10]), t), [l]));
});

test("batch norm (moments + batchNorm) forward and gradients", { skip }, () => {
  const [x, g, be] = inputs({ shape: [8, 6, 6, 16] }, { shape: [16], positive: true }, { shape: [16] });
  compare("batchNorm train", gradsOf((a, gamma, beta) => {
    const { mean, variance } = tf.moments(a, [0, 1, 2]);
    return tf.batchNorm(a, mean, variance, beta, gamma, 1e-5);
  }, [x, g, be]));
  const [m, v] = inputs({ shape: [16] }, { shape: [16], positive: true });
  compare("batchNorm inference (all inputs)", gradsOf((a, mean, variance, gamma, beta) =>
    tf.batchNorm(a, mean, variance, beta, gamma, 1e-3), [x, m, v, g, be]));
  // (tfjs cannot differentiate batchNorm without scale or offset on any backend)
  compare("batchNorm forward without offset", () => tf.batchNorm(x(), m(), v(), undefined, g()));
  compare("batchNorm forward without scale/offset", () => tf.batchNorm(x(), m(), v()));
});

/** Training batch norm as src/archs/tensor-ops.ts runs it. Returns y, mean, variance (all scope-tracked). */
function bnTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor[] {
  const r = batchNormTrain(x, gamma, beta, eps);
  return [r.y, r.mean, r.variance];
}

test("fused training batch norm (native) matches tf.moments + tf.batchNorm on cpu: forward, statistics, gradients", { skip }, async () => {
  for (const shape of [[8, 6, 6, 16], [4, 5, 5, 7], [16, 8, 8, 32], [4, 4, 4, 64], [32, 10]]) {
    const C = shape[shape.length - 1];
    const [x, g, be] = inputs({ shape }, { shape: [C], positive: true }, { shape: [C] });
    // shift and scale x per element so the statistics are far from 0 / 1
    const xs = () => tf.add(tf.mul(x(), 3), 1.5);
    compare(`bn train forward ${shape}`, () => bnTrain(xs(), g(), be()), 1e-5);
    compare(`bn train gradients ${shape}`, gradsOf((a, gamma, beta) => bnTrain(a, gamma, beta)[0], [xs, g, be]), 1e-4);
  }
  // the native run really used the two fused kernels (and no moments / batchNorm kernels)
  tf.setBackend("native");
  const [x, g, be] = inputs({ shape: [4, 4, 4, 16] }, { shape: [16], positive: true }, { shape: [16] });
  const info = await tf.profile(() => {
    const xs = x(), gs = g(), bs = be();
    return tf.grads((a: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.sum(bnTrain(a, gamma, beta)[0]))([xs, gs, bs]);
  });
  assert.ok(info.kernelNames.includes(BatchNormTrain), `kernels: ${info.kernelNames}`);
  assert.ok(info.kernelNames.includes(BatchNormTrainGrad), `kernels: ${info.kernelNames}`);
  assert.ok(!info.kernelNames.includes(tf.FusedBatchNorm) && !info.kernelNames.includes(tf.Mean), `kernels: ${info.kernelNames}`);
  for (const k of [BatchNormTrain, BatchNormTrainGrad, SgdUpdate, AdamUpdate]) {
    assert.ok(nativeKernelNames.includes(k), `${k} is native`);
    assert.notEqual(tf.getKernel(k, "native")!.kernelFunc, tf.getKernel(k, "cpu")!.kernelFunc, `${k}: cpu has the composed one`);
  }
});

/**
 * A ResNet basic block with a projection shortcut (conv/bn/relu/conv/bn + conv1x1-stride-2/bn, add, relu) run
 * through TensorOps in training mode, as ResNet-20 runs: returns the loss, the gradients of x and every
 * parameter, and the queued running-statistic updates.
 */
function resnetBlockViaTensorOps(batch: number): () => tf.Tensor[] {
  const cin = 16, cout = 32;
  const shapes: Record<string, number[]> = {
    "b/conv1/kernel": [3, 3, cin, cout], "b/conv2/kernel": [3, 3, cout, cout], "b/convsc/kernel": [1, 1, cin, cout],
  };
  for (const bn of ["b/bn1", "b/bn2", "b/bnsc"]) {
    shapes[tensorNames.gamma(bn)] = [cout];
    shapes[tensorNames.beta(bn)] = [cout];
  }
  const names = Object.keys(shapes);
  const makers = inputs({ shape: [batch, 8, 8, cin] }, ...names.map((n) => ({ shape: shapes[n], positive: n.endsWith("gamma") })));
  const probe = randn(batch * 4 * 4 * cout, 4242);
  return () => {
    const xs = makers.map((m) => m());
    const scaled = xs.map((t, i) => (i > 0 && names[i - 1].endsWith("kernel") ? tf.mul(t, 0.2) : t));
    let updates: Array<[string, tf.Tensor]> = [];
    const f = (...ts: tf.Tensor[]) => {
      const params = new Map<string, tf.Tensor>(names.map((n, i) => [n, ts[i + 1]]));
      for (const bn of ["b/bn1", "b/bn2", "b/bnsc"]) {
        params.set(tensorNames.movingMean(bn), tf.fill([cout], 0.25));
        params.set(tensorNames.movingVar(bn), tf.fill([cout], 2));
      }
      const ops = new TensorOps(params, true);
      const h = ops.relu(ops.batchNorm("b/bn1", ops.conv("b/conv1", ts[0], { filters: cout, kernel: 3, stride: 2, padding: "same", bias: false })));
      const y = ops.batchNorm("b/bn2", ops.conv("b/conv2", h, { filters: cout, kernel: 3, padding: "same", bias: false }));
      const sc = ops.batchNorm("b/bnsc", ops.conv("b/convsc", ts[0], { filters: cout, kernel: 1, stride: 2, padding: "valid", bias: false }));
      const out = ops.relu(ops.add(y, sc));
      updates = ops.stateUpdates;
      return tf.sum(tf.mul(out, tf.tensor(probe, out.shape)));
    };
    const { value, grads } = tf.valueAndGrads(f)(scaled);
    const stats = updates.map(([, t]) => { const c = t.clone(); t.dispose(); return c; });
    assert.equal(stats.length, 6);
    return [value, ...grads, ...stats];
  };
}

test("full ResNet block (TensorOps, training batch norm) gradients and running statistics: native vs cpu", { skip }, () => {
  const ref = runOn("cpu", resnetBlockViaTensorOps(8));
  const run = resnetBlockViaTensorOps(8);
  const rels = compare("resnet block via TensorOps", run, 1e-4);
  assert.equal(rels.length, ref.length);
  // the running statistics (last six outputs) within 1e-5
  const stats = compare("resnet block running stats", () => run().slice(-6), 1e-5);
  assert.equal(stats.length, 6);
});

test("trainPhase on the native backend with ResNet-20 (fused batch norm): no leaks, running stats updated", { skip }, async () => {
  const { initBackend } = await import("../src/backend/index.js");
  const { getArch } = await import("../src/archs/index.js");
  const { DEFAULT_FINETUNE } = await import("../src/grid/index.js");
  const { stage, trainPhase } = await import("../src/train/loop.js");
  const { MaskSet } = await import("../src/train/masks.js");
  const { createModel, disposeModel } = await import("../src/train/model.js");
  const { makeRng } = await import("../src/core/rng.js");
  await initBackend("native");
  const run = async () => {
    const model = createModel(getArch("resnet20"), [32, 32, 3], 10, 0);
    const rng = makeRng(1, "data");
    const n = 16;
    const train = stage({ x: new Float32Array(n * 3072).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, [32, 32, 3]);
    const masks = new MaskSet();
    const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 8, lr: 0.05 };
    await trainPhase({ phase: "finetune", model, train, val: train, config, masks, seed: 0, selectBestOnVal: false });
    const mean = Float32Array.from(model.state.get(tensorNames.movingMean("bn0"))!.dataSync());
    const variance = Float32Array.from(model.state.get(tensorNames.movingVar("bn0"))!.dataSync());
    train.dispose(); masks.dispose(); disposeModel(model);
    return { mean, variance };
  };
  await run();
  const before = tf.memory().numTensors;
  const { mean, variance } = await run();
  assert.equal(tf.memory().numTensors, before, "resnet20: tensors leaked");
  assert.ok(mean.some((v) => v !== 0) && variance.some((v) => v !== 1), "running statistics updated");
  assert.ok(variance.every((v) => Number.isFinite(v) && v > 0), "running variance positive");
});

/** Standard normal values from the project's one generator, so both backends see identical inputs. */
function randn(n: number, seed: number): Float32Array {
  const rng = makeRng(seed, "native-test");
  return Float32Array.from({ length: n }, () => normal(rng));
}

/** The loss and every parameter's gradient of one training step (batch norm in training mode) of a real arch. */
function trainingGrads(arch: string, inputShape: [number, number, number], seed: number, batch: number): () => tf.Tensor[] {
  return () => {
    const model = createModel(getArch(arch), inputShape, 10, seed);
    const x = tf.tensor(randn(batch * inputShape.reduce((p, q) => p * q, 1), 5), [batch, ...inputShape]);
    const labels = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => (i * 3) % 10), "int32"), 10);
    const vars = [...model.params.values()];
    const { value, grads } = tf.variableGrads(() => {
      const { logits, stateUpdates } = forward(model, x, true);
      stateUpdates.forEach(([, t]) => t.dispose());
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    }, vars);
    const out = [value, ...vars.map((v) => grads[v.name])];
    disposeModel(model);
    return out;
  };
}

test("full training-step gradients: LeNet-5", { skip }, () => {
  const rels = compare("lenet5 step", trainingGrads("lenet5", [28, 28, 1], 3, 16));
  assert.equal(rels.length, 1 + 10);
});

test("full training-step gradients: ResNet-20 with batch norm", { skip }, () => {
  const rels = compare("resnet20 step", trainingGrads("resnet20", [8, 8, 3], 4, 8));
  assert.ok(rels.length > 5);
});

test("gather (axis 0 and 1, float32 and int32) and pad (4-d, 2-d, constant) match the cpu kernels", { skip }, () => {
  const [x, y, s] = inputs({ shape: [10, 7, 3] }, { shape: [12], dtype: "int32" }, { shape: [5, 6] });
  const idx = () => tf.tensor1d([3, 0, 9, 3, 7], "int32");
  compare("gather axis 0", () => tf.gather(x(), idx()), 0);
  compare("gather axis 1", () => tf.gather(x(), tf.tensor1d([6, 1, 1], "int32"), 1), 0);
  compare("gather int32", () => tf.cast(tf.gather(y(), tf.tensor1d([11, 0, 4], "int32")), "float32"), 0);
  // rows of 64 floats and more: the addon's row copy (a training batch's gather)
  const [big] = inputs({ shape: [40, 9, 9, 1] });
  compare("gather batch rows", () => tf.gather(big(), tf.tensor1d([39, 0, 17, 17, 5, 38, 2], "int32")), 0);
  compare("pad nhwc", () => tf.pad(tf.reshape(x(), [2, 5, 7, 3]), [[0, 0], [2, 2], [1, 2], [0, 0]]), 0);
  compare("pad lenet input", () => tf.pad(tf.reshape(x(), [10, 7, 3, 1]), [[0, 0], [2, 2], [2, 2], [0, 0]]), 0);
  compare("pad 2-d constant", () => tf.pad(s(), [[1, 0], [0, 3]], 1.5), 0);
  assert.ok(nativeKernelNames.includes(tf.GatherV2) && nativeKernelNames.includes(tf.PadV2));
});

/**
 * Runs `steps` optimizer steps of a fresh optimizer on `backend` over fixed random weights, gradients and masks;
 * returns weights and states. Checks on the way that the variables keep their data (updated in place on native),
 * that a snapshot handed out by dataSync() and a clone sharing a variable's data never change afterwards.
 */
async function optimizerRun(kind: "sgd" | "adam", backend: string, steps: number) {
  const { sgd, adam } = await import("../src/train/optim.js");
  const { MaskSet } = await import("../src/train/masks.js");
  assert.ok(tf.setBackend(backend));
  const shapes: Record<string, number[]> = { "a/kernel": [40, 30], "b/kernel": [3, 3, 4, 8], "a/bias": [30] };
  const params = new Map<string, tf.Variable>();
  const masks = new MaskSet();
  let s = 500;
  for (const [name, shape] of Object.entries(shapes)) {
    const n = tf.util.sizeFromShape(shape);
    const m = randn(n, s++).map((v) => (v < 0.3 ? 0 : 1));
    const w = randn(n, s++).map((v, i) => (name.endsWith("kernel") ? v * m[i] : v));
    params.set(name, tf.tidy(() => tf.variable(tf.tensor(w, shape))));
    if (name.endsWith("kernel")) masks.set(name, m, shape);
  }
  const opt = kind === "sgd" ? sgd(0.9, 0.01) : adam(0.01, 0.9, 0.999, 1e-8);
  const exposed = new Map<string, Float32Array>();
  const clones = new Map<string, [tf.Tensor, Float32Array]>();
  const dataIds = new Map([...params].map(([name, w]) => [name, w.dataId]));
  for (let t = 0; t < steps; t++) {
    tf.tidy(() => {
      const grads: Record<string, tf.Tensor> = {};
      for (const [name, w] of params) grads[name] = tf.tensor(randn(w.size, 1000 * t + w.size), w.shape);
      opt.step(params, grads, 0.05 * (1 + t), masks);
    });
    // A snapshot taken mid-training (dataSync hands out the backing array) must not change afterwards.
    if (t === 1) for (const [name, w] of params) exposed.set(name, w.dataSync() as Float32Array);
    // Nor may a tensor that shares a variable's data (the update must not write in place then).
    if (t === 2) for (const [name, w] of params) clones.set(name, [w.clone(), Float32Array.from(w.dataSync())]);
  }
  const frozen = new Map([...exposed].map(([k, v]) => [k, v.slice()]));
  const out = new Map<string, { w: Float32Array; state: Float32Array[]; mask?: Float32Array }>();
  for (const [name, w] of params) out.set(name, { w: Float32Array.from(w.dataSync()), state: opt.state(name), mask: masks.values(name) });
  for (const [name, v] of exposed) assert.deepEqual(v, frozen.get(name), `${name}: an exposed snapshot was written in place`);
  for (const [name, [c, values]] of clones) {
    assert.deepEqual(c.dataSync(), values, `${name}: a clone of the variable changed`);
    c.dispose();
  }
  // Until the clone was taken, the native update wrote into the variable's own data.
  const kept = [...params].filter(([name, w]) => w.dataId === dataIds.get(name)).length;
  opt.dispose(); masks.dispose();
  for (const w of params.values()) w.dispose();
  return { out, kept };
}

for (const kind of ["sgd", "adam"] as const) {
  test(`fused ${kind} update kernel: native equals the composed tf-op kernel on cpu; pruned weights and their state stay exactly 0`, { skip }, async () => {
    await optimizerRun(kind, "native", 1); // warm-up allocations
    const before = tf.memory().numTensors;
    const native = await optimizerRun(kind, "native", 5);
    const cpu = await optimizerRun(kind, "cpu", 5);
    assert.equal(tf.memory().numTensors, before, "no tensors leak");
    assert.equal(native.kept, 0, "the variables got new data once a clone shared theirs");
    for (const [name, f] of native.out) {
      const o = cpu.out.get(name)!;
      assert.equal(f.state.length, kind === "sgd" ? 1 : 2);
      for (const [a, b, what] of [[f.w, o.w, "weights"], ...f.state.map((st, i) => [st, o.state[i], `state ${i}`])] as Array<[Float32Array, Float32Array, string]>) {
        let maxRef = 0, maxDiff = 0;
        for (let i = 0; i < a.length; i++) { maxRef = Math.max(maxRef, Math.abs(b[i])); maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i])); }
        assert.ok(maxRef > 0 && maxDiff <= 1e-6 * maxRef, `${name} ${what}: relative difference ${maxDiff / maxRef}`);
      }
      if (!f.mask) continue;
      let pruned = 0;
      for (let i = 0; i < f.mask.length; i++) {
        if (f.mask[i] !== 0) continue;
        pruned++;
        for (const r of [f, o]) {
          assert.ok(r.w[i] === 0, `${name}[${i}] pruned weight ${r.w[i]}`);
          for (const st of r.state) assert.ok(st[i] === 0, `${name}[${i}] optimizer state of a pruned weight: ${st[i]}`);
        }
      }
      assert.ok(pruned > 0);
    }
  });
}

test("fused softmax cross-entropy (native, one kernel) matches the separate tfjs ops on cpu: loss, hits, logits gradient", { skip }, () => {
  const B = 37, C = 10;
  const [logitsOf] = inputs({ shape: [B, C] });
  const raw = Int32Array.from({ length: B }, (_, i) => (i * 7) % C);
  raw[3] = C; // out of range: an all-zero one-hot row, never a hit
  const lab = () => tf.tensor1d(raw, "int32");
  // Ties: row 0's maximum twice, the first index is the label's (argMax takes the first).
  const withTies = () => {
    const x = logitsOf().arraySync() as number[][];
    x[0][raw[0]] = 9; x[0][(raw[0] + 1) % C] = 9;
    return tf.tensor2d(x);
  };
  const separate = (x: tf.Tensor, y: tf.Tensor, dy: number) => {
    const loss = (l: tf.Tensor) => tf.mul(tf.losses.softmaxCrossEntropy(tf.oneHot(y as tf.Tensor1D, C), l), dy) as tf.Scalar;
    return [loss(x), tf.sum(tf.cast(tf.equal(tf.argMax(x, 1), y), "float32")), tf.grad(loss)(x)];
  };
  const fused = (x: tf.Tensor, y: tf.Tensor, dy: number) => {
    const f = (l: tf.Tensor) => tf.mul(softmaxCrossEntropyWithHits(l as tf.Tensor2D, y as tf.Tensor1D).loss, dy) as tf.Scalar;
    return [f(x), softmaxCrossEntropyWithHits(x as tf.Tensor2D, y as tf.Tensor1D).hits, tf.grad(f)(x)];
  };
  for (const dy of [1, 0.37]) {
    const ref = runOn("cpu", () => separate(withTies(), lab(), dy));
    const got = runOn("native", () => fused(withTies(), lab(), dy));
    assert.equal(got[1].values[0], ref[1].values[0], "hits");
    assert.ok(ref[1].values[0] >= 1, "row 0's tie counted as a hit");
    for (const i of [0, 2]) {
      assert.deepEqual(got[i].shape, ref[i].shape);
      for (let j = 0; j < ref[i].values.length; j++) {
        const a = got[i].values[j], b = ref[i].values[j];
        assert.ok(Math.abs(a - b) <= 2e-7 * Math.max(1, Math.abs(b)) + 1e-9, `output ${i}[${j}]: ${a} vs ${b}`);
      }
    }
    assert.ok(ref[2].values.slice(3 * C, 4 * C).every((v) => v > 0), "the out-of-range row's gradient is the softmax alone");
  }
  // the composed kernel (every other backend) equals the separate ops to the bit, gradient included
  const ref = runOn("cpu", () => separate(withTies(), lab(), 1));
  const composed = runOn("cpu", () => fused(withTies(), lab(), 1));
  for (let i = 0; i < 3; i++) assert.deepEqual(composed[i].values, ref[i].values, `composed output ${i} bit-identical`);
});

test("the addon's softmax cross-entropy loops equal the former JS loops (double exp/log of float32 values) within one float ulp", { skip }, () => {
  const loaded = loadAddon();
  assert.ok(!("error" in loaded));
  const addon = loaded.addon;
  assert.equal(typeof addon.softmaxCrossEntropy, "function");
  assert.equal(typeof addon.softmaxCrossEntropyGrad, "function");
  const B = 64, C = 10;
  const rng = makeRng(13, "ce-loops");
  const x = Float32Array.from({ length: B * C }, () => normal(rng) * 4);
  const y = Int32Array.from({ length: B }, (_, i) => (i === 5 ? -1 : Math.floor(rng() * C)));
  // The loops src/backend/native/kernels.ts ran in JS before the addon had them.
  const f = Math.fround;
  const lse = (r: number) => {
    let m = -Infinity;
    for (let j = 0; j < C; j++) if (x[r * C + j] > m) m = x[r * C + j];
    let sum = 0;
    for (let j = 0; j < C; j++) sum += f(Math.exp(f(x[r * C + j] - m)));
    return f(m + f(Math.log(f(sum))));
  };
  let total = 0;
  for (let r = 0; r < B; r++) if (y[r] >= 0 && y[r] < C) total += -f(x[r * C + y[r]] - lse(r));
  const loss = f(f(total) / B);
  const dy = 0.37, g = f(f(dy) / B);
  const grad = new Float32Array(B * C);
  for (let r = 0; r < B; r++) for (let j = 0; j < C; j++) grad[r * C + j] = f(g * f(f(Math.exp(f(x[r * C + j] - lse(r)))) - (j === y[r] ? 1 : 0)));
  const out = new Float32Array(2), o = new Float32Array(B * C);
  addon.softmaxCrossEntropy!(x, y, B, C, out);
  addon.softmaxCrossEntropyGrad!(x, y, dy, B, C, o);
  const ulp = (a: number) => Math.max(Math.abs(f(a) - f(a * (1 + 2 ** -23))), 2 ** -149);
  assert.ok(Math.abs(out[0] - loss) <= ulp(loss), `loss ${out[0]} vs ${loss}`);
  for (let i = 0; i < o.length; i++) assert.ok(Math.abs(o[i] - grad[i]) <= ulp(grad[i]), `grad[${i}]: ${o[i]} vs ${grad[i]}`);
  assert.ok(grad.slice(5 * C, 6 * C).every((v) => v > 0), "the label -1 row's gradient is the softmax alone");
});

test("fused softmax cross-entropy runs as one native kernel in the training step", { skip }, async () => {
  assert.ok(tf.setBackend("native"));
  const [logitsOf] = inputs({ shape: [16, 10] });
  const prof = await tf.profile(() => tf.tidy(() => {
    const x = tf.variable(logitsOf());
    const { value, grads } = tf.variableGrads(() => softmaxCrossEntropyWithHits(x as unknown as tf.Tensor2D, tf.tensor1d(Int32Array.from({ length: 16 }, (_, i) => i % 10), "int32")).loss, [x]);
    void value; void grads;
    x.dispose();
  }));
  assert.deepEqual([...new Set(prof.kernelNames)].filter((k) => !["Identity", "OnesLike", "Fill"].includes(k)).sort(),
    [SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad].sort(), `kernels: ${prof.kernelNames}`);
});

test("fused update kernels write the variables' own arrays on native", { skip }, () => {
  assert.ok(tf.setBackend("native"));
  const shape = [32, 40]; // large enough for the backend's recycling pool, which in-place writes need
  const n = 32 * 40;
  const [wi, gi] = inputs({ shape }, { shape });
  const w = tf.variable(wi());
  const [v, m1, m2] = [0, 1, 2].map(() => tf.variable(tf.zeros(shape), false));
  const g = gi();
  const mask = tf.tensor(Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : 1)), shape);
  const data = (t: tf.Tensor) => (tf.backend() as unknown as { data: Map<object, { values: unknown }> }).data.get(t.dataId)!.values;
  const step = () => {
    sgdUpdate(w, g, v, mask, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    adamUpdate(w, g, m1, m2, mask, { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 });
  };
  step(); // copies each array once into memory of the pool (the initial arrays were not allocated by it)
  const ids = [w, v, m1, m2].map((t) => t.dataId);
  const arrays = [w, v, m1, m2].map(data);
  const before = tf.memory().numTensors;
  step();
  step();
  assert.equal(tf.memory().numTensors, before, "no tensors left behind");
  assert.deepEqual([w, v, m1, m2].map((t) => t.dataId), ids, "same tensor data");
  [w, v, m1, m2].forEach((t, i) => assert.equal(data(t), arrays[i], `array ${i} written in place`));
  const wv = w.dataSync();
  for (let i = 0; i < n; i += 3) assert.ok(wv[i] === 0, `pruned weight ${i}: ${wv[i]}`);
  for (const t of [w, v, m1, m2, g, mask]) t.dispose();
});

test("trainPhase on the native backend: masked weights exactly 0, bit-identical on repeat, no leaks", { skip }, async () => {
  const { initBackend } = await import("../src/backend/index.js");
  const { getArch } = await import("../src/archs/index.js");
  const { DEFAULT_FINETUNE } = await import("../src/grid/index.js");
  const { stage, trainPhase } = await import("../src/train/loop.js");
  const { randomKernelMasks } = await import("../src/train/masks.js");
  const { createModel, disposeModel, snapshot } = await import("../src/train/model.js");
  const { makeRng } = await import("../src/core/rng.js");
  await initBackend("native");
  const run = async (arch: string, optimizer: "sgd" | "adam") => {
    const model = createModel(getArch(arch), [28, 28, 1], 10, 0);
    const masks = randomKernelMasks(model.params, 0.7, 0);
    const rng = makeRng(1, "data");
    const n = 96;
    const train = stage({ x: new Float32Array(n * 784).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, [28, 28, 1]);
    const config = { ...DEFAULT_FINETUNE, optimizer, epochs: 2, batchSize: 32, lr: 0.1, weightDecay: 0.01 };
    await trainPhase({ phase: "finetune", model, train, val: train, config, masks, seed: 0, selectBestOnVal: true });
    const weights = snapshot(model);
    const maskValues = new Map(masks.names().map((k) => [k, masks.values(k)!]));
    train.dispose(); masks.dispose(); disposeModel(model);
    return { weights, maskValues };
  };
  for (const arch of ["mlp", "lenet5"]) {
    for (const optimizer of ["sgd", "adam"] as const) {
      await run(arch, optimizer); // warm-up allocations
      const before = tf.memory().numTensors;
      const a = await run(arch, optimizer);
      assert.equal(tf.memory().numTensors, before, `${arch} ${optimizer}: tensors leaked`);
      const b = await run(arch, optimizer);
      for (const [name, w] of a.weights) {
        assert.deepEqual(Buffer.from(w.buffer, w.byteOffset, w.byteLength), Buffer.from(b.weights.get(name)!.buffer, b.weights.get(name)!.byteOffset, w.byteLength), `${arch} ${optimizer} ${name}: not bit-identical`);
        const m = a.maskValues.get(name);
        if (!m) continue;
        for (let i = 0; i < m.length; i++) if (m[i] === 0) assert.ok(w[i] === 0, `${arch} ${optimizer} ${name}[${i}]: ${w[i]}`);
      }
    }
  }
});

test("native Nesterov SGD kernel is bit-identical to the composed tf-op step (with and without mask and decay)", { skip }, () => {
  const n = 3000;
  const rng = makeRng(11, "nesterov");
  const arr = (f: () => number) => Float32Array.from({ length: n }, f);
  const w0 = arr(() => normal(rng)), g0 = arr(() => normal(rng)), v0 = arr(() => normal(rng) * 0.1);
  const mask0 = arr(() => (rng() < 0.3 ? 0 : 1));
  for (const weightDecay of [0, 5e-4]) {
    for (const withMask of [false, true]) {
      const step = (backend: string, composed: boolean) => {
        assert.ok(tf.setBackend(backend));
        return tf.tidy(() => {
          const inputs: tf.NamedTensorMap = { w: tf.tensor(w0), g: tf.tensor(g0), v: tf.tensor(v0) };
          if (withMask) inputs.mask = tf.tensor(mask0);
          const attrs = { lr: 0.013, momentum: 0.9, weightDecay };
          const out = composed
            ? composedSgdNesterovUpdate({ inputs, attrs, backend: tf.backend() } as unknown as Parameters<tf.KernelFunc>[0]) as tf.Tensor[]
            : tf.engine().runKernel(SgdNesterovUpdate, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
          return out.map((t) => Float32Array.from(t.dataSync()));
        });
      };
      const fused = step("native", false);
      assert.deepEqual(fused, step("native", true), `decay ${weightDecay} mask ${withMask}: native composed`);
      assert.deepEqual(fused, step("cpu", true), `decay ${weightDecay} mask ${withMask}: cpu composed`);
    }
  }
  assert.ok(nativeKernelNames.includes(SgdNesterovUpdate));
});

test("native matmul and conv survive a sampling profiler's signals (node --cpu-prof)", { skip }, () => {
  // oneDNN's sgemm keeps data below the stack pointer: before the addon deferred signals around it, SIGPROF at the
  // profiler's rate corrupted the heap within a few hundred calls.
  const backend = fileURLToPath(new URL("../src/backend/index.js", import.meta.url));
  const script = `const tf = await import("@tensorflow/tfjs-core"); const { initBackend } = await import(${JSON.stringify(backend)});
await initBackend("native");
const a = tf.randomNormal([128, 784]), b = tf.randomNormal([784, 300]), x = tf.randomNormal([16, 12, 12, 6]), f = tf.randomNormal([3, 3, 6, 8]);
for (let i = 0; i < 400; i++) tf.tidy(() => { const y = tf.matMul(a, b); tf.matMul(a, y, true, false).dataSync(); tf.conv2d(x, f, 1, "same").dataSync(); });
process.stdout.write("done");`;
  const dir = mkdtempSync(join(tmpdir(), "prunebench-cpuprof-"));
  try {
    const r = spawnSync(process.execPath, ["--cpu-prof", "--cpu-prof-interval", "50", "--cpu-prof-dir", dir, "--input-type=module", "-e", script],
      { encoding: "utf8", cwd: fileURLToPath(new URL("../..", import.meta.url)), timeout: 120_000 });
    assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ""}: ${r.stderr.slice(-400)}`);
    assert.equal(r.stdout, "done");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
