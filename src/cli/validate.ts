import { getDataset } from "../../datasets/index.js";
import { isOffline, locateDataset } from "../../datasets/locate.js";
import { DatasetNotFoundError } from "../../datasets/types.js";
import { catalog } from "../catalog.js";
import { checkIterativeReachable, checkTargetsReachable } from "../plan/reachable.js";
import { countRuns, loadGrid, targetLabel } from "../grid/index.js";
import { importedArchCounts, importGridArchs } from "../plan/imported-archs.js";

/**
 * Checks a grid file the way `bench sweep` does before anything runs; counts its runs without building them. Then,
 * for each dataset read from files, says on stderr when the files are not on this machine yet (not an error: a
 * sweep downloads them when online) and where to put them; nothing is downloaded or read here.
 */
export default async function validate(file: string, o: { dataDir?: string } = {}): Promise<number> {
  const cat = catalog();
  const { grid, lines } = loadGrid(file, cat);
  // Files named by the grid are read (and their layers checked) before the checks that count their layers.
  await importGridArchs(grid, lines, cat);
  // An unreachable compression is bad input too.
  checkTargetsReachable(grid, lines, cat);
  // So is a target an iterative method cannot reach in its rounds.
  checkIterativeReachable(grid, lines, cat);
  const t = grid.targets.map(targetLabel).join(", ");
  // Named only when a grid has them, so a grid without the axis reads as it always did.
  const ablations = grid.ablations.length === 1 && grid.ablations[0] === "none" ? "" : `${grid.ablations.length} ablation(s) [${grid.ablations.join(", ")}] × `;
  process.stdout.write(
    `${file}: ok — ${countRuns(grid)} runs = ${grid.datasets.length} dataset(s) × ${grid.archs.length} arch(s) × ${grid.seeds.length} seed(s) × ` +
      `${grid.methods.length} method(s) × ${ablations}${grid.targets.length} target(s) [${t}]\n`,
  );
  for (const name of grid.datasets) {
    const source = getDataset(name).source;
    if (source === undefined) continue;
    try {
      await locateDataset(source, { dataDir: o.dataDir, download: false });
    } catch (e) {
      if (!(e instanceof DatasetNotFoundError)) throw e;
      const then = isOffline() ? "BENCH_OFFLINE is set, so `bench sweep` will stop before training" : "`bench sweep` will try to download them (with checksums) before training";
      process.stderr.write(`note: dataset ${name} is not on this machine yet; ${then}. To provide them:\n${e.message.replace(/^/gm, "  ")}\n`);
    }
  }
  for (const line of importedArchCounts(grid, cat)) process.stdout.write(`  ${line}\n`);
  return 0;
}
