// The "torch" backend (libtorch tensors, src/backend/torch/) against tfjs' cpu backend: every mapped kernel on random
// inputs, gradients, the project's fused kernels, one training step of MLP and ResNet-20 against the native (or cpu)
// backend, no host fallbacks during training and evaluation of the architectures, no leaked libtorch tensors.
//
// Device: PRUNEBENCH_TORCH_DEVICE (cpu by default; cuda:0 on a GPU machine runs this same suite there).
// Addon: native/build/Release/prunebench_torch.node or PRUNEBENCH_TORCH_ADDON. Where it is missing the tests skip,
// except with PRUNEBENCH_REQUIRE_TORCH=1 (CI sets it after building the addon) or CI=true: then they fail.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { registerTorchBackend, resetTorchBackendStats, torchAddon, torchBackendStats, torchKernelNames, TORCH_BACKEND } from "../src/backend/torch/index.js";
import { ensureGradients } from "../src/backend/gradients.js";
import { makeRng, normal } from "../src/core/rng.js";
import {
  adamUpdate, batchNormTrain, sgdUpdate, softmaxCrossEntropyWithHits,
} from "../src/backend/fused-ops.js";
import { conv2dBiasAct, countZeros, matMulBiasAct } from "../src/backend/layer-ops.js";

await ensureGradients();
const reg = await registerTorchBackend();
const required = process.env.PRUNEBENCH_REQUIRE_TORCH === "1" || process.env.CI === "true";
const skip = reg.ok ? false : required ? false : `torch backend unavailable: ${reg.reason}`;
const DEVICE = reg.ok ? reg.device : "none";
/** On a GPU, cuDNN/cuBLAS sum in other orders than the cpu kernels: looser tolerances there. */
const GPU = DEVICE.startsWith("cuda");

test("the torch backend registers (PRUNEBENCH_TORCH_DEVICE picks the device)", { skip }, () => {
  assert.ok(reg.ok, `torch backend unavailable: ${reg.ok ? "" : reg.reason}`);
  assert.equal(DEVICE, (process.env.PRUNEBENCH_TORCH_DEVICE ?? "").trim() || "cpu");
  for (const k of [tf.Conv2D, tf.Conv2DBackpropFilter, tf.MaxPoolGrad, tf.BatchMatMul, tf.Add, "PrunebenchSgdUpdate", "PrunebenchBatchNormTrain"]) {
    assert.ok(torchKernelNames.includes(k), `${k} is mapped to ATen`);
  }
});

let seed = 100;
type Spec = { shape: number[]; dtype?: "float32" | "int32" | "bool"; positive?: boolean; relu?: boolean; scale?: number };
/** Input makers over values created once, so both backends see identical inputs. */
function inputs(...specs: Spec[]): Array<() => tf.Tensor> {
  return specs.map((s) => {
    const n = tf.util.sizeFromShape(s.shape);
    const v = randn(n, seed++);
    for (let i = 0; i < n; i++) {
      v[i] *= s.scale ?? 1;
      if (s.relu) v[i] = Math.max(0, v[i]);
      if (s.positive) v[i] = Math.abs(v[i]) + 0.5;
    }
    if (s.dtype === "int32") {
      const iv = Int32Array.from(v, (x) => Math.round(x * 3));
      return () => tf.tensor(iv, s.shape, "int32");
    }
    if (s.dtype === "bool") {
      const bv = Uint8Array.from(v, (x) => (x > 0 ? 1 : 0));
      return () => tf.tensor(bv, s.shape, "bool");
    }
    return () => tf.tensor(v, s.shape);
  });
}

function randn(n: number, s: number): Float32Array {
  const rng = makeRng(s, "torch-test");
  return Float32Array.from({ length: n }, () => normal(rng));
}

function runOn(backend: string, f: () => tf.Tensor | tf.Tensor[]): { shape: number[]; dtype: string; values: Float32Array }[] {
  assert.ok(tf.setBackend(backend));
  return tf.tidy(() => {
    const r = f();
    return (Array.isArray(r) ? r : [r]).map((t) => ({ shape: t.shape, dtype: t.dtype, values: Float32Array.from(t.dataSync() as ArrayLike<number>) }));
  });
}

