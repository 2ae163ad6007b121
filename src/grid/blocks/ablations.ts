/**
 * The ablations axis: sanity checks that modify any method's masks (Frankle et al. 2021; Su et al. 2020). An ablation
 * is applied once, after the method's last pruning step before training, so it needs a method whose masks are then
 * fixed (one-shot, at-init); a method that keeps changing its masks while training (gradual, dynamic) or between
 * retraining rounds (iterative) would undo it, and the combination is refused here rather than run as something else.
 */
import { DEFAULT_ABLATIONS } from "../defaults.js";
import type { Checker, TopLevel } from "../checker.js";
import { methodLabel } from "../label.js";
import { ABLATIONS, type AblationName, type MethodChoice } from "../../core/types.js";

/** Schedules whose masks are final before training starts: the ones an ablation of those masks means something for. */
const FIXED_MASK_SCHEDULES: readonly string[] = ["one-shot", "at-init"];

/** `methods`/`methodLines`: the methods axis as read (undefined when it had errors: then only the values are checked). */
export function readAblations(c: Checker, top: TopLevel, methods: MethodChoice[] | undefined, methodLines: number[] | undefined): AblationName[] | undefined {
  const node = top.get("ablations");
  if (node === undefined) return [...DEFAULT_ABLATIONS];
  const items = c.distinctList(node, "ablations", `ablations (${ABLATIONS.join(", ")})`, (item, p) => c.choice(item, p, "ablation", ABLATIONS), {
    id: (a) => a,
    duplicate: (a, first) => `duplicate ablation ${a} (same as ablations[${first}])`,
  });
  if (items === undefined) return undefined;
  let ok = true;
  items.forEach(({ value, node: item }, i) => {
    if (value === "none" || methods === undefined) return;
    const moving = methods.flatMap((m, j) => {
      const kind = c.catalog.methods[m.name]?.scheduleKind?.(m.params);
      return kind === undefined || FIXED_MASK_SCHEDULES.includes(kind) ? [] : [`${methodLabel(m, c.catalog)} (methods[${j}], line ${methodLines?.[j]}: ${kind})`];
    });
    if (moving.length === 0) return;
    c.error(item.line, `ablations[${i}]`,
      `ablation ${value} modifies the masks once, after pruning and before training, but these methods keep changing their masks: ` +
      `${moving.join(", ")}; ablations apply to one-shot and at-init methods: give those methods a grid of their own`);
    ok = false;
  });
  return ok ? items.map((x) => x.value) : undefined;
}
