/** The `data` block: validation split and subsets, the subsets checked against the grid's datasets. */
import { catalogEntry, isNull, type Checker, type Reader, type TopLevel } from "../checker.js";
import { DEFAULT_DATA } from "../defaults.js";
import { describe, type LNode } from "../parse.js";
import type { DataConfig } from "../../core/types.js";

/**
 * Data subsets smaller than this many images per class say nothing: a classifier trained on fewer than 10 examples of a
 * class is not worth pruning, and a top-1 measured on fewer moves in steps of more than one percentage point per
 * image (100 test images for 10 classes: 1 % per image).
 */
export const MIN_SUBSET_PER_CLASS = 10;

/** Subsets are checked against the datasets only when the datasets axis is valid (`datasetNames` given). */
export function readData(c: Checker, top: TopLevel, datasetNames: string[] | undefined): DataConfig {
  const subset: Reader<number | null> = (n, p) =>
    isNull(n) ? null : c.number(n, p, { integer: true, min: 1, noun: "null or an integer", hint: " (number of images)" });
  const data = c.block<DataConfig>(top.get("data"), "data", DEFAULT_DATA, {
    val_fraction: ["valFraction", (n, p) => c.number(n, p, { min: 0, max: 0.5 })],
    train_subset: ["trainSubset", subset],
    test_subset: ["testSubset", subset],
  });
  if (datasetNames !== undefined) checkSubsets(c, top.get("data"), data, datasetNames);
  return data;
}

/** The smallest and largest subset of `split` that every one of `datasetNames` can give, each with the reason. */
function subsetRange(c: Checker, data: DataConfig, datasetNames: string[], split: "train" | "test"): { min: number; minWhy: string; max: number; maxWhy: string } {
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
function checkSubsets(c: Checker, dataNode: LNode | undefined, data: DataConfig, datasetNames: string[]): void {
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
