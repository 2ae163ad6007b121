/**
 * The curvature family (OBD, OBS/WoodFisher) and the engine's `compensate` hook: a method's compensation reaches the
 * model's weights and pruned entries stay zero whatever it returns.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { getMethod } from "../methods/index.js";
import type { PruningMethod } from "../methods/types.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import { DEFAULT_PRUNABLE } from "../src/grid/index.js";
import { pruneStep } from "../src/run/prune-step.js";
import { structuredPruneStep, structuredState } from "../src/run/structured-step.js";
import { stage, type StagedSplit } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel } from "../src/train/model.js";

await initBackend("cpu");

const MNIST: [number, number, number] = [28, 28, 1];
const PRUNABLE = { biases: false, batchNorm: false, classifier: true, firstLayer: true };

function split(n: number, seed: number): StagedSplit {
  const rng = makeRng(seed, "curvature-data");
  return stage({ x: new Float32Array(n * 784).map(() => rng() - 0.5), y: Int32Array.from({ length: n }, (_, i) => i % 10), count: n }, MNIST);
}

/**
 * A method that returns, for every tensor it is shown, w + 1 everywhere and 99 at the entries the new masks prune
 * (which the engine must zero), and records what it was handed.
 */
function shifting(base: PruningMethod): PruningMethod & { seen: Array<{ masks: ReadonlyMap<string, Float32Array>; params: unknown; tensors: string[] }> } {
  const seen: Array<{ masks: ReadonlyMap<string, Float32Array>; params: unknown; tensors: string[] }> = [];
  return {
    ...base,
    name: `${base.name}-shifting`,
    seen,
    compensate(ctx, newMasks, params) {
      seen.push({ masks: newMasks, params, tensors: ctx.tensors.map((t) => t.name) });
      const out = new Map<string, Float32Array>();
      for (const t of ctx.tensors) {
        const m = newMasks.get(t.name);
        if (!m) continue;
        out.set(t.name, t.values.map((w, i) => (m[i] === 0 ? 99 : w + 1)));
      }
      return out;
    },
  };
}

describe("the compensate hook", () => {
  test("a weight method's compensation reaches the model's weights; pruned entries stay zero whatever it returns", async () => {
    const model = createModel(getArch("mlp"), MNIST, 10, 3);
    const before = new Map([...model.params].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
    const masks = new MaskSet();
    const method = shifting(getMethod("global-magnitude"));
    await pruneStep({ model, masks, method, params: { marker: 7 }, prunable: PRUNABLE, density: 0.3, train: split(16, 1), seed: 0, step: 0 });
    assert.equal(method.seen.length, 1, "called once per prune step");
    assert.deepEqual(method.seen[0].params, { marker: 7 });
    for (const name of ["fc1/kernel", "fc2/kernel", "fc3/kernel"]) {
      const mask = masks.values(name)!;
      assert.deepEqual([...method.seen[0].masks.get(name)!], [...mask], `${name}: the hook sees the masks the engine set`);
      const w = model.params.get(name)!.dataSync();
      const w0 = before.get(name)!;
      let pruned = 0;
      for (let i = 0; i < w.length; i++) {
        if (mask[i] === 0) { pruned++; assert.equal(w[i], 0, `${name}[${i}] pruned stays 0`); }
        else assert.equal(w[i], Math.fround(w0[i] + 1), `${name}[${i}] takes the compensated value`);
      }
      assert.ok(pruned > 0);
    }
    const bias = model.params.get("fc1/bias")!.dataSync();
    assert.deepEqual([...bias], [...before.get("fc1/bias")!], "a tensor the method leaves out keeps its values");
    disposeModel(model);
  });

  test("a channel method's compensation reaches the model too, removed channels zero", async () => {
    const model = createModel(getArch("mlp"), MNIST, 10, 3);
    const before = new Map([...model.params].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
    const masks = new MaskSet();
    const method = shifting(getMethod("random-channel"));
    const params = Object.fromEntries(Object.entries(method.params).map(([k, p]) => [k, p.default]));
    await structuredPruneStep({
      model, masks, method, params, prunable: DEFAULT_PRUNABLE, target: { kind: "channel-sparsity", value: 0.5 }, train: split(16, 2), seed: 0, step: 0,
      state: structuredState(model),
    });
    assert.equal(method.seen.length, 1);
    let checked = 0;
    for (const name of masks.names()) {
      if (!method.seen[0].masks.has(name) || !before.has(name)) continue;
      const mask = masks.values(name)!;
      const w = model.params.get(name)!.dataSync();
      const w0 = before.get(name)!;
      const shown = method.seen[0].masks.get(name)!;
      // The method shifts the tensors of its context (the kernels); the others (biases) keep their values.
      const shifted = method.seen[0].tensors.includes(name);
      assert.deepEqual([...shown], [...mask], `${name}: the hook sees the masks the engine set`);
      for (let i = 0; i < w.length; i++) assert.equal(w[i], mask[i] === 0 ? 0 : shifted ? Math.fround(w0[i] + 1) : w0[i], `${name}[${i}]`);
      if (shifted && mask.some((m) => m === 0)) checked++;
    }
    assert.ok(checked > 0, "some tensor lost channels");
    disposeModel(model);
  });

  test("a compensation of the wrong size or not finite is an error naming the method and tensor", async () => {
    for (const [bad, pattern] of [[new Float32Array(3), /returned 3 values for fc1\/kernel/], [null, /non-finite value \(NaN\) at fc1\/kernel\[0\]/]] as const) {
      const model = createModel(getArch("mlp"), MNIST, 10, 3);
      const method: PruningMethod = {
        ...getMethod("global-magnitude"),
        compensate: (ctx) => new Map([["fc1/kernel", bad ?? ctx.tensors[0].values.map(() => NaN)]]),
      };
      await assert.rejects(pruneStep({ model, masks: new MaskSet(), method, params: {}, prunable: PRUNABLE, density: 0.5, train: split(8, 1), seed: 0, step: 0 }), pattern);
      disposeModel(model);
    }
  });
});
