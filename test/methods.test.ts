import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { getMethod, METHODS } from "../methods/index.js";
import type { BatchSpec, PrunableTensor } from "../methods/types.js";
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

/** A tensor of the given shape and role; `layer` groups kernel and bias of one layer. */
function shaped(name: string, layer: string, role: string, shape: number[], values: number[]): PrunableTensor {
  return { name, layer, layerKind: "dense", role, shape, values: Float32Array.from(values), mask: new Float32Array(values.length).fill(1) };
}

/** Scores of a method whose engine capabilities are the given fixed maps; also returns the specs it asked for. */
async function scoreWith(methodName: string, tensors: PrunableTensor[], data: { gradients?: Map<string, Float32Array>; activations?: Map<string, Float32Array> }) {
  const method = getMethod(methodName);
  const params = Object.fromEntries(Object.entries(method.params).map(([k, p]) => [k, p.default]));
  const specs: BatchSpec[] = [];
  const scores = await method.score({
    tensors, params, random: makeRng(1, "t"),
    gradients: data.gradients && (async (spec) => { specs.push(spec); return data.gradients!; }),
    activations: data.activations && (async (spec) => { specs.push(spec); return data.activations!; }),
  });
  return { scores, specs, distribution: method.distribution(params) };
}

const close = (actual: Float32Array, expected: number[]) => {
  assert.equal(actual.length, expected.length);
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i] - e) < 1e-6, `[${i}] ${actual[i]} vs ${e}`));
};

for (const name of ["global-gradient", "layer-gradient"]) {
  test(`${name} scores |w · g| and asks for ShrinkBench's one training batch of 128 in train mode`, async () => {
    const k = shaped("fc1/kernel", "fc1", "kernel", [2, 2], [0.5, -2, 3, 0]);
    const b = shaped("fc1/bias", "fc1", "bias", [2], [-1, 4]);
    const gradients = new Map([["fc1/kernel", Float32Array.from([4, 0.25, -1, 9])], ["fc1/bias", Float32Array.from([0.5, -0.5])]]);
    const { scores, specs } = await scoreWith(name, [k, b], { gradients });
    close(scores.get("fc1/kernel")!, [2, 0.5, 3, 0]); // a large gradient does not save a zero weight, nor a large weight with no gradient
    close(scores.get("fc1/bias")!, [0.5, 2]);
    assert.deepEqual(specs, [{ batches: 1, batchSize: 128, mode: "train" }]);
  });
}

for (const name of ["global-activation", "layer-activation"]) {
  test(`${name} scores |w| × mean|input| of the unit each weight reads, biases × the mean over the layer's inputs`, async () => {
    // conv kernel [kh 2, kw 1, cin 2, cout 2]: flat index i reads input channel floor(i / 2) % 2.
    const conv = shaped("conv/kernel", "conv", "kernel", [2, 1, 2, 2], [1, -1, 2, -2, 3, -3, 4, -4]);
    const convBias = shaped("conv/bias", "conv", "bias", [2], [-2, 1]);
    // dense kernel [in 3, out 2]: flat index i reads input feature floor(i / 2).
    const dense = shaped("fc/kernel", "fc", "kernel", [3, 2], [1, -2, 5, 5, -0.5, 2]);
    const activations = new Map([["conv", Float32Array.from([0.5, 2])], ["fc", Float32Array.from([1, 0, 3])]]);
    const { scores, specs } = await scoreWith(name, [conv, convBias, dense], { activations });
    close(scores.get("conv/kernel")!, [0.5, 0.5, 4, 4, 1.5, 1.5, 8, 8]);
    close(scores.get("conv/bias")!, [2 * 1.25, 1 * 1.25]);
    close(scores.get("fc/kernel")!, [1, 2, 0, 0, 1.5, 6]); // a large weight on a dead input scores 0
    assert.deepEqual(specs, [{ batches: 1, batchSize: 128, mode: "train" }]);
  });
}

