import assert from "node:assert/strict";
import { test } from "node:test";
import { getMethod, METHODS } from "../methods/index.js";
import type { PrunableTensor } from "../methods/types.js";
import { allocateMasks } from "../src/prune/allocate.js";
import { makeRng } from "../src/core/rng.js";

function tensor(name: string, values: number[]): PrunableTensor {
  return { name, layer: name, layerKind: "dense", role: "kernel", shape: [values.length], values: Float32Array.from(values), mask: new Float32Array(values.length).fill(1) };
}

async function prune(methodName: string, tensors: PrunableTensor[], keep: number, params: Record<string, string> = {}) {
  const method = getMethod(methodName);
  const full = Object.fromEntries(Object.entries(method.params).map(([k, p]) => [k, params[k] ?? p.default]));
  const scores = await method.score({ tensors, params: full, random: makeRng(1, "t") });
  return allocateMasks(tensors.map((t) => ({ name: t.name, scores: scores.get(t.name)!, mask: t.mask })), keep, method.distribution(full));
}

test("every registered method has a paper, a summary and typed hyperparameter defaults", () => {
  for (const m of METHODS) {
    assert.ok(m.summary.length > 10 && m.paper.title && m.paper.year > 1980, m.name);
    for (const [k, p] of Object.entries(m.params)) assert.equal(typeof p.default, p.type === "integer" ? "number" : p.type, `${m.name}.${k}`);
  }
});

test("global magnitude removes the globally smallest |w|, so a layer of small weights loses most", async () => {
  const small = tensor("small", [0.01, -0.02, 0.03, -0.04]);
  const large = tensor("large", [1, -2, 3, -4]);
  const m = await prune("global-magnitude", [small, large], 0.5);
  assert.deepEqual([...m.get("small")!], [0, 0, 0, 0]);
  assert.deepEqual([...m.get("large")!], [1, 1, 1, 1]);
});

test("layer magnitude removes the same fraction per layer, smallest |w| first (sign ignored)", async () => {
  const small = tensor("small", [0.01, -0.04, 0.03, -0.02]);
  const large = tensor("large", [-4, 1, 3, -2]);
  const m = await prune("layer-magnitude", [small, large], 0.5);
  assert.deepEqual([...m.get("small")!], [0, 1, 1, 0]);
  assert.deepEqual([...m.get("large")!], [1, 0, 1, 0]);
});

test("random pruning ignores magnitudes: removed sets are uniform, and differ between seeds", async () => {
  const n = 2000;
  const values = Array.from({ length: n }, (_, i) => i); // magnitude increases with index
  const method = getMethod("random");
  let keptLowHalf = 0;
  const scoresA = await method.score({ tensors: [tensor("t", values)], params: { scope: "layer" }, random: makeRng(1, "a") });
  const scoresB = await method.score({ tensors: [tensor("t", values)], params: { scope: "layer" }, random: makeRng(2, "a") });
  const ma = allocateMasks([{ name: "t", scores: scoresA.get("t")!, mask: new Float32Array(n).fill(1) }], 0.5, "layer").get("t")!;
  const mb = allocateMasks([{ name: "t", scores: scoresB.get("t")!, mask: new Float32Array(n).fill(1) }], 0.5, "layer").get("t")!;
  for (let i = 0; i < n / 2; i++) keptLowHalf += ma[i];
  // Magnitude pruning would keep 0 of the low half; random keeps about half of the kept 1000 there.
  assert.ok(keptLowHalf > 430 && keptLowHalf < 570, `kept ${keptLowHalf} of the low half`);
  assert.notDeepEqual([...ma], [...mb]);
});

test("random with scope layer prunes every tensor to the same fraction; scope global only in expectation", async () => {
  const ts = [tensor("a", new Array(100).fill(1)), tensor("b", new Array(300).fill(1))];
  const layer = await prune("random", ts, 0.2, { scope: "layer" });
  assert.equal(layer.get("a")!.reduce((x, y) => x + y, 0), 20);
  assert.equal(layer.get("b")!.reduce((x, y) => x + y, 0), 60);
  const global = await prune("random", ts, 0.2, { scope: "global" });
  assert.equal(global.get("a")!.reduce((x, y) => x + y, 0) + global.get("b")!.reduce((x, y) => x + y, 0), 80);
});
