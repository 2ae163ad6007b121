// src/backend: backend selection (initBackend) and the wasm kernels added or replaced by
// src/backend/wasm-kernels.ts, checked numerically against tfjs' cpu backend.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { initBackend, type BackendInfo } from "../src/backend/index.js";
import { overriddenKernels, registerWasmKernels, restoreWasmKernels } from "../src/backend/wasm-kernels.js";
import { adamUpdate, batchNormTrain, sgdUpdate } from "../src/backend/fused-ops.js";

// ---------------------------------------------------------------------------------------------------
// helpers

/** Deterministic N(0,1)-ish values (sum of uniforms from an LCG), identical on every backend. */
function randn(n: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() + next() + next() + next() - 2;
  return out;
}

type Out = { shape: number[]; values: Float32Array };

async function runOn(backend: string, f: () => tf.Tensor | tf.Tensor[]): Promise<Out[]> {
  assert.ok(await tf.setBackend(backend), `setBackend(${backend})`);
  assert.equal(tf.getBackend(), backend);
  return tf.tidy(() => {
    const r = f();
    return (Array.isArray(r) ? r : [r]).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) }));
  });
}

/** max |wasm − cpu| / max |cpu| for each output of f, asserting shapes match and the ratio is < tol. */
async function compareWasmCpu(name: string, f: () => tf.Tensor | tf.Tensor[], tol = 1e-4): Promise<number[]> {
  const ref = await runOn("cpu", f);
  const got = await runOn("wasm", f);
  assert.equal(got.length, ref.length, `${name}: number of outputs`);
  return ref.map((r, i) => {
    const g = got[i];
    assert.deepEqual(g.shape, r.shape, `${name}[${i}]: shape`);
    let maxRef = 0;
    let maxDiff = 0;
    for (let j = 0; j < r.values.length; j++) {
      maxRef = Math.max(maxRef, Math.abs(r.values[j]));
      maxDiff = Math.max(maxDiff, Math.abs(r.values[j] - g.values[j]));
    }
    assert.ok(Number.isFinite(maxDiff), `${name}[${i}]: non-finite values`);
    assert.ok(maxRef > 1e-3, `${name}[${i}]: reference is ~0, the comparison would prove nothing`);
    const rel = maxDiff / maxRef;
    assert.ok(rel < tol, `${name}[${i}]: relative error ${rel.toExponential(2)} >= ${tol}`);
    return rel;
  });
}

type Pad = "same" | "valid" | number | [[number, number], [number, number], [number, number], [number, number]];
interface ConvCase {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number | [number, number];
  pad: Pad;
}

const convCases: ConvCase[] = [
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], stride: 1, pad: "same" },
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], stride: 1, pad: "valid" },
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], stride: 2, pad: "same" },
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 4], stride: 2, pad: "valid" },
  { x: [2, 10, 10, 3], filter: [3, 3, 3, 4], stride: 2, pad: "valid" }, // last row/col of x unused
  { x: [3, 7, 7, 2], filter: [3, 3, 2, 5], stride: 2, pad: "same" }, // odd input, uneven same pad
  { x: [2, 9, 8, 3], filter: [2, 2, 3, 5], stride: 2, pad: "same" }, // even filter, H != W
  { x: [3, 12, 12, 1], filter: [5, 5, 1, 6], stride: 1, pad: "same" }, // LeNet conv1, 1 channel
  { x: [3, 12, 12, 1], filter: [5, 5, 1, 6], stride: 1, pad: 2 }, // LeNet conv1 as src/archs writes it
  { x: [3, 9, 9, 6], filter: [5, 5, 6, 16], stride: 1, pad: "valid" }, // LeNet conv2
  { x: [2, 11, 11, 3], filter: [5, 5, 3, 4], stride: 2, pad: "same" },
  { x: [2, 8, 8, 4], filter: [1, 1, 4, 8], stride: 1, pad: "valid" }, // 1x1, ci < co
  { x: [2, 8, 8, 8], filter: [1, 1, 8, 4], stride: 1, pad: "same" }, // 1x1, ci > co
  { x: [2, 8, 8, 4], filter: [1, 1, 4, 8], stride: 2, pad: "same" }, // ResNet shortcut
  { x: [2, 9, 9, 4], filter: [1, 1, 4, 6], stride: 2, pad: "valid" }, // odd 1x1 stride 2
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], stride: 2, pad: 1 },
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], stride: 2, pad: [[0, 0], [1, 0], [0, 2], [0, 0]] },
  { x: [1, 6, 6, 2], filter: [5, 5, 2, 3], stride: 3, pad: "same" },
  { x: [2, 7, 8, 3], filter: [3, 3, 3, 4], stride: [1, 2], pad: "same" }, // asymmetric strides
  { x: [2, 8, 7, 3], filter: [3, 2, 3, 4], stride: [2, 1], pad: "valid" },
  { x: [2, 9, 9, 2], filter: [3, 3, 2, 3], stride: [3, 2], pad: "same" }, // unequal strides > 1
];

