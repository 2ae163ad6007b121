/** The methods axis: each entry a method name, or `{name: ..., <hyperparameter>: ...}`. */
import { canonicalJson } from "../../core/canonical.js";
import { join, type Checker, type TopLevel } from "../checker.js";
import { readHyperParams } from "./hyper-params.js";
import { methodLabel } from "../label.js";
import { describe, type LNode } from "../parse.js";
import type { HyperValue, MethodChoice } from "../../core/types.js";

type GridParams = Record<string, Record<string, HyperValue>>;

/** One entry, with every hyperparameter filled in: catalog default, then method_params, then the entry's own. */
function readMethodEntry(c: Checker, item: LNode, p: string, gridParams: GridParams): MethodChoice | undefined {
  const methodNames = Object.keys(c.catalog.methods);
  let name: string | undefined;
  let explicit: Record<string, HyperValue> | undefined = {};
  if (item.kind === "scalar" && typeof item.value === "string") {
    name = c.choice(item, p, "method", methodNames);
  } else if (item.kind === "map") {
    const nameEntry = item.entries.find((e) => e.key === "name");
    if (nameEntry === undefined) c.missing(item.line, join(p, "name"), "name", ` in method entry; valid methods: ${methodNames.join(", ")}`);
    else name = c.choice(nameEntry.value, join(p, "name"), "method", methodNames);
    explicit = name !== undefined ? readHyperParams(c, name, item.entries, p, "name") : undefined;
  } else {
    c.error(item.line, p, `expected a method name or a mapping {name: ..., <hyperparameter>: ...}, got ${describe(item)}`);
  }
  if (name === undefined || explicit === undefined) return undefined;
  const params: Record<string, HyperValue> = {};
  for (const [k, spec] of Object.entries(c.catalog.methods[name].params)) params[k] = spec.default;
  Object.assign(params, gridParams[name] ?? {}, explicit);
  const problem = c.catalog.methods[name].check?.(params);
  if (problem) {
    c.error(item.line, p, `method ${name}: ${problem}`);
    return undefined;
  }
  return { name, params };
}

/**
 * Two entries are the same method when they are equal once filled in (`random` and `{name: random, scope: layer}`):
 * they would be the same runs twice.
 */
/** The methods axis, with the line of each entry (checks made after expansion point at the entry they concern). */
export function readMethods(c: Checker, top: TopLevel, gridParams: GridParams): { methods: MethodChoice[]; lines: number[] } | undefined {
  const node = top.get("methods");
  if (node === undefined) {
    top.missing("methods", `a list of method names, valid: ${Object.keys(c.catalog.methods).join(", ")}`);
    return undefined;
  }
  const items = c.distinctList(node, "methods", "methods (a name, or {name: ..., <hyperparameter>: ...})", (item, p) => readMethodEntry(c, item, p, gridParams), {
    id: (choice) => canonicalJson(choice),
    duplicate: (choice, first) => `duplicate method ${methodLabel(choice, c.catalog)}: same as methods[${first}] once defaults and method_params are filled in`,
  });
  return items && { methods: items.map((x) => x.value), lines: items.map((x) => x.node.line) };
}
