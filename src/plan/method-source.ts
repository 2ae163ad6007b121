/**
 * A method's identity in its runs' keys: the hash of its own module and of the method-shelf modules it imports
 * (methods/scores.js, channel-scores.js, ...). The code version alone is bumped by hand, so editing a method, or a
 * helper it scores with, and running the same grid again used to reuse the old results ("already finished").
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const cache = new Map<string, string>();

/** The method shelf is one file per method, named after it: methods/<name>.ts (compiled next to this module's tree). */
export function methodSourceFile(name: string): string {
  return fileURLToPath(new URL(`../../methods/${name}.js`, import.meta.url));
}

/** sha256 (hex) of the compiled module of method `name` and the shelf modules it imports. */
export function methodSourceHash(name: string): string {
  let hash = cache.get(name);
  if (hash === undefined) {
    try {
      hash = sourceTreeHash(methodSourceFile(name));
    } catch (e) {
      throw new Error(`method "${name}" has no module ${methodSourceFile(name)}: a method lives in methods/<its name>.ts (${(e as Error).message})`);
    }
    cache.set(name, hash);
  }
  return hash;
}

/** Relative imports of a compiled module that stay in its own folder ("./x.js"); type-only imports are gone by then. */
const SIBLING_IMPORT = /\bfrom\s*["'](\.\/[^"'/]+)["']/g;

/**
 * sha256 (hex) over `entry` and every module of its folder it imports, transitively: each file's name (relative to
 * the folder) and text, in name order. Modules elsewhere (the engine in src/) are pinned by RESULTS_SOURCES_SHA256.
 */
export function sourceTreeHash(entry: string): string {
  const dir = dirname(entry);
  const seen = new Map<string, string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    const text = readFileSync(file, "utf8");
    seen.set(file, text);
    for (const m of text.matchAll(SIBLING_IMPORT)) queue.push(join(dir, m[1]));
  }
  // A lone module hashes to the hash of its text, as before imports were followed.
  if (seen.size === 1) return createHash("sha256").update(seen.get(entry)!, "utf8").digest("hex");
  const h = createHash("sha256");
  for (const file of [...seen.keys()].sort()) h.update(`${relative(dir, file)}\0${seen.get(file)}\0`, "utf8");
  return h.digest("hex");
}
