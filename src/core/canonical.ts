/**
 * Canonical JSON: object keys sorted (by UTF-16 code units) at every depth, no whitespace, numbers as JSON prints
 * them. Two values that are equal as data always give the same string, whatever order their keys were built in.
 */
export function canonicalJson(value: unknown): string {
  return write(value, new Set());
}

function write(value: unknown, stack: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number ${value} has no JSON form`);
      return JSON.stringify(value); // -0 prints as 0, like JSON.stringify
    case "bigint":
      throw new TypeError("canonicalJson: bigint has no JSON form");
    case "object": {
      const obj = value as object;
      if (stack.has(obj)) throw new TypeError("canonicalJson: circular structure");
      stack.add(obj);
      let out: string;
      if (Array.isArray(obj)) {
        // Holes and undefined print as null, as JSON.stringify does.
        out = `[${Array.from(obj, (v) => (v === undefined || typeof v === "function" ? "null" : write(v, stack))).join(",")}]`;
      } else {
        const toJSON = (obj as { toJSON?: () => unknown }).toJSON;
        if (typeof toJSON === "function") {
          stack.delete(obj);
          return write(toJSON.call(obj), stack);
        }
        const keys = Object.keys(obj).sort();
        const parts: string[] = [];
        for (const k of keys) {
          const v = (obj as Record<string, unknown>)[k];
          if (v === undefined || typeof v === "function" || typeof v === "symbol") continue; // omitted, like JSON
          parts.push(`${JSON.stringify(k)}:${write(v, stack)}`);
        }
        out = `{${parts.join(",")}}`;
      }
      stack.delete(obj);
      return out;
    }
    default:
      throw new TypeError(`canonicalJson: ${typeof value} has no JSON form`);
  }
}