/** Runs f on cpu and on torch; shapes and dtypes equal, max |torch − cpu| / max |cpu| ≤ tol per output. */
function compare(name: string, f: () => tf.Tensor | tf.Tensor[], tol = 1e-5): void {
  const ref = runOn("cpu", f);
  const got = runOn(TORCH_BACKEND, f);
  assert.equal(got.length, ref.length, `${name}: output count`);
  ref.forEach((r, i) => {
    const g = got[i];
    assert.deepEqual(g.shape, r.shape, `${name}[${i}]: shape`);
    assert.equal(g.dtype, r.dtype, `${name}[${i}]: dtype`);
    let maxRef = 0, maxDiff = 0;
    for (let j = 0; j < r.values.length; j++) {
      const a = r.values[j], b = g.values[j];
      if (Number.isNaN(a) || Number.isNaN(b)) {
        assert.ok(Number.isNaN(a) && Number.isNaN(b), `${name}[${i}]: NaN mismatch at ${j}`);
        continue;
      }
      if (!Number.isFinite(a) || !Number.isFinite(b)) {
        assert.equal(b, a, `${name}[${i}]: at ${j}`);
        continue;
      }
      maxRef = Math.max(maxRef, Math.abs(a));
      maxDiff = Math.max(maxDiff, Math.abs(a - b));
    }
    const rel = maxRef === 0 ? maxDiff : maxDiff / maxRef;
    assert.ok(rel <= tol, `${name}[${i}]: relative error ${rel.toExponential(2)} > ${tol} (max |ref| ${maxRef})`);
  });
}

/** f's outputs and the gradients of sum(f(xs) · r) for a fixed random r (dy not uniform). */
function gradsOf(f: (...xs: tf.Tensor[]) => tf.Tensor, makers: Array<() => tf.Tensor>): () => tf.Tensor[] {
  return () => {
    const xs = makers.map((m) => m());
    const probe = f(...xs);
    const r = tf.tensor(randn(probe.size, 999), probe.shape);
    const g = tf.grads((...ys: tf.Tensor[]) => tf.sum(tf.mul(f(...ys), r)));
    return [probe, ...g(xs)];
  };
}

/** Exact for data movement and integer results; a few ulps for float arithmetic; summation order for reductions. */
const EXACT = 0;
const ULP = 1e-6;
const SUM = GPU ? 1e-4 : 1e-5;

test("elementwise binary ops: broadcasting, odd shapes, int32 and bool", { skip }, () => {
  const [a, b, c, s, i1, i2, p, q] = inputs(
    { shape: [3, 5, 7] }, { shape: [5, 1] }, { shape: [7] }, { shape: [] }, { shape: [4, 3], dtype: "int32" }, { shape: [3], dtype: "int32" },
    { shape: [4, 6], positive: true }, { shape: [4, 6], dtype: "bool" },
  );
  for (const [name, op] of [["add", tf.add], ["sub", tf.sub], ["mul", tf.mul], ["maximum", tf.maximum], ["minimum", tf.minimum]] as const) {
    compare(`${name} broadcast`, () => [op(a(), b()), op(a(), c()), op(s(), a()), op(a(), s()), op(i1(), i2())], ULP);
  }
  compare("div", () => [tf.div(a(), tf.add(tf.abs(b()), 0.5)), tf.div(a(), 3)], ULP);
  compare("floorDiv / mod (int32)", () => [tf.floorDiv(i1(), tf.add(tf.abs(i2()), 1)), tf.mod(i1(), tf.add(tf.abs(i2()), 1))], EXACT);
  compare("floorDiv / mod (float32)", () => [tf.floorDiv(a(), 0.7), tf.mod(a(), 0.7)], 1e-5);
  compare("pow, squaredDifference", () => [tf.pow(p(), tf.tensor([1.5])), tf.squaredDifference(a(), b())], 1e-5);
  compare("comparisons", () => [tf.equal(i1(), i2()), tf.notEqual(i1(), i2()), tf.less(a(), b()), tf.lessEqual(a(), c()),
    tf.greater(a(), s()), tf.greaterEqual(i1(), 0)], EXACT);
  compare("logical", () => [tf.logicalAnd(q(), tf.greater(p(), 1)), tf.logicalOr(q(), tf.greater(p(), 1)), tf.logicalNot(q())], EXACT);
  compare("mixed int32 + float32", () => tf.add(tf.cast(i1(), "float32"), tf.scalar(0.5)), EXACT);
});

