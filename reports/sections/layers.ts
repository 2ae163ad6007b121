/**
 * Per-layer sparsity profile: layer x method heatmap at one target (dropdown), one panel per dataset · arch.
 * Shows what global pruning does to each layer compared with uniform (layer-wise) allocation.
 */
import { escapeHtml } from "../format.js";
import { CHART_CONFIG, defaultTarget, note, packRows, panelFacet, r5, targetsOf } from "./common.js";
import type { Section } from "./types.js";

const DATA = "layers";

export const layerSection: Section = {
  id: "layers",
  title: "Per-layer sparsity",
  render(ctx) {
    const groupOf = new Map<string, number>();
    ctx.groups.forEach((g, i) => g.runKeys.forEach((k) => groupOf.set(k, i)));
    // group index -> layer name -> accumulator
    const acc = new Map<number, Map<string, { li: number; kind: string; params: number; prunable: boolean; sum: number; n: number }>>();
    const order = new Map<string, number>();
    for (const l of ctx.data.layers) {
      const gi = groupOf.get(l.runKey);
      if (gi === undefined || l.params <= 0) continue;
      let m = acc.get(gi);
      if (!m) acc.set(gi, (m = new Map()));
      let a = m.get(l.name);
      if (!a) {
        const ok = `${ctx.groups[gi].arch}|${l.name}`;
        if (!order.has(ok)) order.set(ok, order.size);
        m.set(l.name, (a = { li: order.get(ok)!, kind: l.kind, params: l.params, prunable: l.prunable, sum: 0, n: 0 }));
      }
      a.sum += 1 - l.nonzero / l.params;
      a.n++;
    }
    const rows: Record<string, unknown>[] = [];
    for (const [gi, m] of acc) {
      const g = ctx.groups[gi];
      for (const [name, a] of m) {
        rows.push({ p: g.panel, m: g.methodLabel, t: g.target, l: name, li: a.li, k: a.kind, np: a.params, pr: a.prunable ? "yes" : "no", s: r5(a.sum / a.n) });
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
    const spec = {
      data: { name: DATA },
      params: [{ name: "layer_target", value: def, bind: { input: "select", options: targets, name: "target " } }],
      transform: [{ filter: "datum.t == layer_target" }],
      ...panelFacet(
        ctx,
        {
          width: { step: ctx.methods.length <= 4 ? 40 : 26 },
          height: { step: maxLayers <= 12 ? 20 : 13 },
          mark: { type: "rect", stroke: "#fff", strokeWidth: 0.5 },
          encoding: {
            x: { field: "m", type: "nominal", title: null, sort: ctx.methods, axis: { orient: "top", labelAngle: -35, labelAlign: "left", labelLimit: 150 } },
            y: { field: "l", type: "nominal", title: null, sort: { field: "li", op: "min" }, axis: { labelLimit: 140, labelFontSize: 10 } },
            color: { field: "s", type: "quantitative", title: "layer sparsity", scale: { domain: [0, 1], scheme: "blues" }, legend: { format: ".0%", gradientLength: 160 } },
            tooltip: [
              { field: "l", title: "layer" },
              { field: "k", title: "kind" },
              { field: "np", title: "params", format: ",d" },
              { field: "pr", title: "prunable" },
              { field: "m", title: "method" },
              { field: "t", title: "target" },
              { field: "s", title: "sparsity (mean over seeds)", format: ".1%" },
            ],
          },
        },
        { independentY: true, independentXAxis: true, columns: Math.max(1, Math.min(ctx.panels.length, Math.floor(1150 / ((ctx.methods.length <= 4 ? 40 : 26) * ctx.methods.length + 170)))) },
      ),
      config: CHART_CONFIG,
    };
    return {
      html:
        note(
          `Fraction of each layer's parameters that are zero (mean over seeds), per method, at the chosen target (pick it above the chart; default <code>${escapeHtml(def)}</code>: present for the most methods). Layers are listed input to output.`,
        ) + `<div class="controls" id="chart-layers-controls"></div><div class="chart" id="chart-layers"></div>`,
      charts: [{ id: "chart-layers", spec, datasets: [DATA] }],
      data: { [DATA]: packRows(rows) },
    };
  },
};
