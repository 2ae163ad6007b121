// The one-kernel training step of a plain dense stack (src/backend/dense-step.ts, src/train/fused-step.ts): on the
// native backend, LeNet-300-100 trained for several epochs (a short last batch, steps that count dead units among
// them) ends with the weights, epoch losses, accuracies and dead-unit rates of the taped step, bit for bit,
// with momentum and weight decay, Nesterov, and plain SGD, masks on kernels and biases, layers on the sparse kernels;
// every step hook sees the same steps. The tape keeps the steps the kernel cannot take: a gradient hook, a hook that
// wants this step's gradients, a network that is not a dense stack (those are never fused).
// Skipped (with the reason) when the addon is not built.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { registerNativeBackend } from "../src/backend/native/index.js";
import { DenseStackSgdStep } from "../src/backend/dense-step.js";
import { getArch } from "../src/archs/index.js";
import { makeRng } from "../src/core/rng.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import type { TrainConfig } from "../src/core/types.js";
import { denseStack, fusedStepSettings } from "../src/train/fused-step.js";
import type { TrainHooks } from "../src/train/hooks.js";
import { stage, trainPhase, type StagedSplit } from "../src/train/loop.js";
import { MaskSet, randomKernelMasks } from "../src/train/masks.js";
import { createModel, disposeModel, snapshot } from "../src/train/model.js";

const reg = await registerNativeBackend();
const skip = reg.ok ? false : `native backend unavailable: ${reg.reason}`;
const SHAPE: [number, number, number] = [28, 28, 1];

function split(count: number, seed: number): StagedSplit {
  const rng = makeRng(seed, "dense-step-test");
  return stage({ x: new Float32Array(count * 784).map(() => rng() - 0.5), y: new Int32Array(count).map(() => Math.floor(rng() * 10)), count }, SHAPE);
}

interface Outcome { weights: Map<string, Float32Array>; epochs: Array<[number, number, number]>; steps: number[]; fused: number }

/** Trains a fresh MLP (same seed every call) and returns what a run keeps, and how many steps ran as one kernel. */
async function train(
  enabled: boolean, config: Partial<TrainConfig>, masksOf: (m: ReturnType<typeof createModel>) => MaskSet, hooksOf: TrainHooks | ((m: ReturnType<typeof createModel>) => TrainHooks) = {}, arch = "mlp",
): Promise<Outcome> {
  tf.setBackend("native");
  fusedStepSettings.enabled = enabled;
  const before = tf.memory().numTensors;
  const model = createModel(getArch(arch), SHAPE, 10, 3, "torch-default");
  const masks = masksOf(model);
  const hooks = typeof hooksOf === "function" ? hooksOf(model) : hooksOf;
  const data = split(740, 1);
  const empty = split(0, 2);
  const steps: number[] = [];
  let fused = 0;
  const engine = tf.engine();
  const runKernel = engine.runKernel.bind(engine);
  engine.runKernel = ((name: string, ...rest: unknown[]) => {
    if (name === DenseStackSgdStep) fused++;
    return (runKernel as (...a: unknown[]) => unknown)(name, ...rest);
  }) as typeof engine.runKernel;
  try {
    const r = await trainPhase({
      phase: "finetune", model, train: data, val: empty, seed: 5, selectBestOnVal: false, masks,
      config: { ...DEFAULT_FINETUNE, epochs: 3, batchSize: 128, ...config },
      hooks: { ...hooks, afterStep: (s) => { steps.push(s.globalStep * 1000 + s.epoch); return hooks.afterStep?.(s); } },
    });
    return { weights: snapshot(model), epochs: r.epochs.map((e) => [e.loss, e.trainAcc, e.dnr]), steps, fused };
  } finally {
    engine.runKernel = runKernel;
    fusedStepSettings.enabled = true;
    masks.dispose();
    disposeModel(model);
    data.dispose();
    empty.dispose();
    // Nothing of the phase outlives it (the kernel's outputs are installed or dropped, its buffers are not tensors).
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  }
}

function assertSame(a: Outcome, b: Outcome): void {
  assert.deepEqual([...a.weights.keys()], [...b.weights.keys()]);
  for (const [name, w] of a.weights) assert.ok(Buffer.from(w.buffer).equals(Buffer.from(b.weights.get(name)!.buffer)), `${name} differs`);
  assert.deepEqual(a.epochs, b.epochs);
  assert.deepEqual(a.steps, b.steps);
}

const halfMasks = (m: ReturnType<typeof createModel>) => randomKernelMasks(m.params, 0.5, 7);
/** Masks on every kernel and bias, half of each pruned. */
function allMasks(m: ReturnType<typeof createModel>): MaskSet {
  const masks = new MaskSet();
  for (const [name, v] of m.params) {
    const rng = makeRng(9, name);
    masks.set(name, new Float32Array(v.size).map(() => (rng() < 0.5 ? 1 : 0)), v.shape);
  }
  return masks;
}

