/**
 * The pruning engine: schedules as data, distributions, the phase plan, and the behaviour that defines each method
 * run through it (SNIP's |g·w| at initialization, SynFlow's data-free scores keeping a narrow layer alive, AGP's cubic
 * curve and its final density).
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import Database from "better-sqlite3";
import { getMethod } from "../methods/index.js";
import type { PrunableTensor, ScoreContext } from "../methods/types.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import { allocateMasks, erkDensities } from "../src/prune/allocate.js";
import { dropAndGrow } from "../src/prune/regrowth.js";
import { densityAtStep, gradualSteps, pruningEvents, resolveSchedule, updateFractionAtStep, type Schedule } from "../src/prune/schedules.js";
import { shuffledMask } from "../src/prune/ablation.js";
import { ablateStep } from "../src/run/ablate-step.js";
import { phasePlan } from "../src/run/phase-plan.js";
import { pruneStep } from "../src/run/prune-step.js";
import { regrowStep } from "../src/run/regrow-step.js";
import { stage, trainPhase, type StagedSplit } from "../src/train/loop.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, forward, snapshot, type Model } from "../src/train/model.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

await initBackend("cpu");

function split(n: number, seed: number): StagedSplit {
  const rng = makeRng(seed, "engine-data");
  return stage({ x: new Float32Array(n * 784).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, [28, 28, 1]);
}

const PRUNABLE = { biases: false, batchNorm: false, classifier: true, firstLayer: true };
const density = (masks: MaskSet, name: string) => { const m = masks.values(name)!; return m.reduce((a, b) => a + b, 0) / m.length; };

describe("schedules", () => {
  test("one-shot prunes once to the target; at-init falls exponentially over its rounds to exactly the target", () => {
    assert.deepEqual(pruningEvents({ kind: "one-shot" }, 0.1), [0.1]);
    const rounds = pruningEvents({ kind: "at-init", rounds: 4 }, 0.01);
    assert.equal(rounds.length, 4);
    rounds.forEach((d, k) => assert.ok(Math.abs(d - 0.01 ** ((k + 1) / 4)) < 1e-12));
    assert.ok(Math.abs(rounds[3] - 0.01) < 1e-15);
    assert.throws(() => pruningEvents({ kind: "at-init", rounds: 0 }, 0.1), /rounds must be an integer >= 1/);
  });

  test("gradual (AGP) updates every Δt steps from t0, on the cubic curve, reaching the target at t0 + nΔt and never after", () => {
    const s: Schedule = { kind: "gradual", start: 0.1, end: 0.9, frequency: 10, initialSparsity: 0.2 };
    const total = 200;
    const { t0, n, dt } = gradualSteps(s, total);
    assert.deepEqual({ t0, n, dt }, { t0: 20, n: 15, dt: 10 });
    for (let step = 0; step < total; step++) {
      const d = densityAtStep(s, 0.05, step, total);
      const k = (step - t0) / dt;
      if (step < t0 || !Number.isInteger(k) || k > n) {
        assert.equal(d, null, `no update at step ${step}`);
        continue;
      }
      const sparsity = 0.95 + (0.2 - 0.95) * (1 - k / n) ** 3;
      assert.ok(Math.abs(d! - (1 - sparsity)) < 1e-12, `step ${step}: density ${d}`);
    }
    assert.ok(Math.abs(densityAtStep(s, 0.05, t0 + n * dt, total)! - 0.05) < 1e-12);
    assert.throws(() => gradualSteps({ ...s, start: 0.9, end: 0.5 }, total), /0 <= start < end <= 1/);
  });

  test("the phase plan: one-shot prunes then fine-tunes; at-init rewinds, prunes in rounds, trains both phases; gradual prunes while fine-tuning", () => {
    assert.deepEqual(phasePlan({ kind: "one-shot" }, 0.2).map((s) => s.kind), ["prune", "train"]);
    const init = phasePlan({ kind: "at-init", rounds: 3 }, 0.2);
    assert.deepEqual(init.map((s) => (s.kind === "train" ? `train:${s.phase}` : s.kind)), ["rewind-to-init", "prune", "prune", "prune", "train:pretrain", "train:finetune"]);
    assert.deepEqual(phasePlan({ kind: "gradual", start: 0, end: 1, frequency: 1, initialSparsity: 0 }, 0.2), [{ kind: "train", phase: "finetune", during: "gradual" }]);
    const dynamic = phasePlan({ kind: "dynamic", interval: 10, dropFraction: 0.3, end: 0.75, decay: "cosine" }, 0.2);
    assert.deepEqual(dynamic.map((s) => (s.kind === "train" ? `train:${s.phase}:${s.during}` : s.kind === "prune" ? `prune:${s.random}` : s.kind)),
      ["rewind-to-init", "prune:true", "train:pretrain:dynamic", "train:finetune:dynamic"]);
  });
});

describe("distributions", () => {
  test("ERK spends exactly the budget, gives small layers higher density, and keeps saturated layers dense", () => {
    const shapes = [[5, 5, 1, 20], [5, 5, 20, 50], [800, 500], [500, 10]];
    const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    const d = erkDensities(shapes, 0.1);
    const kept = d.reduce((n, x, i) => n + x * sizes[i], 0);
    assert.ok(Math.abs(kept - 0.1 * sizes.reduce((a, b) => a + b, 0)) < 1e-6);
    assert.equal(d[0], 1, "the 500-weight first conv saturates and stays dense");
    assert.ok(d[3] > d[2], "the small classifier is denser than the big fc");
    for (const x of d) assert.ok(x > 0 && x <= 1);
  });

  test("a minimum density keeps every tensor alive under a global threshold that would empty one", () => {
    const big = new Float32Array(1000).map((_, i) => 1 + i);
    const small = new Float32Array(100).map(() => 0.001);
    const tensors = [{ name: "a", scores: big, mask: new Float32Array(1000).fill(1) }, { name: "b", scores: small, mask: new Float32Array(100).fill(1) }];
    const plain = allocateMasks(tensors, 0.1, "global");
    assert.equal(plain.get("b")!.reduce((x, y) => x + y, 0), 0, "global alone empties b");
    const floored = allocateMasks(tensors, 0.1, "global", { minDensity: 0.05 });
    assert.equal(floored.get("b")!.reduce((x, y) => x + y, 0), 5);
    assert.equal(floored.get("a")!.reduce((x, y) => x + y, 0) + 5, 110, "the total budget is unchanged");
    assert.throws(() => allocateMasks(tensors, 0.01, "global", { minDensity: 0.5 }), /min density 0.5 in every tensor keeps 550 weights, more than the budget of 11/);
  });
});

describe("methods run through the engine", () => {
  test("SNIP scores |g·w|: the gradient of one batch times the weight", async () => {
    const values = Float32Array.of(1, -2, 3, -4);
    const g = Float32Array.of(0.5, 0.5, -1, 0.25);
    const tensors: PrunableTensor[] = [{ name: "fc/kernel", layer: "fc", layerKind: "dense", role: "kernel", shape: [2, 2], values, mask: new Float32Array(4).fill(1) }];
    let asked: unknown;
    const ctx: ScoreContext = { tensors, params: { batches: 1, batch_size: 128 }, random: Math.random, gradients: async (spec) => { asked = spec; return new Map([["fc/kernel", g]]); } };
    const scores = await getMethod("snip").score(ctx);
    assert.deepEqual([...scores.get("fc/kernel")!], [0.5, 1, 3, 1]);
    assert.deepEqual(asked, { batches: 1, batchSize: 128, mode: "eval" });
    assert.deepEqual(getMethod("snip").schedule({ batches: 1 }), { kind: "at-init", rounds: 1 });
  });

  /** LeNet-300-100 with its middle layer (fc2, 300→100) shrunk to tiny weights: a narrow, weak link. */
  function bottleneckedMlp(): Model {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 3);
    const fc2 = model.params.get("fc2/kernel")!;
    tf.tidy(() => fc2.assign(tf.mul(fc2, 0.002)));
    return model;
  }

  async function pruneWith(method: string, params: Record<string, number>, keep: number, train: StagedSplit): Promise<MaskSet> {
    const model = bottleneckedMlp();
    const masks = new MaskSet();
    const m = getMethod(method);
    for (const [k, d] of pruningEvents(m.schedule(params), keep).entries()) {
      await pruneStep({ model, masks, method: m, params, prunable: PRUNABLE, density: d, train, seed: 0, step: k });
    }
    disposeModel(model);
    return masks;
  }

  test("SynFlow keeps the narrow layer connected where global magnitude empties it, and never looks at the data", async () => {
    const a = split(64, 1);
    const b = split(64, 2);
    const keep = 0.002; // about 530 of LeNet-300-100's 266,200 weights
    const magnitude = await pruneWith("global-magnitude", {}, keep, a);
    assert.equal(density(magnitude, "fc2/kernel"), 0, "global magnitude cuts every path (layer collapse)");
    const flowA = await pruneWith("synflow", { rounds: 20 }, keep, a);
    const flowB = await pruneWith("synflow", { rounds: 20 }, keep, b);
    for (const layer of ["fc1", "fc2", "fc3"]) assert.ok(density(flowA, `${layer}/kernel`) > 0, `${layer} keeps weights`);
    for (const name of flowA.names()) assert.deepEqual(flowA.values(name), flowB.values(name), `${name}: same mask whatever the data`);
    [a, b, magnitude, flowA, flowB].forEach((x) => x.dispose());
  });

  test("SNIP, SynFlow, magnitude-at-init and GMP run end to end: at-init runs train their own sparse network, GMP reaches its target while fine-tuning", () => {
    const dir = tempDir();
    const grid = writeTinyGrid(dir);
    writeFileSync(grid, readFileSync(grid, "utf8")
      .replace("methods: [random, global-magnitude]", "methods: [snip, {name: synflow, rounds: 5}, magnitude-at-init, {name: gmp, frequency: 5, end: 0.5}]")
      .replace("sparsities: [0.5, 0.9]", "sparsities: [0.9]")
      .replace(/^finetune: .*$/m, "finetune: {epochs: 3, batch_size: 64, lr: 0.01}"));
    const db = join(dir, "r.db");
    const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--jobs", "1", "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = new Database(db, { readonly: true });
    const rows = d.prepare(`SELECT r.method, m.value AS sparsity FROM runs r JOIN metrics m ON m.run_key = r.key AND m.name = 'sparsity' ORDER BY r.method`).all() as Array<{ method: string; sparsity: number }>;
    assert.deepEqual(rows.map((x) => x.method), ["gmp", "magnitude-at-init", "snip", "synflow"]);
    for (const x of rows) assert.ok(Math.abs(x.sparsity - 0.9) < 1e-3, `${x.method}: sparsity ${x.sparsity}`);
    const phases = (method: string) => (d.prepare(`SELECT e.phase, count(*) AS n FROM epochs e JOIN runs r ON r.key = e.run_key WHERE r.method = ? GROUP BY e.phase ORDER BY e.phase`).all(method) as Array<{ phase: string; n: number }>)
      .map((p) => `${p.phase}:${p.n}`);
    assert.deepEqual(phases("snip"), ["finetune:3", "pretrain:2"], "its own sparse pretraining, not the dense model's history");
    // Pruned at initialization: before any training its accuracy is chance, whatever the dense model learned.
    const before = d.prepare(`SELECT m.value FROM metrics m JOIN runs r ON r.key = m.run_key WHERE r.method = 'magnitude-at-init' AND m.name = 'top1_before'`).get() as { value: number };
    assert.ok(before.value < 0.3, `top1_before ${before.value}`);
    assert.deepEqual(phases("gmp"), ["finetune:3", "pretrain:2"]);
    d.close();
  });
});

