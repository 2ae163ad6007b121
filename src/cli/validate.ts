import { catalog } from "../catalog.js";
import { expandGrid, loadGridFile } from "../grid/index.js";

export default function validate(file: string): number {
  const grid = loadGridFile(file, catalog());
  const runs = expandGrid(grid);
  const t = grid.targets.map((x) => (x.kind === "sparsity" ? `${x.value}` : `${x.value}x`)).join(", ");
  process.stdout.write(
    `${file}: ok — ${runs.length} runs = ${grid.datasets.length} dataset(s) × ${grid.archs.length} arch(s) × ${grid.seeds.length} seed(s) × ` +
      `${grid.methods.length} method(s) × ${grid.targets.length} target(s) [${t}]\n`,
  );
  return 0;
}
