/**
 * renderTable: aggregated results as Markdown, LaTeX (booktabs + siunitx), CSV or JSON, for papers and READMEs.
 * Rows are groups of done runs (see summarizeGroups); values are mean ± sample std over the group's runs. Each
 * dataset x arch block opens with its dense model, and top-1 gets a Δ column against the dense model of the same seed.
 */
import { stringify } from "csv-stringify/sync";
import { METRICS } from "../src/metrics/names.js";
import type { PruneTarget, ReferenceRow } from "../src/core/types.js";
import { GROUP_DIMS, groupId, referenceMatches, referenceMetric, referenceSameTarget, summarize, summarizeGroups, targetOrder, type GroupDim, type Stat, type SummaryGroup } from "./aggregate.js";
import { targetLabel } from "../src/grid/label.js";
import type { ReportData, RunRow } from "./model.js";
import { significantWinnerIds } from "./winners.js";

export type TableFormat = "markdown" | "latex" | "csv" | "json";

export interface TableOptions {
  format: TableFormat;
  /** Subset of dataset, arch, method, target (in the order the columns should appear); default all four. */
  groupBy?: string[];
  /** Metric names (src/metrics/names.ts, or DELTA_METRIC); default top1_after, compression_ratio, theoretical_speedup. */
  metrics?: string[];
  /** Caption (plain text; LaTeX specials are escaped). Markdown prints it as a pandoc "Table:" line. */
  caption?: string;
  /** LaTeX label; default "tab:prunebench". */
  label?: string;
  /** "method": targets (and the other grouped dimensions) as rows, one column per method. Markdown and LaTeX only. */
  pivot?: "method";
  /**
   * Dimensions not grouped by that may vary inside a row and are averaged over on purpose. Any other that varies is
   * refused: averaging sparsities as if they were seeds gives a number that means nothing.
   */
  averageOver?: string[];
  /** Dense row per dataset x arch block and the Δ top-1 column (default true). */
  dense?: boolean;
}

/** Bad table options (the CLI turns it into exit code 2). */
export class TableError extends Error {
  override name = "TableError";
}

export const DEFAULT_TABLE_METRICS = ["top1_after", "compression_ratio", "theoretical_speedup"] as const;

/**
 * Top-1 after fine-tuning minus the dense model's top-1 of the same run (same seed, dataset and architecture: a run's
 * top1_dense is the model it was pruned from), per run, then averaged. A table-only derived column: a fraction, shown
 * in percentage points.
 */
export const DELTA_METRIC = "delta_top1";

/** Short column titles for common metrics (plain text; LaTeX variants below). */
const TITLES: Record<string, { text: string; tex: string }> = {
  top1_after: { text: "Top-1 (%)", tex: "Top-1 (\\%)" },
  top5_after: { text: "Top-5 (%)", tex: "Top-5 (\\%)" },
  top1_dense: { text: "Dense top-1 (%)", tex: "Dense top-1 (\\%)" },
  top1_before: { text: "Top-1 before FT (%)", tex: "Top-1 before FT (\\%)" },
  [DELTA_METRIC]: { text: "Δ top-1 (pt)", tex: "$\\Delta$ top-1 (pt)" },
  compression_ratio: { text: "Compression (x)", tex: "Compression ($\\times$)" },
  theoretical_speedup: { text: "Speedup, theor. (x)", tex: "Speedup, theor.\\ ($\\times$)" },
  measured_speedup: { text: "Speedup, meas. (x)", tex: "Speedup, meas.\\ ($\\times$)" },
  params_nonzero: { text: "Params nonzero", tex: "Params $\\neq 0$" },
  macs_effective: { text: "MACs (eff.)", tex: "MACs (eff.)" },
  latency_pruned_ms: { text: "Latency (ms)", tex: "Latency (ms)" },
  sparsity: { text: "Sparsity (%)", tex: "Sparsity (\\%)" },
};

const DIM_TITLES: Record<GroupDim, string> = { dataset: "Dataset", arch: "Arch", method: "Method", target: "Target" };

/** The target column of each kind: its header says the kind, its cells hold the number. */
const TARGET_KINDS: ReadonlyArray<{ kind: PruneTarget["kind"]; text: string; tex: string; scale: number; maxDecimals: number }> = [
  { kind: "sparsity", text: "Sparsity", tex: "Sparsity", scale: 1, maxDecimals: 4 },
  { kind: "compression", text: "Compression target (x)", tex: "Compression target ($\\times$)", scale: 1, maxDecimals: 2 },
  { kind: "macs-reduction", text: "MACs reduction (%)", tex: "MACs reduction (\\%)", scale: 100, maxDecimals: 1 },
];

/**
 * What the dense model's row shows under each metric column: the dense counterpart the runs recorded, or the value a
 * dense model has by definition. Metrics not listed have no dense value ("–").
 */
const DENSE_EQUIVALENT: Record<string, string | number> = {
  top1_after: "top1_dense",
  top1_before: "top1_dense",
  top5_after: "top5_dense",
  top5_before: "top5_dense",
  top1_dense: "top1_dense",
  params_nonzero: "params_total",
  params_total: "params_total",
  macs_effective: "macs_dense",
  macs_dense: "macs_dense",
  latency_pruned_ms: "latency_dense_ms",
  latency_dense_ms: "latency_dense_ms",
  compression_ratio: 1,
  theoretical_speedup: 1,
  measured_speedup: 1,
  sparsity: 0,
};

/** Escape text for LaTeX text mode. */
export function escapeLatex(s: string): string {
  return s.replace(/[\\#$%&_{}~^<>|]/g, (c) => {
    switch (c) {
      case "\\":
        return "\\textbackslash{}";
      case "~":
        return "\\textasciitilde{}";
      case "^":
        return "\\textasciicircum{}";
      case "<":
        return "\\textless{}";
      case ">":
        return "\\textgreater{}";
      case "|":
        return "\\textbar{}";
      default:
        return `\\${c}`;
    }
  });
}

function unitOf(metric: string): string {
  if (metric === DELTA_METRIC) return "fraction";
  return METRICS.get(metric)?.unit ?? "";
}

