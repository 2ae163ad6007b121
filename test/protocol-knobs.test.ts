/**
 * The protocol knobs, each by the behaviour that defines it: weight init (model.init), Nesterov SGD, LR warmup,
 * model selection after fine-tuning (select), input normalisation and crop-flip augmentation. (Their grid syntax
 * and errors are in test/grid.test.ts and test/bad-inputs.test.ts; their run keys in test/runkey.test.ts.)
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import type { LoadedDataset } from "../datasets/types.js";
import { getArch } from "../src/archs/index.js";
import { sgdUpdate } from "../src/backend/fused-ops.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import type { FinetuneConfig, TrainConfig } from "../src/core/types.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { cropFlip, type Augmentation } from "../src/train/augment.js";
import { prepareData } from "../src/train/data.js";
import { stage, trainPhase } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, fans, initialValues, snapshot } from "../src/train/model.js";
import { learningRate, makeOptimizer } from "../src/train/optim.js";

before(async () => {
  await initBackend("wasm");
});

function stats(v: Float32Array): { mean: number; variance: number; maxAbs: number } {
  let sum = 0, sq = 0, maxAbs = 0;
  for (const x of v) { sum += x; sq += x * x; maxAbs = Math.max(maxAbs, Math.abs(x)); }
  const mean = sum / v.length;
  return { mean, variance: sq / v.length - mean * mean, maxAbs };
}

describe("model.init", () => {
  test("fans: conv [kh, kw, cin, cout] and dense [in, out], as PyTorch counts them", () => {
    assert.deepEqual(fans([5, 5, 20, 50]), { fanIn: 500, fanOut: 1250 });
    assert.deepEqual(fans([784, 300]), { fanIn: 784, fanOut: 300 });
  });

  test("torch-default: weights and biases in ±1/√fan_in with the uniform's variance; biases nonzero", () => {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0, "torch-default");
    const w = model.params.get("fc1/kernel")!.dataSync() as Float32Array;
    const b = model.params.get("fc1/bias")!.dataSync() as Float32Array;
    const bound = 1 / Math.sqrt(784);
    const s = stats(w);
    assert.ok(s.maxAbs <= bound, `max |w| ${s.maxAbs} > ${bound}`);
    assert.ok(s.maxAbs > 0.99 * bound, "fills the interval");
    assert.ok(Math.abs(s.variance / (bound * bound / 3) - 1) < 0.02, `variance ${s.variance} vs ${bound * bound / 3}`);
    assert.ok(Math.abs(s.mean) < 0.01 * bound);
    assert.equal(b.length, 300);
    assert.ok(b.every((x) => x !== 0 && Math.abs(x) <= bound), "biases nonzero, within ±1/√fan_in");
    assert.ok(stats(b).maxAbs > 0.9 * bound);
    // He-uniform (√6/√784 ≈ 2.45× this bound) is what it replaces as the default.
    assert.ok(stats(model.params.get("fc2/kernel")!.dataSync() as Float32Array).maxAbs <= 1 / Math.sqrt(300));
    disposeModel(model);
  });

  test("he-normal: N(0, 2/fan_out) kernels, zero biases", () => {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0, "he-normal");
    const s = stats(model.params.get("fc1/kernel")!.dataSync() as Float32Array);
    const std = Math.sqrt(2 / 300);
    assert.ok(Math.abs(Math.sqrt(s.variance) / std - 1) < 0.01, `std ${Math.sqrt(s.variance)} vs √(2/fan_out) ${std}`);
    assert.ok(Math.abs(s.mean) < 0.01 * std);
    assert.ok(s.maxAbs > 3 * std, "a normal, not a uniform");
    assert.ok((model.params.get("fc1/bias")!.dataSync() as Float32Array).every((x) => x === 0));
    const conv = initialValues("he-normal", [5, 5, 20, 50], 1, "conv").kernel;
    assert.ok(Math.abs(Math.sqrt(stats(conv).variance) / Math.sqrt(2 / 1250) - 1) < 0.03, "conv fan_out = kh·kw·cout");
    disposeModel(model);
  });

  test("he-uniform is the init from before the choice existed, value for value; glorot-uniform's bound", () => {
    const { kernel, bias } = initialValues("he-uniform", [784, 300], 7, "fc1");
    const rng = makeRng(7, "init:fc1");
    const limit = Math.sqrt(6 / 784);
    assert.deepEqual(kernel, Float32Array.from({ length: 784 * 300 }, () => (2 * rng() - 1) * limit));
    assert.equal(bias, null);
    const g = initialValues("glorot-uniform", [784, 300], 7, "fc1").kernel;
    const gb = Math.sqrt(6 / (784 + 300));
    assert.ok(stats(g).maxAbs <= gb && stats(g).maxAbs > 0.99 * gb);
  });

  test("batch norm stays gamma 1, beta 0 under every init", () => {
    for (const init of ["torch-default", "he-normal"] as const) {
      const model = createModel(getArch("resnet20"), [32, 32, 3], 10, 0, init);
      for (const [name, v] of model.params) {
        if (name.endsWith("/gamma")) assert.ok((v.dataSync() as Float32Array).every((x) => x === 1), name);
        if (name.endsWith("/beta")) assert.ok((v.dataSync() as Float32Array).every((x) => x === 0), name);
      }
      disposeModel(model);
    }
  });
});

describe("nesterov", () => {
  /** PyTorch's SGD(nesterov=True) with L2 decay, then the mask, in float64. */
  function reference(w: number[], g: number[], v: number[], mask: number[], lr: number, mom: number, wd: number) {
    const d = w.map((wi, i) => g[i] * mask[i] + wd * wi);
    const v2 = v.map((vi, i) => mom * vi + d[i]);
    const w2 = w.map((wi, i) => (wi - lr * (d[i] + mom * v2[i])) * mask[i]);
    return { w2, v2 };
  }

  for (const backend of ["wasm", "cpu", "native"] as const) {
    test(`the fused step equals the hand-computed update, and masked weights stay exactly 0 (${backend})`, async (t) => {
      try {
        await initBackend(backend);
      } catch (e) {
        t.skip(`${backend} backend not available: ${(e as Error).message.split("\n")[0]}`);
        return;
      }
      try {
        const w0 = [1, 2, 0, 0.5, -1.5], g = [0.1, -0.2, 0.3, 0.4, -0.05], v0 = [0.5, 0.5, 0, 0, -0.25], mask = [1, 1, 0, 1, 1];
        const [lr, mom, wd] = [0.1, 0.9, 0.01];
        const w = tf.variable(tf.tensor1d(w0)), v = tf.variable(tf.tensor1d(v0));
        const gt = tf.tensor1d(g), mt = tf.tensor1d(mask);
        let ref = { w2: w0, v2: v0 };
        for (let step = 0; step < 3; step++) {
          sgdUpdate(w, gt, v, mt, { lr, momentum: mom, weightDecay: wd, nesterov: true });
          ref = reference(ref.w2, g, ref.v2, mask, lr, mom, wd);
          const got = w.dataSync(), gotV = v.dataSync();
          ref.w2.forEach((x, i) => assert.ok(Math.abs(got[i] - x) < 1e-6, `step ${step} w[${i}] ${got[i]} vs ${x}`));
          ref.v2.forEach((x, i) => assert.ok(Math.abs(gotV[i] - x) < 1e-6, `step ${step} v[${i}] ${gotV[i]} vs ${x}`));
          assert.ok(Object.is(got[2], 0) && gotV[2] === 0, "the pruned weight and its velocity are exactly 0");
        }
        // Not the plain momentum step.
        const plain = tf.variable(tf.tensor1d(w0)), pv = tf.variable(tf.tensor1d(v0));
        sgdUpdate(plain, gt, pv, mt, { lr, momentum: mom, weightDecay: wd });
        assert.ok(Math.abs(plain.dataSync()[0] - reference(w0, g, v0, mask, lr, mom, wd).w2[0]) > 1e-3);
        for (const x of [w, v, gt, mt, plain, pv]) x.dispose();
      } finally {
        await initBackend("wasm");
      }
    });
  }

  test("refused with adam and without momentum", () => {
    assert.throws(() => makeOptimizer({ ...DEFAULT_FINETUNE, optimizer: "adam", nesterov: true }), /SGD setting/);
    assert.throws(() => makeOptimizer({ ...DEFAULT_FINETUNE, momentum: 0, nesterov: true }), /momentum > 0/);
  });
});

