/**
 * Structured pruning's foundations: the channel graph traced from each architecture (which tensors' axes are coupled),
 * and physical removal — for every architecture with channels, the compacted model (new widths, kept slices) gives
 * the masked model's outputs, and its params and MACs, counted from its own layer table, are exactly what the masks
 * leave alive.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { getArch, type LayerInfo } from "../src/archs/index.js";
import { channelGraph, maskedShortcuts, widthPlan, type ChannelGraph } from "../src/archs/graph.js";
import { initBackend } from "../src/backend/index.js";
import { registerNativeBackend } from "../src/backend/native/index.js";
import { makeRng } from "../src/core/rng.js";
import { channelMasks, prunableGroups } from "../src/prune/structured.js";
import { compactModel } from "../src/train/compact.js";
import { createModel, disposeModel, forward } from "../src/train/model.js";
import { perturb } from "./helpers/perturb.js";

const MNIST: [number, number, number] = [28, 28, 1];
const CIFAR: [number, number, number] = [32, 32, 3];

const group = (g: ChannelGraph, name: string) => {
  const i = g.groups.findIndex((x) => x.name === name);
  assert.ok(i >= 0, `no group ${name}; groups: ${g.groups.map((x) => x.name).join(", ")}`);
  return i;
};

test("resnet20's channel graph: the residual stream of a stage is one group, each block's inner conv its own; option A maps, not couples", () => {
  const g = channelGraph(getArch("resnet20"), CIFAR, 10);
  const stage1 = g.groups[group(g, "conv0")];
  assert.deepEqual(stage1.producers, ["conv0", "s1b1/conv2", "s1b2/conv2", "s1b3/conv2"]);
  assert.equal(stage1.size, 16);
  // Unit 5 of the stream: conv0's filter 5, bn0's γ/β/statistics, every block's conv2 filter 5 and bn2, every
  // conv1 reading it, and s2b1/conv1 of the next stage (the shortcut reads it too, but has no tensor).
  const tensorsOfUnit = stage1.members.filter((m) => m.indices[5].length > 0).map((m) => `${m.tensor}@${m.axis}:${m.side}`).sort();
  assert.ok(tensorsOfUnit.includes("conv0/kernel@3:out"));
  assert.ok(tensorsOfUnit.includes("bn0/moving_var@0:out"));
  assert.ok(tensorsOfUnit.includes("s1b3/bn2/gamma@0:out"));
  assert.ok(tensorsOfUnit.includes("s1b2/conv1/kernel@2:in"));
  assert.ok(tensorsOfUnit.includes("s2b1/conv1/kernel@2:in"));
  assert.equal(tensorsOfUnit.filter((t) => t.startsWith("s2b1/conv2")).length, 0, "option A does not couple the stage-2 stream with stage 1");
  const stage2 = g.groups[group(g, "s2b1/conv2")];
  assert.deepEqual(stage2.producers, ["s2b1/conv2", "s2b1/shortcut", "s2b2/conv2", "s2b3/conv2"]);
  assert.equal(g.groups[group(g, "s1b2/conv1")].producers.length, 1);
  assert.equal(g.shortcuts.length, 2);
  assert.deepEqual(g.shortcuts[0].input.slice(0, 2), [{ group: group(g, "conv0"), unit: 0 }, { group: group(g, "conv0"), unit: 1 }]);
  // The classifier's outputs are protected; its inputs (the stage-3 stream) are not.
  assert.match(g.groups[group(g, "fc")].protectedBy ?? "", /outputs/);
  assert.equal(g.groups[group(g, "s3b1/conv2")].protectedBy, null);
});

test("after a flatten, a channel owns its h·w rows of the dense kernel; a depthwise conv's channels are its input's", () => {
  const g = channelGraph(getArch("lenet5"), MNIST, 10);
  const conv2 = g.groups[group(g, "conv2")];
  const fc1Rows = conv2.members.find((m) => m.tensor === "fc1/kernel")!;
  assert.equal(fc1Rows.axis, 0);
  // 5x5x16 flattened NHWC: channel 3 is rows 3, 19, 35, …
  assert.deepEqual(fc1Rows.indices[3], Array.from({ length: 25 }, (_, p) => p * 16 + 3));
  const m = channelGraph(getArch("mobilenetv2"), CIFAR, 10);
  const expand = m.groups[group(m, "b2/conv1")];
  assert.deepEqual(expand.members.map((x) => x.tensor).filter((t) => t.startsWith("b2/conv2")), ["b2/conv2/kernel"]);
  assert.equal(expand.size, 96);
});

test("vit-tiny: heads and MLP neurons are groups; the residual width is protected (layer norm)", () => {
  const g = channelGraph(getArch("vit-tiny"), CIFAR, 10);
  const heads = g.groups[group(g, "block1/attn/q")];
  assert.equal(heads.size, 3);
  assert.deepEqual(heads.producers, ["block1/attn/q", "block1/attn/k", "block1/attn/v"]);
  assert.deepEqual(heads.members.find((m) => m.tensor === "block1/attn/proj/kernel")!.indices[1], Array.from({ length: 64 }, (_, j) => 64 + j));
  assert.equal(g.groups[group(g, "block1/mlp/fc1")].size, 768);
  assert.match(g.groups[group(g, "patch_embed")].protectedBy ?? "", /layer norm/);
  const plan = widthPlan(getArch("vit-tiny"), g, CIFAR, 10);
  assert.equal(plan.sizes.get("block1/heads"), group(g, "block1/attn/q"));
  assert.equal(plan.sizes.has("block1/head_dim"), false);
});


interface Case { arch: string; input: [number, number, number]; tolerance: number }

const CASES: Case[] = [
  { arch: "lenet5", input: MNIST, tolerance: 1e-4 },
  { arch: "lenet5-caffe", input: MNIST, tolerance: 1e-4 },
  { arch: "mlp", input: MNIST, tolerance: 1e-4 },
  { arch: "conv2", input: CIFAR, tolerance: 1e-4 },
  { arch: "conv4", input: CIFAR, tolerance: 1e-4 },
  { arch: "conv6", input: CIFAR, tolerance: 1e-4 },
  { arch: "resnet20", input: CIFAR, tolerance: 1e-4 },
  { arch: "resnet32", input: CIFAR, tolerance: 1e-4 },
  { arch: "resnet56", input: CIFAR, tolerance: 1e-4 },
  { arch: "resnet110", input: CIFAR, tolerance: 1e-4 },
  { arch: "resnet20-b", input: CIFAR, tolerance: 1e-4 },
  { arch: "resnet56-b", input: CIFAR, tolerance: 1e-4 },
  { arch: "vgg16-bn", input: CIFAR, tolerance: 1e-4 },
  { arch: "vgg19-bn", input: CIFAR, tolerance: 1e-4 },
  { arch: "mobilenetv2", input: CIFAR, tolerance: 1e-4 },
  { arch: "vit-tiny", input: CIFAR, tolerance: 1e-4 },
];

const native = await registerNativeBackend();
const RUNS: Array<{ c: Case; backend: "wasm" | "native" }> = [
  ...CASES.map((c) => ({ c, backend: "wasm" as const })),
  // The native backend's oneDNN kernels block channels differently: the equality must not depend on the kernel.
  ...CASES.filter((c) => ["lenet5", "resnet20", "vgg16-bn", "mobilenetv2"].includes(c.arch)).map((c) => ({ c, backend: "native" as const })),
];

for (const { c, backend } of RUNS) {
  test(`${c.arch} (${backend}): the compacted model's outputs equal the masked model's (relative max abs difference < ${c.tolerance}), and its params and MACs are what the masks leave`, { skip: backend === "native" && !native.ok ? `native backend unavailable: ${native.reason}` : false }, async () => {
    await initBackend(backend);
    const model = createModel(getArch(c.arch), c.input, 10, 7);
    perturb(model, 7);
    const graph = channelGraph(model.arch, c.input, 10);
    const plan = widthPlan(model.arch, graph, c.input, 10);
    const rng = makeRng(11, c.arch);
    const keep = graph.groups.map((g) => Array<boolean>(g.size).fill(true));
    const prunable = prunableGroups(plan);
    assert.ok(prunable.length > 0);
    for (const i of prunable) {
      // About 40 % of each group's units, never all of them.
      keep[i] = keep[i].map(() => rng() >= 0.4);
      if (!keep[i].some(Boolean)) keep[i][0] = true;
    }
    if (c.arch === "resnet20") {
      // A pruned stage-2 channel that the shortcut fills from a kept stage-1 channel (the masked model must zero the
      // shortcut's copy too), and a kept stage-2 channel whose stage-1 source is pruned (the compacted map drops it).
      const [s1, s2] = [group(graph, "conv0"), group(graph, "s2b1/conv2")];
      keep[s1][3] = true;
      keep[s2][3] = false;
      keep[s1][5] = false;
      keep[s2][5] = true;
    }
    const x = tf.tensor4d(Float32Array.from({ length: 2 * c.input.reduce((a, b) => a * b, 1) }, () => rng() * 2 - 1), [2, ...c.input]);

    model.arch = model.arch.withWidths(maskedShortcuts(graph, keep));
    const shapes = new Map([...model.params].map(([n, v]) => [n, v.shape]));
    const masks = channelMasks(graph, keep, shapes);
    for (const [name, mask] of masks) {
      const v = model.params.get(name)!;
      tf.tidy(() => v.assign(tf.mul(v, tf.tensor(mask, v.shape))));
    }
    const compact = compactModel(model, plan, keep);
    try {
      const masked = tf.tidy(() => forward(model, x, false).logits.arraySync()).flat();
      const compacted = tf.tidy(() => forward(compact, x, false).logits.arraySync()).flat();
      const scale = Math.max(...masked.map(Math.abs));
      const diff = Math.max(...masked.map((v, i) => Math.abs(v - compacted[i])));
      console.log(`# ${c.arch} (${backend}): max abs diff ${diff.toExponential(2)} (relative ${(diff / scale).toExponential(2)}, logits up to ${scale.toFixed(3)})`);
      assert.ok(diff / scale < c.tolerance, `${c.arch}: max abs diff ${diff} on logits up to ${scale}`);

      // Physically smaller, and counted from its own shape: each layer's params and MACs are the dense layer's at
      // its masks' density (conv, dense: kept inputs × kept outputs), so the masks and the compaction agree.
      const before = new Map<string, LayerInfo>(model.layers.map((l) => [l.name, l]));
      let params = 0;
      for (const [name, v] of model.params) params += masks.has(name) ? masks.get(name)!.reduce((a, b) => a + b, 0) : v.size;
      assert.equal(compact.layers.reduce((n, l) => n + l.params, 0), params);
      assert.ok(params < model.layers.reduce((n, l) => n + l.params, 0));
      for (const l of compact.layers) {
        const mask = masks.get(`${l.name}/kernel`);
        if (!mask || l.kind === "attention") continue;
        const density = mask.reduce((a, b) => a + b, 0) / mask.length;
        assert.ok(Math.abs(l.macs - before.get(l.name)!.macs * density) < 1e-6 * l.macs + 1e-9, `${l.name}: ${l.macs} MACs, masks leave ${before.get(l.name)!.macs * density}`);
      }
    } finally {
      x.dispose();
      disposeModel(model);
      disposeModel(compact);
    }
  });
}
