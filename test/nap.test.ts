/**
 * NAP (methods/nap.ts) and the K-FAC capability it stands on (src/run/kfac-factors.ts): the factors are E[aaᵀ] and
 * E[ggᵀ] as computed by hand; on a quadratic loss whose Hessian is exactly A ⊗ G, the predicted ΔL is the real loss
 * increase after compensation, for a weight and for an output channel; rescaling consecutive ReLU layers leaves
 * NAP's masks alone (not magnitude's); and both modes run through the engine to their target.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import Database from "better-sqlite3";
import { getMethod } from "../methods/index.js";
import { dampedCurvature, nap, rowSaliency, weightMatrix } from "../methods/nap.js";
import { napChannel } from "../methods/nap-channel.js";
import type { ChannelGroupView, KfacFactors, PrunableTensor, ScoreContext } from "../methods/types.js";
import { defineArch } from "../src/archs/ops.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import type { HyperValue } from "../src/core/types.js";
import { allocateMasks } from "../src/prune/allocate.js";
import { scoreContext } from "../src/run/score-context.js";
import { stage } from "../src/train/loop.js";
import { createModel, disposeModel, type Model } from "../src/train/model.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

await initBackend("cpu");

function defaults(name: string, overrides: Record<string, HyperValue> = {}): Record<string, HyperValue> {
  return { ...Object.fromEntries(Object.entries(getMethod(name).params).map(([k, p]) => [k, p.default])), ...overrides };
}

const values = (model: Model, name: string) => (model.params.get(name)!.dataSync() as Float32Array).slice();

function tensorsOf(model: Model, names: string[]): PrunableTensor[] {
  return names.map((name) => {
    const v = model.params.get(name)!;
    const [layer, role] = name.split("/");
    return { name, layer, layerKind: v.shape.length === 4 ? "conv" : "dense", role, shape: v.shape, values: values(model, name), mask: new Float32Array(v.size).fill(1) };
  });
}

function meanTrace(m: Float64Array, n: number): number {
  let t = 0;
  for (let i = 0; i < n; i++) t += m[i * n + i];
  return t / n;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / scale;
}

// conv 3×3, stride 2, "same" on 6×6 (TF pads 0 above/left and 1 below/right there), ReLU, then a dense classifier.
const H = 6, C = 2, F = 3, K = 3, S = 2, OH = 3, CLASSES = 4;
const convNet = defineArch({
  name: "kfac-conv", summary: "test network", citation: "none", inputShape: null, numClasses: null, widths: { conv: F },
  build(ops, x, numClasses, w) {
    const h = ops.conv("conv", x, { filters: w.n("conv"), kernel: K, stride: S, padding: "same", activation: "relu" });
    return ops.dense("fc", ops.flatten(h), { units: numClasses });
  },
});

test("K-FAC factors of a conv and a dense layer are E[aaᵀ] (patches, bias column) and E[ggᵀ] (output gradients, summed over positions) by hand", async () => {
  const N = 5;
  const rng = makeRng(3, "kfac-data");
  const X = new Float32Array(N * H * H * C).map(() => rng() * 2 - 1);
  const Y = Int32Array.from({ length: N }, (_, i) => i % CLASSES);
  const model = createModel(convNet, [H, H, C], CLASSES, 1);
  const split = stage({ x: X, y: Y, count: N }, [H, H, C]);
  const ctx = scoreContext({ method: nap, params: defaults("nap"), tensors: [], model, train: split, seed: 0 });
  // Batches of 2, 2 and 1: every image counts once whatever batch it falls in.
  const got = await ctx.kfacFactors!({ batches: 3, batchSize: 2, mode: "eval" });
  const kc = values(model, "conv/kernel"), bc = values(model, "conv/bias"), kd = values(model, "fc/kernel"), bd = values(model, "fc/bias");
  const T = OH * OH, DC = K * K * C + 1, DD = T * F + 1;
  const A1 = new Float64Array(DC * DC), G1 = new Float64Array(F * F), A2 = new Float64Array(DD * DD), G2 = new Float64Array(CLASSES * CLASSES);
  const S1 = new Float64Array(F), S2 = new Float64Array(CLASSES);
  const px = (n: number, r: number, c: number, ch: number) => (r < 0 || c < 0 || r >= H || c >= H ? 0 : X[((n * H + r) * H + c) * C + ch]);
  for (let n = 0; n < N; n++) {
    const pre = new Float64Array(T * F);
    const h = new Float64Array(DD);
    for (let t = 0; t < T; t++) {
      const [oy, ox] = [Math.floor(t / OH), t % OH];
      const a = new Float64Array(DC);
      for (let ky = 0; ky < K; ky++) for (let kx = 0; kx < K; kx++) for (let ch = 0; ch < C; ch++) a[(ky * K + kx) * C + ch] = px(n, oy * S + ky, ox * S + kx, ch);
      a[DC - 1] = 1;
      for (let i = 0; i < DC; i++) for (let j = 0; j < DC; j++) A1[i * DC + j] += a[i] * a[j] / (N * T);
      for (let f = 0; f < F; f++) {
        let s = bc[f];
        for (let j = 0; j < DC - 1; j++) s += a[j] * kc[j * F + f];
        pre[t * F + f] = s;
        S1[f] += s * s / (N * T);
        h[t * F + f] = Math.max(0, s);
      }
    }
    h[DD - 1] = 1;
    for (let i = 0; i < DD; i++) for (let j = 0; j < DD; j++) A2[i * DD + j] += h[i] * h[j] / N;
    const z = Array.from({ length: CLASSES }, (_, k) => bd[k] + Array.from({ length: DD - 1 }, (_, j) => h[j] * kd[j * CLASSES + k]).reduce((x, y) => x + y, 0));
    z.forEach((v, k) => { S2[k] += v * v / N; });
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const sum = e.reduce((x, y) => x + y, 0);
    const g = e.map((v, k) => v / sum - (k === Y[n] ? 1 : 0));
    for (let i = 0; i < CLASSES; i++) for (let j = 0; j < CLASSES; j++) G2[i * CLASSES + j] += g[i] * g[j] / N;
    for (let t = 0; t < T; t++) {
      const gc = Array.from({ length: F }, (_, f) => (pre[t * F + f] > 0 ? g.reduce((s, gk, k) => s + gk * kd[(t * F + f) * CLASSES + k], 0) : 0));
      for (let i = 0; i < F; i++) for (let j = 0; j < F; j++) G1[i * F + j] += gc[i] * gc[j] / N;
    }
  }
  const conv = got.get("conv")!, fc = got.get("fc")!;
  assert.deepEqual([conv.inDim, conv.outDim, conv.positions, conv.hasBias], [DC, F, T, true]);
  assert.deepEqual([fc.inDim, fc.outDim, fc.positions, fc.hasBias], [DD, CLASSES, 1, true]);
  assert.ok(maxRelDiff(conv.A, A1) < 1e-5, `conv A off by ${maxRelDiff(conv.A, A1)}`);
  assert.ok(maxRelDiff(conv.G, G1) < 1e-4, `conv G off by ${maxRelDiff(conv.G, G1)}`);
  assert.ok(maxRelDiff(fc.A, A2) < 1e-5, `dense A off by ${maxRelDiff(fc.A, A2)}`);
  assert.ok(maxRelDiff(fc.G, G2) < 1e-5, `dense G off by ${maxRelDiff(fc.G, G2)}`);
  assert.ok(maxRelDiff(conv.outputMeanSquare, S1) < 1e-5 && maxRelDiff(fc.outputMeanSquare, S2) < 1e-5, "mean squares of the outputs before ReLU");
  assert.ok(G1.some((v) => v !== 0) && A1[0] !== 0, "not vacuous");
  assert.ok(Math.abs(conv.traceA - meanTrace(A1, DC) * DC) < 1e-5 * conv.traceA && Math.abs(fc.traceA - meanTrace(A2, DD) * DD) < 1e-5 * fc.traceA);
  // Only A's trace: the same G, trace and mean squares, no matrix.
  const light = await ctx.kfacFactors!({ batches: 3, batchSize: 2, mode: "eval" }, { input: "trace" });
  for (const [name, full] of [["conv", conv], ["fc", fc]] as const) {
    const l = light.get(name)!;
    assert.equal(l.A.length, 0);
    assert.ok(Math.abs(l.traceA - full.traceA) < 1e-6 * full.traceA && maxRelDiff(l.G, full.G) < 1e-6 && maxRelDiff(l.outputMeanSquare, full.outputMeanSquare) < 1e-6, name);
  }
  // The true Fisher's labels are drawn from the model: another G, the same A.
  const sampled = await ctx.kfacFactors!({ batches: 3, batchSize: 2, mode: "eval" }, { labels: "sampled", layers: ["fc"] });
  assert.deepEqual([...sampled.keys()], ["fc"], "only the layers asked for");
  assert.ok(maxRelDiff(sampled.get("fc")!.A, A2) < 1e-5);
  assert.ok(maxRelDiff(sampled.get("fc")!.G, G2) > 1e-3);
  split.dispose(); disposeModel(model);
});

/**
 * One linear layer y = W·x + b under L = (1/N) Σ ½ (y − t)ᵀ M (y − t): its Hessian is exactly A ⊗ M (A = E[[x,1][x,1]ᵀ]),
 * the K-FAC form with G = M (the Fisher of the Gaussian model with precision M). The targets are built so that the
 * float32 weights are the exact minimum (residuals orthogonal to the inputs): there the quadratic model is the loss.
 */
