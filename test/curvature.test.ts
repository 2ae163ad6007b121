/**
 * The curvature family (OBD, OBS/WoodFisher) and the engine's `compensate` hook: a method's compensation reaches the
 * model's weights and pruned entries stay zero whatever it returns. The methods are defined by what their quadratic
 * model predicts on a loss where it is exact: one linear layer with squared loss, whose Hessian is the empirical Fisher
 * of its per-sample gradients (see `linearProblem`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import Database from "better-sqlite3";
import { getMethod } from "../methods/index.js";
import { blockOrder, forEachBlock, obsMemoryBytes, woodburyInverse } from "../methods/obs.js";
import type { PrunableTensor, PruningMethod, ScoreContext } from "../methods/types.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import { DEFAULT_PRUNABLE } from "../src/grid/index.js";
import { pruneStep } from "../src/run/prune-step.js";
import { structuredPruneStep, structuredState } from "../src/run/structured-step.js";
import { stage, type StagedSplit } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel } from "../src/train/model.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

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

/** The inverse of an m×m matrix by Gauss-Jordan elimination with partial pivoting (row-major). */
function directInverse(a: Float64Array, m: number): Float64Array {
  const x = Float64Array.from(a);
  const inv = new Float64Array(m * m);
  for (let i = 0; i < m; i++) inv[i * m + i] = 1;
  for (let c = 0; c < m; c++) {
    let p = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(x[r * m + c]) > Math.abs(x[p * m + c])) p = r;
    for (const t of [x, inv]) for (let k = 0; k < m; k++) [t[c * m + k], t[p * m + k]] = [t[p * m + k], t[c * m + k]];
    const d = x[c * m + c];
    for (const t of [x, inv]) for (let k = 0; k < m; k++) t[c * m + k] /= d;
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const f = x[r * m + c];
      for (const t of [x, inv]) for (let k = 0; k < m; k++) t[r * m + k] -= f * t[c * m + k];
    }
  }
  return inv;
}

/** λI + (1/N)·Σ gₙgₙᵀ, row-major. */
function dampedFisher(grads: readonly Float32Array[], damping: number): Float64Array {
  const m = grads[0].length;
  const f = new Float64Array(m * m);
  for (const g of grads) for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) f[i * m + j] += (g[i] * g[j]) / grads.length;
  for (let i = 0; i < m; i++) f[i * m + i] += damping;
  return f;
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/**
 * One linear layer y = wᵀx with squared loss, at weights w0: each input x_k appears twice, with targets w0ᵀx_k − 1 and
 * w0ᵀx_k + 1, so every residual is ±1. The per-sample gradients are then ±x_k, their mean is 0 (w0 is a minimum) and
 * the empirical Fisher (1/N)·Σ gₙgₙᵀ = (1/N)·Σ x xᵀ is exactly the Hessian. With a term (λ/2)·‖w − w0‖² added (gradient 0
 * at w0, Hessian λI) the Hessian is exactly obs's damped Fisher λI + (1/N)·Σ ggᵀ. The loss is quadratic, so a
 * second-order prediction of a change of w is exact.
 */
