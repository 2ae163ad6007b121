/**
 * Iterative schedules for channel methods: each round prunes to an intermediate target of the run's kind, keeping
 * (1 − rate)^r of its measure, the last round exactly the run's target; channels removed stay removed; every level
 * is measured on its own compacted model. And dropnet (Tan & Motani 2020), whose definition is that loop: the units
 * with the lowest mean post-activation value go, a fraction of those remaining per round, the survivors reset to
 * their initial weights after each prune.
 */
import assert from "node:assert/strict";
import { writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import Database from "better-sqlite3";
import { getMethod, methodCatalog } from "../methods/index.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import type { HyperValue } from "../src/core/types.js";
import { pruningEvents, type Schedule } from "../src/prune/schedules.js";
import { keptFraction, roundTarget, type StructuredTarget } from "../src/prune/structured.js";
import { phasePlan } from "../src/run/phase-plan.js";
import { restoreStructuredState, structuredPruneStep, structuredState } from "../src/run/structured-step.js";
import { stage } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel } from "../src/train/model.js";
import { DEFAULT_PRUNABLE } from "../src/grid/index.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

const MNIST: [number, number, number] = [28, 28, 1];

function params(name: string, overrides: Record<string, HyperValue> = {}): Record<string, HyperValue> {
  return { ...Object.fromEntries(Object.entries(getMethod(name).params).map(([k, p]) => [k, p.default])), ...overrides };
}

const removedSet = (keep: boolean[][]) => keep.flatMap((k, i) => k.flatMap((alive, u) => (alive ? [] : [`${i}:${u}`])));


/** The tiny grid on LeNet-5 at 75 % fewer MACs, which rate 0.5 reaches in 2 rounds. */
const LENET5_AT_75 = { archs: "[lenet5]", targets: "macs_reductions: [0.75]", data: "{train_subset: 300, test_subset: 200}" };
test("an iterative channel plan: intermediate targets (1 − rate)^r of the measure, monotone removals, the last round exactly the run's target", async () => {
  await initBackend("wasm");
  const target: StructuredTarget = { kind: "macs-reduction", value: 0.7 };
  const schedule: Schedule = { kind: "iterative", rate: 0.3, maxRounds: 10, rewind: "none", rewindEpoch: 1 };
  const targets = pruningEvents(schedule, keptFraction(target)).map((d) => roundTarget(target, d));
  // 0.7^r MACs kept: 0.7, 0.49, 0.343 reduce 30 %, 51 %, 65.7 %; the fourth round is the run's 70 %, the object itself.
  assert.deepEqual(targets.slice(0, 3).map((t) => [t.kind, +t.value.toFixed(6)]), [["macs-reduction", 0.3], ["macs-reduction", 0.51], ["macs-reduction", 0.657]]);
  assert.equal(targets.length, 4);
  assert.equal(targets[3], target);
  // Compression and channel sparsity keep the same fractions of params and channels.
  assert.deepEqual(pruningEvents(schedule, keptFraction({ kind: "compression", value: 4 })).map((d) => +roundTarget({ kind: "compression", value: 4 }, d).value.toFixed(6)), [1.428571, 2.040816, 2.915452, 4]);
  // A one-shot step plans the target's own kept fraction: the step reads the run's target unchanged.
  assert.equal(roundTarget(target, pruningEvents({ kind: "one-shot" }, keptFraction(target))[0]), target);

  const model = createModel(getArch("lenet5"), MNIST, 10, 2);
  const masks = new MaskSet();
  const split = stage({ x: new Float32Array(4 * 784).map((_, i) => Math.cos(i)), y: new Int32Array(4), count: 4 }, MNIST);
  const state = structuredState(model);
  const rng = makeRng(9, "retrain");
  let before: string[] = [];
  for (const [r, t] of targets.entries()) {
    await structuredPruneStep({
      model, masks, method: getMethod("l1-filter"), params: params("l1-filter", { layers: "all", scope: "global" }),
      prunable: DEFAULT_PRUNABLE, target: t, train: split, seed: 1, step: r, state,
    });
    const removed = removedSet(state.keep);
    assert.ok(before.every((u) => removed.includes(u)), `round ${r + 1}: a channel removed before came back`);
    assert.ok(removed.length > before.length, `round ${r + 1} removes more`);
    assert.ok(state.achieved! >= t.value - 1e-12, `round ${r + 1}: reached ${state.achieved} of ${t.value}`);
    assert.ok(Math.abs(state.achieved! - (1 - state.counts.macs / state.dense.macs)) < 1e-12, "measured on the compacted model");
    // Short of the next round's target: each round stops near its own.
    if (r + 1 < targets.length) assert.ok(state.achieved! < targets[r + 1].value, `round ${r + 1} reached ${state.achieved}, past the next round's ${targets[r + 1].value}`);
    before = removed;
    // "Retraining": the survivors change, so the next ranking is not the last one continued.
    for (const v of model.params.values()) v.assign(tf.tidy(() => tf.add(v, tf.randomNormal(v.shape, 0, 0.05, "float32", Math.floor(rng() * 1e6)))));
    masks.apply(model.params);
  }
  assert.ok(state.achieved! >= 0.7 && state.achieved! < 0.8, `last round reached ${state.achieved}`);
  split.dispose();
  masks.dispose();
  disposeModel(model);
});