function quadraticLayer() {
  const N = 30, IN = 4, OUT = 3, D = IN + 1;
  const rng = makeRng(11, "quadratic");
  const x = Array.from({ length: N }, () => [...Array.from({ length: IN }, () => rng() * 2 - 1), 1]);
  const kernel = new Float32Array(IN * OUT).map(() => rng() * 2 - 1);
  const bias = new Float32Array(OUT).map(() => rng() - 0.5);
  const W = (k: Float32Array, b: Float32Array) => Array.from({ length: OUT }, (_, i) => [...Array.from({ length: IN }, (_, j) => k[j * OUT + i]), b[i]]);
  const A = new Float64Array(D * D);
  for (const a of x) for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) A[i * D + j] += a[i] * a[j] / N;
  const M = Float64Array.from([2, 0.5, -0.3, 0.5, 1.5, 0.2, -0.3, 0.2, 1]);
  // Residuals r with Σ_n r_n x_nᵀ = 0: random, minus their projection on the span of x's columns (Gram-Schmidt).
  const basis: number[][] = [];
  for (let j = 0; j < D; j++) {
    const v = x.map((a) => a[j]);
    for (const b of basis) { const p = v.reduce((s, vi, n) => s + vi * b[n], 0); v.forEach((_, n) => { v[n] -= p * b[n]; }); }
    const norm = Math.hypot(...v);
    basis.push(v.map((vi) => vi / norm));
  }
  const R = Array.from({ length: N }, () => Array.from({ length: OUT }, () => rng() - 0.5));
  for (let o = 0; o < OUT; o++) for (const b of basis) {
    const p = R.reduce((s, r, n) => s + r[o] * b[n], 0);
    R.forEach((r, n) => { r[o] -= p * b[n]; });
  }
  const w0 = W(kernel, bias);
  const targets = x.map((a, n) => w0.map((row, i) => row.reduce((s, v, j) => s + v * a[j], 0) - R[n][i]));
  const loss = (k: Float32Array, b: Float32Array) => {
    const w = W(k, b);
    let l = 0;
    x.forEach((a, n) => {
      const r = w.map((row, i) => row.reduce((s, v, j) => s + v * a[j], 0) - targets[n][i]);
      for (let i = 0; i < OUT; i++) for (let j = 0; j < OUT; j++) l += 0.5 * r[i] * M[i * OUT + j] * r[j] / N;
    });
    return l;
  };
  // What the engine measures as each output's mean square, E[(W·a)²], here from the inputs.
  const w0rows = W(kernel, bias);
  const outputMeanSquare = Float64Array.from(w0rows, (row) => x.reduce((s, a) => s + row.reduce((t, v, j) => t + v * a[j], 0) ** 2, 0) / N);
  const factors: KfacFactors = { inDim: D, outDim: OUT, hasBias: true, positions: 1, A, traceA: meanTrace(A, D) * D, G: M, outputMeanSquare };
  const tensors: PrunableTensor[] = [
    { name: "fc/kernel", layer: "fc", layerKind: "dense", role: "kernel", shape: [IN, OUT], values: kernel, mask: new Float32Array(IN * OUT).fill(1) },
    { name: "fc/bias", layer: "fc", layerKind: "dense", role: "bias", shape: [OUT], values: bias, mask: new Float32Array(OUT).fill(1) },
  ];
  const ctx = (params: Record<string, HyperValue>, groups?: ChannelGroupView[]): ScoreContext => ({
    tensors, params, random: () => 0.5, groups,
    kfacFactors: async () => new Map([["fc", factors]]),
  });
  return { IN, OUT, kernel, bias, loss, tensors, ctx, factors };
}

