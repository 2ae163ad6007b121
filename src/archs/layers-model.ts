/**
 * Bring your own architecture: a tfjs LayersModel (model.json and the weight files its manifest names, as
 * `model.save("file://…")` or tensorflowjs_converter write them) imported as an `ArchDef`, the inverse of
 * src/export/layers-ops.ts. tfjs reads the files (`tf.io.getModelArtifactsForJSON`, `tfl.loadLayersModel`), so the
 * layer configs and weights are tfjs's own reading of them; this file only maps each loaded layer to the `Ops` the
 * built-in architectures are written in. The imported network is then counted, trained, pruned (unstructured and
 * structured: the channel tracer walks the same `build`) and compacted like a built-in one.
 *
 * Widths: every Conv2D and Dense layer but the classifier is sized by a width. Layers whose outputs a residual `Add`
 * joins share one width (named after the first of them), as a ResNet's stage widths do, so structured pruning removes
 * their channels together and the compacted model is the same import built with smaller widths.
 *
 * Weights: the file's weights are the network's initial weights (where dense pretraining starts, instead of a draw
 * from `model.init`); see `initialWeights` in ops.ts.
 *
 * What is refused (an `ImportError` naming the file, the layer, its class and why): layers with no `Op` (LSTM,
 * Conv2DTranspose, custom layers, …), activations other than ReLU and linear (softmax is accepted on
 * the output alone and dropped: prunebench's models output logits and the loss applies the softmax), non-square
 * kernels or strides, dilation, channels-first data, 'same' pooling, a layer applied more than once, several inputs
 * or outputs.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { ImportError, layersModelArchName, layersModelHash, manifestPaths, SUPPORTED_LAYER_CLASSES } from "./layers-model-file.js";
import { defineArch, tensorNames, type ArchDef, type Ops, type Padding, type WidthReader, type Widths } from "./ops.js";

/** One layer of the imported network as plain data: the ArchDef built from it holds no tfjs object. */
type Node =
  | { op: "conv"; name: string; inputs: string[]; width: string | number; units: number; kernel: number; stride: number; padding: Padding; bias: boolean; relu: boolean }
  | { op: "depthwise"; name: string; inputs: string[]; kernel: number; stride: number; padding: Padding; bias: boolean; relu: boolean }
  | { op: "dense"; name: string; inputs: string[]; width: string | number; units: number; bias: boolean; relu: boolean }
  | { op: "batchNorm"; name: string; inputs: string[]; epsilon: number }
  | { op: "relu" | "identity" | "globalAvgPool" | "flatten" | "add"; name: string; inputs: string[] }
  | { op: "maxPool" | "avgPool"; name: string; inputs: string[]; size: number; stride: number }
  /** A ZeroPadding2D: folded into the 'valid' conv that reads it (tfjs computes both the same way). */
  | { op: "pad"; name: string; inputs: string[]; pad: number };

export interface ImportedModel {
  arch: ArchDef;
  /** sha256 of model.json and its weight files, in manifest order. */
  sha256: string;
  file: string;
}

/** Reads a model.json and its weights with tfjs's own loaders, and maps it (throws ImportError). */
export async function importLayersModel(file: string): Promise<ImportedModel> {
  let json: Buffer;
  try {
    json = readFileSync(file);
  } catch (e) {
    throw new ImportError(`${file}: cannot read the LayersModel: ${(e as Error).message}`);
  }
  manifestPaths(file, json);
  // The grid is checked in the sweep's own process, where no backend was started: tfjs needs one to hold the
  // weights (a worker has its own already; importing the module again registers nothing new).
  if ((tf.engine() as unknown as { backendName: string | null }).backendName == null) {
    await import("@tensorflow/tfjs-backend-cpu");
    // Only weights are held here: no "install tfjs-node" banner in the middle of a sweep's output.
    tf.env().set("PROD", true);
    await tf.setBackend("cpu");
  }
  const sha256 = layersModelHash(file);
  let model: tfl.LayersModel;
  try {
    const artifacts = await tf.io.getModelArtifactsForJSON(JSON.parse(json.toString("utf8")), async (manifest) => {
      const data = Buffer.concat(manifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dirname(file), p)))));
      return [manifest.flatMap((g) => g.weights), data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer];
    });
    model = await tfl.loadLayersModel({ load: async () => artifacts });
  } catch (e) {
    // tfjs's message for an unknown class names it ("Unknown layer: MyLayer…"); the supported list says what would do.
    throw new ImportError(`${file}: tfjs cannot load it as a LayersModel: ${(e as Error).message}. Supported layer classes: ${SUPPORTED_LAYER_CLASSES.join(", ")}`);
  }
  try {
    const arch = mapModel(file, layersModelArchName(file, sha256), model);
    return { arch, sha256, file };
  } finally {
    model.dispose();
  }
}

