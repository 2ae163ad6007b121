/**
 * Published tables graded cell by cell against a results database (`bench reproduce`, the report's "Reproduction"
 * section). The catalogue is data: one YAML file per paper table in benchmarks/published/ (format and how to add one:
 * benchmarks/published/README.md). Each cell names what we run (dataset, arch, method with its hyperparameters,
 * target) and what the paper printed (value, unit, optional std), with a tolerance; grading takes the mean over seeds
 * of the matching done runs and says one of:
 *   reproduced         |ours − published| within the tolerance (one-sided for claims "at-least" / "at-most")
 *   outside tolerance  by how much beyond the tolerance
 *   not run            no matching runs (which grid to sweep, or why nothing can run it yet)
 *   dataset absent     no matching runs and the dataset's files are not on this machine (not an error)
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { catalog as prunebenchCatalog } from "../src/catalog.js";
import { canonicalJson } from "../src/core/canonical.js";
import { packageRoot } from "../src/core/locations.js";
import type { Catalog, HyperValue, MethodChoice, PruneTarget } from "../src/core/types.js";
import { methodLabel, targetLabel } from "../src/grid/label.js";
import { didYouMean } from "../src/grid/suggest.js";
import { METRICS } from "../src/metrics/names.js";
import { toMetricUnit } from "../src/metrics/units.js";
import { aggregateRuns, type GroupAggregate } from "./aggregate.js";
import { summarize, type Stat } from "./stats.js";
import type { RunRow } from "./model.js";
import { trimNum } from "./format.js";
import { DELTA_METRIC, escapeLatex, withDelta } from "./table.js";

/** top1_after minus the run's own dense top-1 (reports/table.ts defines it): how papers state "no loss". */
export const DELTA_TOP1 = DELTA_METRIC;

export type Claim = "equal" | "at-least" | "at-most";

export interface Tolerance {
  /** Absolute, in the cell's published unit (percent → percentage points). */
  abs?: number;
  /** Multiples of the cell's published std. */
  std?: number;
}

export interface CellMethod {
  choice: MethodChoice;
  /** The label our runs carry for it (name plus non-default hyperparameters). */
  label: string;
  /** Whether it is a prunebench method (a paper's own method not yet in prunebench is graded "not run"). */
  known: boolean;
}

export interface PublishedCell {
  arch: string;
  method: MethodChoice;
  /** The label our runs carry for `method` (name plus non-default hyperparameters). */
  label: string;
  /** Whether `method` is a prunebench method (a paper's own method not yet in prunebench is graded "not run"). */
  known: boolean;
  /**
   * A second method at the same arch and target: the cell is then the difference method − versus (a finding such as
   * "global beats layer-wise"), estimated per seed (both runs of a seed share the dense model) and averaged.
   */
  versus: CellMethod | null;
  target: PruneTarget;
  metric: string;
  value: number;
  unit: string;
  std: number | null;
  claim: Claim;
  tolerance: Tolerance;
  confirmed: boolean;
  /** Why the table's grid does not run this cell (a cell the grid cannot reach); "" when it does. */
  notInGrid: string;
  /** Where in the paper, as printed (e.g. "1.59 % error, 12x"). */
  source: string;
  note: string;
}

export interface PublishedTable {
  id: string;
  file: string;
  paper: string;
  table: string;
  url: string;
  /** The dataset the numbers are for: cells are graded only against runs on it. */
  dataset: string;
  /** Repository-relative grid file that runs this table's cells; null when none does yet. */
  grid: string | null;
  /** Why there is no grid (or what is pending), shown with "not run". */
  gridNote: string;
  note: string;
  cells: PublishedCell[];
}

export class CatalogueError extends Error {
  override name = "GridErrors"; // an expected user error: exit 2 (src/cli/errors.ts)
}

// ---------------------------------------------------------------------------------------------------------------
// Reading and checking the catalogue

const TARGET_KEYS = { sparsity: "sparsity", compression: "compression", macs_reduction: "macs-reduction" } as const;
const CLAIMS: readonly Claim[] = ["equal", "at-least", "at-most"];

