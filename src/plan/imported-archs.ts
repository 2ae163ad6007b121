/**
 * The grid's imported architectures (`archs: [{layers_model: path}]`), loaded before anything is planned: the grid
 * reader (synchronous, free of tfjs) only names them by their files' hash; here tfjs reads each one, its layers are
 * mapped (an unsupported layer is a grid error at the entry's line, exit 2 like every grid error), and its input
 * shape and classes are checked against the grid's datasets.
 */
import { getArch, layerTable, loadLayersModelArch } from "../archs/index.js";
import type { Catalog, Grid } from "../core/types.js";
import { GridErrors, type GridLines } from "../grid/index.js";
import { GridError } from "../grid/types.js";

export async function importGridArchs(grid: Grid, lines: GridLines, cat: Catalog): Promise<void> {
  const errors: GridError[] = [];
  for (const [i, name] of grid.archs.entries()) {
    const file = grid.archFiles?.[name];
    if (file === undefined) continue;
    const at = (problem: string) => errors.push(new GridError(grid.file, lines.archs?.[i] ?? null, `archs[${i}]`, problem));
    try {
      await loadLayersModelArch(file, name);
    } catch (e) {
      at((e as Error).message);
      continue;
    }
    const arch = getArch(name);
    for (const dataset of grid.datasets) {
      const ds = cat.datasets[dataset];
      if (arch.inputShape!.join() !== ds.inputShape.join()) at(`${file} takes input [${arch.inputShape}] but dataset "${dataset}" has [${ds.inputShape}]`);
      if (arch.numClasses !== ds.numClasses) at(`${file} outputs ${arch.numClasses} classes but dataset "${dataset}" has ${ds.numClasses}`);
    }
  }
  if (errors.length > 0) throw new GridErrors(errors);
}

/** "name: params, MACs" of each imported architecture on the grid's first dataset, for `bench validate`. */
export function importedArchCounts(grid: Grid, cat: Catalog): string[] {
  return grid.archs.filter((a) => grid.archFiles?.[a] !== undefined).map((name) => {
    const ds = cat.datasets[grid.datasets[0]];
    const layers = layerTable(getArch(name), ds.inputShape, ds.numClasses);
    const n = (x: number) => x.toLocaleString("en-US");
    return `${name}: ${n(layers.reduce((s, l) => s + l.params, 0))} params, ${n(layers.reduce((s, l) => s + l.macs, 0))} MACs, ${layers.length} layers (${grid.archFiles![name]})`;
  });
}
