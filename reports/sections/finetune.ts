/** Fine-tuning curves: validation accuracy per epoch (phase "finetune"), mean and min-max over seeds, selectable. */
import { escapeHtml } from "../format.js";
import { CHART_CONFIG, defaultTarget, methodColor, note, packRows, panelFacet, r5, targetsOf } from "./common.js";
import type { Section } from "./types.js";

const DATA = "finetune";
const ALL = "(all)";

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
      rows.push({ p: g.panel, a: g.arch, m: g.methodLabel, t: g.target, e: a.e + 1, v: r5(sum / a.vals.length), lo: r5(lo), hi: r5(hi), n: a.vals.length });
    }
    if (rows.length === 0) return { html: note("No fine-tuning epochs recorded for finished runs.") };
    const present = new Set(rows.map((r) => r.t as string));
    const targets = targetsOf(ctx.groups).filter((t) => present.has(t.label)).map((t) => t.label);
    const def = defaultTarget(ctx.groups.filter((g) => present.has(g.target))) ?? targets[0];
    const archs = [...new Set(rows.map((r) => r.a as string))].sort();
    const methods = ctx.methods.filter((m) => rows.some((r) => r.m === m));
    const x = { field: "e", type: "quantitative", title: "fine-tuning epoch", axis: { tickMinStep: 1, format: "d" }, scale: { nice: false } };
    const spec = {
      data: { name: DATA },
      params: [
        { name: "ft_target", value: def, bind: { input: "select", options: targets, name: "target " } },
        { name: "ft_method", value: ALL, bind: { input: "select", options: [ALL, ...methods], name: "method " } },
        { name: "ft_arch", value: ALL, bind: { input: "select", options: [ALL, ...archs], name: "architecture " } },
      ],
      transform: [{ filter: `datum.t == ft_target && (ft_method == '${ALL}' || datum.m == ft_method) && (ft_arch == '${ALL}' || datum.a == ft_arch)` }],
      ...panelFacet(
        ctx,
        {
          width: 250,
          height: 170,
          layer: [
            { mark: { type: "area", opacity: 0.15 }, encoding: { x, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" }, color: methodColor(ctx) } },
            {
              mark: { type: "line", strokeWidth: 1.6, point: { filled: true, size: 18 } },
              encoding: {
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
                ],
              },
            },
          ],
        },
        { independentY: true },
      ),
      config: CHART_CONFIG,
    };
    return {
      html:
        note(`Validation top-1 after each fine-tuning epoch (mean over seeds; band: min–max). Pick a target, a method and an architecture above the chart (default target <code>${escapeHtml(def)}</code>).`) +
        `<div class="controls" id="chart-finetune-controls"></div><div class="chart" id="chart-finetune"></div>`,
      charts: [{ id: "chart-finetune", spec, datasets: [DATA] }],
      data: { [DATA]: packRows(rows) },
    };
  },
};
