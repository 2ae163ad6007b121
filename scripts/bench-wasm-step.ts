/**
 * Times one LeNet-5 training step (forward, backward, SGD update) on a tfjs backend.
 *
 *   node dist/scripts/bench-wasm-step.js [--backend wasm] [--batch 128] [--steps 30] [--warmup 5] [--profile] [--original]
 *
 * The network is written with plain tfjs ops (not src/archs) so the number measures the backend only:
 * conv 6@5x5 pad 2 → relu → maxpool 2 → conv 16@5x5 valid → relu → maxpool 2 → dense 120 → 84 → 10,
 * softmax cross-entropy (via logSoftmax), on random 28x28x1 images. --profile prints the kernels that
 * took the most time in one step. --original puts wasm's own Conv2DBackpropInput, BatchMatMul and
 * MaxPoolGrad back in place of src/backend/wasm-kernels.ts' replacements (Conv2DBackpropFilter stays:
 * wasm has none), to measure what the replacements gain.
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend, isBackendRequest } from "../src/backend/index.js";
import { restoreWasmKernels } from "../src/backend/wasm-kernels.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const requested = arg("backend", "wasm");
if (!isBackendRequest(requested)) throw new Error(`bad --backend ${requested}`);
const batch = Number(arg("batch", "128"));
const steps = Number(arg("steps", "30"));
const warmup = Number(arg("warmup", "5"));
const profile = process.argv.includes("--profile");
const original = process.argv.includes("--original");

const info = await initBackend(requested);
if (original) restoreWasmKernels();

function glorot(shape: number[], fanIn: number, fanOut: number, seed: number): tf.Variable {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return tf.variable(tf.randomUniform(shape, -limit, limit, "float32", seed));
}

const conv1 = glorot([5, 5, 1, 6], 25, 150, 1) as tf.Variable<tf.Rank.R4>;
const conv2 = glorot([5, 5, 6, 16], 150, 400, 2) as tf.Variable<tf.Rank.R4>;
const dense = [glorot([400, 120], 400, 120, 3), glorot([120, 84], 120, 84, 4), glorot([84, 10], 84, 10, 5)] as tf.Variable<tf.Rank.R2>[];
const biases = [6, 16, 120, 84, 10].map((n) => tf.variable(tf.zeros([n])));

function forward(x: tf.Tensor4D): tf.Tensor {
  let h = tf.relu(tf.add(tf.conv2d(x, conv1, 1, 2), biases[0])) as tf.Tensor4D;
  h = tf.maxPool(h, 2, 2, "valid");
  h = tf.relu(tf.add(tf.conv2d(h, conv2, 1, "valid"), biases[1])) as tf.Tensor4D;
  h = tf.maxPool(h, 2, 2, "valid");
  let d = tf.reshape(h, [h.shape[0], -1]) as tf.Tensor2D;
  for (let i = 0; i < 3; i++) {
    d = tf.add(tf.matMul(d, dense[i]), biases[i + 2]) as tf.Tensor2D;
    if (i < 2) d = tf.relu(d);
  }
  return d;
}

const x = tf.randomUniform([batch, 28, 28, 1], 0, 1, "float32", 7) as tf.Tensor4D;
const labels = tf.cast(tf.oneHot(tf.randomUniform([batch], 0, 10, "int32", 8) as tf.Tensor1D, 10), "float32");
const optimizer = tf.train.sgd(0.01);

function step(): tf.Scalar {
  return optimizer.minimize(() => {
    const logits = forward(x);
    return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  }, true) as tf.Scalar;
}

for (let i = 0; i < warmup; i++) (await step().data(), tf.dispose());
const before = tf.memory().numTensors;
const times: number[] = [];
let loss = 0;
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  const l = step();
  loss = (await l.data())[0];
  l.dispose();
  times.push(performance.now() - t0);
}
const leaked = tf.memory().numTensors - before;
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
const mean = times.reduce((a, b) => a + b, 0) / times.length;
console.log(
  JSON.stringify({
    backend: info.name,
    kernels: original ? "wasm-original" : "prunebench",
    simd: info.simd,
    threads: info.threads,
    batch,
    steps,
    msPerStepMedian: +median.toFixed(2),
    msPerStepMean: +mean.toFixed(2),
    msPerStepMin: +times[0].toFixed(2),
    imgPerSec: Math.round((batch * 1000) / median),
    finalLoss: +loss.toFixed(4),
    leakedTensors: leaked,
  }),
);

if (profile) {
  const p = await tf.profile(() => {
    step().dispose();
  });
  const byKernel = new Map<string, number>();
  for (const k of p.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + Number(k.kernelTimeMs));
  const rows = [...byKernel.entries()].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((a, [, ms]) => a + ms, 0);
  console.log(`kernel time in one step: ${total.toFixed(1)} ms`);
  for (const [name, ms] of rows.slice(0, 15)) console.log(`  ${name.padEnd(24)} ${ms.toFixed(2).padStart(8)} ms`);
}