const fail = (file: string, layer: tfl.layers.Layer, why: string): ImportError =>
  new ImportError(`${file}: layer "${layer.name}" (${layer.getClassName()}) ${why}; supported layer classes: ${SUPPORTED_LAYER_CLASSES.join(", ")}`);

function square(file: string, layer: tfl.layers.Layer, what: string, v: unknown): number {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.some((x) => x !== list[0]) || typeof list[0] !== "number") throw fail(file, layer, `has ${what} ${JSON.stringify(v)}; only square ones map to prunebench's layers`);
  return list[0];
}

function mapModel(file: string, name: string, model: tfl.LayersModel): ArchDef {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new ImportError(`${file}: the model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; prunebench's architectures take one image and give one logits vector`);
  const inShape = model.inputs[0].shape;
  if (inShape.length !== 4 || inShape.slice(1).some((d) => d === null)) throw new ImportError(`${file}: the input shape is [${inShape.map(String)}]; prunebench feeds images [batch, height, width, channels]`);
  const outShape = model.outputs[0].shape;
  if (outShape.length !== 2 || outShape[1] === null) throw new ImportError(`${file}: the output shape is [${outShape.map(String)}]; prunebench's models output [batch, classes]`);
  const inputName = model.inputs[0].sourceLayer.name;
  const outputName = model.outputs[0].sourceLayer.name;
  const nodes: Node[] = [];
  const initial = new Map<string, { shape: number[]; data: Float32Array }>();
  const keep = (tensor: string, t: tf.Tensor) => initial.set(tensor, { shape: t.shape, data: t.dataSync() as Float32Array });

  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === "InputLayer") continue;
    if (layer.inboundNodes.length !== 1) throw fail(file, layer, `is applied ${layer.inboundNodes.length} times (shared layers have no prunebench equivalent)`);
    const inputs = layer.inboundNodes[0].inboundLayers.map((l) => l.name);
    const c = layer.getConfig() as Record<string, unknown>;
    const weights = layer.getWeights();
    const isOutput = layer.name === outputName;
    /** The layer's activation: ReLU, none, or (on the output only) a softmax dropped for logits. */
    const relu = (): boolean => {
      const a = c.activation ?? "linear";
      if (a === "relu") return true;
      if (a === "linear" || (a === "softmax" && isOutput)) return false;
      throw fail(file, layer, `has activation "${String(a)}"; supported: relu, linear (and softmax on the output layer, dropped: prunebench outputs logits)`);
    };
    const channelsLast = () => {
      if ((c.dataFormat ?? "channelsLast") !== "channelsLast") throw fail(file, layer, `has data format ${String(c.dataFormat)}; prunebench is channels-last (NHWC)`);
    };
    const padding = (): Padding => {
      if (c.padding !== "same" && c.padding !== "valid") throw fail(file, layer, `has padding ${JSON.stringify(c.padding)}; supported: same, valid`);
      return c.padding;
    };
    const bias = c.useBias !== false;
    switch (cls) {
      case "Conv2D": {
        channelsLast();
        if (square(file, layer, "dilation rate", c.dilationRate ?? 1) !== 1) throw fail(file, layer, "is dilated; prunebench's convolutions are not");
        if ((c.groups ?? 1) !== 1) throw fail(file, layer, `has ${String(c.groups)} groups`);
        nodes.push({ op: "conv", name: layer.name, inputs, width: isOutput ? (c.filters as number) : layer.name, units: c.filters as number, kernel: square(file, layer, "kernel size", c.kernelSize), stride: square(file, layer, "strides", c.strides ?? 1), padding: padding(), bias, relu: relu() });
        keep(tensorNames.kernel(layer.name), weights[0]);
        if (bias) keep(tensorNames.bias(layer.name), weights[1]);
        break;
      }
      case "DepthwiseConv2D": {
        channelsLast();
        if (square(file, layer, "dilation rate", c.dilationRate ?? 1) !== 1) throw fail(file, layer, "is dilated; prunebench's convolutions are not");
        if ((c.depthMultiplier ?? 1) !== 1) throw fail(file, layer, `has depth multiplier ${String(c.depthMultiplier)}; prunebench's depthwise convolution keeps the channels (multiplier 1)`);
        nodes.push({ op: "depthwise", name: layer.name, inputs, kernel: square(file, layer, "kernel size", c.kernelSize), stride: square(file, layer, "strides", c.strides ?? 1), padding: padding(), bias, relu: relu() });
        keep(tensorNames.kernel(layer.name), weights[0]);
        if (bias) keep(tensorNames.bias(layer.name), weights[1]);
        break;
      }
      case "Dense": {
        const inRank = layer.inboundNodes[0].inputTensors[0].shape.length;
        if (inRank !== 2) throw fail(file, layer, `reads a rank-${inRank - 1} input per example; put a Flatten or GlobalAveragePooling2D before it`);
        nodes.push({ op: "dense", name: layer.name, inputs, width: isOutput ? (c.units as number) : layer.name, units: c.units as number, bias, relu: relu() });
        keep(tensorNames.kernel(layer.name), weights[0]);
        if (bias) keep(tensorNames.bias(layer.name), weights[1]);
        break;
      }
      case "BatchNormalization": {
        const axis = c.axis;
        const rank = layer.inboundNodes[0].inputTensors[0].shape.length;
        if (axis !== -1 && axis !== rank - 1) throw fail(file, layer, `normalizes axis ${String(axis)}; prunebench normalizes the channels (the last axis)`);
        if (c.center === false || c.scale === false) throw fail(file, layer, "has no beta or no gamma (center/scale false)");
        nodes.push({ op: "batchNorm", name: layer.name, inputs, epsilon: c.epsilon as number });
        [tensorNames.gamma, tensorNames.beta, tensorNames.movingMean, tensorNames.movingVar].forEach((n, i) => keep(n(layer.name), weights[i]));
        break;
      }
      case "Activation":
        nodes.push({ op: relu() ? "relu" : "identity", name: layer.name, inputs });
        break;
      case "ReLU":
        if (c.maxValue != null || (c.threshold ?? 0) !== 0 || (c.negativeSlope ?? 0) !== 0) throw fail(file, layer, "is a clipped, thresholded or leaky ReLU; only the plain one maps");
        nodes.push({ op: "relu", name: layer.name, inputs });
        break;
      case "MaxPooling2D":
      case "AveragePooling2D": {
        channelsLast();
        if (c.padding !== "valid") throw fail(file, layer, `has padding ${JSON.stringify(c.padding)}; prunebench pools with 'valid' padding`);
        const size = square(file, layer, "pool size", c.poolSize);
        nodes.push({ op: cls === "MaxPooling2D" ? "maxPool" : "avgPool", name: layer.name, inputs, size, stride: square(file, layer, "strides", c.strides ?? size) });
        break;
      }
      case "GlobalAveragePooling2D":
        channelsLast();
        if (c.keepdims === true) throw fail(file, layer, "keeps the spatial dimensions (keepdims)");
        nodes.push({ op: "globalAvgPool", name: layer.name, inputs });
        break;
      case "Flatten":
        channelsLast();
        nodes.push({ op: "flatten", name: layer.name, inputs });
        break;
      case "Dropout":
        // Dropout is the identity at inference; prunebench's training has its own regularization settings.
        nodes.push({ op: "identity", name: layer.name, inputs });
        break;
      case "Add":
        nodes.push({ op: "add", name: layer.name, inputs });
        break;
      case "ZeroPadding2D": {
        const p = c.padding as number[][];
        const flat = p.flat();
        if (flat.some((v) => v !== flat[0])) throw fail(file, layer, `pads ${JSON.stringify(p)}; only the same padding on every side maps (folded into the convolution after it)`);
        nodes.push({ op: "pad", name: layer.name, inputs, pad: flat[0] });
        break;
      }
      default:
        throw fail(file, layer, "has no prunebench equivalent");
    }
  }
  foldPadding(file, nodes, model);
  const widths = sharedWidths(nodes, inputName);
  const numClasses = outShape[1];
  const inputShape = inShape.slice(1) as [number, number, number];
  return defineArch({
    name,
    summary: `tfjs LayersModel ${file}: ${nodes.filter((n) => n.op === "conv" || n.op === "depthwise" || n.op === "dense").length} weighted layers`,
    citation: `imported from ${file}`,
    inputShape,
    numClasses,
    widths: widths.defaults,
    initialWeights: initial,
    build<V>(ops: Ops<V>, x: V, _numClasses: number, w: WidthReader): V {
      const values = new Map<string, V>([[inputName, x]]);
      const at = (n: string) => values.get(n)!;
      const size = (width: string | number) => (typeof width === "number" ? width : w.n(widths.key.get(width)!));
      for (const node of nodes) {
        const [a] = node.inputs.map(at);
        let y: V;
        switch (node.op) {
          case "conv":
            y = ops.conv(node.name, a, { filters: size(node.width), kernel: node.kernel, stride: node.stride, padding: node.padding, bias: node.bias, ...(node.relu ? { activation: "relu" } : {}) });
            break;
          case "depthwise":
            y = ops.depthwiseConv(node.name, a, { kernel: node.kernel, stride: node.stride, padding: node.padding, bias: node.bias });
            if (node.relu) y = ops.relu(y);
            break;
          case "dense":
            y = ops.dense(node.name, a, { units: size(node.width), bias: node.bias, ...(node.relu ? { activation: "relu" } : {}) });
            break;
          case "batchNorm": y = ops.batchNorm(node.name, a, { epsilon: node.epsilon }); break;
          case "relu": y = ops.relu(a); break;
          case "maxPool": y = ops.maxPool(a, node.size, node.stride); break;
          case "avgPool":
            if (!ops.avgPool) throw new Error(`${name}: layer ${node.name} is an average pool, which this interpreter of the architecture does not implement`);
            y = ops.avgPool(a, node.size, node.stride);
            break;
          case "globalAvgPool": y = ops.globalAvgPool(a); break;
          case "flatten": y = ops.flatten(a); break;
          case "add": y = node.inputs.slice(1).reduce<V>((s, b) => ops.add(s, at(b)), a); break;
          case "identity": case "pad": y = a; break;
        }
        values.set(node.name, y);
      }
      return at(outputName);
    },
  });
}

