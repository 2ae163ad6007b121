/**
 * `bench export-model`: one finished run's saved weights and masks (src/run/checkpoint.ts files) as a folder that
 * needs no prunebench to use:
 *
 *   model.json + weights.bin  a tfjs LayersModel (`tf.loadLayersModel`); a structured run's COMPACTED network (the
 *                             architecture rebuilt with the kept widths, as src/train/compact.ts builds it), an
 *                             unstructured run's masked network (dense shapes, pruned weights exactly 0)
 *   masks.json                the run's masks, per tensor of the un-compacted architecture (encoding below)
 *   plan.json                 structured: per channel group and per layer, which channels were removed;
 *                             unstructured: per tensor, its density
 *   metadata.json             the run (key, method, arch, dataset, target, seed), the stored accuracy, the input
 *                             preprocessing, the prunebench version; written last, it also marks the folder as an export
 *
 * A structured run's kept channels are read back from its masks (a removed unit is zero on every tensor that
 * produces it) and checked by rebuilding the masks from them: the export never guesses.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { getMethod } from "../../methods/index.js";
import { getDataset } from "../../datasets/index.js";
import { DatasetError } from "../../datasets/types.js";
import { channelGraph, compactWidths, widthPlan, type ChannelGraph, type UnitKeep } from "../archs/graph.js";
import { getArch, layerTable, type ArchDef, type LayerInfo } from "../archs/index.js";
import { tensorNames } from "../archs/ops.js";
import type { RunConfig } from "../core/types.js";
import { CODE_VERSION, PRUNEBENCH_VERSION } from "../core/version.js";
import { checkWritableFolder, isSqlite, PathError, sameFile, statIfAny } from "../io/paths.js";
import { channelMasks, gatherAxes, keepFromMasks, keptSlices } from "../prune/structured.js";
import { readCheckpoint } from "../run/checkpoint.js";
import { normalizationStats } from "../train/data.js";
import { buildLayersModel, ExportError, exportProblem, layersModelFiles, trainableParams, type NamedTensors } from "./layers-ops.js";

export { ExportError } from "./layers-ops.js";

export const EXPORT_FORMAT = "prunebench-model-export";
export const EXPORT_FILES = ["model.json", "weights.bin", "masks.json", "plan.json", "metadata.json"] as const;

export interface RunToExport {
  key: string;
  method: string;
  methodLabel: string;
  arch: string;
  dataset: string;
  targetKind: string;
  targetValue: number;
  seed: number;
  status: string;
  metrics: Record<string, number | null>;
  config: unknown;
  database: string;
  backend: string | null;
  /** The run's "pruned-weights" and "masks" checkpoint files, found and checked by the caller. */
  weightsPath: string;
  masksPath: string;
}

export interface ExportOptions {
  out: string;
  force?: boolean;
  /** Files never to replace (the results database). */
  inputs?: readonly string[];
  dataDir?: string;
}

export interface ExportSummary {
  out: string;
  form: "compacted" | "masked";
  files: string[];
  trainableParams: number;
  storedTop1: number | null;
}

type Tensor = { shape: number[]; data: Float32Array };

