/** What the grid validator may name: the three plug-in shelves, seen through their registries. */
import { DATASETS, datasetCatalog } from "../datasets/index.js";
import { methodCatalog } from "../methods/index.js";
import { ARCHS, layersModelArchName, layersModelHash } from "./archs/index.js";
import { channelGraph, channelLayerNames } from "./archs/graph.js";
import type { Catalog } from "./core/types.js";

export function catalog(): Catalog {
  const datasets: Catalog["datasets"] = datasetCatalog();
  for (const d of DATASETS) datasets[d.name] = { ...datasets[d.name], splitSizes: { ...d.splitSizes } };
  return {
    methods: methodCatalog(),
    archs: Object.fromEntries(ARCHS.map((a) => [a.name, { inputShape: a.inputShape, numClasses: a.numClasses, layerNames: () => layerNamesOf(a) }])),
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

/**
 * The layers whose output channels an arch's channel groups are made of: what a `layerNames` hyperparameter may list.
 * Traced on the arch's own input, or on a 28×28×1 one where it adapts to any (its layers are named the same on every input).
 */
function layerNamesOf(arch: (typeof ARCHS)[number]): string[] {
  return channelLayerNames(channelGraph(arch, arch.inputShape ?? [28, 28, 1], arch.numClasses ?? 10));
}
