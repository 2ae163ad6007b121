// The wide-layer convolution paths of the native backend (native/src/conv_layout.cc): forward on planar NCHW copies
// for small maps, the filter gradient in one batch pass where the filter outweighs the output gradient, and the tiled
// filter transposes every conv now uses. Each against tfjs' cpu kernels, and which geometries take which path.
// Skipped when the addon is not built (scripts/build-native.sh).

import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { loadAddon, registerNativeBackend } from "../src/backend/native/index.js";
import { conv2dBiasAct } from "../src/backend/layer-ops.js";
import { makeRng, normal } from "../src/core/rng.js";

const reg = await registerNativeBackend();
const skip = reg.ok ? false : `native backend unavailable: ${reg.reason}`;

function randn(shape: number[], seed: number): Float32Array {
  const rng = makeRng(seed, "conv-layout-test");
  return Float32Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => normal(rng));
}

function runOn(backend: string, f: () => tf.Tensor[]): Float32Array[] {
  assert.ok(tf.setBackend(backend));
  return tf.tidy(() => f().map((t) => Float32Array.from(t.dataSync())));
}

/** max |native - cpu| <= tol * max |cpu|, output by output. */
function matchesCpu(name: string, f: () => tf.Tensor[], tol = 1e-5): Float32Array[] {
  const ref = runOn("cpu", f), got = runOn("native", f);
  ref.forEach((r, i) => {
    let maxRef = 0, maxDiff = 0;
    for (let j = 0; j < r.length; j++) { maxRef = Math.max(maxRef, Math.abs(r[j])); maxDiff = Math.max(maxDiff, Math.abs(r[j] - got[i][j])); }
    assert.ok(maxRef > 0, `${name}[${i}]: reference is all zeros`);
    assert.ok(maxDiff <= tol * maxRef, `${name}[${i}]: max |native - cpu| = ${maxDiff} against max |cpu| = ${maxRef}`);
  });
  return got;
}

type Case = { name: string; x: number[]; w: number[]; stride: number; pad: "same" | "valid" };
/** Conv output and its gradients for x and w under sum(conv * r), r fixed and random. */
function convAndGrads(c: Case): () => tf.Tensor[] {
  const xv = randn(c.x, 1), wv = randn(c.w, 2).map((v) => v / Math.sqrt(c.w[0] * c.w[1] * c.w[2]));
  return () => {
    const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
    const w = tf.tensor4d(wv, c.w as [number, number, number, number]);
    const y = tf.conv2d(x, w, c.stride, c.pad);
    const r = tf.tensor(randn(y.shape, 3), y.shape);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r)))([x, w]);
    return [y, dx, dw];
  };
}

/** The addon's geometry array for a case (as src/backend/native/kernels.ts builds it). */
function geom(c: Case): number[] {
  const info = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], c.w as [number, number, number, number], c.stride, 1, c.pad, undefined, false, "channelsLast");
  const p = info.padInfo;
  return [info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth, info.outChannels,
    info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, p.top, p.bottom, p.left, p.right, 1, 1];
}

const planar: Case[] = [
  { name: "VGG 4x4 wide", x: [2, 4, 4, 256], w: [3, 3, 256, 256], stride: 1, pad: "same" },
  // Channel counts that are not multiples of the transpose's 8-wide blocks.
  { name: "2x2, 257 -> 259 channels", x: [3, 2, 2, 257], w: [3, 3, 257, 259], stride: 1, pad: "same" },
];
const channelsLast: Case[] = [
  // Uneven 'same' padding: the planar path takes only symmetric padding.
  { name: "4x4 wide stride 2 (uneven pad)", x: [2, 4, 4, 256], w: [3, 3, 256, 256], stride: 2, pad: "same" },
];

test("which geometries take the planar forward and the one-pass filter gradient", { skip }, () => {
  const loaded = loadAddon();
  if ("error" in loaded) throw new Error(loaded.error);
  const plan = loaded.addon.convPlan;
  assert.ok(plan, "the addon has convPlan");
  const at = (x: number[], w: number[], stride = 1, pad: "same" | "valid" = "same") => plan(geom({ name: "", x, w, stride, pad }));
  // VGG-16-BN at batch 128: 4x4 and 2x2 maps of 256/512 channels; 8x8 stays channels-last with 4 shards.
  assert.deepEqual(at([128, 4, 4, 512], [3, 3, 512, 512]), [1, 1]);
  assert.deepEqual(at([128, 2, 2, 512], [3, 3, 512, 512]), [1, 1]);
  assert.deepEqual(at([128, 4, 4, 256], [3, 3, 256, 512]), [1, 1]);
  assert.deepEqual(at([128, 8, 8, 256], [3, 3, 256, 256]), [0, 4]);
  assert.deepEqual(at([128, 32, 32, 64], [3, 3, 64, 64]), [0, 4]);
  // The small networks keep their paths (and bits): ResNet's 8x8x64, LeNet-5's 5x5 -> 1x1 layer.
  assert.deepEqual(at([128, 8, 8, 64], [3, 3, 64, 64]), [0, 4]);
  assert.deepEqual(at([128, 5, 5, 16], [5, 5, 16, 120], 1, "valid"), [0, 4]);
  assert.deepEqual(at([17, 8, 8, 16], [3, 3, 16, 16]), [0, 1]);
  assert.deepEqual(at(channelsLast[0].x, channelsLast[0].w, 2), [0, 1]);
  for (const c of planar) assert.equal(plan(geom(c))[0], 1, c.name);
});

for (const c of [...planar, ...channelsLast]) {
  test(`conv2d forward and gradients match the cpu kernels: ${c.name}`, { skip }, () => {
    matchesCpu(c.name, convAndGrads(c));
  });
}

test("conv + bias + ReLU in one kernel on the planar path matches the separate cpu ops", { skip }, () => {
  const c = planar[1];
  const xv = randn(c.x, 4), wv = randn(c.w, 5).map((v) => v / 40), bv = randn([c.w[3]], 6);
  const make = () => [tf.tensor4d(xv, c.x as [number, number, number, number]), tf.tensor4d(wv, c.w as [number, number, number, number]), tf.tensor1d(bv)] as const;
  const ref = runOn("cpu", () => { const [x, w, b] = make(); return [tf.relu(tf.add(tf.conv2d(x, w, 1, "same"), b))]; })[0];
  const got = runOn("native", () => { const [x, w, b] = make(); return [conv2dBiasAct(x, w, b, undefined, 1, "same", "relu")]; })[0];
  let maxRef = 0, maxDiff = 0, zeros = 0;
  for (let j = 0; j < ref.length; j++) { maxRef = Math.max(maxRef, ref[j]); maxDiff = Math.max(maxDiff, Math.abs(ref[j] - got[j])); if (got[j] === 0) zeros++; }
  assert.ok(maxDiff <= 1e-5 * maxRef, `max |fused - cpu| = ${maxDiff} against ${maxRef}`);
  assert.ok(zeros > 0 && zeros < ref.length, "ReLU clipped some outputs and not all");
});

test("the planar forward, the input gradient and the one-pass filter gradient give the same bits at 1 and 2 threads", { skip }, async () => {
  const c = planar[0];
  const run = () => runOn("native", convAndGrads(c));
  const one = run();
  await registerNativeBackend({ threads: 2 });
  let two: Float32Array[];
  try { two = run(); } finally { await registerNativeBackend({ threads: 1 }); }
  ["forward", "input gradient", "filter gradient"].forEach((what, i) => {
    assert.deepEqual(new Uint32Array(two[i].buffer), new Uint32Array(one[i].buffer), what);
  });
});
