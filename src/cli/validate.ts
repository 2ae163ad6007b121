import { catalog } from "../catalog.js";
import { checkIterativeReachable, checkTargetsReachable } from "../plan/reachable.js";
import { countRuns, loadGrid, targetLabel } from "../grid/index.js";
import { importedArchCounts, importGridArchs } from "../plan/imported-archs.js";

/** Checks a grid file the way `bench sweep` does before anything runs; counts its runs without building them. */
export default async function validate(file: string): Promise<number> {
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
  for (const line of importedArchCounts(grid, cat)) process.stdout.write(`  ${line}\n`);
  return 0;
}