describe("dynamic sparse training", () => {
  test("the update fraction decays with a cosine (RigL) or stays constant (SET), every interval, never at step 0 or after the end", () => {
    const rigl: Schedule = { kind: "dynamic", interval: 10, dropFraction: 0.3, end: 0.5, decay: "cosine" };
    assert.equal(updateFractionAtStep(rigl, 0, 100), null);
    assert.equal(updateFractionAtStep(rigl, 5, 100), null);
    assert.ok(Math.abs(updateFractionAtStep(rigl, 10, 100)! - 0.15 * (1 + Math.cos(Math.PI * 10 / 50))) < 1e-12);
    assert.ok(Math.abs(updateFractionAtStep(rigl, 40, 100)! - 0.15 * (1 + Math.cos(Math.PI * 40 / 50))) < 1e-12);
    assert.equal(updateFractionAtStep(rigl, 50, 100), null, "no update at or after T_end");
    assert.equal(updateFractionAtStep({ ...rigl, decay: "constant" }, 30, 100), 0.3);
    assert.deepEqual(resolveSchedule({ ...rigl, interval: 0 }, 43), { ...rigl, interval: 43 });
    assert.throws(() => updateFractionAtStep({ ...rigl, interval: 0 }, 10, 100), /interval must be an integer number of steps >= 1/);
  });

  test("drop and grow keeps the count, drops the lowest scores, grows the highest among the inactive", () => {
    const mask = Float32Array.of(1, 1, 1, 0, 0, 0);
    const { mask: next, grown } = dropAndGrow(mask, Float32Array.of(5, 1, 3, 0, 0, 0), Float32Array.of(0, 0, 0, 2, 9, 1), 2);
    assert.deepEqual([...next], [1, 0, 0, 1, 1, 0]);
    assert.deepEqual([...grown], [0, 0, 0, 1, 1, 0]);
  });

  test("the loop hands a hook the dense gradient (pruned positions included) at the steps it asks for", async () => {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 5);
    const masks = new MaskSet();
    const train = split(64, 3);
    await pruneStep({ model, masks, method: getMethod("random"), params: { scope: "layer" }, prunable: PRUNABLE, density: 0.2, train, seed: 0, step: 0 });
    const seen: number[] = [];
    await trainPhase({
      phase: "finetune", model, train, val: train, config: { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 32 }, masks, seed: 0, selectBestOnVal: false,
      hooks: {
        wantsGradients: (s) => s === 1,
        afterStep: (ctx) => {
          if (!ctx.gradients) return;
          seen.push(ctx.globalStep);
          const g = ctx.gradients.get("fc2/kernel")!.dataSync();
          const m = masks.values("fc2/kernel")!;
          assert.ok(g.some((x, i) => m[i] === 0 && x !== 0), "gradients at pruned weights are there");
        },
      },
    });
    assert.deepEqual(seen, [1]);
    train.dispose(); masks.dispose(); disposeModel(model);
  });

  test("RigL's update keeps every tensor's density, grows where the dense gradient is largest, zeroes and resets the grown", async () => {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 7);
    const masks = new MaskSet();
    const train = split(64, 4);
    const rigl = getMethod("rigl");
    const params = { interval: 100, drop_fraction: 0.3, end: 0.75, distribution: "erk" };
    await pruneStep({ model, masks, method: rigl, params, prunable: PRUNABLE, density: 0.1, train, seed: 0, step: 0, randomMask: true });
    const before = new Map(masks.names().map((n) => [n, masks.values(n)!.slice()]));
    // A gradient that is huge exactly at the first 7 pruned positions of fc2: those must be the ones grown there.
    const m2 = before.get("fc2/kernel")!;
    const favoured = [...m2.keys()].filter((i) => m2[i] === 0).slice(0, 7);
    const gradients = new Map([...model.params].map(([n, v]) => {
      const g = new Float32Array(v.size).fill(1e-6);
      if (n === "fc2/kernel") for (const i of favoured) g[i] = 100;
      return [n, tf.tensor(g, v.shape)] as const;
    }));
    const resets = new Map<string, Float32Array>();
    await regrowStep({
      model, masks, method: rigl, params, prunable: PRUNABLE, fraction: 0.3, regrowth: "gradient", train, seed: 0, step: 1, gradients,
      resetOptimizerState: (name, where) => resets.set(name, where.dataSync() as Float32Array),
    });
    for (const [name, old] of before) {
      const now = masks.values(name)!;
      assert.equal(now.reduce((a, b) => a + b, 0), old.reduce((a, b) => a + b, 0), `${name}: density unchanged`);
      // A tensor ERK keeps dense has nothing to grow into; every other one moves.
      if (old.some((x) => x === 0)) assert.ok(now.some((x, i) => x !== old[i]), `${name}: the mask moved`);
      const grown = resets.get(name)!;
      grown.forEach((x, i) => { if (x === 1) assert.ok(old[i] === 0 && now[i] === 1, `${name}[${i}]: reset only where grown`); });
      const w = model.params.get(name)!.dataSync();
      grown.forEach((x, i) => { if (x === 1) assert.ok(w[i] === 0, `grown weights start at zero, got ${w[i]}`); });
    }
    for (const i of favoured) assert.equal(masks.values("fc2/kernel")![i], 1, `the largest-gradient weight ${i} was grown`);
    gradients.forEach((g) => g.dispose());
    train.dispose(); masks.dispose(); disposeModel(model);
  });
});

