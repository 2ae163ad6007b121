/**
 * Loss terms (src/prune/loss-terms.ts, src/train/penalty.ts) and their first consumers: network slimming's L1 on
 * batch-norm γ while pretraining (its own dense model, pruned by |γ| under one global threshold), and Molchanov et
 * al.'s first-order Taylor importance on batch-norm γ/β (mean over minibatches of the squared gate gradient).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { getMethod } from "../methods/index.js";
import type { ChannelGroupView, ChannelMember } from "../methods/types.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { catalog } from "../src/catalog.js";
import { makeRng } from "../src/core/rng.js";
import type { HyperValue, RunConfig, TrainConfig } from "../src/core/types.js";
import { DEFAULT_PRETRAIN, DEFAULT_PRUNABLE } from "../src/grid/index.js";
import { planRuns } from "../src/plan/plan.js";
import { denseKey } from "../src/plan/runKey.js";
import { prunableGroups } from "../src/prune/structured.js";
import { forEachBatchGradient } from "../src/run/batch-gradients.js";
import { gradientsOver } from "../src/run/score-context.js";
import { channelGroupViews, structuredPruneStep, structuredState } from "../src/run/structured-step.js";
import { stage, trainPhase } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, type Model } from "../src/train/model.js";
import { penaltyLoss } from "../src/train/penalty.js";
import { smallConfig } from "./helpers/config.js";

const SMALL: [number, number, number] = [8, 8, 3];
const CIFAR: [number, number, number] = [32, 32, 3];

function params(name: string, overrides: Record<string, HyperValue> = {}): Record<string, HyperValue> {
  return { ...Object.fromEntries(Object.entries(getMethod(name).params).map(([k, p]) => [k, p.default])), ...overrides };
}

function images(n: number, shape: [number, number, number], seed = 1) {
  const rng = makeRng(seed, "images");
  const size = shape[0] * shape[1] * shape[2];
  return { x: Float32Array.from({ length: n * size }, () => rng() * 2 - 1), y: Int32Array.from({ length: n }, (_, i) => i % 10), count: n };
}

const gammaNames = (m: Model) => [...m.params.keys()].filter((n) => n.endsWith("/gamma"));
const read = (m: Model, n: string) => m.params.get(n)!.dataSync() as Float32Array;

/** ResNet-20 on 8×8 images trained with or without slimming's term; plain SGD so one step's difference is exact. */
async function trainResnet(lambda: number, config: TrainConfig, zeroGamma: string): Promise<Model> {
  const model = createModel(getArch("resnet20"), SMALL, 10, 7);
  const g = read(model, zeroGamma).slice();
  g[0] = 0;
  model.params.get(zeroGamma)!.assign(tf.tensor(g));
  const train = stage(images(32, SMALL), SMALL);
  const masks = new MaskSet();
  const terms = getMethod("slimming").lossTerms!(params("slimming", { lambda }));
  await trainPhase({ phase: "pretrain", model, train, val: train, config, masks, seed: 3, selectBestOnVal: false, extraLoss: penaltyLoss(model, terms, "pretrain") });
  train.dispose();
  masks.dispose();
  return model;
}

