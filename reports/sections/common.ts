/** Helpers shared by the section modules: packing, colors, facets, target choice. */
import { targetOrder, type GroupAggregate } from "../aggregate.js";
import { escapeHtml } from "../format.js";
import type { PackedTable, ReportContext, VlSpec } from "./types.js";

/**
 * Pack an array of flat objects column-wise; columns are the union of the rows' keys (missing values -> null).
 * Columns with fewer than a third of the rows filled are sparse (`at`: the filled rows). String columns with
 * repeated values are dictionary-encoded (values become indexes into `d`; null stays null).
 */
export function packRows(rows: ReadonlyArray<Record<string, unknown>>): PackedTable {
  const names: string[] = [];
  const seen = new Set<string>();
  for (const row of rows) for (const k of Object.keys(row)) if (!seen.has(k)) { seen.add(k); names.push(k); }
  const cols = names.map((name) => {
    let v: unknown[] = rows.map((row) => (row[name] === undefined ? null : row[name]));
    let at: number[] | undefined;
    // Mostly empty (e.g. fields only dense or published rows have): keep the filled rows' indexes and values only.
    const filled = v.reduce<number>((n, x) => n + (x === null ? 0 : 1), 0);
    if (filled * 3 < v.length) {
      at = [];
      for (let i = 0; i < v.length; i++) if (v[i] !== null) at.push(i);
      v = at.map((i) => v[i]);
    }
    const strings = v.every((x) => x === null || typeof x === "string");
    if (strings) {
      const dict = new Map<string, number>();
      for (const x of v) if (x !== null && !dict.has(x as string)) dict.set(x as string, dict.size);
      if (dict.size * 2 <= v.length) return { name, v: v.map((x) => (x === null ? null : dict.get(x as string)!)), d: [...dict.keys()], ...(at ? { at } : {}) };
    }
    return { name, v, ...(at ? { at } : {}) };
  });
  return { n: rows.length, cols };
}

/** Inverse of packRows (the page does the same in its boot script). */
export function unpackRows(t: PackedTable): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < t.n; i++) out.push({});
  for (const c of t.cols) {
    const value = (x: unknown) => (c.d && x !== null ? c.d[x as number] : x);
    if (c.at) {
      for (const o of out) o[c.name] = null;
      c.at.forEach((i, j) => (out[i][c.name] = value(c.v[j])));
    } else for (let i = 0; i < t.n; i++) out[i][c.name] = value(c.v[i]);
  }
  return out;
}

/** Round to 5 significant digits (enough for a chart; shrinks the inlined JSON); null for missing/non-finite. */
export function r5(v: number | null | undefined): number | null {
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  if (v === 0) return 0;
  return Number(v.toPrecision(5));
}

/**
 * Okabe & Ito's colour-blind-safe palette (Color Universal Design, 2008), ordered so the first methods get the most
 * distinct hues; yellow and black come last (yellow is faint on white, black is taken by reference diamonds). Beyond
 * eight methods colours repeat, but the marker shape (METHOD_SHAPES) still tells methods apart.
 */
export const METHOD_COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];
/** One marker shape per method (no diamond: diamonds are published numbers). */
export const METHOD_SHAPES = ["circle", "square", "triangle-up", "cross", "triangle-down", "triangle-right", "triangle-left", "wedge", "arrow", "stroke"];

/**
 * Legend entries for marks that are not methods (dense rule, frontier ring, published diamond): appended to the
 * method domain so that one legend, shared by every facet panel, explains every mark.
 */
export interface KeyEntry {
  label: string;
  color: string;
  shape: string;
}

function cycle(values: readonly string[], n: number): string[] {
  return Array.from({ length: n }, (_, i) => values[i % values.length]);
}

/** The color encoding for method labels, identical in every chart so a method keeps its color. */
export function methodColor(ctx: ReportContext, field = "m", keys: readonly KeyEntry[] = []): VlSpec {
  return {
    field,
    type: "nominal",
    title: "method (click to highlight)",
    scale: { domain: [...ctx.methods, ...keys.map((k) => k.label)], range: [...cycle(METHOD_COLORS, ctx.methods.length), ...keys.map((k) => k.color)] },
    legend: { orient: "right", labelLimit: 260, symbolOpacity: 1, symbolStrokeWidth: 2 },
  };
}

/** The shape encoding for method labels (same domain and title as the colour, so colour and shape share one legend). */
export function methodShape(ctx: ReportContext, field = "m", keys: readonly KeyEntry[] = []): VlSpec {
  return {
    field,
    type: "nominal",
    title: "method (click to highlight)",
    scale: { domain: [...ctx.methods, ...keys.map((k) => k.label)], range: [...cycle(METHOD_SHAPES, ctx.methods.length), ...keys.map((k) => k.shape)] },
  };
}