function describe(c: ConvCase): string {
  return `x=[${c.x}] f=[${c.filter}] s=${JSON.stringify(c.stride)} pad=${JSON.stringify(c.pad)}`;
}

function convTensors(c: ConvCase, seed: number) {
  const xv = randn(tf.util.sizeFromShape(c.x), seed);
  const wv = randn(tf.util.sizeFromShape(c.filter), seed + 1);
  const outShape = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.stride, 1, c.pad as "same").outShape;
  const dyv = randn(tf.util.sizeFromShape(outShape), seed + 2);
  return {
    x: () => tf.tensor4d(xv, c.x),
    w: () => tf.tensor4d(wv, c.filter),
    dy: () => tf.tensor4d(dyv, outShape as [number, number, number, number]),
  };
}

const wasmInfo = await initBackend("wasm");

// ---------------------------------------------------------------------------------------------------
// kernels

test("the wasm backend has Conv2DBackpropFilter and the fast overrides registered", () => {
  assert.ok(tf.getKernel(tf.Conv2DBackpropFilter, "wasm"), "Conv2DBackpropFilter missing on wasm");
  assert.deepEqual(registerWasmKernels(), [], "registerWasmKernels is idempotent");
});

for (const [i, c] of convCases.entries()) {
  test(`Conv2DBackpropFilter wasm == cpu: ${describe(c)}`, async () => {
    const t = convTensors(c, 10 * i + 1);
    await compareWasmCpu(describe(c), () =>
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: t.x(), dy: t.dy() }, {
        strides: c.stride,
        pad: c.pad,
        dataFormat: "NHWC",
        filterShape: c.filter,
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    );
  });
}

for (const [i, c] of convCases.entries()) {
  test(`Conv2DBackpropInput wasm == cpu: ${describe(c)}`, async () => {
    const t = convTensors(c, 10 * i + 5);
    await compareWasmCpu(describe(c), () =>
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: t.dy(), filter: t.w() }, {
        strides: c.stride,
        pad: c.pad,
        dataFormat: "NHWC",
        inputShape: c.x,
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    );
  });
}

test("conv2d gradients through tf.grads, wasm == cpu, for every case", async () => {
  for (const [i, c] of convCases.entries()) {
    const t = convTensors(c, 10 * i + 7);
    await compareWasmCpu(describe(c), () => {
      const dy = t.dy();
      const pad = c.pad as "same";
      return tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.mul(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, pad), dy))([t.x(), t.w()]);
    });
  }
});

