/** Grid files: parse + validate (with line-accurate errors), defaults, expansion into runs, labels. */
import { readFileSync } from "node:fs";
import { parseLocated } from "./parse.js";
import { GridError, type Catalog, type Grid } from "./types.js";
import { validateGrid } from "./validate.js";

export * from "./types.js";
export { DEFAULT_DATA, DEFAULT_EVAL, DEFAULT_FINETUNE, DEFAULT_PRETRAIN, DEFAULT_PRUNABLE } from "./defaults.js";
export { expandGrid } from "./expand.js";
export { methodLabel, targetLabel } from "./label.js";
export { didYouMean, editDistance, unknownNameMessage } from "./suggest.js";
export { TOP_LEVEL_KEYS } from "./validate.js";

/** Thrown by loadGridFile: every problem found, one per line in the message. */
export class GridErrors extends Error {
  constructor(readonly errors: GridError[]) {
    super(errors.map((e) => e.message).join("\n"));
    this.name = "GridErrors";
  }
}

/** Order errors by line (file-level errors without a line first), keeping discovery order within a line. */
function sortErrors(errors: GridError[]): GridError[] {
  return errors
    .map((e, i) => ({ e, i }))
    .sort((a, b) => (a.e.line ?? 0) - (b.e.line ?? 0) || a.i - b.i)
    .map((x) => x.e);
}

/**
 * Parse and validate grid text. Never throws for bad input: problems come back as `errors` (sorted by line) and
 * `grid` is null whenever there is at least one error.
 */
export function parseGrid(text: string, file: string, catalog: Catalog): { grid: Grid | null; errors: GridError[] } {
  try {
    const doc = parseLocated(text, file);
    if (doc.errors.length > 0 && doc.root === null) return { grid: null, errors: sortErrors(doc.errors) };
    const { grid, errors } = validateGrid(doc.root, file, catalog);
    const all = [...doc.errors, ...errors];
    if (all.length > 0) return { grid: null, errors: sortErrors(all) };
    if (grid === null) return { grid: null, errors: [new GridError(file, null, "", "internal error: grid rejected without a reason")] };
    return { grid, errors: [] };
  } catch (e) {
    // A bug, not a user error; still report it in the shape callers expect instead of crashing a sweep.
    return { grid: null, errors: [new GridError(file, null, "", `internal error while reading the grid: ${(e as Error).stack ?? e}`)] };
  }
}

/** Read and validate a grid file; throws GridErrors listing every problem. */
export function loadGridFile(path: string, catalog: Catalog): Grid {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new GridErrors([new GridError(path, null, "", `cannot read grid file: ${(e as Error).message}`)]);
  }
  const { grid, errors } = parseGrid(text, path, catalog);
  if (grid === null || errors.length > 0) {
    throw new GridErrors(errors.length > 0 ? errors : [new GridError(path, null, "", "invalid grid file")]);
  }
  return grid;
}
