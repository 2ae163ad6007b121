// The addon's sgemm + col2im input gradient (native/src/gemmconv.cc: unpadded stride-1 convs with a spatial filter
// and KH*KW*C in (32, 2048], e.g. LeNet-5-Caffe's conv2) against tfjs' cpu kernels: whole chunks of 4 images, a last
// partial chunk, non-square maps and filters; and the convs it leaves to libtorch (1x1, padded, strided, K <= 32).
// Skipped without the addon.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { registerNativeBackend } from "../src/backend/native/index.js";
import { makeRng, normal } from "../src/core/rng.js";

const reg = await registerNativeBackend();
const skip = reg.ok ? false : `native backend unavailable: ${reg.reason}`;

function randn(n: number, seed: number): Float32Array {
  const rng = makeRng(seed, "gemmconv-test");
  return Float32Array.from({ length: n }, () => normal(rng));
}

/** max |got - ref| / max |ref|. */
function relErr(got: Float32Array, ref: Float32Array): number {
  assert.equal(got.length, ref.length);
  let maxRef = 0, maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    maxDiff = Math.max(maxDiff, Math.abs(got[i] - ref[i]));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/** dx of sum(conv2d(x, w) * r) on `backend` (r fixed random, so every dy entry differs). */
function dx(backend: string, xs: number[], ws: number[], stride: number, pad: "same" | "valid"): Float32Array {
  assert.ok(tf.setBackend(backend));
  const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const xv = randn(n(xs), 1), wv = randn(n(ws), 2);
  return tf.tidy(() => {
    const x = tf.tensor4d(xv, xs as [number, number, number, number]), w = tf.tensor4d(wv, ws as [number, number, number, number]);
    const y = tf.conv2d(x, w, stride, pad);
    const r = tf.tensor(randn(y.size, 3), y.shape);
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, w, stride, pad), r)))(x);
    return Float32Array.from(g.dataSync());
  });
}

// Tolerance: float32 sums of up to KH*KW*O = 1250 products in another order than cpu's.
const TOL = 1e-5;

test("conv input gradient through sgemm + col2im matches cpu (LeNet-5-Caffe's conv2, partial chunks, odd shapes)", { skip }, () => {
  const cases: Array<[number[], number[]]> = [
    [[4, 12, 12, 20], [5, 5, 20, 50]], // one whole chunk
    [[9, 12, 12, 20], [5, 5, 20, 50]], // chunks 4, 4, 1
    [[3, 9, 7, 6], [3, 4, 6, 10]], // K = 72, non-square map and filter
    [[2, 6, 5, 40], [2, 1, 40, 3]], // K = 80, a filter one column wide
  ];
  for (const [xs, ws] of cases) {
    const ref = dx("cpu", xs, ws, 1, "valid"), got = dx("native", xs, ws, 1, "valid");
    assert.ok(got.some((v) => v !== 0));
    const e = relErr(got, ref);
    assert.ok(e <= TOL, `x [${xs}] w [${ws}]: rel err ${e}`);
  }
});

test("convs the sgemm input gradient leaves to libtorch (1x1, padded, strided, K <= 32) still match cpu", { skip }, () => {
  const cases: Array<[number[], number[], number, "same" | "valid"]> = [
    [[2, 6, 6, 64], [1, 1, 64, 8], 1, "valid"],
    [[2, 12, 12, 20], [5, 5, 20, 50], 1, "same"],
    [[2, 12, 12, 20], [5, 5, 20, 50], 2, "valid"],
    [[2, 12, 12, 1], [5, 5, 1, 20], 1, "valid"],
  ];
  for (const [xs, ws, stride, pad] of cases) {
    const e = relErr(dx("native", xs, ws, stride, pad), dx("cpu", xs, ws, stride, pad));
    assert.ok(e <= TOL, `x [${xs}] w [${ws}] ${stride} ${pad}: rel err ${e}`);
  }
});