test("slimming's loss term adds λ·sign(γ) to every batch-norm γ's gradient (sign(0) = 0) and nothing else; over steps it drives γ toward 0", async () => {
  await initBackend("wasm");
  const sgd: TrainConfig = { ...DEFAULT_PRETRAIN, epochs: 1, batchSize: 32, optimizer: "sgd", lr: 0.1, momentum: 0, weightDecay: 0, schedule: "constant", warmupEpochs: 0, nesterov: false };
  const zeroGamma = "s2b1/bn1/gamma";
  const lambda = 0.01;
  const [plain, slim] = [await trainResnet(0, sgd, zeroGamma), await trainResnet(lambda, sgd, zeroGamma)];
  assert.ok(gammaNames(plain).length === 19, `ResNet-20 has 19 batch norms, found ${gammaNames(plain).length}`);
  // One step from the same weights on the same batch: the cross-entropy gradients are the same, so γ differs by
  // exactly −lr·λ·sign(γ₀) (γ₀ = 1, and 0 where we zeroed it), and every other tensor is untouched by the term.
  for (const name of plain.params.keys()) {
    const [a, b] = [read(plain, name), read(slim, name)];
    a.forEach((v, i) => {
      const expected = name.endsWith("/gamma") && !(name === zeroGamma && i === 0) ? -0.1 * lambda : 0;
      assert.ok(Math.abs(b[i] - v - expected) < 2e-6, `${name}[${i}]: ${b[i] - v} vs ${expected}`);
    });
  }
  disposeModel(plain);
  disposeModel(slim);
  // Several steps with momentum: the term shrinks Σ|γ| against the same run without it.
  const longer: TrainConfig = { ...sgd, epochs: 4, batchSize: 8, momentum: 0.9 };
  const [p4, s4] = [await trainResnet(0, longer, zeroGamma), await trainResnet(lambda, longer, zeroGamma)];
  const l1 = (m: Model) => gammaNames(m).reduce((s, n) => s + read(m, n).reduce((a, v) => a + Math.abs(v), 0), 0);
  const [lp, ls] = [l1(p4), l1(s4)];
  // 16 steps, lr 0.1, momentum 0.9: each γ moves ≈ 0.1·0.01·Σ(1 + 0.9 + …) ≈ 0.0095 per step on average toward 0.
  assert.ok(ls < lp - 0.05 * gammaNames(p4).reduce((n, g) => n + read(p4, g).length, 0), `Σ|γ| ${ls} with the term vs ${lp} without`);
  disposeModel(p4);
  disposeModel(s4);
});

test("a penalty is strength·‖·‖ of the tensors its layer kinds and roles name, and a network without them is an error", async () => {
  await initBackend("wasm");
  const model = createModel(getArch("resnet20"), SMALL, 10, 2);
  const gammas = gammaNames(model);
  model.params.get(gammas[0])!.assign(tf.fill([read(model, gammas[0]).length], -2));
  const terms = [
    { norm: "l1" as const, layerKinds: ["batchnorm" as const], roles: ["gamma" as const], strength: 0.5, phases: ["pretrain" as const] },
    { norm: "l2" as const, layerKinds: ["batchnorm" as const], roles: ["beta" as const], strength: 3, phases: ["pretrain" as const, "finetune" as const] },
  ];
  const sumAbs = gammas.reduce((s, n) => s + read(model, n).reduce((a, v) => a + Math.abs(v), 0), 0);
  const pretrain = penaltyLoss(model, terms, "pretrain")!;
  assert.ok(Math.abs(tf.tidy(() => pretrain().dataSync()[0]) - 0.5 * sumAbs) < 1e-3); // β = 0 at init
  const finetune = penaltyLoss(model, terms, "finetune")!;
  assert.equal(tf.tidy(() => finetune().dataSync()[0]), 0);
  assert.equal(penaltyLoss(model, [], "pretrain"), undefined);
  disposeModel(model);
  const lenet = createModel(getArch("lenet5"), [28, 28, 1], 10, 2);
  assert.throws(() => penaltyLoss(lenet, terms, "pretrain"), /lenet5 has none/);
  disposeModel(lenet);
});

test("a method whose term acts while pretraining gets a dense model of its own; every other run keeps its dense key", () => {
  const cat = catalog();
  const config = (name: string, overrides: Record<string, HyperValue> = {}): RunConfig => smallConfig({
    arch: "resnet20", dataset: "fashion-mnist", target: { kind: "macs-reduction", value: 0.5 }, method: { name, params: params(name, overrides) },
  });
  const configs = [config("l1-filter"), config("taylor"), config("slimming", { lambda: 0 }), config("slimming"), config("slimming", { lambda: 1e-3 }), config("global-magnitude")];
  const fp = { code: "code-v1", data: "data-abc" };
  const planned = planRuns(configs, new Map([["fashion-mnist", fp.data]]), cat);
  const [l1, tay, slim0, slim, slim3, mag] = planned.map((p) => p.denseKey);
  // Without a pretraining term the key is exactly the one denseKey always gave (runkey.test.ts pins its value).
  const code = { code: planned[0].codeVersion, data: fp.data };
  planned.forEach((p, i) => { if (i !== 3 && i !== 4) assert.equal(p.denseKey, denseKey(p.config, code), p.config.method.name); });
  assert.equal(l1, tay);
  assert.equal(l1, mag);
  assert.equal(slim0, l1, "λ = 0 trains the plain dense model");
  assert.notEqual(slim, l1);
  assert.notEqual(slim3, slim);
  assert.equal(denseKey(configs[0], code, []), l1);
});