test("depthwise conv gradients (added kernels) wasm == cpu: stride 1 and 2, same and valid, multiplier 1 and 2", async () => {
  type Shape4 = [number, number, number, number];
  const cases: Array<{ x: Shape4; f: Shape4; stride: number; pad: "same" | "valid" }> = [
    { x: [2, 8, 8, 6], f: [3, 3, 6, 1], stride: 1, pad: "same" },
    { x: [2, 8, 8, 6], f: [3, 3, 6, 1], stride: 2, pad: "same" },
    { x: [2, 9, 9, 4], f: [3, 3, 4, 1], stride: 2, pad: "valid" }, // MobileNetV2's explicit pad 1 runs as pad + valid
    { x: [1, 7, 6, 3], f: [3, 3, 3, 2], stride: 1, pad: "valid" },
  ];
  for (const [i, c] of cases.entries()) {
    const outShape = tf.tidy(() => tf.depthwiseConv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.f) as tf.Tensor4D, c.stride, c.pad).shape);
    const [xs, fs, dys] = [randn(c.x.reduce((a, b) => a * b), 31 * i + 1), randn(c.f.reduce((a, b) => a * b), 31 * i + 2), randn(outShape.reduce((a, b) => a * b), 31 * i + 3)];
    await compareWasmCpu(`depthwise ${JSON.stringify(c)}`, () => {
      const dy = tf.tensor(dys, outShape);
      return tf.grads((x: tf.Tensor, f: tf.Tensor) => tf.mul(tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad), dy))([tf.tensor(xs, c.x), tf.tensor(fs, c.f)]);
    });
  }
});

test("conv2dTranspose (Conv2DBackpropInput forward) wasm == cpu, incl. both valid output sizes", async () => {
  const cases: Array<[number[], number[], number[], number, "same" | "valid"]> = [
    [[2, 4, 4, 3], [3, 3, 5, 3], [2, 8, 8, 5], 2, "same"],
    [[2, 4, 4, 3], [3, 3, 5, 3], [2, 7, 7, 5], 2, "same"],
    [[2, 4, 4, 3], [3, 3, 5, 3], [2, 9, 9, 5], 2, "valid"],
    [[2, 4, 4, 3], [3, 3, 5, 3], [2, 10, 10, 5], 2, "valid"],
    [[1, 5, 5, 2], [4, 4, 3, 2], [1, 8, 8, 3], 1, "valid"],
  ];
  for (const [i, [xs, fs, os, st, pad]] of cases.entries()) {
    const xv = randn(tf.util.sizeFromShape(xs), 700 + i);
    const wv = randn(tf.util.sizeFromShape(fs), 800 + i);
    await compareWasmCpu(`conv2dTranspose ${xs} ${fs} -> ${os} s=${st} ${pad}`, () =>
      tf.conv2dTranspose(tf.tensor4d(xv, xs as [number, number, number, number]), tf.tensor4d(wv, fs as [number, number, number, number]), os as [number, number, number, number], st, pad),
    );
  }
});

test("BatchMatMul with transposes (override) wasm == cpu, batched products delegated", async () => {
  const shapes: Array<[number[], number[], boolean, boolean]> = [
    [[7, 5], [5, 3], false, false],
    [[5, 7], [5, 3], true, false],
    [[7, 5], [3, 5], false, true],
    [[5, 7], [3, 5], true, true],
    [[1, 5, 7], [5, 3], true, false], // rank 3, batch 1
    [[1, 7], [1, 3], true, false], // outer product (transpose of a vector is a reshape)
    [[64, 40], [64, 30], true, false], // dense-layer weight gradient
    [[3, 5, 7], [3, 5, 4], true, false], // batched: original wasm kernel
    [[2, 7, 5], [2, 4, 5], false, true],
  ];
  for (const [i, [sa, sb, ta, tb]] of shapes.entries()) {
    const av = randn(tf.util.sizeFromShape(sa), 300 + i);
    const bv = randn(tf.util.sizeFromShape(sb), 400 + i);
    await compareWasmCpu(`matMul ${sa} ${sb} ${ta} ${tb}`, () => tf.matMul(tf.tensor(av, sa), tf.tensor(bv, sb), ta, tb));
  }
});

