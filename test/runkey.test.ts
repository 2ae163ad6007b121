import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { expandGrid, parseGrid } from "../src/grid/index.js";
import { type RunConfig } from "../src/core/types.js";
import { canonicalJson } from "../src/core/canonical.js";
import { METHODS } from "../methods/index.js";
import { methodSourceHash, sourceTreeHash } from "../src/plan/method-source.js";
import { planRuns } from "../src/plan/plan.js";
import { denseKey, KEY_NEUTRAL_DEFAULTS, runKey, stripNeutralDefaults } from "../src/plan/runKey.js";
import { TEST_CATALOG } from "./fixtures/grids/catalog.js";

/**
 * A fixed run. Its keys below are pinned: if this test fails, every stored run would be orphaned. It was written
 * before the protocol knobs (model.init, nesterov, warmup, select, normalize, augment) existed and lacks them, as
 * configs stored then do (hence the cast); with them at their key-neutral values it must keep the same keys.
 */
const CONFIG = {
  method: { name: "random", params: { scope: "global" } },
  arch: "lenet5",
  dataset: "fashion-mnist",
  target: { kind: "sparsity", value: 0.9 },
  seed: 1,
  pretrain: { epochs: 10, batchSize: 128, optimizer: "sgd", lr: 0.05, momentum: 0.9, weightDecay: 0.0005, schedule: "cosine", stepEpochs: 30, gamma: 0.1 },
  finetune: { epochs: 5, batchSize: 128, optimizer: "sgd", lr: 0.01, momentum: 0.9, weightDecay: 0.0005, schedule: "cosine", stepEpochs: 30, gamma: 0.1 },
  data: { valFraction: 0.1, trainSubset: null, testSubset: 2000 },
  prunable: { biases: false, batchNorm: false, classifier: true, firstLayer: true },
  eval: { latencyBatch: 128, latencyRepeats: 10 },
} as unknown as RunConfig;
const FP = { code: "code-v1", data: "data-abc" };

const PINNED_CANONICAL =
  '{"arch":"lenet5","data":{"testSubset":2000,"trainSubset":null,"valFraction":0.1},"dataset":"fashion-mnist",' +
  '"eval":{"latencyBatch":128,"latencyRepeats":10},' +
  '"finetune":{"batchSize":128,"epochs":5,"gamma":0.1,"lr":0.01,"momentum":0.9,"optimizer":"sgd","schedule":"cosine","stepEpochs":30,"weightDecay":0.0005},' +
  '"method":{"name":"random","params":{"scope":"global"}},' +
  '"pretrain":{"batchSize":128,"epochs":10,"gamma":0.1,"lr":0.05,"momentum":0.9,"optimizer":"sgd","schedule":"cosine","stepEpochs":30,"weightDecay":0.0005},' +
  '"prunable":{"batchNorm":false,"biases":false,"classifier":true,"firstLayer":true},' +
  '"seed":1,"target":{"kind":"sparsity","value":0.9}}';
const PINNED_RUN_KEY = "752632fa68e6ed10";
const PINNED_DENSE_KEY = "6146dac07c438fbc";

/** Rebuild a value with every object's keys in reverse insertion order. */
function reverseKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(reverseKeys) as T;
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v)
        .reverse()
        .map(([k, x]) => [k, reverseKeys(x)]),
    ) as T;
  }
  return v;
}

describe("canonicalJson", () => {
  test("sorts keys recursively, keeps array order, prints numbers like JSON", () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [3, 1, { z: true, y: null }], c: "x" } }), '{"a":{"c":"x","d":[3,1,{"y":null,"z":true}]},"b":1}');
    assert.equal(canonicalJson({ x: 0.1, y: 1e21, z: -0, w: 5e-7 }), '{"w":5e-7,"x":0.1,"y":1e+21,"z":0}');
    assert.equal(canonicalJson({ a: undefined, b: 2 }), '{"b":2}');
    assert.equal(canonicalJson('quote " and \u00e9'), JSON.stringify('quote " and \u00e9'));
  });

  test("rejects values without a faithful JSON form", () => {
    assert.throws(() => canonicalJson({ a: NaN }), /non-finite/);
    assert.throws(() => canonicalJson(Infinity), /non-finite/);
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    assert.throws(() => canonicalJson(cyc), /circular/);
  });

  test("the fixed config's canonical form is pinned", () => {
    assert.equal(canonicalJson(CONFIG), PINNED_CANONICAL);
    assert.equal(canonicalJson(reverseKeys(CONFIG)), PINNED_CANONICAL);
  });
});

