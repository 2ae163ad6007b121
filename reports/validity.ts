/**
 * Validity checks over the finished runs of a result set: does each run measure what its grid asked for, and do the
 * numbers hold together? Pure functions of RunRows, shown as the overview's validity block (sections/overview.ts) and
 * testable on hand-made rows. Each check states its rule and tolerance in `rule`.
 */
import type { PruneTarget } from "../src/core/types.js";
import { targetLabel } from "../src/grid/label.js";
import type { RunRow } from "./model.js";

/** Requested vs achieved: at most this fraction of what the target leaves (weights, 1/compression, MACs) off. */
export const TARGET_TOLERANCE = 0.02;
/** Compacted vs masked logits of a structured run: float32 rounding of shorter sums, far below any real mismatch. */
export const COMPACTED_TOLERANCE = 1e-3;

export interface ValidityFailure {
  runKey: string;
  detail: string;
}

export interface ValidityCheck {
  id: "target" | "monotone" | "masks" | "compacted" | "dense";
  title: string;
  rule: string;
  /** Runs the check could look at (those that record what it reads). */
  checked: number;
  failures: ValidityFailure[];
}

export type CheckStatus = "pass" | "fail" | "n/a";

export function checkStatus(c: ValidityCheck): CheckStatus {
  return c.failures.length > 0 ? "fail" : c.checked === 0 ? "n/a" : "pass";
}

const finite = (v: number | null | undefined): v is number => typeof v === "number" && Number.isFinite(v);

/**
 * What a run reached in its own target's measure: a structured run's target_achieved (measured on its compacted
 * model), else the masked model's sparsity, compression ratio or MACs reduction; null when not recorded.
 */
export function achievedTarget(r: RunRow): number | null {
  const m = r.metrics;
  if (finite(m.target_achieved)) return m.target_achieved;
  if (r.targetKind === "sparsity") return finite(m.sparsity) ? m.sparsity : null;
  if (r.targetKind === "compression") return finite(m.compression_ratio) ? m.compression_ratio : null;
  return finite(m.macs_effective) && finite(m.macs_dense) && m.macs_dense > 0 ? 1 - m.macs_effective / m.macs_dense : null;
}

/** The share of the model a target leaves: weights (or channels) kept, 1 / compression, or MACs kept. */
export function remaining(kind: PruneTarget["kind"], value: number): number {
  return kind === "compression" ? 1 / value : 1 - value;
}

/** What a run keeps: a structured run's compacted params, else its nonzero params. */
function size(r: RunRow): number | null {
  const m = r.metrics;
  return finite(m.params_compacted) ? m.params_compacted : finite(m.params_nonzero) ? m.params_nonzero : null;
}

function checkTargets(runs: readonly RunRow[]): ValidityCheck {
  const failures: ValidityFailure[] = [];
  let checked = 0;
  for (const r of runs) {
    const achieved = achievedTarget(r);
    if (achieved === null) continue;
    checked++;
    const want = remaining(r.targetKind, r.targetValue);
    const got = remaining(r.targetKind, achieved);
    const structured = finite(r.metrics.target_achieved);
    // Whole channels cannot land on a target: a structured run may remove more than asked, never less.
    const off = structured ? (got - want) / want : Math.abs(got - want) / want;
    if (off > TARGET_TOLERANCE) {
      failures.push({
        runKey: r.key,
        detail: `${targetLabel({ kind: r.targetKind, value: r.targetValue })} requested, ${fmt(achieved)} achieved (${(off * 100).toFixed(1)} % of what it should leave off${structured ? ", short of the target" : ""})`,
      });
    }
  }
  return {
    id: "target", title: "Requested vs achieved target", checked, failures,
    rule: `the achieved sparsity / compression / MACs reduction (structured runs: target_achieved on the compacted model) leaves within ${TARGET_TOLERANCE * 100} % of the share the request leaves (kept weights, 1/compression, kept MACs); structured runs may overshoot, never fall short`,
  };
}

