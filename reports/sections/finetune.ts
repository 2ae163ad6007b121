/** Fine-tuning curves: validation accuracy per epoch (phase "finetune"), mean and min-max over seeds, selectable. */
import { escapeHtml } from "../format.js";
import { CHART_CONFIG, HIGHLIGHT_PARAM, defaultTarget, groupFields, highlightOpacity, methodColor, note, packRows, panelFacet, r5, runKeysText, targetsOf, withFilter, DESCRIBE_POINT } from "./common.js";
import { PANEL_WIDTH } from "./tradeoff.js";
import type { Section } from "./types.js";

const DATA = "finetune";

export const finetuneSection: Section = {
  id: "finetune",
  title: "Fine-tuning curves",
  render(ctx) {
    const groupOf = new Map<string, number>();
    ctx.groups.forEach((g, i) => g.runKeys.forEach((k) => groupOf.set(k, i)));
    const acc = new Map<string, { gi: number; e: number; vals: number[] }>();
    for (const ep of ctx.data.epochs) {
      if (ep.phase !== "finetune" || !Number.isFinite(ep.valAcc)) continue;
      const gi = groupOf.get(ep.runKey);
      if (gi === undefined) continue;
      const k = `${gi}:${ep.epoch}`;
      let a = acc.get(k);
      if (!a) acc.set(k, (a = { gi, e: ep.epoch, vals: [] }));
      a.vals.push(ep.valAcc);
    }
    const rows: Record<string, unknown>[] = [];
    // Per group once: its filter fields and run keys (the same for each of its epochs).
    const fields = new Map<number, Record<string, unknown>>();
    for (const a of acc.values()) {
      const g = ctx.groups[a.gi];
      let sum = 0;
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of a.vals) {
        sum += v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      let f = fields.get(a.gi);
      if (!f) fields.set(a.gi, (f = { ...groupFields(g), p: g.panel, keys: runKeysText(g.runKeys) }));
      rows.push({ ...f, e: a.e + 1, v: r5(sum / a.vals.length), lo: r5(lo), hi: r5(hi), n: a.vals.length });
    }
    if (rows.length === 0) return { html: note("No fine-tuning epochs recorded for finished runs.") };
    const present = new Set(rows.map((r) => r.t as string));
    const targets = targetsOf(ctx.groups).filter((t) => present.has(t.label)).map((t) => t.label);
    const def = defaultTarget(ctx.groups.filter((g) => present.has(g.target))) ?? targets[0];
    // Integer ticks listed explicitly: a "d" format on automatic ticks prints 1, 2, 2, 3, 3 for fractional ticks.
    const maxEpoch = Math.max(...rows.map((r) => r.e as number));
    const step = Math.max(1, Math.ceil(maxEpoch / 10));
    const ticks = Array.from({ length: Math.floor(maxEpoch / step) }, (_, i) => (i + 1) * step);
    if (ticks[0] !== 1) ticks.unshift(1);
    const x = { field: "e", type: "quantitative", title: "fine-tuning epoch", axis: { values: ticks, format: "d" }, scale: { nice: false, domain: [1, Math.max(2, maxEpoch)] } };
    const spec = withFilter({
      data: { name: DATA },
      // The page's target filter wins; with none, this chart's own choice (one target at a time keeps it readable).
      params: [{ name: "ft_target", value: def, bind: { input: "select", options: targets, name: "target (when the filter bar has none) " } }],
      transform: [{ filter: "datum.t == (pb_target != '' ? pb_target : ft_target)" }],
      ...panelFacet(
        ctx,
        {
          width: PANEL_WIDTH,
          height: 200,
          layer: [
            { mark: { type: "area", opacity: 0.15 }, encoding: { x, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" }, color: methodColor(ctx), fillOpacity: highlightOpacity(1, 0.2) } },
            {
              params: [HIGHLIGHT_PARAM],
              transform: [DESCRIBE_POINT],
              mark: { type: "line", strokeWidth: 1.6, point: { filled: true, size: 18 } },
              encoding: {
                description: { field: "desc" },
                opacity: highlightOpacity(1, 0.12),
                x,
                y: { field: "v", type: "quantitative", title: "validation top-1", scale: { zero: false }, axis: { format: ".0%" } },
                color: methodColor(ctx),
                tooltip: [
                  { field: "m", title: "method" },
                  { field: "t", title: "target" },
                  { field: "e", title: "epoch" },
                  { field: "v", title: "val top-1 (mean)", format: ".2%" },
                  { field: "lo", title: "min", format: ".2%" },
                  { field: "hi", title: "max", format: ".2%" },
                  { field: "n", title: "seeds" },
                  { field: "keys", title: "run keys" },
                ],
              },
            },
          ],
        },
        { independentY: true },
      ),
      config: CHART_CONFIG,
    }, false);
    return {
      html:
        note(`Validation top-1 after each fine-tuning epoch (mean over seeds; band: min–max). The filter bar picks datasets, architectures and methods; with no target chosen there, pick one above the chart (default <code>${escapeHtml(def)}</code>).`) +
        `<div class="controls" id="chart-finetune-controls"></div><div class="chart" id="chart-finetune"></div>`,
      charts: [{ id: "chart-finetune", spec, datasets: [DATA] }],
      data: { [DATA]: packRows(rows) },
    };
  },
};
