/**
 * The `data` block: validation split, subsets (checked against the grid's datasets), input normalisation and
 * training-batch augmentation.
 */
import { catalogEntry, entryIn, isNull, join, type Checker, type Reader, type TopLevel } from "../checker.js";
import { DEFAULT_DATA } from "../defaults.js";
import { describe, type LNode } from "../parse.js";
import { unknownNameMessage } from "../suggest.js";
import type { AugmentName, FinetuneConfig, GridDataConfig, Normalization } from "../../core/types.js";

const NORMALIZE_NAMES = ["dataset", "none"] as const;
const NORMALIZE_STATS = "or {mean: [...], std: [...]} with one value per channel on the [0, 1] pixel scale";
export const AUGMENT_CHOICES: readonly (AugmentName | "auto")[] = ["auto", "none", "crop-flip"];

/**
 * Data subsets smaller than this many images per class say nothing: a classifier trained on fewer than 10 examples of a
 * class is not worth pruning, and a top-1 measured on fewer moves in steps of more than one percentage point per
 * image (100 test images for 10 classes: 1 % per image).
 */
export const MIN_SUBSET_PER_CLASS = 10;

/**
 * Subsets and per-channel statistics are checked against the datasets only when the datasets axis is valid
 * (`datasetNames` given); `val_fraction: 0` against the fine-tuning's model selection.
 */
export function readData(c: Checker, top: TopLevel, datasetNames: string[] | undefined, finetune: FinetuneConfig): GridDataConfig {
  const subset: Reader<number | null> = (n, p) =>
    isNull(n) ? null : c.number(n, p, { integer: true, min: 1, noun: "null or an integer", hint: " (number of images)" });
  const data = c.block<GridDataConfig>(top.get("data"), "data", DEFAULT_DATA, {
    val_fraction: ["valFraction", (n, p) => c.number(n, p, { min: 0, max: 0.5 })],
    train_subset: ["trainSubset", subset],
    test_subset: ["testSubset", subset],
    normalize: ["normalize", (n, p) => readNormalization(c, n, p)],
    augment: ["augment", (n, p) => c.choice(n, p, "augmentation", AUGMENT_CHOICES)],
  });
  if (datasetNames !== undefined) {
    checkSubsets(c, top.get("data"), data, datasetNames);
    checkChannels(c, top.get("data"), data.normalize, datasetNames);
  }
  checkValidationSplit(c, top, data, finetune);
  return data;
}

function readNormalization(c: Checker, node: LNode, path: string): Normalization | undefined {
  if (node.kind === "scalar" && typeof node.value === "string") {
    if ((NORMALIZE_NAMES as readonly string[]).includes(node.value)) return node.value as Normalization;
    c.error(node.line, path, `${unknownNameMessage("normalization", node.value, NORMALIZE_NAMES)}, ${NORMALIZE_STATS}`);
    return undefined;
  }
  if (node.kind !== "map") {
    c.error(node.line, path, `expected ${NORMALIZE_NAMES.join(" or ")}, ${NORMALIZE_STATS}; got ${describe(node)}`);
    return undefined;
  }
  const m = c.map(node, path, ["mean", "std"]);
  if (m === undefined) return undefined;
  const list = (key: "mean" | "std"): number[] | undefined => {
    const e = m.get(key);
    if (e === undefined) {
      c.missing(node.line, join(path, key), key, " (one value per channel)");
      return undefined;
    }
    const items = c.list(e.value, join(path, key), key === "mean" ? "per-channel means" : "per-channel standard deviations");
    if (items === undefined) return undefined;
    const spec = key === "mean" ? { noun: "a mean" } : { noun: "a standard deviation", min: 0, minExclusive: true };
    const values = items.map((item, i) => c.number(item, `${join(path, key)}[${i}]`, spec));
    return values.every((v) => v !== undefined) ? (values as number[]) : undefined;
  };
  const mean = list("mean");
  const std = list("std");
  if (mean === undefined || std === undefined) return undefined;
  if (mean.length !== std.length) {
    c.error(m.get("std")!.value.line, join(path, "std"), `std has ${std.length} values and mean ${mean.length}: give one of each per channel`);
    return undefined;
  }
  return { mean, std };
}

