/**
 * Gate Decorator (You et al. 2019; methods/gate-decorator.ts) and the engine parts it runs on: gates trained as
 * extra parameters (src/train/gates.ts), the tick (conv layers frozen, Θ = Σ|φ·∂L/∂φ| accumulated; src/run/
 * tick-tock-step.ts), pruning the lowest of the remaining channels toward the target (structuredPruneLowest) and a
 * whole tick-tock run through the real engine.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { getMethod, methodCatalog } from "../methods/index.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng, shuffleInPlace } from "../src/core/rng.js";
import type { HyperValue, TrainConfig } from "../src/core/types.js";
import { DEFAULT_FINETUNE, DEFAULT_PRUNABLE } from "../src/grid/index.js";
import { METRIC_NAMES } from "../src/metrics/names.js";
import type { TickTock } from "../src/prune/schedules.js";
import { phasePlan } from "../src/run/phase-plan.js";
import { channelGroupViews, gatePlacements, structuredPruneLowest, structuredState } from "../src/run/structured-step.js";
import { tick } from "../src/run/tick-tock-step.js";
import { prunableGroups } from "../src/prune/structured.js";
import { GateSet } from "../src/train/gates.js";
import { stage, trainPhase } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, forward, type Model } from "../src/train/model.js";
import { penaltyLoss } from "../src/train/penalty.js";
import { Store } from "../src/store/store.js";
import { readRuns } from "../reports/read.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

const SMALL: [number, number, number] = [8, 8, 3];
const method = getMethod("gate-decorator");

function params(overrides: Record<string, HyperValue> = {}): Record<string, HyperValue> {
  return { ...Object.fromEntries(Object.entries(method.params).map(([k, p]) => [k, p.default])), ...overrides };
}

function images(n: number, shape: [number, number, number], seed = 1) {
  const rng = makeRng(seed, "images");
  const size = shape[0] * shape[1] * shape[2];
  return { x: Float32Array.from({ length: n * size }, () => rng() * 2 - 1), y: Int32Array.from({ length: n }, (_, i) => i % 10), count: n };
}

/** Like tf.tidy, for a function that returns host values. */
function scoped<T>(f: () => T): T {
  tf.engine().startScope();
  try {
    return f();
  } finally {
    tf.engine().endScope();
  }
}

const read = (m: Model, n: string) => Float32Array.from(m.params.get(n)!.dataSync());

/** ResNet-20 on 8×8 images with batch norms that look trained: γ in [0.5, 1.5], β in [−0.3, 0.3]. */
function resnet(seed = 7): Model {
  const model = createModel(getArch("resnet20"), SMALL, 10, seed);
  const rng = makeRng(seed, "bn");
  for (const [name, v] of model.params) {
    if (name.endsWith("/gamma")) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => 0.5 + rng()), v.shape));
    if (name.endsWith("/beta")) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => 0.6 * rng() - 0.3), v.shape));
  }
  return model;
}

const sgd: TrainConfig = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 16, optimizer: "sgd", lr: 0.05, momentum: 0, weightDecay: 0, schedule: "constant", warmupEpochs: 0, nesterov: false };

function schedule(overrides: Partial<TickTock> = {}): TickTock {
  const s = method.schedule(params());
  assert.equal(s.kind, "tick-tock");
  return { ...(s as TickTock), ...overrides };
}

