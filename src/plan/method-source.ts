/**
 * A method's identity in its runs' keys: the hash of its own module. The code version alone is bumped by hand, so
 * editing a method and running the same grid again used to reuse the old results ("already finished").
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const cache = new Map<string, string>();

/** The method shelf is one file per method, named after it: methods/<name>.ts (compiled next to this module's tree). */
export function methodSourceFile(name: string): string {
  return fileURLToPath(new URL(`../../methods/${name}.js`, import.meta.url));
}

/** sha256 (hex) of the compiled module of method `name`. */
export function methodSourceHash(name: string): string {
  let hash = cache.get(name);
  if (hash === undefined) {
    let text: string;
    try {
      text = readFileSync(methodSourceFile(name), "utf8");
    } catch (e) {
      throw new Error(`method "${name}" has no module ${methodSourceFile(name)}: a method lives in methods/<its name>.ts (${(e as Error).message})`);
    }
    hash = createHash("sha256").update(text, "utf8").digest("hex");
    cache.set(name, hash);
  }
  return hash;
}
