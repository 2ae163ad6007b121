import assert from "node:assert/strict";
import { test } from "node:test";
import { getArch, layerTable } from "../src/archs/index.js";
import {
  compressionRatio, countNonzero, keepFractionForCompression, layerCounts, median, modelCounts, quantile, sparsityOf, theoreticalSpeedup,
} from "../src/metrics/counts.js";

const totals = (arch: string, shape: [number, number, number]) => {
  const layers = layerTable(getArch(arch), shape, 10);
  return { params: layers.reduce((n, l) => n + l.params, 0), macs: layers.reduce((n, l) => n + l.macs, 0), layers };
};

test("LeNet-300-100 matches the published 266,610 params and 266,200 MACs", () => {
  assert.deepEqual({ params: totals("mlp", [28, 28, 1]).params, macs: totals("mlp", [28, 28, 1]).macs }, { params: 266_610, macs: 266_200 });
});

test("LeNet-5 matches the published 61,706 params and 416,520 MACs", () => {
  const t = totals("lenet5", [28, 28, 1]);
  assert.equal(t.params, 61_706);
  assert.equal(t.macs, 416_520);
  // 'valid' conv2 sees 14x14 and outputs 10x10: counting its real output size, not the padded one.
  assert.deepEqual(t.layers.find((l) => l.name === "conv2")!.outputShape, [10, 10, 16]);
});

test("LeNet-5-Caffe (ShrinkBench's MnistNet) has 431,080 params and 2,293,000 MACs at its real output sizes", () => {
  const t = totals("lenet5-caffe", [28, 28, 1]);
  assert.deepEqual({ params: t.params, macs: t.macs }, { params: 431_080, macs: 2_293_000 });
  // Unpadded convs: 24x24 and 8x8 outputs (ShrinkBench counts them as 28x28 and 12x12: 4,397,000 MACs).
  assert.deepEqual(t.layers.filter((l) => l.kind === "conv").map((l) => l.outputShape), [[24, 24, 20], [8, 8, 50]]);
});

test("CIFAR ResNet-56 is within 1% of Li et al. 2017: 0.85M params, 125M MACs", () => {
  const t = totals("resnet56", [32, 32, 3]);
  assert.ok(Math.abs(t.params / 0.85e6 - 1) < 0.01, `params ${t.params}`);
  assert.ok(Math.abs(t.macs / 125e6 - 1) < 0.01, `MACs ${t.macs}`);
});

test("effective MACs scale each layer by its kernel density; speedup and compression follow", () => {
  const { layers } = totals("mlp", [28, 28, 1]);
  // fc1 kernel at 10% density, others dense
  const kernelNz = new Map([["fc1", 784 * 300 * 0.1]]);
  const rows = layerCounts(layers, kernelNz, new Map(), new Set(["fc1", "fc2", "fc3"]));
  const fc1 = rows.find((r) => r.name === "fc1")!;
  assert.equal(fc1.macsEffective, 784 * 300 * 0.1);
  assert.equal(fc1.nonzero, 784 * 300 * 0.1 + 300);
  const counts = modelCounts(rows, { size: 266_200, nonzero: 266_200 - 784 * 300 * 0.9 });
  assert.equal(counts.paramsTotal, 266_610);
  assert.equal(counts.paramsNonzero, 266_610 - 784 * 300 * 0.9);
  assert.equal(compressionRatio(counts.paramsTotal, counts.paramsNonzero), 266_610 / (266_610 - 211_680));
  assert.equal(theoreticalSpeedup(counts.macsDense, counts.macsEffective), 266_200 / (266_200 - 211_680));
  assert.equal(sparsityOf(counts.paramsPrunable, counts.prunableNonzero), 211_680 / 266_200);
});

test("compression axis converts to the fraction of prunable weights to keep (ShrinkBench fraction_to_keep)", () => {
  // 1000 params, 900 prunable: 4x compression leaves 250 nonzero = 100 non-prunable + 150 of 900 prunable.
  assert.equal(keepFractionForCompression(4, 1000, 900), 150 / 900);
  assert.equal(keepFractionForCompression(1, 1000, 900), 1);
  assert.throws(() => keepFractionForCompression(20, 1000, 900), /unreachable.*100 of 1000 parameters are not prunable/);
});

test("countNonzero counts exact zeros only", () => {
  assert.equal(countNonzero(new Float32Array([0, -0, 1e-30, 2, 0])), 2);
});

test("published numbers convert to each metric's own unit: percent, 2xMACs", async () => {
  const { toMetricUnit, acceptedUnits } = await import("../src/metrics/units.js");
  assert.equal(toMetricUnit("top1_after", 98.41, "percent"), 0.9841);
  assert.equal(toMetricUnit("macs_effective", 532_000, "2xMACs"), 266_000);
  assert.equal(toMetricUnit("top1_after", 0.98, "fraction"), 0.98);
  assert.equal(toMetricUnit("top1_after", 98, "MACs"), null);
  assert.deepEqual(acceptedUnits("top1_after"), ["fraction", "percent", "%"]);
});

test("prunable policy: kernels by default; biases, classifier and first layer as configured", async () => {
  const { prunableParamCount } = await import("../src/prune/policy.js");
  const { layers } = totals("lenet5", [28, 28, 1]);
  const base = { biases: false, batchNorm: false, classifier: true, firstLayer: true };
  assert.equal(prunableParamCount(layers, base), 61_706 - (6 + 16 + 120 + 84 + 10));
  assert.equal(prunableParamCount(layers, { ...base, biases: true }), 61_706);
  assert.equal(prunableParamCount(layers, { ...base, classifier: false, firstLayer: false }), 61_706 - 236 - 84 * 10 - 150);
});

test("quantiles interpolate between order statistics as numpy's default does; the median is the 0.5 quantile", () => {
  const xs = [7, 1, 3, 10];
  // numpy.quantile([1, 3, 7, 10], [0, 0.25, 0.5, 0.75, 1]) = [1, 2.5, 5, 7.75, 10]
  assert.deepEqual([0, 0.25, 0.5, 0.75, 1].map((q) => quantile(xs, q)), [1, 2.5, 5, 7.75, 10]);
  assert.equal(quantile(xs, 0.5), median(xs));
  assert.equal(quantile([4], 0.75), 4);
});