describe("runKey / denseKey", () => {
  test("pinned keys for a fixed RunConfig", () => {
    assert.equal(runKey(CONFIG, FP), PINNED_RUN_KEY);
    assert.equal(denseKey(CONFIG, FP), PINNED_DENSE_KEY);
  });

  test("runKey is sha256 of canonical {config, code, data}, first 16 hex chars", () => {
    const expected = createHash("sha256")
      .update(`{"code":"code-v1","config":${PINNED_CANONICAL},"data":"data-abc"}`)
      .digest("hex")
      .slice(0, 16);
    assert.equal(runKey(CONFIG, FP), expected);
    assert.match(runKey(CONFIG, FP), /^[0-9a-f]{16}$/);
    assert.match(denseKey(CONFIG, FP), /^[0-9a-f]{16}$/);
  });

  test("key order of the input objects does not matter", () => {
    const rev = reverseKeys(CONFIG);
    assert.notDeepEqual(Object.keys(rev), Object.keys(CONFIG));
    assert.equal(runKey(rev, { data: FP.data, code: FP.code }), runKey(CONFIG, FP));
    assert.equal(denseKey(rev, FP), denseKey(CONFIG, FP));
  });

  test("what a dense model does not depend on changes runKey but not denseKey", () => {
    const variants: RunConfig[] = [
      { ...CONFIG, method: { name: "random", params: { scope: "layer" } } },
      { ...CONFIG, method: { name: "global-magnitude", params: {} } },
      { ...CONFIG, target: { kind: "sparsity", value: 0.8 } },
      { ...CONFIG, target: { kind: "compression", value: 0.9 } },
      { ...CONFIG, finetune: { ...CONFIG.finetune, epochs: 6 } },
      { ...CONFIG, prunable: { ...CONFIG.prunable, biases: true } },
      { ...CONFIG, eval: { ...CONFIG.eval, latencyRepeats: 11 } },
    ];
    const keys = new Set(variants.map((v) => runKey(v, FP)));
    assert.equal(keys.size, variants.length);
    assert.ok(!keys.has(runKey(CONFIG, FP)));
    for (const v of variants) assert.equal(denseKey(v, FP), denseKey(CONFIG, FP));
  });

  test("what a dense model depends on changes both keys", () => {
    const variants: [RunConfig, { code: string; data: string }][] = [
      [{ ...CONFIG, arch: "mlp" }, FP],
      [{ ...CONFIG, dataset: "fashion-mnist-mini" }, FP],
      [{ ...CONFIG, seed: 2 }, FP],
      [{ ...CONFIG, pretrain: { ...CONFIG.pretrain, lr: 0.1 } }, FP],
      [{ ...CONFIG, data: { ...CONFIG.data, trainSubset: 100 } }, FP],
      [CONFIG, { ...FP, code: "code-v2" }],
      [CONFIG, { ...FP, data: "data-xyz" }],
    ];
    const run = new Set([runKey(CONFIG, FP)]);
    const dense = new Set([denseKey(CONFIG, FP)]);
    for (const [c, fp] of variants) {
      run.add(runKey(c, fp));
      dense.add(denseKey(c, fp));
    }
    assert.equal(run.size, variants.length + 1);
    assert.equal(dense.size, variants.length + 1);
  });

  test("filling a default explicitly in YAML gives the same keys as omitting it", () => {
    const base = "name: k\narchs: [lenet5]\ndatasets: [fashion-mnist]\nsparsities: [0.9]\nseeds: [1]\n";
    // model.init is spelt out: its default (torch-default) is the one new default that changes results, and keys.
    const implicit = base + "methods: [{name: random, scope: global}]\ndata: {test_subset: 2000}\nmodel: {init: he-uniform}\n";
    const explicit =
      "seeds: [1]\nsparsities: [0.90]\ndatasets: [fashion-mnist]\nname: k\narchs: [lenet5]\n" +
      "methods: [random]\nmethod_params: {random: {scope: global}}\n" +
      "pretrain: {gamma: 0.1, epochs: 10, batch_size: 128, optimizer: sgd, lr: 5e-2, momentum: 0.9, weight_decay: 5.0e-4, schedule: cosine, step_epochs: 30, nesterov: false, warmup_epochs: 0}\n" +
      "finetune: {epochs: 5, lr: 0.010, select: best-val, nesterov: false, warmup_epochs: 0.0}\n" +
      "data: {test_subset: 2000, val_fraction: 0.1, train_subset: null, normalize: dataset, augment: auto}\n" +
      "model: {init: he-uniform}\n" +
      "prunable: {first_layer: true, classifier: true, batch_norm: false, biases: false}\n" +
      "eval: {latency_repeats: 10, latency_batch: 128}\n";
    const a = parseGrid(implicit, "a.yaml", TEST_CATALOG);
    const b = parseGrid(explicit, "b.yaml", TEST_CATALOG);
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
    const ra = expandGrid(a.grid!);
    const rb = expandGrid(b.grid!);
    assert.equal(ra.length, 1);
    assert.equal(runKey(ra[0], FP), runKey(rb[0], FP));
    assert.equal(denseKey(ra[0], FP), denseKey(rb[0], FP));
    // and both equal the pinned fixed config
    assert.equal(runKey(ra[0], FP), PINNED_RUN_KEY);
  });
});