describe("SET and static sparse", () => {
  /** A 10 %-dense random ERK mask on a fresh LeNet-300-100, as a dynamic or static method starts. */
  async function sparseStart(method: string, params: Record<string, string | number>, seed: number) {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 11);
    const masks = new MaskSet();
    const train = split(32, 6);
    const init = snapshot(model);
    await pruneStep({ model, masks, method: getMethod(method), params, prunable: PRUNABLE, density: 0.1, train, seed, step: 0, randomMask: getMethod(method).schedule(params).kind === "dynamic" });
    return { model, masks, train, init };
  }

  test("static-sparse: a random mask at ERK densities at initialization, different per seed, never updated", async () => {
    const m = getMethod("static-sparse");
    assert.deepEqual(m.schedule({ distribution: "erk" }), { kind: "at-init", rounds: 1 });
    assert.equal(m.regrowth, undefined, "nothing regrows: the mask is fixed");
    const a = await sparseStart("static-sparse", { distribution: "erk" }, 0);
    const b = await sparseStart("static-sparse", { distribution: "erk" }, 1);
    const names = a.masks.names();
    const shapes = names.map((n) => a.model.params.get(n)!.shape);
    const expected = erkDensities(shapes, 0.1);
    names.forEach((n, i) => {
      assert.ok(Math.abs(density(a.masks, n) - expected[i]) < 1e-3, `${n}: density ${density(a.masks, n)} vs ERK ${expected[i]}`);
      if (expected[i] < 1) assert.notDeepEqual(a.masks.values(n), b.masks.values(n), `${n}: another seed, other positions`);
    });
    // Not the magnitude ranking: the kept weights are not the largest |w| of the initial weights.
    const w = a.init.get("fc1/kernel")!;
    const kept = [...a.masks.values("fc1/kernel")!.keys()].filter((i) => a.masks.values("fc1/kernel")![i] === 1);
    const cut = Float32Array.from(w, Math.abs).sort()[Math.floor(w.length * (1 - expected[0]))];
    assert.ok(kept.filter((i) => Math.abs(w[i]) >= cut).length < kept.length / 2, "positions are random, not by magnitude");
    for (const x of [a, b]) { x.train.dispose(); x.masks.dispose(); disposeModel(x.model); }
  });

  test("SET's update drops the smallest |w| and grows the same number at seeded random positions, without gradients", async () => {
    const set = getMethod("set");
    const params = { interval: 10, drop_fraction: 0.3, end: 1 };
    assert.equal(set.regrowth!(params), "random");
    assert.equal(set.schedule(params).kind, "dynamic");
    const grownWith = async (seed: number) => {
      const { model, masks, train } = await sparseStart("set", params, 0);
      // Train-like weights: every active weight gets a distinct magnitude, so "smallest |w|" is well defined.
      const before = masks.values("fc1/kernel")!.slice();
      const w = model.params.get("fc1/kernel")!;
      const values = Float32Array.from(w.dataSync(), (x, i) => (before[i] ? (x >= 0 ? 1 : -1) * (1 + i / before.length) : 0));
      w.assign(tf.tensor(values, w.shape));
      const active = [...before.keys()].filter((i) => before[i] === 1);
      const k = Math.round(0.3 * active.length);
      const smallest = active.sort((x, y) => Math.abs(values[x]) - Math.abs(values[y])).slice(0, k);
      const grownAt: number[] = [];
      await regrowStep({
        model, masks, method: set, params, prunable: PRUNABLE, fraction: 0.3, regrowth: "random", train, seed, step: 1,
        resetOptimizerState: (name, where) => { if (name === "fc1/kernel") where.dataSync().forEach((x, i) => { if (x === 1) grownAt.push(i); }); },
      });
      const after = masks.values("fc1/kernel")!;
      assert.equal(after.reduce((a, b) => a + b, 0), active.length, "density unchanged");
      for (const i of active) if (!smallest.includes(i)) assert.equal(after[i], 1, `weight ${i} (not among the smallest) survives`);
      assert.ok(grownAt.every((i) => before[i] === 0), "only weights that were inactive count as grown");
      // The k smallest were dropped; k were grown among everything then inactive (a just-dropped one may come back).
      assert.equal(smallest.filter((i) => after[i] === 1).length + grownAt.length, k);
      assert.ok(grownAt.length > k / 2, "most growth lands on weights that were inactive before");
      train.dispose(); masks.dispose(); disposeModel(model);
      return grownAt;
    };
    const a = await grownWith(0);
    assert.deepEqual(await grownWith(0), a, "seeded: the same positions again");
    assert.notDeepEqual(await grownWith(5), a, "another seed grows elsewhere");
  });
});