test("a batch-norm gate is their GBN: φ = γ, b = β/γ, output φ·(x̂ + b) unchanged, and SGD moves φ by ∂L/∂γ + b·∂L/∂β and b by φ·∂L/∂β", async () => {
  await initBackend("wasm");
  const model = resnet();
  const split = stage(images(16, SMALL), SMALL);
  const bn = "s2b1/bn2";
  const [g0, b0] = [read(model, `${bn}/gamma`), read(model, `${bn}/beta`)];
  const before = tf.tidy(() => forward(model, split.x, false).logits.dataSync());
  // The plain network's gradient of γ and β on the batch, training mode, as a step computes it.
  const gammaVar = model.params.get(`${bn}/gamma`)!;
  const betaVar = model.params.get(`${bn}/beta`)!;
  const [gg, gb] = tf.tidy(() => {
    const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(tf.oneHot(split.y, 10), forward(model, split.x, true).logits) as tf.Scalar, [gammaVar, betaVar]);
    return [Float32Array.from(grads[gammaVar.name].dataSync()), Float32Array.from(grads[betaVar.name].dataSync())];
  });

  const gates = new GateSet(model, gatePlacements(structuredState(model), DEFAULT_PRUNABLE));
  const after = tf.tidy(() => forward(model, split.x, false).logits.dataSync());
  before.forEach((v, i) => assert.ok(Math.abs(after[i] - v) < 1e-5, `logit ${i}: ${after[i]} vs ${v}`));
  assert.deepEqual(gates.values().get(bn), g0);
  const masks = new MaskSet();
  const kernels = [...model.params.keys()].filter((n) => n.endsWith("/kernel") && !n.startsWith("fc"));
  const kernelsBefore = kernels.map((n) => read(model, n));
  await trainPhase({ phase: "finetune", model, train: split, val: { ...split, count: 0 }, config: sgd, masks, seed: 1, selectBestOnVal: false, gates, frozen: ["conv"] });
  const lr = sgd.lr;
  const [g1, b1] = [read(model, `${bn}/gamma`), read(model, `${bn}/beta`)];
  g0.forEach((g, c) => {
    const b = b0[c] / g;
    const phi = g - lr * (gg[c] + b * gb[c]);
    const bNew = b - lr * g * gb[c];
    assert.ok(Math.abs(g1[c] - phi) < 2e-5, `γ[${c}] = φ: ${g1[c]} vs ${phi}`);
    assert.ok(Math.abs(b1[c] - phi * bNew) < 2e-5, `β[${c}] = φ·b: ${b1[c]} vs ${phi * bNew}`);
  });
  // Plain BN training (γ −= lr·g_γ) would differ from the gate's update wherever b·g_β is not negligible.
  assert.ok(g0.some((g, c) => Math.abs(g1[c] - (g - lr * gg[c])) > 1e-4), "the gated update differs from plain BN's");
  kernels.forEach((n, k) => assert.deepEqual(read(model, n), kernelsBefore[k], `${n} is frozen`));
  gates.dispose();
  masks.dispose();
  split.dispose();
  disposeModel(model);
});

