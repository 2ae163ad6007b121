/**
 * Iterative magnitude pruning (the lottery-ticket line): the iterative schedule's densities and its plan-time check,
 * what each rewind mode retrains from, and one result per level stored as child runs that `bench table` shows.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import Database from "better-sqlite3";
import { getMethod } from "../methods/index.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import { checkIterative, iterativeRounds, pruningEvents, roundPeakLr, scheduleProblem, type Schedule } from "../src/prune/schedules.js";
import { allocateMasks } from "../src/prune/allocate.js";
import { prunableState, pruneStep } from "../src/run/prune-step.js";
import { readCheckpoint } from "../src/run/checkpoint.js";
import { rewindPoints, rewindTo } from "../src/run/execute-job.js";
import { phasePlan } from "../src/run/phase-plan.js";
import { stage, trainPhase, type StagedSplit } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, snapshot, type Model } from "../src/train/model.js";
import { levelRunKey, Store } from "../src/store/store.js";
import { readEpochs } from "../reports/read.js";
import { bench, tempDir } from "./helpers/cli.js";
import { smallConfig } from "./helpers/config.js";

await initBackend("cpu");

const imp = (rewind: "init" | "epoch" | "lr" | "none" | "reinit", rate = 0.2, maxRounds = 20): Schedule => ({ kind: "iterative", rate, maxRounds, rewind, rewindEpoch: 1 });

describe("the iterative schedule", () => {
  test("round r has density (1 - rate)^r, the last round exactly the target", () => {
    const target = 0.05;
    const d = pruningEvents(imp("init"), target);
    assert.equal(d.length, Math.ceil(Math.log(target) / Math.log(0.8)));
    d.slice(0, -1).forEach((x, k) => assert.equal(x, 0.8 ** (k + 1), `round ${k + 1}`));
    assert.equal(d[d.length - 1], target);
    assert.ok(d[d.length - 2] > target && d.every((x, k) => k === 0 || x < d[k - 1]), "strictly falling");
    // A target that (1 - rate)^r hits up to rounding takes r rounds, not r + 1.
    assert.deepEqual(pruningEvents(imp("init", 0.5), 0.25), [0.5, 0.25]);
    assert.equal(iterativeRounds({ kind: "iterative", rate: 0.2, maxRounds: 1, rewind: "init", rewindEpoch: 1 }, 0.8 ** 3), 3);
  });

  test("a target beyond max_rounds is refused, naming the rounds needed and the reachable range", () => {
    // IMP at 20 % per round for 3 rounds reaches density 51.2 % at most: 32x needs 16 rounds.
    const problem = checkIterative(imp("init", 0.2, 3), 1 / 32, 2);
    assert.match(problem ?? "", /needs 16 rounds of 20%, more than max_rounds 3: reachable densities are 51\.2% to 100%/);
    assert.equal(checkIterative(imp("init", 0.2, 16), 1 / 32, 2), null);
    assert.match(checkIterative({ ...imp("epoch"), rewindEpoch: 2 } as Schedule, 0.5, 2) ?? "", /rewind_epoch 2 must be an integer in \[1, 1\]/);
    assert.equal(checkIterative({ kind: "one-shot" }, 0.001, 1), null);
  });

  test("the phase plan: each round prunes, rewinds (or not), retrains and records a level", () => {
    const kinds = (s: Schedule) => phasePlan(s, 0.25).map((p) => p.kind === "train" ? `train:${p.phase}${p.fromEpoch ? `@${p.fromEpoch}` : ""}`
      : p.kind === "rewind" ? `rewind:${p.to}` : p.kind === "level" ? `level:${p.level}` : p.kind);
    assert.deepEqual(kinds(imp("init", 0.5)), ["prune", "rewind:init", "train:pretrain", "level:1", "prune", "rewind:init", "train:pretrain", "level:2"]);
    assert.deepEqual(kinds(imp("epoch", 0.5)), ["prune", "rewind:epoch", "train:pretrain@1", "level:1", "prune", "rewind:epoch", "train:pretrain@1", "level:2"]);
    assert.deepEqual(kinds(imp("lr", 0.5)), ["prune", "train:pretrain", "level:1", "prune", "train:pretrain", "level:2"]);
    assert.deepEqual(kinds(imp("none", 0.5)), ["prune", "train:finetune", "level:1", "prune", "train:finetune", "level:2"]);
    assert.deepEqual(kinds(imp("reinit", 0.5)), ["prune", "rewind:reinit", "train:pretrain", "level:1", "prune", "rewind:reinit", "train:pretrain", "level:2"]);
    assert.deepEqual(getMethod("imp").schedule({ rate: 0.2, max_rounds: 20, rewind: "init", rewind_epoch: 1, scope: "global" }), imp("init"));
    assert.equal(getMethod("imp-random-reinit").schedule({ rate: 0.2, max_rounds: 20, scope: "global" }).kind, "iterative");
    const control = getMethod("imp-random-reinit").schedule({ rate: 0.2, max_rounds: 20, scope: "global" }) as { rewind: string; control?: string };
    assert.deepEqual([control.rewind, control.control], ["init", "reinit"], "imp's own rounds, with the control at each level");
  });
});

describe("what a round retrains from", () => {
  function split(n: number, seed: number): StagedSplit {
    const rng = makeRng(seed, "imp-data");
    return stage({ x: new Float32Array(n * 784).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, [28, 28, 1]);
  }
  const config = smallConfig({ method: { name: "imp", params: { rate: 0.5, max_rounds: 5, rewind: "init", rewind_epoch: 1, scope: "global" } }, pretrain: { ...smallConfig().pretrain, epochs: 2, batchSize: 32 } });
  const PRUNABLE = { biases: false, batchNorm: false, classifier: true, firstLayer: true };

  /** A model trained two epochs from its seeded init, pruned by one IMP round (the runner's own steps). */
  async function prunedAfterTraining(rewind: "init" | "epoch" | "lr" | "reinit") {
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0, config.model.init);
    const train = split(96, 1);
    const masks = new MaskSet();
    const init = snapshot(model);
    await trainPhase({ phase: "pretrain", model, train, val: train, config: config.pretrain, masks, seed: 0, selectBestOnVal: false });
    const trained = snapshot(model);
    const plan = phasePlan(imp(rewind, 0.5), 0.25);
    const points = await rewindPoints(plan, model, { train, val: train }, masks, init, trained, config);
    const first = plan[0];
    assert.equal(first.kind, "prune");
    await pruneStep({ model, masks, method: getMethod("imp"), params: config.method.params, prunable: PRUNABLE, density: (first as { density: number }).density, train, seed: 0, step: 0 });
    const second = plan[1];
    if (second.kind === "rewind") rewindTo(model, masks, points.get(second.to)!);
    return { model, masks, init, trained, points, done: () => { train.dispose(); masks.dispose(); disposeModel(model); } };
  }

  function eachSurvivor(model: Model, masks: MaskSet, check: (w: number, i: number, name: string) => void, pruned: (w: number) => void) {
    for (const name of masks.names()) {
      const m = masks.values(name)!;
      const w = model.params.get(name)!.dataSync();
      m.forEach((keep, i) => (keep === 1 ? check(w[i], i, name) : pruned(w[i])));
    }
  }

  test("rewinding to init: the surviving weights equal their initial values exactly, the pruned ones are 0", async () => {
    const r = await prunedAfterTraining("init");
    let survivors = 0;
    eachSurvivor(r.model, r.masks, (w, i, name) => { survivors++; assert.equal(w, r.init.get(name)![i]); }, (w) => assert.ok(w === 0, `pruned weight ${w}`));
    assert.ok(survivors > 0);
    // Not vacuous: training moved the weights away from init.
    assert.ok([...r.trained.get("fc1/kernel")!].some((w, i) => w !== r.init.get("fc1/kernel")![i]));
    r.done();
  });

  test("LR rewinding keeps the trained values at the round's start (pruned ones 0)", async () => {
    const r = await prunedAfterTraining("lr");
    let differsFromInit = 0;
    eachSurvivor(r.model, r.masks, (w, i, name) => { assert.equal(w, r.trained.get(name)![i]); if (w !== r.init.get(name)![i]) differsFromInit++; }, (w) => assert.ok(w === 0, `pruned weight ${w}`));
    assert.ok(differsFromInit > 0);
    r.done();
  });

  test("random re-init differs from init at the survivors, and is a fixed draw of the seed", async () => {
    const r = await prunedAfterTraining("reinit");
    let same = 0;
    let survivors = 0;
    eachSurvivor(r.model, r.masks, (w, i, name) => { survivors++; if (w === r.init.get(name)![i]) same++; assert.equal(w, r.points.get("reinit")!.get(name)![i]); }, (w) => assert.ok(w === 0, `pruned weight ${w}`));
    assert.ok(same < survivors / 100, `${same} of ${survivors} survivors kept their initial value`);
    const again = await prunedAfterTraining("reinit");
    assert.deepEqual(again.points.get("reinit")!.get("fc2/kernel"), r.points.get("reinit")!.get("fc2/kernel"));
    r.done();
    again.done();
  });

  test("rewinding to epoch k: the dense model's weights after k epochs, reproduced from init", async () => {
    const r = await prunedAfterTraining("epoch");
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0, config.model.init);
    const train = split(96, 1);
    await trainPhase({ phase: "pretrain", model, train, val: train, config: { ...config.pretrain, epochs: 2 }, masks: new MaskSet(), seed: 0, selectBestOnVal: false, toEpoch: 1 });
    const epoch1 = snapshot(model);
    eachSurvivor(r.model, r.masks, (w, i, name) => assert.equal(w, epoch1.get(name)![i]), (w) => assert.ok(w === 0, `pruned weight ${w}`));
    assert.ok([...epoch1.get("fc1/kernel")!].some((w, i) => w !== r.init.get("fc1/kernel")![i] && w !== r.trained.get("fc1/kernel")![i]));
    train.dispose(); disposeModel(model); r.done();
  });
});

