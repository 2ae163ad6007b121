/**
 * Results table (plain HTML): one block per dataset · arch, one row per method x target with mean ± std over seeds,
 * 95% CI (Student t over seeds; with one seed the Wilson interval of the run's test accuracy), delta vs dense, size and
 * speed metrics. A value is bold only when its method wins its target outside the noise (reports/winners.ts: the same
 * verdict as the winner table and `bench compare`); a tie bolds nothing. Published
 * reference numbers sit under the row they correspond to, converted to the harness's units, with the difference.
 */
import type { ReferenceRow } from "../../src/core/types.js";
import { METRICS } from "../../src/metrics/names.js";
import {
  isDenseReference,
  panelLabel,
  referenceMatches,
  referenceSameTarget,
  referenceValues,
  type Baseline,
  type GroupAggregate,
  type ReferenceValue,
  type Stat,
} from "../aggregate.js";
import { targetLabel } from "../../src/grid/label.js";
import { escapeHtml, formatMetric, formatSpread } from "../format.js";
import type { RunRow } from "../model.js";
import { runWilson, significantWinnerIds, testImagesOf } from "../winners.js";
import { groupAttrs, note } from "./common.js";
import type { Section } from "./types.js";

/** Above this many groups, each panel's table starts folded. */
const FOLD_ABOVE = 150;

interface Col {
  header: string;
  title: string;
  /** Metric shown (and looked up in reference rows); null for derived columns. */
  metric: string | null;
  better: "higher" | "lower" | null;
  /** The metric whose winner at a target is bold in this column (null: never bold). */
  boldBy: string | null;
  value(g: GroupAggregate): number | null;
  html(g: GroupAggregate, runs: ReadonlyMap<string, RunRow>): string;
}

function pm(name: string, s: Stat | undefined): string {
  if (!s) return "–";
  return s.std === null ? formatMetric(name, s.mean) : `${formatMetric(name, s.mean)} <span class="pm">± ${formatSpread(name, s.std)}</span>`;
}

function metricCol(header: string, metric: string, withStd = false): Col {
  const hib = METRICS.get(metric)?.higherIsBetter ?? null;
  return {
    header,
    title: `${metric}: ${METRICS.get(metric)?.definition ?? ""}${withStd ? " Mean ± sample std over seeds." : " Mean over seeds."}`,
    metric,
    better: hib === null ? null : hib ? "higher" : "lower",
    boldBy: hib === null ? null : metric,
    value: (g) => g.metrics[metric]?.mean ?? null,
    html: (g) => (withStd ? pm(metric, g.metrics[metric]) : formatMetric(metric, g.metrics[metric]?.mean)),
  };
}

const COLS: Col[] = [
  metricCol("top-1", "top1_after", true),
  {
    header: "95% CI",
    title:
      "95% confidence interval of top-1: over seeds, of the mean (Student t, n − 1 degrees of freedom; not clipped to [0, 100]%); " +
      "with one seed, the Wilson interval of that run's accuracy on its test images (marked W), the only noise one run shows.",
    metric: null,
    better: null,
    boldBy: null,
    value: () => null,
    html: (g, runs) => ciCell(g.metrics.top1_after, g.runKeys.map((k) => runs.get(k)!).filter(Boolean), "top1_after"),
  },
  {
    header: "Δ vs dense",
    title: "top1_after − top1_dense of the same dataset × arch (dense averaged over seeds), in percentage points.",
    metric: null,
    better: "higher",
    // The dense baseline is shared within a panel, so Δ ranks methods exactly as top-1 does.
    boldBy: "top1_after",
    value: (g) => g.deltaTop1?.mean ?? null,
    html: (g) => (g.deltaTop1 ? `${g.deltaTop1.mean >= 0 ? "+" : "−"}${Math.abs(g.deltaTop1.mean * 100).toFixed(2)} pp` : "–"),
  },
  metricCol("params ≠ 0", "params_nonzero"),
  metricCol("MACs eff.", "macs_effective"),
  metricCol("compression", "compression_ratio"),
  metricCol("theor. speedup", "theoretical_speedup"),
  metricCol("meas. speedup", "measured_speedup"),
  metricCol("latency", "latency_pruned_ms"),
];

/**
 * The 95% CI cell of an accuracy: Student t over seeds when there are two or more, else the Wilson interval of the
 * single run on its test images (W), else "–".
 */
function ciCell(s: Stat | undefined, runs: readonly RunRow[], metric: string): string {
  if (s?.ci95) return `[${(s.ci95[0] * 100).toFixed(2)}, ${(s.ci95[1] * 100).toFixed(2)}]%`;
  const one = runs.length === 1 ? runs[0] : null;
  const w = one ? runWilson(one, metric) : null;
  if (!one || !w) return `<span class="muted">–</span>`;
  const n = testImagesOf(one)!;
  return `<span title="Wilson 95% interval of one run's accuracy on ${n.toLocaleString("en-US")} test images">[${(w[0] * 100).toFixed(2)}, ${(w[1] * 100).toFixed(2)}]% W</span>`;
}

