/** Accuracy drop vs the dense model at each target, per method (percentage points, ±1 std over seeds). */
import { targetOrder } from "../aggregate.js";
import { CHART_CONFIG, methodColor, note, packRows, panelFacet, r5 } from "./common.js";
import type { Section } from "./types.js";

const DATA = "drop";

export const accuracyDropSection: Section = {
  id: "accuracy-drop",
  title: "Accuracy drop vs dense",
  render(ctx) {
    const rows: Record<string, unknown>[] = [];
    for (const g of ctx.groups) {
      const d = g.deltaTop1;
      if (!d) continue;
      const sd = d.std ?? 0;
      rows.push({
        p: g.panel,
        m: g.methodLabel,
        t: g.target,
        to: targetOrder(g.targetKind, g.targetValue),
        n: d.n,
        d: r5(d.mean * 100),
        sd: d.std === null ? null : r5(sd * 100),
        lo: r5((d.mean - sd) * 100),
        hi: r5((d.mean + sd) * 100),
        ci: d.ci95 ? `[${(d.ci95[0] * 100).toFixed(2)}, ${(d.ci95[1] * 100).toFixed(2)}]` : "n < 2",
        dense: r5(g.baseline ? g.baseline.top1.mean : null),
        y: r5(g.metrics.top1_after?.mean),
      });
    }
    if (rows.length === 0) return { html: note("No finished runs with both dense and fine-tuned top-1 yet.") };
    const x = { field: "t", type: "ordinal", title: "target", sort: { field: "to", op: "min" }, axis: { labelAngle: -30, labelLimit: 120 } };
    const y = { field: "d", type: "quantitative", title: "Δ top-1 vs dense (pp)" };
    const spec = {
      data: { name: DATA },
      ...panelFacet(
        ctx,
        {
          width: 250,
          height: 170,
          layer: [
            { mark: { type: "rule", color: "#888", strokeDash: [4, 3] }, encoding: { y: { datum: 0, type: "quantitative" } } },
            { mark: { type: "rule", strokeWidth: 1.2, opacity: 0.55 }, encoding: { x, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" }, color: methodColor(ctx) } },
            {
              mark: { type: "line", strokeWidth: 1.6, point: { filled: true, size: 26 } },
              encoding: {
                x,
                y,
                color: methodColor(ctx),
                tooltip: [
                  { field: "m", title: "method" },
                  { field: "t", title: "target" },
                  { field: "n", title: "seeds" },
                  { field: "d", title: "Δ top-1 (pp, mean)", format: "+.2f" },
                  { field: "sd", title: "std (pp)", format: ".2f" },
                  { field: "ci", title: "95% CI (pp)" },
                  { field: "y", title: "top-1 after", format: ".2%" },
                  { field: "dense", title: "dense top-1", format: ".2%" },
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
        note("Top-1 after fine-tuning minus the dense model's top-1 (same dataset and architecture, mean over seeds), in percentage points; vertical bars: ±1 std over seeds.") +
        `<div class="chart" id="chart-drop"></div>`,
      charts: [{ id: "chart-drop", spec, datasets: [DATA] }],
      data: { [DATA]: packRows(rows) },
    };
  },
};
