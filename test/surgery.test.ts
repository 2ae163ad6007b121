/**
 * Soft-mask training and the surgery schedule (Dynamic Network Surgery, Guo et al. 2016): masked weights keep
 * learning from the gradient of W⊙T while the model holds W⊙T; the bands prune, splice and hold; the update
 * probability (1 + γt)^−power decides whether a layer updates; a run ends at exactly its target.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import Database from "better-sqlite3";
import { getMethod } from "../methods/index.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import type { HyperValue } from "../src/core/types.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { scheduleProblem, type Schedule } from "../src/prune/schedules.js";
import { bandUpdate, cutToDensity, layerMoments, updateProbability, updatesAt, type SurgerySchedule } from "../src/prune/surgery.js";
import { phasePlan } from "../src/run/phase-plan.js";
import { startSurgery } from "../src/run/surgery-step.js";
import type { StepContext } from "../src/train/hooks.js";
import { stage, trainPhase, type StagedSplit } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, forward, restore, snapshot, type Model } from "../src/train/model.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

await initBackend("cpu");

const PRUNABLE = { biases: false, batchNorm: false, classifier: true, firstLayer: true };

function split(n: number, seed: number): StagedSplit {
  const rng = makeRng(seed, "surgery-data");
  return stage({ x: new Float32Array(n * 784).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, [28, 28, 1]);
}

const ones = (m: Float32Array) => m.reduce((a, b) => a + b, 0);

describe("soft masks", () => {
  test("a masked weight's dense value keeps learning from the gradient of W⊙T while the model holds W⊙T and computes the hard-masked forward", async () => {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 5);
    const masks = new MaskSet();
    const name = "fc2/kernel";
    const v = model.params.get(name)!;
    const rng = makeRng(1, "mask");
    const mask = new Float32Array(v.size).map(() => (rng() < 0.8 ? 0 : 1));
    // Set, not applied: the soft phase takes the variables' values as the dense weights.
    masks.set(name, mask, v.shape);
    const dense0 = Float32Array.from(v.dataSync());
    const train = split(64, 3);
    const lr = 0.1, wd = 0.001;
    const config = { ...DEFAULT_FINETUNE, epochs: 2, batchSize: 16, lr, momentum: 0, weightDecay: wd, schedule: "constant" as const };
    let previous = dense0;
    let steps = 0, checkedUpdates = 0;
    await trainPhase({
      phase: "finetune", model, train, val: train, config, masks, seed: 0, selectBestOnVal: false, masking: "soft",
      hooks: {
        wantsGradients: () => true,
        afterStep: (ctx) => {
          steps++;
          const dense = Float32Array.from(ctx.denseWeights!.get(name)!.dataSync());
          const w = v.dataSync();
          const g = ctx.gradients!.get(name)!.dataSync();
          let wrong = 0;
          for (let i = 0; i < w.length; i++) if (w[i] !== dense[i] * mask[i]) wrong++;
          assert.equal(wrong, 0, "the model's weights are W⊙T after every step");
          // Plain SGD on the dense weights with the unmasked gradient: w ← w − lr·(g + wd·w), pruned entries too.
          for (let i = 0; i < w.length; i++) {
            if (mask[i] !== 0 || g[i] === 0) continue;
            const expected = previous[i] - lr * (g[i] + wd * previous[i]);
            assert.ok(Math.abs(dense[i] - expected) <= 1e-6 * Math.max(1, Math.abs(expected)), `step ${ctx.globalStep}, pruned ${i}: ${dense[i]} vs ${expected}`);
            checkedUpdates++;
          }
          previous = dense;
        },
      },
    });
    assert.equal(steps, 8);
    assert.ok(checkedUpdates > 1000, `pruned weights with a gradient: ${checkedUpdates}`);
    const w = Float32Array.from(v.dataSync());
    const pruned = [...mask.keys()].filter((i) => mask[i] === 0);
    assert.ok(pruned.every((i) => w[i] === 0), "pruned weights are exactly 0 in the model after the phase");
    const moved = pruned.filter((i) => previous[i] !== dense0[i]).length;
    assert.ok(moved > pruned.length / 2, `the dense values of pruned weights moved: ${moved} of ${pruned.length}`);

    // The model computes what a hard-masked model with weights W⊙T computes, not what the dense W computes.
    const x = tf.tidy(() => tf.slice(train.x, [0, 0, 0, 0], [16, -1, -1, -1]));
    const hard = createModel(getArch("mlp"), [28, 28, 1], 10, 9);
    const weights = snapshot(model);
    restore(hard, weights);
    const logits = (m: Model) => tf.tidy(() => forward(m, x, false).logits).dataSync();
    assert.deepEqual(logits(model), logits(hard));
    restore(hard, new Map([...weights, [name, previous]]));
    assert.notDeepEqual(logits(model), logits(hard), "the dense weights would compute something else");
    x.dispose(); train.dispose(); masks.dispose(); disposeModel(model); disposeModel(hard);
  });

  test("the hard path gives no dense weights and keeps pruned gradients out", async () => {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 5);
    const masks = new MaskSet();
    const v = model.params.get("fc2/kernel")!;
    masks.set("fc2/kernel", new Float32Array(v.size).map((_, i) => i % 2), v.shape);
    const train = split(32, 3);
    let seen = 0;
    await trainPhase({
      phase: "finetune", model, train, val: train, config: { ...DEFAULT_FINETUNE, epochs: 1, batchSize: 16 }, masks, seed: 0, selectBestOnVal: false,
      hooks: { afterStep: (ctx) => { seen++; assert.equal(ctx.denseWeights, undefined); } },
    });
    assert.equal(seen, 2);
    assert.ok(v.dataSync().every((x, i) => i % 2 === 1 || x === 0));
    train.dispose(); masks.dispose(); disposeModel(model);
  });
});

describe("the surgery schedule", () => {
  const dns = getMethod("dns");
  const defaults = Object.fromEntries(Object.entries(dns.params).map(([k, s]) => [k, s.default])) as Record<string, HyperValue>;
  const paramsWith = (p: Record<string, HyperValue>) => ({ ...defaults, ...p });

  test("dns: the surgery schedule after dense pretraining, soft masks, the authors' defaults; bad values refused", () => {
    const s = dns.schedule(defaults);
    assert.deepEqual(s, { kind: "surgery", c: "target", lower: 0.9, upper: 1.1, gamma: 1e-3, power: 1, stop: 8000 });
    assert.equal((dns.schedule(paramsWith({ c_from: "c_rate" })) as SurgerySchedule).c, 3);
    assert.deepEqual(phasePlan(s, 0.1), [{ kind: "train", phase: "finetune", during: "surgery", masking: "soft" }]);
    assert.equal(scheduleProblem(s), null);
    const bad = (x: Partial<SurgerySchedule>) => scheduleProblem({ ...s, ...x } as Schedule);
    assert.match(bad({ stop: 0 })!, /iter_stop must be an integer number of steps >= 1, got 0/);
    assert.match(bad({ stop: 2.5 })!, /iter_stop/);
    assert.match(bad({ gamma: -1 })!, /gamma must be a finite number >= 0, got -1/);
    assert.match(bad({ power: Number.NaN })!, /power must be a finite number >= 0/);
    assert.match(bad({ c: Infinity })!, /c must be a finite number or "target"/);
    assert.match(bad({ lower: 1.2, upper: 1.1 })!, /0 < lower <= upper/);
  });

  test("a band prunes an active weight at or under a, splices a pruned one over b, and leaves the band as it was", () => {
    const mask = Float32Array.of(1, 1, 1, 1, 0, 0, 0, 0);
    const scores = Float32Array.of(0.5, 1, 1.5, 3, 0.5, 1.5, 2, 2.5);
    assert.deepEqual([...bandUpdate(mask, scores, { lo: 1, hi: 2 })], [0, 0, 1, 1, 0, 0, 0, 1]);
  });

  /** A fresh LeNet-300-100 after the surgery's first cut, and a step context whose dense weights the test chooses. */
  async function started(p: Record<string, HyperValue>, density = 0.5, totalSteps = 100) {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 7);
    const masks = new MaskSet();
    const train = split(16, 4);
    const dense = new Map([...model.params].map(([n, w]) => [n, Float32Array.from(w.dataSync())]));
    const params = paramsWith(p);
    const schedule = dns.schedule(params) as SurgerySchedule;
    const surgery = await startSurgery({ model, masks, method: dns, params, prunable: PRUNABLE, schedule, density, train, seed: 0, totalSteps });
    const step = async (globalStep: number) => {
      const tensors = new Map([...dense].map(([n, d]) => [n, tf.tensor(d, model.params.get(n)!.shape)]));
      const ctx: StepContext = { phase: "finetune", epoch: 0, step: globalStep, globalStep, stepsPerEpoch: totalSteps, resetOptimizerState: () => {}, denseWeights: tensors };
      await surgery.afterStep(ctx);
      tensors.forEach((t) => t.dispose());
    };
    const done = () => { train.dispose(); masks.dispose(); disposeModel(model); };
    return { model, masks, dense, surgery, step, done };
  }

  test("fixed c: the first cut prunes |w| <= 0.9·max(μ + cσ, 0); later, a pruned weight grown past b comes back, an active one fallen under a goes, the band holds", async () => {
    const { masks, dense, step, done } = await started({ c_from: "c_rate", c_rate: 0.5, gamma: 0 });
    const name = "fc2/kernel";
    const w = dense.get(name)!;
    const { mu, sigma } = layerMoments([{ name, layer: "fc2", scores: w.map(Math.abs), mask: w.map(() => 1) }]).get("fc2")!;
    const m = Math.max(mu + 0.5 * sigma, 0);
    const first = masks.values(name)!.slice();
    assert.ok(first.every((x, i) => x === (Math.abs(w[i]) <= 0.9 * m ? 0 : 1)), "first cut at a = 0.9·max(μ + cσ, 0)");
    const prunedIdx = [...first.keys()].filter((i) => first[i] === 0);
    const activeIdx = [...first.keys()].filter((i) => first[i] === 1);
    const [grow, hold0] = prunedIdx;
    const [fall, hold1] = activeIdx;
    w[grow] = 1.12 * m; // past b = 1.1 m: spliced back
    w[hold0] = 1.05 * m; // in the band: stays pruned
    w[fall] = -0.85 * m; // under a = 0.9 m (sign ignored): pruned
    w[hold1] = 0.95 * m; // in the band: stays active
    await step(0);
    const after = masks.values(name)!;
    assert.deepEqual([after[grow], after[hold0], after[fall], after[hold1]], [1, 0, 0, 1]);
    assert.equal([...after].filter((x, i) => x !== first[i]).length, 2, "nothing else changed");
    // μ and σ are the ones from the start: dwarfing every weight now moves no threshold.
    for (let i = 0; i < w.length; i++) if (i !== grow) w[i] *= 1e-3;
    await step(1);
    assert.equal(ones(masks.values(name)!), 1, "all but the spliced weight fell under the start's a");
    done();
  });

  test("the probability (1 + γt)^−power decides whether a layer updates at step t", async () => {
    const s: SurgerySchedule = { kind: "surgery", c: 0, lower: 0.9, upper: 1.1, gamma: 1e-3, power: 1, stop: 4000 };
    assert.equal(updateProbability(s, 0), 1);
    assert.ok(Math.abs(updateProbability(s, 1000) - 0.5) < 1e-12);
    assert.ok(Math.abs(updateProbability({ ...s, power: 2 }, 1000) - 0.25) < 1e-12);
    assert.equal(updatesAt(s, 0, 0.999999), true, "step 0 always updates");
    assert.equal(updatesAt(s, 1000, 0.49), true);
    assert.equal(updatesAt(s, 1000, 0.51), false);
    assert.equal(updatesAt(s, 4000, 0), false, "never from iter_stop on");
    // Seeded draws: about Σ (1 + γt)^−1 updates, more early than late.
    const r = makeRng(3, "draws");
    const hits = Array.from({ length: 3999 }, (_, k) => updatesAt(s, k + 1, r()));
    const expected = hits.reduce((n, _, k) => n + updateProbability(s, k + 1), 0);
    const count = hits.filter(Boolean).length;
    assert.ok(Math.abs(count - expected) < 4 * Math.sqrt(expected), `${count} updates, expected ${expected.toFixed(0)}`);
    assert.ok(hits.slice(0, 1000).filter(Boolean).length > 2 * hits.slice(3000).filter(Boolean).length);

    // Through the engine: the same weight crossing its thresholds is spliced when the probability is 1 (power 0) and
    // left alone when it is ~0 (γ huge), once the first cut (step 0, always) is made.
    for (const [p, expect] of [[{ power: 0 }, 1], [{ gamma: 1e12 }, 0]] as const) {
      const { masks, dense, step, done } = await started({ c_from: "c_rate", c_rate: 0, ...p });
      const w = dense.get("fc1/kernel")!;
      const i = [...masks.values("fc1/kernel")!.keys()].find((k) => masks.values("fc1/kernel")![k] === 0)!;
      w[i] = 10;
      await step(0);
      assert.equal(masks.values("fc1/kernel")![i], expect, JSON.stringify(p));
      done();
    }
  });

  test("target: the first cut keeps exactly the target (one c for all layers, or every layer), the last cut brings a drifted mask back to it", async () => {
    for (const scope of ["global", "layer"]) {
      const { model, masks, dense, surgery, step, done } = await started({ scope, iter_stop: 10, gamma: 0 }, 0.1, 100);
      const names = masks.names();
      const total = names.reduce((n, x) => n + masks.values(x)!.length, 0);
      const kept = () => names.reduce((n, x) => n + ones(masks.values(x)!), 0);
      assert.equal(kept(), Math.round(0.1 * total), scope);
      if (scope === "layer") for (const x of names) assert.equal(ones(masks.values(x)!), Math.round(0.1 * masks.values(x)!.length), x);
      // Under one c, a layer whose |w| are large relative to its own spread is cut like any other: the density differs per layer.
      if (scope === "global") assert.notEqual(ones(masks.values("fc1/kernel")!) / masks.values("fc1/kernel")!.length, 0.1);
      assert.equal(surgery.lastChangeStep, 9, "the exact cut comes before step iter_stop");
      // Drift: every weight of fc1 grows past its b, so the band splices them all back.
      dense.get("fc1/kernel")!.forEach((x, i, a) => { a[i] = 10 * (x >= 0 ? 1 : -1); });
      await step(0);
      assert.ok(kept() > Math.round(0.1 * total), "the band spliced weights back");
      const before = new Map(names.map((x) => [x, masks.values(x)!.slice()]));
      await step(9);
      assert.equal(kept(), Math.round(0.1 * total), `${scope}: exactly the target after the last cut`);
      if (scope === "layer") for (const x of names) assert.equal(ones(masks.values(x)!), Math.round(0.1 * masks.values(x)!.length), x);
      // Fewest changes: fc1 only prunes (it is over its share), never splices.
      const fc1 = masks.values("fc1/kernel")!;
      assert.ok(fc1.every((x, i) => x <= before.get("fc1/kernel")![i]));
      const masksNow = new Map(names.map((x) => [x, masks.values(x)!.slice()]));
      await step(10);
      for (const x of names) assert.deepEqual(masks.values(x), masksNow.get(x), "no change after the last cut");
      assert.ok(model.params.size > 0);
      done();
    }
  });

  test("the last cut changes the fewest weights: over the target it prunes the lowest active, under it splices the highest pruned", () => {
    const t = (mask: number[], scores: number[]) => ({ name: "a", layer: "a", mask: Float32Array.from(mask), scores: Float32Array.from(scores) });
    const over = cutToDensity([t([1, 1, 1, 1, 0], [5, 1, 3, 4, 9])], 0.4, "layer").get("a")!;
    assert.deepEqual([...over], [1, 0, 0, 1, 0], "two kept of five: the two highest active; the high pruned one stays out");
    const under = cutToDensity([t([1, 0, 0, 0, 0], [0.1, 5, 1, 3, 4])], 0.6, "layer").get("a")!;
    assert.deepEqual([...under], [1, 1, 0, 0, 1], "three of five: the low active one stays, the two highest pruned come back");
  });
});