function checkMonotone(runs: readonly RunRow[]): ValidityCheck {
  const series = new Map<string, RunRow[]>();
  let checked = 0;
  for (const r of runs) {
    if (size(r) === null) continue;
    checked++;
    const k = [r.dataset, r.arch, r.methodLabel, r.seed, r.targetKind].join("\u0000");
    const list = series.get(k);
    if (list) list.push(r);
    else series.set(k, [r]);
  }
  const failures: ValidityFailure[] = [];
  for (const list of series.values()) {
    list.sort((a, b) => a.targetValue - b.targetValue);
    // The smallest model among strictly smaller targets: a larger target must not keep more than it.
    let smallest: RunRow | null = null;
    for (let i = 0; i < list.length;) {
      let j = i;
      while (j < list.length && list[j].targetValue === list[i].targetValue) j++;
      const same = list.slice(i, j);
      for (const r of same) {
        if (smallest && size(r)! > size(smallest)!) {
          failures.push({
            runKey: r.key,
            detail: `${targetLabel({ kind: r.targetKind, value: r.targetValue })} keeps ${size(r)} params, more than ${smallest.key.slice(0, 12)} at ${targetLabel({ kind: smallest.targetKind, value: smallest.targetValue })} (${size(smallest)})`,
          });
        }
      }
      for (const r of same) if (smallest === null || size(r)! < size(smallest)!) smallest = r;
      i = j;
    }
  }
  return {
    id: "monotone", title: "Achieved size monotone across targets", checked, failures,
    rule: "within one dataset, arch, method and seed, a larger target never keeps more parameters (nonzero params; structured runs: compacted params) than a smaller one",
  };
}

function checkMasks(runs: readonly RunRow[]): ValidityCheck {
  const failures: ValidityFailure[] = [];
  let checked = 0;
  for (const r of runs) {
    const v = r.metrics.masked_nonzero;
    if (!finite(v)) continue;
    checked++;
    if (v !== 0) failures.push({ runKey: r.key, detail: `${v} masked weights are nonzero after fine-tuning` });
  }
  return {
    id: "masks", title: "Masks still exact zeros after fine-tuning", checked, failures,
    rule: "masked_nonzero = 0: every weight whose mask is 0 is exactly 0 in the final model",
  };
}

function checkCompacted(runs: readonly RunRow[]): ValidityCheck {
  const failures: ValidityFailure[] = [];
  let checked = 0;
  for (const r of runs) {
    const v = r.metrics.compacted_max_abs_diff;
    if (!finite(v)) continue;
    checked++;
    if (!(v <= COMPACTED_TOLERANCE)) failures.push({ runKey: r.key, detail: `compacted and masked logits differ by up to ${fmt(v)}` });
  }
  return {
    id: "compacted", title: "Compacted = masked outputs (structured runs)", checked, failures,
    rule: `compacted_max_abs_diff ≤ ${COMPACTED_TOLERANCE}: the physically smaller model computes the masked model's logits`,
  };
}

function checkDense(runs: readonly RunRow[]): ValidityCheck {
  const byDense = new Map<string, RunRow[]>();
  let checked = 0;
  for (const r of runs) {
    if (!finite(r.metrics.top1_dense)) continue;
    checked++;
    const k = r.denseKey ?? [r.dataset, r.arch, r.seed].join("\u0000");
    const list = byDense.get(k);
    if (list) list.push(r);
    else byDense.set(k, [r]);
  }
  const failures: ValidityFailure[] = [];
  for (const list of byDense.values()) {
    // The value most runs measured is the reference; every run that measured another fails.
    const votes = new Map<number, number>();
    for (const r of list) votes.set(r.metrics.top1_dense!, (votes.get(r.metrics.top1_dense!) ?? 0) + 1);
    const mode = [...votes].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
    for (const r of list) {
      if (r.metrics.top1_dense !== mode) {
        failures.push({ runKey: r.key, detail: `top1_dense ${fmt(r.metrics.top1_dense!)}, while ${votes.get(mode)} of ${list.length} runs of the same dense model measured ${fmt(mode)}` });
      }
    }
  }
  return {
    id: "dense", title: "Dense baseline re-evaluated by the same code", checked, failures,
    rule: "every run evaluates its dense model with the evaluation that gives its own top-1; runs sharing a dense model must report the identical top1_dense",
  };
}

/** Every check over the finished runs, in the order the overview lists them. */
export function validityChecks(runs: readonly RunRow[]): ValidityCheck[] {
  const done = runs.filter((r) => r.status === "done");
  return [checkTargets(done), checkMonotone(done), checkMasks(done), checkCompacted(done), checkDense(done)];
}

function fmt(v: number): string {
  return Math.abs(v) >= 1000 || v === 0 ? String(v) : Number(v.toPrecision(4)).toString();
}