function refDelta(metric: string, ours: number | null, rv: ReferenceValue): string {
  if (rv.normalized === null) return `not comparable (unit “${escapeHtml(rv.unit)}” is not convertible to ${escapeHtml(METRICS.get(metric)?.unit ?? "?")})`;
  if (ours === null) return "";
  if (METRICS.get(metric)?.unit === "fraction") {
    const d = (ours - rv.normalized) * 100;
    return `ours − paper <b>${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(2)} pp</b>`;
  }
  return rv.normalized !== 0 ? `ours / paper <b>${(ours / rv.normalized).toFixed(2)}</b>` : "";
}

/** Our value of a metric for the comparison with a published value (null: nothing to compare with). */
type Ours = (metric: string) => number | null;

function oursOfGroup(g: GroupAggregate | null): Ours {
  return (metric) => g?.metrics[metric]?.mean ?? null;
}

/** The dense model's values, for published dense numbers (top-1 of "the model after" = the dense model). */
function oursOfBaseline(b: Baseline): Ours {
  return (metric) => {
    switch (metric) {
      case "top1_after":
      case "top1_dense":
        return b.top1.mean;
      case "top5_after":
      case "top5_dense":
        return b.top5?.mean ?? null;
      case "compression_ratio":
      case "theoretical_speedup":
      case "measured_speedup":
        return 1;
      case "params_total":
      case "params_nonzero":
        return b.paramsTotal;
      case "macs_dense":
      case "macs_effective":
        return b.macsDense;
      case "latency_dense_ms":
      case "latency_pruned_ms":
        return b.latencyDenseMs?.mean ?? null;
      default:
        return null;
    }
  };
}

/** One published value: name, value in our units, as published (with unit and conversion), difference to ours. */
function refItem(ours: Ours, rv: ReferenceValue): string {
  const shown = rv.normalized !== null && METRICS.has(rv.metric) ? formatMetric(rv.metric, rv.normalized) : `${rv.value} ${escapeHtml(rv.unit)}`;
  const published = `published ${rv.value} ${escapeHtml(rv.unit)}${rv.conversion ? `, ${escapeHtml(rv.conversion)}` : ""}`;
  const o = ours(rv.metric);
  const d = METRICS.has(rv.metric) ? refDelta(rv.metric, o, rv) : "not a harness metric";
  const oursTxt = o !== null ? `; ours ${formatMetric(rv.metric, o)}` : "";
  return `<span class="ritem"><code>${escapeHtml(rv.metric)}</code> ${shown} <span class="muted">(${published}${oursTxt})</span>${d ? ` ${d}` : ""}</span>`;
}

function refRow(ref: ReferenceRow, ours: Ours, colspan: number, prefix = "", comparedWith = ""): string {
  const items = referenceValues(ref).map((rv) => refItem(ours, rv)).join("");
  return `<tr class="ref"><td colspan="${colspan}"><div>↳ ${prefix}<b>${escapeHtml(ref.paper)}</b> <span class="muted">${escapeHtml(ref.source)}</span>${
    ref.note ? ` — <i>${escapeHtml(ref.note)}</i>` : ""
  }${comparedWith ? ` <span class="muted">· ${comparedWith}</span>` : ""}</div><div class="ritems">${items}</div></td></tr>`;
}

