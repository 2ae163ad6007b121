/** The pruning targets axis: `sparsities` or `compressions`, exactly one of the two. */
import type { Checker, NumberSpec, TopLevel } from "../checker.js";
import { describe } from "../parse.js";
import type { PruneTarget } from "../../core/types.js";

export const SPARSITY_SPEC: NumberSpec = {
  noun: "a sparsity",
  min: 0,
  max: 1,
  maxExclusive: true,
  hint: " (the fraction of prunable weights removed)",
};
export const COMPRESSION_SPEC: NumberSpec = { noun: "a compression ratio", min: 1, hint: " (total params / nonzero params)" };

/** The targets with the line of each, which checks made after validation (an unreachable compression) point at. */
export function readTargets(c: Checker, top: TopLevel): { targets: PruneTarget[]; lines: number[] } | undefined {
  const spEntry = top.entry("sparsities");
  const crEntry = top.entry("compressions");
  let ok = true;
  if (spEntry !== undefined && crEntry !== undefined) {
    const later = spEntry.keyLine >= crEntry.keyLine ? spEntry : crEntry;
    const other = later === spEntry ? crEntry : spEntry;
    c.error(later.keyLine, later.key, `give exactly one of sparsities / compressions, not both (the other is on line ${other.keyLine})`);
    ok = false;
  } else if (spEntry === undefined && crEntry === undefined) {
    c.error(top.line, "sparsities", `missing pruning targets: give exactly one of sparsities (each in [0, 1)) or compressions (each >= 1)`);
    ok = false;
  }
  const targets: PruneTarget[] = [];
  const lines: number[] = [];
  // Both lists are read even when both are given, so that their own mistakes show in the same run.
  for (const [entry, kind, spec] of [
    [spEntry, "sparsity", SPARSITY_SPEC],
    [crEntry, "compression", COMPRESSION_SPEC],
  ] as const) {
    if (entry === undefined) continue;
    const items = c.distinctList(entry.value, entry.key, kind === "sparsity" ? "sparsities in [0, 1)" : "compression ratios >= 1", (item, p) => c.number(item, p, spec), {
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
