import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { stringify } from "yaml";
import { DEFAULT_DATA, DEFAULT_EVAL, DEFAULT_FINETUNE, DEFAULT_PRETRAIN, DEFAULT_PRUNABLE, expandGrid, GridError, parseGrid } from "../src/grid/index.js";
import { type Grid } from "../src/core/types.js";
import { denseKey, runKey } from "../src/plan/runKey.js";
import { TEST_CATALOG } from "./fixtures/grids/catalog.js";
import { makeRng, shuffleInPlace } from "../src/core/rng.js";

const FP = { code: "c", data: "d" };
const FILE = "prop.yaml";

// ---------------------------------------------------------------------------------------------------------------
// Random valid grids, described as plain YAML-shaped objects (snake_case keys)

/** Method entries that are pairwise distinct after defaults are filled (method_params below only restates defaults). */
const METHOD_POOL: unknown[] = [
  "random",
  { name: "random", scope: "global" },
  "global-magnitude",
  "layer-magnitude",
  "iterative-magnitude",
  { name: "iterative-magnitude", rounds: 5 },
  { name: "iterative-magnitude", rate: 0.5, rewind: true },
];

const frac = (lo: number, hi: number, den: number) => fc.integer({ min: lo, max: hi }).map((k) => k / den);
const trainValues = (minEpochs: number) => ({
  epochs: fc.integer({ min: minEpochs, max: 50 }),
  batch_size: fc.integer({ min: 1, max: 512 }),
  optimizer: fc.constantFrom("sgd", "adam"),
  lr: frac(1, 1000, 1000),
  momentum: frac(0, 99, 100),
  weight_decay: frac(0, 100, 10000),
  schedule: fc.constantFrom("constant", "step", "cosine"),
  step_epochs: fc.integer({ min: 1, max: 50 }),
  gamma: frac(1, 100, 100),
});
const SETTINGS = {
  pretrain: fc.record(trainValues(1), { requiredKeys: [] }),
  finetune: fc.record(trainValues(0), { requiredKeys: [] }),
  data: fc.record(
    {
      val_fraction: frac(0, 50, 100),
      train_subset: fc.option(fc.integer({ min: 100, max: 60000 })),
      test_subset: fc.option(fc.integer({ min: 100, max: 10000 })),
    },
    { requiredKeys: [] },
  ),
  prunable: fc.record({ biases: fc.boolean(), batch_norm: fc.boolean(), classifier: fc.boolean(), first_layer: fc.boolean() }, { requiredKeys: [] }),
  eval: fc.record({ latency_batch: fc.integer({ min: 1, max: 512 }), latency_repeats: fc.integer({ min: 1, max: 50 }) }, { requiredKeys: [] }),
};

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const toYamlKeys = (o: object): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [snake(k), v]));
const DEFAULTS_YAML: Record<string, Record<string, unknown>> = {
  pretrain: toYamlKeys(DEFAULT_PRETRAIN),
  finetune: toYamlKeys(DEFAULT_FINETUNE),
  data: toYamlKeys(DEFAULT_DATA),
  prunable: toYamlKeys(DEFAULT_PRUNABLE),
  eval: toYamlKeys(DEFAULT_EVAL),
};
const DEFAULTS_TS: Record<string, object> = {
  pretrain: DEFAULT_PRETRAIN,
  finetune: DEFAULT_FINETUNE,
  data: DEFAULT_DATA,
  prunable: DEFAULT_PRUNABLE,
  eval: DEFAULT_EVAL,
};

interface GridSpec {
  name: string;
  description: string | null;
  methods: unknown[];
  archs: string[];
  datasets: string[];
  targetKey: "sparsities" | "compressions";
  targets: number[];
  seeds: number[];
  settings: Record<string, Record<string, unknown>>;
}