/** Units a cell may be published in: the metric's own and those src/metrics/units.ts converts. */
function ownUnit(metric: string): string | null {
  return metric === DELTA_TOP1 ? "fraction" : METRICS.get(metric)?.unit ?? null;
}

/** A published value (or tolerance: every conversion is a scale) in our unit for the metric; null if not convertible. */
export function toOurUnit(metric: string, value: number, unit: string): number | null {
  if (metric === DELTA_TOP1) return unit === "fraction" ? value : unit === "percent" || unit === "%" || unit === "pt" ? value / 100 : null;
  // Percentage points: how differences of accuracies (versus cells) are printed.
  if (unit === "pt" && METRICS.get(metric)?.unit === "fraction") return value / 100;
  return toMetricUnit(metric, value, unit);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parse and check one catalogue file. `catalog` is what prunebench has (methods, archs, datasets); `gridExists` says
 * whether a repository-relative grid path exists. Every problem is collected and thrown at once, each naming the file
 * and the key.
 */
export function parseTable(text: string, file: string, catalog: Catalog, gridExists: (path: string) => boolean): PublishedTable {
  const errors: string[] = [];
  const err = (key: string, msg: string) => errors.push(`${file}: ${key}: ${msg}`);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new CatalogueError(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  if (!isObj(doc)) throw new CatalogueError(`${file}: expected a mapping with id, paper, table, dataset, cells`);
  const str = (key: string, required = true): string => {
    const v = doc[key];
    if (v === undefined || v === null) {
      if (required) err(key, "missing");
      return "";
    }
    if (typeof v !== "string" || v.trim() === "") {
      err(key, "must be a non-empty string");
      return "";
    }
    return v;
  };
  const allowed = new Set(["id", "paper", "table", "url", "dataset", "grid", "grid_note", "tolerance", "note", "cells"]);
  for (const k of Object.keys(doc)) if (!allowed.has(k)) err(k, `unknown key; valid: ${[...allowed].join(", ")}`);
  const id = str("id");
  if (id && !/^[a-z0-9][a-z0-9.-]*$/.test(id)) err("id", `"${id}" must be lowercase letters, digits, '.' and '-'`);
  const dataset = str("dataset");
  const datasets = Object.keys(catalog.datasets);
  if (dataset && !datasets.includes(dataset)) {
    const near = didYouMean(dataset, datasets);
    err("dataset", `unknown dataset "${dataset}"${near ? `; did you mean "${near}"?` : ""} valid: ${datasets.join(", ")}`);
  }
  const grid = doc.grid === undefined || doc.grid === null ? null : str("grid");
  if (grid && !gridExists(grid)) err("grid", `no grid file "${grid}" (give a path relative to the repository, e.g. benchmarks/lth-fmnist.yaml, or grid: null with grid_note)`);
  const tableTol = parseTolerance(doc.tolerance, "tolerance", err);
  const archs = Object.keys(catalog.archs);
  const methods = Object.keys(catalog.methods);
  const cells: PublishedCell[] = [];
  if (!Array.isArray(doc.cells) || doc.cells.length === 0) err("cells", "must be a non-empty list");
  else {
    doc.cells.forEach((c: unknown, i: number) => {
      const at = `cells[${i}]`;
      if (!isObj(c)) return err(at, "must be a mapping");
      const cellKeys = new Set(["arch", "method", "versus", "sparsity", "compression", "macs_reduction", "metric", "value", "unit", "std", "claim", "tolerance", "confirmed", "source", "note", "not_in_grid"]);
      for (const k of Object.keys(c)) if (!cellKeys.has(k)) err(`${at}.${k}`, `unknown key; valid: ${[...cellKeys].join(", ")}`);
      const arch = typeof c.arch === "string" ? c.arch : "";
      if (!archs.includes(arch)) {
        const near = didYouMean(arch, archs);
        err(`${at}.arch`, `unknown arch "${String(c.arch ?? "")}"${near ? `; did you mean "${near}"?` : ""} valid: ${archs.join(", ")}`);
      }
      const m = parseMethod(c.method, `${at}.method`, catalog, err);
      const versus = c.versus === undefined ? null : parseMethod(c.versus, `${at}.versus`, catalog, err);
      const targets = Object.keys(TARGET_KEYS).filter((k) => c[k] !== undefined);
      let target: PruneTarget = { kind: "sparsity", value: 0 };
      if (targets.length !== 1) err(at, `give exactly one target: sparsity, compression or macs_reduction (got ${targets.length})`);
      else {
        const k = targets[0] as keyof typeof TARGET_KEYS;
        const v = c[k];
        const ok = typeof v === "number" && (k === "compression" ? v >= 1 : v >= 0 && v < 1);
        if (!ok) err(`${at}.${k}`, k === "compression" ? "must be a number >= 1" : "must be a number in [0, 1)");
        target = { kind: TARGET_KEYS[k], value: Number(v) } as PruneTarget;
      }
      const metric = typeof c.metric === "string" ? c.metric : "top1_after";
      const unit = typeof c.unit === "string" ? c.unit : "";
      if (ownUnit(metric) === null) err(`${at}.metric`, `unknown metric "${metric}"; use a metric of src/metrics/names.ts or ${DELTA_TOP1}`);
      if (versus && metric === DELTA_TOP1) err(`${at}.versus`, `compare ${metric} with versus? both cancel the dense model: use metric top1_after`);
      const value = c.value;
      if (typeof value !== "number" || !Number.isFinite(value)) err(`${at}.value`, "must be a number (as published)");
      else if (ownUnit(metric) !== null && toOurUnit(metric, value, unit) === null) err(`${at}.unit`, `"${unit}" does not convert to ${metric}'s unit ${ownUnit(metric)}`);
      const std = c.std === undefined || c.std === null ? null : typeof c.std === "number" && c.std >= 0 ? c.std : (err(`${at}.std`, "must be a number >= 0"), null);
      const claim = c.claim === undefined ? "equal" : (CLAIMS as readonly unknown[]).includes(c.claim) ? (c.claim as Claim) : (err(`${at}.claim`, `must be one of ${CLAIMS.join(", ")}`), "equal");
      const tolerance = c.tolerance === undefined ? tableTol : parseTolerance(c.tolerance, `${at}.tolerance`, err);
      if (tolerance.abs === undefined && tolerance.std === undefined) err(`${at}.tolerance`, "no tolerance: give {abs: ...} and/or {std: ...} on the cell or the table");
      if (tolerance.std !== undefined && std === null) err(`${at}.tolerance`, "a tolerance in published stds needs the cell's std");
      if (typeof c.confirmed !== "boolean") err(`${at}.confirmed`, "say true (checked against the paper) or false (not checked)");
      cells.push({
        arch, method: m.choice, label: m.label, known: m.known, versus, target, metric,
        value: Number(value), unit, std, claim, tolerance, confirmed: c.confirmed === true,
        source: typeof c.source === "string" ? c.source : "", note: typeof c.note === "string" ? c.note : "",
        notInGrid: typeof c.not_in_grid === "string" ? c.not_in_grid : "",
      });
    });
  }
  if (errors.length > 0) throw new CatalogueError(errors.join("\n"));
  return {
    id, file, paper: str("paper"), table: str("table"), url: typeof doc.url === "string" ? doc.url : "", dataset, grid,
    gridNote: typeof doc.grid_note === "string" ? doc.grid_note : "", note: typeof doc.note === "string" ? doc.note : "", cells,
  };
}

/** A cell's method (or versus): a name or {name, hyperparameters}, with the label our runs of it carry. */
function parseMethod(v: unknown, key: string, catalog: Catalog, err: (k: string, m: string) => void): CellMethod {
  const methods = Object.keys(catalog.methods);
  let choice: MethodChoice = { name: "", params: {} };
  if (typeof v === "string") choice = { name: v, params: {} };
  else if (isObj(v) && typeof v.name === "string") {
    const params: Record<string, HyperValue> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === "name") continue;
      if (typeof x === "string" || typeof x === "number" || typeof x === "boolean") params[k] = x;
      else err(`${key}.${k}`, "must be a string, number or boolean");
    }
    choice = { name: v.name, params };
  } else err(key, "must be a method name or {name: ..., <hyperparameter>: value}");
  const known = methods.includes(choice.name);
  if (choice.name && !known) {
    // A paper's own method (not in prunebench yet) is allowed, as in a grid's reference rows; a near miss is a typo.
    const near = didYouMean(choice.name, methods);
    if (near) err(key, `unknown method "${choice.name}"; did you mean "${near}"? (a method prunebench lacks is fine, a typo is not)`);
  }
  if (known) {
    const specs = catalog.methods[choice.name].params;
    for (const k of Object.keys(choice.params)) {
      if (!(k in specs)) err(`${key}.${k}`, `${choice.name} has no hyperparameter "${k}"; valid: ${Object.keys(specs).join(", ") || "none"}`);
    }
  }
  return { choice, label: known ? methodLabel(choice, catalog) : labelOf(choice), known };
}

