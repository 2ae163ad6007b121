/** What the grid validator may name: the three plug-in shelves, seen through their registries. */
import { DATASETS, datasetCatalog } from "../datasets/index.js";
import { methodCatalog } from "../methods/index.js";
import { ARCHS, layersModelArchName, layersModelHash } from "./archs/index.js";
import type { Catalog } from "./core/types.js";

export function catalog(): Catalog {
  const datasets: Catalog["datasets"] = datasetCatalog();
  for (const d of DATASETS) datasets[d.name] = { ...datasets[d.name], splitSizes: { ...d.splitSizes } };
  return {
    methods: methodCatalog(),
    archs: Object.fromEntries(ARCHS.map((a) => [a.name, { inputShape: a.inputShape, numClasses: a.numClasses }])),
    datasets,
    layersModelName: (file) => {
      try {
        return { name: layersModelArchName(file, layersModelHash(file)) };
      } catch (e) {
        return { error: (e as Error).message };
      }
    },
  };
}
