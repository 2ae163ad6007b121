/**
 * Trade-off curves: top-1 after fine-tuning against compression ratio, theoretical speedup and measured latency,
 * faceted by dataset · architecture. One line per method (mean over seeds) with a min-max band over seeds, the dense
 * baseline as a dashed rule, the Pareto frontier ringed, published reference numbers as diamonds.
 */
import { isDenseReference, paretoIdsByPanel, panelLabel, referenceMetric, targetOrder } from "../aggregate.js";
import { targetLabel } from "../../src/grid/label.js";
import { CHART_CONFIG, methodColor, note, packRows, panelFacet, r5 } from "./common.js";
import type { ChartSpec, ReportContext, Section, VlSpec } from "./types.js";

interface Axis {
  key: string;
  metric: string;
  field: string;
  frontier: string;
  title: string;
  log: boolean;
  better: "higher" | "lower";
  heading: string;
}

const AXES: Axis[] = [
  { key: "compression", metric: "compression_ratio", field: "cr", frontier: "fcr", title: "compression ratio (params_total / params_nonzero, log2)", log: true, better: "higher", heading: "Top-1 vs compression ratio" },
  { key: "speedup", metric: "theoretical_speedup", field: "sp", frontier: "fsp", title: "theoretical speedup (macs_dense / macs_effective, log2)", log: true, better: "higher", heading: "Top-1 vs theoretical speedup" },
  { key: "latency", metric: "latency_pruned_ms", field: "lat", frontier: "flat", title: "measured latency (median ms per batch)", log: false, better: "lower", heading: "Top-1 vs measured latency" },
];

const DATA = "tradeoff";

function rows(ctx: ReportContext): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const fronts = new Map(AXES.map((a) => [a.key, paretoIdsByPanel(ctx.groups, a.metric, a.better)]));
  for (const g of ctx.groups) {
    const t = g.metrics.top1_after;
    if (!t) continue;
    out.push({
      k: "g",
      p: g.panel,
      m: g.methodLabel,
      t: g.target,
      to: targetOrder(g.targetKind, g.targetValue),
      n: t.n,
      y: r5(t.mean),
      ylo: r5(t.min),
      yhi: r5(t.max),
      ysd: r5(t.std),
      cr: r5(g.metrics.compression_ratio?.mean),
      sp: r5(g.metrics.theoretical_speedup?.mean),
      lat: r5(g.metrics.latency_pruned_ms?.mean),
      fcr: fronts.get("compression")!.has(g.id),
      fsp: fronts.get("speedup")!.has(g.id),
      flat: fronts.get("latency")!.has(g.id),
    });
  }
  for (const b of ctx.baselines.values()) {
    if (!ctx.panels.includes(b.panel)) continue;
    out.push({ k: "d", p: b.panel, m: "dense", t: "dense", n: b.top1.n, y: r5(b.top1.mean), ysd: r5(b.top1.std), cr: 1, sp: 1, lat: r5(b.latencyDenseMs?.mean) });
  }
  for (const ref of ctx.data.references) {
    const p = panelLabel(ref.dataset, ref.arch);
    const y = referenceMetric(ref, "top1_after");
    if (y === null || !ctx.panels.includes(p)) continue;
    out.push({
      k: "r",
      p,
      m: ref.method,
      t: targetLabel(ref.target),
      y: r5(y),
      cr: r5(referenceMetric(ref, "compression_ratio") ?? (ref.target.kind === "compression" ? ref.target.value : isDenseReference(ref) ? 1 : null)),
      sp: r5(referenceMetric(ref, "theoretical_speedup") ?? (isDenseReference(ref) ? 1 : null)),
      lat: r5(referenceMetric(ref, "latency_pruned_ms")),
      paper: ref.paper,
      src: ref.source + (ref.note ? ` — ${ref.note}` : ""),
    });
  }
  return out;
}