const familyArb = fc.oneof(
  fc.record({
    archs: fc.shuffledSubarray(["mlp", "lenet5"], { minLength: 1 }),
    datasets: fc.shuffledSubarray(["fashion-mnist-mini", "fashion-mnist"], { minLength: 1 }),
  }),
  fc.constant({ archs: ["resnet20"] as string[], datasets: ["cifar10"] as string[] }),
);
const targetsArb = fc.oneof(
  fc.record({
    targetKey: fc.constant("sparsities" as const),
    targets: fc.uniqueArray(frac(0, 999, 1000), { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    targetKey: fc.constant("compressions" as const),
    targets: fc.uniqueArray(frac(4, 400, 4), { minLength: 1, maxLength: 4 }),
  }),
);
const specArb: fc.Arbitrary<GridSpec> = fc
  .record({
    name: fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
    description: fc.option(fc.string({ maxLength: 20 })),
    methods: fc.shuffledSubarray(METHOD_POOL, { minLength: 1, maxLength: 4 }),
    family: familyArb,
    targets: targetsArb,
    seeds: fc.uniqueArray(fc.nat(1_000_000), { minLength: 1, maxLength: 3 }),
    settings: fc.record(SETTINGS, { requiredKeys: [] }),
  })
  .map((r) => ({
    name: r.name,
    description: r.description,
    methods: r.methods,
    archs: r.family.archs,
    datasets: r.family.datasets,
    targetKey: r.targets.targetKey,
    targets: r.targets.targets,
    seeds: r.seeds,
    settings: withSelectionForValFraction(r.settings as Record<string, Record<string, unknown>>),
  }));

/** `val_fraction: 0` leaves nothing to select the fine-tuning epoch on: a valid grid then asks for the final epoch. */
function withSelectionForValFraction(settings: Record<string, Record<string, unknown>>): Record<string, Record<string, unknown>> {
  if (settings.data?.val_fraction !== 0) return settings;
  return { ...settings, finetune: { ...settings.finetune, select: "final" } };
}

/** Deterministic shuffle driven by a seed (the project's one generator). */
function shuffler(seed: number): <T>(xs: T[]) => T[] {
  const rng = makeRng(seed, "key-order");
  return <T>(xs: T[]) => shuffleInPlace([...xs], rng);
}

/** Rebuild objects with shuffled key order at every depth (arrays keep their order: it is meaningful). */
function shuffleKeys(v: unknown, shuffle: <T>(xs: T[]) => T[]): unknown {
  if (Array.isArray(v)) return v.map((x) => shuffleKeys(x, shuffle));
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(shuffle(Object.entries(v)).map(([k, x]) => [k, shuffleKeys(x, shuffle)]));
  }
  return v;
}

/**
 * The YAML object for a spec. With `fill`, settings the spec leaves out are (per key, at random) written out with
 * their default value, and method_params restates random's default scope.
 */
function specToObject(spec: GridSpec, fill: boolean[] | null): Record<string, unknown> {
  const o: Record<string, unknown> = {
    name: spec.name,
    methods: spec.methods,
    archs: spec.archs,
    datasets: spec.datasets,
    [spec.targetKey]: spec.targets,
    seeds: spec.seeds,
  };
  if (spec.description !== null) o.description = spec.description;
  let i = 0;
  for (const block of Object.keys(DEFAULTS_YAML)) {
    const given = spec.settings[block];
    const out: Record<string, unknown> = { ...(given ?? {}) };
    if (fill) {
      for (const [k, d] of Object.entries(DEFAULTS_YAML[block])) if (!(k in out) && fill[i++ % fill.length]) out[k] = d;
    }
    if (given !== undefined || Object.keys(out).length > 0) o[block] = out;
  }
  if (fill && fill[0]) o.method_params = { random: { scope: "layer" } };
  return o;
}

function render(o: unknown, style: "any" | "block" | "flow"): string {
  return stringify(o, { collectionStyle: style });
}

function checkErrorShape(errors: GridError[], text: string): void {
  const lines = text.split("\n").length;
  for (const e of errors) {
    assert.ok(e instanceof GridError);
    assert.equal(e.file, FILE);
    assert.ok(e.line === null || (Number.isInteger(e.line) && e.line >= 1 && e.line <= lines + 1), `line ${e.line} of ${lines}`);
    assert.equal(typeof e.key, "string");
    assert.ok(e.problem.length > 0);
    assert.ok(!e.problem.startsWith("internal error"), e.problem);
  }
}

/** The Grid settings a spec should produce. */
function expectedSettings(spec: GridSpec): Pick<Grid, "pretrain" | "finetune" | "data" | "prunable" | "eval"> {
  const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const out: Record<string, object> = {};
  for (const block of Object.keys(DEFAULTS_TS)) {
    const given = spec.settings[block] ?? {};
    out[block] = { ...DEFAULTS_TS[block], ...Object.fromEntries(Object.entries(given).map(([k, v]) => [camel(k), v])) };
  }
  return out as unknown as Pick<Grid, "pretrain" | "finetune" | "data" | "prunable" | "eval">;
}

const styleArb = fc.constantFrom("any" as const, "block" as const, "flow" as const);

describe("grid properties", () => {
  test("valid random grids parse, expand to the product of axis sizes, and key runs uniquely", () => {
    fc.assert(
      fc.property(specArb, fc.integer(), styleArb, (spec, seed, style) => {
        const text = render(shuffleKeys(specToObject(spec, null), shuffler(seed)), style);
        const r = parseGrid(text, FILE, TEST_CATALOG);
        assert.deepEqual(r.errors.map((e) => e.message), [], text);
        const grid = r.grid!;
        assert.deepEqual(
          { pretrain: grid.pretrain, finetune: grid.finetune, data: grid.data, prunable: grid.prunable, eval: grid.eval },
          expectedSettings(spec),
        );
        assert.deepEqual(grid.targets.map((t) => t.value), spec.targets);
        const runs = expandGrid(grid);
        const size = spec.methods.length * spec.archs.length * spec.datasets.length * spec.targets.length * spec.seeds.length;
        assert.equal(runs.length, size);
        assert.equal(new Set(runs.map((x) => runKey(x, FP))).size, size);
        assert.equal(new Set(runs.map((x) => denseKey(x, FP))).size, spec.archs.length * spec.datasets.length * spec.seeds.length);
        // runs sharing a dense model are adjacent
        const dense = runs.map((x) => denseKey(x, FP));
        const blocks = dense.filter((k, i) => i === 0 || dense[i - 1] !== k);
        assert.equal(blocks.length, new Set(dense).size);
      }),
      { numRuns: 150 },
    );
  });

  test("run keys are stable across key order, YAML style and explicit-vs-default filling", () => {
    fc.assert(
      fc.property(
        specArb,
        fc.integer(),
        fc.integer(),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }),
        styleArb,
        styleArb,
        (spec, seedA, seedB, fill, styleA, styleB) => {
          const a = render(shuffleKeys(specToObject(spec, fill), shuffler(seedA)), styleA);
          const b = render(shuffleKeys(specToObject(spec, null), shuffler(seedB)), styleB);
          const ga = parseGrid(a, FILE, TEST_CATALOG);
          const gb = parseGrid(b, FILE, TEST_CATALOG);
          assert.deepEqual(ga.errors, []);
          assert.deepEqual(gb.errors, []);
          const ra = expandGrid(ga.grid!);
          const rb = expandGrid(gb.grid!);
          assert.deepEqual(ra, rb);
          assert.deepEqual(
            ra.map((x) => runKey(x, FP)),
            rb.map((x) => runKey(x, FP)),
          );
          assert.deepEqual(
            ra.map((x) => denseKey(x, FP)),
            rb.map((x) => denseKey(x, FP)),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  test("mutated grids never make the parser throw; they give errors or a grid, never both", () => {
    const junk = fc.oneof(
      fc.anything({ maxDepth: 2, maxKeys: 3 }),
      fc.double(),
      fc.constantFrom(-1, 0, 1, 1.5, 2, "", "random", "sgd", null, true, [], {}),
    );
    const mutation = fc.record({ at: fc.nat(), kind: fc.constantFrom("replace", "delete", "add"), value: junk, key: fc.string({ maxLength: 8 }) });
    fc.assert(
      fc.property(specArb, fc.array(mutation, { minLength: 1, maxLength: 3 }), styleArb, (spec, mutations, style) => {
        const obj = structuredClone(specToObject(spec, null)) as Record<string, unknown>;
        for (const m of mutations) mutate(obj, m);
        let text: string;
        try {
          text = render(obj, style);
        } catch {
          return; // not representable as YAML; nothing to test
        }
        const r = parseGrid(text, FILE, TEST_CATALOG);
        checkErrorShape(r.errors, text);
        if (r.grid === null) assert.ok(r.errors.length > 0);
        else {
          assert.equal(r.errors.length, 0);
          for (const run of expandGrid(r.grid)) runKey(run, FP);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("random garbage text never makes parseGrid throw", () => {
    const token = fc.constantFrom(
      "name", "methods", "archs", "seeds", "sparsities", "pretrain", "random", "mlp", "0.5", "1e9", ":", ": ", " ", "  ", "\n", "- ",
      "[", "]", "{", "}", ",", "&a ", "*a", "'", '"', "#", "\t", "!!str ", "!!int ", "|", ">", "? ", "---\n", "...\n", "%YAML 1.2\n", "<<: ", "\\", "\u00e9", "\r\n",
    );
    const garbage = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: "binary", maxLength: 100 }),
      fc.array(token, { maxLength: 60 }).map((a) => a.join("")),
    );
    fc.assert(
      fc.property(garbage, (text) => {
        const r = parseGrid(text, FILE, TEST_CATALOG);
        checkErrorShape(r.errors, text);
        assert.ok(r.grid === null ? r.errors.length > 0 : r.errors.length === 0);
      }),
      { numRuns: 600 },
    );
  });
});

/** Apply one mutation at the `at`-th node (depth-first) of a YAML-shaped object. */
function mutate(root: Record<string, unknown>, m: { at: number; kind: string; value: unknown; key: string }): void {
  const slots: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach((x, i) => (slots.push({ parent: v, key: i }), walk(x)));
    else if (v !== null && typeof v === "object") for (const [k, x] of Object.entries(v)) slots.push({ parent: v as Record<string, unknown>, key: k }), walk(x);
  };
  walk(root);
  if (slots.length === 0) return;
  const { parent, key } = slots[m.at % slots.length];
  if (m.kind === "replace") (parent as Record<string | number, unknown>)[key] = m.value;
  else if (m.kind === "delete") {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key as string];
  } else if (Array.isArray(parent)) parent.push(m.value);
  else parent[m.key || "extra"] = m.value;
}