test("the overrides agree with wasm's original kernels", async () => {
  await tf.setBackend("wasm");
  const c = convCases[5];
  const t = convTensors(c, 77);
  const run = () =>
    tf.tidy(() => {
      const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: t.dy(), filter: t.w() }, {
        strides: c.stride,
        pad: c.pad,
        dataFormat: "NHWC",
        inputShape: c.x,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      const mm = tf.matMul(tf.tensor2d(randn(12, 1), [4, 3]), tf.tensor2d(randn(20, 2), [4, 5]), true, false);
      return [Array.from(dx.dataSync()), Array.from(mm.dataSync())];
    });
  const ours = run();
  const names = overriddenKernels.map((k) => k.kernelName).sort();
  assert.deepEqual(restoreWasmKernels().sort(), names);
  let original: number[][];
  try {
    original = run();
  } finally {
    assert.deepEqual(registerWasmKernels().sort(), names);
  }
  for (let k = 0; k < ours.length; k++) {
    const scale = Math.max(...original[k].map(Math.abs));
    ours[k].forEach((v, j) => assert.ok(Math.abs(v - original[k][j]) <= 1e-5 * scale, `output ${k}[${j}]`));
  }
});

test("the wasm kernels leak neither tensors nor wasm buffers", async () => {
  await tf.setBackend("wasm");
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const c = convCases[2];
  const t = convTensors(c, 5);
  const x = t.x();
  const dy = t.dy();
  const w = t.w();
  const once = () =>
    tf.tidy(() => {
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { strides: c.stride, pad: c.pad, dataFormat: "NHWC", filterShape: c.filter });
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: tf.ones([2, 8, 8, 8]) }, { strides: 1, pad: "same", dataFormat: "NHWC", filterShape: [1, 1, 3, 8] });
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, { strides: c.stride, pad: c.pad, dataFormat: "NHWC", inputShape: c.x });
      tf.matMul(tf.ones([6, 4]), tf.ones([6, 5]), true, false);
      tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, "same"))(x);
    });
  once();
  const tensors = tf.memory().numTensors;
  const ids = backend.numDataIds();
  for (let i = 0; i < 5; i++) once();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), ids);
  tf.dispose([x, dy, w]);
});

const poolCases: Array<{ x: [number, number, number, number]; size: number | [number, number]; stride: number | [number, number]; pad: "same" | "valid" | number; round?: boolean }> = [
  { x: [3, 8, 8, 4], size: 2, stride: 2, pad: "valid" }, // LeNet pooling, negative maxima included
  { x: [3, 8, 8, 4], size: 2, stride: 2, pad: "valid", round: true }, // many ties: first max wins
  { x: [2, 7, 7, 3], size: 2, stride: 2, pad: "same" }, // odd input, padded window
  { x: [2, 9, 9, 3], size: 3, stride: 2, pad: "same", round: true }, // overlapping windows accumulate
  { x: [2, 6, 6, 2], size: 3, stride: 1, pad: "same" },
  { x: [2, 9, 8, 5], size: [3, 2], stride: [2, 1], pad: "valid" },
  { x: [1, 7, 7, 2], size: 3, stride: 2, pad: 1 },
];

