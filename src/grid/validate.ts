/**
 * Located YAML tree -> validated, fully normalized Grid. Every problem becomes a GridError that names the line, the
 * dotted key (YAML spelling, e.g. `pretrain.batch_size`, `methods[2].scope`), the bad value and what would be valid.
 * Validation keeps going after an error wherever the rest of the file can still be read, so one run shows them all.
 */
import { acceptedUnits } from "../metrics/units.js";
import { METRICS, METRIC_NAMES } from "../metrics/names.js";
import { canonicalJson } from "../plan/canonical.js";
import { DEFAULT_DATA, DEFAULT_EVAL, DEFAULT_FINETUNE, DEFAULT_PRETRAIN, DEFAULT_PRUNABLE } from "./defaults.js";
import { methodLabel } from "./label.js";
import { describe, type LEntry, type LNode } from "./parse.js";
import { didYouMean, unknownNameMessage } from "./suggest.js";
import {
  GridError,
  type Catalog,
  type DataConfig,
  type EvalConfig,
  type Grid,
  type HyperParamSpec,
  type HyperValue,
  type MethodChoice,
  type PrunablePolicy,
  type PruneTarget,
  type ReferenceRow,
  type TrainConfig,
} from "./types.js";

export const TOP_LEVEL_KEYS = [
  "name",
  "description",
  "methods",
  "archs",
  "datasets",
  "sparsities",
  "compressions",
  "seeds",
  "pretrain",
  "finetune",
  "data",
  "prunable",
  "eval",
  "method_params",
  "reference",
] as const;

const NAME_PATTERN = /^[A-Za-z0-9_-]+$/;

interface NumberSpec {
  integer?: boolean;
  min?: number;
  minExclusive?: boolean;
  max?: number;
  maxExclusive?: boolean;
  /** Leading words of the "expected ..." text, e.g. "a sparsity"; default "a number" / "an integer". */
  noun?: string;
  /** Appended after the range, e.g. " (fraction of prunable weights removed)". */
  hint?: string;
}

function rangeText(s: NumberSpec): string {
  const noun = s.noun ?? (s.integer ? "an integer" : "a number");
  let range = "";
  if (s.min !== undefined && s.max !== undefined) {
    range = ` in ${s.minExclusive ? "(" : "["}${s.min}, ${s.max}${s.maxExclusive ? ")" : "]"}`;
  } else if (s.min !== undefined) {
    range = ` ${s.minExclusive ? ">" : ">="} ${s.min}`;
  } else if (s.max !== undefined) {
    range = ` ${s.maxExclusive ? "<" : "<="} ${s.max}`;
  }
  return `${noun}${range}${s.hint ?? ""}`;
}

function quotedNumberHint(node: LNode): string {
  return node.kind === "scalar" && typeof node.value === "string" && node.value.trim() !== "" && Number.isFinite(Number(node.value))
    ? " (a quoted string; remove the quotes)"
    : "";
}

/** Where things sit in the file, for checks made after validation (an unreachable compression) to point at. */
export interface GridLines {
  /** Line of each entry of grid.targets, in the same order. */
  targets: number[];
}

type Reader<T> = (node: LNode, path: string) => T | undefined;

class Checker {
  readonly errors: GridError[] = [];
  constructor(
    readonly file: string,
    readonly catalog: Catalog,
  ) {}

  error(line: number | null, key: string, problem: string): void {
    this.errors.push(new GridError(this.file, line, key, problem));
  }

  /**
   * A mapping whose keys must all be in `allowed`. Unknown keys are reported (with a suggestion) and dropped.
   * With `nullAsEmpty`, an empty value (`pretrain:` with nothing under it) reads as an empty mapping.
   */
  map(node: LNode, path: string, allowed: readonly string[] | null, opts: { nullAsEmpty?: boolean; what?: string } = {}): Map<string, LEntry> | undefined {
    if (opts.nullAsEmpty && node.kind === "scalar" && node.value === null) return new Map();
    if (node.kind !== "map") {
      const keys = allowed && allowed.length > 0 ? ` with keys ${allowed.join(", ")}` : "";
      this.error(node.line, path, `expected ${opts.what ?? "a mapping"}${keys}, got ${describe(node)}`);
      return undefined;
    }
    const out = new Map<string, LEntry>();
    for (const e of node.entries) {
      if (allowed !== null && !allowed.includes(e.key)) {
        this.error(e.keyLine, join(path, e.key), unknownNameMessage("key", e.key, allowed));
        continue;
      }
      out.set(e.key, e);
    }
    return out;
  }

