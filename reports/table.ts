/**
 * renderTable: aggregated results as Markdown, LaTeX (booktabs), CSV or JSON, for papers and READMEs.
 * Rows are groups of done runs (see summarizeGroups); values are mean ± sample std over the group's runs.
 */
import { stringify } from "csv-stringify/sync";
import { METRICS } from "../src/metrics/names.js";
import type { ReferenceRow } from "../src/core/types.js";
import { GROUP_DIMS, referenceMatches, referenceMetric, referenceSameTarget, summarizeGroups, type GroupDim, type Stat, type SummaryGroup } from "./aggregate.js";
import { targetLabel } from "../src/grid/label.js";
import { compactCount, trimNum } from "./format.js";
import type { ReportData } from "./model.js";

export type TableFormat = "markdown" | "latex" | "csv" | "json";

export interface TableOptions {
  format: TableFormat;
  /** Subset of dataset, arch, method, target (in the order the columns should appear); default all four. */
  groupBy?: string[];
  /** Metric names (src/metrics/names.ts); default top1_after, compression_ratio, theoretical_speedup. */
  metrics?: string[];
  /** LaTeX caption (plain text; special characters are escaped). */
  caption?: string;
  /** LaTeX label; default "tab:prunebench". */
  label?: string;
}

export const DEFAULT_TABLE_METRICS = ["top1_after", "compression_ratio", "theoretical_speedup"] as const;

/** Short column titles for common metrics (plain text; LaTeX variants below). */
const TITLES: Record<string, { text: string; tex: string }> = {
  top1_after: { text: "Top-1 (%)", tex: "Top-1 (\\%)" },
  top5_after: { text: "Top-5 (%)", tex: "Top-5 (\\%)" },
  top1_dense: { text: "Dense top-1 (%)", tex: "Dense top-1 (\\%)" },
  top1_before: { text: "Top-1 before FT (%)", tex: "Top-1 before FT (\\%)" },
  compression_ratio: { text: "Compression (x)", tex: "Compression ($\\times$)" },
  theoretical_speedup: { text: "Speedup, theor. (x)", tex: "Speedup, theor.\\ ($\\times$)" },
  measured_speedup: { text: "Speedup, meas. (x)", tex: "Speedup, meas.\\ ($\\times$)" },
  params_nonzero: { text: "Params nonzero", tex: "Params $\\neq 0$" },
  macs_effective: { text: "MACs (eff.)", tex: "MACs (eff.)" },
  latency_pruned_ms: { text: "Latency (ms)", tex: "Latency (ms)" },
  sparsity: { text: "Sparsity (%)", tex: "Sparsity (\\%)" },
};

const DIM_TITLES: Record<GroupDim, string> = { dataset: "Dataset", arch: "Arch", method: "Method", target: "Target" };

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
  return METRICS.get(metric)?.unit ?? "";
}

/** A value in table scale: fractions as percent. */
function scaled(metric: string, v: number): number {
  return unitOf(metric) === "fraction" ? v * 100 : v;
}

function fmt(metric: string, v: number): string {
  const u = unitOf(metric);
  if (u === "count" || u === "MACs") return compactCount(v);
  if (u === "fraction" || u === "x" || u === "ms") return scaled(metric, v).toFixed(2);
  if (u === "s") return v.toFixed(1);
  return Math.abs(v) >= 1e4 ? compactCount(v) : trimNum(v, 3);
}

function titleText(metric: string): string {
  if (TITLES[metric]) return TITLES[metric].text;
  const u = unitOf(metric);
  return u ? `${metric} (${u === "fraction" ? "%" : u})` : metric;
}

function titleTex(metric: string): string {
  if (TITLES[metric]) return TITLES[metric].tex;
  const u = unitOf(metric);
  return escapeLatex(u ? `${metric} (${u === "fraction" ? "%" : u})` : metric);
}

function validate(data: ReportData, opts: TableOptions): { dims: GroupDim[]; metrics: string[] } {
  const dims = (opts.groupBy ?? [...GROUP_DIMS]).map((d) => {
    if (!(GROUP_DIMS as readonly string[]).includes(d)) throw new Error(`renderTable: unknown groupBy "${d}" (use any of ${GROUP_DIMS.join(", ")})`);
    return d as GroupDim;
  });
  if (new Set(dims).size !== dims.length) throw new Error(`renderTable: groupBy lists a dimension twice (${dims.join(", ")})`);
  const metrics = opts.metrics ?? [...DEFAULT_TABLE_METRICS];
  if (metrics.length === 0) throw new Error("renderTable: metrics is empty");
  const present = new Set<string>();
  for (const r of data.runs) for (const k of Object.keys(r.metrics)) present.add(k);
  for (const m of metrics) {
    if (!METRICS.has(m) && !present.has(m)) throw new Error(`renderTable: unknown metric "${m}" (see src/metrics/names.ts)`);
  }
  return { dims, metrics };
}

