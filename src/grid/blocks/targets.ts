/**
 * The pruning targets axis: `sparsities`, `compressions` or `macs_reductions` (structured methods only), exactly one
 * of them.
 */
import type { Checker, NumberSpec, TopLevel } from "../checker.js";
import { describe } from "../parse.js";
import type { MethodChoice, PruneTarget } from "../../core/types.js";

export const SPARSITY_SPEC: NumberSpec = {
  noun: "a sparsity",
  min: 0,
  max: 1,
  maxExclusive: true,
  hint: " (the fraction of prunable weights removed)",
};
export const COMPRESSION_SPEC: NumberSpec = { noun: "a compression ratio", min: 1, hint: " (total params / nonzero params)" };
export const MACS_REDUCTION_SPEC: NumberSpec = {
  noun: "a MACs reduction",
  min: 0,
  max: 1,
  maxExclusive: true,
  hint: " (the fraction of the dense model's MACs removed, measured on the compacted model)",
};

const KEYS = [
  ["sparsities", "sparsity", SPARSITY_SPEC, "sparsities in [0, 1)"],
  ["compressions", "compression", COMPRESSION_SPEC, "compression ratios >= 1"],
  ["macs_reductions", "macs-reduction", MACS_REDUCTION_SPEC, "MACs reductions in [0, 1)"],
] as const;

/** The targets with the line of each, which checks made after validation (an unreachable compression) point at. */
export function readTargets(c: Checker, top: TopLevel): { targets: PruneTarget[]; lines: number[] } | undefined {
  const given = KEYS.map(([key]) => ({ key, entry: top.entry(key) })).filter((g) => g.entry !== undefined);
  let ok = true;
  if (given.length > 1) {
    const sorted = [...given].sort((a, b) => a.entry!.keyLine - b.entry!.keyLine);
    const later = sorted[sorted.length - 1];
    c.error(later.entry!.keyLine, later.key, `give exactly one of sparsities / compressions / macs_reductions, not several (${sorted.slice(0, -1).map((g) => `${g.key} is on line ${g.entry!.keyLine}`).join(", ")})`);
    ok = false;
  } else if (given.length === 0) {
    c.error(top.line, "sparsities", `missing pruning targets: give exactly one of sparsities (each in [0, 1)), compressions (each >= 1) or macs_reductions (each in [0, 1), structured methods)`);
    ok = false;
  }
  const targets: PruneTarget[] = [];
  const lines: number[] = [];
  // Every list is read even when several are given, so that their own mistakes show in the same run.
  for (const [key, kind, spec, what] of KEYS) {
    const entry = top.entry(key);
    if (entry === undefined) continue;
    const items = c.distinctList(entry.value, entry.key, what, (item, p) => c.number(item, p, spec), {
      id: (v) => v,
      duplicate: (_v, first, item) => `duplicate ${kind} ${describe(item)} (same as ${entry.key}[${first}])`,
    });
    if (items === undefined) ok = false;
    for (const { value, node } of items ?? []) {
      targets.push({ kind, value });
      lines.push(node.line);
    }
  }
  return ok ? { targets, lines } : undefined;
}

/** A MACs reduction is measured on a compacted model: only methods that remove channels have one. */
export function checkTargetGranularity(c: Checker, top: TopLevel, targets: readonly PruneTarget[], methods: readonly MethodChoice[], methodLines: readonly number[]): void {
  if (!targets.some((t) => t.kind === "macs-reduction")) return;
  methods.forEach((m, i) => {
    if (c.catalog.methods[m.name]?.granularity === "channel") return;
    c.error(methodLines[i] ?? top.entry("macs_reductions")!.keyLine, `methods[${i}]`,
      `method ${m.name} prunes single weights, and macs_reductions needs a structured (channel) method: its MACs are counted on the compacted model; use sparsities or compressions for it`);
  });
}
