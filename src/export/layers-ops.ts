/**
 * One more interpreter of `Ops` (beside ShapeOps, TensorOps and the channel tracer): it builds an architecture as a
 * tfjs-layers functional model, so an exported network is a standard `tf.LayersModel` that plain tfjs loads with
 * `tf.loadLayersModel` and no prunebench code. Layer names are prunebench's (a conv "s1b1/conv1" is the tfjs layer
 * "s1b1/conv1" with weights "s1b1/conv1/kernel"), so masks.json and plan.json name the exported layers directly.
 *
 * Only operations that standard tfjs layers compute exactly as TensorOps does are mapped. The others (option A's
 * zero-padded shortcut, layer norm, GELU, tokens and attention) would need custom layers, which `tf.loadLayersModel`
 * refuses unless the loading program registers their code first: a model that needs prunebench to load is not an
 * export, so they are a clear error naming the operation and the architecture instead.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { ARCHS } from "../archs/index.js";
import {
  ShapeOps, tensorNames, type ArchDef, type BatchNormOptions, type ConvOptions, type DenseOptions, type DepthwiseOptions, type Ops, type Padding,
} from "../archs/ops.js";

export class ExportError extends Error {
  override name = "ExportError";
}

/**
 * TensorOps' batch-norm epsilon (src/archs/tensor-ops.ts), not tfjs-layers' default 1e-3: with small running
 * variances the two give different outputs, which test/export-model.test.ts would catch.
 */
const BN_EPSILON = 1e-5;
/** Keras convention (moving = moving·m + batch·(1 − m)), the same update TensorOps makes; only used if retrained. */
const BN_MOMENTUM = 0.9;

export const SUPPORTED_OPS = ["conv", "depthwiseConv", "dense", "batchNorm", "relu", "maxPool", "avgPool", "globalAvgPool", "flatten", "add"] as const;

const UNSUPPORTED: Record<string, string> = {
  zeroPadShortcut: "He et al.'s option-A zero-padded shortcut",
  layerNorm: "layer normalization",
  gelu: "GELU",
  toTokens: "image-to-token reshaping",
  classToken: "a learned class token",
  positionEmbedding: "a learned position embedding",
  takeToken: "taking one token",
  attention: "multi-head self-attention",
};

/** Thrown by the probe: the message (with every exportable architecture, probed too) is built once, by exportProblem. */
class Unsupported extends Error {
  constructor(readonly arch: string, readonly op: string, readonly where?: string) { super(`${arch}: ${op}`); }
}

function unsupported(arch: string, op: string, where?: string): Unsupported {
  return new Unsupported(arch, op, where);
}

function describeUnsupported(u: Unsupported): ExportError {
  return new ExportError(
    `architecture ${u.arch} cannot be exported as a standard tfjs LayersModel: operation ${u.op}${u.where ? ` (${u.where})` : ""}, ` +
    `${UNSUPPORTED[u.op] ?? u.op}, has no standard tfjs layer, and a custom layer would not load in plain tfjs without registering its code. ` +
    `Exportable operations: ${SUPPORTED_OPS.join(", ")}; exportable architectures: ${exportableArchs().join(", ")}`,
  );
}

/** The layer table walk with every operation that has no standard layer refused (cheap: shapes only, no weights). */
class ExportProbe extends ShapeOps {
  constructor(private readonly arch: string) { super(); }
  override zeroPadShortcut(name: string): number[] { throw unsupported(this.arch, "zeroPadShortcut", name); }
  override layerNorm(name: string): number[] { throw unsupported(this.arch, "layerNorm", name); }
  override gelu(): number[] { throw unsupported(this.arch, "gelu"); }
  override toTokens(): number[] { throw unsupported(this.arch, "toTokens"); }
  override classToken(name: string): number[] { throw unsupported(this.arch, "classToken", name); }
  override positionEmbedding(name: string): number[] { throw unsupported(this.arch, "positionEmbedding", name); }
  override takeToken(): number[] { throw unsupported(this.arch, "takeToken"); }
  override attention(name: string): number[] { throw unsupported(this.arch, "attention", name); }
  override dense(name: string, x: number[], o: DenseOptions): number[] {
    if (x.length !== 1) throw unsupported(this.arch, "dense", `${name} on a token sequence [${x}]`);
    return super.dense(name, x, o);
  }
}