test("the method catalog takes an iterative schedule for a channel method", () => {
  const cat = methodCatalog();
  assert.equal(cat.dropnet.check!(params("dropnet")), null);
  assert.equal(cat.dropnet.scheduleKind!(params("dropnet")), "iterative");
  assert.equal(cat["l1-filter"].check!(params("l1-filter")), null);
});

test("dropnet removes the units with the lowest mean post-activation value, a fraction of those remaining per round; removed units stay removed", async () => {
  await initBackend("wasm");
  const dropnet = getMethod("dropnet");
  const p = params("dropnet");
  assert.deepEqual([p.scope, p.rate, p.rewind, p.layers, p.batches], ["global", 0.2, "init", "all", 0]);
  // LeNet-300-100 with zero kernels: every image's post-ReLU output of a hidden unit is relu(its bias), so the mean
  // activation is set by hand and every weight-based criterion sees ties.
  const model = createModel(getArch("mlp"), MNIST, 10, 3);
  const units = [["fc1", 300], ["fc2", 100]] as const;
  const setActivations = (seed: number) => {
    const rng = makeRng(seed, "activations");
    const ranks = [...Array(400).keys()].sort(() => rng() - 0.5);
    const values = new Map<string, number>();
    let k = 0;
    for (const [layer, n] of units) {
      model.params.get(`${layer}/kernel`)!.assign(tf.zeros(model.params.get(`${layer}/kernel`)!.shape));
      const bias = Float32Array.from({ length: n }, (_, u) => {
        const v = 0.01 + ranks[k++] / 100;
        values.set(`${layer}:${u}`, v);
        return v;
      });
      // fc1's unit 7: a large negative pre-activation, 0 after the ReLU: the lowest of all, though |pre| is large.
      if (layer === "fc1") { bias[7] = -5; values.set("fc1:7", 0); }
      model.params.get(`${layer}/bias`)!.assign(tf.tensor(bias));
    }
    return values;
  };
  const masks = new MaskSet();
  const split = stage({ x: new Float32Array(6 * 784).map((_, i) => Math.abs(Math.sin(i))), y: new Int32Array(6), count: 6 }, MNIST);
  const state = structuredState(model);
  const groupOf = (layer: string) => state.graph.groups.findIndex((g) => g.name === layer);
  const removed = () => new Set(units.flatMap(([layer, n]) => [...Array(n).keys()].filter((u) => !state.keep[groupOf(layer)][u]).map((u) => `${layer}:${u}`)));

  const target: StructuredTarget = { kind: "channel-sparsity", value: 1 - 0.8 ** 3 };
  const densities = pruningEvents(dropnet.schedule(p), keptFraction(target));
  assert.equal(densities.length, 3);
  let gone = new Set<string>();
  for (const [r, d] of densities.entries()) {
    // Each round's "retraining" leaves new activations: the ranking is taken afresh among the units left.
    const values = setActivations(100 + r);
    masks.apply(model.params);
    await structuredPruneStep({
      model, masks, method: dropnet, params: p, prunable: DEFAULT_PRUNABLE, target: roundTarget(target, d), train: split, seed: 1, step: r, state,
    });
    const now = removed();
    // 400 hidden units: 20 % of those left each round, 80, 144, 195.2 → 196 removed in all (whole units).
    const expected = Math.ceil(400 * (1 - 0.8 ** (r + 1)) - 1e-9);
    assert.equal(now.size, [80, 144, 196][r]);
    assert.equal(now.size, expected);
    for (const u of gone) assert.ok(now.has(u), `round ${r + 1}: ${u}, removed before, is back`);
    // The units removed this round are the lowest mean activations among those that were left.
    const fresh = [...now].filter((u) => !gone.has(u));
    const left = [...values.keys()].filter((u) => !gone.has(u)).sort((a, b) => values.get(a)! - values.get(b)!);
    assert.deepEqual(new Set(fresh), new Set(left.slice(0, fresh.length)), `round ${r + 1}`);
    if (r === 0) assert.ok(now.has("fc1:7"), "a unit that is 0 after its ReLU goes first");
    gone = now;
  }
  split.dispose();
  masks.dispose();
  disposeModel(model);
});

