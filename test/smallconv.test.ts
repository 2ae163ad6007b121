// The addon's direct small-filter convolution (native/src/smallconv.cc: unpadded stride-1 convs with KH*KW*C <= 32
// and an output width it vectorizes, e.g. LeNet-5-Caffe's conv1) and its 2x2 max pooling, against tfjs' cpu kernels;
// the sparse path's use of the same kernel against the dense path on masked weights; and the fallbacks (shapes the
// direct kernels do not take still go to libtorch / the generic loops and still match cpu). Skipped without the addon.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { loadAddon, registerNativeBackend } from "../src/backend/native/index.js";
import { Conv2DBiasActGradFilter, composedConv2DBiasActGradFilter, conv2dBiasAct } from "../src/backend/layer-ops.js";
import { sparsePattern } from "../src/backend/sparse-ops.js";
import { makeRng, normal } from "../src/core/rng.js";

const reg = await registerNativeBackend();
const skip = reg.ok ? false : `native backend unavailable: ${reg.reason}`;

function randn(n: number, seed: number): Float32Array {
  const rng = makeRng(seed, "smallconv-test");
  return Float32Array.from({ length: n }, () => normal(rng));
}

function on(backend: string, f: () => tf.Tensor[]): Float32Array[] {
  assert.ok(tf.setBackend(backend));
  return tf.tidy(() => f().map((t) => Float32Array.from(t.dataSync())));
}

/** max |got - ref| / max |ref|; NaNs must sit at the same places. */
function relErr(got: Float32Array, ref: Float32Array): number {
  assert.equal(got.length, ref.length);
  let maxRef = 0, maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(ref[i]) || Number.isNaN(got[i])) {
      assert.ok(Number.isNaN(ref[i]) && Number.isNaN(got[i]), `NaN mismatch at ${i}`);
      continue;
    }
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    maxDiff = Math.max(maxDiff, Math.abs(got[i] - ref[i]));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/**
 * act(conv(x, w) + b) and the gradients of sum(out * r) for x, w and b, on the fused layer op (plain ops on cpu); with
 * `inputGrad` false the op is told nothing needs x's gradient (its backward pass then takes Conv2DBiasActGradFilter).
 */
function layer(xs: number[], ws: number[], seed: number, pattern?: ReturnType<typeof sparsePattern>, wValues?: Float32Array, inputGrad = true): () => tf.Tensor[] {
  const xv = randn(xs.reduce((a, b) => a * b, 1), seed), wv = wValues ?? randn(ws.reduce((a, b) => a * b, 1), seed + 1);
  const bv = randn(ws[3], seed + 2).map((v) => v * 0.1);
  return () => {
    const x = tf.tensor4d(xv, xs as [number, number, number, number]), w = tf.tensor4d(wv, ws as [number, number, number, number]);
    const b = tf.tensor1d(bv);
    const f = (a: tf.Tensor, k: tf.Tensor, c: tf.Tensor) => (tf.getBackend() === "native"
      ? conv2dBiasAct(a as tf.Tensor4D, k as tf.Tensor4D, c, pattern, 1, "valid", "relu", inputGrad)
      : tf.relu(tf.add(tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, 1, "valid"), c)));
    const y = f(x, w, b);
    const r = tf.tensor(randn(y.size, 999), y.shape);
    const [dx, dw, db] = tf.grads((a: tf.Tensor, k: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, k, c), r)))([x, w, b]);
    return [y, dx, dw, db];
  };
}

// [x shape, filter shape]: LeNet-5-Caffe's conv1, output rows that leave a tail pixel (OW not a multiple of the
// vector run), and every instantiated output width; C > 1 too.
const cases: Array<[number[], number[]]> = [
  [[4, 28, 28, 1], [5, 5, 1, 20]],
  [[3, 13, 12, 1], [5, 5, 1, 20]], // OW = 8 and 9 below: runs of 2 pixels, one left over
  [[2, 9, 13, 1], [5, 5, 1, 20]],
  [[3, 14, 14, 1], [5, 5, 1, 6]], // LeNet-5 widths: runs of 4 pixels, 10 = 2 runs + 2 left over
  [[2, 10, 9, 2], [3, 3, 2, 16]],
  [[2, 12, 12, 3], [3, 3, 3, 8]],
  [[2, 9, 9, 2], [4, 4, 2, 64]],
  [[2, 11, 10, 1], [5, 5, 1, 32]],
];

