/**
 * Theoretical vs measured speedup. Structured runs time the dense and the compacted model (same backend and threads)
 * at batch 1 and at the fine-tuning batch, each a median of repeated timings stored with its IQR; this section puts
 * those measured speedups beside the theoretical one (dense MACs / compacted MACs), per method, arch and target.
 * Unstructured runs are timed on the masked, dense-shaped model with dense kernels, so their measured speedup is ≈ 1
 * by construction: the section says so instead of charting it. Absent when no run has any of these latencies.
 */
import type { GroupAggregate, Stat } from "../aggregate.js";
import { targetOrder } from "../aggregate.js";
import { escapeHtml, formatMetric } from "../format.js";
import { CHART_CONFIG, groupAttrs, groupFields, methodColor, note, packRows, panelFacet, r5, runKeysText, withFilter } from "./common.js";
import type { Section } from "./types.js";

const DATA = "speedup";

/** The two batches structured runs are timed at: metric-name infix and how the batch is labelled. */
const BATCHES = [
  { key: "b1", speedup: "measured_speedup_b1", batch: "latency_b1_batch" },
  { key: "train", speedup: "measured_speedup_train", batch: "latency_train_batch" },
] as const;

const mean = (s: Stat | undefined): number | null => (s ? s.mean : null);

/** Median latency (mean over seeds of each run's median) with its IQR (mean over seeds), e.g. "1.52 ms (IQR 0.04)". */
function latencyCell(g: GroupAggregate, name: string): string {
  const v = g.metrics[name];
  if (!v) return `<td class="num">–</td>`;
  const iqr = g.metrics[name.replace(/_ms$/, "_iqr_ms")];
  return `<td class="num">${formatMetric(name, v.mean)}${iqr ? ` <span class="muted">(IQR ${formatMetric(name, iqr.mean, false)})</span>` : ""}</td>`;
}

function speedupCell(s: Stat | undefined): string {
  if (!s) return `<td class="num">–</td>`;
  const range = s.n > 1 ? ` <span class="muted">[${s.min.toFixed(2)}–${s.max.toFixed(2)}]</span>` : "";
  return `<td class="num">${s.mean.toFixed(2)}×${range}</td>`;
}