describe("sanity ablations (Frankle et al. 2021; Su et al. 2020)", () => {
  test("the phase plan ablates right after the last prune of one-shot and at-init, and refuses schedules whose masks keep changing", () => {
    assert.deepEqual(phasePlan({ kind: "one-shot" }, 0.2, "layer-shuffle").map((s) => s.kind), ["prune", "ablate", "train"]);
    assert.deepEqual(phasePlan({ kind: "at-init", rounds: 3 }, 0.2, "reinit").map((s) => (s.kind === "ablate" ? `ablate:${s.ablation}` : s.kind)),
      ["rewind-to-init", "prune", "prune", "prune", "ablate:reinit", "train", "train"]);
    assert.deepEqual(phasePlan({ kind: "one-shot" }, 0.2, "none"), phasePlan({ kind: "one-shot" }, 0.2), "none is today's plan");
    assert.deepEqual(phasePlan({ kind: "at-init", rounds: 2 }, 0.2, "none"), phasePlan({ kind: "at-init", rounds: 2 }, 0.2));
    const moving: Schedule[] = [
      { kind: "gradual", start: 0, end: 1, frequency: 1, initialSparsity: 0 },
      { kind: "dynamic", interval: 10, dropFraction: 0.3, end: 0.75, decay: "cosine" },
      { kind: "iterative", rate: 0.5, maxRounds: 10, rewind: "init", rewindEpoch: 0 },
    ];
    for (const schedule of moving) assert.throws(() => phasePlan(schedule, 0.2, "layer-shuffle"), new RegExp(`a ${schedule.kind} schedule keeps changing them`));
  });

  test("a shuffled mask keeps its count, moves its positions, is seeded, and is uniform over positions", () => {
    const mask = new Float32Array(1000).map((_, i) => (i < 100 ? 1 : 0));
    const a = shuffledMask(mask, 0, "fc1/kernel");
    assert.equal(a.reduce((x, y) => x + y, 0), 100);
    assert.ok(a.every((x) => x === 0 || x === 1));
    assert.ok(a.slice(0, 100).reduce((x, y) => x + y, 0) < 40, "the survivors left the block they were in");
    assert.deepEqual(shuffledMask(mask, 0, "fc1/kernel"), a, "same seed, same positions");
    assert.notDeepEqual(shuffledMask(mask, 1, "fc1/kernel"), a, "another seed, other positions");
    // Each position is kept with probability 1/10: over 400 draws its count is Binomial(400, 0.1), mean 40, sd 6.
    const hits = new Float64Array(1000);
    for (let seed = 0; seed < 400; seed++) shuffledMask(mask, seed, "uniform").forEach((x, i) => (hits[i] += x));
    const firstBlock = hits.slice(0, 100).reduce((x, y) => x + y, 0) / 100;
    const rest = hits.slice(100).reduce((x, y) => x + y, 0) / 900;
    assert.ok(Math.abs(firstBlock - 40) < 3 && Math.abs(rest - 40) < 1.5, `mean hits ${firstBlock} (old positions) vs ${rest} (others)`);
    assert.ok(Math.max(...hits) < 75 && Math.min(...hits) > 12, `no position favoured: ${Math.min(...hits)}..${Math.max(...hits)}`);
  });

  async function prunedMlp(seed: number): Promise<{ model: Model; masks: MaskSet; before: Map<string, Float32Array>; train: StagedSplit }> {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, seed, "torch-default");
    const masks = new MaskSet();
    const train = split(32, 9);
    const before = new Map([...snapshot(model)].map(([n, v]) => [n, v.slice()]));
    await pruneStep({ model, masks, method: getMethod("global-magnitude"), params: {}, prunable: PRUNABLE, density: 0.2, train, seed, step: 0 });
    return { model, masks, before, train };
  }

  test("layer-shuffle keeps each layer's count, moves its survivors (seeded), which take their values from before pruning", async () => {
    const run = async (seed: number) => {
      const { model, masks, before, train } = await prunedMlp(seed);
      const old = new Map(masks.names().map((n) => [n, masks.values(n)!.slice()]));
      ablateStep({ model, masks, ablation: "layer-shuffle", seed, init: "torch-default", beforePruning: before });
      const now = new Map(masks.names().map((n) => [n, masks.values(n)!.slice()]));
      for (const [name, m] of old) {
        const next = now.get(name)!;
        assert.equal(next.reduce((a, b) => a + b, 0), m.reduce((a, b) => a + b, 0), `${name}: same count`);
        const d = m.reduce((a, b) => a + b, 0) / m.length;
        const stayed = next.reduce((n, x, i) => n + (x === 1 && m[i] === 1 ? 1 : 0), 0) / m.reduce((a, b) => a + b, 0);
        // A random survivor sits where an old one did with probability the layer's density, whatever the method kept.
        assert.ok(Math.abs(stayed - d) < 0.05, `${name}: ${stayed} of the survivors stayed put, density ${d}`);
        if (d < 1) assert.notDeepEqual(next, m, `${name}: the positions moved`);
        const w = model.params.get(name)!.dataSync();
        const b = before.get(name)!;
        // (A masked weight is ±0: its mask multiplied it.)
        next.forEach((x, i) => assert.ok(x === 1 ? w[i] === b[i] : w[i] === 0, `${name}[${i}]: ${w[i]}`));
      }
      train.dispose(); masks.dispose(); disposeModel(model);
      return now;
    };
    const a = await run(4);
    const again = await run(4);
    for (const [name, m] of a) assert.deepEqual(again.get(name), m, `${name}: same seed, same positions`);
  });

  test("reinit keeps the mask, changes the surviving values, and draws them from the init distribution", async () => {
    const { model, masks, before, train } = await prunedMlp(6);
    const old = new Map(masks.names().map((n) => [n, masks.values(n)!.slice()]));
    const pruned = new Map(masks.names().map((n) => [n, model.params.get(n)!.dataSync().slice()]));
    const bias = model.params.get("fc1/bias")!.dataSync().slice();
    ablateStep({ model, masks, ablation: "reinit", seed: 6, init: "torch-default", beforePruning: before });
    assert.deepEqual(model.params.get("fc1/bias")!.dataSync(), bias, "what the method did not mask keeps its values");
    for (const [name, m] of old) {
      assert.deepEqual(masks.values(name), m, `${name}: the same mask`);
      const w = model.params.get(name)!.dataSync();
      const p = pruned.get(name)!;
      const survivors = [...m.keys()].filter((i) => m[i] === 1);
      m.forEach((x, i) => { if (x === 0) assert.ok(w[i] === 0, `${name}[${i}] stays pruned: ${w[i]}`); });
      const changed = survivors.filter((i) => w[i] !== p[i]).length;
      assert.ok(changed > 0.99 * survivors.length, `${name}: ${changed} of ${survivors.length} values changed`);
      // torch-default: U(±1/sqrt(fan_in)), as the layer's own initial weights (all of them, not only magnitude's
      // survivors, which are the large ones): same bound, mean 0, variance bound²/3.
      const bound = 1 / Math.sqrt(model.params.get(name)!.shape[0]);
      const drawn = survivors.map((i) => w[i]);
      const mean = drawn.reduce((a, b) => a + b, 0) / drawn.length;
      const variance = drawn.reduce((a, b) => a + (b - mean) ** 2, 0) / drawn.length;
      const own = before.get(name)!;
      const ownVariance = own.reduce((a, b) => a + b * b, 0) / own.length;
      assert.ok(drawn.every((x) => Math.abs(x) <= bound), `${name}: within the init bound`);
      const se = bound * bound / 3 * Math.sqrt(0.8 / drawn.length) * 4;
      assert.ok(Math.abs(variance - bound * bound / 3) < se + 0.05 * bound * bound / 3, `${name}: variance ${variance} vs ${bound * bound / 3}`);
      assert.ok(Math.abs(variance - ownVariance) < 0.1 * ownVariance, `${name}: variance ${variance} vs the layer's own init ${ownVariance}`);
      assert.ok(Math.abs(mean) < 4 * bound / Math.sqrt(3 * drawn.length), `${name}: mean ${mean}`);
      // Magnitude's survivors in a sparse layer are the large initial weights; the re-drawn ones are not.
      const survivorVariance = survivors.reduce((a, i) => a + p[i] * p[i], 0) / survivors.length;
      if (survivors.length < 0.5 * m.length) assert.ok(survivorVariance > 1.5 * variance, `${name}: the kept weights were large (${survivorVariance}), the re-drawn are not (${variance})`);
    }
    train.dispose(); masks.dispose(); disposeModel(model);
  });
});

