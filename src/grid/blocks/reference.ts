/** The `reference` block: published rows shown beside reproduced ones, each checked like the rest of the grid. */
import { acceptedUnits } from "../../metrics/units.js";
import { METRICS, METRIC_NAMES } from "../../metrics/names.js";
import { isNull, join, type Checker, type TopLevel } from "../checker.js";
import { describe, type LEntry, type LNode } from "../parse.js";
import { didYouMean, unknownNameMessage } from "../suggest.js";
import { COMPRESSION_SPEC, MACS_REDUCTION_SPEC, SPARSITY_SPEC } from "./targets.js";
import type { PruneTarget, ReferenceRow } from "../../core/types.js";

const REFERENCE_KEYS = ["paper", "source", "dataset", "arch", "method", "sparsity", "compression", "macs_reduction", "metrics", "note"];

/**
 * Published rows may name what we do not run (SNIP, "iterative magnitude (Han 2015)", LeNet-300-100): those names are
 * kept as the paper's own. A name a typo away from one of ours is refused instead, or the row would silently match
 * nothing in the report.
 */
const REFERENCE_NAME_RULE = "a paper's own name is kept only when it is not a near miss of one of ours";

type Row = Map<string, LEntry>;

function checkNotANearMiss(c: Checker, row: Row, p: string, key: string, value: string | undefined, valid: string[]): void {
  if (value === undefined || valid.some((v) => v.toLowerCase() === value.trim().toLowerCase())) return;
  if (didYouMean(value.trim(), valid) === null) return;
  c.error(row.get(key)!.value.line, join(p, key), `${unknownNameMessage(key, value, valid)} (${REFERENCE_NAME_RULE})`);
}

/** A row's target: exactly one of these keys, read as the grid's targets axis reads its values. */
const ROW_TARGETS = [
  ["sparsity", "sparsity", SPARSITY_SPEC],
  ["compression", "compression", COMPRESSION_SPEC],
  ["macs_reduction", "macs-reduction", MACS_REDUCTION_SPEC],
] as const;

function readRowTarget(c: Checker, row: Row, item: LNode, p: string): PruneTarget | undefined {
  const given = ROW_TARGETS.filter(([key]) => row.has(key));
  if (given.length > 1) {
    const later = given.map(([key]) => row.get(key)!).sort((a, b) => b.keyLine - a.keyLine)[0];
    c.error(later.keyLine, join(p, later.key), `give exactly one of sparsity / compression / macs_reduction, not ${given.map(([k]) => k).join(" and ")}`);
  } else if (given.length === 1) {
    const [key, kind, spec] = given[0];
    const v = c.number(row.get(key)!.value, join(p, key), spec);
    if (v !== undefined) return { kind, value: v };
  } else {
    c.error(item.line, join(p, "sparsity"), "missing target: give exactly one of sparsity (in [0, 1)), compression (>= 1) or macs_reduction (in [0, 1))");
  }
  return undefined;
}

/** Why a published value cannot be right for its metric and unit, or null when it can. */
function referenceValueProblem(metric: string, ownUnit: string, value: number, unit: string, shown: string): string | null {
  if (ownUnit === "fraction") {
    const max = unit === "fraction" ? 1 : 100;
    if (value >= 0 && value <= max) return null;
    const hint = unit === "fraction" && value > 1 && value <= 100 ? ` (for ${shown} %, write unit: percent)` : "";
    return `expected a value in [0, ${max}] for ${metric} in ${unit}, got ${shown}${hint}`;
  }
  // Counts, ratios, losses, times, throughputs: none of them is negative.
  return value >= 0 ? null : `expected a value >= 0 for ${metric} in ${unit}, got ${shown}`;
}

