/**
 * Accuracy drop vs the dense model against compression on a log axis (percentage points, ±1 std over seeds): the
 * sparsities 0.5 … 0.98 are 2× … 50× compression, so equal steps on the axis are equal factors of compression.
 */
import { CHART_CONFIG, HIGHLIGHT_PARAM, groupFields, highlightOpacity, methodColor, methodShape, note, packRows, panelFacet, r5, runKeysText, withFilter, DESCRIBE_POINT } from "./common.js";
import { PANEL_HEIGHT, PANEL_WIDTH } from "./tradeoff.js";
import type { Section } from "./types.js";

const DATA = "drop";

export const accuracyDropSection: Section = {
  id: "accuracy-drop",
  title: "Accuracy drop vs dense",
  render(ctx) {
    const rows: Record<string, unknown>[] = [];
    for (const g of ctx.groups) {
      const d = g.deltaTop1;
      const cr = g.metrics.compression_ratio?.mean;
      if (!d || cr === undefined || !(cr > 0)) continue;
      const sd = d.std ?? 0;
      rows.push({
        ...groupFields(g),
        p: g.panel,
        cr: r5(cr),
        n: d.n,
        d: r5(d.mean * 100),
        sd: d.std === null ? null : r5(sd * 100),
        lo: r5((d.mean - sd) * 100),
        hi: r5((d.mean + sd) * 100),
        ci: d.ci95 ? `[${(d.ci95[0] * 100).toFixed(2)}, ${(d.ci95[1] * 100).toFixed(2)}]` : "n < 2",
        dense: r5(g.baseline ? g.baseline.top1.mean : null),
        y: r5(g.metrics.top1_after?.mean),
        keys: runKeysText(g.runKeys),
      });
    }
    if (rows.length === 0) return { html: note("No finished runs with dense and fine-tuned top-1 and a compression ratio yet.") };
    // "8× · 12.5%": the compression factor and the share of weights remaining, both on one log axis.
    const x = {
      field: "cr",
      type: "quantitative",
      title: "compression ratio (log2) · % of weights remaining",
      scale: { type: "log", base: 2, nice: false },
      axis: { tickCount: 6, labelExpr: "format(datum.value, '~g') + '× · ' + format(100 / datum.value, '.3~g') + '%'", labelAngle: -30, labelAlign: "right" },
    };
    const y = { field: "d", type: "quantitative", title: "Δ top-1 vs dense (pp)", axis: { labelExpr: "(datum.value > 0 ? '+' : '') + datum.label" } };
    const spec = withFilter(
      {
        data: { name: DATA },
        ...panelFacet(
          ctx,
          {
            width: PANEL_WIDTH,
            height: 220,
            layer: [
              { mark: { type: "rule", color: "#888", strokeDash: [4, 3] }, encoding: { y: { datum: 0, type: "quantitative" } } },
              { mark: { type: "rule", strokeWidth: 1.2 }, encoding: { x, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" }, color: methodColor(ctx), opacity: highlightOpacity(0.5, 0.08) } },
              { mark: { type: "line", strokeWidth: 1.6 }, encoding: { x, y, color: methodColor(ctx), order: { field: "cr" }, opacity: highlightOpacity(1, 0.12) } },
              {
                params: [HIGHLIGHT_PARAM],
                transform: [DESCRIBE_POINT],
                mark: { type: "point", filled: true, size: 40 },
                encoding: {
                  description: { field: "desc" },
                  x,
                  y,
                  color: methodColor(ctx),
                  shape: methodShape(ctx),
                  opacity: highlightOpacity(1, 0.12),
                  tooltip: [
                    { field: "m", title: "method" },
                    { field: "t", title: "target" },
                    { field: "cr", title: "compression", format: ".2f" },
                    { field: "n", title: "seeds" },
                    { field: "d", title: "Δ top-1 (pp, mean)", format: "+.2f" },
                    { field: "sd", title: "std (pp)", format: ".2f" },
                    { field: "ci", title: "95% CI (pp)" },
                    { field: "y", title: "top-1 after", format: ".2%" },
                    { field: "dense", title: "dense top-1", format: ".2%" },
                    { field: "keys", title: "run keys" },
                  ],
                },
              },
            ],
          },
          { independentY: true },
        ),
        config: CHART_CONFIG,
      },
      false,
    );
    return {
      html:
        note(
          "Top-1 after fine-tuning minus the dense model's top-1 (same dataset and architecture, mean over seeds), in percentage points, against the achieved compression ratio on a log axis (labels also give the % of weights remaining); vertical bars: ±1 std over seeds. Click a method in the legend to highlight it.",
        ) + `<div class="chart" id="chart-drop"></div>`,
      charts: [{ id: "chart-drop", spec, datasets: [DATA] }],
      data: { [DATA]: packRows(rows) },
    };
  },
};
