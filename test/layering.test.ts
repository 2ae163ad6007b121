/**
 * Layers import only downward. Each folder of the product has a rank; a module may import modules of its own folder
 * or of a folder with a lower rank, never the other way round and never a neighbour of the same rank (two folders
 * that import each other are one layer in disguise). A new folder must be given its place here.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** From the command line down to the shared types. */
const RANKS: Record<string, number> = {
  "src/cli": 9,
  reports: 8,
  "src/sweep": 7, // the coordinator: plan → worker pool → store
  "src/export": 7, // a run's saved weights as a tfjs LayersModel (bench export-model)
  "src/run": 6, // one run inside a worker
  "src/plan": 6,
  "src/store": 6,
  "src/catalog": 6,
  methods: 5, // the method shelf
  "src/train": 5,
  "src/grid": 4,
  "src/prune": 4,
  "src/metrics": 3,
  datasets: 3, // the dataset shelf
  "src/archs": 2,
  "src/backend": 1,
  "src/core": 0, // shared types, canonical JSON, the generator, the version
  "src/io": 0, // checked paths and safe writes
};

/** The layer a repository-relative file belongs to: its shelf, or its folder under src/ (or a single file there). */
export function layerOf(file: string): string {
  const parts = file.split("/");
  if (parts[0] !== "src") return parts[0];
  return `src/${parts[1].replace(/\.ts$/, "")}`;
}

export interface Edge { from: string; to: string }

/** Every import that does not point down, as "from -> to (why)". */
export function violations(edges: readonly Edge[], ranks: Record<string, number>): string[] {
  const out: string[] = [];
  for (const { from, to } of edges) {
    const [a, b] = [layerOf(from), layerOf(to)];
    if (a === b) continue;
    if (!(a in ranks)) out.push(`${from}: its layer ${a} has no rank; give it one in test/layering.test.ts`);
    else if (!(b in ranks)) out.push(`${from} -> ${to}: layer ${b} has no rank`);
    else if (ranks[a] <= ranks[b]) out.push(`${from} -> ${to} (${a} rank ${ranks[a]} imports ${b} rank ${ranks[b]})`);
  }
  return out;
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === "data" ? [] : sourceFiles(rel);
    return e.name.endsWith(".ts") ? [rel] : [];
  });
}

function importEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const file of ["src", "methods", "datasets", "reports"].flatMap(sourceFiles)) {
    for (const m of readFileSync(join(ROOT, file), "utf8").matchAll(IMPORT)) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), m[1])).replace(/\.js$/, ".ts");
      edges.push({ from: file, to: target });
    }
  }
  return edges;
}

test("the checker itself reports an upward import, a same-rank neighbour and a folder without a rank", () => {
  const found = violations([
    { from: "src/train/loop.ts", to: "src/archs/ops.ts" }, // down: fine
    { from: "src/archs/ops.ts", to: "src/train/loop.ts" }, // up
    { from: "src/grid/validate.ts", to: "src/prune/policy.ts" }, // same rank
    { from: "src/newthing/x.ts", to: "src/core/types.ts" }, // unranked
  ], RANKS);
  assert.equal(found.length, 3, found.join("\n"));
  assert.match(found[0], /src\/archs\/ops\.ts -> src\/train\/loop\.ts \(src\/archs rank 2 imports src\/train rank 5\)/);
  assert.match(found[1], /src\/grid rank 4 imports src\/prune rank 4/);
  assert.match(found[2], /layer src\/newthing has no rank/);
});

test("every import in src/, methods/, datasets/ and reports/ points down a layer", () => {
  const edges = importEdges();
  assert.ok(edges.length > 200, `read only ${edges.length} imports: is the import pattern still right?`);
  assert.deepEqual(violations(edges, RANKS), []);
});