  number(node: LNode, path: string, spec: NumberSpec = {}): number | undefined {
    const v = node.kind === "scalar" ? node.value : undefined;
    const ok =
      typeof v === "number" &&
      Number.isFinite(v) &&
      (!spec.integer || Number.isSafeInteger(v)) &&
      (spec.min === undefined || (spec.minExclusive ? v > spec.min : v >= spec.min)) &&
      (spec.max === undefined || (spec.maxExclusive ? v < spec.max : v <= spec.max));
    if (!ok) {
      this.error(node.line, path, `expected ${rangeText(spec)}, got ${describe(node)}${quotedNumberHint(node)}`);
      return undefined;
    }
    return v as number;
  }

  bool(node: LNode, path: string): boolean | undefined {
    if (node.kind === "scalar" && typeof node.value === "boolean") return node.value;
    this.error(node.line, path, `expected true or false, got ${describe(node)}`);
    return undefined;
  }

  string(node: LNode, path: string, opts: { nonEmpty?: boolean; what?: string } = {}): string | undefined {
    const what = opts.what ?? (opts.nonEmpty ? "a non-empty string" : "a string");
    if (node.kind === "scalar" && typeof node.value === "string") {
      if (opts.nonEmpty && node.value.trim() === "") {
        this.error(node.line, path, `expected ${what}, got an empty string`);
        return undefined;
      }
      return node.value;
    }
    this.error(node.line, path, `expected ${what}, got ${describe(node)}`);
    return undefined;
  }

  /** A string from a closed set; `what` names the thing in messages ("optimizer", "method"). */
  choice<T extends string>(node: LNode, path: string, what: string, choices: readonly T[]): T | undefined {
    if (node.kind === "scalar" && typeof node.value === "string") {
      if ((choices as readonly string[]).includes(node.value)) return node.value as T;
      this.error(node.line, path, unknownNameMessage(what, node.value, choices));
      return undefined;
    }
    this.error(node.line, path, `expected a ${what} name (one of ${choices.join(", ") || "(none)"}), got ${describe(node)}`);
    return undefined;
  }

  /** A non-empty list. */
  list(node: LNode, path: string, what: string): LNode[] | undefined {
    if (node.kind !== "seq") {
      const hint = node.kind === "scalar" && node.value !== null ? ` (write [${node.raw}] for a single value)` : "";
      this.error(node.line, path, `expected a non-empty list of ${what}, got ${describe(node)}${hint}`);
      return undefined;
    }
    if (node.items.length === 0) {
      this.error(node.line, path, `expected a non-empty list of ${what}, got an empty list`);
      return undefined;
    }
    return node.items;
  }

  /** Read a settings block into a copy of `defaults`; fields map YAML key -> [TS field, reader]. */
  block<T extends object>(
    node: LNode | undefined,
    path: string,
    defaults: Readonly<T>,
    fields: Record<string, [keyof T, Reader<T[keyof T]>]>,
  ): T {
    const out = { ...defaults } as T;
    if (node === undefined) return out;
    const m = this.map(node, path, Object.keys(fields), { nullAsEmpty: true });
    if (m === undefined) return out;
    for (const [yamlKey, e] of m) {
      const [field, read] = fields[yamlKey];
      const v = read(e.value, join(path, yamlKey));
      if (v !== undefined) out[field] = v;
    }
    return out;
  }