/** Why `arch` cannot be exported on this input (the error names the operation), or null when it can. */
export function exportProblem(arch: ArchDef, inputShape: readonly number[], numClasses: number): ExportError | null {
  try {
    arch.build(new ExportProbe(arch.name), [...inputShape], numClasses);
    return null;
  } catch (e) {
    if (e instanceof Unsupported) return describeUnsupported(e);
    throw e;
  }
}

function exportableArchs(): string[] {
  return ARCHS.filter((a) => {
    try {
      a.build(new ExportProbe(a.name), [...(a.inputShape ?? [32, 32, 3])], a.numClasses ?? 10);
      return true;
    } catch {
      return false;
    }
  }).map((a) => a.name);
}

type Sym = tfl.SymbolicTensor;

/** Builds the layers; remembers which prunebench tensors each weighted tfjs layer takes, in tfjs's weight order. */
class LayersOps implements Ops<Sym> {
  readonly weighted: Array<{ layer: tfl.layers.Layer; tensors: string[] }> = [];
  private readonly counts = new Map<string, number>();

  constructor(private readonly arch: string) {}

  /** Explicit names for the parameter-free layers: tfjs's automatic ones come from a process-wide counter. */
  private auto(kind: string): string {
    const n = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, n);
    return `${kind}_${n}`;
  }

  private apply(layer: tfl.layers.Layer, x: Sym | Sym[], tensors: string[] = []): Sym {
    if (tensors.length > 0) this.weighted.push({ layer, tensors });
    return layer.apply(x) as Sym;
  }

  /** An explicit pad is a ZeroPadding2D before a "valid" layer: TensorOps pads with tf.pad the same way. */
  private padded(name: string, x: Sym, padding: Padding): { x: Sym; padding: "same" | "valid" } {
    if (padding === "same" || padding === "valid") return { x, padding };
    if (padding === 0) return { x, padding: "valid" };
    return { x: this.apply(tfl.layers.zeroPadding2d({ name: `${name}/pad`, padding: [[padding, padding], [padding, padding]] }), x), padding: "valid" };
  }

  private withBias(name: string, bias: boolean | undefined): string[] {
    return [tensorNames.kernel(name), ...((bias ?? true) ? [tensorNames.bias(name)] : [])];
  }

  conv(name: string, x: Sym, o: ConvOptions): Sym {
    const p = this.padded(name, x, o.padding);
    return this.apply(tfl.layers.conv2d({
      name, filters: o.filters, kernelSize: o.kernel, strides: o.stride ?? 1, padding: p.padding, useBias: o.bias ?? true,
      activation: o.activation ?? "linear", kernelInitializer: "zeros", biasInitializer: "zeros",
    }), p.x, this.withBias(name, o.bias));
  }

  depthwiseConv(name: string, x: Sym, o: DepthwiseOptions): Sym {
    const p = this.padded(name, x, o.padding);
    return this.apply(tfl.layers.depthwiseConv2d({
      name, kernelSize: o.kernel, strides: o.stride ?? 1, padding: p.padding, depthMultiplier: 1, useBias: o.bias ?? true,
      depthwiseInitializer: "zeros", biasInitializer: "zeros",
    }), p.x, this.withBias(name, o.bias));
  }

  dense(name: string, x: Sym, o: DenseOptions): Sym {
    return this.apply(tfl.layers.dense({
      name, units: o.units, useBias: o.bias ?? true, activation: o.activation ?? "linear", kernelInitializer: "zeros", biasInitializer: "zeros",
    }), x, this.withBias(name, o.bias));
  }

  batchNorm(name: string, x: Sym, o: BatchNormOptions = {}): Sym {
    return this.apply(tfl.layers.batchNormalization({ name, axis: -1, epsilon: o.epsilon ?? BN_EPSILON, momentum: BN_MOMENTUM }), x, [
      tensorNames.gamma(name), tensorNames.beta(name), tensorNames.movingMean(name), tensorNames.movingVar(name),
    ]);
  }

  relu(x: Sym): Sym { return this.apply(tfl.layers.activation({ name: this.auto("relu"), activation: "relu" }), x); }

  maxPool(x: Sym, size: number, stride = size): Sym {
    return this.apply(tfl.layers.maxPooling2d({ name: this.auto("max_pool"), poolSize: size, strides: stride, padding: "valid" }), x);
  }

  avgPool(x: Sym, size: number, stride = size): Sym {
    return this.apply(tfl.layers.averagePooling2d({ name: this.auto("avg_pool"), poolSize: size, strides: stride, padding: "valid" }), x);
  }

  globalAvgPool(x: Sym): Sym { return this.apply(tfl.layers.globalAveragePooling2d({ name: this.auto("global_avg_pool") }), x); }

  /** NHWC row-major, as TensorOps' reshape: the dense kernel after it reads the same feature order. */
  flatten(x: Sym): Sym { return this.apply(tfl.layers.flatten({ name: this.auto("flatten") }), x); }

  add(a: Sym, b: Sym): Sym { return this.apply(tfl.layers.add({ name: this.auto("add") }), [a, b]); }

  // Refused before any layer is built (exportProblem); reaching one here would be a bug of the probe.
  layerNorm(name: string): Sym { throw unsupported(this.arch, "layerNorm", name); }
  gelu(): Sym { throw unsupported(this.arch, "gelu"); }
  zeroPadShortcut(name: string): Sym { throw unsupported(this.arch, "zeroPadShortcut", name); }
  toTokens(): Sym { throw unsupported(this.arch, "toTokens"); }
  classToken(name: string): Sym { throw unsupported(this.arch, "classToken", name); }
  positionEmbedding(name: string): Sym { throw unsupported(this.arch, "positionEmbedding", name); }
  takeToken(): Sym { throw unsupported(this.arch, "takeToken"); }
  attention(name: string): Sym { throw unsupported(this.arch, "attention", name); }
}