/** methodColor for point marks: the legend shows filled circles (the line legend's strokes do not show for points). */
export function pointColor(ctx: ReportContext, field = "m"): VlSpec {
  const c = methodColor(ctx, field);
  return { ...c, legend: { ...(c.legend as VlSpec), symbolType: "circle", symbolStrokeWidth: 0, symbolFillColor: null } };
}

/**
 * The page-wide filter (reports/html.ts draws the bar): every chart gets these signals, the page sets them. "" = all.
 * Rows of a chart's data carry ds (dataset), a (arch), m (method label), t (target label), s (a seed, or "*" for a
 * mean over seeds), ss ("|0|1|2|": the seeds a "*" row averages) and x (true: a context row — dense model, published
 * number — that the method, target and seed filters keep).
 */
export const FILTER_DIMS = [
  { key: "dataset", signal: "pb_dataset", field: "ds", attr: "data-ds" },
  { key: "arch", signal: "pb_arch", field: "a", attr: "data-a" },
  { key: "method", signal: "pb_method", field: "m", attr: "data-m" },
  { key: "target", signal: "pb_target", field: "t", attr: "data-t" },
  { key: "seed", signal: "pb_seed", field: "s", attr: "data-ss" },
] as const;

/**
 * The filter as a Vega expression. Context rows (x: a dense rule, a y = x guide) stay whatever method, target or seed
 * is chosen, and a row without a dataset or arch (a guide across panels) whatever dataset or arch. perSeed: the data has one row per seed besides the "*" rows, so choosing a seed
 * shows that seed's own values; otherwise choosing a seed keeps the groups that ran it (still averaged over seeds).
 */
export function filterExpr(perSeed: boolean): string {
  const seed = perSeed
    ? "(datum.x || (pb_seed == '' ? datum.s == '*' : datum.s == pb_seed))"
    : "(pb_seed == '' || datum.x || indexof(datum.ss, '|' + pb_seed + '|') >= 0)";
  return (
    "(pb_dataset == '' || datum.ds == null || datum.ds == pb_dataset) && (pb_arch == '' || datum.a == null || datum.a == pb_arch) && " +
    "(datum.x || ((pb_method == '' || datum.m == pb_method) && (pb_target == '' || datum.t == pb_target))) && " +
    seed
  );
}

/** Add the filter signals and the filter transform to a top-level spec (before any facet or layer). */
export function withFilter(spec: VlSpec, perSeed: boolean): VlSpec {
  const params = [...((spec.params as unknown[]) ?? []), ...FILTER_DIMS.map((d) => ({ name: d.signal, value: "" }))];
  const transform = [{ filter: filterExpr(perSeed) }, ...((spec.transform as unknown[]) ?? [])];
  return { ...spec, params, transform };
}

/** The filter fields of a group's row: dataset, arch, method, target and the seeds it averages (a "*" row needs s: "*" too). */
export function groupFields(g: GroupAggregate): Record<string, unknown> {
  return { ds: g.dataset, a: g.arch, m: g.methodLabel, t: g.target, ss: seedList(g.seeds) };
}

export function seedList(seeds: readonly number[]): string {
  return `|${seeds.join("|")}|`;
}

/**
 * An accessible description of a method's point (the SVG's aria-label): method, target and run keys, so a screen
 * reader — and a test — can tell which run a mark is.
 */
export const DESCRIBE_POINT: VlSpec = { calculate: "'method: ' + datum.m + '; target: ' + datum.t + '; run keys: ' + datum.keys", as: "desc" };

/** Run keys for a tooltip: all of them when few, else the first three and how many more. */
export function runKeysText(keys: readonly string[]): string {
  return keys.length <= 3 ? keys.join(", ") : `${keys.slice(0, 3).join(", ")} … (+${keys.length - 3})`;
}

/** HTML attributes that let the page's filter bar show or hide an element (a table row) of one group. */
export function groupAttrs(g: GroupAggregate): string {
  return ` data-ds="${escapeHtml(g.dataset)}" data-a="${escapeHtml(g.arch)}" data-m="${escapeHtml(g.methodLabel)}" data-t="${escapeHtml(g.target)}" data-ss="${seedList(g.seeds)}" title="runs: ${escapeHtml(g.runKeys.join(" "))}"`;
}

/**
 * Legend-bound point selection on the method: clicking a legend entry highlights that method and mutes the others
 * (shift-click adds more; double-click clears). Put the param on one layer; use highlightOpacity on every layer.
 */
export const HIGHLIGHT_PARAM: VlSpec = { name: "pb_hl", select: { type: "point", fields: ["m"] }, bind: "legend" };
export function highlightOpacity(on: number, off = 0.12): VlSpec {
  return { condition: { param: "pb_hl", value: on, empty: true }, value: off };
}

/** Facet columns (wrapped). */
export function defaultColumns(ctx: ReportContext): number {
  // Two columns: panels large enough to read (the page is at most 1400 px wide, the legend takes ~250).
  return Math.max(1, Math.min(2, ctx.panels.length));
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
