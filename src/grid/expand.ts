/** Grid -> the list of runs it asks for. */
import type { Grid, Normalization, RunConfig } from "../core/types.js";
import { resolveAugment } from "./defaults.js";

/**
 * How many runs expandGrid would return, without building them: callers refuse or report huge grids (10^7 runs)
 * before spending memory on them.
 */
export function countRuns(grid: Pick<Grid, "datasets" | "archs" | "seeds" | "methods" | "ablations" | "targets">): number {
  return grid.datasets.length * grid.archs.length * grid.seeds.length * grid.methods.length * grid.ablations.length * grid.targets.length;
}

/**
 * The cartesian product datasets x archs x seeds x methods x ablations x targets, in that nesting order (outermost
 * first), so runs that share a dense model (same dataset, arch, seed) are adjacent, and a method's ablations next to it. Deterministic; every run gets its own
 * copies of the settings objects, with every choice concrete (`augment: auto` resolved for the run's dataset), so
 * the stored config says what the run did.
 */
export function expandGrid(grid: Grid): RunConfig[] {
  const runs: RunConfig[] = [];
  for (const dataset of grid.datasets) {
    for (const arch of grid.archs) {
      for (const seed of grid.seeds) {
        for (const method of grid.methods) {
          for (const ablation of grid.ablations) {
            for (const target of grid.targets) {
              runs.push({
                method: { name: method.name, params: { ...method.params } },
                ablation,
                arch,
                dataset,
                target: { ...target },
                seed,
                model: { ...grid.model },
                pretrain: { ...grid.pretrain },
                finetune: { ...grid.finetune },
                data: { ...grid.data, normalize: copyNormalization(grid.data.normalize), augment: resolveAugment(grid.data.augment, dataset) },
                prunable: { ...grid.prunable },
                eval: { ...grid.eval },
              });
            }
          }
        }
      }
    }
  }
  return runs;
}

function copyNormalization(n: Normalization): Normalization {
  return typeof n === "string" ? n : { mean: [...n.mean], std: [...n.std] };
}
