import { lenet5 } from "./lenet5.js";
import { lenet5Caffe } from "./lenet5-caffe.js";
import { mlp } from "./mlp.js";
import { ShapeOps, type ArchDef, type LayerInfo } from "./ops.js";
import { resnet20, resnet56 } from "./resnet.js";

export const ARCHS: readonly ArchDef[] = [mlp, lenet5, resnet20, resnet56, lenet5Caffe];

export function getArch(name: string): ArchDef {
  const arch = ARCHS.find((a) => a.name === name);
  if (!arch) throw new Error(`unknown architecture "${name}"; valid: ${ARCHS.map((a) => a.name).join(", ")}`);
  return arch;
}

/** The layer table of an architecture on a given input: the single source of params and MACs. */
export function layerTable(arch: ArchDef, inputShape: [number, number, number], numClasses: number): LayerInfo[] {
  const ops = new ShapeOps();
  arch.build(ops, [...inputShape], numClasses);
  return ops.layers;
}

export type { ArchDef, LayerInfo } from "./ops.js";