describe("sanity ablations through a sweep", () => {
  test("none reproduces a grid without the axis (same keys, same metrics); layer-shuffle and reinit are their own series at the same per-layer counts", () => {
    const dir = tempDir();
    const cache = join(dir, "cache");
    const edit = (path: string, extra: string) => writeFileSync(path, readFileSync(path, "utf8")
      .replace("methods: [random, global-magnitude]", "methods: [snip]")
      .replace("sparsities: [0.5, 0.9]", "sparsities: [0.9]") + extra);
    const sweep = (sub: string, extra: string) => {
      const d = join(dir, sub);
      mkdirSync(d);
      const grid = writeTinyGrid(d);
      edit(grid, extra);
      const r = bench(["sweep", grid, "--db", join(d, "r.db"), "--cache-dir", cache, "--jobs", "1", "--plain"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      return new Database(join(d, "r.db"), { readonly: true });
    };
    const plain = sweep("plain", "");
    const ablated = sweep("ablated", "ablations: [none, layer-shuffle, reinit]\n");
    const runs = (d: Database.Database) => d.prepare(`SELECT key, method_label AS label FROM runs ORDER BY method_label`).all() as Array<{ key: string; label: string }>;
    const metrics = (d: Database.Database, key: string) => Object.fromEntries((d.prepare(`SELECT name, value FROM metrics WHERE run_key = ? AND name NOT LIKE '%seconds' AND name NOT LIKE '%_ms' AND name NOT IN ('measured_speedup', 'train_img_per_s', 'peak_rss_mb')`).all(key) as Array<{ name: string; value: number }>).map((m) => [m.name, m.value]));
    const counts = (d: Database.Database, key: string) => (d.prepare(`SELECT name, nonzero FROM layers WHERE run_key = ? ORDER BY idx`).all(key) as Array<{ name: string; nonzero: number }>).map((l) => `${l.name}:${l.nonzero}`);
    const [base] = runs(plain);
    const byLabel = new Map(runs(ablated).map((r) => [r.label, r.key]));
    assert.deepEqual([...byLabel.keys()], ["snip", "snip+layer-shuffle", "snip+reinit"]);
    assert.equal(base.label, "snip");
    assert.equal(byLabel.get("snip"), base.key, "ablation none keeps the key of a grid without the axis");
    const m0 = metrics(plain, base.key);
    assert.ok(Object.keys(m0).length > 10);
    assert.deepEqual(metrics(ablated, base.key), m0, "and computes the same numbers");
    for (const label of ["snip+layer-shuffle", "snip+reinit"]) {
      const key = byLabel.get(label)!;
      assert.notEqual(key, base.key);
      assert.deepEqual(counts(ablated, key), counts(plain, base.key), `${label}: the per-layer counts of snip's masks`);
      assert.notEqual(metrics(ablated, key).loss_before, m0.loss_before, `${label}: another network before training`);
      const config = JSON.parse((ablated.prepare(`SELECT config_json FROM runs WHERE key = ?`).get(key) as { config_json: string }).config_json);
      assert.equal(config.ablation, label.split("+")[1], "the stored config says what the run did");
    }
    plain.close();
    ablated.close();
  });
});

describe("dynamic dead neuron rate (DNR)", () => {
  const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 32, lr: 0.01 };
  async function dnrOf(setup: (model: Model) => void): Promise<number[]> {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0, "torch-default");
    const train = split(128, 5);
    setup(model);
    const r = await trainPhase({ phase: "finetune", model, train, val: train, config: { ...config, epochs: 2 }, masks: new MaskSet(), seed: 0, selectBestOnVal: false });
    train.dispose();
    disposeModel(model);
    return r.epochs.map((e) => e.dnr);
  }

  test("a network whose first layer's biases are very negative is all dead: DNR 1 in every epoch", async () => {
    const dnr = await dnrOf((m) => {
      const bias = m.params.get("fc1/bias") as tf.Variable;
      bias.assign(tf.fill(bias.shape, -1e4));
      // torch-default draws fc2's bias at random: zeroed (Keras' default) so its ReLUs cannot be revived by it.
      const bias2 = m.params.get("fc2/bias") as tf.Variable;
      bias2.assign(tf.zerosLike(bias2));
    });
    // fc1's ReLUs output 0, so fc2 sees only zeros and its ReLUs output relu(bias) = relu(0) = 0 too (and with no
    // gradient through a ReLU at 0, nothing revives them during the epochs).
    dnr.forEach((d, e) => assert.ok(d > 0.999 && d <= 1, `epoch ${e}: ${d}`));
  });

  test("a fresh network on centred inputs has about half its ReLU outputs at 0", async () => {
    const dnr = await dnrOf(() => {});
    dnr.forEach((d, e) => assert.ok(Math.abs(d - 0.5) < 0.15, `epoch ${e}: ${d}`));
  });

  test("counting zeros changes nothing the forward pass computes", () => {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0, "torch-default");
    const x = tf.randomUniform([8, 28, 28, 1], -0.5, 0.5, "float32", 3);
    const plain = forward(model, x, true);
    const counted = forward(model, x, true, true);
    assert.deepEqual(counted.logits.dataSync(), plain.logits.dataSync());
    assert.equal(counted.reluUnits, 8 * (300 + 100));
    const zeros = counted.reluZeros!.dataSync()[0];
    assert.ok(zeros > 0 && zeros < counted.reluUnits && Number.isInteger(zeros), String(zeros));
    disposeModel(model);
  });
});
