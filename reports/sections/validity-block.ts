/**
 * The overview's validity block: each check of reports/validity.ts as pass / fail / n/a with its rule and the run keys
 * that fail it, and requested vs achieved targets drawn per (panel, method, target) (achieved on the y axis, the
 * request on x, y = x dashed), so a method that misses its target shows at once.
 */
import { groupId, panelLabel } from "../aggregate.js";
import { escapeHtml } from "../format.js";
import { achievedTarget, checkStatus, validityChecks } from "../validity.js";
import { CHART_CONFIG, packRows, pointColor, r5, seedList, withFilter } from "./common.js";
import { targetLabel } from "../../src/grid/label.js";
import type { ReportContext, SectionOutput } from "./types.js";

const DATA = "overview-targets";
/** Failing runs listed per check; the rest are counted. */
const LIST_FAILURES = 25;

export function validityBlock(ctx: ReportContext): SectionOutput {
  const checks = validityChecks(ctx.data.runs);
  const rows = checks.map((c) => {
    const status = checkStatus(c);
    const shown = c.failures.slice(0, LIST_FAILURES)
      .map((f) => `<li><code class="runkey">${escapeHtml(f.runKey)}</code> ${escapeHtml(f.detail)}</li>`).join("");
    const more = c.failures.length > LIST_FAILURES ? `<li class="muted">… and ${c.failures.length - LIST_FAILURES} more</li>` : "";
    const failing = c.failures.length === 0 ? "" : `<details><summary>${c.failures.length} failing run(s)</summary><ul class="failing">${shown}${more}</ul></details>`;
    return `<tr data-check="${c.id}" data-status="${status}"><td><span class="badge ${status === "fail" ? "st-failed" : status === "pass" ? "st-done" : "st-pending"}">${status}</span></td>` +
      `<td>${escapeHtml(c.title)}</td><td class="num">${c.checked}</td><td class="note">${escapeHtml(c.rule)}</td><td>${failing}</td></tr>`;
  }).join("");
  // One point per (panel, method, target) with the range over its runs: per run, a 10,000-run report carried 0.6 MB
  // here; the runs that miss are named in the table above.
  const byGroup = new Map<string, { p: string; ds: string; a: string; m: string; t: string; kind: string; req: number; lo: number; hi: number; sum: number; n: number; k: string; seeds: Set<number> }>();
  for (const r of ctx.data.runs) {
    if (r.status !== "done") continue;
    const achieved = achievedTarget(r);
    if (achieved === null) continue;
    const id = groupId(r.dataset, r.arch, r.methodLabel, r.targetKind, r.targetValue);
    const g = byGroup.get(id);
    if (!g) {
      byGroup.set(id, {
        p: panelLabel(r.dataset, r.arch), ds: r.dataset, a: r.arch, m: r.methodLabel, t: targetLabel({ kind: r.targetKind, value: r.targetValue }),
        kind: r.targetKind, req: r.targetValue, lo: achieved, hi: achieved, sum: achieved, n: 1, k: r.key, seeds: new Set([r.seed]),
      });
    } else {
      g.seeds.add(r.seed);
      g.lo = Math.min(g.lo, achieved);
      g.hi = Math.max(g.hi, achieved);
      g.sum += achieved;
      g.n++;
    }
  }
  const points: Record<string, unknown>[] = [...byGroup.values()].map((g) => ({
    k: g.k, p: g.p, ds: g.ds, a: g.a, m: g.m, t: g.t, ss: seedList([...g.seeds].sort((x, y) => x - y)),
    kind: g.kind, req: r5(g.req), ach: r5(g.sum / g.n), lo: r5(g.lo), hi: r5(g.hi), n: g.n,
  }));
  // The y = x diagonal of each facet, as two extra rows without a run key.
  const span = new Map<string, [number, number]>();
  for (const q of points) {
    const lo = Math.min(q.req as number, q.ach as number);
    const hi = Math.max(q.req as number, q.ach as number);
    const s = span.get(q.kind as string);
    span.set(q.kind as string, s ? [Math.min(s[0], lo), Math.max(s[1], hi)] : [lo, hi]);
  }
  // Context rows (x): the filter bar keeps them whatever method or target it shows.
  const diagonal = [...span].flatMap(([kind, [lo, hi]]) => [{ kind, req: lo, ach: lo, x: 1 }, { kind, req: hi, ach: hi, x: 1 }]);
  const failed = checks.filter((c) => checkStatus(c) === "fail").length;
  const html = `<h3 id="validity">Validity checks ${failed === 0 ? `<span class="badge st-done">all pass</span>` : `<span class="badge st-failed">${failed} failing</span>`}</h3>
<div class="scroll"><table class="data validity"><thead><tr><th>result</th><th>check</th><th class="num">runs checked</th><th>rule</th><th>runs that fail</th></tr></thead><tbody>${rows}</tbody></table></div>` +
    (points.length > 0 ? `<div class="chart" id="chart-targets"></div>` : "");
  if (points.length === 0) return { html };
  const spec = withFilter({
    data: { name: DATA },
    facet: { field: "kind", type: "nominal", title: "target kind" },
    resolve: { scale: { x: "independent", y: "independent" } },
    spec: {
      width: 220,
      height: 180,
      layer: [
        {
          mark: { type: "line", color: "#888", strokeDash: [4, 3] },
          transform: [{ filter: "datum.k == null" }],
          encoding: { x: { field: "req", type: "quantitative" }, y: { field: "ach", type: "quantitative" } },
        },
        {
          mark: { type: "point", filled: true, opacity: 0.75 },
          transform: [{ filter: "datum.k != null" }],
          encoding: {
            x: { field: "req", type: "quantitative", title: "requested", scale: { zero: false } },
            y: { field: "ach", type: "quantitative", title: "achieved (mean over runs)", scale: { zero: false } },
            color: pointColor(ctx),
            tooltip: [
              { field: "p", title: "panel" }, { field: "m", title: "method" }, { field: "n", title: "runs" },
              { field: "req", title: "requested" }, { field: "ach", title: "achieved (mean)" }, { field: "lo", title: "achieved (min)" },
              { field: "hi", title: "achieved (max)" }, { field: "k", title: "a run key" },
            ],
          },
        },
      ],
    },
    config: CHART_CONFIG,
  }, false);
  return { html, charts: [{ id: "chart-targets", spec, datasets: [DATA] }], data: { [DATA]: packRows([...points, ...diagonal]) } };
}