for (const [i, c] of poolCases.entries()) {
  test(`MaxPoolGrad (override) wasm == cpu, incl. negative maxima: ${JSON.stringify(c)}`, async () => {
    const xv = randn(tf.util.sizeFromShape(c.x), 500 + i).map((v) => (c.round ? Math.round(v) : v) - 1);
    const yShape = tf.backend_util.computePool2DInfo(c.x, c.size, c.stride, 1, c.pad).outShape;
    const dyv = randn(tf.util.sizeFromShape(yShape), 600 + i);
    await compareWasmCpu(JSON.stringify(c), () => {
      const x = tf.tensor4d(xv, c.x);
      const y = tf.maxPool(x, c.size, c.stride, c.pad);
      const direct = tf.engine().runKernel(tf.MaxPoolGrad, { dy: tf.tensor(dyv, yShape), input: x, output: y }, {
        filterSize: c.size,
        strides: c.stride,
        pad: c.pad,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      const viaGrads = tf.grad((t: tf.Tensor) => tf.mul(tf.maxPool(t as tf.Tensor4D, c.size, c.stride, c.pad), tf.tensor(dyv, yShape)))(x);
      return [direct, viaGrads];
    }, 1e-6);
  });
}

// ---------------------------------------------------------------------------------------------------
// whole-model gradients

test("LeNet-5-like gradient (conv+relu+maxpool+dense, softmax CE) wasm == cpu", async () => {
  const n = 4;
  const vals = {
    x: randn(n * 16 * 16, 1),
    c1: randn(5 * 5 * 1 * 4, 2).map((v) => v * 0.3),
    c2: randn(5 * 5 * 4 * 6, 3).map((v) => v * 0.2),
    d: randn(6 * 2 * 2 * 10, 4).map((v) => v * 0.3),
    b: randn(10, 5),
  };
  const labels = tf.util.flatten([0, 3, 7, 9]) as number[];
  await compareWasmCpu("lenet grads", () => {
    const x = tf.tensor4d(vals.x, [n, 16, 16, 1]);
    const y = tf.oneHot(tf.tensor1d(labels, "int32"), 10);
    const f = (c1: tf.Tensor, c2: tf.Tensor, d: tf.Tensor, b: tf.Tensor) => {
      let h = tf.maxPool(tf.relu(tf.conv2d(x, c1 as tf.Tensor4D, 1, 2)), 2, 2, "valid");
      h = tf.maxPool(tf.relu(tf.conv2d(h, c2 as tf.Tensor4D, 1, "valid")), 2, 2, "valid");
      const logits = tf.add(tf.matMul(tf.reshape(h, [n, -1]), d as tf.Tensor2D), b);
      return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1)));
    };
    return tf.grads(f)([
      tf.tensor4d(vals.c1, [5, 5, 1, 4]),
      tf.tensor4d(vals.c2, [5, 5, 4, 6]),
      tf.tensor2d(vals.d, [24, 10]),
      tf.tensor1d(vals.b),
    ]);
  });
});

test("ResNet-block-like gradient (conv+batchnorm+relu+add, stride-2 conv and 1x1 shortcut) wasm == cpu", async () => {
  const n = 3;
  const x = randn(n * 9 * 9 * 4, 11);
  const w1 = randn(3 * 3 * 4 * 8, 12).map((v) => v * 0.3);
  const w2 = randn(3 * 3 * 8 * 8, 13).map((v) => v * 0.2);
  const ws = randn(4 * 8, 14).map((v) => v * 0.5);
  const gamma = randn(8, 15).map((v) => 1 + 0.1 * v);
  const beta = randn(8, 16).map((v) => 0.1 * v);
  const target = randn(n * 5 * 5 * 8, 17);
  await compareWasmCpu("resblock grads", () => {
    const bn = (h: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor): tf.Tensor4D => {
      const m = tf.moments(h, [0, 1, 2]);
      return tf.batchNorm(h, m.mean, m.variance, b as tf.Tensor1D, g as tf.Tensor1D, 1e-5) as tf.Tensor4D;
    };
    const f = (xi: tf.Tensor, c1: tf.Tensor, c2: tf.Tensor, sc: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      let h = tf.relu(bn(tf.conv2d(xi as tf.Tensor4D, c1 as tf.Tensor4D, 2, "same"), g, b));
      h = bn(tf.conv2d(h, c2 as tf.Tensor4D, 1, "same"), g, b);
      const short = tf.conv2d(xi as tf.Tensor4D, sc as tf.Tensor4D, 2, "valid");
      const out = tf.relu(tf.add(h, short));
      const pooled = tf.mean(out, [1, 2]); // global average pool
      return tf.add(tf.sum(tf.mul(out, tf.tensor4d(target, [n, 5, 5, 8]))), tf.sum(tf.square(pooled)));
    };
    return tf.grads(f)([
      tf.tensor4d(x, [n, 9, 9, 4]),
      tf.tensor4d(w1, [3, 3, 4, 8]),
      tf.tensor4d(w2, [3, 3, 8, 8]),
      tf.tensor4d(ws, [1, 1, 4, 8]),
      tf.tensor1d(gamma),
      tf.tensor1d(beta),
    ]);
  }, 1e-3);
});