test("a dense stack is recognized from its build; anything else is not", { skip }, () => {
  const mlp = createModel(getArch("mlp"), SHAPE, 10, 0);
  assert.deepEqual(denseStack(mlp), [{ name: "fc1", relu: true }, { name: "fc2", relu: true }, { name: "fc3", relu: false }]);
  disposeModel(mlp);
  for (const arch of ["lenet5", "resnet20"]) {
    const m = createModel(getArch(arch), arch === "resnet20" ? [32, 32, 3] : SHAPE, 10, 0);
    assert.equal(denseStack(m), null, arch);
    disposeModel(m);
  }
});

test("one-kernel MLP steps leave the taped steps' weights and epoch records, bit for bit (momentum + decay, Nesterov, plain SGD)", { skip }, async () => {
  const cases: Array<[string, Partial<TrainConfig>, typeof halfMasks]> = [
    ["momentum 0.9, decay 5e-4, kernel masks", { momentum: 0.9, weightDecay: 5e-4, lr: 0.05 }, halfMasks],
    ["nesterov, no decay, kernel and bias masks", { momentum: 0.9, nesterov: true, weightDecay: 0, lr: 0.05 }, allMasks],
    ["no momentum, decay, no masks", { momentum: 0, weightDecay: 1e-3, lr: 0.1 }, () => new MaskSet()],
  ];
  for (const [what, config, masks] of cases) {
    const taped = await train(false, config, masks);
    const fused = await train(true, config, masks);
    assert.equal(taped.fused, 0, what);
    // 6 steps per epoch, 3 epochs (each epoch's first step counts dead units: the epochs' dnr compares them).
    assert.equal(fused.fused, 18, what);
    assertSame(fused, taped);
    assert.ok(fused.epochs.every(([loss, , dnr]) => Number.isFinite(loss) && loss > 0 && dnr > 0 && dnr < 1), what);
  }
});

test("layers sparse enough for the sparse kernels run them in the one-kernel step too, with the taped step's bits", { skip }, async () => {
  const config = { momentum: 0.9, weightDecay: 5e-4, lr: 0.05 };
  // Density 0.1 on every kernel: all three layers sparse.
  const sparse = (m: ReturnType<typeof createModel>) => randomKernelMasks(m.params, 0.9, 7);
  // fc1 sparse (density 0.15), the others dense (0.5 and none).
  const mixed = (m: ReturnType<typeof createModel>) => {
    const masks = new MaskSet();
    for (const [name, density] of [["fc1/kernel", 0.15], ["fc2/kernel", 0.5]] as const) {
      const v = m.params.get(name)!;
      const rng = makeRng(4, name);
      masks.set(name, new Float32Array(v.size).map(() => (rng() < density ? 1 : 0)), v.shape);
    }
    return masks;
  };
  for (const masks of [sparse, mixed]) {
    const fused = await train(true, config, masks);
    assert.equal(fused.fused, 18);
    assertSame(fused, await train(false, config, masks));
  }
});

test("a tensor shared with another (a clone kept by a hook) is updated through new tensors, with the same bits", { skip }, async () => {
  const config = { momentum: 0.9, weightDecay: 5e-4, lr: 0.05 };
  // From step 3 to step 8 a hook holds clones of fc1's kernel and fc3's bias (same data): those steps cannot write in
  // place, and the clones keep the values they were taken with.
  const holding = (m: ReturnType<typeof createModel>): TrainHooks => {
    let held: Array<[tf.Tensor, Float32Array]> = [];
    return {
      afterStep: (st) => {
        if (st.globalStep === 2) held = ["fc1/kernel", "fc3/bias"].map((n) => [tf.clone(m.params.get(n)!), Float32Array.from(m.params.get(n)!.dataSync())]);
        if (st.globalStep === 8) {
          for (const [t, values] of held) assert.deepEqual(t.dataSync(), values, "a held clone changed");
          held.forEach(([t]) => t.dispose());
        }
      },
    };
  };
  const fused = await train(true, config, halfMasks, holding);
  assert.equal(fused.fused, 18);
  assertSame(fused, await train(false, config, halfMasks, holding));
});

test("the tape keeps steps that need it: gradient hooks, gradients wanted, other networks", { skip }, async () => {
  const config = { momentum: 0.9, weightDecay: 5e-4, lr: 0.05 };
  // A hook that sees every step's gradients: the phase stays on the tape.
  let seen = 0;
  const viaHook = await train(true, config, halfMasks, { afterGradients: () => { seen++; } });
  assert.equal(viaHook.fused, 0);
  assert.equal(seen, 18);
  // Gradients wanted at some steps only: those steps taped, the others fused, and the same weights as all taped.
  const wants: TrainHooks = { wantsGradients: (g) => g % 4 === 1 };
  const mixed = await train(true, config, halfMasks, wants);
  assert.equal(mixed.fused, 18 - 5);
  assertSame(mixed, await train(false, config, halfMasks, wants));
  assert.equal((await train(true, config, () => new MaskSet(), {}, "lenet5")).fused, 0);
});
