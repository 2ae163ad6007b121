/**
 * Per-class accuracy, the cost of pruning and the validity checks (issue 14, items 2-4), on real tiny sweeps: per-class
 * hits add up to each phase's top-1; the dense pretraining is charged to runs whose dense model came from the cache
 * (a second sweep sharing it), never into their own training; the mask-exactness count and the overview's validity
 * block fail on exactly the run that breaks them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it, before } from "node:test";
import Database from "better-sqlite3";
import { writeFileSync } from "node:fs";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { maskedNonzero } from "../src/metrics/counts.js";
import { Store } from "../src/store/store.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel } from "../src/train/model.js";
import { TrainCost, TRAIN_MACS_PER_FORWARD } from "../src/train/train-cost.js";
import { readReportData } from "../reports/read.js";
import { renderHtmlReport } from "../reports/html.js";
import { classDamage } from "../reports/class-damage.js";
import { validityChecks } from "../reports/validity.js";
import type { ClassRow, RunRow } from "../reports/model.js";
import { bench, tempDir } from "./helpers/cli.js";

const TRAIN = 600;
const TEST = 300;

function grid(dir: string, name: string, methods: string, sparsities: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `name: ${name}
methods: ${methods}
archs: [mlp]
datasets: [fashion-mnist-mini]
sparsities: ${sparsities}
seeds: [0]
pretrain: {epochs: 2, batch_size: 64, lr: 0.05}
finetune: {epochs: 1, batch_size: 64, lr: 0.01}
data: {train_subset: ${TRAIN}, test_subset: ${TEST}}
eval: {latency_batch: 32, latency_repeats: 2}
`);
  return path;
}

describe("per-class accuracy, cost and validity on real sweeps", () => {
  const dir = tempDir();
  const db = join(dir, "r.db");
  const common = ["--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", join(dir, "art"), "--jobs", "1", "--plain"];
  let first: RunRow[] = [];
  let all: RunRow[] = [];
  let classes: ClassRow[] = [];

  before(() => {
    // The first sweep trains the dense model (in its dense job); the second, another grid, finds it in the cache.
    const a = bench(["sweep", grid(dir, "first", "[global-magnitude, snip, {name: imp, rate: 0.6}]", "[0.9]"), ...common]);
    assert.equal(a.code, 0, a.stdout + a.stderr);
    const b = bench(["sweep", grid(dir, "second", "[global-magnitude]", "[0.5]"), ...common]);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    const store = new Store(db, { readonly: true });
    try {
      const data = readReportData(store);
      all = data.runs;
      first = all.filter((r) => r.sweepIds.includes(1));
      classes = data.classes ?? [];
    } finally {
      store.close();
    }
    // IMP at rate 0.6 reaches 0.9 in three rounds: three results (two child runs and the run itself).
    assert.equal(all.length, 6);
  });

  it("per-class hits add up to each phase's top-1 (weighted by class counts), from the same evaluation pass", () => {
    for (const r of all) {
      for (const phase of ["dense", "before", "after"] as const) {
        const found = classes.filter((c) => c.runKey === r.key && c.phase === phase);
        assert.equal(found.length, 1, `${r.methodLabel} ${phase}: one set of class rows`);
        const c = found[0];
        assert.deepEqual(c.labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "one row per class");
        assert.equal(c.names[6], "Shirt", "Fashion-MNIST's class names are stored");
        const count = c.count.reduce((n, x) => n + x, 0);
        assert.equal(count, TEST);
        // The class-balanced mini set: the test subset keeps 30 images of each class.
        assert.ok(c.count.every((x) => x === TEST / 10));
        const top1 = c.correct.reduce((n, x) => n + x, 0) / count;
        assert.ok(Math.abs(top1 - r.metrics[`top1_${phase}`]!) < 1e-12, `${r.methodLabel} ${phase}: Σ correct / Σ count ${top1} = top1_${phase} ${r.metrics[`top1_${phase}`]}`);
        // The class accuracies weighted by their class counts give the same number.
        const weighted = c.correct.reduce((n, x, i) => n + (x / c.count[i]) * (c.count[i] / count), 0);
        assert.ok(Math.abs(weighted - top1) < 1e-12);
      }
    }
    // The report's per-class view: every class of the run, its Δ = after − dense and the overall Δ from the same rows.
    const damage = classDamage(all, classes);
    assert.equal(damage.length, 6);
    const g = damage.find((d) => d.methodLabel === "snip")!;
    const r = all.find((x) => x.methodLabel === "snip")!;
    assert.equal(g.classes.length, 10);
    assert.ok(Math.abs(g.overall.mean - (r.metrics.top1_after! - r.metrics.top1_dense!)) < 1e-12);
    const worst = g.classes[0];
    const hits = (phase: string) => {
      const c = classes.find((x) => x.runKey === r.key && x.phase === phase)!;
      const i = c.labels.indexOf(worst.label);
      return { correct: c.correct[i], count: c.count[i] };
    };
    assert.ok(Math.abs(worst.delta.mean - (hits("after").correct - hits("dense").correct) / hits("dense").count) < 1e-12);
    assert.ok(g.classes.every((c, i) => i === 0 || c.delta.mean >= g.classes[i - 1].delta.mean), "most damaged first");
    assert.ok(g.classes.every((c) => !c.disproportionate), "one seed: no class is called significant");
  });

  it("the dense pretraining is charged to every run that prunes it, also from the cache, and never into the run's own cost", () => {
    const mag = first.find((r) => r.methodLabel === "global-magnitude")!;
    const cached = all.find((r) => r.sweepIds.includes(2))!;
    const snip = first.find((r) => r.methodLabel === "snip")!;
    // Both sweeps' runs found the dense model in the cache: their own pretrain_seconds is 0, as before.
    assert.equal(mag.metrics.pretrain_seconds, 0);
    assert.equal(cached.metrics.pretrain_seconds, 0);
    const macsDense = mag.metrics.macs_dense!;
    for (const r of [mag, cached]) {
      assert.equal(r.metrics.dense_pretrain_images, 2 * TRAIN, "two pretraining epochs over the training split");
      assert.equal(r.metrics.dense_pretrain_macs, 2 * TRAIN * TRAIN_MACS_PER_FORWARD * macsDense);
      assert.ok(r.metrics.dense_pretrain_seconds! > 0);
      // One fine-tuning epoch: the run's own training, without the pretraining.
      assert.equal(r.metrics.train_images, TRAIN);
    }
    // The second sweep's run is charged exactly what the first sweep's dense job measured and kept with the model.
    assert.equal(cached.metrics.dense_pretrain_seconds, mag.metrics.dense_pretrain_seconds);
    // Fine-tuning under fixed masks: 3 × the masked model's MACs per image.
    for (const r of [mag, cached]) {
      assert.ok(Math.abs(r.metrics.train_macs! - TRAIN * TRAIN_MACS_PER_FORWARD * r.metrics.macs_effective!) <= 1e-9 * r.metrics.train_macs!);
    }
    assert.ok(mag.metrics.train_macs! < cached.metrics.train_macs!, "90 % sparse fine-tuning costs less than 50 %");
    // Pruning at initialization does not start from the trained dense model: it pays for its own (sparse) training only.
    assert.equal(snip.metrics.dense_pretrain_images, 0);
    assert.equal(snip.metrics.dense_pretrain_macs, 0);
    assert.equal(snip.metrics.train_images, 3 * TRAIN, "its pretraining-length and fine-tuning epochs, sparse");
    for (const r of all) assert.equal(r.metrics.masked_nonzero, 0, `${r.methodLabel}: masked weights stay 0`);
  });

  it("IMP's rounds are not free: each level is charged every round up to it, plus the dense pretraining once", () => {
    const levels = all.filter((r) => r.method === "imp").sort((a, b) => a.metrics.sparsity! - b.metrics.sparsity!);
    assert.deepEqual(levels.map((r) => Number(r.metrics.sparsity!.toFixed(2))), [0.6, 0.84, 0.9]);
    // Each round rewinds to the initial weights and retrains for the pretraining config's 2 epochs.
    assert.deepEqual(levels.map((r) => r.metrics.train_images), [2 * TRAIN, 4 * TRAIN, 6 * TRAIN]);
    for (let i = 1; i < levels.length; i++) {
      const round = levels[i].metrics.train_macs! - levels[i - 1].metrics.train_macs!;
      // A round trains the network pruned at that level: 3 × its masked MACs per image.
      assert.ok(Math.abs(round - 2 * TRAIN * TRAIN_MACS_PER_FORWARD * levels[i].metrics.macs_effective!) <= 1e-9 * round);
    }
    for (const r of levels) assert.equal(r.metrics.dense_pretrain_images, 2 * TRAIN, "the dense pretraining is charged once per result");
  });

  it("the overview's validity block: every check passes on the sweep, and one tampered run fails exactly its checks", () => {
    const copy = join(dir, "tampered.db");
    const src = new Database(db, { readonly: true });
    src.exec(`VACUUM INTO '${copy}'`);
    src.close();
    const store0 = new Store(db, { readonly: true });
    const clean = renderHtmlReport(readReportData(store0));
    store0.close();
    const block = (html: string) => html.slice(html.indexOf(`<h3 id="validity">`), html.indexOf("</table>", html.indexOf(`<h3 id="validity">`)));
    assert.match(block(clean), /all pass/);
    assert.doesNotMatch(block(clean), /data-status="fail"/);

    const bad = all.find((r) => r.sweepIds.includes(2))!;
    const d = new Database(copy);
    d.prepare(`UPDATE metrics SET value = 7 WHERE run_key = ? AND name = 'masked_nonzero'`).run(bad.key);
    d.prepare(`UPDATE metrics SET value = value + 0.01 WHERE run_key = ? AND name = 'top1_dense'`).run(bad.key);
    d.close();
    const store = new Store(copy, { readonly: true });
    const html = renderHtmlReport(readReportData(store));
    store.close();
    const b = block(html);
    assert.match(b, /2 failing/);
    const row = (id: string) => b.match(new RegExp(`<tr data-check="${id}" data-status="(\\w+|n/a)">[\\s\\S]*?</tr>`))!;
    assert.equal(row("masks")[1], "fail");
    assert.ok(row("masks")[0].includes(bad.key) && row("masks")[0].includes("7 masked weights are nonzero"));
    assert.equal(row("dense")[1], "fail");
    assert.ok(row("dense")[0].includes(bad.key));
    for (const other of all.filter((r) => r.key !== bad.key)) assert.ok(!b.includes(other.key), `${other.key} fails nothing`);
    assert.equal(row("target")[1], "pass");
    assert.equal(row("monotone")[1], "pass");
    assert.equal(row("compacted")[1], "n/a", "no structured run");
  });
});

describe("validity checks on hand-made runs", () => {
  const run = (key: string, targetValue: number, metrics: Record<string, number>, extra: Partial<RunRow> = {}): RunRow => ({
    key, sweepIds: [1], database: "x", status: "done", method: "m", methodLabel: "m", arch: "mlp", dataset: "d", targetKind: "sparsity", targetValue, seed: 0,
    backend: null, tfjsVersion: null, error: null, startedAt: null, finishedAt: null, config: {}, metrics, ...extra,
  });
  const failing = (runs: RunRow[], id: string) => validityChecks(runs).find((c) => c.id === id)!.failures.map((f) => f.runKey);

  it("a requested sparsity missed by more than 2 % of what it leaves fails; a structured run may overshoot but not fall short", () => {
    // 0.9 leaves 10 %: 0.8985 leaves 10.15 % (1.5 % more: passes), 0.897 leaves 10.3 % (3 % more: fails).
    assert.deepEqual(failing([run("a", 0.9, { sparsity: 0.8985 }), run("b", 0.9, { sparsity: 0.897 })], "target"), ["b"]);
    assert.deepEqual(failing([
      run("over", 0.5, { target_achieved: 0.7 }), run("short", 0.5, { target_achieved: 0.45 }),
      run("c", 8, { compression_ratio: 8.1 }, { targetKind: "compression" }), run("d", 8, { compression_ratio: 7 }, { targetKind: "compression" }),
    ], "target"), ["short", "d"]);
  });

  it("a larger target that keeps more parameters than a smaller one fails (per method and seed)", () => {
    const runs = [
      run("s5", 0.5, { params_nonzero: 500 }), run("s8", 0.8, { params_nonzero: 200 }), run("s9", 0.9, { params_nonzero: 300 }),
      run("other-seed", 0.95, { params_nonzero: 400 }, { seed: 1 }),
    ];
    assert.deepEqual(failing(runs, "monotone"), ["s9"]);
    assert.match(validityChecks(runs)[1].failures[0].detail, /keeps 300 params, more than s8 at sparsity 0.8 \(200\)/);
  });

  it("masks, compacted outputs and the dense baseline", () => {
    assert.deepEqual(failing([run("a", 0.5, { masked_nonzero: 0 }), run("b", 0.5, { masked_nonzero: 1 })], "masks"), ["b"]);
    assert.deepEqual(failing([run("a", 0.5, { compacted_max_abs_diff: 1e-5 }), run("b", 0.5, { compacted_max_abs_diff: 0.02 })], "compacted"), ["b"]);
    assert.deepEqual(failing([
      run("a", 0.5, { top1_dense: 0.8 }, { denseKey: "k" }), run("b", 0.9, { top1_dense: 0.8 }, { denseKey: "k" }), run("c", 0.8, { top1_dense: 0.81 }, { denseKey: "k" }),
      run("d", 0.5, { top1_dense: 0.7 }, { denseKey: "other" }),
    ], "dense"), ["c"]);
    assert.equal(validityChecks([run("a", 0.5, {})]).find((c) => c.id === "masks")!.checked, 0, "not recorded: n/a, not pass");
  });
});

describe("mask exactness and training MACs", () => {
  it("maskedNonzero counts nonzero weights at masked positions only", () => {
    const masks = new Map([["fc/kernel", Float32Array.from([1, 0, 0, 1])]]);
    assert.equal(maskedNonzero(new Map([["fc/kernel", Float32Array.from([0.3, 0, 0, -2])]]), masks), 0);
    assert.equal(maskedNonzero(new Map([["fc/kernel", Float32Array.from([0.3, 1e-30, 0, -2])]]), masks), 1, "a masked weight that moved, however little");
    assert.equal(maskedNonzero(new Map([["fc/kernel", Float32Array.from([0, -0.5, 2, 0])]]), masks), 2);
    assert.throws(() => maskedNonzero(new Map(), masks), /mask for unknown tensor fc\/kernel/);
  });

  it("TrainCost charges each step 3 × the forward MACs of the model under the masks it trained with", async () => {
    await initBackend("wasm");
    const model = createModel(getArch("mlp"), [28, 28, 1], 10, 0);
    const masks = new MaskSet();
    try {
      const cost = new TrainCost(model.layers, masks);
      cost.step(64);
      // LeNet-300-100: 784·300 + 300·100 + 100·10 = 266,200 MACs.
      assert.equal(cost.macs, 64 * 3 * 266_200);
      // Half of fc1's kernel pruned: 117,600 MACs fewer per image, from the next step on.
      const kernel = model.layers[0].name + "/kernel";
      const w = model.params.get(kernel)!;
      masks.set(kernel, Float32Array.from({ length: w.size }, (_, i) => i % 2), w.shape);
      cost.step(10);
      assert.equal(cost.images, 74);
      assert.equal(cost.macs, 64 * 3 * 266_200 + 10 * 3 * (266_200 - 117_600));
    } finally {
      masks.dispose();
      disposeModel(model);
    }
  });
});
