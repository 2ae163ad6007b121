/** The grid's `name` (it names the sweep and its files) and free-text `description`. */
import { isNull, type Checker, type TopLevel } from "../checker.js";

const NAME_PATTERN = /^[A-Za-z0-9_-]+$/;

export function readName(c: Checker, top: TopLevel): string | undefined {
  const node = top.get("name");
  if (node === undefined) {
    top.missing("name", "letters, digits, '-', '_'");
    return undefined;
  }
  // YAML reads `name: 2024` as a number; it is still a fine name.
  const n = node.kind === "scalar" && typeof node.value === "number" ? String(node.value) : undefined;
  const s = n ?? c.string(node, "name", { nonEmpty: true });
  if (s === undefined) return undefined;
  if (NAME_PATTERN.test(s)) return s;
  c.error(node.line, "name", `invalid grid name ${JSON.stringify(s)}; use only letters, digits, '-' and '_'`);
  return undefined;
}

export function readDescription(c: Checker, top: TopLevel): string {
  const node = top.get("description");
  if (node === undefined || isNull(node)) return "";
  return c.string(node, "description") ?? "";
}