export const resultsSection: Section = {
  id: "results",
  title: "Results table",
  render(ctx) {
    if (ctx.groups.length === 0) return { html: note("No finished runs yet.") };
    const usedRefs = new Set<ReferenceRow>();
    const runsByKey = new Map(ctx.data.runs.map((r) => [r.key, r] as const));
    // One verdict per metric, shared with the winner table and `bench compare`.
    const boldIds = new Map<string, Set<string>>();
    for (const c of COLS) if (c.boldBy && !boldIds.has(c.boldBy)) boldIds.set(c.boldBy, significantWinnerIds(ctx.data.runs, c.boldBy));
    const oneSeed = ctx.groups.every((g) => g.seeds.length <= 1);
    let html = note(
      "Mean ± sample std over seeds (n = seeds). <b>Bold</b>: the method that wins its target (same dataset · arch and target) outside the noise — " +
        "a paired t-test over seeds, or with one seed a two-proportion test of top-1 on the test images; measured timings need two or more seeds; " +
        "counts (params, MACs, compression) must differ by more than 1 %. A tie bolds nothing (see the winner table). " +
        "Published numbers (↳ rows) are converted to this harness's units where the unit allows; the difference is stated as ours − paper (percentage points) or ours / paper.",
    );
    if (oneSeed) {
      html += note(
        "<b>One seed per group:</b> seed-to-seed variation is not measured. The CI column falls back to the Wilson (binomial) interval of each run's " +
          "top-1 on its test images (W); it covers test-set sampling only, not the spread a different seed would give.",
      );
    }
    const fold = ctx.groups.length > FOLD_ABOVE;
    if (fold) html += note(`${ctx.groups.length} groups: click a dataset · architecture to unfold its table.`);
    for (const panel of ctx.panels) {
      const groups = ctx.groups.filter((g) => g.panel === panel);
      if (groups.length === 0) continue;
      const base = ctx.baselines.get(panel);
      const head = `<tr><th>method</th><th>target</th><th class="num" title="seeds">n</th>${COLS.map((c) => `<th class="num" title="${escapeHtml(c.title)}">${escapeHtml(c.header)}</th>`).join("")}</tr>`;
      let body = "";
      if (base) {
        const top1 = base.top1;
        const denseRuns = groups.length > 0 ? groups[0].runKeys.map((k) => runsByKey.get(k)!).filter(Boolean) : [];
        body += `<tr class="dense" data-ds="${escapeHtml(base.dataset)}" data-a="${escapeHtml(base.arch)}"><td>dense</td><td>–</td><td class="num">${top1.n}</td><td class="num">${pm("top1_dense", top1)}</td><td class="num">${ciCell(
          top1,
          top1.n === 1 ? denseRuns.slice(0, 1) : [],
          "top1_dense",
        )}</td><td class="num">0</td><td class="num">${formatMetric("params_total", base.paramsTotal)}</td><td class="num">${formatMetric("macs_dense", base.macsDense)}</td><td class="num">1.00×</td><td class="num">1.00×</td><td class="num">1.00×</td><td class="num">${formatMetric(
          "latency_dense_ms",
          base.latencyDenseMs?.mean,
        )}</td></tr>`;
        for (const ref of ctx.data.references) {
          if (!isDenseReference(ref) || panelLabel(ref.dataset, ref.arch).toLowerCase() !== panel.toLowerCase()) continue;
          usedRefs.add(ref);
          body += refRow(ref, oursOfBaseline(base), 3 + COLS.length, "", "compared with our dense model");
        }
      }
      // Published rows whose method we did not run: shown after the last of our groups at the same target, compared
      // with our best group (top-1) at that target.
      const byTargetOnly = new Map<GroupAggregate, ReferenceRow[]>();
      for (const ref of ctx.data.references) {
        if (usedRefs.has(ref) || isDenseReference(ref)) continue;
        const same = groups.filter((g) => referenceSameTarget(ref, g));
        if (same.length === 0 || same.some((g) => referenceMatches(ref, g))) continue;
        const last = same[same.length - 1];
        const l = byTargetOnly.get(last) ?? [];
        l.push(ref);
        byTargetOnly.set(last, l);
      }
      for (const g of groups) {
        const cells = COLS.map((c) => {
          const isBest = c.boldBy !== null && boldIds.get(c.boldBy)!.has(g.id);
          return `<td class="num${isBest ? " best" : ""}">${c.html(g, runsByKey)}</td>`;
        }).join("");
        body += `<tr${groupAttrs(g)}><td>${escapeHtml(g.methodLabel)}</td><td>${escapeHtml(g.target)}</td><td class="num">${g.seeds.length}</td>${cells}</tr>`;
        for (const ref of ctx.data.references) {
          if (!isDenseReference(ref) && referenceMatches(ref, g)) {
            usedRefs.add(ref);
            body += refRow(ref, oursOfGroup(g), 3 + COLS.length);
          }
        }
        for (const ref of byTargetOnly.get(g) ?? []) {
          const same = groups.filter((x) => referenceSameTarget(ref, x));
          let bestG = same[0];
          for (const x of same) if ((x.metrics.top1_after?.mean ?? -Infinity) > (bestG.metrics.top1_after?.mean ?? -Infinity)) bestG = x;
          usedRefs.add(ref);
          body += refRow(
            ref,
            oursOfGroup(bestG),
            3 + COLS.length,
            `<i>${escapeHtml(ref.method)}</i> · `,
            `method not run here; compared with our best top-1 at ${escapeHtml(g.target)}: <b>${escapeHtml(bestG.methodLabel)}</b>`,
          );
        }
      }
      const table = `<div class="scroll"><table class="data results sortable"><thead>${head}</thead><tbody>${body}</tbody></table></div>`;
      // Large result sets: one folded block per panel so the page stays navigable.
      const where = `data-ds="${escapeHtml(groups[0].dataset)}" data-a="${escapeHtml(groups[0].arch)}"`;
      html += fold
        ? `<details class="panel" ${where}><summary><b>${escapeHtml(panel)}</b> <span class="muted">(${groups.length} groups)</span></summary>${table}</details>`
        : `<div class="panel" ${where}><h3>${escapeHtml(panel)}</h3>${table}</div>`;
    }
    const unmatched = ctx.data.references.filter((r) => !usedRefs.has(r));
    if (unmatched.length > 0) {
      const body = unmatched
        .map((r) => refRow(r, oursOfGroup(null), 1, `${escapeHtml(r.dataset)} · ${escapeHtml(r.arch)} · ${escapeHtml(r.method)} · ${escapeHtml(targetLabel(r.target))}: `))
        .join("");
      html += `<h3>Published numbers without a reproduced match</h3>${note("No reproduced group has the same dataset, architecture and target.")}<div class="scroll"><table class="data results"><tbody>${body}</tbody></table></div>`;
    }
    return { html };
  },
};