export const speedupSection: Section = {
  id: "speedup",
  title: "Theoretical vs measured speedup",
  render(ctx) {
    const timed = (g: GroupAggregate) => BATCHES.some((b) => g.metrics[b.speedup] !== undefined);
    const structured = ctx.groups
      .filter(timed)
      .sort((a, b) => a.panel.localeCompare(b.panel) || a.methodLabel.localeCompare(b.methodLabel) || targetOrder(a.targetKind, a.targetValue) - targetOrder(b.targetKind, b.targetValue));
    // Unstructured: a measured speedup, but no compacted model was timed (latency_form_compacted is set only then).
    const unstructured = ctx.groups.filter((g) => !timed(g) && g.metrics.latency_form_compacted === undefined && g.metrics.measured_speedup !== undefined);
    if (structured.length === 0 && unstructured.length === 0) return null;

    let html = "";
    const rows: Record<string, unknown>[] = [];
    if (structured.length > 0) {
      for (const g of structured) {
        for (const b of BATCHES) {
          const s = g.metrics[b.speedup];
          if (!s) continue;
          const batch = mean(g.metrics[b.batch]);
          rows.push({
            ...groupFields(g), keys: runKeysText(g.runKeys),
            p: g.panel, b: b.key === "b1" ? "batch 1" : `training batch${batch !== null ? ` (${batch})` : ""}`,
            th: r5(mean(g.metrics.theoretical_speedup)), ms: r5(s.mean), lo: r5(s.min), hi: r5(s.max), n: s.n,
            dn: r5(mean(g.metrics[`latency_${b.key}_dense_ms`])), di: r5(mean(g.metrics[`latency_${b.key}_dense_iqr_ms`])),
            cm: r5(mean(g.metrics[`latency_${b.key}_compacted_ms`])), ci: r5(mean(g.metrics[`latency_${b.key}_compacted_iqr_ms`])),
          });
        }
      }
      const trainBatches = [...new Set(structured.map((g) => mean(g.metrics.latency_train_batch)).filter((v): v is number => v !== null))];
      const trainHead = `training batch${trainBatches.length === 1 ? ` (${trainBatches[0]})` : ""}`;
      const body = structured.map((g) => `<tr${groupAttrs(g)}><td>${escapeHtml(g.panel)}</td><td>${escapeHtml(g.methodLabel)}</td><td>${escapeHtml(g.target)}</td><td class="num">${g.seeds.length}</td>` +
        `<td class="num">${formatMetric("theoretical_speedup", mean(g.metrics.theoretical_speedup))}</td>` +
        `<td class="num">${formatMetric("macs_compacted", mean(g.metrics.macs_compacted))}</td><td class="num">${formatMetric("params_compacted", mean(g.metrics.params_compacted))}</td>` +
        BATCHES.map((b) => speedupCell(g.metrics[b.speedup]) + latencyCell(g, `latency_${b.key}_dense_ms`) + latencyCell(g, `latency_${b.key}_compacted_ms`)).join("") +
        `</tr>`).join("");
      const head1 = `<tr><th rowspan="2">dataset · arch</th><th rowspan="2">method</th><th rowspan="2">target</th><th rowspan="2" class="num">seeds</th><th rowspan="2" class="num">theoretical</th>` +
        `<th rowspan="2" class="num">MACs compacted</th><th rowspan="2" class="num">params compacted</th><th colspan="3">batch 1</th><th colspan="3">${escapeHtml(trainHead)}</th></tr>`;
      const head2 = `<tr>${`<th class="num">measured</th><th class="num">dense</th><th class="num">compacted</th>`.repeat(2)}</tr>`;
      const x = { field: "th", type: "quantitative", title: "theoretical speedup (dense / compacted MACs)", scale: { zero: false } };
      const y = { field: "ms", type: "quantitative", title: "measured speedup (dense / compacted latency)", scale: { zero: false } };
      const spec = withFilter({
        data: { name: DATA },
        ...panelFacet(ctx, {
          width: 340,
          height: 200,
          layer: [
            // y = x: where the measured speedup would equal the theoretical one.
            { mark: { type: "rule", color: "#888", strokeDash: [4, 3] }, encoding: { x: { aggregate: "min", field: "th", type: "quantitative" }, y: { aggregate: "min", field: "th", type: "quantitative" }, x2: { aggregate: "max", field: "th" }, y2: { aggregate: "max", field: "th" } } },
            { mark: { type: "rule", strokeWidth: 1.2, opacity: 0.55 }, encoding: { x, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" }, color: methodColor(ctx) } },
            {
              mark: { type: "point", filled: true, size: 46 },
              encoding: {
                x, y, color: methodColor(ctx),
                shape: { field: "b", type: "nominal", title: "timed at" },
                tooltip: [
                  { field: "m", title: "method" }, { field: "t", title: "target" }, { field: "b", title: "batch" }, { field: "n", title: "seeds" },
                  { field: "th", title: "theoretical", format: ".2f" }, { field: "ms", title: "measured (mean)", format: ".2f" },
                  { field: "lo", title: "measured min", format: ".2f" }, { field: "hi", title: "measured max", format: ".2f" },
                  { field: "dn", title: "dense ms (median)", format: ".3f" }, { field: "di", title: "dense IQR ms", format: ".3f" },
                  { field: "cm", title: "compacted ms (median)", format: ".3f" }, { field: "ci", title: "compacted IQR ms", format: ".3f" },
                  { field: "keys", title: "run keys" },
                ],
              },
            },
          ],
        }, { independentX: true, independentY: true }),
        config: CHART_CONFIG,
      }, false);
      html +=
        note("Structured runs: the dense and the compacted model (the architecture rebuilt with the kept widths) timed on the same backend and threads, at batch 1 and at the fine-tuning batch. " +
          "Latency: each run's median of repeated timings, with its interquartile range (IQR), mean over seeds. Measured speedup: dense / compacted latency, mean over seeds with [min–max] over seeds; " +
          "theoretical speedup: dense MACs / compacted MACs. In the chart, points on the dashed line measure what the MACs promise; vertical bars: min–max over seeds.") +
        `<div class="chart" id="chart-speedup"></div>` +
        `<div class="scroll"><table class="data speedup"><thead>${head1}${head2}</thead><tbody>${body}</tbody></table></div>`;
      if (unstructured.length > 0) html += unstructuredNote(unstructured);
      return { html, charts: [{ id: "chart-speedup", spec, datasets: [DATA] }], data: { [DATA]: packRows(rows) } };
    }
    return { html: unstructuredNote(unstructured) };
  },
};

/** Unstructured runs: what their measured speedup is, and why it cannot be more than ≈ 1. */
function unstructuredNote(groups: readonly GroupAggregate[]): string {
  const measured = groups.map((g) => g.metrics.measured_speedup!);
  const lo = Math.min(...measured.map((s) => s.min));
  const hi = Math.max(...measured.map((s) => s.max));
  const theoretical = groups.map((g) => mean(g.metrics.theoretical_speedup)).filter((v): v is number => v !== null);
  const runs = groups.reduce((n, g) => n + g.seeds.length, 0);
  return `<p class="unstructured"><b>Unstructured runs (${runs} run${runs === 1 ? "" : "s"} in ${groups.length} group${groups.length === 1 ? "" : "s"}): dense kernels gain nothing from zeros.</b> ` +
    `Their latency was timed on the masked model, which keeps the dense shape, with dense kernels (they record no compacted latency form and no sparse-kernel timing), ` +
    `so their measured speedup is ≈ 1 by construction: ${lo.toFixed(2)}× to ${hi.toFixed(2)}× here` +
    (theoretical.length > 0 ? `, while their theoretical speedup (dense / effective MACs) reaches ${Math.max(...theoretical).toFixed(2)}×` : "") +
    `. Only removing whole channels (structured methods, above) or a sparse kernel could turn their zeros into time.</p>`;
}