// ---------------------------------------------------------------------------------------------------
// fused-op kernels (src/backend/fused-ops.ts): on wasm and cpu, the tf ops training ran before them, bit for bit

async function bitsOn(backend: string, f: () => tf.Tensor[]): Promise<Buffer[]> {
  return (await runOn(backend, f)).map((o) => Buffer.from(o.values.buffer));
}

for (const backend of ["wasm", "cpu"]) {
  test(`fused training batch norm on ${backend}: tf.moments + tf.batchNorm and their gradient, bit for bit`, async () => {
    for (const shape of [[3, 5, 5, 8], [4, 3, 8], [6, 8]]) {
      const C = shape[shape.length - 1];
      const size = shape.reduce((a, b) => a * b, 1);
      const x = randn(size, 21).map((v) => 3 * v + 1.5), r = randn(size, 22);
      const gamma = randn(C, 23).map((v) => 1 + 0.2 * v), beta = randn(C, 24);
      const run = (bn: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor[]) => () => {
        const args = [tf.tensor(x, shape), tf.tensor1d(gamma), tf.tensor1d(beta)];
        const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(bn(a, g, b)[0], tf.tensor(r, shape))))(args);
        return [...bn(args[0], args[1], args[2]), ...grads];
      };
      const fused = await bitsOn(backend, run((a, g, b) => {
        const { y, mean, variance } = batchNormTrain(a, g, b, 1e-5);
        return [y, mean, variance];
      }));
      const ops = await bitsOn(backend, run((a, g, b) => {
        const { mean, variance } = tf.moments(a, shape.map((_, i) => i).slice(0, -1));
        return [tf.batchNorm(a, mean, variance, b, g, 1e-5), mean, variance];
      }));
      const names = ["y", "mean", "variance", "dx", "dscale", "doffset"];
      fused.forEach((f, i) => assert.ok(f.equals(ops[i]), `${shape}: ${names[i]} differs`));
    }
  });

  test(`fused SGD and Adam updates on ${backend}: the masked tf-op updates, bit for bit`, async () => {
    const n = 300;
    const w0 = randn(n, 31), mask = randn(n, 32).map((v) => (v > 0 ? 1 : 0));
    const grad = (t: number) => tf.tensor(randn(n, 40 + t));
    const steps = (update: (w: tf.Variable, s: tf.Variable[], g: tf.Tensor, m: tf.Tensor, t: number) => void) => () => {
      const w = tf.variable(tf.tensor(w0));
      const state = [tf.variable(tf.zeros([n])), tf.variable(tf.zeros([n]))];
      for (let t = 1; t <= 3; t++) tf.tidy(() => update(w, state, grad(t), tf.tensor(mask), t));
      const out = [w, ...state].map((v) => v.clone());
      [w, ...state].forEach((v) => v.dispose());
      return out;
    };
    const [lr, mom, wd, b1, b2, eps] = [0.05, 0.9, 0.01, 0.9, 0.999, 1e-8];
    const sgdFused = await bitsOn(backend, steps((w, [v], g, m) => sgdUpdate(w, g, v, m, { lr, momentum: mom, weightDecay: wd })));
    const sgdOps = await bitsOn(backend, steps((w, [v], g, m) => {
      v.assign(tf.add(tf.mul(v, mom), tf.add(tf.mul(g, m), tf.mul(w, wd))));
      w.assign(tf.mul(tf.sub(w, tf.mul(v, lr)), m));
    }));
    const adamFused = await bitsOn(backend, steps((w, [m1, m2], g, m, t) =>
      adamUpdate(w, g, m1, m2, m, { lr: lr * Math.sqrt(1 - b2 ** t) / (1 - b1 ** t), beta1: b1, beta2: b2, epsilon: eps, weightDecay: wd })));
    const adamOps = await bitsOn(backend, steps((w, [m1, m2], g, m, t) => {
      const d = tf.add(tf.mul(g, m), tf.mul(w, wd));
      m1.assign(tf.add(tf.mul(m1, b1), tf.mul(d, 1 - b1)));
      m2.assign(tf.add(tf.mul(m2, b2), tf.mul(tf.square(d), 1 - b2)));
      const next = tf.sub(w, tf.div(tf.mul(m1, lr * Math.sqrt(1 - b2 ** t) / (1 - b1 ** t)), tf.add(tf.sqrt(m2), eps)));
      w.assign(tf.mul(next, m));
    }));
    sgdFused.slice(0, 2).forEach((f, i) => assert.ok(f.equals(sgdOps[i]), `sgd ${["weights", "velocity"][i]} differ`));
    adamFused.forEach((f, i) => assert.ok(f.equals(adamOps[i]), `adam ${["weights", "m", "v"][i]} differ`));
    const w = new Float32Array(sgdFused[0].buffer, sgdFused[0].byteOffset, n);
    assert.ok(mask.every((m, i) => m !== 0 || w[i] === 0), "pruned weights exactly 0");
  });
}

