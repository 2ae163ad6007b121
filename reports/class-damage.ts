/**
 * Which classes pruning damages (Hooker et al. 2019, "What do compressed networks forget?"): per run and class, the
 * change of the class's top-1 from the dense model to the fine-tuned one, and its excess over the run's overall
 * change; summarized over the seeds of each (dataset, arch, method, target) group. Pure: hand-made rows test it.
 *
 * Definitions (stated in the report):
 * - class Δ = after_c − dense_c, class accuracy = correct / count of that class, in the same run;
 * - overall Δ = top-1 after − top-1 dense, both from the class rows (Σ correct / Σ count);
 * - excess Δ = class Δ − overall Δ. A class is disproportionately hurt when the 95 % Student-t interval of its excess
 *   over seeds lies below 0 (n ≥ 2). Hooker et al. test classes on 30 models per setting; with few seeds this is the
 *   paired reading of the same question, and with one seed no class is called significant.
 */
import { groupId, panelLabel, summarize, type Stat } from "./aggregate.js";
import { targetLabel } from "../src/grid/label.js";
import type { PruneTarget } from "../src/core/types.js";
import type { ClassRow, RunRow } from "./model.js";

export interface ClassDamage {
  label: number;
  name: string;
  /** after − dense, fraction; its std / CI are over seeds. */
  delta: Stat;
  /** before (pruned, not fine-tuned) − dense. */
  deltaBefore: Stat | null;
  excess: Stat;
  /** The excess's 95 % CI lies entirely below 0. */
  disproportionate: boolean;
}

export interface GroupDamage {
  id: string;
  panel: string;
  dataset: string;
  arch: string;
  methodLabel: string;
  targetKind: PruneTarget["kind"];
  targetValue: number;
  target: string;
  runKeys: string[];
  overall: Stat;
  /** Every class, most damaged (lowest mean class Δ) first. */
  classes: ClassDamage[];
}

export function classDamage(runs: readonly RunRow[], rows: readonly ClassRow[]): GroupDamage[] {
  const byRun = new Map<string, Partial<Record<ClassRow["phase"], ClassRow>>>();
  for (const c of rows) {
    const phases = byRun.get(c.runKey);
    if (phases) phases[c.phase] = c;
    else byRun.set(c.runKey, { [c.phase]: c });
  }
  /** Per run of a group: its overall Δ, and per class label its Δ after and before fine-tuning (NaN: not measured). */
  interface PerRun { overall: number; after: Map<number, number>; before: Map<number, number> }
  const groups = new Map<string, { runs: RunRow[]; perRun: PerRun[]; names: Map<number, string> }>();
  const total = (xs: readonly number[]) => xs.reduce((n, x) => n + x, 0);
  for (const r of runs) {
    if (r.status !== "done") continue;
    const phases = byRun.get(r.key);
    const dense = phases?.dense;
    const after = phases?.after;
    if (!dense || !after) continue;
    const denseAcc = new Map(dense.labels.map((label, i) => [label, dense.count[i] > 0 ? dense.correct[i] / dense.count[i] : NaN]));
    const deltas = (c: ClassRow | undefined) => {
      const out = new Map<number, number>();
      if (!c) return out;
      c.labels.forEach((label, i) => {
        const base = denseAcc.get(label);
        if (base !== undefined && c.count[i] > 0) out.set(label, c.correct[i] / c.count[i] - base);
      });
      return out;
    };
    const id = groupId(r.dataset, r.arch, r.methodLabel, r.targetKind, r.targetValue);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { runs: [], perRun: [], names: new Map() }));
    dense.labels.forEach((label, i) => { if (!g!.names.get(label)) g!.names.set(label, after.names[after.labels.indexOf(label)] || dense.names[i]); });
    g.runs.push(r);
    g.perRun.push({
      overall: total(after.correct) / total(after.count) - total(dense.correct) / total(dense.count),
      after: deltas(after),
      before: deltas(phases!.before),
    });
  }
  const out: GroupDamage[] = [];
  for (const [id, g] of groups) {
    const f = g.runs[0];
    const classes: ClassDamage[] = [];
    for (const [label, name] of [...g.names].sort((a, b) => a[0] - b[0])) {
      const delta = summarize(g.perRun.map((p) => p.after.get(label)));
      const excess = summarize(g.perRun.map((p) => (p.after.has(label) ? p.after.get(label)! - p.overall : null)));
      if (!delta || !excess) continue;
      const deltaBefore = summarize(g.perRun.map((p) => p.before.get(label)));
      classes.push({ label, name: name ?? "", delta, deltaBefore, excess, disproportionate: excess.ci95 !== null && excess.ci95[1] < 0 });
    }
    classes.sort((a, b) => a.delta.mean - b.delta.mean || a.label - b.label);
    out.push({
      id, panel: panelLabel(f.dataset, f.arch), dataset: f.dataset, arch: f.arch, methodLabel: f.methodLabel,
      targetKind: f.targetKind, targetValue: f.targetValue, target: targetLabel({ kind: f.targetKind, value: f.targetValue }),
      runKeys: g.runs.map((r) => r.key), overall: summarize(g.perRun.map((p) => p.overall))!, classes,
    });
  }
  return out;
}
