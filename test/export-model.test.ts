/**
 * `bench export-model`: a run's pruned network as a standard tfjs LayersModel. What defines it: plain tfjs (the
 * @tensorflow/tfjs package, no prunebench code, a file:// loader as tfjs-node registers one) loads the folder with
 * `tf.loadLayersModel`, and on the test split prunebench evaluated the run on it gives the stored top-1; a channel
 * run's model is the compacted one, with exactly its stored params_compacted. The Layers interpreter computes what
 * prunebench's TensorOps computes on every architecture it accepts (BN running statistics and epsilon included), and
 * refuses the others naming the operation.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { before, describe, test } from "node:test";
import * as tfjs from "@tensorflow/tfjs";
import * as tf from "@tensorflow/tfjs-core";
import Database from "better-sqlite3";
import { getDataset } from "../datasets/index.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { makeRng } from "../src/core/rng.js";
import { decodeMask, encodeMask } from "../src/export/export-run.js";
import { buildLayersModel, exportProblem, layersModelFiles, trainableParams } from "../src/export/layers-ops.js";
import { readCheckpoint } from "../src/run/checkpoint.js";
import { prepareData } from "../src/train/data.js";
import { createModel, disposeModel, forward } from "../src/train/model.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

await initBackend("cpu");

/** What tfjs-node's file:// router does, in a few lines: model.json, then the weight files its manifest names. */
function fileHandler(path: string): tfjs.io.IOHandler {
  return {
    load: async () => tfjs.io.getModelArtifactsForJSON(JSON.parse(readFileSync(path, "utf8")), async (manifest) => {
      const data = Buffer.concat(manifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dirname(path), p)))));
      return [manifest.flatMap((g) => g.weights), data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer];
    }),
  };
}
tfjs.io.registerLoadRouter(((url: string | string[]) => (typeof url === "string" && url.startsWith("file://") ? fileHandler(url.slice("file://".length)) : null)) as unknown as Parameters<typeof tfjs.io.registerLoadRouter>[0]);

const maxRelDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / Math.max(1e-12, tf.max(tf.abs(a)).dataSync()[0]));