/** The label of a method prunebench does not have: its name and every hyperparameter given. */
function labelOf(choice: MethodChoice): string {
  const ps = Object.entries(choice.params).map(([k, v]) => `${k}=${v}`);
  return ps.length ? `${choice.name}(${ps.join(", ")})` : choice.name;
}

function parseTolerance(v: unknown, key: string, err: (k: string, m: string) => void): Tolerance {
  if (v === undefined) return {};
  if (!isObj(v)) {
    err(key, "must be {abs: <published unit>} and/or {std: <multiples of the published std>}");
    return {};
  }
  const out: Tolerance = {};
  for (const [k, x] of Object.entries(v)) {
    if (k !== "abs" && k !== "std") err(`${key}.${k}`, "unknown key; valid: abs, std");
    else if (typeof x !== "number" || !(x >= 0)) err(`${key}.${k}`, "must be a number >= 0");
    else out[k] = x;
  }
  return out;
}

/** Every table of a catalogue folder (*.yaml), sorted by id; ids must be unique. */
export function loadCatalogue(dir: string, catalog: Catalog, gridExists: (path: string) => boolean): PublishedTable[] {
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml")).sort();
  const tables: PublishedTable[] = [];
  const errors: string[] = [];
  for (const f of files) {
    try {
      tables.push(parseTable(readFileSync(join(dir, f), "utf8"), join(dir, f), catalog, gridExists));
    } catch (e) {
      if (e instanceof CatalogueError) errors.push(e.message);
      else throw e;
    }
  }
  const seen = new Map<string, string>();
  for (const t of tables) {
    if (seen.has(t.id)) errors.push(`${t.file}: id: "${t.id}" is also the id of ${seen.get(t.id)}`);
    seen.set(t.id, t.file);
  }
  if (errors.length > 0) throw new CatalogueError(errors.join("\n"));
  return tables.sort((a, b) => a.id.localeCompare(b.id));
}

