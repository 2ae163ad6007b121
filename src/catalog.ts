/** What the grid validator may name: the three plug-in shelves, seen through their registries. */
import { datasetCatalog } from "../datasets/index.js";
import { methodCatalog } from "../methods/index.js";
import { ARCHS } from "./archs/index.js";
import type { Catalog } from "./grid/types.js";

export function catalog(): Catalog {
  return {
    methods: methodCatalog(),
    archs: Object.fromEntries(ARCHS.map((a) => [a.name, { inputShape: a.inputShape, numClasses: a.numClasses }])),
    datasets: datasetCatalog(),
  };
}
