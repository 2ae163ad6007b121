/**
 * Physical removal of channels: the compacted model is the same architecture built with the kept widths
 * (`withWidths`), holding the kept slices of every tensor — kernels on both their input and output axes, biases, BN
 * γ/β and running statistics, embeddings — and the shortcut maps rewritten to the kept channels. Its outputs equal
 * the masked model's (test/structured.test.ts), and its params and MACs are those of its own layer table.
 */
import * as tf from "@tensorflow/tfjs-core";
import { compactWidths, type ChannelGraph, type UnitKeep, type WidthPlan } from "../archs/graph.js";
import { gatherAxes, keptSlices } from "../prune/structured.js";
import { createModel, type Model } from "./model.js";

export function compactModel(model: Model, plan: WidthPlan, keep: UnitKeep): Model {
  const graph: ChannelGraph = plan.graph;
  const arch = model.arch.withWidths(compactWidths(plan, keep));
  const out = createModel(arch, model.inputShape, model.numClasses, 0);
  const slices = keptSlices(graph, keep);
  for (const [name, target] of [...out.params, ...out.state]) {
    const source = model.params.get(name) ?? model.state.get(name);
    if (!source) throw new Error(`compacted model has tensor ${name}, which the model does not`);
    const axes = slices.get(name) ?? new Map<number, number[]>();
    const { values, shape } = gatherAxes(source.dataSync() as Float32Array, source.shape, axes);
    if (shape.join() !== target.shape.join()) throw new Error(`${name}: kept slices have shape [${shape}], the compacted architecture [${target.shape}]`);
    tf.tidy(() => target.assign(tf.tensor(values, shape)));
  }
  return out;
}