export async function exportRun(run: RunToExport, options: ExportOptions): Promise<ExportSummary> {
  const arch = known(() => getArch(run.arch), `run ${run.key}`);
  const dataset = getDataset(run.dataset);
  const inputShape = dataset.inputShape;
  const numClasses = dataset.numClasses;
  // The cheap refusals first: an architecture that cannot be expressed, an output folder that must not be written.
  const problem = exportProblem(arch, inputShape, numClasses);
  if (problem) throw problem;
  checkExportFolder(options.out, options);
  const method = known(() => getMethod(run.method), `run ${run.key}`);
  const structured = method.granularity === "channel";

  const weights = readCheckpoint(run.weightsPath).tensors;
  const masks = readCheckpoint(run.masksPath).tensors;
  const layers = layerTable(arch, inputShape, numClasses);
  checkFits(run, arch, layers, weights);
  for (const [name, m] of masks) {
    const w = weights.get(name);
    if (!w || w.shape.join() !== m.shape.join()) throw new ExportError(`run ${run.key}: its masks file has ${name} [${m.shape}], which its weights ${w ? `hold as [${w.shape}]` : "do not have"}`);
  }

  let finalArch: ArchDef = arch;
  let tensors: NamedTensors;
  let plan: Record<string, unknown>;
  if (structured) {
    const graph = channelGraph(arch, inputShape, numClasses);
    const keep = keptUnits(run, graph, weights, masks);
    const wplan = widthPlan(arch, graph, inputShape, numClasses);
    const widths = known(() => compactWidths(wplan, keep), `run ${run.key}`);
    finalArch = arch.withWidths(widths);
    const slices = keptSlices(graph, keep);
    tensors = new Map([...weights].map(([name, t]): [string, Tensor] => {
      const { values, shape } = gatherAxes(t.data, t.shape, slices.get(name) ?? new Map());
      return [name, { shape, data: values }];
    }));
    plan = structuredPlan(graph, keep, layers, widths);
  } else {
    // The saved weights are already 0 where masked (hard masking); applying the masks again makes that a guarantee.
    tensors = new Map([...weights].map(([name, t]): [string, Tensor] => {
      const m = masks.get(name);
      return [name, m ? { shape: t.shape, data: t.data.map((v, i) => (m.data[i] === 0 ? 0 : v)) } : t];
    }));
    plan = unstructuredPlan(layers, masks);
  }

  const model = buildLayersModel(finalArch, inputShape, numClasses, tensors);
  let files: Awaited<ReturnType<typeof layersModelFiles>>;
  let params: number;
  let allParams: number;
  try {
    files = await layersModelFiles(model);
    params = trainableParams(model);
    allParams = model.countParams();
  } finally {
    model.dispose();
  }
  const form = structured ? "compacted" : "masked";
  const metadata = {
    format: EXPORT_FORMAT, formatVersion: 1, prunebench: PRUNEBENCH_VERSION, codeVersion: CODE_VERSION, exportedAt: new Date().toISOString(),
    run: {
      key: run.key, method: run.method, methodLabel: run.methodLabel, methodParams: (run.config as RunConfig | null)?.method?.params ?? null,
      granularity: structured ? "channel" : "weight", arch: run.arch, dataset: run.dataset, target: { kind: run.targetKind, value: run.targetValue },
      seed: run.seed, backend: run.backend, database: run.database,
    },
    form,
    model: {
      files: { topology: "model.json", weights: "weights.bin" },
      input: await inputDescription(run, inputShape, options.dataDir),
      output: `logits over ${numClasses} classes (no softmax): the predicted class is the argmax`,
      trainableParams: params, nonTrainableParams: allParams - params,
      widths: finalArch.widths,
    },
    stored: pick(run.metrics, [
      "top1_after", "top5_after", "loss_after", "top1_dense", "params_total", "params_nonzero", "params_compacted", "macs_dense",
      "macs_effective", "macs_compacted", "compression_ratio", "sparsity", "channel_sparsity", "theoretical_speedup",
    ]),
    testSplit: {
      images: (run.config as RunConfig | null)?.data?.testSubset ?? "all",
      note: "top1_after was measured on the dataset's test split (a class-balanced subset when `images` is a number; see prunebench's src/train/data.ts)",
    },
    masks: MASKS_ENCODING,
  };

  const out: Array<[string, string | Uint8Array]> = [
    ["weights.bin", files.weights],
    ["model.json", JSON.stringify(files.modelJson)],
    ["masks.json", JSON.stringify(masksJson(masks), null, 1)],
    ["plan.json", JSON.stringify({ format: "prunebench-pruning-plan", run: run.key, ...plan }, null, 1)],
    ["metadata.json", `${JSON.stringify(metadata, null, 2)}\n`],
  ];
  if (!statIfAny(options.out)) mkdirSync(options.out);
  for (const [file, content] of out) writeAtomically(join(options.out, file), content);
  return { out: options.out, form, files: out.map(([f]) => join(options.out, f)), trainableParams: params, storedTop1: run.metrics.top1_after ?? null };
}

/** An error of a lookup (unknown architecture or method: a database from another version) as an ExportError. */
function known<T>(f: () => T, where: string): T {
  try {
    return f();
  } catch (e) {
    throw new ExportError(`${where}: ${(e as Error).message}`);
  }
}

