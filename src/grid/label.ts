/** Human-readable labels for method choices and targets (tables, plot legends, logs). */
import type { AblationName, Catalog, HyperValue, MethodChoice, PruneTarget } from "../core/types.js";
import { catalogEntry } from "./checker.js";

function formatValue(v: HyperValue): string {
  if (typeof v === "string") return /^[A-Za-z0-9_.+-]+$/.test(v) ? v : JSON.stringify(v);
  return String(v);
}

/**
 * `name` when every hyperparameter has its catalog default, else `name(k=v, ...)` listing only the non-default ones,
 * in the catalog's declaration order (unknown parameters, if any, follow sorted by name); an ablation other than
 * "none" follows as `+ablation` (`snip+layer-shuffle`), so tables and charts show it as a series of its own.
 */
export function methodLabel(choice: MethodChoice, catalog: Catalog, ablation: AblationName = "none"): string {
  const specs = catalogEntry(catalog.methods, choice.name)?.params ?? {};
  const declared = Object.keys(specs);
  const extra = Object.keys(choice.params)
    .filter((k) => !(k in specs))
    .sort();
  const parts: string[] = [];
  for (const k of [...declared, ...extra]) {
    if (!(k in choice.params)) continue;
    const v = choice.params[k];
    const spec = specs[k];
    if (spec !== undefined && spec.default === v) continue;
    parts.push(`${k}=${formatValue(v)}`);
  }
  const label = parts.length === 0 ? choice.name : `${choice.name}(${parts.join(", ")})`;
  return ablation === "none" ? label : `${label}+${ablation}`;
}

/**
 * `sparsity 0.9` or `compression 8x`: how every command, log line, table and chart names a target (values rounded to 4
 * decimals, so float noise such as 0.30000000000000004 never shows).
 */
export function targetLabel(target: PruneTarget): string {
  const v = String(Number(target.value.toFixed(4)));
  return target.kind === "sparsity" ? `sparsity ${v}` : target.kind === "compression" ? `compression ${v}x` : `macs-reduction ${v}`;
}
