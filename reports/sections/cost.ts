/**
 * Cost of pruning: top-1 against the total training budget of each (method, target) group, per dataset · arch, with
 * the dense model at its own pretraining budget. Total = the run's own training (train_macs / train_images /
 * train_step_seconds: an iterative run's level counts every round up to it) + the dense pretraining it starts from
 * (dense_pretrain_*, attributed to every run that prunes the trained dense model), so IMP's rounds and a method's
 * shared pretraining both show.
 */
import { summarize, targetOrder } from "../aggregate.js";
import { compactCount, formatDuration } from "../format.js";
import { CHART_CONFIG, groupFields, methodColor, note, packRows, panelFacet, r5, withFilter } from "./common.js";
import type { Section } from "./types.js";
import type { RunRow } from "../model.js";

const DATA = "cost";
const MEASURES = ["training MACs", "images", "seconds"] as const;

/** A run's total training budget in each measure (null where a part is unknown). */
export function totalBudget(r: RunRow): Record<(typeof MEASURES)[number], number | null> {
  const m = r.metrics;
  const add = (a: number | null | undefined, b: number | null | undefined) => (typeof a === "number" && typeof b === "number" && Number.isFinite(a + b) ? a + b : null);
  return {
    "training MACs": add(m.train_macs, m.dense_pretrain_macs),
    images: add(m.train_images, m.dense_pretrain_images),
    seconds: add(m.train_step_seconds, m.dense_pretrain_seconds),
  };
}

export const costSection: Section = {
  id: "cost",
  title: "Cost of pruning",
  render(ctx) {
    const done = new Map(ctx.data.runs.filter((r) => r.status === "done").map((r) => [r.key, r]));
    const budgets = new Map([...done].map(([k, r]) => [k, totalBudget(r)]));
    const rows: Record<string, unknown>[] = [];
    let macsSum = 0;
    let secondsSum = 0;
    for (const g of ctx.groups) {
      const top1 = g.metrics.top1_after;
      if (!top1) continue;
      for (const measure of MEASURES) {
        const s = summarize(g.runKeys.map((k) => budgets.get(k)?.[measure] ?? null));
        if (!s) continue;
        rows.push({
          ...groupFields(g), p: g.panel, to: targetOrder(g.targetKind, g.targetValue), w: measure, b: r5(s.mean), y: r5(top1.mean), n: top1.n,
          own: r5(measure === "training MACs" ? g.metrics.train_macs?.mean : measure === "images" ? g.metrics.train_images?.mean : g.metrics.train_step_seconds?.mean),
          k: g.runKeys[0],
        });
      }
      macsSum += g.runKeys.reduce((n, k) => n + (budgets.get(k)?.["training MACs"] ?? 0), 0);
      secondsSum += g.runKeys.reduce((n, k) => n + (done.get(k)?.metrics.train_step_seconds ?? 0), 0);
    }
    if (rows.length === 0) return { html: note("No run records its training cost (train_macs, dense_pretrain_macs: stored from this version on).") };
    // The dense model: its pretraining budget (the same for every run of a panel that records it) at its top-1.
    for (const [panel, b] of ctx.baselines) {
      const members = ctx.data.runs.filter((r) => r.status === "done" && `${r.dataset} · ${r.arch}` === panel && (r.metrics.dense_pretrain_macs ?? 0) > 0);
      if (members.length === 0) continue;
      const v = { "training MACs": "dense_pretrain_macs", images: "dense_pretrain_images", seconds: "dense_pretrain_seconds" } as const;
      for (const measure of MEASURES) {
        const s = summarize(members.map((r) => r.metrics[v[measure]]));
        // A context row (x): the filter bar keeps the dense model whatever method, target or seed it shows.
        if (s) rows.push({ p: panel, ds: b.dataset, a: b.arch, x: 1, m: "dense", t: "dense", to: -1, w: measure, b: r5(s.mean), y: r5(b.top1.mean), n: b.top1.n, dense: 1 });
      }
    }
    const param = { name: "budget", value: MEASURES[0], bind: { input: "select", options: [...MEASURES], name: "budget measure: " } };
    const x = { field: "b", type: "quantitative", title: "total training budget (dense pretraining + the run's own training)", scale: { type: "log" }, axis: { format: "~s" } };
    const y = { field: "y", type: "quantitative", title: "top-1 after fine-tuning", axis: { format: ".0%" }, scale: { zero: false } };
    const spec = withFilter({
      data: { name: DATA },
      params: [param],
      transform: [{ filter: "datum.w == budget" }],
      ...panelFacet(ctx, {
        width: 300,
        height: 220,
        layer: [
          {
            mark: { type: "point", shape: "cross", size: 90, color: "#333" },
            transform: [{ filter: "datum.dense == 1" }],
            encoding: { x, y, tooltip: [{ field: "b", title: "dense pretraining budget", format: ".3s" }, { field: "y", title: "dense top-1", format: ".2%" }] },
          },
          {
            mark: { type: "line", strokeWidth: 1.4, point: { filled: true, size: 30 } },
            transform: [{ filter: "datum.dense != 1" }],
            encoding: {
              x, y, color: methodColor(ctx), order: { field: "b", type: "quantitative" },
              tooltip: [
                { field: "m", title: "method" }, { field: "t", title: "target" }, { field: "n", title: "seeds" },
                { field: "b", title: "total budget (mean)", format: ".3s" }, { field: "own", title: "of which the run's own", format: ".3s" },
                { field: "y", title: "top-1 (mean)", format: ".2%" }, { field: "k", title: "a run key" },
              ],
            },
          },
        ],
      }, { independentX: true, independentY: true }),
      config: CHART_CONFIG,
    }, false);
    return {
      html: note(`Top-1 against each group's total training budget (mean over seeds): the run's own training (<code>train_macs</code>, <code>train_images</code>, <code>train_step_seconds</code>; a level of an iterative run counts all its rounds so far) ` +
        `plus the dense pretraining it prunes (<code>dense_pretrain_*</code>, charged to every run that starts from the trained dense model; at-init and dynamic sparse training start from the initial weights and pay none). ` +
        `Training MACs = 3 × the masked model's forward MACs per image. Crosses: the dense model at its pretraining budget. Log x axis. ` +
        `All groups together: ${compactCount(macsSum)} training MACs; ${formatDuration(secondsSum)} in the runs' own training steps.`) +
        `<div class="chart" id="chart-cost"></div>`,
      charts: [{ id: "chart-cost", spec, datasets: [DATA] }],
      data: { [DATA]: packRows(rows) },
    };
  },
};