/** The catalogue shipped with prunebench: benchmarks/published/ of its package folder. */
export function catalogueDir(): string {
  return join(packageRoot(), "benchmarks", "published");
}

/** The shipped catalogue, checked against this prunebench's methods, archs, datasets and grid files. */
export function defaultCatalogue(dir = catalogueDir()): PublishedTable[] {
  return loadCatalogue(dir, prunebenchCatalog(), (p) => existsSync(join(packageRoot(), p)));
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

export type GradeStatus = "reproduced" | "outside tolerance" | "not run" | "dataset absent";

export interface CellGrade {
  cell: PublishedCell;
  status: GradeStatus;
  /** Published value and tolerance in our unit for the metric. */
  published: number;
  tolerance: number;
  /** Our runs' statistic (mean over seeds, std, t-CI) in our unit; null when nothing ran. */
  ours: Stat | null;
  /** ours.mean − published (our unit); null when nothing ran. */
  difference: number | null;
  /** How far beyond the tolerance (our unit, > 0) when outside; else null. */
  beyond: number | null;
  runKeys: string[];
  /**
   * How many training protocols (model, pretraining, fine-tuning, data, prunable settings) the matched runs were run
   * under: more than one means runs of different grids share the cell's label and were averaged together.
   */
  protocols: number;
  /** Distinct seeds of the matched runs (of the method's runs for a versus cell). */
  seeds: number;
  /** Some seed has more than one matching run (e.g. from two sweeps): they were averaged. */
  repeatedSeeds: boolean;
  /** For "not run" / "dataset absent": what to do. */
  reason: string;
}

export interface TableGrade {
  table: PublishedTable;
  cells: CellGrade[];
  counts: Record<GradeStatus, number>;
}

/**
 * method − versus, paired by seed: the runs of one seed share the dense model, so the per-seed differences are what
 * varies; their mean, sample std and t-interval (summarize). Null when no seed has runs of both.
 */
function pairedDifference(runs: readonly RunRow[], a: GroupAggregate, b: GroupAggregate, metric: string): Stat | null {
  const perSeed = (g: GroupAggregate) => {
    const keys = new Set(g.runKeys);
    const bySeed = new Map<number, number[]>();
    for (const r of runs) {
      const v = r.metrics[metric];
      if (!keys.has(r.key) || v === null || v === undefined || !Number.isFinite(v)) continue;
      bySeed.set(r.seed, [...(bySeed.get(r.seed) ?? []), v]);
    }
    return new Map([...bySeed].map(([seed, vs]) => [seed, vs.reduce((x, y) => x + y, 0) / vs.length]));
  };
  const [pa, pb] = [perSeed(a), perSeed(b)];
  return summarize([...pa].filter(([seed]) => pb.has(seed)).map(([seed, v]) => v - pb.get(seed)!));
}

/** The settings of a run's configuration that change its accuracy, besides what a cell names and the seed. */
function protocolOf(config: unknown): string {
  const c = (config ?? {}) as Record<string, unknown>;
  return canonicalJson({ model: c.model ?? null, pretrain: c.pretrain ?? null, finetune: c.finetune ?? null, data: c.data ?? null, prunable: c.prunable ?? null, ablation: c.ablation ?? null });
}

const same = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();

/**
 * Grade one table against runs. `datasetPresent` says whether the table's dataset files are on this machine; leave it
 * undefined where that is not known (e.g. in a report, which describes a database, not a machine): cells without runs
 * are then "not run".
 */
export function gradeTable(table: PublishedTable, runs: readonly RunRow[], datasetPresent?: boolean, groups: readonly GroupAggregate[] = aggregateRuns(runs)): TableGrade {
  const cells = table.cells.map((cell): CellGrade => {
    const published = toOurUnit(cell.metric, cell.value, cell.unit)!;
    const tolPub = (cell.tolerance.abs ?? 0) + (cell.tolerance.std ?? 0) * (cell.std ?? 0);
    const tolerance = Math.abs(toOurUnit(cell.metric, tolPub, cell.unit)!);
    const tl = targetLabel(cell.target);
    const runsOf = (x: GroupAggregate) => {
      const keys = new Set(x.runKeys);
      return runs.filter((r) => keys.has(r.key));
    };
    const find = (label: string) => groups.find((x) => same(x.dataset, table.dataset) && same(x.arch, cell.arch) && x.methodLabel === label && x.target === tl);
    const g = find(cell.label);
    const gv = cell.versus ? find(cell.versus.label) : undefined;
    const ours = !g ? null
      : cell.versus ? (gv ? pairedDifference(runs, g, gv, cell.metric) : null)
      : cell.metric === DELTA_TOP1 ? summarize(withDelta(runsOf(g)).map((r) => r.metrics[DELTA_TOP1])) : g.metrics[cell.metric] ?? null;
    if (!g || !ours) {
      const absent = datasetPresent === false;
      const missing = !g ? cell : { label: cell.versus!.label, known: cell.versus!.known, method: cell.versus!.choice };
      const reason = absent
        ? `${table.dataset} is not on this machine (bench doctor says where its files go)`
        : g && gv ? `no seed has runs of both ${cell.label} and ${cell.versus!.label}`
        : !missing.known
          ? `${missing.method.name} is not a prunebench method yet`
          : cell.notInGrid && table.grid ? `not in ${table.grid}: ${cell.notInGrid}`
          : `${g ? `no runs of ${missing.label}: ` : ""}${table.grid ? `sweep ${table.grid}` : `no grid in benchmarks/ runs it yet${table.gridNote ? ` (${table.gridNote})` : ""}`}`;
      return { cell, status: absent ? "dataset absent" : "not run", published, tolerance, ours: null, difference: null, beyond: null, runKeys: [], protocols: 0, seeds: 0, repeatedSeeds: false, reason };
    }
    const difference = ours.mean - published;
    // One-sided claims: "at least" is missed only below, "at most" only above.
    const miss = cell.claim === "at-least" ? -difference - tolerance : cell.claim === "at-most" ? difference - tolerance : Math.abs(difference) - tolerance;
    // Rounding noise of the published digits must not flip a grade: compare with a hair of slack.
    const outside = miss > 1e-9;
    const runKeys = [...g.runKeys, ...(gv?.runKeys ?? [])];
    const keys = new Set(runKeys);
    const protocols = new Set(runs.filter((r) => keys.has(r.key)).map((r) => protocolOf(r.config))).size;
    return { cell, status: outside ? "outside tolerance" : "reproduced", published, tolerance, ours, difference, beyond: outside ? miss : null, runKeys, protocols, seeds: g.seeds.length,
      repeatedSeeds: g.runKeys.length > g.seeds.length || (gv !== undefined && gv.runKeys.length > gv.seeds.length), reason: "" };
  });
  const counts: Record<GradeStatus, number> = { reproduced: 0, "outside tolerance": 0, "not run": 0, "dataset absent": 0 };
  for (const c of cells) counts[c.status]++;
  return { table, cells, counts };
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

/** Fractions (accuracy, Δ) are shown in percent and differences in percentage points; other metrics as they are. */
function scaleOf(metric: string, difference = false): { k: number; unit: string; diffUnit: string } {
  if (metric === DELTA_TOP1 || (difference && ownUnit(metric) === "fraction")) return { k: 100, unit: " pt", diffUnit: "pt" };
  const own = ownUnit(metric) ?? "";
  return own === "fraction" ? { k: 100, unit: "%", diffUnit: "pt" } : { k: 1, unit: own ? ` ${own}` : "", diffUnit: own };
}

const signed = (v: number, num: (v: number) => string) => `${v >= 0 ? "+" : "−"}${num(Math.abs(v))}`;

export interface GradeRow {
  cell: string;
  metric: string;
  published: string;
  ours: string;
  difference: string;
  tolerance: string;
  grade: string;
}

/** One display row per cell (shared by text, Markdown, LaTeX and the report section). */
export function gradeRows(t: TableGrade): GradeRow[] {
  return t.cells.map((g) => {
    const s = scaleOf(g.cell.metric, g.cell.versus !== null);
    // Percent and points with 2 decimals; other units (MACs, counts, ms) as they are, without trailing zeros.
    const num = (v: number) => (s.k === 100 ? v.toFixed(2) : trimNum(v)).replace(/^-/, "−");
    const claim = g.cell.claim === "at-least" ? "≥ " : g.cell.claim === "at-most" ? "≤ " : "";
    const pub = `${claim}${num(g.published * s.k)}${s.unit}${g.cell.std !== null ? ` ± ${num(toOurUnit(g.cell.metric, g.cell.std, g.cell.unit)! * s.k)}` : ""}${g.cell.confirmed ? "" : " (unconfirmed)"}`;
    const differenceCell = g.cell.versus !== null || g.cell.metric === DELTA_TOP1;
    const ours = g.ours
      ? `${differenceCell ? signed(g.ours.mean * s.k, num) : num(g.ours.mean * s.k)}${s.unit}${g.ours.std !== null ? ` ± ${num(g.ours.std * s.k)}` : ""} (n=${g.ours.n}${g.ours.ci95 ? `, CI ${num(g.ours.ci95[0] * s.k)} to ${num(g.ours.ci95[1] * s.k)}` : ""})`
      : "–";
    const grade = g.status === "outside tolerance" ? `outside tolerance by ${num(g.beyond! * s.k)} ${s.diffUnit.trim()}`
      : g.status === "reproduced" ? "reproduced"
      : `${g.status}: ${g.reason}`;
    // Runs of one label can come from several grids or code versions (their keys differ); averaging them is rarely meant.
    const mixed = g.protocols > 1 ? ` (averages runs of ${g.protocols} protocols: choose one with --sweep)`
      : g.repeatedSeeds ? " (a seed ran more than once, e.g. in several sweeps, and its runs were averaged: choose one with --sweep)" : "";
    return {
      cell: `${g.cell.arch} · ${g.cell.label}${g.cell.versus ? ` − ${g.cell.versus.label}` : ""} · ${targetLabel(g.cell.target)}`,
      metric: g.cell.metric,
      published: pub,
      ours,
      difference: g.difference === null ? "–" : `${signed(g.difference * s.k, num)} ${s.diffUnit.trim()}`,
      tolerance: `${g.cell.claim === "equal" ? "±" : ""}${num(g.tolerance * s.k)} ${s.diffUnit.trim()}`,
      grade: grade + mixed,
    };
  });
}

export function tableTitle(t: PublishedTable): string {
  return `${t.id}: ${t.paper}, ${t.table} (${t.dataset})`;
}

export function countsLine(t: TableGrade): string {
  return (Object.entries(t.counts) as Array<[GradeStatus, number]>).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(", ");
}

const HEAD = ["cell", "metric", "published", "ours (mean over seeds)", "ours − published", "tolerance", "grade"];

export type ReproduceFormat = "text" | "markdown" | "latex" | "json";

export function renderGrades(grades: readonly TableGrade[], format: ReproduceFormat): string {
  if (format === "json") {
    return JSON.stringify(grades.map((t) => ({
      id: t.table.id, paper: t.table.paper, table: t.table.table, dataset: t.table.dataset, grid: t.table.grid, counts: t.counts,
      cells: t.cells.map((g) => ({
        arch: g.cell.arch, method: g.cell.label, versus: g.cell.versus?.label ?? null, target: g.cell.target, metric: g.cell.metric, claim: g.cell.claim,
        published: { value: g.cell.value, unit: g.cell.unit, std: g.cell.std, confirmed: g.cell.confirmed, source: g.cell.source, ours_unit: g.published },
        tolerance: g.tolerance, status: g.status, ours: g.ours, difference: g.difference, beyond: g.beyond, reason: g.reason || null, protocols: g.protocols, run_keys: g.runKeys,
      })),
    })), null, 2) + "\n";
  }
  const out: string[] = [];
  for (const t of grades) {
    const rows = gradeRows(t).map((r) => [r.cell, r.metric, r.published, r.ours, r.difference, r.tolerance, r.grade]);
    if (format === "latex") {
      const esc = (s: string) => escapeLatex(s).replace(/±/g, "$\\pm$").replace(/≥/g, "$\\geq$").replace(/≤/g, "$\\leq$").replace(/−/g, "$-$").replace(/–/g, "--").replace(/·/g, "$\\cdot$");
      out.push(
        "\\begin{table}[t]", "\\centering", "\\small", "\\begin{tabular}{lllllll}", "\\toprule",
        HEAD.map(esc).join(" & ") + " \\\\", "\\midrule",
        ...rows.map((r) => r.map(esc).join(" & ") + " \\\\"),
        "\\bottomrule", "\\end{tabular}",
        `\\caption{${esc(`${t.table.paper}, ${t.table.table}, on ${t.table.dataset}, graded against our runs: ${countsLine(t)}. Ours: mean ± sample std over seeds with its 95 % t-interval; accuracy in percent, differences in percentage points.`)}}`,
        `\\label{tab:reproduce-${t.table.id}}`, "\\end{table}", "",
      );
    } else if (format === "markdown") {
      const cell = (s: string) => s.replace(/\|/g, "\\|");
      out.push(`### ${tableTitle(t.table)}`, "", `${countsLine(t)}${t.table.grid ? `; protocol grid: \`${t.table.grid}\`` : ""}`, "",
        `| ${HEAD.join(" | ")} |`, `|${HEAD.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`), "");
    } else {
      out.push(tableTitle(t.table), `  ${countsLine(t)}${t.table.grid ? `; protocol grid: ${t.table.grid}` : ""}`);
      const widths = HEAD.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
      const line = (r: string[]) => "  " + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
      out.push(line(HEAD), ...rows.map(line), "");
    }
  }
  return out.join("\n");
}