describe("the iterative schedule's add-ons: AP and SILO", () => {
  const IMP_DEFAULTS = { rate: 0.2, max_rounds: 20, rewind: "init", rewind_epoch: 1, scope: "global", ap_rate: 0, lr_peaks: "constant", silo_alpha: 0.04, silo_beta: 5, silo_offset: 0.03 };
  const silo = (rate = 0.2): Schedule => ({ ...imp("init", rate), lrPeaks: { kind: "silo", alpha: 0.04, beta: 5, offset: 0.03, delay: 1 } } as Schedule);

  test("off by default: imp's schedule and plan with ap_rate 0 and lr_peaks constant are today's, value for value", () => {
    assert.deepEqual(getMethod("imp").schedule(IMP_DEFAULTS), imp("init"));
    assert.deepEqual(phasePlan(getMethod("imp").schedule(IMP_DEFAULTS), 0.5), phasePlan(imp("init"), 0.5));
    assert.deepEqual(getMethod("imp").schedule({ ...IMP_DEFAULTS, ap_rate: 0.02 }), { ...imp("init"), apRate: 0.02 });
    assert.equal((getMethod("imp-random-reinit").schedule({ ...IMP_DEFAULTS, ap_rate: 0.02 }) as { apRate?: number }).apRate, 0.02);
  });

  test("SILO: the METHOD-NOTES check values (ResNet-20 setting), round 1 keeps the configured LR", () => {
    const expected: Array<[number, number]> = [[2, 0.03004], [3, 0.03213], [4, 0.04761], [5, 0.06446], [6, 0.06893]];
    for (const [k, lr] of expected) assert.ok(Math.abs(roundPeakLr(silo(), k, 0.1) - lr) < 5e-6, `round ${k}: ${roundPeakLr(silo(), k, 0.1)} vs ${lr}`);
    assert.equal(roundPeakLr(silo(), 1, 0.1), 0.1);
    assert.equal(roundPeakLr(imp("init"), 4, 0.1), 0.1, "constant peaks: the configured LR");
  });

  test("SILO: the peak LR never decreases across rounds and is offset + alpha/2 at rho = 0.5", () => {
    const peaks = Array.from({ length: 30 }, (_, k) => roundPeakLr(silo(), k + 2, 0.03));
    peaks.forEach((p, k) => k > 0 && assert.ok(p >= peaks[k - 1], `round ${k + 2}: ${p} < ${peaks[k - 1]}`));
    assert.ok(peaks[peaks.length - 1] > 0.0699 && peaks[peaks.length - 1] <= 0.07);
    // rate 0.5, round 2: rho = 1 - 0.5^(2 - 1) = 0.5.
    assert.ok(Math.abs(roundPeakLr(silo(0.5), 2, 0.03) - (0.03 + 0.04 / 2)) < 1e-12);
  });

  test("the plan carries SILO's peaks to the retraining of rounds past the delay, AP to every prune", () => {
    const plan = phasePlan({ ...silo(0.5), apRate: 0.1 } as Schedule, 0.125);
    const trains = plan.filter((p) => p.kind === "train") as Array<{ peakLr?: number }>;
    assert.deepEqual(trains.map((t) => t.peakLr), [undefined, roundPeakLr(silo(0.5), 2, NaN), roundPeakLr(silo(0.5), 3, NaN)]);
    assert.ok(plan.filter((p) => p.kind === "prune").every((p) => (p as { activate?: number }).activate === 0.1));
    assert.match(scheduleProblem({ ...imp("init"), apRate: 0.2 } as Schedule) ?? "", /ap_rate must be in \[0, rate 0\.2\)/);
    assert.equal(scheduleProblem({ ...silo(), apRate: 0.02 } as Schedule), null);
  });

  const PRUNABLE = { biases: false, batchNorm: false, classifier: true, firstLayer: true };
  function split(n: number, seed: number): StagedSplit {
    const rng = makeRng(seed, "ap-data");
    return stage({ x: new Float32Array(n * 784).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, [28, 28, 1]);
  }

  /** One AP round on a trained MLP already pruned once to 80 %: what the method alone would prune, and what AP did. */
  async function apRound(apRate: number) {
    const config = smallConfig({ pretrain: { ...smallConfig().pretrain, epochs: 1, batchSize: 32 } });
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0, config.model.init);
    const train = split(96, 2);
    const masks = new MaskSet();
    const params = { ...IMP_DEFAULTS, ap_rate: apRate };
    const step = (density: number, start?: Map<string, Float32Array>) => pruneStep({
      model, masks, method: getMethod("imp"), params, prunable: PRUNABLE, density, train, seed: 0, step: 0,
      ...(start ? { activate: { fraction: apRate, start } } : {}),
    });
    await step(0.8);
    const start = snapshot(model);
    await trainPhase({ phase: "pretrain", model, train, val: train, config: config.pretrain, masks, seed: 0, selectBestOnVal: false });
    const before = prunableState(model, masks, PRUNABLE).map((t) => ({ ...t, values: Float32Array.from(t.values), mask: Float32Array.from(t.mask) }));
    await step(0.64, start);
    const after = new Map(masks.names().map((n) => [n, Float32Array.from(masks.values(n)!)]));
    // The method's share alone: the same allocation AP's step starts with.
    const total = before.reduce((n, t) => n + t.values.length, 0);
    const survivors = before.reduce((n, t) => n + t.mask.reduce((a, b) => a + b, 0), 0);
    const apCount = Math.round(apRate * survivors);
    const base = allocateMasks(before.map((t) => ({ name: t.name, scores: t.values.map(Math.abs), mask: t.mask, shape: t.shape })), (Math.round(0.64 * total) + apCount) / total, "global");
    train.dispose(); masks.dispose(); disposeModel(model);
    return { before, after, base, start, total, survivors, apCount };
  }

  test("AP: every AP-pruned weight is negative, the round removes exactly rate in total, the choice is by smallest movement", async () => {
    const r = await apRound(0.05);
    const left = [...r.after.values()].reduce((n, m) => n + m.reduce((a, b) => a + b, 0), 0);
    assert.equal(r.survivors - left, r.survivors - Math.round(0.64 * r.total), "the round's total");
    assert.equal(left, Math.round(0.64 * r.total));
    const apPruned: number[] = [];
    const negativeSurvivors: number[] = [];
    for (const t of r.before) {
      const after = r.after.get(t.name)!;
      const base = r.base.get(t.name)!;
      const w0 = r.start.get(t.name)!;
      for (let i = 0; i < after.length; i++) {
        assert.ok(!(after[i] === 1 && base[i] === 0), "AP prunes on top of the method's share, never instead of it");
        const move = Math.abs(t.values[i] - w0[i]);
        if (base[i] === 1 && after[i] === 0) {
          assert.ok(t.values[i] < 0, `AP pruned ${t.name}[${i}] = ${t.values[i]}`);
          apPruned.push(move);
        } else if (after[i] === 1 && t.values[i] < 0) negativeSurvivors.push(move);
      }
    }
    assert.equal(apPruned.length, r.apCount);
    assert.ok(r.apCount > 100, `not vacuous: ${r.apCount}`);
    assert.ok(Math.max(...apPruned) <= Math.min(...negativeSurvivors), "AP took the negative survivors that moved least");
  });

  test("AP at rate 0 prunes exactly what the method prunes", async () => {
    const r = await apRound(0);
    for (const t of r.before) assert.deepEqual(r.after.get(t.name), r.base.get(t.name));
  });
});