for (const [xs, ws] of cases) {
  test(`direct small-filter conv (bias, ReLU): forward and every gradient equal the cpu kernels: x [${xs}] w [${ws}]`, { skip }, () => {
    const f = layer(xs, ws, xs[1] * 31 + ws[3]);
    const ref = on("cpu", f), got = on("native", f);
    const names = ["forward", "dx", "dw", "dbias"];
    // The forward sums each output's filter row in order with fused multiply-adds; the filter gradient sums over the
    // batch in a different order from cpu's (float32 rounding: ~1e-6 of the largest value).
    for (let i = 0; i < ref.length; i++) assert.ok(relErr(got[i], ref[i]) <= 2e-5, `${names[i]}: ${relErr(got[i], ref[i])}`);
  });
}

test("a grey first conv's row-vectorised forward (C = 1, O a multiple of 4, OW of 8) gives the channel-vectorised kernel's bits", { skip }, () => {
  // An image as wide as OW = 24 needs: the row-vectorised tiles; the same image one column wider: OW = 25, the
  // channel-vectorised runs (25 is no multiple of 8), whose first 24 columns are the same sums. Dense, and over a
  // pattern's rows.
  tf.setBackend("native");
  for (const ws of [[5, 5, 1, 20], [5, 5, 1, 16], [3, 3, 1, 8]]) {
    const n = ws.reduce((a, b) => a * b, 1);
    const rng = makeRng(ws[3], "grey-mask");
    const mask = Float32Array.from({ length: n }, (_, i) => (i % ws[3] === 0 || rng() < 0.4 ? 1 : 0));
    const wv = randn(n, 11).map((v, i) => v * mask[i]), bv = randn(ws[3], 12);
    const H = 20, W = 24 + ws[1] - 1;
    const wide = randn(3 * H * (W + 1), 13);
    const narrow = Float32Array.from({ length: 3 * H * W }, (_, i) => wide[Math.floor(i / W) * (W + 1) + (i % W)]);
    for (const pattern of [undefined, sparsePattern(mask, ws)]) {
      const run = (xv: Float32Array, width: number) => tf.tidy(() => conv2dBiasAct(tf.tensor4d(xv, [3, H, width, 1]),
        tf.tensor4d(wv, ws as [number, number, number, number]), tf.tensor1d(bv), pattern, 1, "valid", "relu").dataSync() as Float32Array);
      const a = run(narrow, W), b = run(wide, W + 1);
      const OH = H - ws[0] + 1, O = ws[3];
      let zeros = 0;
      for (let r = 0; r < 3 * OH; r++) for (let j = 0; j < 24 * O; j++) {
        const got = a[r * 24 * O + j], ref = b[r * 25 * O + j];
        if (!Object.is(got, ref)) assert.fail(`w [${ws}] ${pattern ? "sparse" : "dense"} at row ${r}, ${j}: ${got} vs ${ref}`);
        zeros += got === 0 ? 1 : 0;
      }
      assert.ok(zeros > 0 && zeros < a.length, "ReLU zeros and nonzeros both occur");
      pattern?.dispose();
    }
  }
});