function pick(metrics: Record<string, number | null>, names: string[]): Record<string, number | null> {
  return Object.fromEntries(names.filter((n) => n in metrics).map((n) => [n, metrics[n]]));
}

/** The tensors the architecture reads, with the shapes its layer table gives them. */
function expectedShapes(layers: readonly LayerInfo[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const l of layers) {
    if (l.kind === "conv" || l.kind === "dense" || l.kind === "depthwise") {
      out.set(tensorNames.kernel(l.name), l.weightShape);
      const channels = l.kind === "depthwise" ? l.weightShape[2] : l.weightShape[l.weightShape.length - 1];
      if (l.hasBias) out.set(tensorNames.bias(l.name), [channels]);
    } else if (l.kind === "batchnorm") {
      for (const name of [tensorNames.gamma, tensorNames.beta, tensorNames.movingMean, tensorNames.movingVar]) out.set(name(l.name), l.weightShape);
    }
  }
  return out;
}

function checkFits(run: RunToExport, arch: ArchDef, layers: readonly LayerInfo[], weights: ReadonlyMap<string, Tensor>): void {
  for (const [name, shape] of expectedShapes(layers)) {
    const t = weights.get(name);
    if (!t) throw new ExportError(`run ${run.key}: its saved weights (${run.weightsPath}) have no tensor ${name}, which ${arch.name} on ${run.dataset} needs`);
    if (t.shape.join() !== shape.join()) throw new ExportError(`run ${run.key}: tensor ${name} is saved as [${t.shape}], ${arch.name} on ${run.dataset} has [${shape}]`);
  }
}

/**
 * Per channel group, which units the run kept: a removed unit's mask is 0 on every tensor producing it (its filter,
 * bias, BN γ and β: channelMasks), a kept one's is not. The masks rebuilt from the answer must be the stored ones.
 */
function keptUnits(run: RunToExport, graph: ChannelGraph, weights: ReadonlyMap<string, Tensor>, masks: ReadonlyMap<string, Tensor>): UnitKeep {
  const keep = keepFromMasks(graph, masks);
  const shapes = new Map([...weights].map(([n, t]) => [n, t.shape]));
  const rebuilt = channelMasks(graph, keep, shapes);
  const names = new Set([...rebuilt.keys(), ...masks.keys()]);
  for (const name of names) {
    const [a, b] = [rebuilt.get(name), masks.get(name)?.data];
    const same = a && b && a.length === b.length && a.every((v, i) => v === (b[i] === 0 ? 0 : 1));
    if (!same) {
      throw new ExportError(`run ${run.key} is a channel-pruning run, but its masks are not whole channels of ${run.arch}'s channel groups (tensor ${name}${!a ? " is masked but no removed channel covers it" : !b ? " has no mask although a removed channel covers it" : " differs"}); it cannot be compacted`);
    }
  }
  return keep;
}

function removed(keep: readonly boolean[]): number[] {
  return keep.flatMap((k, u) => (k ? [] : [u]));
}

/** Which channels of which layers were removed, on the dense architecture's indices. */
function structuredPlan(graph: ChannelGraph, keep: UnitKeep, layers: readonly LayerInfo[], widths: Record<string, unknown>): Record<string, unknown> {
  const outAxis = (l: LayerInfo) => (l.kind === "depthwise" ? 2 : l.kind === "batchnorm" ? 0 : l.weightShape.length - 1);
  const perLayer = new Map<string, { outputs: number[]; inputs: number[] }>();
  graph.groups.forEach((g, gi) => {
    for (const m of g.members) {
      if (!(m.role === "kernel" || (m.role === "gamma" && m.layerKind === "batchnorm"))) continue;
      const entry = perLayer.get(m.layer) ?? { outputs: [], inputs: [] };
      const gone = m.indices.flatMap((idx, u) => (keep[gi][u] ? [] : idx));
      (m.side === "out" ? entry.outputs : entry.inputs).push(...gone);
      perLayer.set(m.layer, entry);
    }
  });
  return {
    kind: "structured",
    note: "indices are those of the un-compacted architecture; the exported model keeps the other channels in their order. " +
      "A dense layer after a flatten lists input features (NHWC order), not channels.",
    widths,
    groups: graph.groups.map((g, gi) => ({
      name: g.name, producers: g.producers, size: g.size, kept: keep[gi].filter(Boolean).length, removed: removed(keep[gi]),
      ...(g.protectedBy ? { protectedBy: g.protectedBy } : {}),
    })),
    layers: layers.filter((l) => ["conv", "depthwise", "dense", "batchnorm"].includes(l.kind)).map((l) => {
      const e = perLayer.get(l.name) ?? { outputs: [], inputs: [] };
      const outputs = [...new Set(e.outputs)].sort((a, b) => a - b);
      const inputs = [...new Set(e.inputs)].sort((a, b) => a - b);
      const before = l.weightShape[outAxis(l)];
      const row: Record<string, unknown> = { layer: l.name, kind: l.kind, outputs: { before, after: before - outputs.length, removed: outputs } };
      if (l.kind === "conv" || l.kind === "dense") {
        const inBefore = l.weightShape[l.weightShape.length - 2];
        row.inputs = { before: inBefore, after: inBefore - inputs.length, removed: inputs };
      }
      return row;
    }),
  };
}

