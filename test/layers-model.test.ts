/**
 * Bring-your-own architectures (src/archs/layers-model.ts). What defines it: a network built and saved by tfjs is
 * imported with its weights and computes what tfjs's own `predict` computes; its counts come from the same layer
 * table as the built-ins; layers with no prunebench equivalent are refused naming the file, the layer and its class;
 * and a grid naming the file runs a channel-pruning job on it through the real engine, its run key following the file.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { getArch, layerTable, loadLayersModelArch } from "../src/archs/index.js";
import { channelGraph, unsizedGroups, widthPlan } from "../src/archs/graph.js";
import { initBackend } from "../src/backend/index.js";
import { buildLayersModel, layersModelFiles } from "../src/export/layers-ops.js";
import { createModel, disposeModel, forward } from "../src/train/model.js";
import { catalog } from "../src/catalog.js";
import { parseGrid } from "../src/grid/index.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

await initBackend("cpu");

/** Saves `model` as model.json + weights.bin in a fresh folder (what tfjs-node's file:// saver writes). */
async function save(model: tfl.LayersModel, dir = tempDir()): Promise<string> {
  const files = await layersModelFiles(model);
  writeFileSync(join(dir, "model.json"), JSON.stringify(files.modelJson));
  writeFileSync(join(dir, "weights.bin"), files.weights);
  return join(dir, "model.json");
}

/** Random weights everywhere, BN statistics included, so the comparison covers every tensor. */
function randomize(model: tfl.LayersModel, seed: number): void {
  model.layers.forEach((layer, i) => {
    const ws = layer.getWeights();
    if (ws.length === 0) return;
    layer.setWeights(ws.map((w, j) => {
      const name = layer.weights[j].name;
      return /moving_variance|gamma/.test(name) ? tf.randomUniform(w.shape, 0.5, 1.5, "float32", seed + i * 10 + j)
        : tf.randomNormal(w.shape, 0, 0.3, "float32", seed + i * 10 + j);
    }));
  });
}

