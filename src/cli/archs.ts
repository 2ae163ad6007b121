import { DATASETS } from "../../datasets/index.js";
import { resolve } from "node:path";
import { ARCHS, layerTable, loadLayersModelArch, type ArchDef } from "../archs/index.js";
import { emit, textTable } from "./output.js";

export default async function archs(o: { json?: boolean; layersModel?: string }): Promise<number> {
  // An import error names the file, the layer and its class (exit 2, as in a grid).
  const list: readonly ArchDef[] = o.layersModel ? [await loadLayersModelArch(resolve(o.layersModel))] : ARCHS;
  const shapes = new Map<string, { inputShape: [number, number, number]; numClasses: number; datasets: string[] }>();
  for (const d of DATASETS) {
    const k = `${d.inputShape.join("x")}/${d.numClasses}`;
    const entry = shapes.get(k) ?? { inputShape: d.inputShape, numClasses: d.numClasses, datasets: [] };
    entry.datasets.push(d.name);
    shapes.set(k, entry);
  }
  // An architecture built for one input shape is listed only with the datasets that have it (the grid refuses the others).
  const fits = (a: ArchDef, s: { inputShape: number[] }) => a.inputShape === null || a.inputShape.join("x") === s.inputShape.join("x");
  const rows = list.flatMap((a) => [...shapes.values()].filter((s) => fits(a, s)).map((s) => {
    const layers = layerTable(a, s.inputShape, s.numClasses);
    return {
      arch: a.name, summary: a.summary, citation: a.citation, inputShape: s.inputShape, numClasses: s.numClasses, datasets: s.datasets,
      params: layers.reduce((n, l) => n + l.params, 0), macs: layers.reduce((n, l) => n + l.macs, 0), layers: layers.length,
    };
  }));
  if (o.json) emit(JSON.stringify(rows, null, 2));
  else emit(textTable(["arch", "input", "classes", "params", "MACs", "layers", "datasets"], rows.map((r) => [
    r.arch, r.inputShape.join("x"), String(r.numClasses), r.params.toLocaleString("en-US"), r.macs.toLocaleString("en-US"), String(r.layers), r.datasets.join(", "),
  ])) + "MACs = multiply-accumulates of conv, depthwise and dense layers (and attention's two matmuls) for one input; BN, ReLU,\n" +
    "pooling and residual adds count 0 (FLOPs as most pruning papers count them; Han 2015 counts 2x).\n");
  return 0;
}