test("unary ops", { skip }, () => {
  const [x, p, i] = inputs({ shape: [4, 9] }, { shape: [3, 5], positive: true }, { shape: [6], dtype: "int32" });
  compare("float unary", () => [tf.abs(x()), tf.neg(x()), tf.square(x()), tf.sign(x()), tf.floor(x()), tf.ceil(x()), tf.round(tf.mul(x(), 2)),
    tf.relu(x()), tf.relu6(tf.mul(x(), 5)), tf.exp(x()), tf.expm1(x()), tf.log(p()), tf.log1p(p()), tf.sqrt(p()), tf.rsqrt(p()),
    tf.reciprocal(p()), tf.sigmoid(x()), tf.tan(x()), tf.asin(tf.tanh(x())), tf.acos(tf.tanh(x())), tf.atan(x()), tf.sinh(x()), tf.cosh(x()),
    tf.asinh(x()), tf.acosh(tf.add(p(), 1)), tf.atanh(tf.mul(tf.tanh(x()), 0.9)), tf.tanh(x()), tf.sin(x()), tf.cos(x()), tf.elu(x()), tf.selu(x()), tf.step(x()), tf.step(x(), 0.3),
    tf.leakyRelu(x(), 0.1), tf.clipByValue(x(), -0.5, 0.7), tf.prelu(x(), tf.fill([9], 0.25)), tf.erf(x())], 1e-5);
  compare("softplus", () => tf.softplus(x()), 1e-5);
  compare("int32 unary", () => [tf.abs(i()), tf.neg(i()), tf.square(i()), tf.sign(i())], EXACT);
  compare("isNaN/isInf/isFinite", () => {
    const t = tf.tensor([1, NaN, Infinity, -Infinity, 0]);
    return [tf.isNaN(t), tf.isInf(t), tf.isFinite(t)];
  }, EXACT);
  compare("cast", () => [tf.cast(x(), "int32"), tf.cast(x(), "bool"), tf.cast(i(), "float32"), tf.cast(i(), "bool"),
    tf.cast(tf.greater(x(), 0), "float32"), tf.cast(tf.greater(x(), 0), "int32"), tf.cast(x(), "float32")], EXACT);
});

test("reductions over axes (sum, mean, max, min, prod, all, any; keepDims; int32 and bool), argMax/argMin", { skip }, () => {
  const [x, i, bl] = inputs({ shape: [3, 4, 5] }, { shape: [4, 6], dtype: "int32" }, { shape: [3, 4], dtype: "bool" });
  for (const axis of [undefined, 0, 1, -1, [0, 2], [0, 1, 2]] as Array<number | number[] | undefined>) {
    for (const keep of [false, true]) {
      compare(`reduce axis ${JSON.stringify(axis)} keep ${keep}`, () => [tf.sum(x(), axis, keep), tf.mean(x(), axis, keep), tf.max(x(), axis, keep),
        tf.min(x(), axis, keep), tf.prod(tf.add(tf.mul(x(), 0.1), 1), axis, keep)], SUM);
    }
  }
  compare("int32 reductions", () => [tf.sum(i()), tf.sum(i(), 1), tf.max(i(), 0), tf.min(i(), 1, true), tf.prod(tf.clipByValue(i(), -2, 2), 0)], EXACT);
  compare("bool reductions", () => [tf.all(bl()), tf.any(bl(), 1), tf.all(bl(), 0, true), tf.sum(bl(), 1)], EXACT);
  compare("argMax / argMin", () => [tf.argMax(x(), 0), tf.argMax(x(), -1), tf.argMin(x(), 1), tf.argMax(i(), 1),
    tf.argMax(tf.tensor([[1, 3, 3], [2, 2, 1]]), 1)], EXACT);
  compare("softmax / logSoftmax / logSumExp", () => [tf.softmax(x()), tf.logSoftmax(x()), tf.logSumExp(x(), 1)], 1e-5);
  compare("cumsum", () => [tf.cumsum(x(), 1), tf.cumsum(x(), 2, true, true), tf.cumsum(i(), 0)], 1e-5);
});

