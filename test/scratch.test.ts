/**
 * Training the pruned architecture from scratch (Liu et al. 2019, "Rethinking the Value of Network Pruning"): the
 * one-shot schedule's `scratch` variant, its plan, the compute budget of Scratch-B, and what defines the method: the
 * global magnitude mask of the trained model, with every weight a fresh random draw, trained for the dense epochs
 * (Scratch-E) or for floor(epochs × min(cap, dense MACs / sparse MACs)) epochs (Scratch-B).
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import Database from "better-sqlite3";
import { getMethod } from "../methods/index.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import { DEFAULT_PRETRAIN } from "../src/grid/index.js";
import { scheduleProblem, type Schedule } from "../src/prune/schedules.js";
import { readCheckpoint } from "../src/run/checkpoint.js";
import { rewindPoints, rewindTo } from "../src/run/execute-job.js";
import { phasePlan } from "../src/run/phase-plan.js";
import { pruneStep } from "../src/run/prune-step.js";
import { budgetEpochs, macsRatio, stretchedConfig } from "../src/run/train-budget.js";
import { stage, trainPhase, type StagedSplit } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { learningRate } from "../src/train/optim.js";
import { createModel, disposeModel, redrawnInitialWeights, restore, snapshot } from "../src/train/model.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";
import { smallConfig } from "./helpers/config.js";

await initBackend("cpu");

const DEFAULTS = { budget: "e", cap: 2, scope: "global" };
const scratchSchedule = (params: Record<string, string | number> = {}): Schedule => getMethod("scratch").schedule({ ...DEFAULTS, ...params });

describe("the scratch schedule and its plan", () => {
  test("budget e is one-shot with a scratch retrain for the dense epochs; b carries the MAC budget and its cap", () => {
    assert.deepEqual(scratchSchedule(), { kind: "one-shot", scratch: { budget: "epochs" } });
    assert.deepEqual(scratchSchedule({ budget: "b", cap: 3 }), { kind: "one-shot", scratch: { budget: "macs", cap: 3 } });
    assert.equal(getMethod("scratch").distribution(DEFAULTS), "global");
    assert.equal(getMethod("scratch").distribution({ ...DEFAULTS, scope: "layer" }), "layer");
  });

  test("the plan: prune once, re-draw the weights, train with the pretraining config; plain one-shot still fine-tunes", () => {
    assert.deepEqual(phasePlan(scratchSchedule(), 0.1), [
      { kind: "prune", density: 0.1, round: 0, random: false },
      { kind: "rewind", to: "reinit" },
      { kind: "train", phase: "pretrain", during: "none" },
    ]);
    assert.deepEqual(phasePlan(scratchSchedule({ budget: "b" }), 0.1).at(-1), { kind: "train", phase: "pretrain", during: "none", budget: { by: "macs", cap: 2 } });
    assert.deepEqual(phasePlan({ kind: "one-shot" }, 0.1), [
      { kind: "prune", density: 0.1, round: 0, random: false },
      { kind: "train", phase: "finetune", during: "none" },
    ]);
    // A layer-shuffle ablation moves the survivors before the weights are drawn again.
    assert.deepEqual(phasePlan(scratchSchedule(), 0.1, "layer-shuffle").map((s) => s.kind), ["prune", "ablate", "rewind", "train"]);
  });

  test("scheduleProblem refuses a bad budget or a cap below 1, with what is valid", () => {
    assert.equal(scheduleProblem(scratchSchedule({ budget: "b" })), null);
    assert.match(scheduleProblem({ kind: "one-shot", scratch: { budget: "macs", cap: 0.5 } }) ?? "", /scratch cap .* must be a number >= 1, got 0\.5/);
    assert.match(scheduleProblem({ kind: "one-shot", scratch: { budget: "macs", cap: NaN } }) ?? "", /must be a number >= 1, got NaN/);
    assert.match(scheduleProblem({ kind: "one-shot", scratch: { budget: "flops" } } as unknown as Schedule) ?? "", /scratch budget must be "epochs" \(Scratch-E\) or "macs" \(Scratch-B\), got "flops"/);
  });

  test("a grid asking for a cap below 1 or an unknown budget is refused before anything runs, naming line and key", () => {
    const dir = tempDir();
    const grid = writeTinyGrid(dir);
    writeFileSync(grid, readFileSync(grid, "utf8").replace("methods: [random, global-magnitude]", "methods: [scratch, {name: scratch, budget: b, cap: 0.5}, {name: scratch, budget: c}]"));
    const r = bench(["validate", grid]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /tiny\.yaml:2: methods\[1\]\.cap: .*0\.5/);
    assert.match(r.stderr, /tiny\.yaml:2: methods\[2\]\.budget: .*"c"?.*e, b/);
  });
});

describe("Scratch-B's budget", () => {
  test("floor(epochs × min(cap, dense / sparse MACs)), never below the dense epochs", () => {
    assert.equal(budgetEpochs(2, 2.5, 3), 5);
    assert.equal(budgetEpochs(2, 2.5, 2), 4, "capped");
    assert.equal(budgetEpochs(3, 1.7, 2), 5, "5.1 rounds down, as the authors' int()");
    assert.equal(budgetEpochs(10, 2.3, 5), 23, "an integer up to float rounding keeps its last epoch");
    assert.equal(budgetEpochs(20, 50, 2), 40);
    assert.equal(budgetEpochs(20, 1, 2), 20, "a dense model trains its own epochs");
    assert.throws(() => budgetEpochs(20, 2, 0.5), /cap must be >= 1/);
  });

  test("the LR schedule stretches with the epochs: the same LR at the same fraction of the run", () => {
    for (const schedule of ["step", "cosine", "constant"] as const) {
      const base = { ...DEFAULT_PRETRAIN, epochs: 4, stepEpochs: 2, warmupEpochs: 1, schedule };
      const long = stretchedConfig(base, 10);
      assert.equal(long.epochs, 10);
      for (const x of [0, 0.3, 1, 1.7, 2, 2.5, 3.9]) {
        assert.ok(Math.abs(learningRate(long, x * 2.5) - learningRate(base, x)) < 1e-12, `${schedule} at ${x}/4`);
      }
    }
    const same = { ...DEFAULT_PRETRAIN, epochs: 4 };
    assert.equal(stretchedConfig(same, 4), same);
  });

  test("dense / effective MACs: each layer's MACs scale with its kernel's density; bias masks change nothing", () => {
    const layers = createModel(getArch("mlp"), [28, 28, 1], 10, 0, "torch-default");
    const half = (n: number) => Float32Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 1 : 0));
    const masks = new Map([["fc1/kernel", half(784 * 300)], ["fc1/bias", new Float32Array(300)]]);
    // LeNet-300-100: 266,200 MACs, 235,200 of them fc1's; half of fc1 leaves 148,600.
    assert.ok(Math.abs(macsRatio(layers.layers, masks) - 266200 / (266200 - 117600)) < 1e-12);
    assert.equal(macsRatio(layers.layers, new Map()), 1);
    disposeModel(layers);
  });
});

describe("what defines scratch: the trained model's magnitude mask, fresh weights", () => {
  function split(n: number, seed: number): StagedSplit {
    const rng = makeRng(seed, "scratch-data");
    return stage({ x: new Float32Array(n * 784).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, [28, 28, 1]);
  }
  const PRUNABLE = { biases: false, batchNorm: false, classifier: true, firstLayer: true };

  test("Scratch-E's weights before training: the global |w| mask of the trained model, every value a fresh draw", async () => {
    const config = smallConfig({ method: { name: "scratch", params: DEFAULTS }, pretrain: { ...smallConfig().pretrain, epochs: 2, batchSize: 32 } });
    const train = split(96, 1);
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0, config.model.init);
    const masks = new MaskSet();
    const init = snapshot(model);
    await trainPhase({ phase: "pretrain", model, train, val: train, config: config.pretrain, masks, seed: 0, selectBestOnVal: false });
    const trained = snapshot(model);
    const density = 0.1;
    const plan = phasePlan(scratchSchedule(), density);
    const points = await rewindPoints(plan, model, { train, val: train }, masks, init, trained, config);
    // The runner's own steps, up to the training.
    for (const step of plan) {
      if (step.kind === "prune") await pruneStep({ model, masks, method: getMethod("scratch"), params: DEFAULTS, prunable: PRUNABLE, density: step.density, train, seed: 0, step: step.round });
      else if (step.kind === "rewind") rewindTo(model, masks, points.get(step.to)!);
      else break;
    }
    const start = snapshot(model);

    // The mask: exactly what one-shot global magnitude gives on the trained model ...
    const reference = createModel(getArch("mlp"), [28, 28, 1], 10, 0, config.model.init);
    const referenceMasks = new MaskSet();
    restore(reference, trained);
    await pruneStep({ model: reference, masks: referenceMasks, method: getMethod("global-magnitude"), params: {}, prunable: PRUNABLE, density, train, seed: 0, step: 0 });
    assert.deepEqual(masks.names().sort(), referenceMasks.names().sort());
    for (const name of masks.names()) assert.deepEqual(masks.values(name), referenceMasks.values(name), name);
    // ... which is one threshold on the trained |w| over all layers, at the target density.
    let kept = 0;
    let total = 0;
    let smallestKept = Infinity;
    let largestPruned = 0;
    for (const name of masks.names()) {
      const m = masks.values(name)!;
      const w = trained.get(name)!;
      m.forEach((keep, i) => {
        total++;
        if (keep === 1) { kept++; smallestKept = Math.min(smallestKept, Math.abs(w[i])); } else largestPruned = Math.max(largestPruned, Math.abs(w[i]));
      });
    }
    assert.equal(kept, Math.round(density * total));
    assert.ok(smallestKept >= largestPruned, `global threshold: kept ${smallestKept} >= pruned ${largestPruned}`);

    // The values: a fresh draw of the initial distribution (the reinit stream), neither the trained nor the initial
    // weights; pruned ones exactly 0; the unpruned biases drawn afresh too.
    const fresh = redrawnInitialWeights(createModel(getArch("mlp"), [28, 28, 1], 10, 0, config.model.init), 0, config.model.init, "reinit");
    let survivors = 0;
    let likeInit = 0;
    let likeTrained = 0;
    for (const name of masks.names()) {
      const m = masks.values(name)!;
      const w = start.get(name)!;
      m.forEach((keep, i) => {
        if (keep === 0) return assert.ok(w[i] === 0, `${name}[${i}] pruned: ${w[i]}`);
        survivors++;
        assert.equal(w[i], fresh.get(name)![i], `${name}[${i}]`);
        if (w[i] === init.get(name)![i]) likeInit++;
        if (w[i] === trained.get(name)![i]) likeTrained++;
      });
    }
    assert.ok(survivors > 20000, `not vacuous: ${survivors} survivors`);
    assert.ok(likeInit < survivors / 1000 && likeTrained < survivors / 1000, `${likeInit} like init, ${likeTrained} like trained of ${survivors}`);
    for (const layer of ["fc1", "fc2", "fc3"]) {
      const b = start.get(`${layer}/bias`)!;
      assert.deepEqual(b, fresh.get(`${layer}/bias`), `${layer}/bias re-drawn`);
      assert.notDeepEqual(b, trained.get(`${layer}/bias`));
    }
    // The same distribution as the model's own initialisation: fc1's spread within a few percent of init's.
    const std = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
    assert.ok(Math.abs(std(fresh.get("fc1/kernel")!) / std(init.get("fc1/kernel")!) - 1) < 0.02);

    [model, reference].forEach(disposeModel);
    masks.dispose(); referenceMasks.dispose(); train.dispose();
  });
});

describe("scratch through a sweep", () => {
  test("Scratch-E trains the dense epochs, Scratch-B floor(epochs × min(cap, MAC ratio)), both from chance on the magnitude mask", () => {
    const dir = tempDir();
    const grid = writeTinyGrid(dir);
    // LeNet-300-100 with every kernel prunable: its MACs are its kernel weights, so at sparsity 0.6 the ratio is 2.5.
    writeFileSync(grid, readFileSync(grid, "utf8")
      .replace("methods: [random, global-magnitude]", "methods: [global-magnitude, scratch, {name: scratch, budget: b}, {name: scratch, budget: b, cap: 3}]")
      .replace("sparsities: [0.5, 0.9]", "sparsities: [0.6]")
      .replace("data: {train_subset: 600, test_subset: 400}", "data: {train_subset: 300, test_subset: 200}"));
    const db = join(dir, "r.db");
    const art = join(dir, "art");
    const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", art, "--jobs", "1", "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = new Database(db, { readonly: true });
    const rows = d.prepare(`SELECT r.key, r.method, r.config_json,
        (SELECT value FROM metrics WHERE run_key = r.key AND name = 'macs_dense') AS macsDense,
        (SELECT value FROM metrics WHERE run_key = r.key AND name = 'macs_effective') AS macsEffective,
        (SELECT value FROM metrics WHERE run_key = r.key AND name = 'top1_before') AS before,
        (SELECT value FROM metrics WHERE run_key = r.key AND name = 'sparsity') AS sparsity,
        (SELECT group_concat(phase) FROM (SELECT phase FROM epochs WHERE run_key = r.key ORDER BY phase, epoch)) AS phases,
        (SELECT path FROM artifacts WHERE run_key = r.key AND kind = 'masks') AS masks
      FROM runs r`).all() as Array<{ key: string; method: string; config_json: string; macsDense: number; macsEffective: number; before: number; sparsity: number; phases: string; masks: string }>;
    d.close();
    const byLabel = new Map(rows.map((x) => {
      const p = JSON.parse(x.config_json).method.params as Record<string, unknown>;
      return [x.method === "scratch" ? `scratch-${p.budget}${p.budget === "b" ? `-${p.cap}` : ""}` : x.method, x];
    }));
    assert.deepEqual([...byLabel.keys()].sort(), ["global-magnitude", "scratch-b-2", "scratch-b-3", "scratch-e"]);
    const dense = 2;
    const epochs = (label: string) => byLabel.get(label)!.phases.split(",");
    for (const [label, x] of byLabel) assert.ok(Math.abs(x.sparsity - 0.6) < 1e-3, `${label}: sparsity ${x.sparsity}`);

    // Scratch trains its own network: the dense model's epochs are not its history, and its own are pretraining.
    assert.deepEqual(epochs("scratch-e"), ["pretrain", "pretrain"]);
    const ratio = byLabel.get("scratch-b-3")!.macsDense / byLabel.get("scratch-b-3")!.macsEffective;
    assert.ok(Math.abs(ratio - 2.5) < 1e-3, `MAC ratio ${ratio}`);
    assert.equal(epochs("scratch-b-3").length, Math.floor(dense * Math.min(3, ratio) + 1e-9));
    assert.equal(epochs("scratch-b-3").length, 5);
    assert.equal(epochs("scratch-b-2").length, 4, "capped at 2x the dense epochs");
    assert.ok(epochs("scratch-b-3").every((p) => p === "pretrain"));
    // Fine-tuning keeps the dense history (2 pretraining epochs) and adds its own.
    assert.deepEqual(epochs("global-magnitude"), ["finetune", "pretrain", "pretrain"]);

    // Every scratch run trains global magnitude's exact mask, from weights that know nothing yet.
    const maskOf = (label: string) => readCheckpoint(byLabel.get(label)!.masks).tensors;
    const reference = maskOf("global-magnitude");
    for (const label of ["scratch-e", "scratch-b-2", "scratch-b-3"]) {
      const m = maskOf(label);
      assert.deepEqual([...m.keys()].sort(), [...reference.keys()].sort());
      for (const [name, t] of reference) assert.deepEqual(m.get(name)!.data, t.data, `${label} ${name}`);
      assert.ok(byLabel.get(label)!.before < 0.3, `${label}: top1_before ${byLabel.get(label)!.before}`);
    }
    assert.ok(byLabel.get("global-magnitude")!.before > 0.4, "not vacuous: the pruned trained model is far above chance");
  });
});

describe("re-initialised weights", () => {
  test("batch norm starts from its initial constants, not from the trained model's values", () => {
    const model = createModel(getArch("resnet20"), [8, 8, 3], 10, 0, "torch-default");
    const initial = snapshot(model);
    const gammas = [...model.params.keys()].filter((n) => n.endsWith("/gamma"));
    assert.ok(gammas.length > 0);
    // As if trained: every batch-norm scale moved away from its constant 1.
    restore(model, new Map([...snapshot(model)].map(([n, v]) => [n, n.endsWith("/gamma") ? v.map(() => 5) : v])));
    const redrawn = redrawnInitialWeights(model, 0, "torch-default", "reinit", initial);
    for (const name of gammas) assert.deepEqual([...redrawn.get(name)!], [...initial.get(name)!], name);
    assert.ok(initial.get(gammas[0])!.every((g) => g === 1));
    disposeModel(model);
  });
});