  /** Check one hyperparameter value against its spec. */
  hyper(node: LNode, path: string, param: string, spec: HyperParamSpec): HyperValue | undefined {
    switch (spec.type) {
      case "number":
        return this.number(node, path, { min: spec.min, max: spec.max });
      case "integer":
        return this.number(node, path, { integer: true, min: spec.min, max: spec.max });
      case "boolean":
        return this.bool(node, path);
      case "string":
        if (spec.choices && spec.choices.length > 0) return this.choice(node, path, param, spec.choices);
        return this.string(node, path);
      default:
        this.error(node.line, path, `hyperparameter ${param} has an unsupported type in the catalog`);
        return undefined;
    }
  }

  /**
   * Hyperparameters given in a mapping (a methods entry or a method_params block), checked against the method's
   * specs. Unknown names are errors. `skip` names keys that are not hyperparameters (the entry's own `name`).
   */
  hyperParams(method: string, entries: LEntry[], path: string, skip: string | null): Record<string, HyperValue> | undefined {
    const specs = this.catalog.methods[method]?.params ?? {};
    const names = Object.keys(specs);
    const out: Record<string, HyperValue> = {};
    let ok = true;
    for (const e of entries) {
      if (e.key === skip) continue;
      const p = join(path, e.key);
      const spec = specs[e.key];
      if (spec === undefined) {
        ok = false;
        this.error(
          e.keyLine,
          p,
          names.length === 0
            ? `method "${method}" has no hyperparameters, got "${e.key}"`
            : unknownNameMessage("hyperparameter", e.key, names, ` for method "${method}"`),
        );
        continue;
      }
      const v = this.hyper(e.value, p, e.key, spec);
      if (v === undefined) ok = false;
      else out[e.key] = v;
    }
    return ok ? out : undefined;
  }
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function trainFields(c: Checker, minEpochs: number): Record<string, [keyof TrainConfig, Reader<TrainConfig[keyof TrainConfig]>]> {
  return {
    epochs: ["epochs", (n, p) => c.number(n, p, { integer: true, min: minEpochs })],
    batch_size: ["batchSize", (n, p) => c.number(n, p, { integer: true, min: 1 })],
    optimizer: ["optimizer", (n, p) => c.choice(n, p, "optimizer", ["sgd", "adam"] as const)],
    lr: ["lr", (n, p) => c.number(n, p, { min: 0, minExclusive: true })],
    momentum: ["momentum", (n, p) => c.number(n, p, { min: 0, max: 1, maxExclusive: true })],
    weight_decay: ["weightDecay", (n, p) => c.number(n, p, { min: 0 })],
    schedule: ["schedule", (n, p) => c.choice(n, p, "schedule", ["constant", "step", "cosine"] as const)],
    step_epochs: ["stepEpochs", (n, p) => c.number(n, p, { integer: true, min: 1 })],
    gamma: ["gamma", (n, p) => c.number(n, p, { min: 0, minExclusive: true })],
  };
}

const SPARSITY_SPEC: NumberSpec = {
  noun: "a sparsity",
  min: 0,
  max: 1,
  maxExclusive: true,
  hint: " (the fraction of prunable weights removed)",
};
const COMPRESSION_SPEC: NumberSpec = { noun: "a compression ratio", min: 1, hint: " (total params / nonzero params)" };

function shapeText(s: readonly number[]): string {
  return `[${s.join(", ")}]`;
}

/** Validate a located document against the grid schema and the catalog. */
export function validateGrid(root: LNode | null, file: string, catalog: Catalog): { grid: Grid | null; errors: GridError[]; lines?: GridLines } {
  const c = new Checker(file, catalog);
  if (root === null) {
    c.error(1, "", `the grid file is empty; expected a mapping with keys ${TOP_LEVEL_KEYS.join(", ")}`);
    return { grid: null, errors: c.errors };
  }
  const top = c.map(root, "", TOP_LEVEL_KEYS, { what: "a mapping (the grid)" });
  if (top === undefined) return { grid: null, errors: c.errors };
  const rootLine = root.line;
  const get = (k: string): LNode | undefined => top.get(k)?.value;
  const missing = (k: string, what: string): void => c.error(rootLine, k, `missing required key "${k}" (${what})`);

  // --- name, description
  let name: string | undefined;
  const nameNode = get("name");
  if (nameNode === undefined) missing("name", "letters, digits, '-', '_'");
  else {
    const n = nameNode.kind === "scalar" && typeof nameNode.value === "number" ? String(nameNode.value) : undefined;
    const s = n ?? c.string(nameNode, "name", { nonEmpty: true });
    if (s !== undefined) {
      if (NAME_PATTERN.test(s)) name = s;
      else c.error(nameNode.line, "name", `invalid grid name ${JSON.stringify(s)}; use only letters, digits, '-' and '_'`);
    }
  }
  let description = "";
  const descNode = get("description");
  if (descNode !== undefined && !(descNode.kind === "scalar" && descNode.value === null)) {
    description = c.string(descNode, "description") ?? "";
  }

  // --- method_params (grid-wide hyperparameters), read before the methods axis that they feed
  const methodNames = Object.keys(catalog.methods);
  const gridParams: Record<string, Record<string, HyperValue>> = {};
  const mpNode = get("method_params");
  let methodParamsOk = true;
  if (mpNode !== undefined) {
    const mp = c.map(mpNode, "method_params", null, { nullAsEmpty: true, what: "a mapping from method name to hyperparameters" });
    if (mp === undefined) methodParamsOk = false;
    else {
      for (const [m, e] of mp) {
        const p = join("method_params", m);
        if (!(m in catalog.methods)) {
          c.error(e.keyLine, p, unknownNameMessage("method", m, methodNames));
          methodParamsOk = false;
          continue;
        }
        const inner = c.map(e.value, p, null, { nullAsEmpty: true, what: `a mapping of ${m} hyperparameters` });
        if (inner === undefined) {
          methodParamsOk = false;
          continue;
        }
        const params = c.hyperParams(m, [...inner.values()], p, null);
        if (params === undefined) methodParamsOk = false;
        else gridParams[m] = params;
      }
    }
  }

  // --- methods axis
  const methods: MethodChoice[] = [];
  let methodsOk = true;
  const methodsNode = get("methods");
  if (methodsNode === undefined) {
    missing("methods", `a list of method names, valid: ${methodNames.join(", ")}`);
    methodsOk = false;
  } else {
    const items = c.list(methodsNode, "methods", "methods (a name, or {name: ..., <hyperparameter>: ...})");
    if (items === undefined) methodsOk = false;
    else {
      const seen = new Map<string, number>();
      items.forEach((item, i) => {
        const p = `methods[${i}]`;
        let mname: string | undefined;
        let explicit: Record<string, HyperValue> | undefined = {};
        if (item.kind === "scalar" && typeof item.value === "string") {
          mname = c.choice(item, p, "method", methodNames);
        } else if (item.kind === "map") {
          const nameEntry = item.entries.find((e) => e.key === "name");
          if (nameEntry === undefined) {
            c.error(item.line, join(p, "name"), `missing required key "name" in method entry; valid methods: ${methodNames.join(", ")}`);
          } else {
            mname = c.choice(nameEntry.value, join(p, "name"), "method", methodNames);
          }
          explicit = mname !== undefined ? c.hyperParams(mname, item.entries, p, "name") : undefined;
        } else {
          c.error(item.line, p, `expected a method name or a mapping {name: ..., <hyperparameter>: ...}, got ${describe(item)}`);
        }
        if (mname === undefined || explicit === undefined) {
          methodsOk = false;
          return;
        }
        const specs = catalog.methods[mname].params;
        const params: Record<string, HyperValue> = {};
        for (const [k, spec] of Object.entries(specs)) params[k] = spec.default;
        Object.assign(params, gridParams[mname] ?? {}, explicit);
        const choice: MethodChoice = { name: mname, params };
        const key = canonicalJson(choice);
        const first = seen.get(key);
        if (first !== undefined) {
          c.error(
            item.line,
            p,
            `duplicate method ${methodLabel(choice, catalog)}: same as methods[${first}] once defaults and method_params are filled in`,
          );
          methodsOk = false;
          return;
        }
        seen.set(key, i);
        methods.push(choice);
      });
    }
  }

  // --- archs, datasets
  const nameAxis = (key: "archs" | "datasets", what: string, valid: string[]): { names: string[]; nodes: LNode[] } | undefined => {
    const node = get(key);
    if (node === undefined) {
      missing(key, `a list of ${what} names, valid: ${valid.join(", ")}`);
      return undefined;
    }
    const items = c.list(node, key, `${what} names`);
    if (items === undefined) return undefined;
    const names: string[] = [];
    const nodes: LNode[] = [];
    const seen = new Map<string, number>();
    let ok = true;
    items.forEach((item, i) => {
      const p = `${key}[${i}]`;
      const v = c.choice(item, p, what, valid);
      if (v === undefined) {
        ok = false;
        return;
      }
      const first = seen.get(v);
      if (first !== undefined) {
        c.error(item.line, p, `duplicate ${what} "${v}" (same as ${key}[${first}])`);
        ok = false;
        return;
      }
      seen.set(v, i);
      names.push(v);
      nodes.push(item);
    });
    return ok ? { names, nodes } : undefined;
  };
  const archs = nameAxis("archs", "arch", Object.keys(catalog.archs));
  const datasets = nameAxis("datasets", "dataset", Object.keys(catalog.datasets));

  // arch/dataset compatibility (checked per valid pair, even when another entry of the axis was bad)
  const archsNode = get("archs");
  const datasetsNode = get("datasets");
  if (archsNode?.kind === "seq" && datasetsNode?.kind === "seq") {
    archsNode.items.forEach((an, ai) => {
      if (an.kind !== "scalar" || typeof an.value !== "string") return;
      const arch = catalog.archs[an.value];
      if (arch === undefined) return;
      datasetsNode.items.forEach((dn, di) => {
        if (dn.kind !== "scalar" || typeof dn.value !== "string") return;
        const ds = catalog.datasets[dn.value];
        if (ds === undefined) return;
        if (arch.inputShape !== null && shapeText(arch.inputShape) !== shapeText(ds.inputShape)) {
          c.error(
            an.line,
            `archs[${ai}]`,
            `arch "${an.value}" expects input shape ${shapeText(arch.inputShape)} but dataset "${dn.value}" (datasets[${di}]) has input shape ${shapeText(ds.inputShape)}`,
          );
        }
        if (arch.numClasses !== null && arch.numClasses !== ds.numClasses) {
          c.error(
            an.line,
            `archs[${ai}]`,
            `arch "${an.value}" has ${arch.numClasses} output classes but dataset "${dn.value}" (datasets[${di}]) has ${ds.numClasses} classes`,
          );
        }
      });
    });
  }

  // --- targets
  const targets: PruneTarget[] = [];
  const targetLines: number[] = [];
  let targetsOk = true;
  const spNode = top.get("sparsities");
  const crNode = top.get("compressions");
  if (spNode !== undefined && crNode !== undefined) {
    const later = spNode.keyLine >= crNode.keyLine ? spNode : crNode;
    c.error(later.keyLine, later.key, `give exactly one of sparsities / compressions, not both (the other is on line ${later === spNode ? crNode.keyLine : spNode.keyLine})`);
    targetsOk = false;
  } else if (spNode === undefined && crNode === undefined) {
    c.error(rootLine, "sparsities", `missing pruning targets: give exactly one of sparsities (each in [0, 1)) or compressions (each >= 1)`);
    targetsOk = false;
  }
  for (const [entry, kind, spec] of [
    [spNode, "sparsity", SPARSITY_SPEC],
    [crNode, "compression", COMPRESSION_SPEC],
  ] as const) {
    if (entry === undefined) continue;
    const items = c.list(entry.value, entry.key, kind === "sparsity" ? "sparsities in [0, 1)" : "compression ratios >= 1");
    if (items === undefined) {
      targetsOk = false;
      continue;
    }
    const seen = new Map<number, number>();
    items.forEach((item, i) => {
      const p = `${entry.key}[${i}]`;
      const v = c.number(item, p, spec);
      if (v === undefined) {
        targetsOk = false;
        return;
      }
      const first = seen.get(v);
      if (first !== undefined) {
        c.error(item.line, p, `duplicate ${kind} ${describe(item)} (same as ${entry.key}[${first}])`);
        targetsOk = false;
        return;
      }
      seen.set(v, i);
      targets.push({ kind, value: v });
      targetLines.push(item.line);
    });
  }

  // --- seeds
  const seeds: number[] = [];
  let seedsOk = true;
  const seedsNode = get("seeds");
  if (seedsNode === undefined) {
    missing("seeds", "a list of non-negative integers, e.g. [0, 1, 2]");
    seedsOk = false;
  } else {
    const items = c.list(seedsNode, "seeds", "seeds (non-negative integers)");
    if (items === undefined) seedsOk = false;
    else {
      const seen = new Map<number, number>();
      items.forEach((item, i) => {
        const p = `seeds[${i}]`;
        const v = c.number(item, p, { integer: true, min: 0, noun: "an integer seed" });
        if (v === undefined) {
          seedsOk = false;
          return;
        }
        const first = seen.get(v);
        if (first !== undefined) {
          c.error(item.line, p, `duplicate seed ${v} (same as seeds[${first}])`);
          seedsOk = false;
          return;
        }
        seen.set(v, i);
        seeds.push(v);
      });
    }
  }

  // --- settings
  const pretrain = c.block<TrainConfig>(get("pretrain"), "pretrain", DEFAULT_PRETRAIN, trainFields(c, 1));
  const finetune = c.block<TrainConfig>(get("finetune"), "finetune", DEFAULT_FINETUNE, trainFields(c, 0));
  const subset: Reader<number | null> = (n, p) =>
    n.kind === "scalar" && n.value === null ? null : c.number(n, p, { integer: true, min: 1, noun: "null or an integer", hint: " (number of images)" });
  const data = c.block<DataConfig>(get("data"), "data", DEFAULT_DATA, {
    val_fraction: ["valFraction", (n, p) => c.number(n, p, { min: 0, max: 0.5 })],
    train_subset: ["trainSubset", subset],
    test_subset: ["testSubset", subset],
  });
  if (datasets !== undefined) checkSubsets(c, get("data"), data, datasets.names);
  const boolean: Reader<boolean> = (n, p) => c.bool(n, p);
  const prunable = c.block<PrunablePolicy>(get("prunable"), "prunable", DEFAULT_PRUNABLE, {
    biases: ["biases", boolean],
    batch_norm: ["batchNorm", boolean],
    classifier: ["classifier", boolean],
    first_layer: ["firstLayer", boolean],
  });
  const evalConfig = c.block<EvalConfig>(get("eval"), "eval", DEFAULT_EVAL, {
    latency_batch: ["latencyBatch", (n, p) => c.number(n, p, { integer: true, min: 1 })],
    latency_repeats: ["latencyRepeats", (n, p) => c.number(n, p, { integer: true, min: 1 })],
  });

  // --- reference rows
  const reference = readReference(c, get("reference"));

  const ok =
    c.errors.length === 0 &&
    name !== undefined &&
    methodsOk &&
    methodParamsOk &&
    archs !== undefined &&
    datasets !== undefined &&
    targetsOk &&
    seedsOk &&
    reference !== undefined;
  if (!ok) return { grid: null, errors: c.errors };
  return {
    grid: {
      name: name!,
      description,
      file,
      methods,
      archs: archs!.names,
      datasets: datasets!.names,
      targets,
      seeds,
      pretrain,
      finetune,
      data,
      prunable,
      eval: evalConfig,
      reference: reference!,
    },
    errors: [],
    lines: { targets: targetLines },
  };
}

/**
 * Published rows may name what we do not run (SNIP, "iterative magnitude (Han 2015)", LeNet-300-100): those names are
 * kept as the paper's own. A name a typo away from one of ours is refused instead, or the row would silently match
 * nothing in the report.
 */
const REFERENCE_NAME_RULE = "a paper's own name is kept only when it is not a near miss of one of ours";

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

/**
 * Data subsets smaller than this many images per class say nothing: a classifier trained on fewer than 10 examples of a
 * class is not worth pruning, and a top-1 measured on fewer moves in steps of more than one percentage point per
 * image (100 test images for 10 classes: 1 % per image).
 */
export const MIN_SUBSET_PER_CLASS = 10;

/**
 * train_subset / test_subset within what every dataset of the grid can give: at least MIN_SUBSET_PER_CLASS per class,
 * at most the training images left once val_fraction is held out (data.ts takes the subset after that) or the test
 * split. A larger value would be clamped without a word.
 */
function checkSubsets(c: Checker, dataNode: LNode | undefined, data: DataConfig, datasetNames: string[]): void {
  if (dataNode?.kind !== "map") return;
  for (const [key, value, split] of [
    ["train_subset", data.trainSubset, "train"],
    ["test_subset", data.testSubset, "test"],
  ] as const) {
    const entry = dataNode.entries.find((e) => e.key === key);
    if (value === null || entry === undefined) continue;
    let min = 0;
    let minWhy = "";
    let max = Infinity;
    let maxWhy = "";
    for (const name of datasetNames) {
      const ds = c.catalog.datasets[name];
      if (MIN_SUBSET_PER_CLASS * ds.numClasses > min) {
        min = MIN_SUBSET_PER_CLASS * ds.numClasses;
        minWhy = `at least ${MIN_SUBSET_PER_CLASS} images per class (${min} for the ${ds.numClasses} classes of "${name}")`;
      }
      if (ds.splitSizes === undefined) continue;
      const total = ds.splitSizes[split];
      const available = split === "train" ? total - Math.round(total * data.valFraction) : total;
      if (available < max) {
        max = available;
        maxWhy =
          split === "train"
            ? `dataset "${name}" has ${available} training images once val_fraction ${data.valFraction} holds out ${total - available} of its ${total} for validation`
            : `dataset "${name}" has ${total} test images`;
      }
    }
    const valid = `valid: null (all images) or an integer in [${min}, ${Number.isFinite(max) ? max : "∞"}]`;
    if (value < min) c.error(entry.value.line, `data.${key}`, `${describe(entry.value)} is too few images: ${minWhy}; ${valid}`);
    else if (value > max) c.error(entry.value.line, `data.${key}`, `${describe(entry.value)} is more images than there are: ${maxWhy}; ${valid}`);
  }
}

const REFERENCE_KEYS = ["paper", "source", "dataset", "arch", "method", "sparsity", "compression", "metrics", "note"];

function readReference(c: Checker, node: LNode | undefined): ReferenceRow[] | undefined {
  if (node === undefined || (node.kind === "scalar" && node.value === null)) return [];
  if (node.kind !== "seq") {
    c.error(node.line, "reference", `expected a list of reference rows (mappings with keys ${REFERENCE_KEYS.join(", ")}), got ${describe(node)}`);
    return undefined;
  }
  const rows: ReferenceRow[] = [];
  let ok = true;
  node.items.forEach((item, i) => {
    const p = `reference[${i}]`;
    const m = c.map(item, p, REFERENCE_KEYS, { what: "a reference row (a mapping)" });
    if (m === undefined) {
      ok = false;
      return;
    }
    const before = c.errors.length;
    const text = (k: string): string | undefined => {
      const e = m.get(k);
      if (e === undefined) {
        c.error(item.line, join(p, k), `missing required key "${k}" in reference row`);
        return undefined;
      }
      return c.string(e.value, join(p, k), { nonEmpty: true });
    };
    const paper = text("paper");
    const source = text("source");
    const dataset = text("dataset");
    const arch = text("arch");
    const method = text("method");
    const notANearMiss = (k: string, what: string, value: string | undefined, valid: string[]) => {
      if (value === undefined || valid.some((v) => v.toLowerCase() === value.trim().toLowerCase())) return;
      if (didYouMean(value.trim(), valid) === null) return;
      c.error(m.get(k)!.value.line, join(p, k), `${unknownNameMessage(what, value, valid)} (${REFERENCE_NAME_RULE})`);
    };
    notANearMiss("dataset", "dataset", dataset, Object.keys(c.catalog.datasets));
    notANearMiss("arch", "arch", arch, Object.keys(c.catalog.archs));
    notANearMiss("method", "method", method, [...Object.keys(c.catalog.methods), "dense"]);
    let note: string | undefined;
    const noteEntry = m.get("note");
    if (noteEntry !== undefined && !(noteEntry.value.kind === "scalar" && noteEntry.value.value === null)) {
      note = c.string(noteEntry.value, join(p, "note"));
    }
    let target: PruneTarget | undefined;
    const sp = m.get("sparsity");
    const cr = m.get("compression");
    if (sp !== undefined && cr !== undefined) {
      const later = sp.keyLine >= cr.keyLine ? sp : cr;
      c.error(later.keyLine, join(p, later.key), "give exactly one of sparsity / compression, not both");
    } else if (sp === undefined && cr === undefined) {
      c.error(item.line, join(p, "sparsity"), "missing target: give exactly one of sparsity (in [0, 1)) or compression (>= 1)");
    } else if (sp !== undefined) {
      const v = c.number(sp.value, join(p, "sparsity"), SPARSITY_SPEC);
      if (v !== undefined) target = { kind: "sparsity", value: v };
    } else if (cr !== undefined) {
      const v = c.number(cr.value, join(p, "compression"), COMPRESSION_SPEC);
      if (v !== undefined) target = { kind: "compression", value: v };
    }
    const metrics: Record<string, { value: number; unit: string }> = {};
    const me = m.get("metrics");
    if (me === undefined) c.error(item.line, join(p, "metrics"), `missing required key "metrics" in reference row`);
    else {
      const mm = c.map(me.value, join(p, "metrics"), null, { what: "a mapping from metric name to {value, unit}" });
      if (mm !== undefined) {
        if (mm.size === 0) c.error(me.value.line, join(p, "metrics"), "expected at least one metric");
        for (const [metric, e] of mm) {
          const mp = join(join(p, "metrics"), metric);
          const def = METRICS.get(metric);
          if (def === undefined) {
            c.error(e.keyLine, mp, unknownNameMessage("metric", metric, METRIC_NAMES));
            continue;
          }
          const vu = c.map(e.value, mp, ["value", "unit"], { what: "a mapping" });
          if (vu === undefined) continue;
          const ve = vu.get("value");
          const ue = vu.get("unit");
          if (ve === undefined) c.error(e.value.line, join(mp, "value"), `missing required key "value"`);
          if (ue === undefined) c.error(e.value.line, join(mp, "unit"), `missing required key "unit" (${metric} is in ${def.unit})`);
          const value = ve === undefined ? undefined : c.number(ve.value, join(mp, "value"));
          const unit = ue === undefined ? undefined : c.string(ue.value, join(mp, "unit"), { nonEmpty: true });
          if (unit !== undefined && !acceptedUnits(metric).includes(unit)) {
            c.error(ue!.value.line, join(mp, "unit"), `unit "${unit}" is not one ${metric} can be given in; valid: ${acceptedUnits(metric).join(", ")}`);
            continue;
          }
          if (value !== undefined && unit !== undefined) {
            const problem = referenceValueProblem(metric, def.unit, value, unit, describe(ve!.value));
            if (problem !== null) {
              c.error(ve!.value.line, join(mp, "value"), problem);
              continue;
            }
            metrics[metric] = { value, unit };
          }
        }
      }
    }
    if (c.errors.length !== before || paper === undefined || source === undefined || dataset === undefined || arch === undefined || method === undefined || target === undefined) {
      ok = false;
      return;
    }
    const row: ReferenceRow = { paper, source, dataset, arch, method, target, metrics };
    if (note !== undefined) row.note = note;
    rows.push(row);
  });
  return ok ? rows : undefined;
}
