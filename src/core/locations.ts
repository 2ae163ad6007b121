/** Where prunebench's own files are: its package folder, and the per-user cache every cache lives under. */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/**
 * The folder holding prunebench's package.json, found by walking up from this module (works from the source tree and
 * from dist/; a package.json of another name, e.g. a workspace's, is passed over).
 */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "package.json");
    if (existsSync(candidate)) {
      try {
        if ((JSON.parse(readFileSync(candidate, "utf8")) as { name?: unknown }).name === "prunebench") return (root = dir);
      } catch {
        // Not ours, or not JSON: keep walking.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no prunebench package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** `$XDG_CACHE_HOME/prunebench`, or `~/.cache/prunebench`: dense models and downloaded datasets live below it. */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && xdg.trim() !== "" ? xdg : join(env.HOME && env.HOME.trim() !== "" ? env.HOME : homedir(), ".cache");
  return join(base, "prunebench");
}
