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

type Phase = ClassRow["phase"];

export function classDamage(runs: readonly RunRow[], rows: readonly ClassRow[]): GroupDamage[] {
  const byRun = new Map<string, Map<Phase, ClassRow[]>>();
  for (const c of rows) {
    let phases = byRun.get(c.runKey);
    if (!phases) byRun.set(c.runKey, (phases = new Map()));
    const list = phases.get(c.phase);
    if (list) list.push(c);
    else phases.set(c.phase, [c]);
  }
  const groups = new Map<string, { runs: RunRow[]; perRun: Array<{ overall: number; classes: Map<number, { name: string; d: number; b: number | null }> }> }>();
  for (const r of runs) {
    if (r.status !== "done") continue;
    const phases = byRun.get(r.key);
    const dense = phases?.get("dense");
    const after = phases?.get("after");
    if (!dense || !after) continue;
    const acc = (list: ClassRow[]) => new Map(list.map((c) => [c.label, { name: c.name, a: c.count > 0 ? c.correct / c.count : NaN }]));
    const overall = (list: ClassRow[]) => list.reduce((n, c) => n + c.correct, 0) / list.reduce((n, c) => n + c.count, 0);
    const d = acc(dense);
    const a = acc(after);
    const before = phases!.get("before");
    const b = before ? acc(before) : null;
    const classes = new Map<number, { name: string; d: number; b: number | null }>();
    for (const [label, x] of a) {
      const base = d.get(label);
      if (!base) continue;
      classes.set(label, { name: x.name || base.name, d: x.a - base.a, b: b?.get(label) ? b.get(label)!.a - base.a : null });
    }
    const id = groupId(r.dataset, r.arch, r.methodLabel, r.targetKind, r.targetValue);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { runs: [], perRun: [] }));
    g.runs.push(r);
    g.perRun.push({ overall: overall(after) - overall(dense), classes });
  }
  const out: GroupDamage[] = [];
  for (const [id, g] of groups) {
    const f = g.runs[0];
    const labels = new Map<number, string>();
    for (const p of g.perRun) for (const [label, c] of p.classes) if (!labels.has(label) || !labels.get(label)) labels.set(label, c.name);
    const classes: ClassDamage[] = [];
    for (const [label, name] of labels) {
      const delta = summarize(g.perRun.map((p) => p.classes.get(label)?.d ?? null));
      const excess = summarize(g.perRun.map((p) => (p.classes.has(label) ? p.classes.get(label)!.d - p.overall : null)));
      if (!delta || !excess) continue;
      const deltaBefore = summarize(g.perRun.map((p) => p.classes.get(label)?.b ?? null));
      classes.push({ label, name, delta, deltaBefore, excess, disproportionate: excess.ci95 !== null && excess.ci95[1] < 0 });
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