// ---------------------------------------------------------------------------------------------------------------
// One number style per column: the scale (percent, k, M) and the decimals are chosen once from all of a column's
// values, so "266k" and "1.23M" or "0.5" and "0.95" never sit in the same column.

interface NumberStyle {
  /** Multiply raw values by this before printing. */
  factor: number;
  decimals: number;
  /** Unit suffix for the header when the column is scaled ("k", "M", "G"), else "". */
  suffix: string;
  /** Print "+" on positive values (differences). */
  signed: boolean;
}

/** Fewest decimals (up to max) that print every value exactly as rounded to max decimals. */
function neededDecimals(values: readonly number[], max: number): number {
  let d = 0;
  for (const v of values) {
    while (d < max && Math.abs(Number(v.toFixed(d)) - Number(v.toFixed(max))) > 1e-12) d++;
  }
  return d;
}

function metricStyle(metric: string, values: readonly number[]): NumberStyle {
  const u = unitOf(metric);
  const signed = metric === DELTA_METRIC;
  if (u === "fraction") return { factor: 100, decimals: 2, suffix: "", signed };
  if (u === "x" || u === "ms") return { factor: 1, decimals: 2, suffix: "", signed };
  if (u === "s") return { factor: 1, decimals: 1, suffix: "", signed };
  if (u === "count" || u === "MACs") {
    // Scaled by the smallest count, so none of the column's values rounds to zero (std aside).
    const nonzero = values.map(Math.abs).filter((v) => v > 0);
    const min = nonzero.length > 0 ? Math.min(...nonzero) : 0;
    if (min >= 1e9) return { factor: 1e-9, decimals: 2, suffix: "G", signed };
    if (min >= 1e6) return { factor: 1e-6, decimals: 2, suffix: "M", signed };
    if (min >= 1e4) return { factor: 1e-3, decimals: 1, suffix: "k", signed };
    return { factor: 1, decimals: 0, suffix: "", signed };
  }
  return { factor: 1, decimals: values.every((v) => Number.isInteger(v)) ? 0 : 3, suffix: "", signed };
}

function formatWith(style: NumberStyle, v: number, signed = style.signed): string {
  const s = (v * style.factor).toFixed(style.decimals);
  // -0.00 reads as a loss that is not there.
  const clean = /^-0(\.0+)?$/.test(s) ? s.slice(1) : s;
  return signed && !clean.startsWith("-") && Number(clean) !== 0 ? `+${clean}` : clean;
}

function titleText(metric: string, style?: NumberStyle): string {
  const suffix = style?.suffix ? ` (${style.suffix})` : "";
  if (TITLES[metric]) return TITLES[metric].text + suffix;
  const u = unitOf(metric);
  if (style?.suffix) return `${metric}${suffix}`;
  return u ? `${metric} (${u === "fraction" ? "%" : u})` : metric;
}

function titleTex(metric: string, style?: NumberStyle): string {
  const suffix = style?.suffix ? ` (${style.suffix})` : "";
  if (TITLES[metric]) return TITLES[metric].tex + suffix;
  const u = unitOf(metric);
  if (style?.suffix) return escapeLatex(`${metric}${suffix}`);
  return escapeLatex(u ? `${metric} (${u === "fraction" ? "%" : u})` : metric);
}

// ---------------------------------------------------------------------------------------------------------------
// Options

interface Resolved {
  dims: GroupDim[];
  metrics: string[];
  dense: boolean;
  averaged: GroupDim[];
}

function dimValue(r: RunRow, d: GroupDim): string {
  return d === "dataset" ? r.dataset : d === "arch" ? r.arch : d === "method" ? r.methodLabel : targetLabel({ kind: r.targetKind, value: r.targetValue });
}

/**
 * The dimensions not in `dims` that take more than one value inside some row: each with every value it takes (targets
 * in numeric order). A table grouped by them would average over them as if they were seeds.
 */
export function variedAxes(runs: readonly RunRow[], dims: readonly GroupDim[]): Array<{ axis: GroupDim; values: string[] }> {
  const done = runs.filter((r) => r.status === "done");
  const out: Array<{ axis: GroupDim; values: string[] }> = [];
  for (const axis of GROUP_DIMS) {
    if (dims.includes(axis)) continue;
    const inRow = new Map<string, Set<string>>();
    for (const r of done) {
      const k = dims.map((d) => dimValue(r, d)).join("\u0000");
      let s = inRow.get(k);
      if (!s) inRow.set(k, (s = new Set()));
      s.add(dimValue(r, axis));
    }
    if (![...inRow.values()].some((s) => s.size > 1)) continue;
    const seen = new Map<string, RunRow>();
    for (const r of done) if (!seen.has(dimValue(r, axis))) seen.set(dimValue(r, axis), r);
    const values = [...seen.entries()]
      .sort(([a, ra], [b, rb]) => (axis === "target" ? targetOrder(ra.targetKind, ra.targetValue) - targetOrder(rb.targetKind, rb.targetValue) : a.localeCompare(b)))
      .map(([v]) => v);
    out.push({ axis, values });
  }
  return out;
}

