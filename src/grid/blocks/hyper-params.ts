/** Method hyperparameters, checked against the catalog's specs: in a methods entry and in the `method_params` block. */
import { catalogEntry, join, type Checker, type TopLevel } from "../checker.js";
import type { LEntry, LNode } from "../parse.js";
import { unknownNameMessage } from "../suggest.js";
import type { HyperParamSpec, HyperValue } from "../../core/types.js";

function readHyperValue(c: Checker, node: LNode, path: string, param: string, spec: HyperParamSpec): HyperValue | undefined {
  switch (spec.type) {
    case "number":
      return c.number(node, path, { min: spec.min, max: spec.max });
    case "integer":
      return c.number(node, path, { integer: true, min: spec.min, max: spec.max });
    case "boolean":
      return c.bool(node, path);
    case "string":
      if (spec.choices && spec.choices.length > 0) return c.choice(node, path, param, spec.choices);
      return c.string(node, path);
    default:
      c.error(node.line, path, `hyperparameter ${param} has an unsupported type in the catalog`);
      return undefined;
  }
}

/**
 * Hyperparameters given in a mapping (a methods entry or a method_params block). Unknown names are errors. `skip` names
 * a key that is not a hyperparameter (the entry's own `name`).
 */
export function readHyperParams(c: Checker, method: string, entries: LEntry[], path: string, skip: string | null): Record<string, HyperValue> | undefined {
  const specs = catalogEntry(c.catalog.methods, method)?.params ?? {};
  const names = Object.keys(specs);
  const out: Record<string, HyperValue> = {};
  let ok = true;
  for (const e of entries) {
    if (e.key === skip) continue;
    const p = join(path, e.key);
    const spec = specs[e.key];
    if (spec === undefined) {
      ok = false;
      c.error(
        e.keyLine,
        p,
        names.length === 0
          ? `method "${method}" has no hyperparameters, got "${e.key}"`
          : unknownNameMessage("hyperparameter", e.key, names, ` for method "${method}"`),
      );
      continue;
    }
    const v = readHyperValue(c, e.value, p, e.key, spec);
    if (v === undefined) ok = false;
    else out[e.key] = v;
  }
  return ok ? out : undefined;
}

/**
 * Grid-wide hyperparameters per method, which the methods axis fills in under its entries' own. `params` keeps the
 * methods that were read even when another one is bad, so the methods axis is still checked against them.
 */
export function readMethodParams(c: Checker, top: TopLevel): { params: Record<string, Record<string, HyperValue>>; ok: boolean } {
  const node = top.get("method_params");
  const params: Record<string, Record<string, HyperValue>> = {};
  if (node === undefined) return { params, ok: true };
  const mp = c.map(node, "method_params", null, { nullAsEmpty: true, what: "a mapping from method name to hyperparameters" });
  if (mp === undefined) return { params, ok: false };
  let ok = true;
  for (const [m, e] of mp) {
    const p = join("method_params", m);
    if (!catalogEntry(c.catalog.methods, m)) {
      c.error(e.keyLine, p, unknownNameMessage("method", m, Object.keys(c.catalog.methods)));
      ok = false;
      continue;
    }
    const inner = c.map(e.value, p, null, { nullAsEmpty: true, what: `a mapping of ${m} hyperparameters` });
    const read = inner === undefined ? undefined : readHyperParams(c, m, [...inner.values()], p, null);
    if (read === undefined) ok = false;
    else params[m] = read;
  }
  return { params, ok };
}
