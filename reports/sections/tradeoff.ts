/**
 * Trade-off curves: top-1 after fine-tuning (or its difference from the dense model) against compression ratio and
 * theoretical speedup, faceted by dataset · architecture; then measured speedup around 1× with the timing noise band.
 * One line per method (mean over seeds, min-max band), top-1 before fine-tuning dashed, the dense model as a dashed
 * rule, the Pareto frontier ringed, published numbers as diamonds. Choosing a seed in the page's filter bar shows
 * that seed's runs (one row per seed is inlined beside the means).
 */
import { isDenseReference, paretoFrontier, panelLabel, referenceMetric, summarize, targetOrder, type GroupAggregate } from "../aggregate.js";
import { targetLabel } from "../../src/grid/label.js";
import type { RunRow } from "../model.js";
import {
  CHART_CONFIG,
  HIGHLIGHT_PARAM,
  groupFields,
  highlightOpacity,
  methodColor,
  methodShape,
  note,
  packRows,
  panelFacet,
  r5,
  runKeysText,
  withFilter,
  DESCRIBE_POINT,
} from "./common.js";
import type { ChartSpec, ReportContext, Section, VlSpec } from "./types.js";

interface Axis {
  key: string;
  metric: string;
  field: string;
  title: string;
  heading: string;
}

const AXES: Axis[] = [
  { key: "compression", metric: "compression_ratio", field: "cr", title: "compression ratio (params_total / params_nonzero, log2)", heading: "Top-1 vs compression ratio" },
  { key: "speedup", metric: "theoretical_speedup", field: "sp", title: "theoretical speedup (macs_dense / macs_effective, log2)", heading: "Top-1 vs theoretical speedup" },
];

const DATA = "tradeoff";
/** Panel size: two columns fit a 1400 px page with the legend. */
export const PANEL_WIDTH = 380;
export const PANEL_HEIGHT = 260;
/** The y-zoom choices in percentage points below dense (0 = the whole range). */
const ZOOMS = [0, 1, 2, 5, 10, 20];

/** The smallest zoom that shows the typical group (1.5 × the median drop), else the whole range: the worst methods fall off the bottom. */
export function defaultZoom(groups: readonly GroupAggregate[]): number {
  const drops = groups.map((g) => g.deltaTop1?.mean).filter((v): v is number => v !== undefined && Number.isFinite(v)).map((v) => -v * 100).sort((a, b) => a - b);
  if (drops.length === 0) return 0;
  const median = drops[Math.floor((drops.length - 1) / 2)];
  return ZOOMS.find((z) => z > 0 && z >= median * 1.5) ?? 0;
}

/**
 * Timing noise of each panel, relative: the dense model is timed again by every run, so the spread of those timings
 * (2 × sample std / mean, ≈ a 95 % band) is what a measured speedup must beat. null when fewer than 2 timings.
 */
export function latencyNoise(runs: readonly RunRow[]): Map<string, number> {
  const byPanel = new Map<string, number[]>();
  for (const r of runs) {
    const v = r.metrics.latency_dense_ms;
    if (r.status !== "done" || typeof v !== "number" || !Number.isFinite(v)) continue;
    const p = panelLabel(r.dataset, r.arch);
    const l = byPanel.get(p) ?? [];
    l.push(v);
    byPanel.set(p, l);
  }
  const out = new Map<string, number>();
  for (const [p, l] of byPanel) {
    const s = summarize(l);
    if (s && s.std !== null && s.mean > 0) out.set(p, (2 * s.std) / s.mean);
  }
  return out;
}

/** Mean of a metric over a seed's runs (usually one), null when none recorded it. */
function meanOf(rs: readonly RunRow[], name: string): number | null {
  if (rs.length === 1) {
    const v = rs[0].metrics[name];
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  }
  return summarize(rs.map((r) => r.metrics[name]))?.mean ?? null;
}