test("on a quadratic loss with Hessian A ⊗ G, nap's ΔL of a weight is the real loss increase after its compensation", async () => {
  const q = quadraticLayer();
  const params = defaults("nap", { damping: 0 });
  const ctx = q.ctx(params);
  const scores = await nap.score(ctx);
  const base = q.loss(q.kernel, q.bias);
  let checked = 0;
  for (const t of q.tensors) {
    for (let k = 0; k < t.values.length; k++) {
      const masks = new Map(q.tensors.map((u) => [u.name, new Float32Array(u.values.length).fill(1)]));
      masks.get(t.name)![k] = 0;
      const out = await nap.compensate!(ctx, masks, params);
      // The engine zeroes the pruned entry whatever is returned.
      const next = (name: string) => out.get(name)!.map((v, i) => v * masks.get(name)![i]);
      const actual = q.loss(next("fc/kernel"), next("fc/bias")) - base;
      const predicted = scores.get(t.name)![k];
      assert.ok(Math.abs(actual - predicted) <= 1e-4 * predicted + 1e-9, `${t.name}[${k}]: predicted ${predicted}, actual ${actual}`);
      // Without compensation the same weight costs more (the update is what makes it cheap).
      const bare = q.loss(q.tensors[0].values.map((v, i) => v * masks.get("fc/kernel")![i]), q.tensors[1].values.map((v, i) => v * masks.get("fc/bias")![i])) - base;
      assert.ok(bare > actual * (1 + 1e-6), `${t.name}[${k}]: ${bare} without compensation, ${actual} with`);
      checked++;
    }
  }
  assert.equal(checked, q.IN * q.OUT + q.OUT);
  assert.deepEqual(await nap.compensate!(ctx, new Map(), defaults("nap", { compensate: false })), new Map(), "compensate: false moves nothing");
});

