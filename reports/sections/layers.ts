/**
 * Per-layer weight-sparsity profile: layer x method heatmap at one target, one panel per dataset · arch, the value in
 * each cell and each layer's weight count beside its name. Shows what global pruning does to each layer compared
 * with uniform (layer-wise) allocation.
 */
import type { LayerKind } from "../../src/core/types.js";
import { compactCount, escapeHtml } from "../format.js";
import { CHART_CONFIG, defaultTarget, groupFields, note, packRows, panelFacet, r5, targetsOf, withFilter } from "./common.js";
import type { Section } from "./types.js";

const DATA = "layers";

/** Layers that own a weight tensor of `shape` (the kernel or table); the others (norms, attention) hold no weights to prune. */
const WEIGHTED: ReadonlySet<LayerKind> = new Set<LayerKind>(["conv", "depthwise", "dense", "embedding"]);

/**
 * Weight sparsity of one stored layer row: zero weights / weights. The row stores kernel and bias together (params,
 * nonzero), so zeros are params − nonzero and the denominator is the kernel's size alone; biases are counted as
 * nonzero, which they are unless a method prunes them too (then this slightly overstates, capped at 100 %).
 */
export function weightSparsity(l: { kind: LayerKind; shape: number[]; params: number; nonzero: number }): number | null {
  if (!WEIGHTED.has(l.kind) || l.shape.length === 0) return null;
  const weights = l.shape.reduce((a, b) => a * b, 1);
  if (!(weights > 0)) return null;
  return Math.min(1, Math.max(0, (l.params - l.nonzero) / weights));
}

export const layerSection: Section = {
  id: "layers",
  title: "Per-layer sparsity",
  render(ctx) {
    const groupOf = new Map<string, number>();
    ctx.groups.forEach((g, i) => g.runKeys.forEach((k) => groupOf.set(k, i)));
    // group index -> layer name -> accumulator
    const acc = new Map<number, Map<string, { li: number; kind: string; weights: number; prunable: boolean; sum: number; n: number }>>();
    const order = new Map<string, number>();
    for (const l of ctx.data.layers) {
      const gi = groupOf.get(l.runKey);
      const ws = gi === undefined ? null : weightSparsity(l);
      if (gi === undefined || ws === null) continue;
      let m = acc.get(gi);
      if (!m) acc.set(gi, (m = new Map()));
      let a = m.get(l.name);
      if (!a) {
        const ok = `${ctx.groups[gi].arch}|${l.name}`;
        if (!order.has(ok)) order.set(ok, order.size);
        m.set(l.name, (a = { li: order.get(ok)!, kind: l.kind, weights: l.shape.reduce((x, y) => x * y, 1), prunable: l.prunable, sum: 0, n: 0 }));
      }
      a.sum += ws;
      a.n++;
    }
    const rows: Record<string, unknown>[] = [];
    for (const [gi, m] of acc) {
      const g = ctx.groups[gi];
      const f = { ...groupFields(g), p: g.panel };
      for (const [name, a] of m) {
        rows.push({ ...f, l: `${name} · ${compactCount(a.weights)}`, li: a.li, k: a.kind, np: a.weights, pr: a.prunable ? "yes" : "no", v: r5(a.sum / a.n) });
      }
    }
    if (rows.length === 0) return { html: note("No per-layer rows recorded for finished runs.") };
    const present = new Set(rows.map((r) => r.t as string));
    const layersPerPanel = new Map<string, Set<string>>();
    for (const r of rows) {
      let s = layersPerPanel.get(r.p as string);
      if (!s) layersPerPanel.set(r.p as string, (s = new Set()));
      s.add(r.l as string);
    }
    const maxLayers = Math.max(...[...layersPerPanel.values()].map((s) => s.size));
    const targets = targetsOf(ctx.groups).filter((t) => present.has(t.label)).map((t) => t.label);
    const def = defaultTarget(ctx.groups.filter((g) => present.has(g.target))) ?? targets[0];
    const cellW = ctx.methods.length <= 4 ? 56 : 40;
    const enc = {
      x: { field: "m", type: "nominal", title: null, sort: ctx.methods, axis: { orient: "top", labelAngle: -35, labelAlign: "left", labelLimit: 150 } },
      y: { field: "l", type: "nominal", title: null, sort: { field: "li", op: "min" }, axis: { labelLimit: 170, labelFontSize: 10 } },
    };
    const spec = withFilter({
      data: { name: DATA },
      // The page's target filter wins; with none, this chart's own choice.
      params: [{ name: "layer_target", value: def, bind: { input: "select", options: targets, name: "target (when the filter bar has none) " } }],
      transform: [{ filter: "datum.t == (pb_target != '' ? pb_target : layer_target)" }],
      ...panelFacet(
        ctx,
        {
          width: { step: cellW },
          height: { step: maxLayers <= 12 ? 22 : 15 },
          layer: [{
          mark: { type: "rect", stroke: "#fff", strokeWidth: 0.5 },
          encoding: {
            ...enc,
            color: { field: "v", type: "quantitative", title: "weight sparsity", scale: { domain: [0, 1], scheme: "blues" }, legend: { format: ".0%", gradientLength: 160 } },
            tooltip: [
              { field: "l", title: "layer" },
              { field: "k", title: "kind" },
              { field: "np", title: "weights (kernel, no bias)", format: ",d" },
              { field: "pr", title: "prunable" },
              { field: "m", title: "method" },
              { field: "t", title: "target" },
              { field: "v", title: "weight sparsity (mean over seeds)", format: ".1%" },
            ],
          },
        }, {
          // The value in each cell: colour alone cannot be read to a percent.
          mark: { type: "text", fontSize: maxLayers <= 12 ? 10 : 8.5 },
          encoding: { ...enc, text: { field: "v", type: "quantitative", format: ".0%" }, color: { condition: { test: "datum.v > 0.6", value: "#fff" }, value: "#1d1f23" } },
        }],
        },
        { independentY: true, independentXAxis: true, columns: Math.max(1, Math.min(ctx.panels.length, Math.floor(1150 / (cellW * ctx.methods.length + 200)))) },
      ),
      config: CHART_CONFIG,
    }, false);
    return {
      html:
        note(
          `Fraction of each layer's <i>weights</i> that are zero (biases not counted; mean over seeds), per method, at the target chosen in the filter bar, or else above the chart (default <code>${escapeHtml(def)}</code>: present for the most methods). Layers are listed input to output, each with its weight count; layers without weights (normalisation) are left out.`,
        ) + `<div class="controls" id="chart-layers-controls"></div><div class="chart" id="chart-layers"></div>`,
      charts: [{ id: "chart-layers", spec, datasets: [DATA] }],
      data: { [DATA]: packRows(rows) },
    };
  },
};
