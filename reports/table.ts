/**
 * renderTable: aggregated results as Markdown, LaTeX (booktabs), CSV or JSON, for papers and READMEs.
 * Rows are groups of done runs (see summarizeGroups); values are mean ± sample std over the group's runs.
 */
import { stringify } from "csv-stringify/sync";
import { METRICS } from "../src/metrics/names.js";
import { GROUP_DIMS, summarizeGroups, type GroupDim, type Stat, type SummaryGroup } from "./aggregate.js";
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

function markdown(groups: SummaryGroup[], dims: GroupDim[], metrics: string[]): string {
  const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\n/g, " ");
  const best = bestFlags(groups, dims, metrics);
  const header = [...dims.map((d) => DIM_TITLES[d]), "n", ...metrics.map(titleText)];
  const right = [...dims.map(() => false), true, ...metrics.map(() => true)];
  const rows = groups.map((g, i) => [
    ...dims.map((d) => esc(g.by[d] ?? "")),
    String(g.runKeys.length),
    ...metrics.map((m, j) => {
      const s: Stat | undefined = g.metrics[m];
      if (!s) return "–";
      const mean = best[i][j] ? `**${fmt(m, s.mean)}**` : fmt(m, s.mean);
      return s.std === null ? mean : `${mean} ± ${fmt(m, s.std)}`;
    }),
  ]);
  const widths = header.map((h, c) => Math.max(3, h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => `| ${cells.map((x, c) => (right[c] ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (right[c] ? ` ${"-".repeat(w - 1)}: ` : ` ${"-".repeat(w)} `)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n") + "\n";
}

function latex(groups: SummaryGroup[], dims: GroupDim[], metrics: string[], opts: TableOptions): string {
  const best = bestFlags(groups, dims, metrics);
  const spec = `${dims.map(() => "l").join("")}r${metrics.map(() => "r").join("")}`;
  const header = [...dims.map((d) => DIM_TITLES[d]), "$n$", ...metrics.map(titleTex)];
  const blockDims = dims.filter((d) => d === "dataset" || d === "arch");
  const lines: string[] = [];
  let prevBlock: string | null = null;
  groups.forEach((g, i) => {
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
  });
  const seeds = new Set(groups.map((g) => g.seeds.length));
  const caption =
    opts.caption ??
    `Mean ${"\u00b1"} sample std over runs (n = runs per row${seeds.size === 1 ? `, ${[...seeds][0]} seeds` : ""}); top-1 in percent; best value per column${blockDims.length ? " within each " + blockDims.join(" x ") + " block" : ""} in bold.`;
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

function csvRows(groups: SummaryGroup[], dims: GroupDim[], metrics: string[]): { columns: string[]; rows: Record<string, unknown>[] } {
  const columns: string[] = [];
  for (const d of dims) {
    columns.push(d);
    if (d === "target") columns.push("target_kind", "target_value");
  }
  columns.push("n");
  for (const m of metrics) columns.push(`${m}_mean`, `${m}_std`, `${m}_n`, `${m}_ci95_lo`, `${m}_ci95_hi`);
  const rows = groups.map((g) => {
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
      return markdown(groups, dims, metrics);
    case "latex":
      return latex(groups, dims, metrics, opts);
    case "csv": {
      const { columns, rows } = csvRows(groups, dims, metrics);
      return stringify(rows, { header: true, columns, cast: { number: (v) => String(v) } });
    }
    case "json":
      return (
        JSON.stringify(
          groups.map((g) => ({
            ...g.by,
            ...(dims.includes("target") ? { targetKind: g.targetKind, targetValue: g.targetValue } : {}),
            n: g.runKeys.length,
            seeds: g.seeds,
            metrics: Object.fromEntries(metrics.map((m) => [m, g.metrics[m] ?? null])),
          })),
          null,
          2,
        ) + "\n"
      );
    default:
      throw new Error(`renderTable: unknown format "${String((opts as { format: unknown }).format)}" (markdown, latex, csv, json)`);
  }
}