function rows(ctx: ReportContext): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const runs = new Map(ctx.data.runs.map((r) => [r.key, r]));
  const noise = latencyNoise(ctx.data.runs);
  for (const g of ctx.groups) {
    const t = g.metrics.top1_after;
    if (!t) continue;
    const dense = g.baseline?.top1.mean ?? null;
    const ms = g.metrics.measured_speedup;
    const band = noise.get(g.panel) ?? null;
    out.push({
      k: "g",
      ...groupFields(g),
      s: "*",
      p: g.panel,
      to: targetOrder(g.targetKind, g.targetValue),
      n: t.n,
      y: r5(t.mean),
      ylo: r5(t.min),
      yhi: r5(t.max),
      ysd: r5(t.std),
      yb: r5(g.metrics.top1_before?.mean),
      dy: dense === null ? null : r5((t.mean - dense) * 100),
      dlo: dense === null ? null : r5((t.min - dense) * 100),
      dhi: dense === null ? null : r5((t.max - dense) * 100),
      dyb: dense === null || !g.metrics.top1_before ? null : r5((g.metrics.top1_before.mean - dense) * 100),
      cr: r5(g.metrics.compression_ratio?.mean),
      sp: r5(g.metrics.theoretical_speedup?.mean),
      ms: r5(ms?.mean),
      mslo: r5(ms?.min),
      mshi: r5(ms?.max),
      beats: ms && band !== null ? ms.min > 1 + band : false,
      keys: runKeysText(g.runKeys),
    });
    // One row per seed: with a seed chosen the page shows that run, its key in the tooltip.
    const bySeed = new Map<number, RunRow[]>();
    for (const k of g.runKeys) {
      const r = runs.get(k);
      if (!r) continue;
      const l = bySeed.get(r.seed);
      if (l) l.push(r);
      else bySeed.set(r.seed, [r]);
    }
    const base = { k: "g", ...groupFields(g), p: g.panel, to: targetOrder(g.targetKind, g.targetValue) };
    for (const [seed, rs] of bySeed) {
      const y = meanOf(rs, "top1_after");
      if (y === null) continue;
      const yb = meanOf(rs, "top1_before");
      // Δ against this seed's own dense model: the paired difference.
      const d = meanOf(rs, "top1_dense") ?? dense;
      const m = meanOf(rs, "measured_speedup");
      out.push({
        ...base,
        s: String(seed),
        n: 1,
        y: r5(y),
        yb: r5(yb),
        dy: d === null ? null : r5((y - d) * 100),
        dyb: d === null || yb === null ? null : r5((yb - d) * 100),
        cr: r5(meanOf(rs, "compression_ratio")),
        sp: r5(meanOf(rs, "theoretical_speedup")),
        ms: r5(m),
        beats: m !== null && band !== null ? m > 1 + band : false,
        keys: runKeysText(rs.map((r) => r.key)),
      });
    }
  }
  // Pareto frontier per panel and per seed choice ("*" = the means), on the rows the page will show together.
  for (const a of AXES) {
    const sets = new Map<string, Record<string, unknown>[]>();
    for (const r of out) {
      const k = `${r.p}\u0000${r.s}`;
      const l = sets.get(k);
      if (l) l.push(r);
      else sets.set(k, [r]);
    }
    for (const set of sets.values()) {
      for (const r of paretoFrontier(set, (r) => r[a.field] as number | null, (r) => r.y as number | null, "higher")) r[`f${a.field}`] = true;
    }
  }
  for (const b of ctx.baselines.values()) {
    if (!ctx.panels.includes(b.panel)) continue;
    const band = noise.get(b.panel) ?? null;
    out.push({
      k: "d", x: true, ds: b.dataset, a: b.arch, p: b.panel, m: "dense", t: "dense", s: "*", n: b.top1.n, y: r5(b.top1.mean), ysd: r5(b.top1.std), dy: 0, cr: 1, sp: 1, ms: 1,
      nlo: band === null ? null : r5(1 - band), nhi: band === null ? null : r5(1 + band),
    });
  }
  for (const ref of ctx.data.references) {
    const p = panelLabel(ref.dataset, ref.arch);
    const y = referenceMetric(ref, "top1_after");
    const base = ctx.baselines.get(p);
    if (y === null || !ctx.panels.includes(p)) continue;
    out.push({
      k: "r",
      x: true,
      ds: base?.dataset ?? ref.dataset,
      a: base?.arch ?? ref.arch,
      p,
      m: ref.method,
      t: targetLabel(ref.target),
      s: "*",
      y: r5(y),
      dy: base ? r5((y - base.top1.mean) * 100) : null,
      cr: r5(referenceMetric(ref, "compression_ratio") ?? (ref.target.kind === "compression" ? ref.target.value : isDenseReference(ref) ? 1 : null)),
      sp: r5(referenceMetric(ref, "theoretical_speedup") ?? (isDenseReference(ref) ? 1 : null)),
      paper: ref.paper,
      src: ref.source + (ref.note ? ` — ${ref.note}` : ""),
    });
  }
  return out;
}