/** For each row and metric: whether the row holds the best mean of its dataset x arch block (when grouped by them). */
function bestFlags(groups: SummaryGroup[], dims: GroupDim[], metrics: string[]): boolean[][] {
  const blockDims = dims.filter((d) => d === "dataset" || d === "arch");
  const blockOf = (g: SummaryGroup) => blockDims.map((d) => g.by[d]).join("\u0000");
  const best = new Map<string, number>();
  metrics.forEach((m, j) => {
    const dir = METRICS.get(m)?.higherIsBetter;
    if (dir === null || dir === undefined) return;
    for (const g of groups) {
      const v = g.metrics[m]?.mean;
      if (v === undefined) continue;
      const k = `${j}|${blockOf(g)}`;
      const b = best.get(k);
      if (b === undefined || (dir ? v > b : v < b)) best.set(k, v);
    }
  });
  return groups.map((g) => metrics.map((m, j) => {
    const v = g.metrics[m]?.mean;
    return v !== undefined && best.get(`${j}|${blockOf(g)}`) === v && groups.length > 1;
  }));
}

/** Whether published rows can be placed: they name a dataset, arch and target, so the table must be grouped by those. */
function placed(dims: readonly GroupDim[]): boolean {
  return (["dataset", "arch", "target"] as const).every((d) => dims.includes(d));
}

/** A published value in our unit, formatted like ours; null when the row lacks the metric or its unit does not convert. */
function referenceCell(ref: ReferenceRow, metric: string): string | null {
  const v = referenceMetric(ref, metric);
  return v === null ? null : fmt(metric, v);
}

/** One row of a rendered table: a group of our runs, or a published row placed under the group it compares with. */
type TableRow = { kind: "group"; group: SummaryGroup; index: number } | { kind: "reference"; ref: ReferenceRow };

/**
 * Our groups in order, each followed by the published rows that describe it (same dataset, arch, target and method),
 * then the rows of methods we did not run after the last group at their dataset, arch and target; rows that match no
 * group (a dense baseline, a target we did not run) come last. A published row names a dataset, arch and target, so
 * it is placed only when the table is grouped by all three; otherwise it would sit beside numbers it does not describe.
 */
function tableRows(groups: SummaryGroup[], dims: GroupDim[], references: readonly ReferenceRow[]): TableRow[] {
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
  groups.forEach((group, index) => {
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
    const value = referenceDimValue(ref, d);
    const cited = d === citeIn ? `${value} [${cite}]` : value;
    return i === 0 ? `↳ ${cited}` : cited;
  });
}

