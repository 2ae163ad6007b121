/** Targets the architectures can reach, checked at planning time with the grid's line numbers. */
import { getArch, layerTable } from "../archs/index.js";
import { getMethod } from "../../methods/index.js";
import type { Catalog, Grid } from "../core/types.js";
import { checkIterative } from "../prune/schedules.js";
import { keptFraction } from "../prune/structured.js";
import { GridErrors, type GridLines } from "../grid/index.js";
import { GridError } from "../grid/types.js";
import { keepFractionForCompression } from "../metrics/counts.js";
import { prunableParamCount } from "../prune/policy.js";

/**
 * A compression ratio is reachable only while the parameters a method may not prune stay below the budget
 * (max = total / non-prunable). Checked before anything runs, with the grid line, instead of failing every run of
 * that target after its dense model was pretrained.
 */
export function checkTargetsReachable(grid: Grid, lines: GridLines, cat: Catalog): void {
  const compressions = grid.targets.filter((t) => t.kind === "compression");
  if (compressions.length === 0) return;
  const errors: GridError[] = [];
  for (const arch of grid.archs) {
    for (const dataset of grid.datasets) {
      const ds = cat.datasets[dataset];
      const layers = layerTable(getArch(arch), ds.inputShape, ds.numClasses);
      const total = layers.reduce((n, l) => n + l.params, 0);
      const prunable = prunableParamCount(layers, grid.prunable);
      compressions.forEach((t) => {
        try {
          keepFractionForCompression(t.value, total, prunable);
        } catch (e) {
          const i = compressions.indexOf(t);
          errors.push(new GridError(grid.file, lines.targets[grid.targets.indexOf(t)] ?? null, `compressions[${i}]`,
            `${(e as Error).message} for arch "${arch}" on dataset "${dataset}" with this grid's prunable settings; ` +
            `use a smaller compression, or make more tensors prunable (prunable: biases / batch_norm / classifier / first_layer)`));
        }
      });
    }
  }
  if (errors.length > 0) throw new GridErrors(errors);
}

/**
 * Targets an iterative schedule can reach in its rounds (e.g. IMP at 20 % per round for 3 rounds cannot reach 32×),
 * with the line of the method entry: a method's schedule depends on its hyperparameters, a compression's density on
 * the arch and dataset. Made from the grid's axes, not its expanded runs, so `bench validate` need not expand it.
 */
export function checkIterativeReachable(grid: Grid, lines: GridLines, cat: Catalog): void {
  const errors: GridError[] = [];
  grid.methods.forEach((method, i) => {
    const m = getMethod(method.name);
    const schedule = m.schedule(method.params);
    if (schedule.kind !== "iterative") return;
    for (const target of grid.targets) {
      // A channel method's rounds are planned on the fraction of its target's measure kept (src/prune/structured.ts).
      const densities: Array<{ density: number; where: string }> = m.granularity === "channel" ? [{ density: keptFraction(target), where: "" }]
        : target.kind === "sparsity" ? [{ density: 1 - target.value, where: "" }]
        : grid.archs.flatMap((arch) => grid.datasets.map((dataset) => {
          const ds = cat.datasets[dataset];
          const layers = layerTable(getArch(arch), ds.inputShape, ds.numClasses);
          // An unreachable compression was refused already (checkTargetsReachable).
          const density = keepFractionForCompression(target.value, layers.reduce((n, l) => n + l.params, 0), prunableParamCount(layers, grid.prunable));
          return { density, where: ` for arch "${arch}" on dataset "${dataset}"` };
        }));
      for (const { density, where } of densities) {
        const problem = checkIterative(schedule, density, grid.pretrain.epochs);
        if (problem === null) continue;
        const what = target.kind === "compression" ? `compression ${target.value}x` : `${target.kind} ${target.value}`;
        errors.push(new GridError(grid.file, lines.methods[i] ?? null, `methods[${i}]`, `${method.name}: ${what}${where} is unreachable: ${problem}`));
        break;
      }
    }
  });
  if (errors.length > 0) throw new GridErrors(errors);
}
