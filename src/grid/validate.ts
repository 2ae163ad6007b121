/**
 * Located YAML tree -> validated, fully normalized Grid, one block at a time (each block's reader is in its own file).
 * Validation keeps going after an error wherever the rest of the file can still be read, so one run shows them all;
 * blocks are read in this order because errors on the same line are reported in the order they were found.
 */
import { readAblations } from "./blocks/ablations.js";
import { checkArchDatasetPairs, readArchs, readDatasets } from "./blocks/archs-datasets.js";
import { Checker, TopLevel } from "./checker.js";
import { readData } from "./blocks/data.js";
import { readEval } from "./blocks/eval.js";
import { readMethodParams } from "./blocks/hyper-params.js";
import { readMethods } from "./blocks/methods.js";
import { checkLayerNameParams } from "./blocks/layer-names.js";
import { readModel } from "./blocks/model.js";
import { readDescription, readName } from "./blocks/name.js";
import type { LNode } from "./parse.js";
import { readPrunable } from "./blocks/prunable.js";
import { readReference } from "./blocks/reference.js";
import { readSeeds } from "./blocks/seeds.js";
import { checkTargetGranularity, readTargets } from "./blocks/targets.js";
import { readTraining } from "./blocks/training.js";
import type { GridError } from "./types.js";
import type { Catalog, Grid } from "../core/types.js";

export const TOP_LEVEL_KEYS = [
  "name",
  "description",
  "methods",
  "archs",
  "datasets",
  "sparsities",
  "compressions",
  "macs_reductions",
  "seeds",
  "ablations",
  "model",
  "pretrain",
  "finetune",
  "data",
  "prunable",
  "eval",
  "method_params",
  "reference",
] as const;

/** Where things sit in the file, for checks made after validation (an unreachable compression) to point at. */
export interface GridLines {
  /** Line of each entry of grid.targets, in the same order. */
  targets: number[];
  /** Line of each entry of grid.methods, in the same order. */
  methods: number[];
  /** Line of each entry of grid.archs, in the same order (imported architectures' errors point there). */
  archs?: number[];
}

/** Validate a located document against the grid schema and the catalog. */
export function validateGrid(root: LNode | null, file: string, catalog: Catalog): { grid: Grid | null; errors: GridError[]; lines?: GridLines } {
  const c = new Checker(file, catalog);
  if (root === null) {
    c.error(1, "", `the grid file is empty; expected a mapping with keys ${TOP_LEVEL_KEYS.join(", ")}`);
    return { grid: null, errors: c.errors };
  }
  const entries = c.map(root, "", TOP_LEVEL_KEYS, { what: "a mapping (the grid)" });
  if (entries === undefined) return { grid: null, errors: c.errors };
  const top = new TopLevel(c, entries, root.line);

  const name = readName(c, top);
  const description = readDescription(c, top);
  // method_params before the methods axis: its values are filled into the axis entries.
  const methodParams = readMethodParams(c, top);
  const methodsAxis = readMethods(c, top, methodParams.params);
  const methods = methodsAxis?.methods;
  const ablations = readAblations(c, top, methods, methodsAxis?.lines);
  const archFiles: Record<string, string> = {};
  const archs = readArchs(c, top, archFiles);
  if (methods && archs) checkLayerNameParams(c, top, methods, methodsAxis!.lines, archs);
  const datasets = readDatasets(c, top);
  checkArchDatasetPairs(c, top);
  const targets = readTargets(c, top);
  if (targets && methods) checkTargetGranularity(c, top, targets.targets, methods, methodsAxis!.lines);
  const seeds = readSeeds(c, top);
  const model = readModel(c, top);
  const { pretrain, finetune } = readTraining(c, top);
  const data = readData(c, top, datasets, finetune);
  const prunable = readPrunable(c, top);
  const evalConfig = readEval(c, top);
  const reference = readReference(c, top);

  if (
    c.errors.length > 0 ||
    name === undefined ||
    methods === undefined ||
    ablations === undefined ||
    !methodParams.ok ||
    archs === undefined ||
    datasets === undefined ||
    targets === undefined ||
    seeds === undefined ||
    reference === undefined
  ) {
    return { grid: null, errors: c.errors };
  }
  return {
    grid: { name, description, file, methods, ablations, archs, ...(Object.keys(archFiles).length > 0 ? { archFiles } : {}), datasets, targets: targets.targets, seeds, model, pretrain, finetune, data, prunable, eval: evalConfig, reference },
    errors: [],
    lines: { targets: targets.lines, methods: methodsAxis!.lines, archs: top.get("archs")?.kind === "seq" ? (top.get("archs") as { items: LNode[] }).items.map((n) => n.line) : [] },
  };
}