function linearProblem(damping: number) {
  // Correlated inputs (float32-exact entries), so the curvature has off-diagonal terms.
  const inputs = [[1, 0.5, 0, -0.25], [0.5, 1, 0.5, 0], [0, -0.5, 1, 0.5], [0.25, 0, 0.5, 1], [1, 1, 0, 0], [0, 0.5, -1, 1], [-0.5, 0.25, 0.5, 0.75]];
  const w0 = Float32Array.of(0.75, -0.5, 1.25, 0.375);
  const d = w0.length;
  const samples = inputs.flatMap((x) => [{ x, r: -1 }, { x, r: 1 }]);
  const grads = samples.map(({ x, r }) => Float32Array.from(x, (v) => r * v));
  const loss = (w: ArrayLike<number>) => {
    let l = 0;
    for (const { x, r } of samples) {
      let e = r;
      for (let i = 0; i < d; i++) e += (w[i] - w0[i]) * x[i];
      l += (e * e) / 2;
    }
    l /= samples.length;
    for (let i = 0; i < d; i++) l += (damping / 2) * (w[i] - w0[i]) ** 2;
    return l;
  };
  const tensor = (): PrunableTensor => ({ name: "fc/kernel", layer: "fc", layerKind: "dense", role: "kernel", shape: [d, 1], values: Float32Array.from(w0), mask: new Float32Array(d).fill(1) });
  const ctx = (method: string, overrides: Record<string, number | string> = {}): ScoreContext => {
    const m = getMethod(method);
    const params = { ...Object.fromEntries(Object.entries(m.params).map(([k, p]) => [k, p.default])), gradients: grads.length, damping, block_size: d, ...overrides };
    return {
      tensors: [tensor()], params, random: Math.random,
      batchGradients: async (spec, names, visit) => {
        assert.deepEqual(names, ["fc/kernel"]);
        assert.equal(spec.mode, "eval");
        for (let b = 0; b < Math.min(grads.length, "batches" in spec ? spec.batches : 0); b++) visit(new Map([["fc/kernel", grads[b]]]), b);
      },
    };
  };
  return { w0, d, grads, loss, ctx, hessian: dampedFisher(grads, damping) };
}

/** The weights after obs prunes the entries of `pruned` (its compensation, then the engine's zeroing). */
async function obsPrune(p: ReturnType<typeof linearProblem>, pruned: readonly number[], overrides: Record<string, number> = {}): Promise<Float32Array> {
  const ctx = p.ctx("obs", overrides);
  const mask = new Float32Array(p.d).fill(1);
  for (const q of pruned) mask[q] = 0;
  const out = await getMethod("obs").compensate!(ctx, new Map([["fc/kernel", mask]]), ctx.params);
  const w = Float32Array.from(out.get("fc/kernel")!);
  for (const q of pruned) w[q] = 0;
  return w;
}

