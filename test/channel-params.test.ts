/**
 * Defaults and checks of the channel methods' shared hyperparameters: taylor ranks conv channels only by default (a
 * global ranking under a MACs target otherwise strips LeNet-5's dense layers), and a `skip` name that is no layer of
 * the arch is an error (at grid time where the catalog knows the arch's layers, else at run start), never ignored.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { getMethod } from "../methods/index.js";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { catalog } from "../src/catalog.js";
import { makeRng } from "../src/core/rng.js";
import { PROTOCOL_VERSION, type HyperValue, type Job } from "../src/core/types.js";
import { DEFAULT_PRUNABLE, parseGrid } from "../src/grid/index.js";
import { executeJob } from "../src/run/execute-job.js";
import { structuredPruneStep, structuredState } from "../src/run/structured-step.js";
import { stage } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel } from "../src/train/model.js";
import { bench, tempDir } from "./helpers/cli.js";
import { smallConfig } from "./helpers/config.js";

const MNIST: [number, number, number] = [28, 28, 1];

function params(name: string, overrides: Record<string, HyperValue> = {}): Record<string, HyperValue> {
  return { ...Object.fromEntries(Object.entries(getMethod(name).params).map(([k, p]) => [k, p.default])), ...overrides };
}

/** Units each LeNet-5 group keeps after taylor prunes a 70 % MACs reduction with these parameters. */
async function taylorKeeps(overrides: Record<string, HyperValue>): Promise<Record<string, { kept: number; size: number }>> {
  await initBackend("wasm");
  const model = createModel(getArch("lenet5"), MNIST, 10, 3);
  const rng = makeRng(5, "images");
  const n = 32;
  const train = stage({ x: Float32Array.from({ length: n * 784 }, () => rng()), y: Int32Array.from({ length: n }, (_, i) => i % 10), count: n }, MNIST);
  const state = structuredState(model);
  const masks = new MaskSet();
  await structuredPruneStep({
    model, masks, method: getMethod("taylor"), params: params("taylor", { batches: 2, batch_size: 16, ...overrides }), prunable: DEFAULT_PRUNABLE,
    target: { kind: "macs-reduction", value: 0.7 }, train, seed: 1, step: 0, state,
  });
  assert.ok(state.achieved! >= 0.7 - 1e-9, `MACs reduction ${state.achieved}`);
  const out = Object.fromEntries(state.graph.groups.map((g, i) => [g.name, { kept: state.keep[i].filter(Boolean).length, size: g.size }]));
  masks.dispose();
  train.dispose();
  disposeModel(model);
  return out;
}

test("taylor prunes conv channels only by default: at a 70 % MACs reduction LeNet-5's dense layers stay whole; layers: all ranks their neurons too", async () => {
  assert.equal(getMethod("taylor").params.layers.default, "conv");
  const conv = await taylorKeeps({});
  assert.deepEqual([conv.fc1, conv.fc2], [{ kept: 120, size: 120 }, { kept: 84, size: 84 }]);
  assert.ok(conv.conv1.kept + conv.conv2.kept < 6 + 16, "the MACs come from conv channels");
  const all = await taylorKeeps({ layers: "all" });
  assert.ok(all.fc1.kept + all.fc2.kept < 120 + 84, `layers: all prunes dense neurons too: fc1 ${all.fc1.kept}, fc2 ${all.fc2.kept}`);
});

const grid = (skipLine: string, extra: string[] = []) => [
  "name: t",
  "methods:",
  "  - name: l1-filter",
  `    ${skipLine}`,
  "archs: [lenet5, resnet20]",
  "datasets: [cifar10]",
  "macs_reductions: [0.5]",
  "seeds: [0]",
  ...extra,
].join("\n") + "\n";

test("a skip name that is no layer of an arch of the grid is a grid error naming it and the arch's layers; known names pass", () => {
  const cat = catalog();
  // lenet5 adapts to any input; resnet20 is built for 32×32×3, which cifar10 is.
  const ok = parseGrid(grid("skip: s1b1/conv1, s2b1/conv1").replace("archs: [lenet5, resnet20]", "archs: [resnet20]"), "g.yaml", cat);
  assert.deepEqual(ok.errors.map((e) => e.message), []);
  assert.equal(ok.grid!.methods[0].params.skip, "s1b1/conv1, s2b1/conv1");

  const r = parseGrid(grid("skip: s1b1/conv1, s1b1/cnv2").replace("archs: [lenet5, resnet20]", "archs: [resnet20]"), "g.yaml", cat);
  assert.equal(r.grid, null);
  assert.equal(r.errors.length, 1, r.errors.map((e) => e.message).join("\n"));
  const [e] = r.errors;
  assert.equal(e.line, 4);
  assert.equal(e.key, "methods[0].skip");
  assert.match(e.problem, /skip names "s1b1\/cnv2", which is not a layer of arch resnet20/);
  assert.match(e.problem, /its layers: conv0, s1b1\/conv1, s1b1\/conv2, s1b2\/conv1, .*, s3b3\/conv2, fc, s2b1\/shortcut, s3b1\/shortcut$/);
  assert.doesNotMatch(e.problem, /"s1b1\/conv1"/, "the known name is not reported");

  // One error per arch it is unknown in; a value from method_params is pointed at there.
  const both = parseGrid(grid("scope: layer", ["method_params:", "  l1-filter:", "    skip: conv2"]), "g.yaml", cat);
  assert.deepEqual(both.errors.map((x) => [x.line, x.key]), [[11, "method_params.l1-filter.skip"]]);
  assert.match(both.errors[0].problem, /"conv2", which is not a layer of arch resnet20/);
});

test("bench validate reports an unknown skip name as file:line:key and exits 2", () => {
  const dir = tempDir();
  const file = join(dir, "g.yaml");
  writeFileSync(file, grid("skip: fc9"));
  const r = bench(["validate", file]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:4: methods\\[0\\]\\.skip: method l1-filter: skip names "fc9", which is not a layer of arch lenet5; its layers: conv1, conv2, fc1, fc2, fc3`));
});

test("the run checks too, at its start and before any training (for archs whose layers the grid could not know), with the same message", async () => {
  const dir = tempDir();
  const config = smallConfig({ arch: "lenet5", method: { name: "l1-filter", params: params("l1-filter", { skip: "conv1,conv9" }) }, target: { kind: "macs-reduction", value: 0.5 } });
  const job: Job = { protocol: PROTOCOL_VERSION, kind: "run", key: "r", denseKey: "d", config, paths: { cacheDir: join(dir, "cache"), artifactsDir: join(dir, "a") }, backend: "wasm" };
  const phases: string[] = [];
  const result = await executeJob(job, (phase) => phases.push(phase));
  assert.equal(result.status, "failed");
  assert.match(result.error!, /method l1-filter: skip names "conv9", which is not a layer of arch lenet5; its layers: conv1, conv2, fc1, fc2, fc3/);
  assert.deepEqual(phases, [], "nothing was trained first");
});