/** Given statistics must have one value per channel of every dataset they are applied to. */
function checkChannels(c: Checker, dataNode: LNode | undefined, normalize: Normalization, datasetNames: string[]): void {
  if (typeof normalize === "string") return;
  const entry = entryIn(dataNode, "normalize")!;
  for (const name of datasetNames) {
    const ds = catalogEntry(c.catalog.datasets, name);
    if (!ds || ds.inputShape[2] === normalize.mean.length) continue;
    c.error(entry.value.line, "data.normalize", `mean and std have ${normalize.mean.length} values, but dataset "${name}" has ${ds.inputShape[2]} channels; give one value per channel`);
  }
}

/** Without a validation split there is nothing to select the fine-tuning epoch on: say so instead of silently keeping the last. */
function checkValidationSplit(c: Checker, top: TopLevel, data: GridDataConfig, finetune: FinetuneConfig): void {
  const entry = entryIn(top.get("data"), "val_fraction");
  if (entry === undefined || data.valFraction !== 0 || finetune.select !== "best-val") return;
  const select = entryIn(top.get("finetune"), "select");
  const how = select === undefined ? "the default" : `line ${select.value.line}`;
  c.error(entry.value.line, "data.val_fraction", `0 leaves no validation split, but finetune.select is best-val (${how}), which selects the fine-tuning epoch on it; set finetune.select: final, or val_fraction in (0, 0.5]`);
}

/** The smallest and largest subset of `split` that every one of `datasetNames` can give, each with the reason. */
function subsetRange(c: Checker, data: GridDataConfig, datasetNames: string[], split: "train" | "test"): { min: number; minWhy: string; max: number; maxWhy: string } {
  let min = 0;
  let minWhy = "";
  let max = Infinity;
  let maxWhy = "";
  for (const name of datasetNames) {
    const ds = catalogEntry(c.catalog.datasets, name);
    if (!ds) continue; // an unknown dataset: already reported on its own line
    if (MIN_SUBSET_PER_CLASS * ds.numClasses > min) {
      min = MIN_SUBSET_PER_CLASS * ds.numClasses;
      minWhy = `at least ${MIN_SUBSET_PER_CLASS} images per class (${min} for the ${ds.numClasses} classes of "${name}")`;
    }
    if (ds.splitSizes === undefined) continue;
    const total = ds.splitSizes[split];
    // data.ts takes the training subset after val_fraction is held out.
    const available = split === "train" ? total - Math.round(total * data.valFraction) : total;
    if (available < max) {
      max = available;
      maxWhy =
        split === "train"
          ? `dataset "${name}" has ${available} training images once val_fraction ${data.valFraction} holds out ${total - available} of its ${total} for validation`
          : `dataset "${name}" has ${total} test images`;
    }
  }
  return { min, minWhy, max, maxWhy };
}

/** A subset outside what every dataset can give would be clamped without a word: refuse it with the valid range. */
function checkSubsets(c: Checker, dataNode: LNode | undefined, data: GridDataConfig, datasetNames: string[]): void {
  if (dataNode?.kind !== "map") return;
  for (const [key, value, split] of [
    ["train_subset", data.trainSubset, "train"],
    ["test_subset", data.testSubset, "test"],
  ] as const) {
    const entry = dataNode.entries.find((e) => e.key === key);
    if (value === null || entry === undefined) continue;
    const { min, minWhy, max, maxWhy } = subsetRange(c, data, datasetNames, split);
    const valid = `valid: null (all images) or an integer in [${min}, ${Number.isFinite(max) ? max : "∞"}]`;
    if (value < min) c.error(entry.value.line, `data.${key}`, `${describe(entry.value)} is too few images: ${minWhy}; ${valid}`);
    else if (value > max) c.error(entry.value.line, `data.${key}`, `${describe(entry.value)} is more images than there are: ${maxWhy}; ${valid}`);
  }
}
