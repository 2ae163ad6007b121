/**
 * `bench methods` says where each method's per-layer ratios come from, read from its declared distribution: set by
 * the method (one global ranking) or taken from a rule (the same fraction per layer, ERK), with the hyperparameter
 * choices that change it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { getMethod, METHODS } from "../methods/index.js";
import type { PruningMethod } from "../methods/types.js";
import { layerRatios } from "../src/cli/methods.js";
import { bench } from "./helpers/cli.js";

test("layer ratios follow the declared distribution, not the name, with the choices that change it", () => {
  for (const m of METHODS) {
    const defaults = Object.fromEntries(Object.entries(m.params).map(([k, p]) => [k, p.default]));
    const r = layerRatios(m);
    assert.equal(r.distribution, m.distribution(defaults), m.name);
    assert.equal(r.source, m.distribution(defaults) === "global" ? "method" : "distribution", m.name);
  }
  assert.equal(layerRatios(getMethod("global-magnitude")).source, "method");
  assert.equal(layerRatios(getMethod("platon")).source, "method");
  assert.equal(layerRatios(getMethod("layer-magnitude")).source, "distribution");
  assert.deepEqual(layerRatios(getMethod("gmp")), {
    source: "distribution", distribution: "layer", with: [{ param: "scope", value: "global", source: "method", distribution: "global" }],
  });
  assert.deepEqual(layerRatios(getMethod("rigl")), {
    source: "distribution", distribution: "erk", with: [{ param: "distribution", value: "layer", source: "distribution", distribution: "layer" }],
  });
  // A method named like a global one that declares the layer rule is listed by its declaration.
  const renamed: PruningMethod = { ...getMethod("layer-magnitude"), name: "global-something" };
  assert.equal(layerRatios(renamed).source, "distribution");
});

test("bench methods prints the layer-ratio line and --json carries it", () => {
  const text = bench(["methods"]);
  assert.equal(text.code, 0, text.stderr);
  const block = (name: string) => text.stdout.split("\n\n").find((b) => b.startsWith(`${name}\n`)) ?? "";
  assert.match(block("platon"), /layer ratios: set by the method \(global: one ranking across layers\)/);
  assert.match(block("layer-magnitude"), /layer ratios: from a distribution \(layer: the same fraction in every layer\)/);
  assert.match(block("rigl"), /layer ratios: from a distribution \(erk: Erdős–Rényi-Kernel\); distribution: layer → layer/);
  const json = bench(["methods", "--json"]);
  assert.equal(json.code, 0, json.stderr);
  const list = JSON.parse(json.stdout) as Array<{ name: string; layerRatios: { source: string } }>;
  assert.equal(list.length, METHODS.length);
  assert.equal(list.find((m) => m.name === "snip")!.layerRatios.source, "method");
  assert.equal(list.find((m) => m.name === "layer-gradient")!.layerRatios.source, "distribution");
});