test("layer-* keep the same fraction of every tensor; global-* keep the top scores under one threshold", async () => {
  // Tensor "big" has scores 10..40, "small" 1..4 (the same ranking for both criteria: unit gradients and activations).
  const big = shaped("big/kernel", "big", "kernel", [4, 1], [10, -20, 30, -40]);
  const small = shaped("small/kernel", "small", "kernel", [4, 1], [4, -3, 2, -1]);
  const ones = Float32Array.from([1, 1, 1, 1]);
  const data = {
    gradients: new Map([["big/kernel", ones], ["small/kernel", ones]]),
    activations: new Map([["big", ones], ["small", ones]]),
  };
  for (const name of ["global-gradient", "layer-gradient", "global-activation", "layer-activation"]) {
    const { scores, distribution } = await scoreWith(name, [big, small], data);
    const masks = allocateMasks([big, small].map((t) => ({ name: t.name, scores: scores.get(t.name)!, mask: t.mask })), 0.5, distribution);
    if (name.startsWith("layer-")) {
      assert.deepEqual([...masks.get("big/kernel")!], [0, 0, 1, 1], name);
      assert.deepEqual([...masks.get("small/kernel")!], [1, 1, 0, 0], name);
    } else {
      assert.deepEqual([...masks.get("big/kernel")!], [1, 1, 1, 1], name);
      assert.deepEqual([...masks.get("small/kernel")!], [0, 0, 0, 0], name);
    }
  }
});

test("a data-dependent method fails loudly when the engine withholds what it declared in needs", async () => {
  for (const name of ["global-gradient", "global-activation"]) {
    const method = getMethod(name);
    assert.ok(method.needs.gradients || method.needs.activations, name);
    await assert.rejects(async () => method.score({ tensors: [tensor("t", [1, 2])], params: { batches: 1, batch_size: 128 }, random: makeRng(1, "t") }), /needs\.(gradients|activations)/);
  }
});

describe("grasp", () => {
  // θ, g and Hg of one tensor, chosen so that |g·θ| (SNIP) and −θ·Hg (GraSP) rank the weights differently.
  const theta = [1, -2, 0.5, 3];
  const g = Float32Array.from([4, 0.1, -0.2, 2]);
  const hg = Float32Array.from([2, 0.5, 6, -1]);
  const S = theta.map((w, i) => -w * hg[i]); // the paper's score: [-2, 1, -3, 3]
  const kernel = () => shaped("fc/kernel", "fc", "kernel", [2, 2], theta);

  async function graspScores() {
    const method = getMethod("grasp");
    const params = Object.fromEntries(Object.entries(method.params).map(([k, p]) => [k, p.default]));
    const asked: unknown[] = [];
    const scores = await method.score({
      tensors: [kernel()], params, random: makeRng(1, "t"),
      hessianGradient: async (spec, loss) => { asked.push(spec, loss); return { gradient: new Map([["fc/kernel", g]]), hessianGradient: new Map([["fc/kernel", hg]]) }; },
    });
    return { scores: scores.get("fc/kernel")!, asked, distribution: method.distribution(params) };
  }

  test("returns −S/|ΣS| with S = −θ⊙Hg (higher survives), on the authors' sample: 10 per class in two halves, train mode, T = 200", async () => {
    const { scores, asked } = await graspScores();
    const norm = Math.abs(S.reduce((a, b) => a + b, 0)) + 1e-10;
    close(scores, S.map((s) => -s / norm));
    assert.deepEqual(asked, [{ perClass: 10, batches: 2, mode: "train" }, { temperature: 200 }]);
    assert.deepEqual(getMethod("grasp").schedule({}), { kind: "at-init", rounds: 1 });
  });

  test("removes the weights with the HIGHEST S, keeps the lowest (not the most sensitive, unlike SNIP)", async () => {
    const { scores, distribution } = await graspScores();
    assert.equal(distribution, "global");
    const t = kernel();
    const mask = allocateMasks([{ name: t.name, scores, mask: t.mask }], 0.5, distribution).get("fc/kernel")!;
    // S = [-2, 1, -3, 3]: the two lowest (indices 2 and 0) stay.
    assert.deepEqual([...mask], [1, 0, 1, 0]);
    // SNIP on the same θ and g keeps the largest |g·θ| = [4, 0.2, 0.1, 6]: indices 3 and 0.
    const snipScores = await getMethod("snip").score({ tensors: [t], params: { batches: 1, batch_size: 128 }, random: makeRng(1, "t"), gradients: async () => new Map([["fc/kernel", g]]) });
    const snipMask = allocateMasks([{ name: t.name, scores: snipScores.get("fc/kernel")!, mask: t.mask }], 0.5, "global").get("fc/kernel")!;
    assert.deepEqual([...snipMask], [1, 0, 0, 1]);
    // The weight SNIP ranks first (index 3, |g·θ| = 6) is the one GraSP removes first (S = 3): to first order,
    // removing it reduces the gradient norm the most.
    assert.equal(scores.indexOf(Math.min(...scores)), 3);
  });

  test("fails loudly when the engine gives no Hessian-gradient product", async () => {
    await assert.rejects(getMethod("grasp").score({ tensors: [kernel()], params: { samples_per_class: 10, temperature: 200 }, random: makeRng(1, "t") }) as Promise<unknown>, /needs.hessianGradient/);
  });
});