test("on the same loss, nap-channel's ΔL of an output unit (its row and bias) is the real loss increase after its joint compensation", async () => {
  const q = quadraticLayer();
  const units = Array.from({ length: q.OUT }, (_, i) => [i]);
  const group: ChannelGroupView = {
    name: "fc", producers: ["fc"], size: q.OUT, alive: new Float32Array(q.OUT).fill(1),
    members: [
      { tensor: "fc/kernel", layer: "fc", layerKind: "dense", role: "kernel", axis: 1, side: "out", shape: [q.IN, q.OUT], values: q.kernel, indices: units },
      { tensor: "fc/bias", layer: "fc", layerKind: "dense", role: "bias", axis: 0, side: "out", shape: [q.OUT], values: q.bias, indices: units },
    ],
  };
  const params = defaults("nap-channel", { damping: 0, cap: 1 });
  const ctx = q.ctx(params, [group]);
  const scores = (await napChannel.score(ctx)).get("fc")!;
  const base = q.loss(q.kernel, q.bias);
  for (let u = 0; u < q.OUT; u++) {
    const km = q.kernel.map((_, k) => (k % q.OUT === u ? 0 : 1));
    const bm = q.bias.map((_, i) => (i === u ? 0 : 1));
    const out = await napChannel.compensate!(ctx, new Map([["fc/kernel", km], ["fc/bias", bm]]), params);
    const k = out.get("fc/kernel")!.map((v, i) => v * km[i]);
    const b = out.get("fc/bias")!.map((v, i) => v * bm[i]);
    const actual = q.loss(k, b) - base;
    assert.ok(Math.abs(actual - scores[u]) <= 1e-4 * scores[u], `unit ${u}: predicted ${scores[u]}, actual ${actual}`);
    const bare = q.loss(q.kernel.map((v, i) => v * km[i]), q.bias.map((v, i) => v * bm[i])) - base;
    assert.ok(bare > actual * (1 + 1e-6), `unit ${u}: ${bare} without compensation, ${actual} with`);
  }
  // Two units of the layer at once: the joint ΔL (the W_Q·A·W_Qᵀ path) is the loss after the joint update.
  const joint = rowSaliency(dampedCurvature(q.factors, 0), weightMatrix(q.factors, q.kernel, q.bias), [0, 2]);
  const km = q.kernel.map((_, k) => (k % q.OUT === 1 ? 1 : 0));
  const bm = q.bias.map((_, i) => (i === 1 ? 1 : 0));
  const out = await napChannel.compensate!(ctx, new Map([["fc/kernel", km], ["fc/bias", bm]]), params);
  const both = q.loss(out.get("fc/kernel")!.map((v, i) => v * km[i]), out.get("fc/bias")!.map((v, i) => v * bm[i])) - base;
  assert.ok(Math.abs(both - joint) <= 1e-4 * joint, `units 0 and 2: predicted ${joint}, actual ${both}`);
  assert.ok(Math.abs(joint - scores[0] - scores[2]) > 1e-3 * joint, "not the sum of the single ΔL (G couples the rows)");
  // With a cap, the units beyond floor(cap × live) of a group rank after everything else; the order within is ΔL's.
  const capped = (await napChannel.score(q.ctx(defaults("nap-channel", { damping: 0, cap: 0.5 }), [group]))).get("fc")!;
  const byScore = [...scores.keys()].sort((a, b) => scores[a] - scores[b]);
  assert.deepEqual([...capped.keys()].sort((a, b) => capped[a] - capped[b]), byScore);
});

