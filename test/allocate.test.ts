import assert from "node:assert/strict";
import { test } from "node:test";
import { allocateMasks } from "../src/prune/allocate.js";

const ones = (n: number) => new Float32Array(n).fill(1);
const alive = (m: Float32Array) => m.reduce((a, b) => a + b, 0);

test("global distribution uses one threshold across tensors", () => {
  const a = { name: "a", scores: Float32Array.from([1, 2, 3, 4]), mask: ones(4) };
  const b = { name: "b", scores: Float32Array.from([10, 20, 30, 40]), mask: ones(4) };
  const m = allocateMasks([a, b], 0.5, "global");
  assert.deepEqual([...m.get("a")!], [0, 0, 0, 0]);
  assert.deepEqual([...m.get("b")!], [1, 1, 1, 1]);
});

test("layer distribution keeps the same fraction in every tensor", () => {
  const a = { name: "a", scores: Float32Array.from([1, 2, 3, 4]), mask: ones(4) };
  const b = { name: "b", scores: Float32Array.from([40, 30, 20, 10]), mask: ones(4) };
  const m = allocateMasks([a, b], 0.5, "layer");
  assert.deepEqual([...m.get("a")!], [0, 0, 1, 1]);
  assert.deepEqual([...m.get("b")!], [1, 1, 0, 0]);
});

test("exactly round(keep * n) weights survive even with ties, deterministically", () => {
  const t = { name: "t", scores: new Float32Array(10).fill(7), mask: ones(10) };
  const m1 = allocateMasks([t], 0.3, "global").get("t")!;
  const m2 = allocateMasks([t], 0.3, "global").get("t")!;
  assert.equal(alive(m1), 3);
  assert.deepEqual([...m1], [...m2]);
});

test("an already pruned weight never comes back, whatever its score", () => {
  const t = { name: "t", scores: Float32Array.from([100, 1, 2, 3]), mask: Float32Array.from([0, 1, 1, 1]) };
  const m = allocateMasks([t], 0.5, "global").get("t")!;
  assert.deepEqual([...m], [0, 0, 1, 1]);
});

test("NaN scores are rejected, keep outside [0,1] is rejected", () => {
  assert.throws(() => allocateMasks([{ name: "t", scores: Float32Array.from([NaN, 1]), mask: ones(2) }], 0.5, "global"), /NaN/);
  assert.throws(() => allocateMasks([], 1.5, "global"), /outside/);
});