test("shape ops: reshape, transpose, slice, concat, stack, unstack, tile, pad, reverse, gather, where, oneHot, topk, fill, range", { skip }, () => {
  const [x, y, i, c, idx] = inputs({ shape: [3, 4, 5] }, { shape: [3, 2, 5] }, { shape: [4, 3], dtype: "int32" }, { shape: [3, 4, 5], dtype: "bool" },
    { shape: [7], dtype: "int32" });
  compare("reshape/transpose", () => [tf.reshape(x(), [12, 5]), tf.reshape(x(), [-1]), tf.transpose(x()), tf.transpose(x(), [1, 0, 2]),
    tf.transpose(i()), tf.expandDims(x(), 1), tf.squeeze(tf.reshape(x(), [1, 3, 1, 20]))], EXACT);
  compare("slice", () => [tf.slice(x(), [1, 0, 2], [2, 3, 3]), tf.slice(x(), [0, 1], [-1, 2]), tf.slice(i(), [1, 1], [2, 2]),
    tf.slice(x(), [0, 0, 0], [3, 4, 5])], EXACT);
  compare("stridedSlice / split", () => [tf.stridedSlice(x(), [0, 1, 0], [3, 4, 5], [2, 1, 2]), tf.stridedSlice(x(), [1, 0, 0], [2, 4, 5], [1, 1, 1], 0, 0, 0, 0, 1),
    ...tf.split(x(), [1, 3], 1), ...tf.split(x(), 5, 2)], EXACT);
  compare("concat/stack/unstack", () => [tf.concat([x(), y()], 1), tf.concat([i(), i()], 0), tf.stack([x(), x()], 2), ...tf.unstack(x(), 1),
    tf.concat([tf.zeros([0, 4, 5]), x()], 0)], EXACT);
  compare("tile/pad/reverse", () => [tf.tile(x(), [2, 1, 3]), tf.tile(i(), [1, 2]), tf.pad(x(), [[1, 0], [0, 2], [3, 1]], 1.5), tf.pad(i(), [[1, 1], [0, 1]]),
    tf.reverse(x(), 1), tf.reverse(x(), [0, 2])], EXACT);
  const clamp = () => tf.clipByValue(tf.abs(idx()), 0, 2);
  compare("gather", () => [tf.gather(x(), clamp(), 0), tf.gather(x(), clamp(), 1), tf.gather(i(), clamp(), 1),
    tf.gather(x(), tf.reshape(tf.slice(clamp(), 0, 6), [2, 3]), 2)], EXACT);
  compare("where", () => [tf.where(c(), x(), tf.neg(x())), tf.where(tf.greater(y(), 0), y(), tf.scalar(-1))], EXACT);
  compare("oneHot", () => [tf.oneHot(tf.tensor1d([0, 3, 2, -1, 9], "int32"), 4), tf.oneHot(tf.tensor1d([1, 0], "int32"), 3, 5, -1)], EXACT);
  compare("topk", () => { const r = tf.topk(tf.reshape(x(), [6, 10]), 3); return [r.values, r.indices]; }, EXACT);
  compare("fill/zerosLike/onesLike/range", () => [tf.fill([2, 3], 7), tf.fill([4], 3, "int32"), tf.zerosLike(x()), tf.onesLike(i()),
    tf.range(0, 10, 3), tf.range(5, 0, -1.5), tf.range(0, 6, 1, "int32")], EXACT);
  compare("addN / clone", () => [tf.addN([x(), x(), tf.neg(x())]), tf.clone(x())], ULP);
});

const CONV_CASES: Array<{ name: string; x: number[]; w: number[]; stride: number | [number, number]; pad: "same" | "valid" | number; dil?: number }> = [
  { name: "3x3 same stride 1", x: [2, 7, 9, 3], w: [3, 3, 3, 5], stride: 1, pad: "same" },
  { name: "3x3 same stride 2 (uneven padding)", x: [2, 8, 8, 4], w: [3, 3, 4, 6], stride: 2, pad: "same" },
  { name: "5x5 valid stride 1", x: [3, 12, 11, 1], w: [5, 5, 1, 6], stride: 1, pad: "valid" },
  { name: "2x3 valid stride [2,1]", x: [2, 9, 8, 3], w: [2, 3, 3, 4], stride: [2, 1], pad: "valid" },
  { name: "1x1 stride 2", x: [2, 6, 6, 4], w: [1, 1, 4, 8], stride: 2, pad: "valid" },
  { name: "3x3 explicit pad 1", x: [2, 5, 7, 2], w: [3, 3, 2, 3], stride: 1, pad: 1 },
  { name: "4x4 same stride 1 (uneven)", x: [1, 7, 7, 2], w: [4, 4, 2, 3], stride: 1, pad: "same" },
  { name: "3x3 dilation 2 same", x: [2, 9, 9, 2], w: [3, 3, 2, 3], stride: 1, pad: "same", dil: 2 },
];