describe("obs and obd on one linear layer with squared loss (the quadratic model is exact)", () => {
  test("the Woodbury inverse equals the direct inverse of λI + (1/N)Σ ggᵀ", () => {
    const rng = makeRng(3, "woodbury");
    const grads = Array.from({ length: 3 }, () => Float32Array.from({ length: 5 }, () => rng() - 0.5));
    for (const damping of [0.1, 1e-3]) {
      const wood = woodburyInverse(5, grads.length, damping, (n) => grads[n]);
      const direct = directInverse(dampedFisher(grads, damping), 5);
      assert.ok(maxAbsDiff(wood, direct) < 1e-9 * Math.max(...direct.map(Math.abs)), `λ = ${damping}: ${maxAbsDiff(wood, direct)}`);
    }
  });

  test("obs's saliency w²/(2[F⁻¹]qq) is the loss increase after pruning that weight with its compensation, and the weight ends at 0", async () => {
    const p = linearProblem(0.01);
    const ctx = p.ctx("obs");
    const scores = (await getMethod("obs").score(ctx)).get("fc/kernel")!;
    const inv = directInverse(p.hessian, p.d);
    const base = p.loss(p.w0);
    for (let q = 0; q < p.d; q++) {
      const predicted = (p.w0[q] ** 2) / (2 * inv[q * p.d + q]);
      assert.ok(Math.abs(scores[q] - predicted) < 1e-6 * predicted, `weight ${q}: score ${scores[q]} vs ${predicted}`);
      const ctxQ = p.ctx("obs");
      const mask = new Float32Array(p.d).fill(1);
      mask[q] = 0;
      const moved = (await getMethod("obs").compensate!(ctxQ, new Map([["fc/kernel", mask]]), ctxQ.params)).get("fc/kernel")!;
      assert.ok(Math.abs(moved[q]) < 1e-6, `the update itself zeroes w_${q}: ${moved[q]}`);
      const increase = p.loss(await obsPrune(p, [q])) - base;
      assert.ok(Math.abs(increase - scores[q]) < 1e-5 * scores[q], `weight ${q}: actual ${increase} vs predicted ${scores[q]}`);
    }
  });

  test("several weights of one block: the joint update's loss increase is ½ w_Qᵀ([F⁻¹]_QQ)⁻¹ w_Q, and WoodFisher's independent sum does worse", async () => {
    const p = linearProblem(0.01);
    const inv = directInverse(p.hessian, p.d);
    const base = p.loss(p.w0);
    for (const Q of [[0, 1], [1, 2, 3]]) {
      const sub = new Float64Array(Q.length * Q.length);
      Q.forEach((a, r) => Q.forEach((b, c) => { sub[r * Q.length + c] = inv[a * p.d + b]; }));
      const subInv = directInverse(sub, Q.length);
      let predicted = 0;
      Q.forEach((a, r) => Q.forEach((b, c) => { predicted += 0.5 * p.w0[a] * subInv[r * Q.length + c] * p.w0[b]; }));
      const joint = p.loss(await obsPrune(p, Q)) - base;
      assert.ok(Math.abs(joint - predicted) < 1e-5 * predicted, `Q = ${Q}: joint ${joint} vs predicted ${predicted}`);
      const independent = p.loss(await obsPrune(p, Q, { joint_max: Q.length - 1 })) - base;
      assert.ok(independent > joint * 1.01, `Q = ${Q}: the independent sum (${independent}) loses more than the joint update (${joint})`);
    }
  });

  test("obd's ½·h_qq·w_q² (empirical Fisher diagonal) is the loss increase only without compensation; with the OBS update it is less, off-diagonal curvature", async () => {
    // No damping term in the loss: its Hessian is then exactly the Fisher whose diagonal obd takes.
    const p = linearProblem(0);
    const obsProblem = linearProblem(1e-9);
    const ctx = p.ctx("obd");
    const scores = (await getMethod("obd").score(ctx)).get("fc/kernel")!;
    const base = p.loss(p.w0);
    for (let q = 0; q < p.d; q++) {
      const zeroed = Float32Array.from(p.w0);
      zeroed[q] = 0;
      const plain = p.loss(zeroed) - base;
      assert.ok(Math.abs(plain - scores[q]) < 1e-6 * scores[q], `weight ${q}: obd predicts ${scores[q]}, zeroing it costs ${plain}`);
      const compensated = p.loss(await obsPrune(obsProblem, [q])) - base;
      assert.ok(compensated < 0.95 * scores[q], `weight ${q}: with the OBS update the loss rises by ${compensated}, well under obd's ${scores[q]}`);
    }
    assert.equal(getMethod("obd").compensate, undefined, "obd moves no weight");
  });
});