test("a tick leaves every conv weight unchanged, trains gates, shifts and classifier, and its Θ is the first-order loss change of removing a channel (finite differences)", async () => {
  await initBackend("wasm");
  const model = resnet(11);
  // One batch: the whole subset, so Θ is |φ·∂L/∂φ| at the starting weights, which finite differences can check.
  const data = stage(images(64, SMALL, 5), SMALL);
  const state = structuredState(model);
  const placements = gatePlacements(state, DEFAULT_PRUNABLE);
  assert.equal(placements.length, 19, "every batch norm of ResNet-20 is gated");
  assert.ok(placements.every((p) => p.at === "norm"));
  const gates = new GateSet(model, placements);
  const masks = new MaskSet();
  const plain = new Map([...model.params.keys()].map((n) => [n, read(model, n)]));
  const ce = (params: Map<string, tf.Tensor>, x: tf.Tensor, y: tf.Tensor) =>
    tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), forward({ ...model, params: params as Map<string, tf.Variable> }, x, true).logits) as tf.Scalar;
  // L as a function of scaling channel c of a batch norm by s: φ_c → s·φ_c scales its γ_c and β_c alike.
  const lossAt = (bn: string, c: number, s: number) => tf.tidy(() => {
    const params = new Map(model.params as Map<string, tf.Tensor>);
    for (const role of ["gamma", "beta"]) {
      const v = plain.get(`${bn}/${role}`)!.slice();
      v[c] *= s;
      params.set(`${bn}/${role}`, tf.tensor(v));
    }
    return ce(params, data.x, data.y).dataSync()[0];
  });
  // Where the loss is nearly smooth at this scale (the last stage: few ReLU kinks within ±1 %, 64 images to average
  // them); the stem's channels cross many kinks and need the exact check below.
  const eps = 0.01;
  const checks = (["s3b1/bn1", "s3b2/bn1", "s3b2/bn2", "s3b3/bn1", "s3b3/bn2"] as const).map((bn, k) => {
    const c = 3 + 11 * k;
    return { bn, c, fd: Math.abs((lossAt(bn, c, 1 + eps) - lossAt(bn, c, 1 - eps)) / (2 * eps)) };
  });
  // The exact first-order term for every gate: φ·∂L/∂φ = γ·∂L/∂γ + β·∂L/∂β of the plain network.
  const exact = scoped(() => {
    const vars = [...model.params].filter(([n]) => /\/(gamma|beta)$/.test(n));
    const { grads } = tf.variableGrads(() => ce(new Map(model.params as Map<string, tf.Tensor>), data.x, data.y), vars.map(([, v]) => v));
    return new Map(vars.map(([n, v]) => [n, Float32Array.from(grads[v.name].dataSync()).map((g, i) => g * plain.get(n)![i])]));
  });
  const o = {
    model, masks, method, params: params(), prunable: DEFAULT_PRUNABLE, target: { kind: "macs-reduction" as const, value: 0.5 }, train: data, seed: 3, state,
    schedule: schedule({ tickImages: 0, tickLr: 0.05 }), finetune: { ...sgd, batchSize: 64 }, penalty: () => undefined,
  };
  const { saliency: theta } = await tick(o, gates, placements.map((p) => p.layer), 1, { ...data, count: 0 });
  for (const { bn, c, fd } of checks) {
    const t = theta.get(bn)![c];
    // ReLU kinks crossed within ±1 % leave the finite difference a few per cent off the derivative (Θ ranges over 30x
    // here); the exact identity is checked for every gate below.
    assert.ok(Math.abs(t - fd) < 0.1 * fd + 1e-4, `Θ ${bn}[${c}] = ${t}, finite difference ${fd}`);
  }
  assert.ok(checks.every(({ fd }) => fd > 1e-3), "the check is not vacuous");
  for (const { layer } of placements) {
    const want = exact.get(`${layer}/gamma`)!.map((v, c) => Math.abs(v + exact.get(`${layer}/beta`)![c]));
    theta.get(layer)!.forEach((t, c) => assert.ok(Math.abs(t - want[c]) < 1e-4 * Math.max(1, want[c]), `Θ ${layer}[${c}] = ${t}, |γ·g_γ + β·g_β| = ${want[c]}`));
  }
  for (const [name, v] of plain) {
    const now = read(model, name);
    const moved = now.some((x, i) => x !== v[i]);
    if (name.endsWith("/kernel") && !name.startsWith("fc")) assert.ok(!moved, `${name} must not move in a tick`);
    else if (/\/(gamma|beta)$|^fc\//.test(name)) assert.ok(moved, `${name} trains in a tick`);
  }

  // Two minibatches: Θ adds each minibatch's |φ·∂L/∂φ| (their cal_score), not the absolute value of the summed
  // gradient. An LR too small to move the weights keeps both gradients at the same point.
  const two = stage(images(32, SMALL, 8), SMALL);
  const start = new Map([...model.params].map(([n, v]) => [n, Float32Array.from(v.dataSync())]));
  const { saliency: theta2 } = await tick({ ...o, train: two, finetune: { ...sgd, batchSize: 16 }, schedule: schedule({ tickImages: 0, tickLr: 1e-9 }) }, gates, placements.map((p) => p.layer), 2, { ...two, count: 0 });
  // The tick's batches: its data order (the phase's stream "tick2") over the 32 images, 16 at a time.
  const order = shuffleInPlace(new Int32Array(32).map((_, i) => i), makeRng(3, "order:finetune:tick2"));
  const perBatch = [order.subarray(0, 16), order.subarray(16)].map((idx) => scoped(() => {
    const x = tf.gather(two.x, tf.tensor1d(idx, "int32"));
    const y = tf.gather(two.y, tf.tensor1d(idx, "int32"));
    const params = new Map([...model.params].map(([n, v]) => [n, tf.tensor(start.get(n)!, v.shape) as tf.Tensor]));
    const vars = [...params].filter(([n]) => /\/(gamma|beta)$/.test(n)).map(([n, t]) => [n, tf.variable(t)] as const);
    for (const [n, v] of vars) params.set(n, v);
    const { grads } = tf.variableGrads(() => ce(params, x, y), vars.map(([, v]) => v));
    const out = new Map(vars.map(([n, v]) => [n, Float32Array.from(grads[v.name].dataSync()).map((g, i) => g * start.get(n)![i])]));
    vars.forEach(([, v]) => v.dispose());
    return out;
  }));
  let signsDiffer = 0;
  for (const { layer } of placements) {
    theta2.get(layer)!.forEach((t, c) => {
      const [a, b] = perBatch.map((g) => g.get(`${layer}/gamma`)![c] + g.get(`${layer}/beta`)![c]);
      if (a * b < 0) signsDiffer++;
      assert.ok(Math.abs(t - (Math.abs(a) + Math.abs(b))) < 1e-4 * Math.max(1, Math.abs(a) + Math.abs(b)), `Θ ${layer}[${c}] = ${t}, |batch 1| + |batch 2| = ${Math.abs(a) + Math.abs(b)}`);
    });
  }
  assert.ok(signsDiffer > 0, "some channel's two minibatch terms have opposite signs, where |sum| and sum of |·| differ");
  two.dispose();
  gates.dispose();
  masks.dispose();
  data.dispose();
  disposeModel(model);
});

