/**
 * Hyperparameters that list layer names (`layerNames: true` in their spec, e.g. a channel method's `skip`): every
 * name must be a layer of the architecture. A name that matches nothing would otherwise be ignored, and the layer the
 * user meant to keep whole would be pruned. One message for the grid check and the run-start check.
 */
import type { HyperParamSpec, HyperValue } from "./types.js";

/** The names listed in a comma-separated layer-list value, in order, blanks dropped. */
export function listedLayerNames(value: HyperValue | undefined): string[] {
  return String(value ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

/** Per layer-list hyperparameter with unknown names: its name and the problem, naming the unknown and the valid names. */
export function unknownLayerNames(
  method: string, specs: Readonly<Record<string, HyperParamSpec>>, params: Readonly<Record<string, HyperValue>>,
  arch: string, valid: readonly string[],
): Array<{ param: string; problem: string }> {
  const known = new Set(valid);
  const out: Array<{ param: string; problem: string }> = [];
  for (const [param, spec] of Object.entries(specs)) {
    if (!spec.layerNames) continue;
    const unknown = listedLayerNames(params[param]).filter((n) => !known.has(n));
    if (unknown.length === 0) continue;
    out.push({
      param,
      problem: `method ${method}: ${param} names ${unknown.map((n) => `"${n}"`).join(", ")}, which ${unknown.length === 1 ? "is not a layer" : "are not layers"} of arch ${arch}; ` +
        `its layers: ${valid.join(", ")}`,
    });
  }
  return out;
}