for (const c of CONV_CASES) {
  test(`conv2d forward and gradients: ${c.name}`, { skip }, () => {
    const [x, w] = inputs({ shape: c.x }, { shape: c.w });
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad as "same", "NHWC", c.dil ?? 1);
    // tfjs has no gradient for dilated convs: their forward only
    compare(c.name, c.dil ? () => f(x(), w()) : gradsOf(f, [x, w]), SUM);
  });
}

test("depthwise conv2d forward and gradients", { skip }, () => {
  const [x, w] = inputs({ shape: [2, 8, 8, 3] }, { shape: [3, 3, 3, 2] });
  for (const [stride, pad] of [[1, "same"], [2, "same"], [1, "valid"]] as const) {
    compare(`depthwise ${stride} ${pad}`, gradsOf((a, b) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), [x, w]), SUM);
  }
});

test("fused conv2d / matMul (tf.fused) with bias and activations", { skip }, () => {
  const [x, w, bias, a, b, bb] = inputs({ shape: [2, 6, 6, 3] }, { shape: [3, 3, 3, 4] }, { shape: [4] }, { shape: [5, 7] }, { shape: [7, 4] }, { shape: [4] });
  for (const activation of ["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu"] as const) {
    compare(`fused ${activation}`, () => [
      tf.fused.conv2d({ x: x() as tf.Tensor4D, filter: w() as tf.Tensor4D, strides: 1, pad: "same", bias: bias(), activation, leakyreluAlpha: 0.1 }),
      tf.fused.matMul({ a: a() as tf.Tensor2D, b: b() as tf.Tensor2D, bias: bb(), activation, leakyreluAlpha: 0.1 }),
    ], SUM);
  }
});

test("max pool and avg pool forward and gradients (same/valid, overlapping windows, uneven same, ties)", { skip }, () => {
  const [x, r] = inputs({ shape: [2, 7, 8, 3] }, { shape: [2, 6, 6, 2], relu: true });
  for (const [size, stride, pad] of [[2, 2, "valid"], [3, 2, "same"], [3, 1, "same"], [2, 2, "same"], [3, 2, "valid"], [1, 2, "valid"]] as const) {
    compare(`maxPool ${size}/${stride} ${pad}`, gradsOf((a) => tf.maxPool(a as tf.Tensor4D, size, stride, pad), [x]), SUM);
    // relu'd inputs: ties at 0 go to the first position of the window on both
    compare(`maxPool ties ${size}/${stride} ${pad}`, gradsOf((a) => tf.maxPool(a as tf.Tensor4D, size, stride, pad), [r]), SUM);
    compare(`avgPool ${size}/${stride} ${pad}`, gradsOf((a) => tf.avgPool(a as tf.Tensor4D, size, stride, pad), [x]), SUM);
  }
});

test("matMul forward and gradients (transposes, batches, broadcasting batch)", { skip }, () => {
  const [a, b, at, bt, a3, b3] = inputs({ shape: [5, 7] }, { shape: [7, 3] }, { shape: [7, 5] }, { shape: [3, 7] }, { shape: [2, 5, 7] }, { shape: [2, 7, 3] });
  compare("matMul", gradsOf((p, q) => tf.matMul(p, q), [a, b]), SUM);
  compare("matMul tA", gradsOf((p, q) => tf.matMul(p, q, true, false), [at, b]), SUM);
  compare("matMul tB", gradsOf((p, q) => tf.matMul(p, q, false, true), [a, bt]), SUM);
  compare("matMul tA tB", gradsOf((p, q) => tf.matMul(p, q, true, true), [at, bt]), SUM);
  compare("batched matMul", gradsOf((p, q) => tf.matMul(p, q), [a3, b3]), SUM);
});

