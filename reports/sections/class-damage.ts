/**
 * Per-class damage (Hooker et al. 2019): per (dataset · arch, method, target), the classes whose top-1 fell most
 * from the dense model (mean over seeds), and a chart of each class's change against the group's overall change:
 * points below the diagonal lost more than the model as a whole. Definitions in reports/class-damage.ts.
 */
import { targetOrder } from "../aggregate.js";
import { classDamage, type ClassDamage, type GroupDamage } from "../class-damage.js";
import { escapeHtml } from "../format.js";
import { CHART_CONFIG, defaultTarget, note, packRows, panelFacet, pointColor, seedList, targetsOf, withFilter } from "./common.js";
import type { Section } from "./types.js";

const DATA = "class-damage";
/** Classes named per group in the table. */
const WORST = 3;
/** Above this many groups the panels' tables start folded. */
const FOLD_ABOVE = 60;

/** A fraction in percentage points to 0.01 pp: finer than one image of a 10,000-image test split, and short in the page. */
const pp2 = (x: number) => (Number.isFinite(x) ? Math.round(x * 10_000) / 100 : null);
const pp = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x * 100).toFixed(1)}`;

function classCell(c: ClassDamage): string {
  const name = c.name ? escapeHtml(c.name) : `class ${c.label}`;
  const mark = c.disproportionate ? `<b title="95 % CI of the excess over seeds below 0: disproportionately hurt">*</b>` : "";
  return `<span class="cls" title="class ${c.label}; Δ ${pp(c.delta.mean)} pp, excess over the overall Δ ${pp(c.excess.mean)} pp${c.excess.ci95 ? ` (95 % CI ${pp(c.excess.ci95[0])} … ${pp(c.excess.ci95[1])})` : " (one seed: no CI)"}">${name} ${pp(c.delta.mean)}${mark} <span class="muted">(${pp(c.excess.mean)})</span></span>`;
}

export const classDamageSection: Section = {
  id: "class-damage",
  title: "Per-class damage",
  render(ctx) {
    const groups = classDamage(ctx.data.runs, ctx.data.classes ?? []);
    // The filter bar's seed test reads the seeds a group averages (its runs' seeds).
    const seedOfRun = new Map(ctx.data.runs.map((r) => [r.key, r.seed]));
    const seedsOf = (g: GroupDamage) => seedList([...new Set(g.runKeys.map((k) => seedOfRun.get(k)!))].sort((p, q) => p - q));
    if (groups.length === 0) return { html: note("No run has per-class results (stored from this version on: rerun or extend the sweep to get them).") };
    const byPanel = new Map<string, GroupDamage[]>();
    for (const g of groups) {
      const list = byPanel.get(g.panel);
      if (list) list.push(g);
      else byPanel.set(g.panel, [g]);
    }
    const fold = groups.length > FOLD_ABOVE;
    const tables = ctx.panels.filter((p) => byPanel.has(p)).map((panel) => {
      const list = byPanel.get(panel)!.sort((a, b) => a.methodLabel.localeCompare(b.methodLabel) || targetOrder(a.targetKind, a.targetValue) - targetOrder(b.targetKind, b.targetValue));
      const rows = list.map((g) => `<tr data-ds="${escapeHtml(g.dataset)}" data-a="${escapeHtml(g.arch)}" data-m="${escapeHtml(g.methodLabel)}" data-t="${escapeHtml(g.target)}" data-ss="${seedsOf(g)}" title="runs: ${escapeHtml(g.runKeys.join(" "))}"><td>${escapeHtml(g.methodLabel)}</td><td>${escapeHtml(g.target)}</td><td class="num">${g.runKeys.length}</td>` +
        `<td class="num">${pp(g.overall.mean)}</td><td>${g.classes.slice(0, WORST).map(classCell).join(", ")}</td>` +
        `<td class="num">${g.classes.filter((c) => c.disproportionate).length}</td></tr>`).join("");
      const table = `<div class="scroll"><table class="data"><thead><tr><th>method</th><th>target</th><th class="num">seeds</th><th class="num">overall Δ (pp)</th>` +
        `<th>most damaged classes: Δ (excess over overall)</th><th class="num">classes hurt disproportionately</th></tr></thead><tbody>${rows}</tbody></table></div>`;
      return `<details${fold ? "" : " open"}><summary><b>${escapeHtml(panel)}</b> (${list.length} groups)</summary>${table}</details>`;
    }).join("");
    const points: Record<string, unknown>[] = [];
    const span = new Map<string, [number, number]>();
    const panelOf = new Map(groups.map((g) => [g.panel, { ds: g.dataset, a: g.arch }]));
    for (const g of groups) {
      for (const c of g.classes) {
        const x = pp2(g.overall.mean)!;
        const y = pp2(c.delta.mean)!;
        points.push({
          ds: g.dataset, a: g.arch, m: g.methodLabel, t: g.target, ss: seedsOf(g), p: g.panel, c: c.name || `class ${c.label}`, n: g.runKeys.length,
          ox: x, cy: y, e: pp2(c.excess.mean), b: c.deltaBefore ? pp2(c.deltaBefore.mean) : null, hurt: c.disproportionate ? "yes" : "no",
        });
        const s = span.get(g.panel);
        span.set(g.panel, s ? [Math.min(s[0], x, y), Math.max(s[1], x, y)] : [Math.min(x, y), Math.max(x, y)]);
      }
    }
    // Context rows (x): the filter bar keeps each panel's diagonal whatever method, target or seed it shows.
    const diagonal = [...span].flatMap(([p, [lo, hi]]) => [{ p, ...panelOf.get(p), x: 1, ox: lo, cy: lo }, { p, ...panelOf.get(p), x: 1, ox: hi, cy: hi }]);
    // One target at a time (chosen in the chart): every class of every group at once is thousands of points.
    const present = new Set(groups.map((g) => g.target));
    const targets = targetsOf(ctx.groups).filter((t) => present.has(t.label)).map((t) => t.label);
    const def = defaultTarget(ctx.groups.filter((g) => present.has(g.target))) ?? targets[0];
    const spec = withFilter({
      data: { name: DATA },
      params: [{ name: "class_target", value: def, bind: { input: "select", options: targets, name: "target " } }],
      transform: [{ filter: "datum.c == null || datum.t == class_target" }],
      ...panelFacet(ctx, {
        width: 300,
        height: 240,
        layer: [
          { mark: { type: "line", color: "#888", strokeDash: [4, 3] }, transform: [{ filter: "datum.c == null" }], encoding: { x: { field: "ox", type: "quantitative" }, y: { field: "cy", type: "quantitative" } } },
          {
            mark: { type: "point", filled: true, opacity: 0.7 },
            transform: [{ filter: "datum.c != null" }],
            encoding: {
              x: { field: "ox", type: "quantitative", title: "overall Δ top-1 vs dense (pp)" },
              y: { field: "cy", type: "quantitative", title: "class Δ top-1 vs dense (pp)" },
              color: pointColor(ctx),
              shape: { field: "hurt", type: "nominal", title: "disproportionate", scale: { domain: ["no", "yes"], range: ["circle", "diamond"] } },
              tooltip: [
                { field: "c", title: "class" }, { field: "m", title: "method" }, { field: "t", title: "target" }, { field: "n", title: "seeds" },
                { field: "cy", title: "class Δ (pp)", format: "+.2f" }, { field: "ox", title: "overall Δ (pp)", format: "+.2f" },
                { field: "e", title: "excess (pp)", format: "+.2f" }, { field: "b", title: "class Δ before fine-tuning (pp)", format: "+.2f" },
              ],
            },
          },
        ],
      }, { independentY: true, independentX: true }),
      config: CHART_CONFIG,
    }, false);
    return {
      html: note(`Class Δ: a class's top-1 after fine-tuning minus the dense model's, in the same run (percentage points, mean over seeds); overall Δ the same for all classes together; excess = class Δ − overall Δ. ` +
        `<b>*</b> / diamonds: disproportionately hurt (after Hooker et al. 2019): the 95 % Student-t interval of the excess over seeds lies below 0 (never with one seed). ` +
        `Below the dashed diagonal a class lost more than the model did.`) + tables + `<div class="chart" id="chart-class-damage"></div>`,
      charts: [{ id: "chart-class-damage", spec, datasets: [DATA] }],
      data: { [DATA]: packRows([...points, ...diagonal]) },
    };
  },
};