function resolve(data: ReportData, opts: TableOptions): Resolved {
  let dims = (opts.groupBy ?? [...GROUP_DIMS]).map((d) => {
    if (!(GROUP_DIMS as readonly string[]).includes(d)) throw new TableError(`unknown groupBy "${d}" (use any of ${GROUP_DIMS.join(", ")})`);
    return d as GroupDim;
  });
  if (new Set(dims).size !== dims.length) throw new TableError(`groupBy lists a dimension twice (${dims.join(", ")})`);
  if (opts.pivot !== undefined) {
    if (opts.pivot !== "method") throw new TableError(`--pivot: unknown value "${String(opts.pivot)}" (valid: method)`);
    if (opts.format === "csv" || opts.format === "json") {
      throw new TableError(`--pivot method is for markdown and latex; csv and json keep one row per group (long format) for your own tools to pivot`);
    }
    if (!dims.includes("target")) throw new TableError(`--pivot method puts targets as rows: --group-by must include target (got ${dims.join(",")})`);
    if (!dims.includes("method")) dims = [...dims, "method"];
  }
  const averaged = (opts.averageOver ?? []).map((d) => {
    if (!(GROUP_DIMS as readonly string[]).includes(d)) throw new TableError(`--average-over: unknown value "${d}" (valid: ${GROUP_DIMS.join(", ")})`);
    if (dims.includes(d as GroupDim)) throw new TableError(`--average-over ${d}: ${d} is in --group-by, so each row holds one ${d}; drop it from one of the two`);
    return d as GroupDim;
  });
  const refused = variedAxes(data.runs, dims).filter((v) => !averaged.includes(v.axis));
  if (refused.length > 0) {
    const shown = (vs: string[]) => (vs.length > 8 ? `${vs.slice(0, 8).join(", ")}, … (${vs.length} values)` : vs.join(", "));
    throw new TableError(
      refused
        .map((v) => `--group-by ${dims.join(",")} would average over ${v.axis}, which varies within a row (${shown(v.values)})`)
        .join("; ") +
        `: add ${refused.map((v) => v.axis).join(",")} to --group-by, or pass --average-over ${refused.map((v) => v.axis).join(",")} to average over ${refused.length > 1 ? "them" : "it"} on purpose`,
    );
  }
  const dense = opts.dense !== false;
  let metrics = opts.metrics ?? [...DEFAULT_TABLE_METRICS];
  if (metrics.length === 0) throw new TableError("metrics is empty");
  const present = new Set<string>([DELTA_METRIC]);
  for (const r of data.runs) for (const k of Object.keys(r.metrics)) present.add(k);
  for (const m of metrics) {
    if (!METRICS.has(m) && !present.has(m)) throw new TableError(`unknown metric "${m}" (see src/metrics/names.ts, or ${DELTA_METRIC})`);
  }
  // Δ sits right after top-1 unless asked for elsewhere; a pivot would double its columns, so there it is opt-in.
  const at = metrics.indexOf("top1_after");
  if (dense && opts.pivot === undefined && at >= 0 && !metrics.includes(DELTA_METRIC)) metrics = [...metrics.slice(0, at + 1), DELTA_METRIC, ...metrics.slice(at + 1)];
  return { dims, metrics, dense, averaged };
}