// ---------------------------------------------------------------------------------------------------
// initBackend

async function tfjsNodeInstalled(): Promise<boolean> {
  const spec = "@tensorflow/tfjs-node";
  try {
    await import(spec);
    return true;
  } catch {
    return false;
  }
}

test("initBackend('wasm') reports the wasm backend, SIMD and 1 thread", async () => {
  assert.equal(wasmInfo.name, "wasm");
  assert.equal(wasmInfo.requested, "wasm");
  assert.equal(wasmInfo.tfjsVersion, tf.version_core);
  assert.equal(wasmInfo.threads, 1);
  assert.equal(typeof wasmInfo.simd, "boolean");
  assert.equal(tf.getBackend() === "wasm" || tf.getBackend() === "cpu", true);
});

test("initBackend is idempotent and re-activates its backend", async () => {
  await tf.setBackend("cpu");
  const again = await initBackend("wasm");
  assert.equal(again, wasmInfo, "same BackendInfo object");
  assert.equal(tf.getBackend(), "wasm");
});

test("explicit cpu works", async () => {
  const info = await initBackend("cpu");
  assert.equal(info.name, "cpu");
  assert.equal(tf.getBackend(), "cpu");
  assert.equal(tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0]), 6);
  await initBackend("wasm");
  assert.equal(tf.getBackend(), "wasm");
});

test("explicit node without @tensorflow/tfjs-node is a clear error", { skip: (await tfjsNodeInstalled()) && "tfjs-node is installed here" }, async () => {
  await assert.rejects(initBackend("node"), (e: Error) => {
    assert.match(e.message, /@tensorflow\/tfjs-node/);
    assert.match(e.message, /not installed/);
    assert.match(e.message, /npm install @tensorflow\/tfjs-node/);
    return true;
  });
  assert.notEqual(tf.getBackend(), "tensorflow");
});