test("batch norm (tf.moments + tf.batchNorm) forward and gradients, 4-d and 2-d", { skip }, () => {
  const [x, x2, g, o] = inputs({ shape: [4, 3, 5, 6] }, { shape: [8, 6] }, { shape: [6], positive: true }, { shape: [6] });
  for (const [name, make, axes] of [["4-d", x, [0, 1, 2]], ["2-d", x2, [0]]] as const) {
    compare(`batchNorm ${name}`, gradsOf((a, s, off) => {
      const { mean, variance } = tf.moments(a, axes as unknown as number[]);
      return tf.batchNorm(a, mean, variance, off, s, 1e-3);
    }, [make, g, o]), SUM);
  }
});

test("the project's fused kernels: conv/matmul + bias + ReLU, loss, batch norm, count zeros, and their gradients", { skip }, () => {
  const [x, w, bias, a, b, bb, logits, bx, bs, bo] = inputs({ shape: [3, 8, 8, 2] }, { shape: [3, 3, 2, 4] }, { shape: [4] }, { shape: [6, 9] },
    { shape: [9, 5] }, { shape: [5] }, { shape: [6, 10], scale: 3 }, { shape: [4, 5, 5, 3] }, { shape: [3], positive: true }, { shape: [3] });
  const labels = () => tf.tensor1d([0, 9, 3, 3, 7, 1], "int32");
  for (const [stride, pad] of [[1, "same"], [2, "same"], [1, "valid"]] as const) {
    compare(`conv2dBiasAct ${stride} ${pad}`, gradsOf((p, q, r) => conv2dBiasAct(p as tf.Tensor4D, q as tf.Tensor4D, r, undefined, stride, pad, "relu"), [x, w, bias]), SUM);
  }
  compare("conv2dBiasAct linear", gradsOf((p, q, r) => conv2dBiasAct(p as tf.Tensor4D, q as tf.Tensor4D, r, undefined, 1, "same", "linear"), [x, w, bias]), SUM);
  for (const act of ["relu", "linear"] as const) {
    compare(`matMulBiasAct ${act}`, gradsOf((p, q, r) => matMulBiasAct(p as tf.Tensor2D, q as tf.Tensor2D, r, undefined, act), [a, b, bb]), SUM);
  }
  compare("countZeros", () => countZeros(tf.relu(x())), EXACT);
  compare("softmax cross-entropy with hits, and its gradient", () => {
    const l = logits();
    const { loss, hits } = softmaxCrossEntropyWithHits(l as tf.Tensor2D, labels());
    const g = tf.grad((z: tf.Tensor) => tf.mul(softmaxCrossEntropyWithHits(z as tf.Tensor2D, labels()).loss, 3))(l);
    return [loss, hits, g];
  }, 1e-5);
  compare("batchNormTrain forward, statistics and gradients", () => {
    const { y, mean, variance } = batchNormTrain(bx(), bs(), bo(), 1e-5);
    const r = tf.tensor(randn(y.size, 77), y.shape);
    const g = tf.grads((p: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(p, s, o, 1e-5).y, r)))([bx(), bs(), bo()]);
    return [y, mean, variance, ...g];
  }, GPU ? 1e-4 : 2e-5);
});

test("optimizer kernels (SGD, Nesterov, Adam; masks, weight decay) match the composed ops", { skip }, () => {
  const [w, g, v, m, mask] = inputs({ shape: [7, 5] }, { shape: [7, 5] }, { shape: [7, 5] }, { shape: [7, 5], positive: true }, { shape: [7, 5], dtype: "bool" });
  const step = (kind: "sgd" | "nesterov" | "adam") => () => {
    const wv = tf.variable(tf.mul(w(), tf.cast(mask(), "float32")));
    const mk = tf.cast(mask(), "float32");
    if (kind === "adam") {
      const mv = tf.variable(v());
      const vv = tf.variable(m());
      adamUpdate(wv, g(), mv, vv, mk, { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 5e-4 });
      const out = [tf.clone(wv), tf.clone(mv), tf.clone(vv)];
      [wv, mv, vv].forEach((t) => t.dispose());
      return out;
    }
    const vel = tf.variable(v());
    sgdUpdate(wv, g(), vel, mk, { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: kind === "nesterov" });
    const out = [tf.clone(wv), tf.clone(vel)];
    [wv, vel].forEach((t) => t.dispose());
    return out;
  };
  for (const kind of ["sgd", "nesterov", "adam"] as const) compare(`optimizer ${kind}`, step(kind), 1e-6);
});

// ---- whole architectures -------------------------------------------------------------------------------------------

