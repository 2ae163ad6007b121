/**
 * The run-start half of the layer-name check (the grid checks the archs whose layers its catalog knows; see
 * src/grid/blocks/layer-names.ts): a method hyperparameter listing layer names must name layers of this arch, traced
 * on the run's own input, before any training is spent on a run that would prune a layer meant to be kept.
 */
import { getMethod } from "../../methods/index.js";
import { channelGraph, channelLayerNames } from "../archs/graph.js";
import type { ArchDef } from "../archs/index.js";
import { unknownLayerNames } from "../core/layer-names.js";
import type { RunConfig } from "../core/types.js";

export function checkLayerNameParams(config: RunConfig, arch: ArchDef, inputShape: readonly number[], numClasses: number): void {
  const specs = getMethod(config.method.name).params;
  if (!Object.values(specs).some((s) => s.layerNames)) return;
  const names = channelLayerNames(channelGraph(arch, inputShape, numClasses));
  const problems = unknownLayerNames(config.method.name, specs, config.method.params, config.arch, names);
  if (problems.length > 0) throw new Error(problems.map((p) => p.problem).join("; "));
}