test("auto never picks cpu: native when its addon works, else wasm (tfjs-node absent)", { skip: (await tfjsNodeInstalled()) && "tfjs-node is installed here" }, async () => {
  let native: BackendInfo | Error;
  try {
    native = await initBackend("native");
  } catch (e) {
    native = e as Error;
    assert.match(native.message, /native backend unavailable/);
    assert.match(native.message, /--backend wasm/);
  }
  const auto = await initBackend("auto");
  assert.equal(auto.requested, "auto");
  assert.notEqual(auto.name, "cpu");
  assert.equal(tf.getBackend(), auto.name);
  if (native instanceof Error) {
    assert.equal(auto.name, "wasm");
    assert.match(auto.note ?? "", /tfjs-node is not installed/);
    assert.match(auto.note ?? "", /native backend unavailable/);
  } else {
    assert.equal(auto.name, "native");
    assert.match(auto.note ?? "", /tfjs-node is not installed/);
  }
  assert.equal(await initBackend("auto"), auto);
  await initBackend("wasm");
});

/** Runs initBackend("auto") in a child process whose module loader refuses the given specifiers. */
async function autoInChild(hidden: string[]): Promise<{ info?: BackendInfo & { active: string }; error?: string }> {
  const hook =
    `const hidden = ${JSON.stringify(hidden)};` +
    `export async function resolve(s, c, next) { if (hidden.some((h) => s.includes(h))) {` +
    ` const e = new Error("hidden by test: " + s); e.code = "ERR_MODULE_NOT_FOUND"; throw e; } return next(s, c); }`;
  const script = [
    `import { register } from "node:module";`,
    `register("data:text/javascript," + encodeURIComponent(${JSON.stringify(hook)}));`,
    `const { initBackend } = await import(${JSON.stringify(new URL("../src/backend/index.js", import.meta.url).href)});`,
    `const tf = await import("@tensorflow/tfjs-core");`,
    `try { const info = await initBackend("auto"); console.log(JSON.stringify({ info: { ...info, active: tf.getBackend() } })); }`,
    `catch (e) { console.log(JSON.stringify({ error: e.message })); }`,
  ].join("\n");
  const env = { ...process.env };
  delete env.BENCH_BACKEND;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { env });
  return JSON.parse(stdout.trim().split("\n").pop() ?? "{}");
}

const noTfjsNode = { skip: (await tfjsNodeInstalled()) && "tfjs-node is installed here" };

test("auto falls back to wasm when neither tfjs-node nor the native addon loads", noTfjsNode, async () => {
  const { info, error } = await autoInChild(["/backend/native/index.js"]);
  assert.equal(error, undefined);
  assert.equal(info?.name, "wasm");
  assert.equal(info?.active, "wasm");
  assert.equal(info?.requested, "auto");
  assert.match(info?.note ?? "", /tfjs-node is not installed/);
  assert.match(info?.note ?? "", /native backend unavailable: the native module is not built/);
});

test("auto with no usable backend throws a clear error instead of falling back to cpu", noTfjsNode, async () => {
  const { info, error } = await autoInChild(["/backend/native/index.js", "@tensorflow/tfjs-backend-wasm"]);
  assert.equal(info, undefined, `picked ${info?.name}`);
  assert.match(error ?? "", /wasm backend failed to initialise/);
  assert.match(error ?? "", /never chosen automatically: use BENCH_BACKEND=cpu/);
  assert.match(error ?? "", /tfjs-node is not installed/);
});

test("BENCH_BACKEND sets the default request; bad values are rejected", async () => {
  const saved = process.env.BENCH_BACKEND;
  try {
    process.env.BENCH_BACKEND = "cpu";
    assert.equal((await initBackend()).name, "cpu");
    process.env.BENCH_BACKEND = "wasm";
    assert.equal(await initBackend(), wasmInfo);
    process.env.BENCH_BACKEND = "gpu";
    await assert.rejects(initBackend(), /Unknown compute backend 'gpu'/);
  } finally {
    if (saved === undefined) delete process.env.BENCH_BACKEND;
    else process.env.BENCH_BACKEND = saved;
    await initBackend("wasm");
  }
});