test("slimming removes the channels with the smallest |γ| under one threshold across layers, only where a batch norm scales them", async () => {
  await initBackend("wasm");
  const model = createModel(getArch("resnet20"), CIFAR, 10, 1);
  const rng = makeRng(9, "gammas");
  // Different scales per layer, so a global threshold removes different fractions of different layers.
  gammaNames(model).forEach((n, k) => {
    const v = read(model, n);
    model.params.get(n)!.assign(tf.tensor(Float32Array.from(v, () => (rng() * 2 - 1) * (1 + (k % 4)))));
  });
  const state = structuredState(model);
  const before = channelGroupViews(model, state, prunableGroups(state.plan));
  const p = params("slimming");
  const scored = await getMethod("slimming").score({ tensors: [], groups: before, params: p, random: makeRng(1, "t") });
  // residual: skip (their ResNet pruning keeps the stream): the first conv of each block, each scored by its BN's |γ|.
  assert.deepEqual([...scored.keys()], Array.from({ length: 9 }, (_, k) => `s${Math.floor(k / 3) + 1}b${(k % 3) + 1}/conv1`));
  const gammaOf = (g: ChannelGroupView) => g.members.find((m) => m.role === "gamma" && m.side === "out")!;
  const split = stage(images(4, CIFAR), CIFAR);
  await structuredPruneStep({
    model, masks: new MaskSet(), method: getMethod("slimming"), params: p, prunable: DEFAULT_PRUNABLE,
    target: { kind: "channel-sparsity", value: 0.2 }, train: split, seed: 1, step: 0, state,
  });
  split.dispose();
  const removed: number[] = [];
  const kept: number[] = [];
  const removedPerGroup: number[] = [];
  for (const g of before) {
    const i = state.graph.groups.findIndex((x) => x.name === g.name);
    if (!scored.has(g.name)) {
      assert.ok(state.keep[i].every(Boolean), `${g.name} is not scored and keeps its channels`);
      continue;
    }
    const gamma = gammaOf(g);
    state.keep[i].forEach((k, u) => (k ? kept : removed).push(Math.abs(gamma.values[gamma.indices[u][0]])));
    removedPerGroup.push(state.keep[i].filter((k) => !k).length / g.size);
  }
  assert.ok(removed.length > 0);
  assert.ok(Math.max(...removed) < Math.min(...kept), `largest removed |γ| ${Math.max(...removed)} vs smallest kept ${Math.min(...kept)}`);
  assert.ok(new Set(removedPerGroup).size > 1, "a global threshold removes different fractions of different layers");
  disposeModel(model);
  await assert.rejects(async () => getMethod("slimming").score({ tensors: [], groups: [], params: p, random: makeRng(1, "t") }), /none of the channel groups/);
});

/** A hand-made member covering unit u at `indices[u]` along `axis`. */
function member(tensor: string, layerKind: ChannelMember["layerKind"], role: string, side: "out" | "in", shape: number[], axis: number, values: number[]): ChannelMember {
  return { tensor, layer: tensor.split("/")[0], layerKind, role, axis, side, shape, values: Float32Array.from(values), indices: [[0], [1]] };
}