/** One `<metric>: {value, unit}`, the value in the paper's own unit, which must be one the metric converts from. */
function readMetric(c: Checker, metric: string, e: LEntry, mp: string): { value: number; unit: string } | undefined {
  const def = METRICS.get(metric);
  if (def === undefined) {
    c.error(e.keyLine, mp, unknownNameMessage("metric", metric, METRIC_NAMES));
    return undefined;
  }
  const vu = c.map(e.value, mp, ["value", "unit"], { what: "a mapping" });
  if (vu === undefined) return undefined;
  const ve = vu.get("value");
  const ue = vu.get("unit");
  if (ve === undefined) c.missing(e.value.line, join(mp, "value"), "value");
  if (ue === undefined) c.missing(e.value.line, join(mp, "unit"), "unit", ` (${metric} is in ${def.unit})`);
  const value = ve === undefined ? undefined : c.number(ve.value, join(mp, "value"));
  const unit = ue === undefined ? undefined : c.string(ue.value, join(mp, "unit"), { nonEmpty: true });
  if (unit !== undefined && !acceptedUnits(metric).includes(unit)) {
    c.error(ue!.value.line, join(mp, "unit"), `unit "${unit}" is not one ${metric} can be given in; valid: ${acceptedUnits(metric).join(", ")}`);
    return undefined;
  }
  if (value === undefined || unit === undefined) return undefined;
  const problem = referenceValueProblem(metric, def.unit, value, unit, describe(ve!.value));
  if (problem === null) return { value, unit };
  c.error(ve!.value.line, join(mp, "value"), problem);
  return undefined;
}

function readRowMetrics(c: Checker, row: Row, item: LNode, p: string): Record<string, { value: number; unit: string }> {
  const metrics: Record<string, { value: number; unit: string }> = {};
  const me = row.get("metrics");
  if (me === undefined) {
    c.missing(item.line, join(p, "metrics"), "metrics", " in reference row");
    return metrics;
  }
  const mm = c.map(me.value, join(p, "metrics"), null, { what: "a mapping from metric name to {value, unit}" });
  if (mm === undefined) return metrics;
  if (mm.size === 0) c.error(me.value.line, join(p, "metrics"), "expected at least one metric");
  for (const [metric, e] of mm) {
    const read = readMetric(c, metric, e, join(join(p, "metrics"), metric));
    if (read !== undefined) metrics[metric] = read;
  }
  return metrics;
}

function readRow(c: Checker, item: LNode, p: string): ReferenceRow | undefined {
  const row = c.map(item, p, REFERENCE_KEYS, { what: "a reference row (a mapping)" });
  if (row === undefined) return undefined;
  const before = c.errors.length;
  const text = (k: string): string | undefined => {
    const e = row.get(k);
    if (e !== undefined) return c.string(e.value, join(p, k), { nonEmpty: true });
    c.missing(item.line, join(p, k), k, " in reference row");
    return undefined;
  };
  const [paper, source, dataset, arch, method] = ["paper", "source", "dataset", "arch", "method"].map(text);
  checkNotANearMiss(c, row, p, "dataset", dataset, Object.keys(c.catalog.datasets));
  checkNotANearMiss(c, row, p, "arch", arch, Object.keys(c.catalog.archs));
  checkNotANearMiss(c, row, p, "method", method, [...Object.keys(c.catalog.methods), "dense"]);
  const noteNode = row.get("note")?.value;
  const note = noteNode === undefined || isNull(noteNode) ? undefined : c.string(noteNode, join(p, "note"));
  const target = readRowTarget(c, row, item, p);
  const metrics = readRowMetrics(c, row, item, p);
  if (c.errors.length !== before || paper === undefined || source === undefined || dataset === undefined || arch === undefined || method === undefined || target === undefined) {
    return undefined;
  }
  const out: ReferenceRow = { paper, source, dataset, arch, method, target, metrics };
  if (note !== undefined) out.note = note;
  return out;
}

export function readReference(c: Checker, top: TopLevel): ReferenceRow[] | undefined {
  const node = top.get("reference");
  if (node === undefined || isNull(node)) return [];
  if (node.kind !== "seq") {
    c.error(node.line, "reference", `expected a list of reference rows (mappings with keys ${REFERENCE_KEYS.join(", ")}), got ${describe(node)}`);
    return undefined;
  }
  const rows = node.items.map((item, i) => readRow(c, item, `reference[${i}]`));
  return rows.every((r) => r !== undefined) ? (rows as ReferenceRow[]) : undefined;
}