describe("obs's blocks", () => {
  test("blocks cover each tensor in consecutive runs of at most block_size; a weight's saliency ignores gradients outside its block", async () => {
    const spans: Array<[number, number]> = [];
    forEachBlock(1000, 64, (s, e) => spans.push([s, e]));
    assert.equal(spans.length, Math.ceil(1000 / 64));
    spans.forEach(([s, e], i) => { assert.equal(s, i * 64); assert.ok(e - s <= 64 && e > s); });
    assert.equal(spans[spans.length - 1][1], 1000);

    const size = 12;
    const rng = makeRng(4, "blocks");
    const values = Float32Array.from({ length: size }, () => rng() - 0.5);
    const grads = Array.from({ length: 6 }, () => Float32Array.from({ length: size }, () => rng() - 0.5));
    const scoresWith = async (gs: Float32Array[], blockSize: number) => {
      const t: PrunableTensor = { name: "fc/kernel", layer: "fc", layerKind: "dense", role: "kernel", shape: [size, 1], values, mask: new Float32Array(size).fill(1) };
      const ctx: ScoreContext = {
        tensors: [t], params: { gradients: gs.length, batch_size: 1, damping: 0.01, block_size: blockSize, joint_max: blockSize, scope: "global" }, random: Math.random,
        batchGradients: async (_spec, _names, visit) => gs.forEach((g, b) => visit(new Map([["fc/kernel", g]]), b)),
      };
      return (await getMethod("obs").score(ctx)).get("fc/kernel")!;
    };
    // Change the gradients of weights 4..11 only: with blocks of 4, weights 0..3 keep their saliencies.
    const changed = grads.map((g) => g.map((v, i) => (i >= 4 ? v * 3 + 0.1 : v)));
    const [a, b] = [await scoresWith(grads, 4), await scoresWith(changed, 4)];
    assert.deepEqual([...a.subarray(0, 4)], [...b.subarray(0, 4)]);
    assert.notDeepEqual([...a.subarray(4)], [...b.subarray(4)]);
    const [c, d] = [await scoresWith(grads, size), await scoresWith(changed, size)];
    assert.notDeepEqual([...c.subarray(0, 4)], [...d.subarray(0, 4)], "one block over the whole tensor couples them");
  });

  test("blocks follow PyTorch's [out, in, kh, kw] flattening, as WoodFisher's: a block holds one neuron's or filter's weights", async () => {
    assert.deepEqual([...blockOrder([3, 2])], [0, 2, 4, 1, 3, 5], "dense [in 3, out 2]: neuron 0's three inputs, then neuron 1's");
    assert.deepEqual([...blockOrder([1, 2, 2, 2])], [0, 4, 2, 6, 1, 5, 3, 7], "conv [kh 1, kw 2, in 2, out 2]: filter 0 (input 0 at both positions, input 1), then filter 1");
    assert.deepEqual([...blockOrder([5])], [0, 1, 2, 3, 4]);
    // Blocks of 3 on a dense [3, 2] kernel: neuron 1's saliencies do not see neuron 0's gradients.
    const values = Float32Array.of(0.5, -1, 0.25, 0.75, -0.5, 1);
    const rng = makeRng(6, "order");
    const grads = Array.from({ length: 4 }, () => Float32Array.from({ length: 6 }, () => rng() - 0.5));
    const score = async (gs: Float32Array[]) => {
      const t: PrunableTensor = { name: "fc/kernel", layer: "fc", layerKind: "dense", role: "kernel", shape: [3, 2], values, mask: new Float32Array(6).fill(1) };
      const ctx: ScoreContext = {
        tensors: [t], params: { gradients: gs.length, batch_size: 1, damping: 0.01, block_size: 3, joint_max: 3, scope: "global" }, random: Math.random,
        batchGradients: async (_spec, _names, visit) => gs.forEach((g, b) => visit(new Map([["fc/kernel", g]]), b)),
      };
      return (await getMethod("obs").score(ctx)).get("fc/kernel")!;
    };
    const a = await score(grads);
    const b = await score(grads.map((g) => g.map((v, i) => (i % 2 === 0 ? v * 2 + 0.3 : v))));
    assert.deepEqual([1, 3, 5].map((i) => a[i]), [1, 3, 5].map((i) => b[i]), "neuron 1 (odd flat indices) unchanged");
    assert.notDeepEqual([0, 2, 4].map((i) => a[i]), [0, 2, 4].map((i) => b[i]));
  });

  test("memory: the block term is 8·B² bytes whatever the model's size; only the kept gradients grow with it (figures printed)", () => {
    const small = obsMemoryBytes(1_000, 32, 64, 64);
    const mlp = obsMemoryBytes(266_200, 32, 64, 64);
    assert.equal(small.block, 8 * 64 * 64);
    assert.equal(mlp.block, small.block);
    assert.equal(mlp.joint, 8 * 64 * 64);
    assert.equal(mlp.gradients, 4 * 32 * 266_200);
    assert.equal(obsMemoryBytes(266_200, 32, 64, 16).joint, 8 * 16 * 16, "the joint update's system is capped by joint_max");
    assert.equal(obsMemoryBytes(10, 32, 64, 64).block, 8 * 10 * 10, "a tensor smaller than a block needs only its own size");
    const mb = (x: number) => (x / 1e6).toFixed(2);
    console.log(`obs memory, LeNet-300-100 (P = 266,200), N = 32, B = 64: gradients ${mb(mlp.gradients)} MB + block ${mb(mlp.block)} MB + joint ${mb(mlp.joint)} MB = ${mb(mlp.total)} MB; full F⁻¹ would be ${mb(8 * 266_200 ** 2)} MB`);
  });
});