describe("warmup_epochs", () => {
  test("linear from 0, per step: lr·(k/N) at the start of epoch k, the schedule's value from epoch N on", () => {
    const c: TrainConfig = { ...DEFAULT_FINETUNE, schedule: "constant", lr: 0.2, epochs: 10, warmupEpochs: 4 };
    for (let k = 0; k <= 4; k++) assert.ok(Math.abs(learningRate(c, k) - 0.2 * (k / 4)) < 1e-15, `epoch ${k}`);
    // Step 3 of 10 in epoch 1: position 1.3.
    assert.ok(Math.abs(learningRate(c, 1 + 3 / 10) - 0.2 * (1.3 / 4)) < 1e-15);
    assert.equal(learningRate(c, 7.5), 0.2);
    assert.equal(learningRate({ ...c, warmupEpochs: 0 }, 0), 0.2, "no warmup: full LR from the first step");
    const cos = { ...c, schedule: "cosine" as const };
    assert.ok(Math.abs(learningRate(cos, 2) - 0.5 * learningRate({ ...cos, warmupEpochs: 0 }, 2)) < 1e-15, "multiplies the schedule");
  });

  test("the training loop steps at those rates (the LR of each epoch's last step is recorded)", async () => {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0);
    const rng = makeRng(3, "x");
    const n = 64;
    const train = stage({ x: new Float32Array(n * 784).map(() => rng() - 0.5), y: new Int32Array(n).map((_, i) => i % 10), count: n }, [28, 28, 1]);
    const config: TrainConfig = { ...DEFAULT_FINETUNE, schedule: "constant", lr: 0.1, epochs: 3, batchSize: 16, warmupEpochs: 2 };
    const r = await trainPhase({ phase: "finetune", model, train, val: train, config, masks: new MaskSet(), seed: 0, selectBestOnVal: false });
    // 4 steps an epoch: the last step of epoch e is at position e + 3/4.
    assert.deepEqual(r.epochs.map((e) => e.lr), [0.1 * (0.75 / 2), 0.1 * (1.75 / 2), 0.1]);
    train.dispose(); disposeModel(model);
  });
});