function spec(ctx: ReportContext, a: Axis): VlSpec {
  const x: VlSpec = {
    field: a.field,
    type: "quantitative",
    title: a.title,
    scale: a.log ? { type: "log", base: 2, nice: false } : { zero: false, nice: true },
    axis: a.log ? { format: "~g", tickCount: 6 } : { tickCount: 5 },
  };
  const y: VlSpec = { field: "y", type: "quantitative", title: "top-1 after fine-tuning", scale: { zero: false }, axis: { format: ".0%" } };
  const valid = `isValid(datum.${a.field}) && datum.${a.field} > 0`;
  const groupTip = [
    { field: "m", title: "method" },
    { field: "t", title: "target" },
    { field: "n", title: "seeds" },
    { field: "y", title: "top-1 (mean)", format: ".2%" },
    { field: "ysd", title: "top-1 std", format: ".2%" },
    { field: "ylo", title: "top-1 min", format: ".2%" },
    { field: "yhi", title: "top-1 max", format: ".2%" },
    { field: a.field, title: a.key, format: ".3~f" },
  ];
  const inner: VlSpec = {
    width: 250,
    height: 180,
    layer: [
      {
        transform: [{ filter: "datum.k == 'd'" }],
        mark: { type: "rule", strokeDash: [5, 3], color: "#666", strokeWidth: 1.2 },
        encoding: { y: { ...y }, tooltip: [{ field: "y", title: "dense top-1 (mean over seeds)", format: ".2%" }, { field: "n", title: "seeds" }] },
      },
      ...(a.key === "latency"
        ? [
            // Latency need not grow with the target, so no lines: points with a min-max bar over seeds.
            {
              transform: [{ filter: `datum.k == 'g' && ${valid}` }],
              mark: { type: "rule", strokeWidth: 1.2, opacity: 0.5 },
              encoding: { x, y: { field: "ylo", type: "quantitative" }, y2: { field: "yhi" }, color: methodColor(ctx) },
            },
            {
              transform: [{ filter: `datum.k == 'g' && ${valid}` }],
              mark: { type: "point", filled: true, size: 34, opacity: 0.85 },
              encoding: { x, y, color: methodColor(ctx), tooltip: groupTip },
            },
          ]
        : [
            {
              transform: [{ filter: `datum.k == 'g' && ${valid}` }],
              mark: { type: "area", opacity: 0.15 },
              encoding: { x, y: { field: "ylo", type: "quantitative" }, y2: { field: "yhi" }, color: methodColor(ctx), order: { field: a.field } },
            },
            {
              transform: [{ filter: `datum.k == 'g' && ${valid}` }],
              mark: { type: "line", strokeWidth: 1.6, point: { filled: true, size: 26 } },
              encoding: { x, y, color: methodColor(ctx), order: { field: a.field }, tooltip: groupTip },
            },
          ]),
      {
        transform: [{ filter: `datum.k == 'g' && datum.${a.frontier} && ${valid}` }],
        mark: { type: "line", color: "#222", strokeDash: [2, 2], strokeWidth: 1 },
        encoding: { x, y, order: { field: a.field } },
      },
      {
        transform: [{ filter: `datum.k == 'g' && datum.${a.frontier} && ${valid}` }],
        mark: { type: "point", shape: "circle", size: 110, filled: false, color: "#222", strokeWidth: 1.3 },
        encoding: { x, y, tooltip: [{ field: "m", title: "Pareto-optimal" }, ...groupTip.slice(1)] },
      },
      ...(a.key === "latency"
        ? [
            {
              transform: [{ filter: `datum.k == 'd' && ${valid}` }],
              mark: { type: "point", shape: "cross", size: 90, filled: true, color: "#444" },
              encoding: { x, y, tooltip: [{ field: "y", title: "dense top-1", format: ".2%" }, { field: "lat", title: "dense latency (ms)", format: ".3~f" }] },
            },
          ]
        : []),
      {
        transform: [{ filter: `datum.k == 'r' && ${valid}` }],
        mark: { type: "point", shape: "diamond", size: 100, filled: true, color: "#111", opacity: 0.9 },
        encoding: {
          x,
          y,
          tooltip: [
            { field: "paper", title: "published in" },
            { field: "src", title: "source" },
            { field: "m", title: "method" },
            { field: "t", title: "target" },
            { field: "y", title: "top-1 (published)", format: ".2%" },
            { field: a.field, title: a.key, format: ".3~f" },
          ],
        },
      },
    ],
  };
  return {
    data: { name: DATA },
    ...panelFacet(ctx, inner, { independentY: true, independentX: a.key !== "compression" }),
    config: CHART_CONFIG,
  };
}

export const tradeoffSection: Section = {
  id: "tradeoff",
  title: "Trade-off curves",
  render(ctx) {
    const r = rows(ctx);
    if (!r.some((x) => x.k === "g")) return { html: note("No finished runs with top-1 after fine-tuning yet.") };
    const charts: ChartSpec[] = [];
    let html = note(
      "One line per method: mean over seeds; shaded band: min–max over seeds. Dashed grey rule: dense model (mean over seeds). " +
        "Black rings joined by a dotted line: Pareto frontier of the panel (no other group has both higher top-1 and better x). " +
        "Latency does not follow the target, so that chart shows points with min–max bars (dense model: grey cross). " +
        "Black diamonds: published numbers (hover for the paper). Hover any point for details.",
    );
    for (const a of AXES) {
      const has = r.some((x) => x.k === "g" && x[a.field] !== null);
      html += `<h3>${a.heading}</h3>`;
      if (!has) {
        html += note(`No run recorded <code>${a.metric}</code>.`);
        continue;
      }
      const id = `chart-tradeoff-${a.key}`;
      html += `<div class="chart" id="${id}"></div>`;
      charts.push({ id, spec: spec(ctx, a), datasets: [DATA] });
    }
    return { html, charts, data: { [DATA]: packRows(r) } };
  },
};