test("the direct kernel over a sparse pattern gives the dense direct kernel's bits on masked weights (forward), its gradient on the mask", { skip }, () => {
  for (const [xs, ws] of [cases[0], cases[1], cases[3]]) {
    for (const density of [0.05, 0.3, 0.8]) {
      const n = ws.reduce((a, b) => a * b, 1);
      const rng = makeRng(Math.round(density * 100) + ws[3], "mask");
      const mask = Float32Array.from({ length: n }, () => (rng() < density ? 1 : 0));
      mask[0] = 1;
      const w = randn(n, 5).map((v, i) => v * mask[i]);
      w[0] = 0; // a kept weight that is 0.0 still gets its gradient
      const pattern = sparsePattern(mask, ws);
      tf.setBackend("native");
      const sparse = on("native", layer(xs, ws, 7, pattern, w));
      const dense = on("native", layer(xs, ws, 7, undefined, w));
      assert.deepEqual(sparse[0], dense[0], `forward at density ${density}`);
      for (let i = 0; i < n; i++) {
        if (mask[i] === 0) assert.equal(sparse[2][i], 0, `dw off the mask at ${i}`);
        else assert.equal(sparse[2][i], dense[2][i], `dw on the mask at ${i}`);
      }
      assert.notEqual(sparse[2][0], 0);
      assert.ok(relErr(sparse[1], dense[1]) <= 2e-6, "dx");
      pattern.dispose();
    }
  }
});

test("shapes the direct kernel does not take (padding, stride, wide filter rows, other widths) still match cpu", { skip }, () => {
  const other: Array<[number[], number[], number, "same" | "valid"]> = [
    [[2, 12, 12, 1], [5, 5, 1, 20], 1, "same"],
    [[2, 12, 12, 1], [5, 5, 1, 20], 2, "valid"],
    [[2, 12, 12, 2], [5, 5, 2, 20], 1, "valid"], // K = 50
    [[2, 12, 12, 1], [5, 5, 1, 7], 1, "valid"],
  ];
  for (const [xs, ws, stride, pad] of other) {
    const xv = randn(xs.reduce((a, b) => a * b, 1), 1), wv = randn(ws.reduce((a, b) => a * b, 1), 2);
    const f = () => {
      const x = tf.tensor4d(xv, xs as [number, number, number, number]), w = tf.tensor4d(wv, ws as [number, number, number, number]);
      const g = tf.grads((a: tf.Tensor, k: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, stride, pad))))([x, w]);
      return [tf.conv2d(x, w, stride, pad), ...g];
    };
    const ref = on("cpu", f), got = on("native", f);
    for (let i = 0; i < ref.length; i++) assert.ok(relErr(got[i], ref[i]) <= 1e-5, `x [${xs}] w [${ws}] ${stride} ${pad} [${i}]`);
  }
});

