/**
 * Comparison of two result sets (e.g. two databases, or before/after a code change), group by group on
 * (dataset, arch, method label, target): both values and the difference for top-1, compression, speedup, latency.
 */
import { pairGroups, type GroupAggregate, type Stat } from "../aggregate.js";
import { escapeHtml, formatMetric } from "../format.js";
import { groupAttrs, note } from "./common.js";
import type { Section } from "./types.js";

interface Cmp {
  header: string;
  metric: string;
  /** Difference B − A formatted. */
  diff(a: number, b: number): string;
}

const sign = (v: number) => (v >= 0 ? "+" : "−");
/** Signed difference with `digits` decimals; the sign follows the rounded value (no "−0.00"). */
function signed(v: number, digits: number): string {
  const r = Number(v.toFixed(digits));
  return `${r === 0 ? "±" : sign(r)}${Math.abs(r).toFixed(digits)}`;
}
const CMPS: Cmp[] = [
  { header: "top-1", metric: "top1_after", diff: (a, b) => `${signed((b - a) * 100, 2)} pp` },
  { header: "compression", metric: "compression_ratio", diff: (a, b) => `${signed(b - a, 2)}×` },
  { header: "theor. speedup", metric: "theoretical_speedup", diff: (a, b) => `${signed(b - a, 2)}×` },
  { header: "meas. speedup", metric: "measured_speedup", diff: (a, b) => `${signed(b - a, 2)}×` },
  { header: "latency", metric: "latency_pruned_ms", diff: (a, b) => (a !== 0 ? `${signed((b / a - 1) * 100, 1)}%` : "–") },
];

/** Whether the two 95% CIs are disjoint (a conservative sign that the difference is not seed noise). */
function disjoint(a: Stat | undefined, b: Stat | undefined): boolean {
  if (!a?.ci95 || !b?.ci95) return false;
  return a.ci95[1] < b.ci95[0] || b.ci95[1] < a.ci95[0];
}

function cells(a: GroupAggregate | null, b: GroupAggregate | null): string {
  return CMPS.map((c) => {
    const sa = a?.metrics[c.metric];
    const sb = b?.metrics[c.metric];
    const d = sa && sb ? c.diff(sa.mean, sb.mean) : "–";
    const top1 = c.metric === "top1_after";
    const mark = top1 && disjoint(sa, sb);
    const dir = top1 && sa && sb ? (sb.mean - sa.mean >= 0.0005 ? " pos" : sb.mean - sa.mean <= -0.0005 ? " neg" : "") : "";
    return `<td class="num sep">${formatMetric(c.metric, sa?.mean)}</td><td class="num">${formatMetric(c.metric, sb?.mean)}</td><td class="num diff${dir}${mark ? " best" : ""}">${d}${mark ? " *" : ""}</td>`;
  }).join("");
}

export const comparisonSection: Section = {
  id: "comparison",
  title: "Comparison",
  render(ctx) {
    if (!ctx.compare) return null;
    const pairs = pairGroups(ctx.groups, ctx.compare.groups);
    const nameA = ctx.data.title || "A";
    const nameB = ctx.compare.data.title || "B";
    const both = pairs.filter((p) => p.a && p.b);
    const onlyA = pairs.filter((p) => p.a && !p.b).length;
    const onlyB = pairs.filter((p) => !p.a && p.b).length;
    let meanDiff = 0;
    let nd = 0;
    for (const p of both) {
      const a = p.a!.metrics.top1_after?.mean;
      const b = p.b!.metrics.top1_after?.mean;
      if (a !== undefined && b !== undefined) {
        meanDiff += b - a;
        nd++;
      }
    }
    const head1 = `<tr><th rowspan="2">method</th><th rowspan="2">target</th><th rowspan="2" class="num" title="seeds in A / in B">n A/B</th>${CMPS.map((c) => `<th colspan="3" class="grp">${escapeHtml(c.header)}</th>`).join("")}</tr>`;
    const head2 = `<tr>${CMPS.map((c) => `<th class="num sep">A</th><th class="num">B</th><th class="num">${c.metric === "latency_pruned_ms" ? "B / A − 1" : "B − A"}</th>`).join("")}</tr>`;
    const panels = [...new Set(pairs.map((p) => (p.a ?? p.b)!.panel))];
    const order = new Map([...ctx.panels, ...ctx.compare.panels].map((p, i) => [p, i] as const));
    panels.sort((x, y) => (order.get(x) ?? 0) - (order.get(y) ?? 0));
    const blocks = panels
      .map((panel) => {
        const body = pairs
          .filter((p) => (p.a ?? p.b)!.panel === panel)
          .map((p) => {
            const g = (p.a ?? p.b)!;
            return `<tr${groupAttrs(g)}${p.a && p.b ? "" : ` class="unmatched"`}><td>${escapeHtml(g.methodLabel)}</td><td>${escapeHtml(g.target)}</td><td class="num">${p.a ? p.a.seeds.length : "–"}/${p.b ? p.b.seeds.length : "–"}</td>${cells(p.a, p.b)}</tr>`;
          })
          .join("");
        return `<h3>${escapeHtml(panel)}</h3><div class="scroll"><table class="data compare"><thead>${head1}${head2}</thead><tbody>${body}</tbody></table></div>`;
      })
      .join("");
    const html = `
<dl class="facts">
  <dt>A</dt><dd>${escapeHtml(nameA)} <span class="muted">(${[...new Set(ctx.data.sweeps.map((s) => s.database))].map(escapeHtml).join(", ") || "–"})</span></dd>
  <dt>B</dt><dd>${escapeHtml(nameB)} <span class="muted">(${[...new Set(ctx.compare.data.sweeps.map((s) => s.database))].map(escapeHtml).join(", ") || "–"})</span></dd>
  <dt>Groups</dt><dd>${both.length} in both, ${onlyA} only in A, ${onlyB} only in B</dd>
  <dt>Mean Δ top-1</dt><dd>${nd ? `${sign(meanDiff)}${Math.abs((meanDiff / nd) * 100).toFixed(2)} pp (B − A, over ${nd} matched groups)` : "–"}</dd>
</dl>
${note("Groups matched on dataset, architecture, method label and target; values are means over seeds. <b>*</b>: the two 95% CIs of top-1 do not overlap. Greyed rows exist on one side only. Top-1 differences of at least 0.05 pp are coloured (green: B higher).")}
${blocks}`;
    return { html };
  },
};
