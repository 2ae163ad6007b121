/**
 * `bench compare A B`: two methods, paired by seed and dense model, at each (dataset, arch, target) both ran: the
 * means, the mean difference with its 95% interval, the test and its p, the verdict (a tie unless significant) and
 * how many seeds would separate them. The verdicts are reports/winners.ts's, as in the report.
 */
import type { PruneTarget } from "../core/types.js";
import { targetLabel } from "../grid/label.js";
import { didYouMean } from "../grid/suggest.js";
import { targetOrder } from "../../reports/aggregate.js";
import { formatMetric, formatSpread } from "../../reports/format.js";
import type { RunRow } from "../../reports/model.js";
import { formatP, formatSeedsNeeded } from "../../reports/sections/winners.js";
import { compareMethodRuns, type MethodComparison } from "../../reports/winners.js";
import { oneOf, reportDataOf } from "./choices.js";
import { UsageError } from "./errors.js";
import { emit, textTable } from "./output.js";

export interface CompareOptions { db: string; at?: string; arch?: string; dataset?: string; sweep?: string; json?: boolean }

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

/**
 * The target `--at` names among `targets`: `16x` or `compression 16x` (compression), `0.9` or `sparsity 0.9`,
 * `macs-reduction 0.5`; a bare number below 1 is the sparsity, or the MACs reduction when only that kind has the
 * value; `kind=value` works too. Anything else is an error listing the targets there are.
 */
