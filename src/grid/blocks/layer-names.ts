/**
 * Hyperparameters that list layer names (a channel method's `skip`) against every arch of the grid whose layers the
 * catalog knows: a misspelt name would otherwise match nothing and leave the layer it meant to protect pruned. Archs
 * whose layers are known only once built are checked at run start with the same message (src/run/execute-job.ts).
 */
import { catalogEntry, entryIn, type Checker, type TopLevel } from "../checker.js";
import { unknownLayerNames } from "../../core/layer-names.js";
import type { MethodChoice } from "../../core/types.js";

export function checkLayerNameParams(c: Checker, top: TopLevel, methods: readonly MethodChoice[], methodLines: readonly number[], archs: readonly string[]): void {
  const methodsNode = top.get("methods");
  methods.forEach((m, i) => {
    const specs = catalogEntry(c.catalog.methods, m.name)?.params ?? {};
    if (!Object.values(specs).some((s) => s.layerNames)) return;
    const item = methodsNode?.kind === "seq" ? methodsNode.items.find((n) => n.line === methodLines[i]) : undefined;
    for (const arch of archs) {
      const names = catalogEntry(c.catalog.archs, arch)?.layerNames?.();
      if (names === undefined) continue;
      for (const { param, problem } of unknownLayerNames(m.name, specs, m.params, arch, names)) {
        // Point at the value where it was written: the entry's own key, else the method_params block that filled it in.
        const own = entryIn(item, param);
        const grid = own ? undefined : entryIn(entryIn(top.get("method_params"), m.name)?.value, param);
        const where = own ?? grid;
        const key = own ? `methods[${i}].${param}` : grid ? `method_params.${m.name}.${param}` : `methods[${i}]`;
        c.error(where?.keyLine ?? methodLines[i] ?? null, key, problem);
      }
    }
  });
}