describe("the Layers interpreter", () => {
  const EXPORTABLE = ["mlp", "lenet5", "lenet5-caffe", "conv2", "conv4", "conv6", "vgg16-bn", "vgg19-bn", "resnet20-b", "resnet56-b", "mobilenetv2"];
  for (const name of EXPORTABLE) {
    test(`${name}: the LayersModel, saved and loaded by plain tfjs, computes prunebench's eval forward pass`, async () => {
      const arch = getArch(name);
      const shape: [number, number, number] = arch.inputShape ?? [28, 28, 1];
      const model = createModel(arch, shape, 10, 1);
      // Running variances of ~1e-3 with γ ≈ √var keep activations at scale through 50 layers, and make the epsilon
      // matter: tfjs-layers' default 1e-3 instead of prunebench's 1e-5 would change every BN output by ~40 %.
      const rng = makeRng(7, "bn");
      for (const [n, v] of [...model.state, ...model.params]) {
        const kind = n.split("/").pop();
        if (!["moving_var", "moving_mean", "gamma", "beta"].includes(kind!)) continue;
        const values = Float32Array.from({ length: v.size }, () => rng());
        if (kind === "moving_var") values.forEach((r, i) => { values[i] = 1e-3 * (0.5 + r); });
        if (kind === "gamma") values.forEach((r, i) => { values[i] = Math.sqrt(1e-3) * (0.5 + r); });
        if (kind === "moving_mean" || kind === "beta") values.forEach((r, i) => { values[i] = 0.1 * (r - 0.5); });
        v.assign(tf.tensor(values, v.shape));
      }
      const tensors = new Map([...model.params, ...model.state].map(([n, v]) => [n, { shape: v.shape, data: v.dataSync() as Float32Array }]));
      const layers = buildLayersModel(arch, shape, 10, tensors);
      assert.equal(trainableParams(layers), model.layers.reduce((n, l) => n + l.params, 0), "trainable parameters as prunebench counts them");
      const dir = tempDir();
      const files = await layersModelFiles(layers);
      writeFileSync(join(dir, "model.json"), JSON.stringify(files.modelJson));
      writeFileSync(join(dir, "weights.bin"), files.weights);
      layers.dispose();
      const loaded = await tfjs.loadLayersModel(`file://${join(dir, "model.json")}`);
      const x = tf.randomNormal([2, ...shape], 0, 1, "float32", 3);
      const want = forward(model, x, false).logits;
      const got = loaded.predict(x) as tf.Tensor;
      const diff = maxRelDiff(want, got);
      assert.ok(diff < 1e-4, `max |difference| / max |logit| = ${diff}`);
      const bnEpsilons = (files.modelJson.modelTopology as any).config.layers
        .filter((l: any) => l.class_name === "BatchNormalization").map((l: any) => l.config.epsilon);
      assert.ok(bnEpsilons.every((e: number) => e === 1e-5), `BN epsilons ${[...new Set(bnEpsilons)]}`);
      tf.dispose([x, want, got]);
      loaded.dispose();
      disposeModel(model);
    });
  }

  test("option-A shortcuts and transformers are refused, naming the operation, the layer and the architecture", () => {
    const a = exportProblem(getArch("resnet20"), [28, 28, 1], 10);
    assert.match(a?.message ?? "", /architecture resnet20 cannot be exported as a standard tfjs LayersModel: operation zeroPadShortcut \(s2b1\/shortcut\), He et al.'s option-A/);
    assert.match(a?.message ?? "", /exportable architectures: .*resnet20-b/);
    assert.doesNotMatch(a!.message.split("exportable architectures:")[1], /\bresnet20,|vit-tiny/);
    const v = exportProblem(getArch("vit-tiny"), [32, 32, 3], 10);
    assert.match(v?.message ?? "", /architecture vit-tiny cannot be exported .*operation (toTokens|layerNorm)/);
    assert.equal(exportProblem(getArch("resnet56-b"), [32, 32, 3], 10), null);
  });

  test("masks round-trip through both encodings, the shorter one chosen", () => {
    const rng = makeRng(3, "mask");
    const random = Float32Array.from({ length: 1001 }, () => (rng() < 0.5 ? 0 : 1));
    const channels = Float32Array.from({ length: 1000 }, (_, i) => (Math.floor(i / 100) % 3 === 0 ? 0 : 1));
    const r = encodeMask(random);
    const c = encodeMask(channels);
    assert.ok("bits" in r, "random masks pack as bits");
    assert.deepEqual(c, { runs: [100, 200, 100, 200, 100, 200, 100] });
    assert.deepEqual([...decodeMask({ size: 1001, ...r })], [...random]);
    assert.deepEqual([...decodeMask({ size: 1000, ...c })], [...channels]);
    assert.deepEqual(encodeMask(Float32Array.from({ length: 100 }, (_, i) => (i < 60 ? 1 : 0))), { runs: [0, 60, 40] }, "a kept first entry: a leading empty run of 0s");
  });
});

describe("bench export-model on a sweep's runs", () => {
  const dir = tempDir();
  const db = join(dir, "r.db");
  const runs = new Map<string, { key: string; config: any; metrics: Record<string, number> }>();

  before(() => {
    const grid = writeTinyGrid(dir);
    writeFileSync(grid, readFileSync(grid, "utf8")
      .replace("methods: [random, global-magnitude]", "methods: [global-magnitude, l1-filter]")
      .replace("archs: [mlp]", "archs: [lenet5]").replace("sparsities: [0.5, 0.9]", "sparsities: [0.5]"));
    const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--jobs", "1", "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const sql = new Database(db, { readonly: true });
    for (const row of sql.prepare(`SELECT key, method, config_json FROM runs WHERE status = 'done'`).all() as any[]) {
      const metrics = Object.fromEntries((sql.prepare(`SELECT name, value FROM metrics WHERE run_key = ?`).all(row.key) as any[]).map((m) => [m.name, m.value]));
      runs.set(row.method, { key: row.key, config: JSON.parse(row.config_json), metrics });
    }
    sql.close();
    assert.deepEqual([...runs.keys()].sort(), ["global-magnitude", "l1-filter"]);
  });

  /** Top-1 of the loaded model on the test split prunebench built for the run (its loader, subset and normalization). */
  async function top1(model: tfjs.LayersModel, config: any): Promise<{ top1: number; count: number }> {
    const data = prepareData(await getDataset(config.dataset).load(), config.data);
    const x = tf.tensor4d(data.test.x, [data.test.count, ...data.inputShape]);
    const predicted = Array.from(tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, 1).dataSync()));
    x.dispose();
    const hits = predicted.reduce((n, p, i) => n + (p === data.test.y[i] ? 1 : 0), 0);
    return { top1: hits / data.test.count, count: data.test.count };
  }

  test("a channel run exports its compacted model: loads in plain tfjs, reproduces the stored top-1 and params_compacted", async () => {
    const run = runs.get("l1-filter")!;
    const out = join(dir, "l1");
    const r = bench(["export-model", run.key.slice(0, 10), "--db", db, "-o", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /wrote .*l1: compacted lenet5/);
    const model = await tfjs.loadLayersModel(`file://${join(out, "model.json")}`);
    assert.equal(trainableParams(model), run.metrics.params_compacted, "the exported model is the compacted one");
    assert.ok(run.metrics.params_compacted < run.metrics.params_total);
    const { top1: acc, count } = await top1(model, run.config);
    assert.ok(Math.abs(acc - run.metrics.top1_after) <= 1 / count + 1e-9, `exported ${acc}, stored ${run.metrics.top1_after} on ${count} images`);

    const plan = JSON.parse(readFileSync(join(out, "plan.json"), "utf8"));
    const conv1 = plan.layers.find((l: any) => l.layer === "conv1");
    assert.equal(plan.kind, "structured");
    assert.equal(conv1.outputs.before - conv1.outputs.removed.length, conv1.outputs.after);
    assert.equal(model.getLayer("conv1").getWeights()[0].shape[3], conv1.outputs.after, "conv1 keeps the channels plan.json does not list");
    assert.ok(plan.layers.some((l: any) => l.outputs.removed.length > 0), "channels were removed");
    const conv2 = plan.layers.find((l: any) => l.layer === "conv2");
    assert.deepEqual(conv2.inputs.removed, conv1.outputs.removed, "a removed conv1 channel is a removed conv2 input");

    const meta = JSON.parse(readFileSync(join(out, "metadata.json"), "utf8"));
    assert.equal(meta.run.key, run.key);
    assert.equal(meta.form, "compacted");
    assert.equal(meta.stored.top1_after, run.metrics.top1_after);
    assert.equal(meta.model.input.mean.length, 1);
    assertMasksMatch(out, run.key);
    model.dispose();
  });

  test("a weight run exports its masked model (dense shapes, pruned weights 0) that reproduces the stored top-1", async () => {
    const run = runs.get("global-magnitude")!;
    const out = join(dir, "gm");
    const r = bench(["export-model", run.key, "--db", db, "-o", out]);
    assert.equal(r.code, 0, r.stderr);
    const model = await tfjs.loadLayersModel(`file://${join(out, "model.json")}`);
    assert.equal(trainableParams(model), run.metrics.params_total);
    const nonzero = model.trainableWeights.reduce((n, w) => n + tf.tidy(() => tf.sum(tf.notEqual(w.read(), 0)).dataSync()[0]), 0);
    assert.equal(nonzero, run.metrics.params_nonzero);
    const { top1: acc, count } = await top1(model, run.config);
    assert.ok(Math.abs(acc - run.metrics.top1_after) <= 1 / count + 1e-9, `exported ${acc}, stored ${run.metrics.top1_after} on ${count} images`);
    const plan = JSON.parse(readFileSync(join(out, "plan.json"), "utf8"));
    assert.equal(plan.kind, "unstructured");
    assert.ok(Math.abs(plan.masked.density - 0.5) < 0.01, `density ${plan.masked.density}`);
    assertMasksMatch(out, run.key);
    // A previous export is replaced without --force.
    assert.equal(bench(["export-model", run.key, "--db", db, "-o", out]).code, 0);
    model.dispose();
  });

  function assertMasksMatch(out: string, key: string): void {
    const masks = JSON.parse(readFileSync(join(out, "masks.json"), "utf8")).tensors;
    const saved = readCheckpoint(join(dir, "r-artifacts", key, "masks.safetensors")).tensors;
    assert.deepEqual(Object.keys(masks).sort(), [...saved.keys()].sort());
    for (const [name, t] of saved) {
      assert.deepEqual(masks[name].shape, t.shape);
      assert.deepEqual([...decodeMask(masks[name])], [...t.data].map((v) => (v === 0 ? 0 : 1)), name);
    }
  }

  test("bad input exits 2 with what is wrong: unknown key, ambiguous prefix, no artifacts, unsupported architecture", () => {
    const { key } = runs.get("l1-filter")!;
    const other = runs.get("global-magnitude")!.key;
    const bad = join(dir, "bad.db");
    copyFileSync(db, bad);
    const sql = new Database(bad);
    // A second run sharing the first 12 characters of the channel run's key, with no artifacts.
    const twin = key.slice(0, 12) + [...key.slice(12)].map((c) => (c === "0" ? "1" : "0")).join("");
    sql.exec(`CREATE TEMP TABLE t AS SELECT * FROM runs WHERE key = '${key}'; UPDATE t SET key = '${twin}'; INSERT INTO runs SELECT * FROM t;`);
    sql.prepare(`UPDATE runs SET arch = 'resnet20' WHERE key = ?`).run(other);
    sql.close();
    const out = join(dir, "bad-out");
    const unused = "0123456789abcdef".split("").find((c) => ![key, other, twin].some((k) => k.startsWith(c)))!;

    const cases: Array<[string[], RegExp]> = [
      [[unused + "abc"], new RegExp(`no run with key \\(prefix\\) "${unused}abc"`)],
      [["not-a-key"], /"not-a-key" is not a run key/],
      [[key.slice(0, 12)], new RegExp(`"${key.slice(0, 12)}" matches 2 runs: .*give more of the key`)],
      [[twin], new RegExp(`run ${twin} \\(lenet5 / l1-filter.*\\) has no saved weights .*only runs that finished`)],
      [[other], /architecture resnet20 cannot be exported as a standard tfjs LayersModel: operation zeroPadShortcut/],
    ];
    for (const [args, message] of cases) {
      const r = bench(["export-model", ...args, "--db", bad, "-o", out]);
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /internal error/);
    }
    assert.ok(!existsSync(out), "nothing written on refusal");
  });

  test("-o never replaces the database, and refuses a folder of other files without --force", () => {
    const { key } = runs.get("l1-filter")!;
    const before = readFileSync(db);
    const onDb = bench(["export-model", key, "--db", db, "-o", db]);
    assert.equal(onDb.code, 2);
    assert.match(onDb.stderr, /is the results database this command reads/);
    assert.ok(readFileSync(db).equals(before), "database untouched");

    const busy = join(dir, "busy");
    mkdirSync(busy);
    writeFileSync(join(busy, "notes.txt"), "mine");
    const refused = bench(["export-model", key, "--db", db, "-o", busy]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /holds other things than a previous export \(notes\.txt\).*--force/);
    assert.ok(!existsSync(join(busy, "model.json")));
    assert.equal(bench(["export-model", key, "--db", db, "-o", busy, "--force"]).code, 0);
    assert.equal(readFileSync(join(busy, "notes.txt"), "utf8"), "mine");

    // Even forced, an export file name holding a database is not replaced.
    const trap = join(dir, "trap");
    mkdirSync(trap);
    copyFileSync(db, join(trap, "plan.json"));
    const forced = bench(["export-model", key, "--db", db, "-o", trap, "--force"]);
    assert.equal(forced.code, 2);
    assert.match(forced.stderr, /plan\.json is a SQLite database; an export never replaces one, even with --force/);

    const noParent = bench(["export-model", key, "--db", db, "-o", join(dir, "missing", "deeper")]);
    assert.equal(noParent.code, 2);
    assert.match(noParent.stderr, /does not exist; create it first/);
  });
});