function unstructuredPlan(layers: readonly LayerInfo[], masks: ReadonlyMap<string, Tensor>): Record<string, unknown> {
  let size = 0;
  let kept = 0;
  const tensors = [...masks].map(([name, m]) => {
    const k = m.data.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0);
    size += m.data.length;
    kept += k;
    const layer = layers.find((l) => name.startsWith(`${l.name}/`));
    return { tensor: name, layer: layer?.name ?? null, kind: layer?.kind ?? null, shape: m.shape, size: m.data.length, kept: k, density: k / m.data.length };
  });
  return {
    kind: "unstructured",
    note: "weights pruned one by one: the exported model has the dense shapes with the pruned weights exactly 0. Tensors not listed were not pruned.",
    masked: { size, kept, density: size > 0 ? kept / size : 1 },
    tensors,
  };
}

export const MASKS_ENCODING = "masks.json: per tensor (prunebench names, shapes of the un-compacted architecture), the mask flattened in row-major " +
  "(C) order over `shape`, 1 = kept, 0 = removed, in one of two encodings, whichever is shorter: `runs`, lengths of alternating runs " +
  "starting with a run of 0s (a leading 0 when the first entry is kept), summing to `size`; or `bits`, base64 of the bits packed 8 to a " +
  "byte, first entry in the most significant bit (numpy.unpackbits(...)[:size].reshape(shape)). Tensors not listed have no mask.";

/** One mask, encoded as MASKS_ENCODING says. */
export function encodeMask(values: ArrayLike<number>): { runs: number[] } | { bits: string } {
  const runs: number[] = [];
  let current = 0;
  let count = 0;
  const bytes = new Uint8Array(Math.ceil(values.length / 8));
  for (let i = 0; i < values.length; i++) {
    const bit = values[i] !== 0 ? 1 : 0;
    if (bit) bytes[i >> 3] |= 0x80 >> (i & 7);
    if (bit === current) count++;
    else {
      runs.push(count);
      current = bit;
      count = 1;
    }
  }
  runs.push(count);
  const bits = Buffer.from(bytes).toString("base64");
  return JSON.stringify(runs).length <= bits.length + 2 ? { runs } : { bits };
}

/** The inverse of encodeMask: 0/1 per entry. */
export function decodeMask(entry: { size: number; runs?: number[]; bits?: string }): Uint8Array {
  const out = new Uint8Array(entry.size);
  if (entry.runs) {
    let i = 0;
    entry.runs.forEach((n, k) => {
      if (k % 2 === 1) out.fill(1, i, i + n);
      i += n;
    });
    if (i !== entry.size) throw new Error(`mask runs sum to ${i}, not ${entry.size}`);
  } else if (entry.bits !== undefined) {
    const bytes = Buffer.from(entry.bits, "base64");
    for (let i = 0; i < entry.size; i++) out[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
  } else {
    throw new Error("mask has neither runs nor bits");
  }
  return out;
}

function masksJson(masks: ReadonlyMap<string, Tensor>): Record<string, unknown> {
  return {
    format: "prunebench-masks", encoding: MASKS_ENCODING,
    tensors: Object.fromEntries([...masks].map(([name, m]) => [name, {
      shape: m.shape, size: m.data.length, kept: m.data.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0), ...encodeMask(m.data),
    }])),
  };
}

