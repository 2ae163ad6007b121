/** Helpers shared by the section modules: packing, colors, facets, target choice. */
import { targetOrder, type GroupAggregate } from "../aggregate.js";
import type { PackedTable, ReportContext, VlSpec } from "./types.js";

/**
 * Pack an array of flat objects column-wise; columns are the union of the rows' keys (missing values -> null).
 * String columns with repeated values are dictionary-encoded (values become indexes into `d`; null stays null).
 */
export function packRows(rows: ReadonlyArray<Record<string, unknown>>): PackedTable {
  const names: string[] = [];
  const seen = new Set<string>();
  for (const row of rows) for (const k of Object.keys(row)) if (!seen.has(k)) { seen.add(k); names.push(k); }
  const cols = names.map((name) => {
    const v = rows.map((row) => (row[name] === undefined ? null : row[name]));
    const strings = v.every((x) => x === null || typeof x === "string");
    if (strings) {
      const dict = new Map<string, number>();
      for (const x of v) if (x !== null && !dict.has(x as string)) dict.set(x as string, dict.size);
      if (dict.size * 2 <= v.length) return { name, v: v.map((x) => (x === null ? null : dict.get(x as string)!)), d: [...dict.keys()] };
    }
    return { name, v };
  });
  return { n: rows.length, cols };
}

/** Inverse of packRows (the page does the same in its boot script). */
export function unpackRows(t: PackedTable): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < t.n; i++) {
    const o: Record<string, unknown> = {};
    for (const c of t.cols) {
      const x = c.v[i];
      o[c.name] = c.d && x !== null ? c.d[x as number] : x;
    }
    out.push(o);
  }
  return out;
}

/** Round to 5 significant digits (enough for a chart; shrinks the inlined JSON); null for missing/non-finite. */
export function r5(v: number | null | undefined): number | null {
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  if (v === 0) return 0;
  return Number(v.toPrecision(5));
}

/** The color encoding for method labels, identical in every chart so a method keeps its color. */
export function methodColor(ctx: ReportContext, field = "m"): VlSpec {
  return {
    field,
    type: "nominal",
    title: "method",
    scale: { domain: ctx.methods, scheme: ctx.methods.length > 10 ? "tableau20" : "tableau10" },
    legend: { orient: "right", labelLimit: 260, symbolType: "stroke", symbolStrokeWidth: 3, symbolOpacity: 1 },
  };
}

/** methodColor for point marks: the legend shows filled circles (the line legend's strokes do not show for points). */
export function pointColor(ctx: ReportContext, field = "m"): VlSpec {
  const c = methodColor(ctx, field);
  return { ...c, legend: { ...(c.legend as VlSpec), symbolType: "circle", symbolStrokeWidth: 0, symbolFillColor: null } };
}

/**
 * Facet columns: one per architecture when there are at most 3 (so each row is a dataset: an arch x dataset grid),
 * else 3 (wrapped).
 */
export function defaultColumns(ctx: ReportContext): number {
  const archs = new Set(ctx.groups.map((g) => g.arch)).size;
  const datasets = new Set(ctx.groups.map((g) => g.dataset)).size;
  if (datasets <= 1) return Math.min(3, Math.max(1, ctx.panels.length));
  return Math.max(1, Math.min(3, archs));
}

/** Wrapped facet over dataset · arch panels. */
export function panelFacet(
  ctx: ReportContext,
  inner: VlSpec,
  opts: { columns?: number; independentY?: boolean; independentX?: boolean; independentXAxis?: boolean } = {},
): VlSpec {
  const resolve: Record<string, string> = {};
  if (opts.independentY) resolve.y = "independent";
  if (opts.independentX) resolve.x = "independent";
  const spec: VlSpec = {
    facet: { field: "p", type: "nominal", title: null, sort: ctx.panels, header: { labelFontSize: 12, labelFontWeight: "bold", labelPadding: 4 } },
    columns: opts.columns ?? defaultColumns(ctx),
    spec: inner,
  };
  const axis = opts.independentX || opts.independentXAxis ? { axis: { x: "independent" } } : {};
  if (Object.keys(resolve).length > 0 || Object.keys(axis).length > 0) spec.resolve = { ...(Object.keys(resolve).length > 0 ? { scale: resolve } : {}), ...axis };
  return spec;
}

/** Config block shared by every chart. */
export const CHART_CONFIG: VlSpec = {
  font: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
  axis: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: "normal", gridColor: "#ececec", domainColor: "#888", tickColor: "#888" },
  legend: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: "bold" },
  header: { labelFontSize: 12 },
  view: { stroke: "#ddd" },
  point: { size: 28 },
};

/** Distinct target labels with their sort key, ordered (sparsity ascending, then compression ascending). */
export function targetsOf(groups: readonly GroupAggregate[]): { label: string; order: number }[] {
  const m = new Map<string, number>();
  for (const g of groups) m.set(g.target, targetOrder(g.targetKind, g.targetValue));
  return [...m.entries()].map(([label, order]) => ({ label, order })).sort((a, b) => a.order - b.order);
}

/**
 * The target present for the most method labels (counted over all panels); ties go to the middle one of the tied
 * targets in target order (e.g. sparsity 0.9 among 0.5 ... 0.98), which is usually the most telling.
 */
export function defaultTarget(groups: readonly GroupAggregate[]): string | null {
  const methodsPer = new Map<string, Set<string>>();
  for (const g of groups) {
    let s = methodsPer.get(g.target);
    if (!s) methodsPer.set(g.target, (s = new Set()));
    s.add(g.methodLabel);
  }
  const ordered = targetsOf(groups);
  if (ordered.length === 0) return null;
  const best = Math.max(...ordered.map((t) => methodsPer.get(t.label)!.size));
  const tied = ordered.filter((t) => methodsPer.get(t.label)!.size === best);
  return tied[Math.floor((tied.length - 1) / 2)].label;
}

/** A short paragraph with a muted style. */
export function note(html: string): string {
  return `<p class="note">${html}</p>`;
}