describe("dns through a sweep", () => {
  test("a dns run (c from the target, or the paper's fixed c) ends at exactly its target sparsity after training on the dense model", () => {
    const dir = tempDir();
    const grid = writeTinyGrid(dir);
    writeFileSync(grid, readFileSync(grid, "utf8")
      .replace("methods: [random, global-magnitude]", "methods: [{name: dns, iter_stop: 12, gamma: 0.01}, {name: dns, c_from: c_rate, iter_stop: 12}]")
      .replace("sparsities: [0.5, 0.9]", "sparsities: [0.9]")
      .replace(/^finetune: .*$/m, "finetune: {epochs: 2, batch_size: 64, lr: 0.01}"));
    const db = join(dir, "r.db");
    const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", join(dir, "artifacts"), "--jobs", "1", "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = new Database(db, { readonly: true });
    const rows = d.prepare(`SELECT r.key, m.value AS sparsity FROM runs r JOIN metrics m ON m.run_key = r.key AND m.name = 'sparsity' WHERE r.method = 'dns'`).all() as Array<{ key: string; sparsity: number }>;
    assert.equal(rows.length, 2);
    for (const x of rows) assert.ok(Math.abs(x.sparsity - 0.9) < 1e-5, `sparsity ${x.sparsity}`);
    const phases = d.prepare(`SELECT e.phase, count(*) AS n FROM epochs e WHERE e.run_key = ? GROUP BY e.phase ORDER BY e.phase`).all(rows[0].key) as Array<{ phase: string; n: number }>;
    assert.deepEqual(phases.map((p) => `${p.phase}:${p.n}`), ["finetune:2", "pretrain:2"], "the dense model's training, then surgery while fine-tuning");
    d.close();
  });
});