/** How to turn an image into the model's input: the run's normalization, with its numbers when they can be known. */
async function inputDescription(run: RunToExport, inputShape: [number, number, number], dataDir?: string): Promise<Record<string, unknown>> {
  const normalize = (run.config as RunConfig | null)?.data?.normalize ?? "dataset";
  const base = {
    shape: [null, ...inputShape], layout: "NHWC, float32",
    preprocessing: "x = (pixel / 255 - mean[c]) / std[c] per channel c, pixels 0..255",
    normalize,
  };
  if (normalize !== "dataset") return { ...base, ...normalizationStats({ mean: [], std: [], inputShape }, normalize) };
  try {
    const ds = await getDataset(run.dataset).load({ dataDir, download: false });
    return { ...base, ...normalizationStats(ds, normalize), classNames: ds.classNames };
  } catch (e) {
    if (!(e instanceof DatasetError)) throw e;
    return { ...base, mean: null, std: null, note: `the mean and std of ${run.dataset}'s training pixels: its files were not found here (${e.message.split("\n")[0]}); pass --data-dir to record them` };
  }
}

/** A previous export: its metadata.json says so. */
function isExport(dir: string): boolean {
  try {
    return JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"))?.format === EXPORT_FORMAT;
  } catch {
    return false;
  }
}

/**
 * Refuse, before any work, an output folder that must not be written: a file (the results database above all), a
 * folder holding other things than a previous export (unless forced), and, even when forced, a folder where one of
 * the export's files would replace a database or a folder.
 */
export function checkExportFolder(out: string, options: Pick<ExportOptions, "force" | "inputs">): void {
  if (out.trim() === "") throw new PathError("-o is empty; give a folder for the exported model");
  const stat = statIfAny(out);
  if (!stat) {
    const parent = dirname(resolve(out));
    if (!statIfAny(parent)) throw new PathError(`-o ${out}: folder ${dirname(out)} does not exist; create it first`);
    checkWritableFolder(parent, `-o ${out}: its folder`);
    return;
  }
  if (!stat.isDirectory()) {
    if ((options.inputs ?? []).some((i) => sameFile(out, i))) throw new PathError(`-o ${out} is the results database this command reads; give a folder for the export`);
    throw new PathError(`-o ${out} exists and is ${stat.isFile() && isSqlite(out) ? "a SQLite database" : "not a folder"}: the export writes a folder (${EXPORT_FILES.join(", ")}); give a new or empty folder`);
  }
  checkWritableFolder(out, "-o");
  for (const file of EXPORT_FILES) {
    const path = join(out, file);
    const s = statIfAny(path);
    if (!s) continue;
    if (s.isDirectory()) throw new PathError(`-o ${out}: ${path} is a folder; the export would write a file there`);
    if ((options.inputs ?? []).some((i) => sameFile(path, i)) || (s.isFile() && isSqlite(path))) {
      throw new PathError(`-o ${out}: ${path} is a SQLite database; an export never replaces one, even with --force`);
    }
  }
  const entries = readdirSync(out).filter((e) => !e.startsWith(".") || !e.includes(".tmp-"));
  if (entries.length === 0 || isExport(out) || options.force) return;
  const listed = entries.slice(0, 5).join(", ") + (entries.length > 5 ? `, … (${entries.length} entries)` : "");
  throw new PathError(`-o ${out} is a folder that holds other things than a previous export (${listed}): refusing to write into it; give a new or empty folder, or pass --force (${EXPORT_FILES.join(", ")} would be replaced, nothing else touched)`);
}

/** Through a temporary file in the same folder, renamed into place: a failed write leaves the old file whole. */
function writeAtomically(path: string, content: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    writeFileSync(tmp, content);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new PathError(`cannot write ${path}: ${err.code === "ENOSPC" ? "no space left on the device" : err.message}`);
  }
}

/** sha256 of a file, hex: an artifact must be the file the run recorded. */
export function fileSha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}