const ARCH_CASES: Array<{ arch: string; shape: [number, number, number]; batch: number }> = [
  { arch: "mlp", shape: [28, 28, 1], batch: 16 },
  { arch: "lenet5", shape: [28, 28, 1], batch: 8 },
  { arch: "lenet5-caffe", shape: [28, 28, 1], batch: 8 },
  { arch: "resnet20", shape: [32, 32, 3], batch: 4 },
  { arch: "vgg16-bn", shape: [32, 32, 3], batch: 2 },
];

/** `steps` training steps (SGD with momentum, Nesterov, weight decay, masks) and an evaluation pass on the active backend. */
async function trainAndEvaluate(arch: string, shape: [number, number, number], batch: number, masked: boolean, steps = 2, lr = 0.05) {
  const { getArch } = await import("../src/archs/index.js");
  const { DEFAULT_FINETUNE } = await import("../src/grid/index.js");
  const { stage, trainPhase, evaluate } = await import("../src/train/loop.js");
  const { MaskSet } = await import("../src/train/masks.js");
  const { createModel, disposeModel } = await import("../src/train/model.js");
  const { tensorNames } = await import("../src/archs/ops.js");
  const model = createModel(getArch(arch), shape, 10, 3, "torch-default");
  const n = batch * steps;
  const size = shape[0] * shape[1] * shape[2];
  const rng = makeRng(5, "torch-train");
  const train = stage({ x: Float32Array.from({ length: n * size }, () => rng() - 0.5), y: Int32Array.from({ length: n }, () => Math.floor(rng() * 10)), count: n }, shape);
  const masks = new MaskSet();
  if (masked) {
    for (const layer of model.layers.slice(0, -1)) {
      const v = model.params.get(tensorNames.kernel(layer.name));
      if (!v) continue;
      const r = makeRng(9, layer.name);
      masks.set(tensorNames.kernel(layer.name), Float32Array.from({ length: v.size }, () => (r() < 0.5 ? 1 : 0)), v.shape);
    }
  }
  const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: batch, lr, momentum: 0.9, nesterov: true, weightDecay: 5e-4 };
  const r = await trainPhase({ phase: "finetune", model, train, val: train, config, masks, seed: 0, selectBestOnVal: false });
  const ev = await evaluate(model, train, 512, masks);
  const weights = new Map([...model.params].map(([k, v]) => [k, Float32Array.from(v.dataSync())]));
  const state = new Map([...model.state].map(([k, v]) => [k, Float32Array.from(v.dataSync())]));
  train.dispose();
  masks.dispose();
  disposeModel(model);
  return { loss: r.epochs[0].loss, eval: ev, weights, state };
}

for (const c of ARCH_CASES) {
  test(`${c.arch}: a training step and an evaluation pass run without host fallbacks and leak no libtorch tensors`, { skip }, async () => {
    assert.ok(tf.setBackend(TORCH_BACKEND));
    const addon = torchAddon()!;
    await trainAndEvaluate(c.arch, c.shape, c.batch, true); // warm-up: constants the kernels keep (iota, anchor)
    const live = addon.liveTensors();
    const tensors = tf.memory().numTensors;
    resetTorchBackendStats();
    const r = await trainAndEvaluate(c.arch, c.shape, c.batch, true);
    assert.deepEqual(torchBackendStats(), { fallbacks: 0, fallbackKernels: {} }, `${c.arch}: kernels run on the host`);
    assert.ok(Number.isFinite(r.loss), `${c.arch}: finite loss`);
    assert.equal(tf.memory().numTensors, tensors, `${c.arch}: tfjs tensors leaked`);
    assert.deepEqual(addon.liveTensors(), live, `${c.arch}: libtorch tensors leaked`);
  });
}