export function resolveTarget(text: string, targets: readonly PruneTarget[]): PruneTarget {
  const valid = () => targets.map((t) => shortTarget(t)).join(", ");
  const s = text.trim().toLowerCase().replace(/[=:]/g, " ").replace(/\s+/g, " ");
  let m: RegExpMatchArray | null;
  let kinds: PruneTarget["kind"][];
  let value: number;
  if ((m = s.match(/^(?:compression )?([0-9]*\.?[0-9]+(?:e[+-]?\d+)?) ?(x|×)$/)) || (m = s.match(/^compression ([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)$/))) {
    kinds = ["compression"];
    value = Number(m[1]);
  } else if ((m = s.match(/^(sparsity|macs-reduction|macs|compression) ([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)$/))) {
    kinds = [m[1] === "macs" ? "macs-reduction" : (m[1] as PruneTarget["kind"])];
    value = Number(m[2]);
  } else if ((m = s.match(/^([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)$/))) {
    value = Number(m[1]);
    kinds = value >= 1 ? ["compression"] : ["sparsity", "macs-reduction"];
  } else {
    throw new UsageError(`--at "${text}" is not a target; write e.g. 16x, 0.9, sparsity 0.9 or macs-reduction 0.5. Targets here: ${valid()}`);
  }
  const hits = targets.filter((t) => kinds.includes(t.kind) && close(t.value, value)).sort((x, y) => targetOrder(x.kind, x.value) - targetOrder(y.kind, y.value));
  if (hits.length === 1) return hits[0];
  if (hits.length > 1) throw new UsageError(`--at ${text} is ambiguous: ${hits.map(targetLabel).join(" or ")}; say which, e.g. "${targetLabel(hits[0])}"`);
  throw new UsageError(`--at ${text}: no such target among the runs of both methods; valid: ${valid()}`);
}

/** How a user would type a target: 16x, 0.9, macs-reduction 0.5. */
function shortTarget(t: PruneTarget): string {
  const v = String(Number(t.value.toFixed(4)));
  return t.kind === "compression" ? `${v}x` : t.kind === "sparsity" ? v : `macs-reduction ${v}`;
}

/** A method as given: its label, or its name when that names exactly one label. */
function resolveMethod(flag: string, value: string, runs: readonly RunRow[]): string {
  const labels = [...new Set(runs.map((r) => r.methodLabel))].sort();
  if (labels.includes(value)) return value;
  const byName = [...new Set(runs.filter((r) => r.method === value).map((r) => r.methodLabel))];
  if (byName.length === 1) return byName[0];
  if (byName.length > 1) throw new UsageError(`${flag} "${value}" names ${byName.length} method labels here; give one of: ${byName.join(", ")}`);
  const near = didYouMean(value, labels);
  throw new UsageError(`${flag}: no done runs of method "${value}"${near ? `; did you mean "${near}"?` : ""}; valid: ${labels.join(", ") || "(no done runs)"}`);
}

function pp(v: number): string {
  const r = Number((v * 100).toFixed(2));
  return `${r > 0 ? "+" : r < 0 ? "−" : "±"}${Math.abs(r).toFixed(2)}`;
}

function verdictText(c: MethodComparison): string {
  if (c.better) return `${c.better} better`;
  return c.test === "none" ? "tie (no test)" : "tie";
}

/** The comparisons `bench compare` prints, one per (dataset, arch, target) both methods ran (after the filters). */
export function compareMethods(runs: readonly RunRow[], a: string, b: string, filter: { at?: PruneTarget; arch?: string; dataset?: string } = {}): MethodComparison[] {
  const cells = new Map<string, { a: RunRow[]; b: RunRow[] }>();
  for (const r of runs) {
    if (r.status !== "done" || (r.methodLabel !== a && r.methodLabel !== b)) continue;
    if (filter.arch !== undefined && r.arch !== filter.arch) continue;
    if (filter.dataset !== undefined && r.dataset !== filter.dataset) continue;
    if (filter.at && !(r.targetKind === filter.at.kind && close(r.targetValue, filter.at.value))) continue;
    const k = `${r.dataset}\u0000${r.arch}\u0000${r.targetKind}\u0000${r.targetValue}`;
    let c = cells.get(k);
    if (!c) cells.set(k, (c = { a: [], b: [] }));
    (r.methodLabel === a ? c.a : c.b).push(r);
  }
  const out: MethodComparison[] = [];
  for (const c of cells.values()) {
    const cmp = c.a.length && c.b.length ? compareMethodRuns(c.a, c.b) : null;
    if (cmp) out.push(cmp);
  }
  out.sort((x, y) => x.dataset.localeCompare(y.dataset) || x.arch.localeCompare(y.arch) || targetOrder(x.targetKind, x.targetValue) - targetOrder(y.targetKind, y.targetValue));
  return out;
}

export default function compare(methodA: string, methodB: string, o: CompareOptions): number {
  const runs = reportDataOf(o.db, o.sweep).runs.filter((r) => r.status === "done");
  const a = resolveMethod("methodA", methodA, runs);
  const b = resolveMethod("methodB", methodB, runs);
  if (a === b) throw new UsageError(`methodA and methodB are both "${a}"; compare two different methods`);
  const dataset = o.dataset === undefined ? undefined : oneOf("--dataset", o.dataset, [...new Set(runs.map((r) => r.dataset))].sort());
  const arch = o.arch === undefined ? undefined : oneOf("--arch", o.arch, [...new Set(runs.map((r) => r.arch))].sort());
  const both = compareMethods(runs, a, b, { arch, dataset });
  if (both.length === 0) {
    throw new UsageError(`"${a}" and "${b}" have no dataset, arch and target in common${arch || dataset ? " (after --arch/--dataset)" : ""}; nothing to compare`);
  }
  let rows = both;
  if (o.at !== undefined) {
    const seen = new Map<string, PruneTarget>();
    for (const c of both) seen.set(`${c.targetKind}:${c.targetValue}`, { kind: c.targetKind, value: c.targetValue });
    const targets = [...seen.values()].sort((x, y) => targetOrder(x.kind, x.value) - targetOrder(y.kind, y.value));
    const at = resolveTarget(o.at, targets);
    rows = both.filter((c) => c.targetKind === at.kind && close(c.targetValue, at.value));
  }
  if (o.json) {
    emit(JSON.stringify(rows.map((c) => ({
      dataset: c.dataset, arch: c.arch, target: { kind: c.targetKind, value: c.targetValue }, metric: c.metric, a: c.a, b: c.b,
      a_stat: c.statA, b_stat: c.statB, paired_seeds: c.pairedSeeds, unpaired_seeds: c.unpairedSeeds, test: c.test,
      diff: c.diff, ci95: c.ci, p: c.p, diff_std: c.diffStd, significant: c.significant, better: c.better, tie: c.better === null,
      // JSON has no Infinity: null with seeds_needed_never when the mean difference is exactly 0.
      seeds_needed: c.seedsNeeded !== null && Number.isFinite(c.seedsNeeded) ? c.seedsNeeded : null,
      seeds_needed_never: c.seedsNeeded === Infinity, test_images: c.testImages, how: c.method,
    })), null, 2));
    return 0;
  }
  const ms = (s: MethodComparison["statA"]) => `${formatMetric("top1_after", s.mean)}${s.std === null ? "" : ` ± ${formatSpread("top1_after", s.std)}`} (n=${s.n})`;
  const text = textTable(
    ["dataset", "arch", "target", `A: ${a}`, `B: ${b}`, "A − B (pp)", "95% CI (pp)", "test", "p", "verdict", "seeds to separate"],
    rows.map((c) => [
      c.dataset, c.arch, c.target, ms(c.statA), ms(c.statB), pp(c.diff), c.ci ? `[${pp(c.ci[0])}, ${pp(c.ci[1])}]` : "–",
      c.test === "paired-t" ? `paired t (${c.pairedSeeds.length} seeds)` : c.test === "two-proportion" ? `two-proportion (${c.testImages} images)` : "none",
      c.p === null ? "–" : formatP(c.p), verdictText(c), formatSeedsNeeded(c),
    ]),
  );
  const notes = [...new Set(rows.map((c) => c.method))].map((m) => `  ${m}`);
  const unpaired = rows.filter((c) => c.unpairedSeeds.length > 0).map((c) => `  ${c.dataset} · ${c.arch} · ${c.target}: seeds ${c.unpairedSeeds.join(", ")} not paired (run by one method only, or on another dense model)`);
  emit(
    `top-1 of ${a} (A) against ${b} (B), paired by seed and dense model; a difference that is not significant (p ≥ 0.05) is a tie.\n` +
      text +
      `how:\n${notes.join("\n")}\n` +
      (unpaired.length ? `${unpaired.join("\n")}\n` : "") +
      (rows.some((c) => c.test === "paired-t")
        ? "seeds to separate: smallest n with |mean difference|·√n / std ≥ t(0.975, n − 1), if the per-seed differences kept their mean and std.\n"
        : ""),
  );
  return 0;
}