describe("protocol knobs (model.init, nesterov, warmup_epochs, select, normalize, augment)", () => {
  const NEUTRAL: RunConfig = {
    ...CONFIG,
    model: { init: "he-uniform" },
    pretrain: { ...CONFIG.pretrain, nesterov: false, warmupEpochs: 0 },
    finetune: { ...CONFIG.finetune, nesterov: false, warmupEpochs: 0, select: "best-val" },
    data: { ...CONFIG.data, normalize: "dataset", augment: "none" },
  };

  test("the fixed config with every knob at its neutral value (the behaviour before the knobs) has the pinned keys", () => {
    assert.equal(runKey(NEUTRAL, FP), PINNED_RUN_KEY);
    assert.equal(denseKey(NEUTRAL, FP), PINNED_DENSE_KEY);
    assert.equal(canonicalJson(stripNeutralDefaults(NEUTRAL)), PINNED_CANONICAL);
  });

  test("a knob away from its neutral value is keyed: dense-side knobs in both keys, fine-tuning knobs in the run key only", () => {
    const dense: RunConfig[] = [
      { ...NEUTRAL, model: { init: "torch-default" } },
      { ...NEUTRAL, model: { init: "he-normal" } },
      { ...NEUTRAL, model: { init: "glorot-uniform" } },
      { ...NEUTRAL, pretrain: { ...NEUTRAL.pretrain, nesterov: true } },
      { ...NEUTRAL, pretrain: { ...NEUTRAL.pretrain, warmupEpochs: 1 } },
      { ...NEUTRAL, data: { ...NEUTRAL.data, normalize: "none" } },
      { ...NEUTRAL, data: { ...NEUTRAL.data, normalize: { mean: [0.1307], std: [0.3081] } } },
      { ...NEUTRAL, data: { ...NEUTRAL.data, augment: "crop-flip" } },
    ];
    const fine: RunConfig[] = [
      { ...NEUTRAL, finetune: { ...NEUTRAL.finetune, nesterov: true } },
      { ...NEUTRAL, finetune: { ...NEUTRAL.finetune, warmupEpochs: 2 } },
      { ...NEUTRAL, finetune: { ...NEUTRAL.finetune, select: "final" } },
    ];
    const runKeys = new Set([...dense, ...fine].map((c) => runKey(c, FP)));
    assert.equal(runKeys.size, dense.length + fine.length);
    assert.ok(!runKeys.has(PINNED_RUN_KEY));
    const denseKeys = new Set(dense.map((c) => denseKey(c, FP)));
    assert.equal(denseKeys.size, dense.length, "each dense-side knob gives its own dense model");
    assert.ok(!denseKeys.has(PINNED_DENSE_KEY));
    for (const c of fine) assert.equal(denseKey(c, FP), PINNED_DENSE_KEY, "fine-tuning knobs share the dense model");
  });

  test("grids that omit the knobs: keys move only through the torch-default init (and auto augmentation on cifar10)", () => {
    const base = "name: k\narchs: [lenet5]\nsparsities: [0.9]\nseeds: [1]\nmethods: [{name: random, scope: global}]\ndata: {test_subset: 2000}\n";
    const [omitted] = expandGrid(parseGrid(base + "datasets: [fashion-mnist]\n", "a.yaml", TEST_CATALOG).grid!);
    assert.deepEqual(omitted.model, { init: "torch-default" });
    assert.notEqual(runKey(omitted, FP), PINNED_RUN_KEY);
    assert.notEqual(denseKey(omitted, FP), PINNED_DENSE_KEY);
    assert.equal(runKey({ ...omitted, model: { init: "he-uniform" } }, FP), PINNED_RUN_KEY, "nothing but the init moved");
    const [cifar] = expandGrid(parseGrid(base.replace("lenet5", "resnet20") + "datasets: [cifar10]\nmodel: {init: he-uniform}\n", "c.yaml", TEST_CATALOG).grid!);
    assert.equal(cifar.data.augment, "crop-flip", "auto is resolved at expansion: the stored config holds the concrete value");
    assert.equal(omitted.data.augment, "none");
  });
});