describe("finetune.select", () => {
  test("final keeps the last epoch's weights; best-val restores the best validation epoch's", async () => {
    const rng = makeRng(11, "x");
    const make = (n: number) => stage({ x: new Float32Array(n * 784).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, [28, 28, 1]);
    const train = make(128), val = make(64);
    const config: FinetuneConfig = { ...DEFAULT_FINETUNE, epochs: 5, batchSize: 32, lr: 0.05 };
    const run = async (selectBestOnVal: boolean) => {
      const model = createModel(getArch("mlp"), [28, 28, 1], 10, 1);
      const perEpoch: Map<string, Float32Array>[] = [];
      const r = await trainPhase({ phase: "finetune", model, train, val, config, masks: new MaskSet(), seed: 1, selectBestOnVal, hooks: { afterEpoch: () => { perEpoch.push(snapshot(model)); } } });
      const final = snapshot(model);
      disposeModel(model);
      return { r, perEpoch, final };
    };
    const last = await run(false);
    assert.equal(last.r.bestEpoch, 4);
    for (const [name, w] of last.final) assert.deepEqual(w, last.perEpoch[4].get(name), name);
    const best = await run(true);
    const accs = best.r.epochs.map((e) => e.valAcc);
    const bestEpoch = accs.indexOf(Math.max(...accs));
    // The fixture is chosen so that the best validation epoch is not the last: the two selections differ.
    assert.notEqual(bestEpoch, 4, `val accuracies ${accs}`);
    assert.equal(best.r.bestEpoch, bestEpoch);
    for (const [name, w] of best.final) assert.deepEqual(w, best.perEpoch[bestEpoch].get(name), name);
    assert.notDeepEqual(best.final.get("fc1/kernel"), last.final.get("fc1/kernel"));
    train.dispose(); val.dispose();
  });
});

/** A 2-channel 4×4 dataset with known pixels: 20 training and 10 test images of 2 classes. */
function tinyDataset(): LoadedDataset {
  const split = (count: number, offset: number) => ({
    pixels: Uint8Array.from({ length: count * 32 }, (_, i) => (i * 7 + offset) % 256),
    labels: Uint8Array.from({ length: count }, (_, i) => i % 2),
    count,
  });
  return {
    name: "tiny", inputShape: [4, 4, 2], numClasses: 2, classNames: ["a", "b"], train: split(20, 0), test: split(10, 3),
    mean: [0.4, 0.6], std: [0.2, 0.3], fingerprint: "x", source: "memory",
  };
}

describe("data.normalize", () => {
  test("explicit mean/std give (x − mean)/std per channel; none gives x; dataset the dataset's own statistics", () => {
    const ds = tinyDataset();
    const base = { valFraction: 0, trainSubset: null, testSubset: null, augment: "none" as const };
    const check = (normalize: Parameters<typeof prepareData>[1]["normalize"], mean: number[], std: number[]) => {
      const d = prepareData(ds, { ...base, normalize });
      // With no validation split and no subset, the test split keeps the file's order.
      for (let k = 0; k < d.test.x.length; k++) {
        const c = k % 2;
        assert.equal(d.test.x[k], Math.fround((ds.test.pixels[k] / 255 - mean[c]) / std[c]), `${JSON.stringify(normalize)} value ${k}`);
      }
    };
    check({ mean: [0.1307, 0.5], std: [0.3081, 0.25] }, [0.1307, 0.5], [0.3081, 0.25]);
    check("none", [0, 0], [1, 1]);
    check("dataset", ds.mean, ds.std);
    assert.throws(() => prepareData(ds, { ...base, normalize: { mean: [0.5], std: [0.5] } }), /1 means and 1 stds for 2 channels/);
  });
});

describe("data.augment: crop-flip", () => {
  const aug: Augmentation = { kind: "crop-flip", pad: 4, fill: Float32Array.of(-9, -8) };
  const shape = [6, 5, 2] as const;
  const images = Float32Array.from({ length: 3 * 60 }, (_, i) => i);

  test("a crop at a known offset, and a flip, by hand", () => {
    // Draws per image: dy, dx (floor(r·9) − 4), flip (r < 0.5). Offsets +1 row, −2 columns, flipped.
    const draws = [5 / 9 + 0.01, 2 / 9 + 0.01, 0.2];
    const out = cropFlip(images.subarray(0, 60), 1, shape, aug, () => draws.shift()!);
    const at = (a: Float32Array, y: number, x: number, c: number) => a[(y * 5 + x) * 2 + c];
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 5; x++) {
        const xc = 4 - x, sy = y + 1, sx = xc - 2;
        for (let c = 0; c < 2; c++) {
          const want = sy < 6 && sx >= 0 ? at(images, sy, sx, c) : aug.fill[c];
          assert.equal(at(out, y, x, c), want, `(${y}, ${x}, ${c})`);
        }
      }
    }
  });

  test("deterministic per seed, differs across seeds, keeps the shape", () => {
    const a = cropFlip(images, 3, shape, aug, makeRng(1, "augment"));
    const b = cropFlip(images, 3, shape, aug, makeRng(1, "augment"));
    const c = cropFlip(images, 3, shape, aug, makeRng(2, "augment"));
    assert.equal(a.length, images.length);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.notDeepEqual(a, images);
  });

  test("only training batches: the prepared splits are unchanged, only train carries it, and training uses it", async () => {
    const ds = tinyDataset();
    const base = { valFraction: 0.2, trainSubset: null, testSubset: null, normalize: "dataset" as const };
    const plain = prepareData(ds, { ...base, augment: "none" });
    const augmented = prepareData(ds, { ...base, augment: "crop-flip" });
    for (const split of ["train", "val", "test"] as const) assert.deepEqual(augmented[split].x, plain[split].x, split);
    assert.equal(plain.train.augment, undefined);
    assert.equal(augmented.val.augment, undefined);
    assert.equal(augmented.test.augment, undefined);
    assert.deepEqual(augmented.train.augment?.fill, Float32Array.of((0 - 0.4) / 0.2, (0 - 0.6) / 0.3), "pads with a black pixel");

    // Training on 28×28: the same seed gives the same weights; augmentation changes them.
    const rng = makeRng(4, "x");
    const x = new Float32Array(64 * 784).map(() => rng() - 0.5);
    const y = new Int32Array(64).map((_, i) => i % 10);
    const train = async (augment: Augmentation | undefined) => {
      const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0);
      const split = stage({ x, y, count: 64, augment }, [28, 28, 1]);
      await trainPhase({ phase: "pretrain", model, train: split, val: split, config: { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 32 }, masks: new MaskSet(), seed: 0, selectBestOnVal: false });
      const w = model.params.get("fc1/kernel")!.dataSync().slice();
      split.dispose(); disposeModel(model);
      return w;
    };
    const cf: Augmentation = { kind: "crop-flip", pad: 4, fill: Float32Array.of(0) };
    const [a, b, none] = [await train(cf), await train(cf), await train(undefined)];
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, none);
  });
});