/** A ZeroPadding2D feeding only 'valid' convolutions becomes their explicit pad (the pad node passes its input on). */
function foldPadding(file: string, nodes: Node[], model: tfl.LayersModel): void {
  for (const pad of nodes) {
    if (pad.op !== "pad") continue;
    const readers = nodes.filter((n) => n.inputs.includes(pad.name));
    const layer = model.getLayer(pad.name);
    if (readers.length === 0 || readers.some((r) => (r.op !== "conv" && r.op !== "depthwise") || r.padding !== "valid")) {
      throw fail(file, layer, "pads the input of something other than a 'valid' Conv2D or DepthwiseConv2D (only there does it fold into the convolution's padding)");
    }
    for (const r of readers) if (r.op === "conv" || r.op === "depthwise") r.padding = pad.pad;
  }
}

/**
 * One width per channel stream: a Conv2D or Dense starts one; batch norm, ReLU, pooling, a depthwise conv (channel
 * preserving), flatten and padding pass it on; an Add joins its inputs' streams (union-find), so the layers of a
 * residual stream share the width named after the first of them. A stream added to the network input keeps its
 * size (no width): the input's channels cannot be removed.
 */
function sharedWidths(nodes: readonly Node[], inputName: string): { defaults: Widths; key: Map<string, string> } {
  const FIXED = "";
  const stream = new Map<string, string>([[inputName, FIXED]]);
  const parent = new Map<string, string>([[FIXED, FIXED]]);
  const find = (k: string): string => {
    const p = parent.get(k)!;
    if (p === k) return k;
    const r = find(p);
    parent.set(k, r);
    return r;
  };
  // Union with FIXED wins: the joined stream has no width.
  const union = (a: string, b: string) => {
    const [ra, rb] = [find(a), find(b)];
    if (ra === rb) return;
    if (rb === FIXED) parent.set(ra, rb);
    else parent.set(rb, ra);
  };
  for (const n of nodes) {
    if ((n.op === "conv" || n.op === "dense") && typeof n.width === "string") {
      parent.set(n.name, n.name);
      stream.set(n.name, n.name);
    } else if ((n.op === "conv" || n.op === "dense")) {
      stream.set(n.name, FIXED);
    } else if (n.op === "add") {
      const streams = n.inputs.map((i) => stream.get(i) ?? FIXED);
      for (const s of streams.slice(1)) union(streams[0], s);
      stream.set(n.name, streams[0]);
    } else {
      stream.set(n.name, stream.get(n.inputs[0]) ?? FIXED);
    }
  }
  const key = new Map<string, string>();
  const defaults: Record<string, number> = {};
  for (const n of nodes) {
    if ((n.op !== "conv" && n.op !== "dense") || typeof n.width !== "string") continue;
    const root = find(n.name);
    if (root === FIXED) {
      n.width = n.units;
      continue;
    }
    key.set(n.name, root);
    defaults[root] = n.units;
  }
  return { defaults, key };
}