// A weight's difference is measured against the larger of the tensor's largest value and the step's learning rate:
// a zero-initialised parameter (batch-norm β) holds after one step only lr × its gradient, a mean of 8 × 32 × 32 terms
// that nearly cancel, whose rounding error depends on the order of summation rather than on the tiny result. On a GPU
// (another order) weights get a looser bound than the loss. Measured on an H100 (PyTorch 2.11, cuDNN deterministic,
// TF32 off) against the cpu backend: loss and eval loss within 1e-3; every β off by at most 2.4e-5 (5e-4 of lr; 1.4e-2
// of its own largest value, 1.8e-3), every other tensor within 8e-3 of its largest value. A wrong kernel is off by O(1)
// (the avg-pool gradient this suite caught there was 110 % off).
const STEP_LR = 0.05;
for (const [arch, shape, batch, tol, weightTol] of [["mlp", [28, 28, 1], 32, 1e-5, 1e-5], ["resnet20", [32, 32, 3], 8, GPU ? 1e-3 : 1e-4, GPU ? 1e-2 : 1e-4]] as const) {
  test(`${arch}: one training step from the same weights gives the cpu backend's loss, weights and running statistics (tolerance ${tol}, weights ${weightTol})`, { skip }, async () => {
    // The reference is tfjs' cpu backend (the native backend's step differs from it by ~3e-4 on ResNet-20's conv0,
    // torch's by ~1e-6).
    const ref = "cpu";
    assert.ok(tf.setBackend(ref));
    // One step: with batch norm over a few random images a second step amplifies the summation-order differences
    // of the first (measured: native and torch agree to 2e-5 on the first step's gradients, to 1e-2 on the second's).
    const a = await trainAndEvaluate(arch, shape as unknown as [number, number, number], batch, false, 1, STEP_LR);
    assert.ok(tf.setBackend(TORCH_BACKEND));
    const b = await trainAndEvaluate(arch, shape as unknown as [number, number, number], batch, false, 1, STEP_LR);
    // Every comparison is made before any is asserted: one failure message says how all of them came out (what a
    // device checked once needs).
    const problems: string[] = [];
    if (Math.abs(a.loss - b.loss) > tol * Math.max(1, Math.abs(a.loss))) problems.push(`loss ${b.loss} vs ${a.loss}`);
    if (Math.abs(a.eval.loss - b.eval.loss) > tol * Math.max(1, Math.abs(a.eval.loss))) problems.push(`eval loss ${b.eval.loss} vs ${a.eval.loss}`);
    const worstOf = (want: Map<string, Float32Array>, got: Map<string, Float32Array>, scale: (w: Float32Array) => number) => {
      const rel: Array<[string, number, number]> = [];
      for (const [name, w] of want) {
        const u = got.get(name)!;
        let maxDiff = 0;
        for (let i = 0; i < w.length; i++) maxDiff = Math.max(maxDiff, Math.abs(w[i] - u[i]));
        rel.push([name, maxDiff / scale(w), maxDiff]);
      }
      return rel.sort((x, y) => y[1] - x[1]);
    };
    const show = (rel: Array<[string, number, number]>) => rel.slice(0, 4).map(([n, r, d]) => `${n} ${r.toExponential(2)} (|Δ| ${d.toExponential(2)})`).join(", ");
    const maxAbs = (w: Float32Array) => w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const weights = worstOf(a.weights, b.weights, (w) => Math.max(maxAbs(w), STEP_LR));
    if (weights[0][1] > weightTol) problems.push(`weights beyond ${weightTol} relative, worst: ${show(weights)}`);
    const state = worstOf(a.state, b.state, (s) => Math.max(1, maxAbs(s)));
    if (state.length > 0 && state[0][1] > tol) problems.push(`running statistics beyond ${tol}, worst: ${show(state)}`);
    assert.deepEqual(problems, [], `${arch} on ${DEVICE} against ${ref}: ${problems.join("; ")} (worst weights: ${show(weights)})`);
  });
}

test("kernels without a mapping run on the host, counted; tensors dispose", { skip }, () => {
  assert.ok(tf.setBackend(TORCH_BACKEND));
  resetTorchBackendStats();
  const before = torchAddon()!.liveTensors();
  const t = tf.tensor([3, 1, 3, 2, 1]);
  const { values, indices } = tf.unique(t);
  assert.deepEqual(Array.from(values.dataSync()), [3, 1, 2]);
  assert.deepEqual(Array.from(indices.dataSync()), [0, 1, 0, 2, 1]);
  assert.equal(torchBackendStats().fallbackKernels[tf.Unique], 1, "a host fallback was counted");
  assert.deepEqual(tf.tidy(() => Array.from(tf.mul(values, 2).dataSync())), [6, 2, 4], "its outputs feed torch kernels");
  tf.dispose([t, values, indices]);
  assert.deepEqual(torchAddon()!.liveTensors(), before);
});
