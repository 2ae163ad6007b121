/** Grid files: parse + validate (with line-accurate errors), defaults, expansion into runs, labels. */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { parseLocated } from "./parse.js";
import { GridError } from "./types.js";
import { type Catalog, type Grid } from "../core/types.js";
import { validateGrid, type GridLines } from "./validate.js";

export * from "./types.js";
export { AUTO_AUGMENT, DEFAULT_ABLATIONS, DEFAULT_DATA, DEFAULT_EVAL, DEFAULT_FINETUNE, DEFAULT_MODEL, DEFAULT_PRETRAIN, DEFAULT_PRUNABLE, resolveAugment } from "./defaults.js";
export { countRuns, expandGrid } from "./expand.js";
export { methodLabel, targetLabel } from "./label.js";
export { didYouMean, editDistance, unknownNameMessage } from "./suggest.js";
export { TOP_LEVEL_KEYS, type GridLines } from "./validate.js";

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
export function parseGrid(text: string, file: string, catalog: Catalog): { grid: Grid | null; errors: GridError[]; lines?: GridLines } {
  try {
    const doc = parseLocated(text, file);
    if (doc.errors.length > 0 && doc.root === null) return { grid: null, errors: sortErrors(doc.errors) };
    const { grid, errors, lines } = validateGrid(doc.root, file, catalog);
    const all = [...doc.errors, ...errors];
    if (all.length > 0) return { grid: null, errors: sortErrors(all) };
    if (grid === null) return { grid: null, errors: [new GridError(file, null, "", "internal error: grid rejected without a reason")] };
    return { grid, errors: [], lines };
  } catch (e) {
    // A bug, not a user error; still report it in the shape callers expect instead of crashing a sweep.
    return { grid: null, errors: [new GridError(file, null, "", `internal error while reading the grid: ${(e as Error).stack ?? e}`)] };
  }
}

/**
 * A grid lists axes, not runs: even a 10^7-run grid is a few tens of KiB. The limit keeps a wrong path (a log, a
 * dataset, /dev/zero) from being read into memory whole before the YAML parser gives up on it.
 */
export const MAX_GRID_FILE_BYTES = 1024 * 1024;

function fileKind(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/** The text of a grid file; refuses anything but a regular file of at most MAX_GRID_FILE_BYTES. Throws GridErrors. */
export function readGridText(path: string): string {
  const refuse = (problem: string) => new GridErrors([new GridError(path, null, "", problem)]);
  let fd: number;
  try {
    // Non-blocking: opening a FIFO that no one writes to would otherwise hang here, before the type check can refuse it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw refuse(`cannot read grid file: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(`cannot read grid file: it is ${fileKind(st)}, not a regular file (a grid file is YAML text)`);
    const tooBig = (size: string) =>
      refuse(`cannot read grid file: it is ${size}, over the ${MAX_GRID_FILE_BYTES / 1024 / 1024} MiB limit for grid files (a grid lists axes, not runs)`);
    if (st.size > MAX_GRID_FILE_BYTES) throw tooBig(`${st.size} bytes`);
    // Read one byte past the limit: the file may have grown since fstat.
    const buf = Buffer.alloc(MAX_GRID_FILE_BYTES + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    if (n > MAX_GRID_FILE_BYTES) throw tooBig("larger than that");
    return buf.toString("utf8", 0, n);
  } catch (e) {
    if (e instanceof GridErrors) throw e;
    throw refuse(`cannot read grid file: ${(e as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/** A grid file read once: the validated grid, the text it came from (stored with a sweep) and where its entries sit. */
export interface LoadedGrid {
  grid: Grid;
  text: string;
  lines: GridLines;
}

/** Read and validate a grid file; throws GridErrors listing every problem. */
export function loadGrid(path: string, catalog: Catalog): LoadedGrid {
  const text = readGridText(path);
  const { grid, errors, lines } = parseGrid(text, path, catalog);
  if (grid === null || errors.length > 0 || lines === undefined) {
    throw new GridErrors(errors.length > 0 ? errors : [new GridError(path, null, "", "invalid grid file")]);
  }
  return { grid, text, lines };
}

/** Read and validate a grid file; throws GridErrors listing every problem. */
export function loadGridFile(path: string, catalog: Catalog): Grid {
  return loadGrid(path, catalog).grid;
}
