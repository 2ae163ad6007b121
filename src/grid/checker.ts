/**
 * Readers of the located YAML tree that every block of the grid shares. Each one reports a GridError naming the line,
 * the dotted key (YAML spelling, e.g. `pretrain.batch_size`, `methods[2].scope`), the bad value and what would be valid,
 * and returns undefined instead of throwing, so the caller can keep reading and one run shows every problem.
 */
import { describe, type LEntry, type LNode } from "./parse.js";
import { unknownNameMessage } from "./suggest.js";
import { GridError } from "./types.js";
import { type Catalog } from "../core/types.js";

export interface NumberSpec {
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

export type Reader<T> = (node: LNode, path: string) => T | undefined;

export function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** `key:` with nothing after it, which optional keys read as "not given". */
export function isNull(node: LNode): boolean {
  return node.kind === "scalar" && node.value === null;
}

/** The entry `key` of a settings block as written (for checks across its keys), or undefined when absent. */
export function entryIn(node: LNode | undefined, key: string): LEntry | undefined {
  return node?.kind === "map" ? node.entries.find((e) => e.key === key) : undefined;
}

/** How a list tells its items apart, and what it says about the second of two equal ones. */
export interface Distinct<T> {
  id: (value: T) => unknown;
  duplicate: (value: T, first: number, item: LNode) => string;
}

export class Checker {
  readonly errors: GridError[] = [];
  constructor(
    readonly file: string,
    readonly catalog: Catalog,
  ) {}

  error(line: number | null, key: string, problem: string): void {
    this.errors.push(new GridError(this.file, line, key, problem));
  }

  /** `detail` follows the quoted key: " (what it holds)" or " in <what>; valid ...". */
  missing(line: number, path: string, key: string, detail = ""): void {
    this.error(line, path, `missing required key "${key}"${detail}`);
  }

  /**
   * A mapping whose keys must all be in `allowed`. Unknown keys are reported (with a suggestion) and dropped.
   * With `nullAsEmpty`, an empty value (`pretrain:` with nothing under it) reads as an empty mapping.
   */
  map(node: LNode, path: string, allowed: readonly string[] | null, opts: { nullAsEmpty?: boolean; what?: string } = {}): Map<string, LEntry> | undefined {
    if (opts.nullAsEmpty && isNull(node)) return new Map();
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

  /**
   * A non-empty list of valid, pairwise distinct items, each with its node; undefined when any item is not. Every
   * item is still read after a bad one, so that all of them are reported.
   */
  distinctList<T>(node: LNode, path: string, what: string, read: Reader<T>, distinct: Distinct<T>): { value: T; node: LNode }[] | undefined {
    const items = this.list(node, path, what);
    if (items === undefined) return undefined;
    const out: { value: T; node: LNode }[] = [];
    const seen = new Map<unknown, number>();
    let ok = true;
    items.forEach((item, i) => {
      const p = `${path}[${i}]`;
      const value = read(item, p);
      if (value === undefined) {
        ok = false;
        return;
      }
      const id = distinct.id(value);
      const first = seen.get(id);
      if (first !== undefined) {
        this.error(item.line, p, distinct.duplicate(value, first, item));
        ok = false;
        return;
      }
      seen.set(id, i);
      out.push({ value, node: item });
    });
    return ok ? out : undefined;
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
}

/** The grid's top-level mapping, which every block reads its keys from. */
export class TopLevel {
  constructor(
    private readonly c: Checker,
    private readonly entries: Map<string, LEntry>,
    readonly line: number,
  ) {}

  entry(key: string): LEntry | undefined {
    return this.entries.get(key);
  }

  get(key: string): LNode | undefined {
    return this.entries.get(key)?.value;
  }

  /** An absent key has no line of its own: the error points at the mapping that should hold it. */
  missing(key: string, what: string): void {
    this.c.missing(this.line, key, key, ` (${what})`);
  }
}

/** The catalog's entry for `name`, never an Object.prototype member: "constructor" or "toString" is not an arch. */
export function catalogEntry<T>(record: Record<string, T>, name: string): T | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}
