/**
 * PLATON (methods/platon.ts) and what the engine gives it: the remasking gradual schedule's cubic remaining ratio,
 * the training tracker fed from every step's gradient (src/run/window-tracker.ts), the uncertainty that is zero for
 * an importance that never varies, masks that move during fine-tuning with pruned weights coming back, and tiny grid
 * runs (an MLP, a conv net) that end at their targets.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import Database from "better-sqlite3";
import { getMethod, methodCatalog } from "../methods/index.js";
import { PlatonTracker } from "../methods/platon.js";
import type { PrunableTensor, ScoreContext } from "../methods/types.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import { allocateMasks } from "../src/prune/allocate.js";
import { densityAtStep, scheduleProblem, type Schedule } from "../src/prune/schedules.js";
import { pruneStep } from "../src/run/prune-step.js";
import { windowFeed } from "../src/run/window-tracker.js";
import { stage, trainPhase, type StagedSplit } from "../src/train/loop.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel } from "../src/train/model.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

await initBackend("cpu");

const platon = getMethod("platon");
const defaults = Object.fromEntries(Object.entries(platon.params).map(([k, spec]) => [k, spec.default]));

function tensor(name: string, values: number[]): PrunableTensor {
  return { name, layer: name.split("/")[0], layerKind: "dense", role: "kernel", shape: [values.length], values: Float32Array.from(values), mask: new Float32Array(values.length).fill(1) };
}

function context(tensors: PrunableTensor[], tracker: PlatonTracker): ScoreContext {
  return { tensors, params: defaults, random: () => 0, tracker };
}

describe("platon: schedule", () => {
  test("the remaining ratio follows r_T + (r0 − r_T)(1 − (t − t_i)/(T − t_i − t_f))³ at multiples of ΔT after the warm-up, r_T in the final phase, and the last step always updates", () => {
    const s = platon.schedule({ ...defaults, delta_t: 10, warmup: 0.1, final: 0.3 });
    assert.deepEqual(s, { kind: "gradual", start: 0.1, end: 0.7, frequency: 10, initialSparsity: 0, remask: true });
    const T = 205;
    const rT = 0.2;
    // t_i = ⌊0.1·205⌋ = 20, T − t_f = ⌊0.7·205⌋ = 143; step s is the (s+1)-th.
    const r = (t: number) => rT + (1 - rT) * (1 - (t - 20) / (143 - 20)) ** 3;
    const updates: Array<[number, number]> = [];
    for (let step = 0; step < T; step++) {
      const d = densityAtStep(s, rT, step, T);
      if (d !== null) updates.push([step + 1, d]);
    }
    assert.deepEqual(updates.map(([t]) => t), [30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200, 205]);
    for (const [t, d] of updates) {
      const want = t > 143 ? rT : r(t);
      assert.ok(Math.abs(d - want) < 1e-12, `t ${t}: ${d} vs ${want}`);
    }
    // Values by hand at three steps: (1 − 10/123)³ = 0.7754…, (1 − 60/123)³ = 0.1343…, (1 − 120/123)³ = 1.44e-5.
    assert.ok(Math.abs(updates[0][1] - (0.2 + 0.8 * (113 / 123) ** 3)) < 1e-12);
    assert.ok(Math.abs(densityAtStep(s, rT, 79, T)! - (0.2 + 0.8 * (63 / 123) ** 3)) < 1e-12);
    assert.ok(Math.abs(densityAtStep(s, rT, 139, T)! - (0.2 + 0.8 * (3 / 123) ** 3)) < 1e-12);
    assert.equal(densityAtStep(s, rT, 204, T), rT, "the run ends at its target");
    assert.equal(densityAtStep(s, rT, 18, T), null, "no mask step during the warm-up (t = 19 <= t_i)");
    // Without the add-on the gradual schedule is AGP's: its first update is at step t0, not after the warm-up.
    const agp: Schedule = { kind: "gradual", start: 0.1, end: 0.7, frequency: 10, initialSparsity: 0 };
    assert.equal(densityAtStep(agp, rT, 20, T), 1);
    assert.equal(scheduleProblem(s), null);
    assert.match(methodCatalog().platon.check!({ ...defaults, warmup: 0.5, final: 0.5 }) ?? "", /warmup \+ final must be < 1/);
  });
});

describe("platon: scores", () => {
  test("Ī and Ū follow their updates; an importance that never varies has zero uncertainty, so score 0, and ranks below a varying one", () => {
    const t = platon.tracker!({ ...defaults, beta1: 0.5, beta2: 0.5 }) as PlatonTracker;
    t.observe(new Map([["a/kernel", Float32Array.from([4, 2])]]));
    t.observe(new Map([["a/kernel", Float32Array.from([4, 6])]]));
    // Ī: 0 → 2 → 3 and 0 → 1 → 3.5; Ū: 0.5·|4 − 2| = 1 → 0.5 + 0.5·|4 − 3| = 1, and 0.5·|2 − 1| = 0.5 → 0.25 + 0.5·2.5 = 1.5.
    assert.deepEqual([...t.importance.get("a/kernel")!], [3, 3.5]);
    assert.deepEqual([...t.uncertainty.get("a/kernel")!], [1, 1.5]);
    assert.deepEqual([...t.score("a/kernel", 2)], [3, 5.25]);

    // β₁ = 0: Ī is the window's importance itself, so an importance that never varies has U = |I − Ī| = 0 exactly.
    const flat = platon.tracker!({ ...defaults, beta1: 0 }) as PlatonTracker;
    for (let k = 0; k < 5; k++) flat.observe(new Map([["a/kernel", Float32Array.from([5, 0.5])]]));
    const s = platon.score(context([tensor("a/kernel", [1, 1])], flat)) as Map<string, Float32Array>;
    assert.deepEqual([...flat.uncertainty.get("a/kernel")!], [0, 0]);
    assert.deepEqual([...s.get("a/kernel")!], [0, 0], "constant importance: score 0 however large");

    // Defaults (β₁ 0.85, β₂ 0.95, zero start): a steady importance's uncertainty decays towards 0 (U as β₁^k, Ū after
    // it about as β₂^k), a varying one's does not, so after enough windows the steady weight ranks below one of smaller
    // mean importance.
    const d = platon.tracker!(defaults) as PlatonTracker;
    for (let k = 0; k < 200; k++) d.observe(new Map([["a/kernel", Float32Array.from([5, k % 2 === 0 ? 0 : 2])]]));
    const u = d.uncertainty.get("a/kernel")!;
    assert.ok(u[0] < 1e-3 && u[1] > 0.5, `Ū ${u[0]}, ${u[1]}`);
    const sd = platon.score(context([tensor("a/kernel", [1, 1])], d)) as Map<string, Float32Array>;
    const keep = allocateMasks([{ name: "a/kernel", scores: sd.get("a/kernel")!, mask: Float32Array.from([1, 1]) }], 0.5, platon.distribution(defaults));
    assert.deepEqual([...keep.get("a/kernel")!], [0, 1], "the steady, more important weight is the one pruned");
  });

  test("one global ranking: the layers' ratios come out of the scores", () => {
    const t = platon.tracker!({ ...defaults, beta1: 0.5, beta2: 0.5 }) as PlatonTracker;
    t.observe(new Map([["a/kernel", Float32Array.from([1, 2, 3, 4])], ["b/kernel", Float32Array.from([10, 20, 30, 40])]]));
    const tensors = [tensor("a/kernel", [1, 1, 1, 1]), tensor("b/kernel", [1, 1, 1, 1])];
    const s = platon.score(context(tensors, t)) as Map<string, Float32Array>;
    const masks = allocateMasks(tensors.map((x) => ({ name: x.name, scores: s.get(x.name)!, mask: x.mask })), 0.5, platon.distribution(defaults));
    assert.deepEqual([...masks.get("a/kernel")!], [0, 0, 0, 0]);
    assert.deepEqual([...masks.get("b/kernel")!], [1, 1, 1, 1]);
    assert.throws(() => platon.score({ tensors, params: defaults, random: () => 0 }), /training tracker/);
  });
});

describe("platon: the window feed", () => {
  test("hands each window's mean of |w·g| to the tracker, and holds one sum per tensor on the device, however many steps", () => {
    const seen: Array<Map<string, Float32Array>> = [];
    const feed = windowFeed({ quantity: "abs-weight-gradient", window: 2, observe: (m) => seen.push(new Map(m)) }, ["a/kernel"]);
    const w = tf.tensor1d([1, -2, 0]);
    const base = tf.memory().numTensors;
    const steps = [[1, 1, 5], [3, -1, 7], [2, 2, 2], [0, 4, 1]];
    steps.forEach((g, s) => {
      tf.tidy(() => feed.afterGradients(new Map([["a/kernel", tf.tensor1d(g)]]), new Map([["a/kernel", w]])));
      assert.ok(tf.memory().numTensors <= base + 1, `step ${s}: ${tf.memory().numTensors - base} tensors held`);
      feed.afterStep({ globalStep: s });
    });
    assert.equal(seen.length, 2);
    // Window 1: |w·g| = [1, 2, 0] and [3, 2, 0], mean [2, 2, 0]; window 2: [2, 4, 0] and [0, 8, 0], mean [1, 6, 0].
    assert.deepEqual([...seen[0].get("a/kernel")!], [2, 2, 0]);
    assert.deepEqual([...seen[1].get("a/kernel")!], [1, 6, 0]);
    feed.dispose();
    assert.equal(tf.memory().numTensors, base);
    w.dispose();
  });
});

function split(n: number, seed: number): StagedSplit {
  const rng = makeRng(seed, "platon-data");
  const y = new Int32Array(n).map(() => Math.floor(rng() * 10));
  // Learnable: each class lights its own band of pixels, so gradients stay informative while the masks move.
  const x = new Float32Array(n * 784).map((_, i) => rng() * 0.2 + (Math.floor((i % 784) / 78.4) === y[Math.floor(i / 784)] ? 1 : 0));
  return stage({ x, y, count: n }, [28, 28, 1]);
}

describe("platon: during fine-tuning", () => {
  test("the tracker is fed every window, masks change at the mask steps, pruned weights come back, and the last step is at the target", async () => {
    const PRUNABLE = { biases: false, batchNorm: false, classifier: true, firstLayer: true };
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0);
    const train = split(256, 1);
    const val = split(0, 2);
    const masks = new MaskSet();
    const params = { ...defaults, delta_t: 4, warmup: 0.1, final: 0.3 };
    const schedule = platon.schedule(params);
    const tracker = platon.tracker!(params) as PlatonTracker;
    const names = ["fc1/kernel", "fc2/kernel", "fc3/kernel"];
    const feed = windowFeed(tracker, names);
    const config = { ...DEFAULT_FINETUNE, epochs: 4, batchSize: 16, lr: 0.05 };
    const total = 4 * 16;
    const target = 0.05;
    const history: Array<{ t: number; density: number; masks: Map<string, Float32Array> }> = [];
    let round = 0;
    await trainPhase({
      phase: "finetune", model, train, val, config, masks, seed: 0, selectBestOnVal: false,
      hooks: {
        afterGradients: feed.afterGradients,
        afterStep: async (ctx) => {
          feed.afterStep(ctx);
          const d = densityAtStep(schedule, target, ctx.globalStep, total);
          if (d === null) return;
          await pruneStep({ model, masks, method: platon, params, prunable: PRUNABLE, density: d, train, seed: 0, step: ++round, remask: true, tracker });
          history.push({ t: ctx.globalStep + 1, density: d, masks: new Map(names.map((n) => [n, Float32Array.from(masks.values(n)!)])) });
        },
      },
    });
    feed.dispose();
    assert.equal(tracker.windows, total / 4, "one window per ΔT steps");
    assert.equal(history[0].t, 8, "first mask step: the first multiple of ΔT after t_i = 6");
    assert.equal(history[history.length - 1].t, total);
    let changed = 0;
    let regrown = 0;
    for (let k = 0; k < history.length; k++) {
      const kept = names.reduce((n, name) => n + history[k].masks.get(name)!.reduce((a, b) => a + b, 0), 0);
      const size = names.reduce((n, name) => n + history[k].masks.get(name)!.length, 0);
      assert.equal(kept, Math.round(history[k].density * size), `t ${history[k].t}: kept count`);
      if (k === 0) continue;
      for (const name of names) {
        const [a, b] = [history[k - 1].masks.get(name)!, history[k].masks.get(name)!];
        for (let i = 0; i < a.length; i++) {
          if (a[i] !== b[i]) changed++;
          if (a[i] === 0 && b[i] === 1) regrown++;
        }
      }
    }
    assert.ok(changed > 0, "masks change during fine-tuning");
    assert.ok(regrown > 0, "some weight pruned at one mask step is back at a later one");
    // Pruned weights are 0 in the model; a regrown one starts at 0 and trains from there.
    const fc1 = model.params.get("fc1/kernel")!.dataSync();
    const m = masks.values("fc1/kernel")!;
    for (let i = 0; i < m.length; i++) if (m[i] === 0) assert.ok(fc1[i] === 0, `fc1/kernel[${i}] is pruned and ${fc1[i]}`);
    const kept = names.reduce((n, name) => n + masks.values(name)!.reduce((a, b) => a + b, 0), 0);
    const size = names.reduce((n, name) => n + masks.values(name)!.length, 0);
    assert.equal(kept, Math.round(target * size), "the run ends at its target");
    masks.dispose();
    train.dispose();
    val.dispose();
    disposeModel(model);
  });

  // vit-tiny is left out here: one tiny run of it takes minutes on a shared 2-core machine (checked by hand, README).
  test("tiny grid runs on an MLP and a conv net reach their targets", () => {
    const dir = tempDir();
    const grid = writeTinyGrid(dir, "", {
      methods: "[{name: platon, delta_t: 3, warmup: 0.1, final: 0.2}]", archs: "[mlp, lenet5]", targets: "sparsities: [0.8]",
      pretrain: "{epochs: 1, batch_size: 64, lr: 0.05}", finetune: "{epochs: 2, batch_size: 64, lr: 0.01}", data: "{train_subset: 320, test_subset: 100}",
    });
    const db = join(dir, "r.db");
    const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--jobs", "1", "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = new Database(db, { readonly: true });
    const rows = d.prepare(`SELECT r.arch, r.status, m.value AS sparsity FROM runs r LEFT JOIN metrics m ON m.run_key = r.key AND m.name = 'sparsity' ORDER BY r.arch`).all() as Array<{ arch: string; status: string; sparsity: number }>;
    d.close();
    assert.deepEqual(rows.map((x) => x.arch), ["lenet5", "mlp"]);
    for (const x of rows) {
      assert.equal(x.status, "done", x.arch);
      assert.ok(Math.abs(x.sparsity - 0.8) < 1e-3, `${x.arch}: sparsity ${x.sparsity}`);
    }
  });
});
