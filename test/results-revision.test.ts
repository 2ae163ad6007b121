/**
 * The code that computes results is pinned by hash. A run's key holds the code version (RESULTS_REVISION) rather than
 * the code itself, so that a cosmetic edit does not orphan every finished run; this test makes every edit of that code
 * a decision: if results can change, bump RESULTS_REVISION (finished runs are then re-run), and in either case record
 * the new hash. (Methods need no such step: each method's own source is in its runs' keys.)
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { RESULTS_REVISION, RESULTS_SOURCES_SHA256 } from "../src/core/version.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Training, pruning, architectures, counts, kernels (TypeScript and the native addon) and the run itself. */
const RESULT_SOURCES = ["src/train", "src/prune", "src/archs", "src/metrics", "src/backend", "src/run", "native/src"];

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(`${dir}/${e.name}`) : /\.(ts|cc|h)$/.test(e.name) ? [`${dir}/${e.name}`] : []))
    .sort();
}

test("the result-affecting sources are the ones this RESULTS_REVISION was pinned for", () => {
  const hash = createHash("sha256");
  const all = RESULT_SOURCES.flatMap(files);
  assert.ok(all.length > 20, `read only ${all.length} files`);
  for (const f of all) hash.update(`${f}\0`).update(readFileSync(join(ROOT, f))).update("\0");
  const now = hash.digest("hex");
  assert.equal(now, RESULTS_SOURCES_SHA256,
    `code that computes results changed (${RESULT_SOURCES.join(", ")}). If results can change, bump RESULTS_REVISION ` +
    `(now ${RESULTS_REVISION}) in src/core/version.ts so finished runs are re-run; either way set RESULTS_SOURCES_SHA256 there to "${now}".`);
});
