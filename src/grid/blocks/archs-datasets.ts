/** The archs and datasets axes, and whether every arch of the grid can take every dataset of it. */
import { dirname, resolve } from "node:path";
import { catalogEntry, join, type Checker, type TopLevel } from "../checker.js";
import type { LNode } from "../parse.js";

function readNameAxis(c: Checker, top: TopLevel, key: "archs" | "datasets", what: string, valid: string[]): string[] | undefined {
  const node = top.get(key);
  if (node === undefined) {
    top.missing(key, `a list of ${what} names, valid: ${valid.join(", ")}`);
    return undefined;
  }
  const items = c.distinctList(node, key, `${what} names`, (item, p) => c.choice(item, p, what, valid), {
    id: (name) => name,
    duplicate: (name, first) => `duplicate ${what} "${name}" (same as ${key}[${first}])`,
  });
  return items?.map((x) => x.value);
}

/**
 * The archs axis: built-in names, or `{layers_model: path}` (a tfjs LayersModel's model.json, relative to the grid
 * file), which the catalog names by its content. `files` receives each imported name's absolute path.
 */
export function readArchs(c: Checker, top: TopLevel, files: Record<string, string> = {}): string[] | undefined {
  const node = top.get("archs");
  const valid = Object.keys(c.catalog.archs);
  if (node === undefined) {
    top.missing("archs", `a list of arch names, valid: ${valid.join(", ")}, or {layers_model: path/to/model.json}`);
    return undefined;
  }
  const read = (item: LNode, p: string): string | undefined => {
    if (item.kind !== "map") return c.choice(item, p, "arch", valid);
    const m = c.map(item, p, ["layers_model"], { what: "an arch name or a mapping {layers_model: path/to/model.json}" });
    const e = m?.get("layers_model");
    if (m === undefined) return undefined;
    if (e === undefined) {
      c.missing(item.line, p, "layers_model", " (the path of a tfjs LayersModel's model.json, relative to the grid file)");
      return undefined;
    }
    const written = c.string(e.value, join(p, "layers_model"), { nonEmpty: true, what: "the path of a model.json" });
    if (written === undefined) return undefined;
    if (!c.catalog.layersModelName) {
      c.error(e.value.line, join(p, "layers_model"), "this program reads no LayersModel files");
      return undefined;
    }
    const file = resolve(dirname(c.file), written);
    const named = c.catalog.layersModelName(file);
    if ("error" in named) {
      c.error(e.value.line, join(p, "layers_model"), named.error);
      return undefined;
    }
    files[named.name] = file;
    return named.name;
  };
  const items = c.distinctList(node, "archs", "arch names", read, {
    id: (name) => name,
    duplicate: (name, first) => `duplicate arch "${name}" (same as archs[${first}])`,
  });
  return items?.map((x) => x.value);
}

export function readDatasets(c: Checker, top: TopLevel): string[] | undefined {
  return readNameAxis(c, top, "datasets", "dataset", Object.keys(c.catalog.datasets));
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(", ")}]`;
}

/**
 * Input shape and class count of each arch against each dataset. Checked for every pair of known names, even when
 * another entry of an axis is bad, so that one run reports all mismatches.
 */
export function checkArchDatasetPairs(c: Checker, top: TopLevel): void {
  const archsNode = top.get("archs");
  const datasetsNode = top.get("datasets");
  if (archsNode?.kind !== "seq" || datasetsNode?.kind !== "seq") return;
  archsNode.items.forEach((an, ai) => {
    if (an.kind !== "scalar" || typeof an.value !== "string") return;
    const arch = catalogEntry(c.catalog.archs, an.value);
    if (arch === undefined) return;
    datasetsNode.items.forEach((dn, di) => {
      if (dn.kind !== "scalar" || typeof dn.value !== "string") return;
      const ds = catalogEntry(c.catalog.datasets, dn.value);
      if (ds === undefined) return;
      const against = `dataset "${dn.value}" (datasets[${di}])`;
      if (arch.inputShape !== null && shapeText(arch.inputShape) !== shapeText(ds.inputShape)) {
        c.error(an.line, `archs[${ai}]`, `arch "${an.value}" expects input shape ${shapeText(arch.inputShape)} but ${against} has input shape ${shapeText(ds.inputShape)}`);
      }
      if (arch.numClasses !== null && arch.numClasses !== ds.numClasses) {
        c.error(an.line, `archs[${ai}]`, `arch "${an.value}" has ${arch.numClasses} output classes but ${against} has ${ds.numClasses} classes`);
      }
    });
  });
}