export type NamedTensors = ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;

/**
 * `arch` (with whatever widths it carries) as a tfjs LayersModel holding `tensors` (prunebench names: "conv1/kernel",
 * "bn1/moving_var", …). Input [h, w, c] NHWC, output the logits (no softmax), as prunebench's forward pass.
 */
export function buildLayersModel(arch: ArchDef, inputShape: readonly number[], numClasses: number, tensors: NamedTensors): tfl.LayersModel {
  const problem = exportProblem(arch, inputShape, numClasses);
  if (problem) throw problem;
  const ops = new LayersOps(arch.name);
  const input = tfl.input({ shape: [...inputShape], name: "input" });
  const output = arch.build(ops, input, numClasses);
  const model = tfl.model({ inputs: input, outputs: output, name: arch.name.replace(/[^A-Za-z0-9._-]/g, "_") });
  try {
    for (const { layer, tensors: names } of ops.weighted) {
      const expected = layer.getWeights().map((w) => w.shape);
      const values = names.map((name, i) => {
        const t = tensors.get(name);
        if (!t) throw new ExportError(`${arch.name}: the saved weights have no tensor ${name}`);
        if (t.shape.join() !== expected[i].join()) throw new ExportError(`${arch.name}: tensor ${name} has shape [${t.shape}], the exported layer ${layer.name} expects [${expected[i]}]`);
        return tf.tensor(t.data, [...t.shape]);
      });
      layer.setWeights(values);
      tf.dispose(values);
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** What `model.json` holds and the single weights file it points to (as tfjs-node's file:// saver writes them). */
export async function layersModelFiles(model: tfl.LayersModel, weightsFile = "weights.bin"): Promise<{ modelJson: Record<string, unknown>; weights: Uint8Array }> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
  }));
  if (!artifacts?.weightSpecs || artifacts.weightData === undefined) throw new Error("tfjs-layers saved no weights");
  const modelJson = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format ?? "layers-model",
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [weightsFile], weights: artifacts.weightSpecs }],
  };
  return { modelJson, weights: new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData)) };
}

/** Trainable parameters of a LayersModel, counted as prunebench counts them (BN running statistics are not). */
export function trainableParams(model: tfl.LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}