function markdown(groups: SummaryGroup[], dims: GroupDim[], metrics: string[], references: readonly ReferenceRow[]): string {
  const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\n/g, " ");
  const best = bestFlags(groups, dims, metrics);
  const header = [...dims.map((d) => DIM_TITLES[d]), "n", ...metrics.map(titleText)];
  const right = [...dims.map(() => false), true, ...metrics.map(() => true)];
  const rows = tableRows(groups, dims, references).map((row) => {
    if (row.kind === "reference") {
      return [...referenceDimCells(row.ref, dims).map(esc), "ref", ...metrics.map((m) => referenceCell(row.ref, m) ?? "–")];
    }
    const { group: g, index: i } = row;
    return [
    ...dims.map((d) => esc(g.by[d] ?? "")),
    String(g.runKeys.length),
    ...metrics.map((m, j) => {
      const s: Stat | undefined = g.metrics[m];
      if (!s) return "–";
      const mean = best[i][j] ? `**${fmt(m, s.mean)}**` : fmt(m, s.mean);
      return s.std === null ? mean : `${mean} ± ${fmt(m, s.std)}`;
    }),
    ];
  });
  const widths = header.map((h, c) => Math.max(3, h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => `| ${cells.map((x, c) => (right[c] ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (right[c] ? ` ${"-".repeat(w - 1)}: ` : ` ${"-".repeat(w)} `)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n") + "\n";
}

function latex(groups: SummaryGroup[], dims: GroupDim[], metrics: string[], opts: TableOptions, references: readonly ReferenceRow[]): string {
  const best = bestFlags(groups, dims, metrics);
  const spec = `${dims.map(() => "l").join("")}r${metrics.map(() => "r").join("")}`;
  const header = [...dims.map((d) => DIM_TITLES[d]), "$n$", ...metrics.map(titleTex)];
  const blockDims = dims.filter((d) => d === "dataset" || d === "arch");
  const lines: string[] = [];
  let prevBlock: string | null = null;
  for (const row of tableRows(groups, dims, references)) {
    if (row.kind === "reference") {
      const cells = [
        ...referenceDimCells(row.ref, dims).map((c) => `\\textit{${escapeLatex(c).replace("↳", "$\\hookrightarrow$")}}`),
        "ref.",
        ...metrics.map((m) => {
          const v = referenceCell(row.ref, m);
          return v === null ? "--" : `$\\mathit{${v}}$`;
        }),
      ];
      lines.push(`    ${cells.join(" & ")} \\\\`);
      continue;
    }
    const { group: g, index: i } = row;
    const block = blockDims.map((d) => g.by[d]).join("\u0000");
    if (prevBlock !== null && block !== prevBlock) lines.push("    \\midrule");
    prevBlock = block;
    const cells = [
      ...dims.map((d) => escapeLatex(g.by[d] ?? "")),
      String(g.runKeys.length),
      ...metrics.map((m, j) => {
        const s = g.metrics[m];
        if (!s) return "--";
        const mean = best[i][j] ? `\\mathbf{${fmt(m, s.mean)}}` : fmt(m, s.mean);
        return s.std === null ? `$${mean}$` : `$${mean} \\pm ${fmt(m, s.std)}$`;
      }),
    ];
    lines.push(`    ${cells.join(" & ")} \\\\`);
  }
  const seeds = new Set(groups.map((g) => g.seeds.length));
  const caption =
    opts.caption ??
    `Mean ${"\u00b1"} sample std over runs (n = runs per row${seeds.size === 1 ? `, ${[...seeds][0]} seeds` : ""}); top-1 in percent; best value per column${blockDims.length ? " within each " + blockDims.join(" x ") + " block" : ""} in bold${references.length > 0 && placed(dims) ? "; published numbers (italic, ref.) converted to our units" : ""}.`;
  const tex = escapeLatex(caption).replace(/\u00b1/g, "$\\pm$");
  return [
    "% Generated by prunebench. Requires \\usepackage{booktabs}.",
    "\\begin{table}[t]",
    "  \\centering",
    "  \\small",
    `  \\caption{${tex}}`,
    `  \\label{${(opts.label ?? "tab:prunebench").replace(/[^A-Za-z0-9:._-]/g, "-")}}`,
    `  \\begin{tabular}{${spec}}`,
    "    \\toprule",
    `    ${header.join(" & ")} \\\\`,
    "    \\midrule",
    ...lines,
    "    \\bottomrule",
    "  \\end{tabular}",
    "\\end{table}",
    "",
  ].join("\n");
}

function csvRows(groups: SummaryGroup[], dims: GroupDim[], metrics: string[], references: readonly ReferenceRow[]): { columns: string[]; rows: Record<string, unknown>[] } {
  const columns: string[] = [];
  for (const d of dims) {
    columns.push(d);
    if (d === "target") columns.push("target_kind", "target_value");
  }
  columns.push("n");
  for (const m of metrics) columns.push(`${m}_mean`, `${m}_std`, `${m}_n`, `${m}_ci95_lo`, `${m}_ci95_hi`);
  const layout = tableRows(groups, dims, references);
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
      o[d] = g.by[d];
      if (d === "target") {
        o.target_kind = g.targetKind;
        o.target_value = g.targetValue;
      }
    }
    o.n = g.runKeys.length;
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
 * Aggregated results table. Markdown and LaTeX show "mean ± std" (fractions as percent, best per column in bold);
 * CSV has raw numbers (fractions stay fractions) with _mean, _std, _n, _ci95_lo, _ci95_hi columns per metric; JSON is
 * an array of {<dims>, n, seeds, metrics: {name: {n, mean, std, min, max, ci95}}}.
 */
export function renderTable(data: ReportData, opts: TableOptions): string {
  const { dims, metrics } = validate(data, opts);
  const groups = summarizeGroups(data.runs, dims);
  switch (opts.format) {
    case "markdown":
      return markdown(groups, dims, metrics, data.references);
    case "latex":
      return latex(groups, dims, metrics, opts, data.references);
    case "csv": {
      const { columns, rows } = csvRows(groups, dims, metrics, data.references);
      return stringify(rows, { header: true, columns, cast: { number: (v) => String(v) } });
    }
    case "json":
      return (
        JSON.stringify(
          tableRows(groups, dims, data.references).map((row) => {
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
              ...(dims.includes("target") ? { targetKind: g.targetKind, targetValue: g.targetValue } : {}),
              n: g.runKeys.length,
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