test("2x2 max pooling: the vectorized kernel gives cpu's bits (NaN, -inf, ties after ReLU, odd sizes), forward and gradient", { skip }, () => {
  for (const shape of [[3, 24, 24, 20], [2, 8, 8, 50], [2, 7, 9, 3], [2, 6, 6, 16], [1, 4, 4, 13]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = randn(n, shape[3]).map((a, i) => (i % 3 === 0 ? Math.max(0, a) : a));
    v[1] = NaN;
    v[shape[3] + 2] = -Infinity;
    v[n - 1] = Infinity;
    const f = () => {
      const x = tf.tensor4d(v, shape as [number, number, number, number]);
      const [dx] = tf.grads((a: tf.Tensor) => tf.sum(tf.maxPool(a as tf.Tensor4D, 2, 2, "valid")))([x]);
      return [tf.maxPool(x, 2, 2, "valid"), dx];
    };
    const ref = on("cpu", f), got = on("native", f);
    for (let i = 0; i < ref.length; i++) {
      for (let j = 0; j < ref[i].length; j++) {
        assert.ok(got[i][j] === ref[i][j] || (Number.isNaN(got[i][j]) && Number.isNaN(ref[i][j])), `[${shape}] output ${i} at ${j}: ${got[i][j]} vs ${ref[i][j]}`);
      }
    }
  }
});

test("the first conv's backward pass without dz (Conv2DBiasActGradFilter) gives the bits of BiasActGrad + the filter gradient, dense and sparse, and x's gradient if asked", { skip }, () => {
  for (const [xs, ws] of [cases[0], cases[1], cases[4]]) {
    for (const density of [1, 0.3]) {
      const n = ws.reduce((a, b) => a * b, 1);
      const rng = makeRng(n, "mask");
      const mask = Float32Array.from({ length: n }, () => (density === 1 || rng() < density ? 1 : 0));
      const w = randn(n, 11).map((v, i) => v * mask[i]);
      const pattern = density < 1 ? sparsePattern(mask, ws) : undefined;
      tf.setBackend("native");
      const separate = on("native", layer(xs, ws, 3, pattern, w, true));
      const fused = on("native", layer(xs, ws, 3, pattern, w, false));
      const names = ["forward", "dx", "dw", "dbias"];
      for (let i = 0; i < names.length; i++) assert.deepEqual(fused[i], separate[i], `${names[i]} at density ${density}, x [${xs}] w [${ws}]`);
      pattern?.dispose();
    }
  }
});

test("Conv2DBiasActGradFilter: native and composed agree, and shapes the direct kernel does not take fall back to the composed kernels", { skip }, () => {
  const shapes: Array<[number[], number[], "same" | "valid"]> = [
    [[3, 28, 28, 1], [5, 5, 1, 20], "valid"], // the direct kernel
    [[2, 12, 12, 1], [5, 5, 1, 20], "same"], // padded: composed
    [[2, 12, 12, 20], [5, 5, 20, 50], "valid"], // K = 500: composed
  ];
  for (const [xs, ws, pad] of shapes) {
    const ys = [xs[0], pad === "same" ? xs[1] : xs[1] - ws[0] + 1, pad === "same" ? xs[2] : xs[2] - ws[1] + 1, ws[3]];
    const xv = randn(xs.reduce((a, b) => a * b, 1), 1), dyv = randn(ys.reduce((a, b) => a * b, 1), 2);
    const yv = randn(dyv.length, 3).map((v) => (v < -0.5 ? 0 : Math.abs(v)));
    const run = (kernel: boolean) => () => {
      const inputs = { x: tf.tensor4d(xv, xs as [number, number, number, number]), dy: tf.tensor4d(dyv, ys as [number, number, number, number]), y: tf.tensor4d(yv, ys as [number, number, number, number]) };
      const attrs = { strides: 1, pad, activation: "relu", filterShape: ws };
      return (kernel
        ? tf.engine().runKernel(Conv2DBiasActGradFilter, inputs, attrs as unknown as tf.NamedAttrMap)
        : composedConv2DBiasActGradFilter({ inputs, attrs, backend: tf.backend() } as unknown as Parameters<typeof composedConv2DBiasActGradFilter>[0])) as tf.Tensor[];
    };
    const got = on("native", run(true)), composed = on("native", run(false)), cpu = on("cpu", run(true));
    // The addon takes exactly the unpadded short-filter conv (the others are left to the composed kernels).
    const addon = loadAddon();
    assert.ok(!("error" in addon));
    const g = [xs[0], xs[1], xs[2], xs[3], ys[1], ys[2], ws[3], ws[0], ws[1], ...(pad === "same" ? [2, 2, 2, 2] : [0, 0, 0, 0])];
    const took = addon.addon.convBiasActGradFilter!(new Float32Array(xv), new Float32Array(dyv), new Float32Array(yv), new Float32Array(ws.reduce((a, b) => a * b, 1)), new Float32Array(ws[3]), g, 1, null);
    assert.equal(took, pad === "valid" && ws[2] === 1, `[${xs}] [${ws}] ${pad}: direct kernel taken`);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(got[i], composed[i], `[${xs}] [${ws}] ${pad}: output ${i} vs the composed kernels on native`);
      assert.ok(relErr(got[i], cpu[i]) <= 2e-5, `[${xs}] [${ws}] ${pad}: output ${i} vs cpu ${relErr(got[i], cpu[i])}`);
    }
  }
});