// A small ReLU network whose factors are all well conditioned on a few hundred images, so damping can be ~0.
const reluNet = defineArch({
  name: "kfac-relu", summary: "test network", citation: "none", inputShape: null, numClasses: null, widths: { fc1: 8, fc2: 6 },
  build(ops, x, numClasses, w) {
    const h1 = ops.dense("fc1", ops.flatten(x), { units: w.n("fc1"), activation: "relu" });
    const h2 = ops.dense("fc2", h1, { units: w.n("fc2"), activation: "relu" });
    return ops.dense("fc3", h2, { units: numClasses });
  },
});

test("rescaling consecutive ReLU layers (fc1 × s, fc2 ÷ s) changes global magnitude's masks but not nap's", async () => {
  const N = 400, SHAPE: [number, number, number] = [2, 3, 1];
  const rng = makeRng(5, "rescale");
  const split = stage({ x: new Float32Array(N * 6).map(() => rng() * 2 - 1), y: Int32Array.from({ length: N }, () => Math.floor(rng() * 3)), count: N }, SHAPE);
  const names = ["fc1/kernel", "fc2/kernel", "fc3/kernel"];
  const params = defaults("nap", { damping: 1e-12, batches: 4, batch_size: 100 });
  const masksOf = async (model: Model) => {
    const tensors = tensorsOf(model, names);
    const napScores = await nap.score(scoreContext({ method: nap, params, tensors, model, train: split, seed: 0 }));
    const magScores = await getMethod("global-magnitude").score(scoreContext({ method: getMethod("global-magnitude"), params: {}, tensors, model, train: split, seed: 0 }));
    const masks = (s: Map<string, Float32Array>) => allocateMasks(tensors.map((t) => ({ name: t.name, scores: s.get(t.name)!, mask: t.mask, shape: t.shape })), 0.4, "global");
    return { nap: masks(napScores), mag: masks(magScores), scores: napScores };
  };
  const model = createModel(reluNet, SHAPE, 3, 2);
  const before = await masksOf(model);
  const s = 8;
  for (const [name, f] of [["fc1/kernel", s], ["fc1/bias", s], ["fc2/kernel", 1 / s]] as const) {
    const v = model.params.get(name)!;
    tf.tidy(() => v.assign(tf.mul(v, f)));
  }
  const after = await masksOf(model);
  for (const n of names) assert.ok(maxRelDiff(after.scores.get(n)!, before.scores.get(n)!) < 1e-3, `${n}: nap's ΔL moved by ${maxRelDiff(after.scores.get(n)!, before.scores.get(n)!)}`);
  for (const n of names) assert.deepEqual([...after.nap.get(n)!], [...before.nap.get(n)!], `${n}: nap's mask`);
  assert.ok(names.some((n) => before.mag.get(n)!.some((m, i) => m !== after.mag.get(n)![i])), "global magnitude's masks move");
  split.dispose(); disposeModel(model);
});