test("a tick's prune ranks groups by the sum of their gates' Θ, removes the fraction of remaining channels globally, shares one mask per residual group and keeps each group's floor", async () => {
  await initBackend("wasm");
  const model = resnet(3);
  const state = structuredState(model);
  const offered = prunableGroups(state.plan);
  const views = channelGroupViews(model, state, offered);
  // Θ per batch norm: random, except the stage-3 stream, whose bn2 of block 1 is high on channel 0 and its other
  // members low there, so only the group sum can rank it.
  const rng = makeRng(9, "theta");
  const saliency = new Map<string, Float32Array>();
  for (const p of gatePlacements(state, DEFAULT_PRUNABLE)) saliency.set(p.layer, Float32Array.from({ length: read(model, `${p.layer}/gamma`).length }, () => rng()));
  const stream = views.find((g) => g.producers.length > 1 && g.size === 64)!;
  const norms = stream.members.filter((m) => m.side === "out" && m.role === "gamma");
  assert.ok(norms.length >= 3, "the stage-3 stream joins several batch norms");
  for (const m of norms) saliency.get(m.layer)![m.indices[0][0]] = 0;
  saliency.get(norms[0].layer)![norms[0].indices[0][0]] = 100;
  const scores = await method.score({ tensors: [], groups: views, params: params(), random: makeRng(1, "r"), gateSaliency: saliency });
  const expected = norms.reduce((s, m) => s + saliency.get(m.layer)![m.indices[1][0]], 0);
  assert.ok(Math.abs(scores.get(stream.name)![1] - expected) < 1e-5, "a group's score is the sum over its batch norms");
  assert.equal(scores.get(stream.name)![0], 100);

  const masks = new MaskSet();
  const split = stage(images(4, SMALL), SMALL);
  const alive = () => offered.reduce((n, i) => n + state.keep[i].filter(Boolean).length, 0);
  const n0 = alive();
  const r = await structuredPruneLowest({
    model, masks, method, params: params(), prunable: DEFAULT_PRUNABLE, target: { kind: "macs-reduction", value: 0.99 }, train: split, seed: 1, step: 1,
    state, fraction: 0.1, gateSaliency: saliency,
  });
  assert.equal(r.reached, false);
  assert.equal(r.removed, Math.floor(0.1 * n0));
  assert.equal(alive(), n0 - r.removed);
  // The removed units are the lowest-scored ones overall.
  const all = offered.flatMap((i) => { const g = state.graph.groups[i]; const s = [...scores.get(g.name)!]; return s.map((v, u) => ({ v, kept: state.keep[i][u] })); });
  const cut = Math.max(...all.filter((a) => !a.kept).map((a) => a.v));
  assert.ok(all.filter((a) => a.kept).every((a) => a.v >= cut), "no kept channel scores below a removed one");
  const gi = state.graph.groups.findIndex((g) => g.name === stream.name);
  assert.equal(state.keep[gi][0], true, "the stream's channel 0 survives on its summed score");
  // Many more ticks: every group stops at its floor (10 % of its channels, at least one), and then nothing goes.
  for (let k = 0; k < 60 && (await structuredPruneLowest({
    model, masks, method, params: params(), prunable: DEFAULT_PRUNABLE, target: { kind: "macs-reduction", value: 0.99 }, train: split, seed: 1, step: 2 + k,
    state, fraction: 0.5, gateSaliency: saliency,
  })).removed > 0; k++);
  for (const i of offered) {
    const g = state.graph.groups[i];
    assert.equal(state.keep[i].filter(Boolean).length, Math.max(1, Math.ceil(0.1 * g.size)), `group ${g.name} at its floor`);
  }
  // One mask per group: every batch norm of the stream has the same channels zeroed.
  const zeroed = norms.map((m) => [...masks.values(m.tensor)!].map((v) => v === 0).join());
  assert.ok(zeroed.every((z) => z === zeroed[0]));
  masks.dispose();
  split.dispose();
  disposeModel(model);
});

