/**
 * Winner at each target: for every dataset · arch (a leaderboard per pair, never one global ranking), each target's
 * best method by top-1, its margin over the runner-up with the interval of that difference, and whether it is real
 * (significant against every other method there) or a tie, listing the tied methods. The verdicts come from
 * reports/winners.ts, like `bench compare` and the results table's bold.
 */
import { escapeHtml, formatMetric, formatSpread } from "../format.js";
import type { Stat } from "../stats.js";
import { winnersAt, type MethodComparison, type TargetWinner } from "../winners.js";
import { note } from "./common.js";
import type { Section } from "./types.js";

const METRIC = "top1_after";

function pp(v: number): string {
  const r = Number((v * 100).toFixed(2));
  return `${r > 0 ? "+" : r < 0 ? "−" : "±"}${Math.abs(r).toFixed(2)}`;
}

function meanStd(s: Stat): string {
  return s.std === null ? formatMetric(METRIC, s.mean) : `${formatMetric(METRIC, s.mean)} <span class="pm">± ${formatSpread(METRIC, s.std)}</span>`;
}

/** p in the precision a reader needs: two significant digits, "< 0.0001" below that. */
export function formatP(p: number): string {
  return p < 1e-4 ? "< 0.0001" : p >= 0.1 ? p.toFixed(2) : p.toPrecision(2);
}

/** "≈ 7 seeds" / "> 1,000 seeds" / "never (equal means)" / "–". */
export function formatSeedsNeeded(c: MethodComparison | null): string {
  if (!c || c.seedsNeeded === null) return "–";
  if (!Number.isFinite(c.seedsNeeded)) return "never (equal means)";
  if (c.seedsNeeded > 1000) return "> 1,000";
  return String(c.seedsNeeded);
}

function testCell(c: MethodComparison | null): string {
  if (!c) return "–";
  const name = c.test === "paired-t" ? `paired t, n = ${c.pairedSeeds.length}` : c.test === "two-proportion" ? `two-proportion, ${c.testImages?.toLocaleString("en-US")} images` : "none";
  return `<span title="${escapeHtml(c.method)}">${name}${c.p !== null ? `, p = ${formatP(c.p)}` : ""}</span>`;
}

function row(w: TargetWinner): string {
  const best = w.ranking[0];
  const runner = w.ranking[1];
  const c = w.vsRunnerUp;
  const margin = c && runner ? `${pp(best.stat.mean - runner.stat.mean)} pp${c.ci ? ` <span class="muted">[${pp(c.ci[0])}, ${pp(c.ci[1])}]</span>` : ""}` : "–";
  let verdict: string;
  if (!runner) verdict = `<span class="muted">only method run</span>`;
  else if (w.significant) verdict = `<b>${escapeHtml(w.best)}</b> wins`;
  else verdict = `tie: ${w.tied.map(escapeHtml).join(", ")}`;
  // The page's filter bar: this row belongs to a dataset, an architecture and a target (it compares every method).
  return `<tr class="${w.significant ? "win" : runner ? "tie" : ""}" data-ds="${escapeHtml(w.dataset)}" data-a="${escapeHtml(w.arch)}" data-t="${escapeHtml(w.target)}"><td>${escapeHtml(w.target)}</td><td>${w.significant ? `<b>${escapeHtml(w.best)}</b>` : escapeHtml(w.best)}</td><td class="num">${meanStd(
    best.stat,
  )}</td><td>${runner ? escapeHtml(runner.method) : "–"}</td><td class="num">${margin}</td><td>${verdict}</td><td>${testCell(c)}</td><td class="num">${formatSeedsNeeded(c)}</td></tr>`;
}

export const winnersSection: Section = {
  id: "winners",
  title: "Winner at each target",
  render(ctx) {
    const winners = winnersAt(ctx.data.runs, METRIC);
    if (winners.length === 0) return { html: note("No finished runs yet.") };
    const oneSeed = winners.every((w) => w.seeds <= 1);
    let html = note(
      "Per dataset · architecture and target: the method with the best mean top-1, its margin over the runner-up (mean difference in points, " +
        "with its 95% interval), and whether the win is real — significant against <i>every</i> other method at that target — or a tie " +
        "(every method not significantly worse than the best is listed). Methods are compared on the seeds both ran on the same dense model " +
        "(paired t-test). <i>Seeds to separate</i>: how many seeds the paired test would need to call the best and runner-up different if their " +
        "per-seed difference kept its mean and std (smallest n with |mean|·√n / std ≥ t<sub>0.975, n−1</sub>). " +
        "Compare any two methods with <code>bench compare A B</code>.",
    );
    if (oneSeed) {
      html += note(
        "<b>One seed per method:</b> no seed-to-seed variation is measured, so no paired test. The comparison falls back to the binomial noise of " +
          "the test set: a two-proportion (Agresti–Caffo) test of the two runs' top-1 on their test images. The two runs share the test images, " +
          "which makes this test conservative (it calls more ties than a paired per-image test would). Run more seeds to compare methods across training noise.",
      );
    }
    for (const panel of [...new Set(winners.map((w) => w.panel))]) {
      const rows = winners.filter((w) => w.panel === panel);
      const head =
        `<tr><th>target</th><th>best</th><th class="num">top-1</th><th>runner-up</th><th class="num" title="best − runner-up (mean top-1), 95% interval">margin</th>` +
        `<th>verdict</th><th>test</th><th class="num" title="seeds the paired test would need at this mean difference and std">seeds to separate</th></tr>`;
      html += `<div class="panel" data-ds="${escapeHtml(rows[0].dataset)}" data-a="${escapeHtml(rows[0].arch)}"><h3>${escapeHtml(panel)}</h3><div class="scroll"><table class="data winners"><thead>${head}</thead><tbody>${rows.map(row).join("")}</tbody></table></div></div>`;
    }
    return { html };
  },
};
