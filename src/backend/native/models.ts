// Reference models (raw tfjs-core ops) used by the native backend's benchmark
// (scripts/bench-native.ts) and its tests: MLP 784-300-100-10, LeNet-5 and a
// CIFAR ResNet (6n+2, batch norm, 1x1 projection shortcuts), matching the
// PyTorch peer in shared/peers/torch_throughput.py.

import * as tf from "@tensorflow/tfjs-core";

/** Deterministic pseudo-random numbers (mulberry32 + Box-Muller). */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(next(), 1e-12);
    const v = next();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

export interface Model {
  name: string;
  inputShape: number[]; // without batch
  vars: tf.Variable[];
  forward(x: tf.Tensor): tf.Tensor2D; // logits [B, 10]
}

export class Params {
  vars: tf.Variable[] = [];
  private seed: number;
  constructor(seed: number) {
    this.seed = seed;
  }
  weight(shape: number[], fanIn: number): tf.Variable {
    const v = tf.variable(tf.tensor(randn(tf.util.sizeFromShape(shape), this.seed++, Math.sqrt(2 / fanIn)), shape));
    this.vars.push(v);
    return v;
  }
  constant(shape: number[], value: number): tf.Variable {
    const v = tf.variable(tf.fill(shape, value));
    this.vars.push(v);
    return v;
  }
}

function dense(p: Params, nin: number, nout: number): (x: tf.Tensor) => tf.Tensor {
  const w = p.weight([nin, nout], nin);
  const b = p.constant([nout], 0);
  return (x) => tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b);
}

export function mlp(seed = 1): Model {
  const p = new Params(seed);
  const l1 = dense(p, 784, 300), l2 = dense(p, 300, 100), l3 = dense(p, 100, 10);
  return {
    name: "mlp",
    inputShape: [28, 28, 1],
    vars: p.vars,
    forward: (x) => {
      const h = tf.reshape(x, [x.shape[0], 784]);
      return l3(tf.relu(l2(tf.relu(l1(h))))) as tf.Tensor2D;
    },
  };
}

export function lenet5(seed = 1): Model {
  const p = new Params(seed);
  const w1 = p.weight([5, 5, 1, 6], 25), b1 = p.constant([6], 0);
  const w2 = p.weight([5, 5, 6, 16], 150), b2 = p.constant([16], 0);
  const l3 = dense(p, 400, 120), l4 = dense(p, 120, 84), l5 = dense(p, 84, 10);
  return {
    name: "lenet5",
    inputShape: [28, 28, 1],
    vars: p.vars,
    forward: (x) => {
      let h = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, "same"), b1)) as tf.Tensor4D;
      h = tf.maxPool(h, 2, 2, "valid");
      h = tf.relu(tf.add(tf.conv2d(h, w2 as tf.Tensor4D, 1, "valid"), b2)) as tf.Tensor4D;
      h = tf.maxPool(h, 2, 2, "valid");
      const f = tf.reshape(h, [h.shape[0], 400]);
      return l5(tf.relu(l4(tf.relu(l3(f))))) as tf.Tensor2D;
    },
  };
}

/** Training-mode batch norm over all axes but the last (channels). */
export function batchNormTrain(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps = 1e-5): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, gamma, eps);
}

function convBn(p: Params, cin: number, cout: number, k: number, stride: number) {
  const w = p.weight([k, k, cin, cout], k * k * cin);
  const gamma = p.constant([cout], 1), beta = p.constant([cout], 0);
  const pad = (k - 1) / 2; // symmetric, as PyTorch's padding=(k-1)/2
  const padding: [[number, number], [number, number], [number, number], [number, number]] =
    [[0, 0], [pad, pad], [pad, pad], [0, 0]];
  return (x: tf.Tensor4D): tf.Tensor4D =>
    batchNormTrain(tf.conv2d(x, w as tf.Tensor4D, stride, pad === 0 ? "valid" : padding),
      gamma as tf.Tensor1D, beta as tf.Tensor1D);
}

/** One CIFAR ResNet basic block. */
export function resBlock(p: Params, cin: number, cout: number, stride: number): (x: tf.Tensor4D) => tf.Tensor4D {
  const c1 = convBn(p, cin, cout, 3, stride), c2 = convBn(p, cout, cout, 3, 1);
  const short = stride !== 1 || cin !== cout ? convBn(p, cin, cout, 1, stride) : null;
  return (x) => {
    const y = c2(tf.relu(c1(x)));
    return tf.relu(tf.add(y, short ? short(x) : x)) as tf.Tensor4D;
  };
}

export function resnet(depth = 20, seed = 1): Model {
  const p = new Params(seed);
  const n = (depth - 2) / 6;
  const stem = convBn(p, 3, 16, 3, 1);
  const blocks: Array<(x: tf.Tensor4D) => tf.Tensor4D> = [];
  let cin = 16;
  for (const [cout, stride] of [[16, 1], [32, 2], [64, 2]]) {
    for (let i = 0; i < n; i++) {
      blocks.push(resBlock(p, cin, cout, i === 0 ? stride : 1));
      cin = cout;
    }
  }
  const fc = dense(p, 64, 10);
  return {
    name: `resnet${depth}`,
    inputShape: [32, 32, 3],
    vars: p.vars,
    forward: (x) => {
      let h = tf.relu(stem(x as tf.Tensor4D));
      for (const b of blocks) h = b(h);
      return fc(tf.mean(h, [1, 2])) as tf.Tensor2D;
    },
  };
}

/** A single residual block model (stride 2 with projection) for tests. */
export function resBlockModel(seed = 1, cin = 8, cout = 16, hw = 8): Model {
  const p = new Params(seed);
  const blk = resBlock(p, cin, cout, 2);
  const fc = dense(p, cout, 10);
  return {
    name: "resblock",
    inputShape: [hw, hw, cin],
    vars: p.vars,
    forward: (x) => fc(tf.mean(blk(x as tf.Tensor4D), [1, 2])) as tf.Tensor2D,
  };
}

export function makeModel(arch: string, seed = 1): Model {
  switch (arch) {
    case "mlp": return mlp(seed);
    case "lenet5": return lenet5(seed);
    case "resnet20": return resnet(20, seed);
    case "resnet56": return resnet(56, seed);
    default: throw new Error(`unknown arch ${arch}`);
  }
}

/** Mean softmax cross-entropy of logits against integer labels. */
export function loss(model: Model, x: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
  const logits = model.forward(x);
  return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), logits) as tf.Scalar;
}