test("gate-decorator is a tick-tock channel method: its plan, its loss term on the gates in tocks only, its schedule checks", () => {
  const s = method.schedule(params());
  assert.deepEqual(phasePlan(s, 0.5).map((p) => p.kind), ["tick-tock", "train"]);
  assert.deepEqual(method.lossTerms!(params()), [{ norm: "l1", layerKinds: ["batchnorm", "conv", "dense"], roles: ["gate"], strength: 1e-3, phases: ["tock"] }]);
  assert.deepEqual(method.lossTerms!(params({ lambda: 0 })), []);
  const check = methodCatalog()["gate-decorator"].check!;
  assert.equal(check(params()), null);
  assert.match(check(params({ tock_lr_max: -1 }))!, /learning rates must be finite and > 0/);
});

test("the tock's penalty is λ·Σ|φ| over the gates of a gated phase (φ = γ to start), in tocks only, and an error outside a gated phase", async () => {
  await initBackend("wasm");
  const model = resnet(4);
  const sumAbsGamma = [...model.params].filter(([n]) => n.endsWith("/gamma")).reduce((t, [, v]) => t + [...v.dataSync()].reduce((a, x) => a + Math.abs(x), 0), 0);
  const gates = new GateSet(model, gatePlacements(structuredState(model), DEFAULT_PRUNABLE));
  const terms = method.lossTerms!(params({ lambda: 0.01 }));
  const tock = penaltyLoss(model, terms, "tock")!;
  const value = tf.tidy(() => tock(gates.view()).dataSync()[0]);
  assert.ok(Math.abs(value - 0.01 * sumAbsGamma) < 1e-4, `${value} vs ${0.01 * sumAbsGamma}`);
  assert.equal(penaltyLoss(model, terms, "finetune"), undefined);
  assert.equal(penaltyLoss(model, terms, "pretrain"), undefined);
  assert.throws(() => tf.tidy(() => tock()), /no such gate/);
  gates.dispose();
  disposeModel(model);
});

test("a gate-decorator run through the engine reaches its MACs target with a compacted model equal to the masked one (ResNet-20 with batch norm, LeNet-5 with gated convs)", () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir, "", {
    methods: "[{name: gate-decorator, tick_images: 64, fraction: 0.1, tock_every: 3}]", archs: "[lenet5, resnet20]", targets: "macs_reductions: [0.5]",
    pretrain: "{epochs: 1, batch_size: 64, lr: 0.05}", data: "{train_subset: 200, test_subset: 100}",
  });
  const db = join(dir, "r.db");
  const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", join(dir, "art"), "--jobs", "1", "--plain"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const store = new Store(db);
  const runs = readRuns(store);
  store.close();
  assert.equal(runs.length, 2);
  for (const run of runs) {
    const m = run.metrics;
    for (const name of METRIC_NAMES) assert.ok(Number.isFinite(m[name]), `${run.arch}: ${name} = ${m[name]}`);
    assert.ok(m.target_achieved! >= 0.5, `${run.arch}: MACs reduction achieved ${m.target_achieved}`);
    assert.ok(Math.abs(1 - m.macs_compacted! / m.macs_dense! - m.target_achieved!) < 1e-9);
    assert.ok(m.macs_compacted! < m.macs_dense!, "physically smaller");
    assert.equal(m.params_compacted, m.params_nonzero, `${run.arch}: the compacted model holds exactly the surviving parameters`);
    assert.ok(m.compacted_max_abs_diff! < 1e-4, `${run.arch}: compacted vs masked ${m.compacted_max_abs_diff}`);
  }
});
