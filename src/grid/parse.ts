/**
 * YAML text -> a small located tree (every node knows its 1-based line), so the validator can point at the exact
 * place a user must edit. Only this file touches the yaml library's AST.
 */
import { type Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, type Node as YamlNode, parseDocument } from "yaml";
import { GridError } from "./types.js";

export type ScalarValue = string | number | boolean | null;

export interface LEntry {
  key: string;
  /** Line of the key itself (where "unknown key" errors point). */
  keyLine: number;
  value: LNode;
}

export type LNode =
  | { kind: "map"; line: number; entries: LEntry[] }
  | { kind: "seq"; line: number; items: LNode[] }
  /** `raw` is the scalar's source text (e.g. "1.0" for the number 1), used in messages. */
  | { kind: "scalar"; line: number; value: ScalarValue; raw: string };

export interface LocatedDocument {
  /** null when the text is empty or too broken to read. */
  root: LNode | null;
  errors: GridError[];
}

const MAX_DEPTH = 64;

/** Strip the yaml library's " at line N, column M:" tail and its code excerpt: the GridError carries the line. */
function cleanYamlMessage(message: string): string {
  const first = message.split("\n")[0] ?? message;
  return first.replace(/\s+at line \d+, column \d+:?\s*$/, "").trim();
}

/**
 * Parse YAML text into a located tree. Syntax errors come back as GridErrors with the parser's line.
 * Duplicate mapping keys are reported here with their dotted path (the yaml library's own report has none).
 */
export function parseLocated(text: string, file: string): LocatedDocument {
  const lineCounter = new LineCounter();
  const errors: GridError[] = [];
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, merge: false });
  } catch (e) {
    // The parser reports problems as doc.errors; a throw here would be a library bug. Still never throw.
    return { root: null, errors: [new GridError(file, null, "", `cannot parse YAML: ${(e as Error).message}`)] };
  }
  const lineAt = (offset: number | undefined): number => lineCounter.linePos(Math.max(0, offset ?? 0)).line;

  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      errors.push(new GridError(file, lineAt(e.pos?.[0]), "", `invalid YAML: ${cleanYamlMessage(e.message)}`));
    }
    return { root: null, errors };
  }
  if (doc.contents === null || doc.contents === undefined) return { root: null, errors };

  const onStack = new Set<unknown>();

  const nodeLine = (node: YamlNode | null | undefined, fallback: number): number =>
    node && node.range ? lineAt(node.range[0]) : fallback;

  const convert = (node: unknown, path: string, fallbackLine: number, depth: number): LNode => {
    if (node === null || node === undefined) return { kind: "scalar", line: fallbackLine, value: null, raw: "" };
    const yn = node as YamlNode;
    const line = nodeLine(yn, fallbackLine);
    if (depth > MAX_DEPTH) {
      errors.push(new GridError(file, line, path, `nesting deeper than ${MAX_DEPTH} levels`));
      return { kind: "scalar", line, value: null, raw: "" };
    }
    if (isAlias(node)) {
      let target: unknown;
      try {
        target = node.resolve(doc);
      } catch {
        target = undefined;
      }
      if (target === undefined || onStack.has(target)) {
        errors.push(new GridError(file, line, path, `alias *${node.source} cannot be resolved (undefined or recursive)`));
        return { kind: "scalar", line, value: null, raw: "" };
      }
      const converted = convert(target, path, line, depth + 1);
      // Point at the alias, where the user wrote it.
      return { ...converted, line } as LNode;
    }
    if (isScalar(node)) {
      const v = node.value;
      let value: ScalarValue;
      if (v === null || v === undefined) value = null;
      else if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") value = v;
      else if (typeof v === "bigint") value = Number(v);
      else value = String(v);
      const raw = node.range ? text.slice(node.range[0], node.range[1]).trim() : String(value);
      return { kind: "scalar", line, value, raw };
    }
    if (isSeq(node)) {
      onStack.add(node);
      const items = node.items.map((item, i) => convert(item, `${path}[${i}]`, line, depth + 1));
      onStack.delete(node);
      return { kind: "seq", line, items };
    }
    if (isMap(node)) {
      onStack.add(node);
      const entries: LEntry[] = [];
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const keyNode = pair.key as YamlNode | null;
        const keyLine = nodeLine(keyNode, line);
        let key: string;
        if (isScalar(keyNode) && keyNode.value !== null && keyNode.value !== undefined && typeof keyNode.value !== "object") {
          key = String(keyNode.value);
        } else {
          const shown = keyNode === null ? "an empty key" : isScalar(keyNode) ? "an empty key" : "a list or mapping as a key";
          errors.push(new GridError(file, keyLine, path, `keys must be plain names, found ${shown}`));
          continue;
        }
        const childPath = path ? `${path}.${key}` : key;
        const prev = seen.get(key);
        if (prev !== undefined) {
          errors.push(new GridError(file, keyLine, childPath, `duplicate key "${key}" (first given on line ${prev})`));
          continue;
        }
        seen.set(key, keyLine);
        entries.push({ key, keyLine, value: convert(pair.value, childPath, keyLine, depth + 1) });
      }
      onStack.delete(node);
      return { kind: "map", line, entries };
    }
    errors.push(new GridError(file, line, path, "unsupported YAML node"));
    return { kind: "scalar", line, value: null, raw: "" };
  };

  const root = convert(doc.contents, "", 1, 0);
  return { root, errors };
}

/** A short description of a node's value for messages: `"abc"`, `1.0`, `true`, `a list`, `a mapping`, `nothing`. */
export function describe(node: LNode): string {
  if (node.kind === "map") return "a mapping";
  if (node.kind === "seq") return "a list";
  if (node.value === null) return "nothing (null)";
  if (typeof node.value === "string") return JSON.stringify(node.value);
  if (typeof node.value === "number") return node.raw && !/^["']/.test(node.raw) ? node.raw : String(node.value);
  return String(node.value);
}