describe("IMP end to end", () => {
  function grid(dir: string, methods: string, targets: string): string {
    const path = join(dir, "imp.yaml");
    writeFileSync(path, `name: imp-tiny
methods: ${methods}
archs: [mlp]
datasets: [fashion-mnist-mini]
${targets}
seeds: [0]
pretrain: {epochs: 2, batch_size: 64, lr: 0.05}
finetune: {epochs: 1, batch_size: 64, lr: 0.01}
data: {train_subset: 300, test_subset: 200}
eval: {latency_batch: 32, latency_repeats: 2}
`);
    return path;
  }

  test("IMP to 4x (sparsity 0.75) at rate 0.5 stores 2 levels, a child run and its parent, with rising compression, in bench table", () => {
    const dir = tempDir();
    const g = grid(dir, "[{name: imp, rate: 0.5}]", "sparsities: [0.75]");
    const db = join(dir, "r.db");
    const r = bench(["sweep", g, "--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", join(dir, "art"), "--jobs", "1", "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = new Database(db, { readonly: true });
    const rows = d.prepare(`SELECT r.key, r.status, r.method, r.parent_key, r.level, r.target_kind, r.target_value, r.config_json,
        (SELECT value FROM metrics WHERE run_key = r.key AND name = 'compression_ratio') AS compression,
        (SELECT value FROM metrics WHERE run_key = r.key AND name = 'sparsity') AS sparsity,
        (SELECT count(*) FROM epochs WHERE run_key = r.key) AS epochs,
        (SELECT count(*) FROM layers WHERE run_key = r.key) AS layers,
        (SELECT count(*) FROM sweep_runs WHERE run_key = r.key) AS sweeps
      FROM runs r ORDER BY r.level`).all() as any[];
    d.close();
    assert.equal(rows.length, 2);
    const [child, parent] = rows;
    assert.deepEqual([child.level, parent.level], [1, 2]);
    assert.equal(child.parent_key, parent.key);
    assert.equal(parent.parent_key, null);
    assert.equal(child.key, levelRunKey(parent.key, 1));
    for (const x of rows) {
      assert.equal(x.status, "done");
      assert.equal(x.method, "imp");
      assert.ok(x.epochs === 2 && x.layers === 3 && x.sweeps === 1, JSON.stringify(x));
    }
    assert.ok(Math.abs(child.sparsity - 0.5) < 1e-3 && Math.abs(parent.sparsity - 0.75) < 1e-3);
    assert.ok(parent.compression > child.compression && child.compression > 1.9, `${child.compression} -> ${parent.compression}`);
    assert.deepEqual(JSON.parse(child.config_json).target, { kind: "sparsity", value: child.sparsity });
    assert.equal(child.target_value, child.sparsity);

    const table = bench(["table", "--db", db, "--format", "markdown"]);
    assert.equal(table.code, 0, table.stderr);
    // The method is printed once; the level below it leaves the cell blank, its sparsity a number in the Sparsity column.
    const lines = table.stdout.split("\n");
    const at = lines.findIndex((l) => l.includes("imp(rate=0.5)"));
    assert.ok(at > 0 && lines.filter((l) => l.includes("imp(rate=0.5)")).length === 1, table.stdout);
    assert.match(lines[0], /\| Sparsity \|/);
    assert.match(lines[at], /\|\s+0\.50 \|/);
    assert.match(lines[at + 1], /^\|\s+\|\s+\|\s+\|\s+0\.75 \|/);

    // A re-run finds the run finished and leaves its levels as they are.
    const again = bench(["sweep", g, "--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", join(dir, "art"), "--jobs", "1", "--plain"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /1 already finished/);
    const d2 = new Database(db, { readonly: true });
    assert.equal((d2.prepare(`SELECT count(*) AS n FROM sweep_runs WHERE sweep_id = 2`).get() as { n: number }).n, 2, "the second sweep sees both levels");
    d2.close();
  });

  test("the random-reinit control trains imp's exact tickets, level by level, from a fresh draw (Frankle & Carbin, section 2)", () => {
    const dir = tempDir();
    const g = grid(dir, "[{name: imp, rate: 0.5}, {name: imp-random-reinit, rate: 0.5}]", "sparsities: [0.75]");
    const db = join(dir, "r.db");
    const art = join(dir, "art");
    const r = bench(["sweep", g, "--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", art, "--jobs", "1", "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = new Database(db, { readonly: true });
    const rows = d.prepare(`SELECT r.method, r.level,
        (SELECT value FROM metrics WHERE run_key = r.key AND name = 'top1_before') AS before,
        (SELECT value FROM metrics WHERE run_key = r.key AND name = 'top1_after') AS after,
        (SELECT group_concat(phase) FROM epochs WHERE run_key = r.key) AS phases,
        (SELECT path FROM artifacts WHERE run_key = r.key AND kind = 'masks') AS masks
      FROM runs r ORDER BY r.method, r.level`).all() as Array<{ method: string; level: number; before: number; after: number; phases: string; masks: string | null }>;
    d.close();
    const [imp1, imp2, control1, control2] = rows;
    assert.deepEqual(rows.map((x) => `${x.method}:${x.level}`), ["imp:1", "imp:2", "imp-random-reinit:1", "imp-random-reinit:2"]);
    // The final masks are imp's: the control's own rounds never prune from the re-drawn network.
    const maskOf = (x: { masks: string | null }) => readCheckpoint(x.masks!).tensors;
    const mi = maskOf(imp2);
    const mc = maskOf(control2);
    for (const [name, t] of mi) assert.deepEqual(mc.get(name)!.data, t.data, name);
    // Each control level is measured on its own retraining from the fresh draw: near chance before it, its own
    // accuracy after (not the ticket's), and the same pretraining epochs a round gets.
    for (const [c, t] of [[control1, imp1], [control2, imp2]]) {
      assert.ok(c.before < 0.35, `control level ${c.level}: top1_before ${c.before}`);
      assert.notEqual(c.after, t.after, `level ${c.level}: the control must not report the ticket's accuracy`);
      assert.equal(c.phases, t.phases);
    }
  });

  test("AP and SILO run through the sweep: exact sparsity per level, round 2 retrains at SILO's peak", () => {
    const dir = tempDir();
    // rate 0.5, round 2: rho = 0.5, peak = offset + alpha / 2 = 0.01 + 0.02 = 0.03 against the configured 0.05.
    const g = grid(dir, "[{name: imp, rate: 0.5, ap_rate: 0.1, lr_peaks: silo, silo_offset: 0.01}]", "sparsities: [0.75]");
    const db = join(dir, "r.db");
    const r = bench(["sweep", g, "--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", join(dir, "art"), "--jobs", "1", "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = new Database(db, { readonly: true });
    const levels = d.prepare(`SELECT r.level, (SELECT value FROM metrics WHERE run_key = r.key AND name = 'sparsity') AS sparsity,
        (SELECT group_concat(lr) FROM (SELECT lr FROM epochs WHERE run_key = r.key ORDER BY epoch)) AS lrs
      FROM runs r WHERE r.status = 'done' ORDER BY r.level`).all() as Array<{ level: number; sparsity: number; lrs: string }>;
    d.close();
    assert.deepEqual(levels.map((l) => l.level), [1, 2]);
    assert.ok(Math.abs(levels[0].sparsity - 0.5) < 1e-3 && Math.abs(levels[1].sparsity - 0.75) < 1e-3, JSON.stringify(levels));
    const [one, two] = levels.map((l) => l.lrs.split(",").map(Number));
    two.forEach((lr, e) => assert.ok(Math.abs(lr / one[e] - 0.03 / 0.05) < 1e-9, `epoch ${e}: ${lr} vs ${one[e]}`));

    // Every epoch of every run, the dense model's included, has its dynamic dead neuron rate stored and read back.
    const store = new Store(db);
    const epochs = readEpochs(store);
    store.close();
    assert.ok(epochs.length >= 4 && epochs.some((e) => e.phase === "pretrain"));
    for (const e of epochs) assert.ok(e.dnr > 0 && e.dnr < 1, `${e.runKey} ${e.phase} ${e.epoch}: dnr ${e.dnr}`);
  });

  test("a target IMP cannot reach in max_rounds is exit 2 at plan time, naming the grid line, the method entry and the range", () => {
    const dir = tempDir();
    const g = grid(dir, "[global-magnitude, {name: imp, rate: 0.2, max_rounds: 3}]", "compressions: [1.5, 32]");
    for (const args of [["validate", g], ["sweep", g, "--db", join(dir, "r.db"), "--cache-dir", join(dir, "cache"), "--plain"]]) {
      const r = bench(args);
      assert.equal(r.code, 2, `${args[0]}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /imp\.yaml:2: methods\[1\]: imp: compression 32x for arch "mlp" on dataset "fashion-mnist-mini" is unreachable: density \S+ needs 16 rounds of 20%, more than max_rounds 3: reachable densities are 51\.2% to 100%/);
      assert.doesNotMatch(r.stderr, /compression 1.5x/, "1.5x is reachable in 3 rounds");
    }
    assert.equal(existsSync(join(dir, "r.db")), false, "nothing ran");
  });

  /**
   * 3 levels (density 0.5, 0.25, 0.125); each round retrains `perRound` epochs (rewind to init: the 2 pretraining
   * epochs; classic fine-tuning: 1). With AP on and no rewind, round 3's prune needs round 2's start weights, which
   * the level checkpoint carries (with a rewind to init they would equal the masked initial weights).
   */
  const resumeSuite = (name: string, methods: string, perRound: number, damaged: boolean) => describe(name, () => {
    const dir = tempDir();
    const g = grid(dir, methods, "sparsities: [0.875]");
    const cache = join(dir, "cache");
    const sweep = (db: string, env: Record<string, string> = {}) =>
      bench(["sweep", g, "--db", join(dir, db), "--cache-dir", cache, "--artifacts-dir", join(dir, `art-${db}`), "--jobs", "1", "--plain"], env);
    const timing = /(_ms|_seconds|^measured_speedup|^train_img_per_s|^peak_rss_mb)$/;
    /** Every stored result but the timings, by run key: levels are child runs with keys of their own. */
    const resultsOf = (db: string) => {
      const d = new Database(join(dir, db), { readonly: true });
      try {
        return {
          runs: d.prepare(`SELECT key, status, parent_key, level FROM runs ORDER BY key`).all(),
          metrics: (d.prepare(`SELECT run_key, name, value FROM metrics ORDER BY run_key, name`).all() as Array<{ name: string }>).filter((m) => !timing.test(m.name)),
          layers: d.prepare(`SELECT * FROM layers ORDER BY run_key, idx`).all(),
          epochs: d.prepare(`SELECT run_key, phase, epoch, loss, train_acc, val_acc, lr, dnr FROM epochs ORDER BY run_key, phase, epoch`).all(),
          artifacts: d.prepare(`SELECT run_key, kind, sha256, bytes FROM artifacts ORDER BY run_key, kind`).all(),
        };
      } finally {
        d.close();
      }
    };
    const parentKey = (db: string) => {
      const d = new Database(join(dir, db), { readonly: true });
      try {
        return (d.prepare(`SELECT key FROM runs WHERE parent_key IS NULL`).get() as { key: string }).key;
      } finally {
        d.close();
      }
    };
    const epochsLogged = (log: string, key: string) => existsSync(log) ? readFileSync(log, "utf8").split("\n").filter((l) => l.startsWith(`${key} `)).length : 0;
    const levelFiles = () => existsSync(join(cache, "levels")) ? readdirSync(join(cache, "levels"), { recursive: true }).map(String).filter((f) => f.endsWith(".safetensors")) : [];
    /** The worker SIGKILLs itself right after level 2 is saved: the run fails, its levels 1 and 2 are on disk. */
    const killAfterLevel2 = (db: string, log: string) => {
      const r = sweep(db, { BENCH_FAULT_KILL_AFTER_LEVEL: "2", BENCH_FAULT_EPOCH_LOG: log });
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stdout, /died \(signal SIGKILL\)/);
      const key = parentKey(db);
      assert.equal(epochsLogged(log, key), 2 * perRound, "two rounds trained before the kill");
      assert.deepEqual(levelFiles().sort(), [`${key}/level-1.safetensors`, `${key}/level-2.safetensors`]);
      return key;
    };
    let reference: ReturnType<typeof resultsOf>;

    test("uninterrupted: 3 levels, 3 rounds trained, and no level checkpoint left once the run is stored", () => {
      const log = join(dir, "a.log");
      const r = sweep("a.db", { BENCH_FAULT_EPOCH_LOG: log });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      reference = resultsOf("a.db");
      assert.equal(reference.runs.length, 3);
      assert.equal(epochsLogged(log, parentKey("a.db")), 3 * perRound, "3 rounds");
      assert.doesNotMatch(r.stdout, /resuming/);
      assert.deepEqual(levelFiles(), []);
      assert.ok(existsSync(join(cache, "levels")), "not vacuous: the run did write level checkpoints there");
    });

    test("killed after level 2 of 3, the re-run trains only round 3 and stores every level bit-identical to the uninterrupted run", () => {
      const key = killAfterLevel2("b.db", join(dir, "b-killed.log"));
      const log = join(dir, "b.log");
      const r = sweep("b.db", { BENCH_FAULT_EPOCH_LOG: log });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`resuming ${key} after level 2 of 3 \\(levels 1-2 restored from .*level-2\\.safetensors\\)`));
      assert.equal(epochsLogged(log, key), perRound, "only round 3 was trained again");
      const resumed = resultsOf("b.db");
      assert.ok(resumed.metrics.length >= 3 * 20 && resumed.epochs.length >= 6, "the comparison covers every level");
      assert.deepEqual(resumed, reference);
      assert.deepEqual(levelFiles(), [], "the stored run leaves no level checkpoint");
    });

    if (damaged) test("a damaged level checkpoint is ignored with a warning: the run resumes from the level before it", () => {
      const key = killAfterLevel2("c.db", join(dir, "c-killed.log"));
      // Bytes overwritten in place in the weights (same size): only the checksum can tell.
      const file = join(cache, "levels", key, "level-2.safetensors");
      const bytes = readFileSync(file);
      const at = bytes.length - 1000;
      bytes.fill(0x7f, at, at + 16);
      writeFileSync(file, bytes);
      assert.equal(statSync(file).size, bytes.length);
      const log = join(dir, "c.log");
      const r = sweep("c.db", { BENCH_FAULT_EPOCH_LOG: log });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /warning: level checkpoint .*level-2\.safetensors is unusable \(.*checksum mismatch.*\); ignored, resuming from an earlier level/);
      assert.match(r.stdout, new RegExp(`resuming ${key} after level 1 of 3`));
      assert.equal(epochsLogged(log, key), 2 * perRound, "rounds 2 and 3 were trained again");
      assert.deepEqual(resultsOf("c.db"), reference);
      assert.deepEqual(levelFiles(), []);
    });
  });
  resumeSuite("a killed IMP run resumes at its level", "[{name: imp, rate: 0.5}]", 2, true);
  resumeSuite("a killed IMP run with AP resumes at its level", "[{name: imp, rate: 0.5, rewind: none, ap_rate: 0.1}]", 1, false);
});