test("dropnet resets the survivors to their initial weights after every prune by default; fine-tuning or a random-init control when asked", () => {
  const plan = (overrides: Record<string, HyperValue>) => phasePlan(getMethod("dropnet").schedule(params("dropnet", overrides)), 0.8 ** 3);
  const kinds = (steps: ReturnType<typeof plan>) => steps.map((s) => s.kind === "rewind" ? `rewind:${s.to}` : s.kind === "train" ? `train:${s.phase}` : s.kind);
  const round = ["prune", "rewind:init", "train:pretrain", "level"];
  assert.deepEqual(kinds(plan({})), [...round, ...round, ...round]);
  assert.deepEqual(kinds(plan({ rewind: "none" })), Array(3).fill(["prune", "train:finetune", "level"]).flat());
  const control = plan({ control: "reinit" }).filter((s) => s.kind === "level");
  assert.ok(control.every((s) => s.kind === "level" && s.control?.from === "reinit"), "each level's mask retrained from a fresh draw");
});

test("a dropnet sweep on lenet5 runs its rounds through the engine: one level per round, each measured on its own compacted model", () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir, "", { methods: "[{name: dropnet, rate: 0.5, batches: 2}]", ...LENET5_AT_75 });
  const db = join(dir, "r.db");
  const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", join(dir, "art"), "--jobs", "1", "--plain"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const d = new Database(db, { readonly: true });
  const metric = (key: string, name: string) => (d.prepare(`SELECT value FROM metrics WHERE run_key = ? AND name = ?`).get(key, name) as { value: number }).value;
  const rows = d.prepare(`SELECT key, level, parent_key, target_kind, target_value, (SELECT count(*) FROM epochs WHERE run_key = r.key AND phase = 'pretrain') AS epochs FROM runs r ORDER BY level`).all() as any[];
  const levels = rows.map((x) => ({
    ...x, macs: metric(x.key, "macs_compacted"), dense: metric(x.key, "macs_dense"), params: metric(x.key, "params_compacted"),
    nonzero: metric(x.key, "params_nonzero"), achieved: metric(x.key, "target_achieved"), diff: metric(x.key, "compacted_max_abs_diff"),
  }));
  d.close();
  // MACs kept 0.5 then 0.25: two rounds, each retrained from the initial weights for the 2 pretraining epochs.
  assert.deepEqual(levels.map((l) => l.level), [1, 2]);
  assert.equal(levels[0].parent_key, levels[1].key);
  assert.ok(levels.every((l) => l.epochs === 2), JSON.stringify(levels));
  assert.ok(levels[0].achieved >= 0.5 && levels[0].achieved < 0.75, `level 1 reached ${levels[0].achieved}`);
  assert.ok(levels[1].achieved >= 0.75, `level 2 reached ${levels[1].achieved}`);
  assert.deepEqual([levels[0].target_kind, levels[0].target_value], ["macs-reduction", levels[0].achieved], "a level is a point at the MACs reduction it reached");
  assert.deepEqual([levels[1].target_kind, levels[1].target_value], ["macs-reduction", 0.75]);
  for (const l of levels) {
    assert.ok(Math.abs(1 - l.macs / l.dense - l.achieved) < 1e-9, `level ${l.level}: its own compacted MACs`);
    assert.equal(l.params, l.nonzero, `level ${l.level}: the compacted model holds exactly its surviving parameters`);
    assert.ok(l.diff < 1e-4);
  }
  assert.ok(levels[1].macs < levels[0].macs && levels[1].params < levels[0].params);
});