/** A small residual CNN: padded and strided convs, BN with Keras's epsilon, depthwise, an Add, dropout, GAP. */
function functionalModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [12, 12, 3], name: "img" });
  let x = tfl.layers.zeroPadding2d({ padding: 1, name: "pad1" }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: "valid", name: "stem" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: "stem_bn", epsilon: 1e-3 }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: "stem_relu" }).apply(x) as tfl.SymbolicTensor;
  let y = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", name: "dw", activation: "relu" }).apply(x) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: 8, kernelSize: 1, padding: "same", useBias: false, name: "pw" }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization({ name: "pw_bn" }).apply(y) as tfl.SymbolicTensor;
  x = tfl.layers.add({ name: "res" }).apply([x, y]) as tfl.SymbolicTensor;
  x = tfl.layers.activation({ activation: "relu", name: "res_relu" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: "pool" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.averagePooling2d({ poolSize: 2, strides: 1, name: "avg" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: "same", activation: "relu", name: "c2" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: "gap" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: 0.5, name: "drop" }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 5, name: "logits" }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

function sequentialModel(): tfl.Sequential {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 5, activation: "relu", name: "c1" }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: "p1" }),
      tfl.layers.flatten({ name: "flat" }),
      tfl.layers.dense({ units: 16, activation: "relu", name: "fc1" }),
      tfl.layers.dense({ units: 10, activation: "softmax", name: "fc2" }),
    ],
  });
}

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe("importing a tfjs LayersModel", () => {
  test("a functional residual CNN: prunebench's forward pass equals tfjs's predict, and widths follow the residual stream", async () => {
    const built = functionalModel();
    randomize(built, 1);
    const file = await save(built);
    const arch = await loadLayersModelArch(file);
    assert.match(arch.name, /^layers-model:prunebench-[^@]+@[0-9a-f]{12}$/);
    assert.deepEqual(arch.inputShape, [12, 12, 3]);
    assert.equal(arch.numClasses, 5);
    // stem and pw feed one Add: one width; c2 its own; the classifier none.
    assert.deepEqual(arch.widths, { stem: 8, c2: 6 });
    const model = createModel(arch, [12, 12, 3], 5, 0);
    const x = tf.randomNormal([3, 12, 12, 3], 0, 1, "float32", 5);
    const want = built.predict(x) as tf.Tensor;
    const got = forward(model, x, false).logits;
    assert.ok(maxAbsDiff(want, got) < 1e-4, `max |diff| ${maxAbsDiff(want, got)}`);
    // Counts from the same layer table as the built-ins: tfjs's own count of trainable parameters.
    const table = layerTable(arch, [12, 12, 3], 5);
    const trainable = built.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
    assert.equal(table.reduce((n, l) => n + l.params, 0), trainable);
    assert.equal(table.find((l) => l.name === "stem")!.macs, 6 * 6 * 3 * 3 * 3 * 8);
    tf.dispose([x, want, got]);
    disposeModel(model);
    built.dispose();
  });

  test("a Sequential model ending in softmax: the import outputs its logits (the softmax dropped)", async () => {
    const built = sequentialModel();
    randomize(built, 2);
    const arch = await loadLayersModelArch(await save(built));
    const model = createModel(arch, [28, 28, 1], 10, 0);
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, "float32", 9);
    const want = built.predict(x) as tf.Tensor;
    const got = tf.softmax(forward(model, x, false).logits);
    assert.ok(maxAbsDiff(want, got) < 1e-5, `max |diff| ${maxAbsDiff(want, got)}`);
    tf.dispose([x, want, got]);
    disposeModel(model);
    built.dispose();
  });

  test("an unsupported layer is refused naming the file, the layer, its class and the supported classes", async () => {
    const lstm = tfl.sequential({ layers: [tfl.layers.reshape({ inputShape: [4, 4, 1], targetShape: [4, 4], name: "rs" }), tfl.layers.lstm({ units: 3, name: "rnn", recurrentInitializer: "glorotUniform" }), tfl.layers.dense({ units: 2 })] });
    const file = await save(lstm);
    await assert.rejects(loadLayersModelArch(file), (e: Error) => {
      assert.ok(e.message.startsWith(file), e.message);
      assert.match(e.message, /: layer "rs" \(Reshape\) has no prunebench equivalent; supported layer classes: InputLayer, Conv2D, DepthwiseConv2D, Dense, BatchNormalization/);
      return true;
    });
    const transposed = tfl.sequential({ layers: [tfl.layers.conv2dTranspose({ inputShape: [4, 4, 1], filters: 2, kernelSize: 3, name: "up" }), tfl.layers.flatten(), tfl.layers.dense({ units: 2 })] });
    await assert.rejects(loadLayersModelArch(await save(transposed)), /layer "up" \(Conv2DTranspose\) has no prunebench equivalent/);
    const tanh = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [4, 4, 1] }), tfl.layers.dense({ units: 3, activation: "tanh", name: "h" }), tfl.layers.dense({ units: 2 })] });
    await assert.rejects(loadLayersModelArch(await save(tanh)), /layer "h" \(Dense\) has activation "tanh"; supported: relu, linear/);
    [lstm, transposed, tanh].forEach((m) => m.dispose());
  });
});