/** y in the unit the "y axis" control picks: top-1 in percent, or Δ vs dense in percentage points. */
const Y_CALC = [
  { calculate: "pb_y == 'delta' ? datum.dy : (isValid(datum.y) ? datum.y * 100 : null)", as: "yv" },
  { calculate: "pb_y == 'delta' ? datum.dlo : (isValid(datum.ylo) ? datum.ylo * 100 : null)", as: "yvlo" },
  { calculate: "pb_y == 'delta' ? datum.dhi : (isValid(datum.yhi) ? datum.yhi * 100 : null)", as: "yvhi" },
  { calculate: "pb_y == 'delta' ? datum.dyb : (isValid(datum.yb) ? datum.yb * 100 : null)", as: "yvb" },
];

/** The y controls of the trade-off charts: what y shows and how far below dense it reaches. */
function yParams(zoom: number): VlSpec[] {
  return [
    { name: "pb_y", value: "delta", bind: { input: "select", options: ["delta", "top1"], labels: ["Δ top-1 vs dense (pp)", "top-1 (%)"], name: "y axis " } },
    { name: "pb_zoom", value: zoom, bind: { input: "select", options: ZOOMS, labels: ZOOMS.map((z) => (z === 0 ? "whole range" : `down to −${z} pp`)), name: "Δ range " } },
  ];
}

const Y_AXIS_LABEL = "pb_y == 'delta' ? (datum.value > 0 ? '+' : '') + format(datum.value, '~g') + ' pp' : format(datum.value, '~g') + '%'";

function yEnc(field: string): VlSpec {
  return {
    field,
    type: "quantitative",
    title: "top-1 after fine-tuning: Δ vs dense, or %",
    scale: { zero: false, domainMin: { expr: "pb_y == 'delta' && pb_zoom > 0 ? -pb_zoom : null" } },
    axis: { labelExpr: Y_AXIS_LABEL, tickCount: 6 },
  };
}

/** Legend entries of the non-method marks, appended to the methods' legend (see KeyEntry). */
const KEYS = [
  { label: "dense model (dashed rule)", color: "#666666", shape: "stroke" },
  { label: "before fine-tuning (dashed line)", color: "#9a9a9a", shape: "stroke" },
  { label: "Pareto frontier (ring)", color: "#222222", shape: "circle" },
  { label: "published number (diamond)", color: "#111111", shape: "diamond" },
];

function tooltip(a: { field: string; key: string }): VlSpec[] {
  return [
    { field: "m", title: "method" },
    { field: "t", title: "target" },
    { field: "n", title: "seeds" },
    { field: "y", title: "top-1 (mean)", format: ".2%" },
    { field: "dy", title: "Δ vs dense (pp)", format: "+.2f" },
    { field: "yb", title: "top-1 before fine-tuning", format: ".2%" },
    { field: "ysd", title: "top-1 std", format: ".2%" },
    { field: "ylo", title: "top-1 min", format: ".2%" },
    { field: "yhi", title: "top-1 max", format: ".2%" },
    { field: a.field, title: a.key, format: ".3~f" },
    { field: "keys", title: "run keys" },
  ];
}