test("a tiny grid with nap and nap-channel on the MLP runs its rounds to the target; bench methods lists both", () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir, "", {
    methods: "[{name: nap, batches: 2, batch_size: 64}, {name: nap-channel, batches: 2, batch_size: 64}]",
    targets: "sparsities: [0.75]", data: "{train_subset: 300, test_subset: 200}", pretrain: "{epochs: 1, batch_size: 64, lr: 0.05}",
  });
  const db = join(dir, "r.db");
  const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", join(dir, "art"), "--jobs", "1", "--plain"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const d = new Database(db, { readonly: true });
  const rows = d.prepare(`SELECT key, method, level, target_kind, target_value FROM runs ORDER BY method, level`).all() as Array<{ key: string; method: string; level: number; target_kind: string; target_value: number }>;
  const metrics = (key: string) => Object.fromEntries((d.prepare(`SELECT name, value FROM metrics WHERE run_key = ?`).all(key) as Array<{ name: string; value: number }>).map((m) => [m.name, m.value]));
  const last = (method: string) => rows.filter((x) => x.method === method).at(-1)!;
  // Rate 0.5 of what is left per round: 50 % then 75 %, two levels each.
  assert.deepEqual(rows.filter((x) => x.method === "nap").map((x) => x.level), [1, 2], JSON.stringify(rows));
  assert.deepEqual(rows.filter((x) => x.method === "nap-channel").map((x) => x.level), [1, 2], JSON.stringify(rows));
  const w = metrics(last("nap").key);
  assert.ok(Math.abs(w.sparsity - 0.75) < 1e-3, `nap reached sparsity ${w.sparsity}`);
  const c = metrics(last("nap-channel").key);
  assert.ok(c.target_achieved >= 0.75, `nap-channel reached channel sparsity ${c.target_achieved}`);
  assert.equal(c.params_compacted, c.params_nonzero, "the channels are physically removed");
  d.close();
  const listed = JSON.parse(bench(["methods", "--json"]).stdout) as unknown;
  const text = JSON.stringify(listed);
  for (const name of ["nap", "nap-channel"]) assert.ok(text.includes(`"${name}"`), `${name} listed`);
  assert.ok(text.includes("2101.06608") && text.includes("damping"), "with its citation and hyperparameters");
});