describe("what else a key holds", () => {
  test("a method's source is part of its runs' keys, not of the dense model's", () => {
    const edited = { ...FP, method: "0".repeat(64) };
    assert.notEqual(runKey(CONFIG, { ...FP, method: "f".repeat(64) }), runKey(CONFIG, edited), "an edited method re-keys its runs");
    assert.notEqual(runKey(CONFIG, edited), PINNED_RUN_KEY);
    assert.equal(denseKey(CONFIG, edited), PINNED_DENSE_KEY, "its dense model is still shared");
  });

  test("every registered method has its own module, and the planner keys runs by its hash", () => {
    for (const m of METHODS) assert.match(methodSourceHash(m.name), /^[0-9a-f]{64}$/, m.name);
    const [planned] = planRuns([CONFIG], new Map([[CONFIG.dataset, FP.data]]), TEST_CATALOG);
    assert.equal(planned.key, runKey(CONFIG, { code: planned.codeVersion, data: FP.data, method: methodSourceHash("random") }));
    assert.throws(() => methodSourceHash("no-such-method"), /method "no-such-method" has no module .*methods\/no-such-method\.js: a method lives in methods\/<its name>\.ts/);
  });

  test("a method's hash covers the shelf modules it imports: editing a shared scoring helper re-keys its users", () => {
    const dir = mkdtempSync(join(tmpdir(), "method-source-"));
    writeFileSync(join(dir, "m.js"), `import { score } from "./helper.js";\nimport { x } from "../src/engine.js";\nexport const m = score;\n`);
    writeFileSync(join(dir, "helper.js"), `import { deeper } from "./deeper.js";\nexport const score = 1;\n`);
    writeFileSync(join(dir, "deeper.js"), `export const deeper = 1;\n`);
    writeFileSync(join(dir, "lone.js"), `export const lone = 1;\n`);
    const before = sourceTreeHash(join(dir, "m.js"));
    writeFileSync(join(dir, "deeper.js"), `export const deeper = 2;\n`);
    assert.notEqual(sourceTreeHash(join(dir, "m.js")), before, "a change two imports away re-keys the method");
    // A module that imports nothing hashes as its text alone (the hash before imports were followed).
    assert.equal(sourceTreeHash(join(dir, "lone.js")), createHash("sha256").update("export const lone = 1;\n", "utf8").digest("hex"));
  });

  test("a field added later is left out of the key at its neutral default, and keyed at any other value", () => {
    const neutral = [{ path: ["pretrain", "nesterov"], value: false }, { path: ["model", "init"], value: "he-uniform" }];
    const withNew = { ...CONFIG, pretrain: { ...CONFIG.pretrain, nesterov: false }, model: { init: "he-uniform" } };
    assert.equal(canonicalJson(stripNeutralDefaults(withNew, neutral)), canonicalJson({ ...CONFIG, model: {} }));
    const changed = stripNeutralDefaults({ ...withNew, pretrain: { ...withNew.pretrain, nesterov: true } }, neutral) as typeof withNew;
    assert.equal(changed.pretrain.nesterov, true);
    assert.equal((withNew.pretrain as { nesterov?: boolean }).nesterov, false, "the input is not modified");
    // The real list: every entry names a path, and the fixed config (written before any of them) keeps its pinned key.
    for (const e of KEY_NEUTRAL_DEFAULTS) assert.ok(e.path.length > 0);
    assert.equal(runKey(CONFIG, FP), PINNED_RUN_KEY);
  });
});
