import { conv2, conv4, conv6 } from "./convnets.js";
import { lenet5 } from "./lenet5.js";
import { lenet5Caffe } from "./lenet5-caffe.js";
import { mlp } from "./mlp.js";
import { ImportError } from "./layers-model-file.js";
import { mobilenetv2 } from "./mobilenetv2.js";
import { ShapeOps, type ArchDef, type LayerInfo } from "./ops.js";
import { resnet110, resnet20, resnet20b, resnet32, resnet56, resnet56b } from "./resnet.js";
import { vgg16bn, vgg19bn } from "./vgg.js";
import { vitTiny } from "./vit.js";

export const ARCHS: readonly ArchDef[] = [
  mlp, lenet5, lenet5Caffe, conv2, conv4, conv6, resnet20, resnet32, resnet56, resnet110, resnet20b, resnet56b,
  vgg16bn, vgg19bn, mobilenetv2, vitTiny,
];

/** Architectures imported from files in this process (src/archs/layers-model.ts), by name. */
const imported = new Map<string, ArchDef>();

/**
 * Imports a tfjs LayersModel (throws ImportError) and makes it known to `getArch` under its content-addressed name.
 * `expectedName`: the name the run was planned with; a file edited since then has another hash, and is refused.
 */
export async function loadLayersModelArch(file: string, expectedName?: string): Promise<ArchDef> {
  if (expectedName !== undefined && imported.has(expectedName)) return imported.get(expectedName)!;
  // Loaded on demand: tfjs-layers is not needed to list or count the built-in architectures.
  const { importLayersModel } = await import("./layers-model.js");
  const { arch } = await importLayersModel(file);
  if (expectedName !== undefined && arch.name !== expectedName) {
    throw new ImportError(`${file} is not the model the run was planned with: it is ${arch.name}, the run's architecture is ${expectedName} (edited since?)`);
  }
  imported.set(arch.name, arch);
  return arch;
}

export function getArch(name: string): ArchDef {
  const arch = ARCHS.find((a) => a.name === name) ?? imported.get(name);
  if (!arch) throw new Error(`unknown architecture "${name}"; valid: ${ARCHS.map((a) => a.name).join(", ")}`);
  return arch;
}

/** The layer table of an architecture on a given input: the single source of params and MACs. */
export function layerTable(arch: ArchDef, inputShape: [number, number, number], numClasses: number): LayerInfo[] {
  const ops = new ShapeOps();
  arch.build(ops, [...inputShape], numClasses);
  return ops.layers;
}

export type { ArchDef, LayerInfo, Widths } from "./ops.js";
export { ImportError, isLayersModelArch, layersModelArchName, layersModelHash, SUPPORTED_LAYER_CLASSES } from "./layers-model-file.js";