describe("the inverse of bench export-model", () => {
  for (const name of ["lenet5", "resnet20-b", "mobilenetv2"]) {
    test(`${name}, exported and imported: the same counts, the same logits, every channel group prunable`, async () => {
      const shape: [number, number, number] = [32, 32, 3];
      const original = createModel(getArch(name), shape, 10, 3);
      const tensors = new Map([...original.params, ...original.state].map(([n, v]) => [n, { shape: v.shape, data: v.dataSync() as Float32Array }]));
      const exported = buildLayersModel(getArch(name), shape, 10, tensors);
      const arch = await loadLayersModelArch(await save(exported));
      exported.dispose();
      // tfjs orders a functional model's layers by depth, prunebench by its build: the same layers, maybe reordered.
      const table = (a: typeof arch) => layerTable(a, shape, 10).filter((l) => l.params > 0).map((l) => `${l.kind} ${l.params} ${l.macs}`).sort();
      assert.deepEqual(table(arch), table(getArch(name)), "params and MACs per layer");
      const imported = createModel(arch, shape, 10, 0);
      const x = tf.randomNormal([2, ...shape], 0, 1, "float32", 4);
      const want = forward(original, x, false).logits;
      const got = forward(imported, x, false).logits;
      assert.ok(maxAbsDiff(want, got) < 1e-4 * Math.max(1, tf.max(tf.abs(want)).dataSync()[0]), `max |diff| ${maxAbsDiff(want, got)}`);
      // Structured pruning: every channel group but the classifier's is sized by a width, so it can be compacted.
      const graph = channelGraph(arch, shape, 10);
      const plan = widthPlan(arch, graph, shape, 10);
      const unsized = [...unsizedGroups(plan)].map((g) => graph.groups[g]).filter((g) => g.protectedBy === null).map((g) => g.name);
      assert.deepEqual(unsized, [], "prunable groups no width sizes");
      assert.equal(graph.groups.filter((g) => g.protectedBy === null).length, channelGraph(getArch(name), shape, 10).groups.filter((g) => g.protectedBy === null).length);
      tf.dispose([x, want, got]);
      disposeModel(original);
      disposeModel(imported);
    });
  }
});