function spec(ctx: ReportContext, a: Axis, zoom: number): VlSpec {
  const x: VlSpec = { field: a.field, type: "quantitative", title: a.title, scale: { type: "log", base: 2, nice: false }, axis: { format: "~g", tickCount: 6, labelExpr: "datum.label + '×'" } };
  const y = yEnc("yv");
  const valid = `isValid(datum.${a.field}) && datum.${a.field} > 0 && isValid(datum.yv)`;
  const clip = { clip: true };
  const inner: VlSpec = {
    width: PANEL_WIDTH,
    height: PANEL_HEIGHT,
    transform: Y_CALC,
    layer: [
      {
        transform: [{ filter: "datum.k == 'd'" }],
        mark: { type: "rule", strokeDash: [5, 3], color: "#666", strokeWidth: 1.2 },
        encoding: { y: { ...y }, tooltip: [{ field: "y", title: "dense top-1 (mean over seeds)", format: ".2%" }, { field: "n", title: "seeds" }] },
      },
      // Invisible points that give the dense rule and the dashed before-fine-tuning lines their legend entries.
      ...[KEYS[0], KEYS[1]].map((k) => ({
        transform: [{ filter: "datum.k == 'd'" }, { calculate: `'${k.label}'`, as: "m" }],
        mark: { type: "point", opacity: 0, ...clip },
        encoding: { x: { datum: 1, type: "quantitative" }, y, color: methodColor(ctx, "m", KEYS), shape: methodShape(ctx, "m", KEYS) },
      })),
      {
        transform: [{ filter: `datum.k == 'g' && ${valid}` }],
        mark: { type: "area", opacity: 0.13, ...clip },
        encoding: { x, y: { field: "yvlo", type: "quantitative" }, y2: { field: "yvhi" }, color: methodColor(ctx, "m", KEYS), order: { field: a.field }, fillOpacity: highlightOpacity(1, 0.25) },
      },
      {
        transform: [{ filter: `datum.k == 'g' && ${valid} && isValid(datum.yvb)` }],
        mark: { type: "line", strokeWidth: 1.2, strokeDash: [4, 3], ...clip },
        encoding: { x, y: { field: "yvb", type: "quantitative" }, color: methodColor(ctx, "m", KEYS), order: { field: a.field }, opacity: highlightOpacity(0.55, 0.08) },
      },
      {
        transform: [{ filter: `datum.k == 'g' && ${valid}` }],
        mark: { type: "line", strokeWidth: 1.8, ...clip },
        encoding: { x, y, color: methodColor(ctx, "m", KEYS), order: { field: a.field }, opacity: highlightOpacity(1, 0.12) },
      },
      {
        params: [HIGHLIGHT_PARAM],
        transform: [{ filter: `datum.k == 'g' && ${valid}` }, DESCRIBE_POINT],
        mark: { type: "point", filled: true, size: 42, ...clip },
        encoding: { x, y, color: methodColor(ctx, "m", KEYS), shape: methodShape(ctx, "m", KEYS), opacity: highlightOpacity(1, 0.12), tooltip: tooltip(a), description: { field: "desc" } },
      },
      {
        transform: [{ filter: `datum.k == 'g' && datum.f${a.field} && ${valid}` }, { calculate: "datum.m", as: "mm" }, { calculate: `'${KEYS[2].label}'`, as: "m" }],
        mark: { type: "point", size: 150, filled: false, strokeWidth: 1.3, ...clip },
        encoding: { x, y, color: methodColor(ctx, "m", KEYS), shape: methodShape(ctx, "m", KEYS), tooltip: [{ field: "mm", title: "Pareto-optimal" }, ...tooltip(a).slice(1)] },
      },
      {
        transform: [
          { filter: `datum.k == 'r' && ${valid}` },
          { calculate: "datum.m", as: "mm" },
          { calculate: `'${KEYS[3].label}'`, as: "m" },
          { calculate: "'published in: ' + datum.paper + '; method: ' + datum.mm + '; target: ' + datum.t", as: "desc" },
        ],
        mark: { type: "point", size: 110, filled: true, opacity: 0.9, ...clip },
        encoding: {
          x,
          y,
          color: methodColor(ctx, "m", KEYS),
          shape: methodShape(ctx, "m", KEYS),
          tooltip: [
            { field: "paper", title: "published in" },
            { field: "src", title: "source" },
            { field: "mm", title: "method" },
            { field: "t", title: "target" },
            { field: "y", title: "top-1 (published)", format: ".2%" },
            { field: a.field, title: a.key, format: ".3~f" },
          ],
          description: { field: "desc" },
        },
      },
    ],
  };
  return withFilter(
    {
      data: { name: DATA },
      params: yParams(zoom),
      ...panelFacet(ctx, inner, { independentY: true, independentX: a.key !== "compression", columns: Math.min(2, ctx.panels.length) }),
      config: CHART_CONFIG,
    },
    true,
  );
}