/** The runs with the derived Δ top-1 added to each run's metrics (runs without top1_dense get none). */
export function withDelta(runs: readonly RunRow[]): RunRow[] {
  return runs.map((r) => {
    const a = r.metrics.top1_after;
    const d = r.metrics.top1_dense;
    if (a === null || a === undefined || d === null || d === undefined) return r;
    return { ...r, metrics: { ...r.metrics, [DELTA_METRIC]: a - d } };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Dense rows

const BLOCK_DIMS: readonly GroupDim[] = ["dataset", "arch"];

function blockKey(by: Partial<Record<GroupDim, string>>, dims: readonly GroupDim[]): string {
  return dims.filter((d) => BLOCK_DIMS.includes(d)).map((d) => by[d] ?? "").join("\u0000");
}

/**
 * The dense model of each dataset x arch block as a row: each metric's dense counterpart averaged first per seed (all
 * runs of a seed were pruned from the same dense model), then over seeds, so n is the number of dense models.
 */
function denseGroups(runs: readonly RunRow[], dims: readonly GroupDim[], metrics: readonly string[]): Map<string, SummaryGroup> {
  const byBlock = new Map<string, RunRow[]>();
  for (const r of runs) {
    if (r.status !== "done") continue;
    const k = blockKey({ dataset: r.dataset, arch: r.arch }, dims);
    let b = byBlock.get(k);
    if (!b) byBlock.set(k, (b = []));
    b.push(r);
  }
  const out = new Map<string, SummaryGroup>();
  for (const [k, members] of byBlock) {
    // No dense accuracy recorded (a database from before it was stored): a row of constants would say nothing.
    if (!members.some((r) => typeof r.metrics.top1_dense === "number")) continue;
    const seeds = [...new Set(members.map((r) => r.seed))].sort((a, b) => a - b);
    const g: SummaryGroup = { by: { method: "dense" }, seeds, runKeys: [], metrics: {} };
    for (const d of dims) if (BLOCK_DIMS.includes(d)) g.by[d] = d === "dataset" ? members[0].dataset : members[0].arch;
    for (const m of metrics) {
      const eq = DENSE_EQUIVALENT[m];
      if (eq === undefined) continue;
      if (typeof eq === "number") {
        g.metrics[m] = { n: seeds.length, mean: eq, std: null, min: eq, max: eq, ci95: null };
        continue;
      }
      const perSeed = new Map<number, number[]>();
      for (const r of members) {
        const v = r.metrics[eq];
        if (v === null || v === undefined || !Number.isFinite(v)) continue;
        let l = perSeed.get(r.seed);
        if (!l) perSeed.set(r.seed, (l = []));
        l.push(v);
      }
      const s = summarize([...perSeed.values()].map((l) => l.reduce((a, b) => a + b, 0) / l.length));
      if (s) g.metrics[m] = s;
    }
    if (Object.keys(g.metrics).length > 0) out.set(k, g);
  }
  return out;
}

/** "1 seed", "3 seeds", or "2–3 seeds" when rows differ. */
export function seedPhrase(groups: readonly SummaryGroup[]): string {
  const counts = groups.map((g) => g.seeds.length).filter((n) => n > 0);
  if (counts.length === 0) return "0 seeds";
  const lo = Math.min(...counts);
  const hi = Math.max(...counts);
  if (lo !== hi) return `${lo}\u2013${hi} seeds`;
  return lo === 1 ? "1 seed" : `${lo} seeds`;
}

/**
 * Bold: the method that wins its target outside the noise, the verdict the report's results and winner tables and
 * `bench compare` give (reports/winners.ts: paired by seed, ties bold nothing). Only rows that are whole (dataset, arch,
 * method, target) groups have one: a row averaged over targets (--average-over) is bold nowhere.
 */
function bestFlags(groups: SummaryGroup[], dims: GroupDim[], metrics: string[], runs: readonly RunRow[]): boolean[][] {
  const whole = (["dataset", "arch", "method", "target"] as const).every((d) => dims.includes(d));
  if (!whole) return groups.map(() => metrics.map(() => false));
  const winners = new Map(metrics.map((m) => [m, METRICS.get(m)?.higherIsBetter == null ? new Set<string>() : significantWinnerIds(runs, m)]));
  return groups.map((g) => metrics.map((m) =>
    g.targetKind !== undefined && winners.get(m)!.has(groupId(g.by.dataset!, g.by.arch!, g.by.method!, g.targetKind, g.targetValue!))));
}


/** Whether published rows can be placed: they name a dataset, arch and target, so the table must be grouped by those. */
function placed(dims: readonly GroupDim[]): boolean {
  return (["dataset", "arch", "target"] as const).every((d) => dims.includes(d));
}

/** One row of a rendered table: a group of our runs, a block's dense model, or a published row under the group it compares with. */
type TableRow = { kind: "group"; group: SummaryGroup; index: number } | { kind: "dense"; group: SummaryGroup } | { kind: "reference"; ref: ReferenceRow };

/**
 * Our groups in order, each followed by the published rows that describe it (same dataset, arch, target and method),
 * then the rows of methods we did not run after the last group at their dataset, arch and target; rows that match no
 * group (a dense baseline, a target we did not run) come last. A published row names a dataset, arch and target, so
 * it is placed only when the table is grouped by all three; otherwise it would sit beside numbers it does not describe.
 * With `dense`, each dataset x arch block opens with its dense model.
 */
function tableRows(groups: SummaryGroup[], dims: GroupDim[], references: readonly ReferenceRow[], dense?: Map<string, SummaryGroup>): TableRow[] {
  const rows: TableRow[] = [];
  const refs = placed(dims) ? references : [];
  const key = (g: SummaryGroup) => ({
    dataset: g.by.dataset ?? "",
    arch: g.by.arch ?? "",
    method: g.by.method ?? "",
    methodLabel: g.by.method ?? "",
    targetKind: g.targetKind ?? "sparsity",
    targetValue: g.targetValue ?? NaN,
  });
  const after = new Map<number, ReferenceRow[]>();
  const trailing: ReferenceRow[] = [];
  for (const ref of refs) {
    let at = dims.includes("method") ? groups.findIndex((g) => referenceMatches(ref, key(g))) : -1;
    if (at < 0) {
      for (let i = groups.length - 1; i >= 0 && at < 0; i--) if (referenceSameTarget(ref, key(groups[i]))) at = i;
      // Same target, another method: after the last group at that target, not after the first of its method.
      if (at >= 0) for (let i = at; i < groups.length && referenceSameTarget(ref, key(groups[i])); i++) at = i;
    }
    if (at < 0) trailing.push(ref);
    else after.set(at, [...(after.get(at) ?? []), ref]);
  }
  const opened = new Set<string>();
  groups.forEach((group, index) => {
    const block = blockKey(group.by, dims);
    const d = dense?.get(block);
    if (d && !opened.has(block)) {
      opened.add(block);
      rows.push({ kind: "dense", group: d });
    }
    rows.push({ kind: "group", group, index });
    for (const ref of after.get(index) ?? []) rows.push({ kind: "reference", ref });
  });
  for (const ref of trailing) rows.push({ kind: "reference", ref });
  return rows;
}

function referenceDimValue(ref: ReferenceRow, d: GroupDim): string {
  return d === "dataset" ? ref.dataset : d === "arch" ? ref.arch : d === "method" ? ref.method : targetLabel(ref.target);
}

/** A published row's cell for each grouped dimension; the first is marked ↳ and the method (or target) cites the paper. */
function referenceDimCells(ref: ReferenceRow, dims: GroupDim[]): string[] {
  const cite = `${ref.paper}, ${ref.source}`;
  const citeIn: GroupDim = dims.includes("method") ? "method" : "target";
  return dims.map((d, i) => {
    const value = d === "target" && citeIn !== "target" ? "" : referenceDimValue(ref, d);
    const cited = d === citeIn ? `${value} [${cite}]` : value;
    return i === 0 ? `↳ ${cited}` : cited;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Layout shared by Markdown and LaTeX: every cell as text, with the column styles chosen once.

interface MetricCell {
  mean: string;
  std: string | null;
  bold: boolean;
  reference: boolean;
}

interface LaidRow {
  kind: TableRow["kind"];
  /** One text cell per non-target dimension, in dims order; "" where a repeat is left blank. */
  dims: string[];
  /** One cell per target kind column: the number, or "" (another kind, a blank repeat, a dense row). */
  targets: string[];
  n: string;
  metrics: Array<MetricCell | null>;
  /** The dataset x arch block of a group or dense row (null for a published row). */
  block: string | null;
}

interface Layout {
  dims: GroupDim[];
  textDims: GroupDim[];
  kinds: typeof TARGET_KINDS[number][];
  targetDecimals: number[];
  metrics: string[];
  styles: NumberStyle[];
  /** Per metric: whether any row has a std (LaTeX then gives the column a ± sub-column). */
  hasStd: boolean[];
  rows: LaidRow[];
  groups: SummaryGroup[];
}

function targetKinds(groups: readonly SummaryGroup[], refs: readonly ReferenceRow[]) {
  const present = new Set<string>([...groups.map((g) => g.targetKind ?? ""), ...refs.map((r) => r.target.kind)]);
  return TARGET_KINDS.filter((k) => present.has(k.kind));
}

function targetCells(kinds: Layout["kinds"], decimals: number[], kind: PruneTarget["kind"] | undefined, value: number | undefined): string[] {
  return kinds.map((k, i) => (k.kind === kind && value !== undefined ? (value * k.scale).toFixed(decimals[i]) : ""));
}

function layout(groups: SummaryGroup[], dims: GroupDim[], metrics: string[], references: readonly ReferenceRow[], dense: Map<string, SummaryGroup> | undefined, runs: readonly RunRow[]): Layout {
  const rows = tableRows(groups, dims, references, dense);
  const refs = rows.flatMap((r) => (r.kind === "reference" ? [r.ref] : []));
  const kinds = dims.includes("target") ? targetKinds(groups, refs) : [];
  const targetDecimals = kinds.map((k) => {
    const vs = [...groups.filter((g) => g.targetKind === k.kind).map((g) => g.targetValue!), ...refs.filter((r) => r.target.kind === k.kind).map((r) => r.target.value)];
    return neededDecimals(vs.map((v) => v * k.scale), k.maxDecimals);
  });
  const statsOf = (r: TableRow, m: string): number[] => {
    if (r.kind === "reference") {
      const v = referenceMetric(r.ref, m);
      return v === null ? [] : [v];
    }
    const s = r.group.metrics[m];
    return s ? [s.mean, ...(s.std === null ? [] : [s.std])] : [];
  };
  const styles = metrics.map((m) => metricStyle(m, rows.flatMap((r) => statsOf(r, m))));
  const best = bestFlags(groups, dims, metrics, runs);
  const textDims: GroupDim[] = dims.filter((d) => d !== "target");
  // A dimension repeats from the row above only while every dimension left of it does; the last never repeats.
  const repeatable = dims.slice(0, -1);
  let prev: Partial<Record<GroupDim, string>> | null = null;
  const laid: LaidRow[] = rows.map((row) => {
    if (row.kind === "reference") {
      prev = null;
      const cells = referenceDimCells(row.ref, dims);
      return {
        kind: "reference",
        dims: textDims.map((d) => cells[dims.indexOf(d)]),
        targets: targetCells(kinds, targetDecimals, row.ref.target.kind, row.ref.target.value),
        n: "ref",
        block: null,
        metrics: metrics.map((m, j) => {
          const v = referenceMetric(row.ref, m);
          return v === null ? null : { mean: formatWith(styles[j], v), std: null, bold: false, reference: true };
        }),
      };
    }
    const g = row.group;
    const key: Partial<Record<GroupDim, string>> = { ...g.by, ...(row.kind === "dense" ? { target: "" } : {}) };
    const blank = new Set<GroupDim>();
    if (prev !== null) {
      for (const d of repeatable) {
        if (key[d] !== prev[d]) break;
        blank.add(d);
      }
    }
    prev = key;
    const bold = row.kind === "group" ? best[row.index] : metrics.map(() => false);
    return {
      kind: row.kind,
      dims: textDims.map((d) => (blank.has(d) ? "" : g.by[d] ?? "")),
      targets: row.kind === "dense" || blank.has("target") ? kinds.map(() => "") : targetCells(kinds, targetDecimals, g.targetKind, g.targetValue),
      n: String(row.kind === "dense" ? g.seeds.length : g.runKeys.length),
      block: blockKey(g.by, dims),
      metrics: metrics.map((m, j) => {
        const s: Stat | undefined = g.metrics[m];
        if (!s) return null;
        return { mean: formatWith(styles[j], s.mean), std: s.std === null ? null : formatWith(styles[j], s.std, false), bold: bold[j], reference: false };
      }),
    };
  });
  const hasStd = metrics.map((_, j) => laid.some((r) => r.metrics[j]?.std != null));
  return { dims, textDims, kinds, targetDecimals, metrics, styles, hasStd, rows: laid, groups };
}

/** Columns in display order: each dimension where it was asked for, the target as one numeric column per kind. */
type DimColumn = { dim: GroupDim; kind?: number };

function dimColumns(l: Pick<Layout, "dims" | "kinds">): DimColumn[] {
  return l.dims.flatMap((d): DimColumn[] => (d === "target" ? l.kinds.map((_, i) => ({ dim: d, kind: i })) : [{ dim: d }]));
}

function defaultCaption(l: Pick<Layout, "groups" | "metrics" | "dims">, opts: TableOptions, r: Resolved, references: boolean, pivot: boolean): string {
  const seeds = seedPhrase(l.groups);
  const single = l.groups.every((g) => g.runKeys.length <= 1);
  const parts = [
    single ? `One run per ${pivot ? "cell" : "row"} (${seeds})` : `Mean ${"\u00b1"} sample std over ${seeds} per ${pivot ? "cell" : "row"}`,
  ];
  if (r.averaged.length > 0) parts[0] += `, averaged over ${r.averaged.join(" and ")}`;
  if (l.metrics.some((m) => unitOf(m) === "fraction")) parts.push("accuracy in percent");
  if (l.metrics.includes(DELTA_METRIC)) parts.push(`${"\u0394"}: top-1 minus the dense model it was pruned from (same seed, dataset and architecture), in points`);
  if (r.dense && l.dims.includes("method")) parts.push("dense: the pretrained model before pruning");
  if (!pivot) {
    const blockDims = l.dims.filter((d) => d === "dataset" || d === "arch");
    parts.push(`best value per column${blockDims.length ? " within each " + blockDims.join(" x ") + " block" : ""} in bold`);
  }
  if (references) parts.push("published numbers (italic, ref.) converted to our units");
  void opts;
  return parts.join("; ") + ".";
}

function markdownCaption(text: string, opts: TableOptions): string {
  return `\nTable: ${text.replace(/\n/g, " ")}${opts.label ? ` {#${opts.label.replace(/[^A-Za-z0-9:._-]/g, "-")}}` : ""}\n`;
}

function markdownGrid(header: string[], right: boolean[], rows: string[][]): string {
  const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\n/g, " ");
  const h = header.map(esc);
  const body = rows.map((r) => r.map((c, i) => (right[i] ? c : esc(c))));
  const widths = h.map((x, c) => Math.max(3, x.length, ...body.map((r) => r[c].length)));
  const line = (cells: string[]) => `| ${cells.map((x, c) => (right[c] ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (right[c] ? ` ${"-".repeat(w - 1)}: ` : ` ${"-".repeat(w)} `)).join("|")}|`;
  return [line(h), rule, ...body.map(line)].join("\n") + "\n";
}

function markdownMetric(c: MetricCell | null): string {
  if (!c) return "–";
  const mean = c.bold ? `**${c.mean}**` : c.mean;
  return c.std === null ? mean : `${mean} ± ${c.std}`;
}

function markdown(l: Layout, opts: TableOptions, r: Resolved, references: boolean): string {
  const cols = dimColumns(l);
  const header = [...cols.map((c) => (c.kind === undefined ? DIM_TITLES[c.dim] : l.kinds[c.kind].text)), "n", ...l.metrics.map((m, j) => titleText(m, l.styles[j]))];
  const right = [...cols.map((c) => c.kind !== undefined), true, ...l.metrics.map(() => true)];
  const rows = l.rows.map((row) => [
    ...cols.map((c) => (c.kind === undefined ? row.dims[l.textDims.indexOf(c.dim)] : row.targets[c.kind] || (row.kind === "dense" && c.kind === 0 ? "–" : ""))),
    row.n,
    ...row.metrics.map(markdownMetric),
  ]);
  const table = markdownGrid(header, right, rows);
  return opts.caption !== undefined || opts.label !== undefined ? table + markdownCaption(opts.caption ?? defaultCaption(l, opts, r, references, false), opts) : table;
}

// ---------------------------------------------------------------------------------------------------------------
// LaTeX: booktabs rules, siunitx S columns aligned on the decimal point (mean and ± std in sub-columns).

/** siunitx table-format that fits every printed number of a column ("-2.2": a sign, 2 integer digits, 2 decimals). */
function tableFormat(texts: readonly string[]): string {
  const nums = texts.filter((t) => /^[+-]?\d+(\.\d+)?$/.test(t));
  const signed = nums.some((t) => /^[+-]/.test(t));
  const int = Math.max(1, ...nums.map((t) => t.replace(/^[+-]/, "").split(".")[0].length));
  const dec = Math.max(0, ...nums.map((t) => t.split(".")[1]?.length ?? 0));
  return `${signed ? "-" : ""}${int}${dec > 0 ? `.${dec}` : ""}`;
}

const PM = "@{\\,\\(\\pm\\)\\,}";

function texMetricCells(c: MetricCell | null, withStd: boolean): string[] {
  if (!c) return withStd ? ["{--}", "{}"] : ["{--}"];
  // Bold reaches an S column's number through text-series-to-math (set in the table's \sisetup).
  const mean = c.reference ? `{\\itshape ${c.mean}}` : c.bold ? `\\bfseries ${c.mean}` : c.mean;
  if (!withStd) return [mean];
  return [mean, c.std ?? (c.reference ? "{}" : "{--}")];
}

function metricSpecs(l: Layout, cells: (j: number) => Array<MetricCell | null>): string[] {
  return l.metrics.map((_, j) => {
    const cs = cells(j);
    const mean = `S[table-format=${tableFormat(cs.flatMap((c) => (c && !c.reference ? [c.mean] : [])))}]`;
    return l.hasStd[j] ? `${mean}${PM}S[table-format=${tableFormat(cs.flatMap((c) => (c?.std ? [c.std] : [])))}]` : mean;
  });
}

function texDocument(spec: string, headerLines: string[], body: string[], caption: string, opts: TableOptions): string {
  const tex = escapeLatex(caption).replace(/\u00b1/g, "$\\pm$").replace(/\u0394/g, "$\\Delta$").replace(/\u2013/g, "--");
  return [
    "% Generated by prunebench. Requires \\usepackage{booktabs} and \\usepackage{siunitx} (v3).",
    "\\begin{table}[t]",
    "  \\centering",
    "  \\small",
    "  \\sisetup{reset-text-series = false, text-series-to-math = true}",
    `  \\caption{${tex}}`,
    `  \\label{${(opts.label ?? "tab:prunebench").replace(/[^A-Za-z0-9:._-]/g, "-")}}`,
    `  \\begin{tabular}{${spec}}`,
    "    \\toprule",
    ...headerLines.map((h) => `    ${h}`),
    "    \\midrule",
    ...body,
    "    \\bottomrule",
    "  \\end{tabular}",
    "\\end{table}",
    "",
  ].join("\n");
}

function latex(l: Layout, opts: TableOptions, r: Resolved, references: boolean): string {
  const cols = dimColumns(l);
  const dimSpec = cols.map((c) => (c.kind === undefined ? "l" : `S[table-format=${tableFormat(l.rows.map((row) => row.targets[c.kind!]))}]`));
  const spec = [...dimSpec, "r", ...metricSpecs(l, (j) => l.rows.map((row) => row.metrics[j]))].join("");
  const header = [
    ...cols.map((c) => (c.kind === undefined ? DIM_TITLES[c.dim] : `{${l.kinds[c.kind].tex}}`)),
    "$n$",
    ...l.metrics.map((m, j) => (l.hasStd[j] ? `\\multicolumn{2}{c}{${titleTex(m, l.styles[j])}}` : `{${titleTex(m, l.styles[j])}}`)),
  ];
  const lines: string[] = [];
  let prevBlock: string | null = null;
  for (const row of l.rows) {
    const dimCells = cols.map((c) => {
      if (c.kind !== undefined) return row.targets[c.kind] === "" ? (row.kind === "dense" && c.kind === 0 ? "{--}" : "{}") : row.targets[c.kind];
      const text = escapeLatex(row.dims[l.textDims.indexOf(c.dim)]);
      return row.kind === "reference" ? (text === "" ? "" : `\\textit{${text.replace("↳", "$\\hookrightarrow$")}}`) : text;
    });
    if (row.block !== null) {
      if (prevBlock !== null && row.block !== prevBlock) lines.push("    \\midrule");
      prevBlock = row.block;
    }
    const cells = [...dimCells, row.kind === "reference" ? "ref." : row.n, ...row.metrics.flatMap((c, j) => texMetricCells(c, l.hasStd[j]))];
    lines.push(`    ${cells.join(" & ")} \\\\`);
  }
  return texDocument(spec, [`${header.join(" & ")} \\\\`], lines, opts.caption ?? defaultCaption(l, opts, r, references, false), opts);
}

// ---------------------------------------------------------------------------------------------------------------
// Pivot: the other grouped dimensions (targets last) as rows, one column (or one group of columns) per method.

function pivot(runs: readonly RunRow[], r: Resolved, opts: TableOptions): string {
  const rowDims = r.dims.filter((d) => d !== "method");
  const groups = summarizeGroups(runs, [...rowDims, "method"]);
  const methods = [...new Set(groups.map((g) => g.by.method!))].sort((a, b) => a.localeCompare(b));
  const dense = r.dense ? denseGroups(runs, rowDims, r.metrics) : new Map<string, SummaryGroup>();
  const entities = [...(dense.size > 0 ? ["dense"] : []), ...methods];
  const rows: Array<{ first: SummaryGroup; cells: Map<string, SummaryGroup> }> = [];
  const index = new Map<string, number>();
  for (const g of groups) {
    const k = rowDims.map((d) => g.by[d]).join("\u0000");
    if (!index.has(k)) {
      index.set(k, rows.length);
      rows.push({ first: g, cells: new Map() });
    }
    rows[index.get(k)!].cells.set(g.by.method!, g);
  }
  // The dense model is one per block: printed on the block's first row, blank below.
  const seenBlock = new Set<string>();
  for (const row of rows) {
    const b = blockKey(row.first.by, rowDims);
    const d = dense.get(b);
    if (d && !seenBlock.has(b)) row.cells.set("dense", d);
    seenBlock.add(b);
  }
  const kinds = rowDims.includes("target") ? targetKinds(groups, []) : [];
  const targetDecimals = kinds.map((k) => neededDecimals(groups.filter((g) => g.targetKind === k.kind).map((g) => g.targetValue! * k.scale), k.maxDecimals));
  const styles = r.metrics.map((m) => metricStyle(m, rows.flatMap((row) => [...row.cells.values()].flatMap((g) => {
    const s = g.metrics[m];
    return s ? [s.mean, ...(s.std === null ? [] : [s.std])] : [];
  }))));
  const columns = entities.flatMap((e) => r.metrics.map((m, j) => ({ entity: e, metric: m, j })));
  const cell = (g: SummaryGroup | undefined, m: string, j: number): MetricCell | null => {
    const s = g?.metrics[m];
    return s ? { mean: formatWith(styles[j], s.mean), std: s.std === null ? null : formatWith(styles[j], s.std, false), bold: false, reference: false } : null;
  };
  const textDims: GroupDim[] = rowDims.filter((d) => d !== "target");
  const repeatable = rowDims.slice(0, -1);
  let prev: Partial<Record<GroupDim, string>> | null = null;
  const laid = rows.map((row) => {
    const blank = new Set<GroupDim>();
    if (prev !== null) for (const d of repeatable) {
      if (row.first.by[d] !== prev[d]) break;
      blank.add(d);
    }
    prev = row.first.by;
    return {
      dims: textDims.map((d) => (blank.has(d) ? "" : row.first.by[d] ?? "")),
      targets: targetCells(kinds, targetDecimals, row.first.targetKind, row.first.targetValue),
      block: blockKey(row.first.by, rowDims),
      metrics: columns.map((c) => cell(row.cells.get(c.entity), c.metric, c.j)),
    };
  });
  const l = { groups, metrics: r.metrics, dims: r.dims };
  const one = r.metrics.length === 1;
  const caption = opts.caption ?? `${one ? `${titleText(r.metrics[0], styles[0])} per method. ` : ""}${defaultCaption(l, opts, r, false, true)}`;
  const dimCols = dimColumns({ dims: rowDims, kinds });
  const dimCell = (row: (typeof laid)[number], c: (typeof dimCols)[number]) => (c.kind === undefined ? row.dims[textDims.indexOf(c.dim)] : row.targets[c.kind]);
  if (opts.format === "markdown") {
    const header = [
      ...dimCols.map((c) => (c.kind === undefined ? DIM_TITLES[c.dim] : kinds[c.kind].text)),
      ...columns.map((c) => (one ? c.entity : `${c.entity}: ${titleText(c.metric, styles[c.j])}`)),
    ];
    const right = [...dimCols.map((c) => c.kind !== undefined), ...columns.map(() => true)];
    const table = markdownGrid(header, right, laid.map((row) => [...dimCols.map((c) => dimCell(row, c)), ...row.metrics.map((c) => (c ? markdownMetric(c) : ""))]));
    return opts.caption !== undefined || opts.label !== undefined ? table + markdownCaption(caption, opts) : table;
  }
  const hasStd = columns.map((_, i) => laid.some((row) => row.metrics[i]?.std != null));
  const specOf = (i: number) => {
    const cs = laid.map((row) => row.metrics[i]);
    const mean = `S[table-format=${tableFormat(cs.flatMap((c) => (c ? [c.mean] : [])))}]`;
    return hasStd[i] ? `${mean}${PM}S[table-format=${tableFormat(cs.flatMap((c) => (c?.std ? [c.std] : [])))}]` : mean;
  };
  const spec = [...dimCols.map((c) => (c.kind === undefined ? "l" : `S[table-format=${tableFormat(laid.map((row) => row.targets[c.kind!]))}]`)), ...columns.map((_, i) => specOf(i))].join("");
  const width = (i: number) => (hasStd[i] ? 2 : 1);
  const head = (text: string, i: number) => (hasStd[i] ? `\\multicolumn{2}{c}{${text}}` : `{${text}}`);
  const dimTitles = dimCols.map((c) => (c.kind === undefined ? DIM_TITLES[c.dim] : `{${kinds[c.kind].tex}}`));
  let headerLines: string[];
  if (one) {
    headerLines = [`${[...dimTitles, ...columns.map((c, i) => head(escapeLatex(c.entity), i))].join(" & ")} \\\\`];
  } else {
    const top: string[] = dimCols.map(() => "");
    const rules: string[] = [];
    let at = dimCols.length + 1;
    entities.forEach((e, k) => {
      const span = r.metrics.reduce((a, _, j) => a + width(k * r.metrics.length + j), 0);
      top.push(`\\multicolumn{${span}}{c}{${escapeLatex(e)}}`);
      rules.push(`\\cmidrule(lr){${at}-${at + span - 1}}`);
      at += span;
    });
    headerLines = [`${top.join(" & ")} \\\\`, rules.join(" "), `${[...dimTitles, ...columns.map((c, i) => head(titleTex(c.metric, styles[c.j]), i))].join(" & ")} \\\\`];
  }
  const body: string[] = [];
  let prevBlock: string | null = null;
  for (const row of laid) {
    if (prevBlock !== null && row.block !== prevBlock) body.push("    \\midrule");
    prevBlock = row.block;
    const cells = [
      ...dimCols.map((c) => {
        const t = dimCell(row, c);
        return c.kind === undefined ? escapeLatex(t) : t === "" ? "{}" : t;
      }),
      ...row.metrics.flatMap((c, i) => (c ? texMetricCells(c, hasStd[i]) : hasStd[i] ? ["{}", "{}"] : ["{}"])),
    ];
    body.push(`    ${cells.join(" & ")} \\\\`);
  }
  return texDocument(spec, headerLines, body, caption, opts);
}

function csvRows(groups: SummaryGroup[], dims: GroupDim[], metrics: string[], references: readonly ReferenceRow[], dense?: Map<string, SummaryGroup>): { columns: string[]; rows: Record<string, unknown>[] } {
  const columns: string[] = [];
  for (const d of dims) {
    columns.push(d);
    if (d === "target") columns.push("target_kind", "target_value");
  }
  columns.push("n");
  for (const m of metrics) columns.push(`${m}_mean`, `${m}_std`, `${m}_n`, `${m}_ci95_lo`, `${m}_ci95_hi`);
  const layout = tableRows(groups, dims, references, dense);
  // Only tables that hold published rows get the columns that say so; others keep their columns.
  const withReferences = layout.some((r) => r.kind === "reference");
  if (withReferences) columns.push("reference_paper", "reference_source", "reference_note");
  const rows = layout.map((row) => {
    if (row.kind === "reference") {
      const { ref } = row;
      const o: Record<string, unknown> = {};
      for (const d of dims) {
        o[d] = referenceDimValue(ref, d);
        if (d === "target") {
          o.target_kind = ref.target.kind;
          o.target_value = ref.target.value;
        }
      }
      o.n = null;
      for (const m of metrics) {
        o[`${m}_mean`] = referenceMetric(ref, m);
        o[`${m}_std`] = null;
        o[`${m}_n`] = null;
        o[`${m}_ci95_lo`] = null;
        o[`${m}_ci95_hi`] = null;
      }
      o.reference_paper = ref.paper;
      o.reference_source = ref.source;
      o.reference_note = ref.note ?? null;
      return o;
    }
    const g = row.group;
    const o: Record<string, unknown> = {};
    for (const d of dims) {
      o[d] = g.by[d] ?? null;
      if (d === "target") {
        o.target_kind = g.targetKind ?? null;
        o.target_value = g.targetValue ?? null;
      }
    }
    // A dense row's n counts dense models (one per seed), a group's its runs.
    o.n = row.kind === "dense" ? g.seeds.length : g.runKeys.length;
    for (const m of metrics) {
      const s = g.metrics[m];
      o[`${m}_mean`] = s?.mean ?? null;
      o[`${m}_std`] = s?.std ?? null;
      o[`${m}_n`] = s?.n ?? 0;
      o[`${m}_ci95_lo`] = s?.ci95?.[0] ?? null;
      o[`${m}_ci95_hi`] = s?.ci95?.[1] ?? null;
    }
    if (withReferences) {
      o.reference_paper = null;
      o.reference_source = null;
      o.reference_note = null;
    }
    return o;
  });
  return { columns, rows };
}

/**
 * Aggregated results table. Markdown and LaTeX show "mean ± std" (fractions as percent, best per column in bold),
 * each dataset x arch block opening with its dense model, repeated cells left blank; CSV has raw numbers (fractions
 * stay fractions) with _mean, _std, _n, _ci95_lo, _ci95_hi columns per metric; JSON is an array of {<dims>, n, seeds,
 * metrics: {name: {n, mean, std, min, max, ci95}}}. Throws TableError for options that would mislead (see
 * TableOptions.averageOver).
 */
export function renderTable(data: ReportData, opts: TableOptions): string {
  const r = resolve(data, opts);
  const { dims, metrics } = r;
  const runs = withDelta(data.runs);
  if (opts.pivot === "method") return pivot(runs, r, opts);
  const groups = summarizeGroups(runs, dims);
  const dense = r.dense && dims.includes("method") ? denseGroups(runs, dims, metrics) : undefined;
  const placedRefs = placed(dims) && data.references.length > 0;
  switch (opts.format) {
    case "markdown":
      return markdown(layout(groups, dims, metrics, data.references, dense, runs), opts, r, placedRefs);
    case "latex":
      return latex(layout(groups, dims, metrics, data.references, dense, runs), opts, r, placedRefs);
    case "csv": {
      const { columns, rows } = csvRows(groups, dims, metrics, data.references, dense);
      return stringify(rows, { header: true, columns, cast: { number: (v) => String(v) } });
    }
    case "json":
      return (
        JSON.stringify(
          tableRows(groups, dims, data.references, dense).map((row) => {
            if (row.kind === "reference") {
              const { ref } = row;
              return {
                ...Object.fromEntries(dims.map((d) => [d, referenceDimValue(ref, d)])),
                targetKind: ref.target.kind,
                targetValue: ref.target.value,
                reference: { paper: ref.paper, source: ref.source, ...(ref.note !== undefined ? { note: ref.note } : {}) },
                // `value` in our unit (src/metrics/units.ts), `published` as the paper gave it.
                metrics: Object.fromEntries(metrics.map((m) => [m, ref.metrics[m] ? { value: referenceMetric(ref, m), published: ref.metrics[m] } : null])),
              };
            }
            const g = row.group;
            return {
              ...g.by,
              ...(row.kind === "dense" ? { dense: true } : {}),
              ...(dims.includes("target") && row.kind === "group" ? { targetKind: g.targetKind, targetValue: g.targetValue } : {}),
              n: row.kind === "dense" ? g.seeds.length : g.runKeys.length,
              seeds: g.seeds,
              metrics: Object.fromEntries(metrics.map((m) => [m, g.metrics[m] ?? null])),
            };
          }),
          null,
          2,
        ) + "\n"
      );
    default:
      throw new Error(`renderTable: unknown format "${String((opts as { format: unknown }).format)}" (markdown, latex, csv, json)`);
  }
}