describe("a grid naming a LayersModel", () => {
  const dir = tempDir();
  const db = join(dir, "r.db");
  const gridFor = async (methods: string, targets: string): Promise<string> => {
    const built = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 6, kernelSize: 5, padding: "same", activation: "relu", name: "c1" }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: "valid", useBias: false, name: "c2" }),
        tfl.layers.batchNormalization({ name: "bn2" }),
        tfl.layers.activation({ activation: "relu" }),
        tfl.layers.globalAveragePooling2d({}),
        tfl.layers.dense({ units: 10, name: "fc" }),
      ],
    });
    await save(built, dir);
    built.dispose();
    const grid = writeTinyGrid(dir).replace(/tiny\.yaml$/, "byo.yaml");
    writeFileSync(grid, readFileSync(writeTinyGrid(dir), "utf8")
      .replace("methods: [random, global-magnitude]", `methods: [${methods}]`)
      .replace("archs: [mlp]", "archs: [{layers_model: model.json}]")
      .replace("sparsities: [0.5, 0.9]", targets)
      .replace("pretrain: {epochs: 2", "pretrain: {epochs: 1"));
    return grid;
  };

  test("validate shows it; a channel method prunes it through the real engine; an edited file re-runs", async () => {
    const grid = await gridFor("l1-filter", "compressions: [1.5]");
    const v = bench(["validate", grid]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /layers-model:prunebench-[^@]+@[0-9a-f]{12}: \d[\d,]* params, [\d,]+ MACs/);
    const listed = bench(["archs", "--layers-model", join(dir, "model.json"), "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as Array<{ arch: string; params: number; datasets: string[] }>;
    // c1 5·5·1·6+6, c2 3·3·6·8, bn2 2·8, fc 8·10+10.
    assert.equal(rows.find((row) => row.datasets.includes("fashion-mnist-mini"))?.params, 156 + 432 + 16 + 90);
    const r = bench(["sweep", grid, "--db", db, "--artifacts-dir", join(dir, "art"), "--cache-dir", join(dir, "cache"), "--jobs", "1", "--plain"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 runs planned, 0 already finished/);
    assert.match(r.stdout, /1 done, 0 failed/);
    assert.match(r.stdout, /l1-filter compression 1\.5x/);
    assert.doesNotMatch(r.stderr, /TensorFlow\.js in Node\.js/, "the coordinator's import prints no tfjs banner");
    // The pruned run exports (compacted) given the files it was imported from, and the export imports back, smaller.
    const key = /\[([0-9a-f]{16})\]/.exec(r.stdout)![1];
    const out = join(tempDir(), "pruned");
    const noFile = bench(["export-model", key, "--db", db, "-o", out]);
    assert.equal(noFile.code, 2, noFile.stderr);
    assert.match(noFile.stderr, /imported from a tfjs LayersModel: give its model\.json with --layers-model/);
    const exported = bench(["export-model", key, "--db", db, "-o", out, "--layers-model", join(dir, "model.json")]);
    assert.equal(exported.code, 0, exported.stderr);
    const pruned = await loadLayersModelArch(join(out, "model.json"));
    const original = await loadLayersModelArch(join(dir, "model.json"));
    const count = (a: typeof pruned) => layerTable(a, [28, 28, 1], 10).reduce((n, l) => n + l.params, 0);
    assert.ok(count(pruned) < count(original) / 1.4, `compacted ${count(pruned)} of ${count(original)} params`);
    // Same files: nothing to run. Edited weights: another architecture name, so another key.
    const again = bench(["sweep", grid, "--db", db, "--artifacts-dir", join(dir, "art"), "--cache-dir", join(dir, "cache"), "--jobs", "1", "--plain", "--dry-run"]);
    assert.equal(again.code, 0, again.stderr);
    const w = readFileSync(join(dir, "weights.bin"));
    w[0] ^= 1;
    writeFileSync(join(dir, "weights.bin"), w);
    const edited = bench(["sweep", grid, "--db", db, "--artifacts-dir", join(dir, "art"), "--cache-dir", join(dir, "cache"), "--jobs", "1", "--plain", "--dry-run"]);
    assert.equal(edited.code, 0, edited.stderr);
    const names = (s: string) => [...s.matchAll(/layers-model:[^\s/@]+@[0-9a-f]{12}/g)].map((m) => m[0]);
    assert.ok(names(again.stdout).length > 0, again.stdout);
    assert.notEqual(names(again.stdout)[0], names(edited.stdout)[0]);
  });

  test("a misspelt entry is a grid error with a suggestion; the same file twice is a duplicate", async () => {
    const own = tempDir();
    const m = sequentialModel();
    await save(m, own);
    m.dispose();
    const text = readFileSync(writeTinyGrid(own), "utf8");
    const errors = (archs: string) => parseGrid(text.replace("archs: [mlp]", archs), join(own, "g.yaml"), catalog()).errors.map((e) => e.message);
    assert.match(errors("archs: [{layer_model: model.json}]").join("\n"), /g\.yaml:3: archs\[0\]\.layer_model: unknown key "layer_model"; did you mean "layers_model"\?/);
    assert.match(errors("archs: [{layers_model: 3}]").join("\n"), /g\.yaml:3: archs\[0\]\.layers_model: expected the path of a model\.json, got 3/);
    assert.match(errors("archs: [{layers_model: model.json}, {layers_model: ./model.json}]").join("\n"), /archs\[1\]: duplicate arch "layers-model:[^"]+" \(same as archs\[0\]\)/);
  });

  test("an unsupported layer is a grid error at the entry's line (exit 2)", async () => {
    const bad = tfl.sequential({ layers: [tfl.layers.conv2dTranspose({ inputShape: [28, 28, 1], filters: 2, kernelSize: 3, name: "up" }), tfl.layers.flatten(), tfl.layers.dense({ units: 10 })] });
    const sub = join(tempDir(), "model.json");
    await save(bad, join(sub, ".."));
    bad.dispose();
    const grid = join(dir, "bad.yaml");
    writeFileSync(grid, readFileSync(writeTinyGrid(dir), "utf8").replace("archs: [mlp]", `archs:\n  - mlp\n  - {layers_model: ${sub}}`));
    const v = bench(["validate", grid]);
    assert.equal(v.code, 2, v.stdout + v.stderr);
    assert.match(v.stderr, new RegExp(`bad\\.yaml:5: archs\\[1\\]: .*model\\.json: layer "up" \\(Conv2DTranspose\\) has no prunebench equivalent; supported layer classes: `));
    const missing = join(dir, "missing.yaml");
    writeFileSync(missing, readFileSync(writeTinyGrid(dir), "utf8").replace("archs: [mlp]", "archs: [{layers_model: nowhere/model.json}]"));
    const m = bench(["validate", missing]);
    assert.equal(m.code, 2);
    assert.match(m.stderr, /missing\.yaml:3: archs\[0\]\.layers_model: cannot read the LayersModel .*nowhere\/model\.json/);
  });
});