describe("obd and obs through the engine and the command line", () => {
  test("bench methods lists both with their hyperparameters and papers", () => {
    const r = bench(["methods", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const methods = JSON.parse(r.stdout) as Array<{ name: string; paper: { authors: string }; params: Record<string, { default: unknown }> }>;
    const obd = methods.find((m) => m.name === "obd")!;
    const obs = methods.find((m) => m.name === "obs")!;
    assert.match(obd.paper.authors, /LeCun/);
    assert.match(obs.paper.authors, /Hassibi/);
    assert.deepEqual(Object.keys(obd.params).sort(), ["batch_size", "gradients", "scope"]);
    assert.deepEqual(Object.keys(obs.params).sort(), ["batch_size", "block_size", "damping", "gradients", "joint_max", "scope"]);
    assert.equal(obs.params.damping.default, 1e-3);
  });

  test("obs through the engine's prune step: the surviving weights move by its update, pruned ones are 0, the density is exact", async () => {
    const model = createModel(getArch("mlp"), MNIST, 10, 4);
    const before = new Map([...model.params].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
    const masks = new MaskSet();
    const method = getMethod("obs");
    const params = { ...Object.fromEntries(Object.entries(method.params).map(([k, p]) => [k, p.default])), gradients: 4, block_size: 16, joint_max: 16 };
    await pruneStep({ model, masks, method, params, prunable: PRUNABLE, density: 0.5, train: split(16, 5), seed: 0, step: 0 });
    let kept = 0;
    let total = 0;
    for (const name of ["fc1/kernel", "fc2/kernel", "fc3/kernel"]) {
      const mask = masks.values(name)!;
      const w = model.params.get(name)!.dataSync();
      const w0 = before.get(name)!;
      let moved = 0;
      for (let i = 0; i < w.length; i++) {
        if (mask[i] === 0) assert.ok(w[i] === 0, `${name}[${i}] pruned is ${w[i]}`);
        else if (w[i] !== w0[i]) moved++;
      }
      assert.ok(moved > 0, `${name}: some surviving weights moved`);
      kept += mask.reduce((a, b) => a + b, 0);
      total += mask.length;
    }
    assert.equal(kept, Math.round(0.5 * total));
    disposeModel(model);
  });

  test("a tiny grid with obd and obs on the MLP finishes and its masks hit the target sparsity", () => {
    const dir = tempDir();
    const grid = writeTinyGrid(dir, "", { methods: "[obd, obs]", targets: "sparsities: [0.9]" });
    const db = join(dir, "r.db");
    const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--jobs", "1", "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = new Database(db, { readonly: true });
    const rows = d.prepare(`SELECT r.method, m.value AS sparsity FROM runs r JOIN metrics m ON m.run_key = r.key AND m.name = 'sparsity' ORDER BY r.method`).all() as Array<{ method: string; sparsity: number }>;
    assert.deepEqual(rows.map((x) => x.method), ["obd", "obs"]);
    for (const x of rows) assert.ok(Math.abs(x.sparsity - 0.9) < 1e-3, `${x.method}: sparsity ${x.sparsity}`);
    d.close();
  });
});