test("a resumed structured run reads its removed channels back from the masks (resnet20: shortcut maps too)", async () => {
  await initBackend("wasm");
  const CIFAR: [number, number, number] = [32, 32, 3];
  const model = createModel(getArch("resnet20"), CIFAR, 10, 4);
  const masks = new MaskSet();
  const split = stage({ x: new Float32Array(2 * 32 * 32 * 3).map((_, i) => Math.sin(i)), y: new Int32Array(2), count: 2 }, CIFAR);
  const state = structuredState(model);
  await structuredPruneStep({
    model, masks, method: getMethod("random-channel"), params: params("random-channel", { layers: "all" }),
    prunable: DEFAULT_PRUNABLE, target: { kind: "macs-reduction", value: 0.4 }, train: split, seed: 1, step: 0, state,
  });
  assert.ok(state.graph.shortcuts.length > 0 && removedSet(state.keep).length > 0);
  // A fresh model as a resumed run builds it, given the checkpoint's masks.
  const resumed = createModel(getArch("resnet20"), CIFAR, 10, 4);
  const again = structuredState(resumed);
  const restoredMasks = new MaskSet();
  for (const name of masks.names()) restoredMasks.set(name, masks.values(name)!, model.params.get(name)!.shape);
  restoreStructuredState(resumed, restoredMasks, again);
  assert.deepEqual(again.keep, state.keep);
  assert.deepEqual(again.counts, state.counts);
  assert.deepEqual(resumed.arch.widths, model.arch.widths, "the shortcut maps as the prune step set them");
  assert.notDeepEqual(model.arch.widths, getArch("resnet20").widths, "not vacuous: the prune step changed them");
  for (const m of [masks, restoredMasks]) m.dispose();
  split.dispose();
  disposeModel(model);
  disposeModel(resumed);
});

test("a dropnet run killed after level 1 of 2 resumes at level 2 and stores what an uninterrupted run stores", () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir, "", { methods: "[{name: dropnet, rate: 0.5, batches: 2, rewind: none}]", ...LENET5_AT_75 });
  const cache = join(dir, "cache");
  const sweep = (db: string, env: Record<string, string> = {}) =>
    bench(["sweep", grid, "--db", join(dir, db), "--cache-dir", cache, "--artifacts-dir", join(dir, `art-${db}`), "--jobs", "1", "--plain"], env);
  const timing = /(_ms|_seconds|^measured_speedup|^train_img_per_s|^peak_rss_mb)/;
  const results = (db: string) => {
    const d = new Database(join(dir, db), { readonly: true });
    try {
      return {
        runs: d.prepare(`SELECT key, status, parent_key, level, target_kind, target_value FROM runs ORDER BY key`).all(),
        metrics: (d.prepare(`SELECT run_key, name, value FROM metrics ORDER BY run_key, name`).all() as Array<{ name: string }>).filter((m) => !timing.test(m.name)),
      };
    } finally {
      d.close();
    }
  };
  assert.equal(sweep("a.db").code, 0);
  const killed = sweep("b.db", { BENCH_FAULT_KILL_AFTER_LEVEL: "1" });
  assert.equal(killed.code, 3, killed.stdout + killed.stderr);
  const r = sweep("b.db");
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /resuming \S+ after level 1 of 2/);
  const [a, b] = [results("a.db"), results("b.db")];
  assert.ok(a.metrics.some((m) => m.name === "macs_compacted"), "not vacuous");
  assert.deepEqual(b, a);
});

test("bench validate refuses a channel method's iterative schedule that cannot reach a MACs target in its rounds", () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir);
  const write = (rounds: number) => writeFileSync(grid, readFileSync(grid, "utf8")
    .replace(/methods: \[.*\]/, `methods: [{name: dropnet, rate: 0.5, max_rounds: ${rounds}}]`)
    .replace("archs: [mlp]", "archs: [lenet5]")
    .replace(/sparsities: \[.*\]/, "macs_reductions: [0.75]"));
  write(1);
  const r = bench(["validate", grid]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, /dropnet: macs-reduction 0\.75 is unreachable: density 25% needs 2 rounds of 50%, more than max_rounds 1/);
  write(2);
  const ok = bench(["validate", grid]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
});