test("taylor: the mean over minibatches of (γ·∂L/∂γ + β·∂L/∂β)², or of (Σ g·w over filter and bias)² without batch norm (hand-checked)", async () => {
  const bnGroup: ChannelGroupView = {
    name: "convA", producers: ["convA"], size: 2, alive: Float32Array.of(1, 1), members: [
      member("convA/kernel", "conv", "kernel", "out", [1, 1, 1, 2], 3, [5, 5]),
      member("bnA/gamma", "batchnorm", "gamma", "out", [2], 0, [1, 2]),
      member("bnA/beta", "batchnorm", "beta", "out", [2], 0, [0.5, -1]),
    ],
  };
  const denseGroup: ChannelGroupView = {
    name: "fcB", producers: ["fcB"], size: 2, alive: Float32Array.of(1, 1), members: [
      member("fcB/kernel", "dense", "kernel", "out", [2, 2], 1, [1, 2, 3, 4]),
      member("fcB/bias", "dense", "bias", "out", [2], 0, [0.5, -0.5]),
      member("fcC/kernel", "dense", "kernel", "in", [2, 2], 0, [7, 7, 7, 7]),
    ],
  };
  const batches = [
    { "convA/kernel": [9, 9], "bnA/gamma": [0.1, 0.2], "bnA/beta": [0.2, 0.1], "fcB/kernel": [0.1, 0, 0.2, 0.1], "fcB/bias": [1, 2], "fcC/kernel": [9, 9, 9, 9] },
    { "convA/kernel": [9, 9], "bnA/gamma": [-0.1, 0], "bnA/beta": [0.2, 0.3], "fcB/kernel": [0.1, 0, 0.2, 0.1], "fcB/bias": [1, 2], "fcC/kernel": [9, 9, 9, 9] },
  ];
  let asked: { spec: unknown; tensors: readonly string[] } | null = null;
  const scores = await getMethod("taylor").score({
    tensors: [], groups: [bnGroup, denseGroup], params: params("taylor", { layers: "all" }), random: makeRng(1, "t"),
    batchGradients: async (spec, tensors, visit) => {
      asked = { spec, tensors };
      batches.forEach((b, k) => visit(new Map(tensors.map((t) => [t, Float32Array.from((b as Record<string, number[]>)[t])])), k));
    },
  });
  // convA: batch 0 gives γ·g_γ + β·g_β = [0.1 + 0.1, 0.4 − 0.1] = [0.2, 0.3], batch 1 [−0.1 + 0.1, 0 − 0.3] = [0, −0.3]:
  // mean of squares [0.02, 0.09] (the square of the mean gradient would be [0.01, 0]: the other order). The conv
  // kernel before the batch norm does not count (the batch norm undoes its scale).
  // fcB: unit 0: 1·0.1 + 3·0.2 + 0.5·1 = 1.2, unit 1: 2·0 + 4·0.1 − 0.5·2 = −0.6: [1.44, 0.36]; the next layer's
  // input rows (side "in") do not count.
  const close = (a: Float32Array, b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-6);
  assert.ok(close(scores.get("convA")!, [0.02, 0.09]), `${[...scores.get("convA")!]}`);
  assert.ok(close(scores.get("fcB")!, [1.44, 0.36]), `${[...scores.get("fcB")!]}`);
  assert.deepEqual(asked, { spec: { batches: 30, batchSize: 64, mode: "train" }, tensors: ["bnA/gamma", "bnA/beta", "fcB/kernel", "fcB/bias"] });
});

test("the batch-gradient capability gives each batch's own gradient (their mean is the averaged gradient), and taylor prunes a real ResNet through it", async () => {
  await initBackend("wasm");
  const model = createModel(getArch("resnet20"), SMALL, 10, 4);
  const train = stage(images(24, SMALL, 5), SMALL);
  const plan = [Int32Array.of(0, 1, 2, 3, 4, 5, 6, 7), Int32Array.of(8, 9, 10, 11, 12, 13, 14, 15)];
  const names = ["s1b1/bn1/gamma", "s1b1/conv1/kernel"].filter((n) => model.params.has(n));
  assert.equal(names.length, 2, `tensor names: ${[...model.params.keys()].slice(0, 6).join(", ")}`);
  const seen: Array<Map<string, Float32Array>> = [];
  await forEachBatchGradient(model, train, names, plan, "train", (g) => seen.push(new Map(g)));
  const mean = gradientsOver(model, train, names, plan, "train");
  const single = gradientsOver(model, train, names, [plan[1]], "train");
  for (const n of names) {
    const m = mean.get(n)!;
    m.forEach((v, i) => assert.ok(Math.abs((seen[0].get(n)![i] + seen[1].get(n)![i]) / 2 - v) < 1e-5, n));
    single.get(n)!.forEach((v, i) => assert.ok(Math.abs(seen[1].get(n)![i] - v) < 1e-6, n));
  }
  const state = structuredState(model);
  const masks = new MaskSet();
  await structuredPruneStep({
    model, masks, method: getMethod("taylor"), params: params("taylor", { batches: 2, batch_size: 8 }), prunable: DEFAULT_PRUNABLE,
    target: { kind: "channel-sparsity", value: 0.2 }, train, seed: 1, step: 0, state,
  });
  assert.ok(state.channelSparsity >= 0.2, `channel sparsity ${state.channelSparsity}`);
  masks.dispose();
  train.dispose();
  disposeModel(model);
});