/** Measured speedup (dense / pruned latency) per target, around the 1× line with each panel's timing-noise band. */
function measuredSpec(ctx: ReportContext): VlSpec {
  const x = { field: "t", type: "ordinal", title: "target", sort: { field: "to", op: "min" }, axis: { labelAngle: -30 } };
  const y = { field: "ms", type: "quantitative", title: "measured speedup (latency_dense / latency_pruned)", scale: { zero: false }, axis: { labelExpr: "format(datum.value, '~g') + '×'" } };
  const inner: VlSpec = {
    width: PANEL_WIDTH,
    height: 200,
    layer: [
      { transform: [{ filter: "datum.k == 'd' && isValid(datum.nlo)" }], mark: { type: "rect", color: "#bbb", opacity: 0.3 }, encoding: { y: { field: "nlo", type: "quantitative" }, y2: { field: "nhi" }, tooltip: [{ field: "nlo", title: "noise band from", format: ".3f" }, { field: "nhi", title: "to", format: ".3f" }] } },
      { mark: { type: "rule", color: "#666", strokeDash: [5, 3] }, encoding: { y: { datum: 1, type: "quantitative" } } },
      {
        params: [HIGHLIGHT_PARAM],
        transform: [{ filter: "datum.k == 'g' && isValid(datum.ms)" }, DESCRIBE_POINT],
        mark: { type: "point", filled: true, size: 46 },
        encoding: {
          description: { field: "desc" },
          x,
          y,
          xOffset: { field: "m", type: "nominal", scale: { domain: ctx.methods } },
          color: methodColor(ctx),
          shape: methodShape(ctx),
          opacity: highlightOpacity(0.9, 0.1),
          tooltip: [
            { field: "m", title: "method" },
            { field: "t", title: "target" },
            { field: "n", title: "seeds" },
            { field: "ms", title: "measured speedup (mean)", format: ".3f" },
            { field: "mslo", title: "min over seeds", format: ".3f" },
            { field: "mshi", title: "max over seeds", format: ".3f" },
            { field: "beats", title: "beats the noise" },
            { field: "keys", title: "run keys" },
          ],
        },
      },
    ],
  };
  return withFilter({ data: { name: DATA }, ...panelFacet(ctx, inner, { independentY: true, columns: Math.min(2, ctx.panels.length) }), config: CHART_CONFIG }, true);
}

export const tradeoffSection: Section = {
  id: "tradeoff",
  title: "Trade-off curves",
  render(ctx) {
    const r = rows(ctx);
    if (!r.some((x) => x.k === "g")) return { html: note("No finished runs with top-1 after fine-tuning yet.") };
    const charts: ChartSpec[] = [];
    const zoom = defaultZoom(ctx.groups);
    let html = note(
      "One line per method (colour and marker shape): mean over seeds; shaded band: min–max over seeds; dashed line of the same colour: top-1 before fine-tuning. " +
        "Dashed grey rule: dense model (mean over seeds). Black rings: Pareto frontier of the panel (no other point has both higher top-1 and a higher x). " +
        "Black diamonds: published numbers (hover for the paper). Click a method in the legend to highlight it (shift-click for more, double-click to clear). " +
        "The y axis shows Δ top-1 vs dense in percentage points, cut at the chosen depth below dense so the band that matters is not squashed by the worst methods; pick “top-1 (%)” or “whole range” above the chart. " +
        "Hover a point for its run keys.",
    );
    for (const a of AXES) {
      const has = r.some((x) => x.k === "g" && x[a.field] !== null);
      html += `<h3>${a.heading}</h3>`;
      if (!has) {
        html += note(`No run recorded <code>${a.metric}</code>.`);
        continue;
      }
      const id = `chart-tradeoff-${a.key}`;
      html += `<div class="controls" id="${id}-controls"></div><div class="chart" id="${id}"></div>`;
      charts.push({ id, spec: spec(ctx, a, zoom), datasets: [DATA] });
    }
    const timed = r.filter((x) => x.k === "g" && x.s === "*" && x.ms !== null);
    if (timed.length > 0) {
      const winners = timed.filter((x) => x.beats).length;
      const noise = [...latencyNoise(ctx.data.runs).values()];
      const band = noise.length ? `±${(Math.max(...noise) * 100).toFixed(1)} % at most` : "unknown (fewer than 2 dense timings per panel)";
      const chart = `<div class="chart" id="chart-tradeoff-measured"></div>`;
      const what =
        "Measured speedup = dense latency / pruned latency (same backend, batch and threads), mean over seeds. Grey band: timing noise of the panel " +
        "(2 × the relative std of the dense model's latency, which every run times again). Dashed rule: 1×, no speedup. No frontier is drawn: points inside the band are noise.";
      html += `<h3>Measured speedup</h3>`;
      // Nothing beats the noise: say so in one line and fold the chart away instead of drawing a frontier through noise.
      html +=
        winners === 0
          ? `<details class="collapsed-chart"><summary>No group's measured speedup beats the timing noise (band ${band}); open to see the points.</summary>${note(what)}${chart}</details>`
          : note(`${what} ${winners} of ${timed.length} groups beat the noise (every seed above the band).`) + chart;
      charts.push({ id: "chart-tradeoff-measured", spec: measuredSpec(ctx), datasets: [DATA] });
    }
    return { html, charts, data: { [DATA]: packRows(r) } };
  },
};
