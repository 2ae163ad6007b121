import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { DEFAULT_DATA, DEFAULT_EVAL, DEFAULT_FINETUNE, DEFAULT_MODEL, DEFAULT_PRETRAIN, DEFAULT_PRUNABLE, countRuns, didYouMean, expandGrid, GridError, GridErrors, loadGrid, loadGridFile, MAX_GRID_FILE_BYTES, methodLabel, parseGrid } from "../src/grid/index.js";
import { type Catalog, type Grid } from "../src/core/types.js";
import { TEST_CATALOG } from "./fixtures/grids/catalog.js";
import { BENCH } from "./helpers/cli.js";

const FIXTURES = fileURLToPath(new URL("../../test/fixtures/grids/", import.meta.url));
const FILE = "bench.yaml";

/** A valid minimal grid; tests append or replace lines. Line numbers: name 1, methods 2, archs 3, datasets 4, sparsities 5, seeds 6. */
const MINIMAL = ["name: t", "methods: [random]", "archs: [mlp]", "datasets: [fashion-mnist]", "sparsities: [0.5]", "seeds: [0]"];

function withLines(replace: Record<number, string | null>, extra: string[] = []): string {
  const lines = MINIMAL.map((l, i) => (i + 1 in replace ? replace[i + 1] : l)).filter((l): l is string => l !== null);
  return [...lines, ...extra].join("\n") + "\n";
}

function errorsOf(text: string, catalog: Catalog = TEST_CATALOG): GridError[] {
  const r = parseGrid(text, FILE, catalog);
  if (r.errors.length > 0) assert.equal(r.grid, null, "grid must be null when there are errors");
  return r.errors;
}

function parseOk(text: string, catalog: Catalog = TEST_CATALOG): Grid {
  const r = parseGrid(text, FILE, catalog);
  assert.deepEqual(
    r.errors.map((e) => e.message),
    [],
  );
  assert.ok(r.grid);
  return r.grid;
}

/** Assert exactly one error, at `line` and `key`, whose problem contains every fragment. */
function expectOne(text: string, line: number | null, key: string, ...fragments: string[]): GridError {
  const errs = errorsOf(text);
  assert.equal(errs.length, 1, `expected one error, got:\n${errs.map((e) => e.message).join("\n")}`);
  const e = errs[0];
  assert.ok(e instanceof GridError);
  assert.equal(e.file, FILE);
  assert.equal(e.line, line, e.message);
  assert.equal(e.key, key, e.message);
  for (const f of fragments) assert.ok(e.problem.includes(f), `problem ${JSON.stringify(e.problem)} lacks ${JSON.stringify(f)}`);
  return e;
}

describe("parseGrid: valid grids", () => {
  test("the full fixture parses to the expected Grid", () => {
    const path = join(FIXTURES, "valid.yaml");
    const grid = loadGridFile(path, TEST_CATALOG);
    const expected: Grid = {
      name: "full_example-1",
      description: "Every key of the grid format",
      file: path,
      methods: [
        { name: "random", params: { scope: "layer" } },
        { name: "global-magnitude", params: {} },
        { name: "random", params: { scope: "global" } },
        // rounds from the entry, rate from method_params, rewind from the catalog default
        { name: "iterative-magnitude", params: { rounds: 5, rate: 0.5, rewind: false } },
      ],
      ablations: ["none"],
      archs: ["mlp", "lenet5"],
      datasets: ["fashion-mnist-mini"],
      targets: [
        { kind: "sparsity", value: 0.5 },
        { kind: "sparsity", value: 0.8 },
        { kind: "sparsity", value: 0.9 },
      ],
      seeds: [0, 1],
      pretrain: { ...DEFAULT_PRETRAIN, epochs: 3, batchSize: 64, optimizer: "adam", lr: 0.001 },
      finetune: { ...DEFAULT_FINETUNE, epochs: 0, schedule: "step", stepEpochs: 2, gamma: 0.5 },
      model: DEFAULT_MODEL,
      data: { ...DEFAULT_DATA, valFraction: 0.2, trainSubset: 1000, testSubset: null },
      prunable: { biases: true, batchNorm: false, classifier: true, firstLayer: false },
      eval: { latencyBatch: 128, latencyRepeats: 3 },
      reference: [
        {
          paper: "Han et al. 2015, Learning both Weights and Connections",
          source: "Table 1",
          dataset: "mnist",
          arch: "mlp",
          method: "magnitude-iterative",
          target: { kind: "compression", value: 12 },
          metrics: { top1_after: { value: 0.9841, unit: "fraction" } },
          note: "LeNet-300-100",
        },
      ],
    };
    assert.deepEqual(grid, expected);
  });

  test("a minimal grid gets every default", () => {
    const g = parseOk(withLines({}));
    assert.equal(g.description, "");
    assert.deepEqual(g.pretrain, DEFAULT_PRETRAIN);
    assert.deepEqual(g.finetune, DEFAULT_FINETUNE);
    assert.deepEqual(g.data, DEFAULT_DATA);
    assert.deepEqual(g.prunable, DEFAULT_PRUNABLE);
    assert.deepEqual(g.eval, DEFAULT_EVAL);
    assert.deepEqual(g.reference, []);
    assert.deepEqual(g.methods, [{ name: "random", params: { scope: "layer" } }]);
    assert.deepEqual(g.targets, [{ kind: "sparsity", value: 0.5 }]);
  });

  test("documented default values", () => {
    assert.deepEqual(DEFAULT_PRETRAIN, {
      epochs: 10, batchSize: 128, optimizer: "sgd", lr: 0.05, momentum: 0.9, weightDecay: 0.0005, schedule: "cosine", stepEpochs: 30, gamma: 0.1,
      nesterov: false, warmupEpochs: 0,
    });
    assert.deepEqual(DEFAULT_FINETUNE, { ...DEFAULT_PRETRAIN, epochs: 5, lr: 0.01, select: "best-val" });
    assert.deepEqual(DEFAULT_MODEL, { init: "torch-default" });
    assert.deepEqual(DEFAULT_DATA, { valFraction: 0.1, trainSubset: null, testSubset: null, normalize: "dataset", augment: "auto" });
    assert.deepEqual(DEFAULT_PRUNABLE, { biases: false, batchNorm: false, classifier: true, firstLayer: true });
    assert.deepEqual(DEFAULT_EVAL, { latencyBatch: 128, latencyRepeats: 10 });
  });

  test("compressions become compression targets; sparsity 0 and compression 1 are allowed", () => {
    assert.deepEqual(parseOk(withLines({ 5: "compressions: [1, 2, 4.5]" })).targets, [
      { kind: "compression", value: 1 },
      { kind: "compression", value: 2 },
      { kind: "compression", value: 4.5 },
    ]);
    assert.deepEqual(parseOk(withLines({ 5: "sparsities: [0, 0.99]" })).targets, [
      { kind: "sparsity", value: 0 },
      { kind: "sparsity", value: 0 + 0.99 },
    ]);
  });

  test("empty settings blocks read as defaults; test_subset null is allowed", () => {
    const g = parseOk(withLines({}, ["pretrain:", "data: {test_subset: null, train_subset: 100}"]));
    assert.deepEqual(g.pretrain, DEFAULT_PRETRAIN);
    assert.deepEqual(g.data, { ...DEFAULT_DATA, trainSubset: 100 });
  });

  test("an entry's hyperparameters override method_params, which override catalog defaults", () => {
    const g = parseOk(
      withLines({ 2: "methods: [iterative-magnitude, {name: iterative-magnitude, rate: 0.1}]" }, [
        "method_params:",
        "  iterative-magnitude: {rate: 0.3, rewind: true}",
      ]),
    );
    assert.deepEqual(g.methods, [
      { name: "iterative-magnitude", params: { rounds: 3, rate: 0.3, rewind: true } },
      { name: "iterative-magnitude", params: { rounds: 3, rate: 0.1, rewind: true } },
    ]);
  });

  test("YAML anchors and aliases are followed", () => {
    const g = parseOk(withLines({}, ["pretrain: &t {epochs: 2, lr: 0.1}", "finetune: *t"]));
    assert.equal(g.finetune.epochs, 2);
    assert.equal(g.finetune.lr, 0.1);
    assert.equal(g.finetune.batchSize, DEFAULT_FINETUNE.batchSize);
  });
});

describe("parseGrid: errors point at file:line, key and name the bad value", () => {
  test("malformed YAML gives the parser's line", () => {
    const errs = errorsOf("name: t\narchs: [mlp]]\nseeds: [0]\n");
    assert.ok(errs.length >= 1);
    assert.equal(errs[0].line, 2);
    assert.equal(errs[0].file, FILE);
    assert.match(errs[0].problem, /^invalid YAML: /);
    const tab = errorsOf("name: t\n\tarchs: [mlp]\n");
    assert.equal(tab[0].line, 2);
    assert.match(tab[0].problem, /Tabs/);
    const quote = errorsOf('name: t\ndescription: "open\n');
    assert.equal(quote[0].line, 3);
    assert.match(quote[0].problem, /quote/);
  });

  test("the whole file must be a non-empty mapping", () => {
    const empty = errorsOf("");
    assert.equal(empty.length, 1);
    assert.match(empty[0].problem, /empty/);
    expectOne("- a\n- b\n", 1, "", "expected a mapping", "got a list");
    expectOne("# just a comment\n42\n", 2, "", "expected a mapping", "got 42");
  });

  test("wrong types", () => {
    expectOne(withLines({ 6: 'seeds: "0"' }), 6, "seeds", "non-empty list", 'got "0"');
    expectOne(withLines({}, ["pretrain: 5"]), 7, "pretrain", "expected a mapping", "epochs", "got 5");
    expectOne(withLines({}, ["prunable: {biases: yes}"]), 7, "prunable.biases", "true or false", 'got "yes"');
    expectOne(withLines({}, ["finetune: {lr: fast}"]), 7, "finetune.lr", "a number > 0", 'got "fast"');
    expectOne(withLines({}, ["description: [a]"]), 7, "description", "a string", "got a list");
    expectOne(withLines({ 3: "archs: mlp" }), 3, "archs", "list", 'got "mlp"', "[mlp]");
    expectOne(withLines({ 5: 'sparsities: ["0.5"]' }), 5, "sparsities[0]", '"0.5"', "remove the quotes");
    expectOne(withLines({}, ["pretrain:", "  batch_size: 1.5"]), 8, "pretrain.batch_size", "an integer >= 1", "got 1.5");
  });

  test("missing required keys point at the top of the mapping", () => {
    expectOne(withLines({ 3: null }), 1, "archs", 'missing required key "archs"', "mlp, lenet5, resnet20");
    expectOne("# comment\n\n" + withLines({ 6: null }), 3, "seeds", 'missing required key "seeds"');
    expectOne(withLines({ 1: null }), 1, "name", 'missing required key "name"');
  });

  test("invalid grid name", () => {
    expectOne(withLines({ 1: "name: my grid!" }), 1, "name", '"my grid!"', "letters, digits");
  });

  test("unknown top-level key, with did-you-mean", () => {
    const e = expectOne(withLines({}, ["sparsity: [0.1]"]), 7, "sparsity", 'unknown key "sparsity"', 'did you mean "sparsities"?', "valid: name,");
    assert.ok(e.message.startsWith(`${FILE}:7: sparsity: `), e.message);
  });

  test("unknown nested key, with did-you-mean", () => {
    expectOne(withLines({}, ["finetune:", "  lr: 0.1", "  epoch: 3"]), 9, "finetune.epoch", 'unknown key "epoch"', 'did you mean "epochs"?', "batch_size");
    expectOne(withLines({}, ["data: {valfraction: 0.1}"]), 7, "data.valfraction", 'did you mean "val_fraction"?');
    expectOne(withLines({}, ["pretrain: {sched: step}"]), 7, "pretrain.sched", 'did you mean "schedule"?');
  });

  test("empty axes", () => {
    expectOne(withLines({ 3: "archs: []" }), 3, "archs", "non-empty list", "got an empty list");
    expectOne(withLines({ 2: "methods:" }), 2, "methods", "non-empty list", "got nothing");
    expectOne(withLines({ 6: "seeds: []" }), 6, "seeds", "non-empty list");
  });

  test("duplicate axis values", () => {
    expectOne(withLines({ 3: "archs: [mlp, lenet5, mlp]" }), 3, "archs[2]", 'duplicate arch "mlp"', "archs[0]");
    expectOne(withLines({ 5: "sparsities: [0.5, 0.50]" }), 5, "sparsities[1]", "duplicate sparsity 0.50", "sparsities[0]");
    expectOne(withLines({ 6: "seeds:\n  - 1\n  - 2\n  - 1" }), 9, "seeds[2]", "duplicate seed 1");
    expectOne(withLines({ 4: "datasets: [cifar10, cifar10]", 3: "archs: [resnet20]" }), 4, "datasets[1]", 'duplicate dataset "cifar10"');
  });

  test("method entries that normalize to the same choice are duplicates", () => {
    const text = withLines({ 2: "methods:\n  - random\n  - global-magnitude\n  - {name: random, scope: layer}" });
    expectOne(text, 5, "methods[2]", "duplicate method random", "methods[0]");
    // via method_params: the plain entry gets scope=global from method_params
    const viaParams = withLines({ 2: "methods: [{name: random, scope: global}, random]" }, ["method_params: {random: {scope: global}}"]);
    expectOne(viaParams, 2, "methods[1]", "duplicate method random(scope=global)", "methods[0]");
    // the same method with different hyperparameters is fine
    assert.equal(parseOk(withLines({ 2: "methods: [random, {name: random, scope: global}]" })).methods.length, 2);
  });

  test("unknown method, arch, dataset with did-you-mean and the valid names", () => {
    expectOne(
      withLines({ 2: "methods: [random, global-magnitud]" }),
      2,
      "methods[1]",
      'unknown method "global-magnitud"; did you mean "global-magnitude"? valid: random, global-magnitude, layer-magnitude, iterative-magnitude',
    );
    expectOne(withLines({ 3: "archs: [lenet]" }), 3, "archs[0]", 'unknown arch "lenet"', 'did you mean "lenet5"?', "valid: mlp, lenet5, resnet20");
    expectOne(withLines({ 4: "datasets: [fashion_mnist]" }), 4, "datasets[0]", 'unknown dataset "fashion_mnist"', 'did you mean "fashion-mnist"?');
    const far = expectOne(withLines({ 3: "archs: [transformer]" }), 3, "archs[0]", 'unknown arch "transformer"', "valid: mlp, lenet5, resnet20");
    assert.ok(!far.problem.includes("did you mean"), far.problem);
    expectOne(withLines({ 2: "methods: [{name: rndom}]" }), 2, "methods[0].name", 'unknown method "rndom"', 'did you mean "random"?');
    expectOne(withLines({ 2: "methods: [{scope: global}]" }), 2, "methods[0].name", 'missing required key "name"');
    expectOne(withLines({}, ["method_params: {randon: {scope: global}}"]), 7, "method_params.randon", 'unknown method "randon"', 'did you mean "random"?');
  });

  test("case-only mistakes are suggested", () => {
    expectOne(withLines({}, ["pretrain: {optimizer: SGD}"]), 7, "pretrain.optimizer", 'unknown optimizer "SGD"; did you mean "sgd"? valid: sgd, adam');
    expectOne(withLines({}, ["finetune: {schedule: cosin}"]), 7, "finetune.schedule", 'did you mean "cosine"?', "valid: constant, step, cosine");
  });

  test("sparsities outside [0, 1), compressions below 1", () => {
    expectOne(withLines({ 5: "sparsities: [0.5, 1.0]" }), 5, "sparsities[1]", "[0, 1)", "got 1.0");
    expectOne(withLines({ 5: "sparsities:\n  - -0.1" }), 6, "sparsities[0]", "[0, 1)", "got -0.1");
    expectOne(withLines({ 5: "compressions: [0.5]" }), 5, "compressions[0]", "compression ratio >= 1", "got 0.5");
    expectOne(withLines({ 5: "sparsities: [.nan]" }), 5, "sparsities[0]", "[0, 1)", "got .nan");
  });

  test("exactly one of sparsities / compressions", () => {
    expectOne(withLines({}, ["compressions: [2]"]), 7, "compressions", "exactly one of sparsities / compressions", "line 5");
    expectOne(withLines({ 5: null }), 1, "sparsities", "exactly one of sparsities", "compressions");
  });

  test("arch/dataset input-shape mismatch names both shapes", () => {
    expectOne(
      withLines({ 3: "archs: [mlp, resnet20]" }),
      3,
      "archs[1]",
      'arch "resnet20" expects input shape [32, 32, 3]',
      'dataset "fashion-mnist"',
      "[28, 28, 1]",
    );
    const catalog: Catalog = {
      ...TEST_CATALOG,
      archs: { ...TEST_CATALOG.archs, any: { inputShape: null, numClasses: 100 } },
    };
    const errs = errorsOf(withLines({ 3: "archs: [any]" }), catalog);
    assert.equal(errs.length, 1);
    assert.equal(errs[0].key, "archs[0]");
    assert.match(errs[0].problem, /100 output classes.*10 classes/);
    const free: Catalog = { ...TEST_CATALOG, archs: { any: { inputShape: null, numClasses: null } } };
    assert.ok(parseGrid(withLines({ 3: "archs: [any]", 4: "datasets: [cifar10, fashion-mnist]" }), FILE, free).grid);
  });

  test("hyperparameters: out of range, wrong type, unknown, bad choice", () => {
    expectOne(withLines({ 2: "methods: [{name: iterative-magnitude, rate: 1.5}]" }), 2, "methods[0].rate", "a number in [0, 1]", "got 1.5");
    expectOne(withLines({ 2: "methods: [{name: iterative-magnitude, rounds: 0}]" }), 2, "methods[0].rounds", "an integer in [1, 20]", "got 0");
    expectOne(withLines({ 2: "methods: [{name: iterative-magnitude, rounds: 2.5}]" }), 2, "methods[0].rounds", "integer", "got 2.5");
    expectOne(withLines({ 2: "methods: [{name: iterative-magnitude, rewind: 1}]" }), 2, "methods[0].rewind", "true or false", "got 1");
    expectOne(withLines({ 2: "methods: [{name: iterative-magnitude, rate: high}]" }), 2, "methods[0].rate", "a number", 'got "high"');
    expectOne(
      withLines({ 2: "methods:\n  - name: random\n    scop: global" }),
      4,
      "methods[0].scop",
      'unknown hyperparameter "scop" for method "random"; did you mean "scope"? valid: scope',
    );
    expectOne(withLines({ 2: "methods: [{name: random, scope: glbal}]" }), 2, "methods[0].scope", 'unknown scope "glbal"', 'did you mean "global"?', "valid: layer, global");
    expectOne(withLines({ 2: "methods: [{name: global-magnitude, scope: layer}]" }), 2, "methods[0].scope", 'method "global-magnitude" has no hyperparameters');
    expectOne(withLines({}, ["method_params:", "  random: {scope: 3}"]), 8, "method_params.random.scope", "layer, global", "got 3");
  });

  test("settings ranges", () => {
    const cases: [string, string, string[]][] = [
      ["pretrain: {epochs: 0}", "pretrain.epochs", ["integer >= 1", "got 0"]],
      ["finetune: {epochs: -1}", "finetune.epochs", ["integer >= 0", "got -1"]],
      ["finetune: {lr: 0}", "finetune.lr", ["> 0", "got 0"]],
      ["finetune: {momentum: 1}", "finetune.momentum", ["[0, 1)", "got 1"]],
      ["finetune: {weight_decay: -0.1}", "finetune.weight_decay", [">= 0"]],
      ["finetune: {optimizer: rmsprop}", "finetune.optimizer", ['"rmsprop"', "valid: sgd, adam"]],
      ["data: {val_fraction: 0.6}", "data.val_fraction", ["[0, 0.5]", "got 0.6"]],
      ["data: {train_subset: 0}", "data.train_subset", ["null or an integer >= 1", "got 0"]],
      ["eval: {latency_batch: 0}", "eval.latency_batch", ["integer >= 1"]],
      ["eval: {latency_repeats: 2.5}", "eval.latency_repeats", ["integer >= 1"]],
      ["seeds: [-1]", "seeds[0]", ["integer seed >= 0", "got -1"]],
    ];
    for (const [line, key, frags] of cases) {
      const text = key.startsWith("seeds") ? withLines({ 6: line }) : withLines({}, [line]);
      expectOne(text, key.startsWith("seeds") ? 6 : 7, key, ...frags);
    }
  });

  test("duplicate YAML keys are reported with their path", () => {
    expectOne(withLines({}, ["pretrain:", "  lr: 0.1", "  lr: 0.2"]), 9, "pretrain.lr", 'duplicate key "lr"', "line 8");
  });

  test("reference rows", () => {
    const row = (lines: string[]) => withLines({}, ["reference:", ...lines.map((l, i) => (i === 0 ? `  - ${l}` : `    ${l}`))]);
    const ok = ["paper: P", "source: T1", "dataset: mnist", "arch: lenet-300-100", "method: whatever", "sparsity: 0.9", "metrics: {top1_after: {value: 0.98, unit: fraction}}"];
    assert.deepEqual(parseOk(row(ok)).reference[0].target, { kind: "sparsity", value: 0.9 });
    expectOne(row([...ok, "compression: 10"]), 15, "reference[0].compression", "exactly one of sparsity / compression");
    expectOne(row(ok.filter((l) => !l.startsWith("paper"))), 8, "reference[0].paper", 'missing required key "paper"');
    expectOne(row([...ok.slice(0, 6), "metrics: {top1_aftr: {value: 0.98, unit: fraction}}"]), 14, "reference[0].metrics.top1_aftr", 'did you mean "top1_after"?');
    // Papers' own units are kept when they convert (percent → fraction); others are refused with the valid ones.
    assert.deepEqual(parseOk(row([...ok.slice(0, 6), "metrics: {top1_after: {value: 98, unit: percent}}"])).reference[0].metrics.top1_after, { value: 98, unit: "percent" });
    expectOne(row([...ok.slice(0, 6), "metrics: {top1_after: {value: 98, unit: permille}}"]), 14, "reference[0].metrics.top1_after.unit", '"permille"', "fraction, percent");
    expectOne(row([...ok, "pages: 3"]), 15, "reference[0].pages", 'unknown key "pages"');
    // Structured papers give FLOPs reductions: a row's target may be a MACs reduction, checked as the targets axis is.
    const macs = ok.map((l) => (l.startsWith("sparsity") ? "macs_reduction: 0.276" : l));
    assert.deepEqual(parseOk(row(macs)).reference[0].target, { kind: "macs-reduction", value: 0.276 });
    expectOne(row(macs.map((l) => l.replace("0.276", "1"))), 13, "reference[0].macs_reduction", "MACs reduction");
    expectOne(row([...macs, "sparsity: 0.5"]), 15, "reference[0].sparsity", "exactly one of sparsity / compression / macs_reduction");
  });

  test("all errors of a file are collected, sorted by line", () => {
    const text = [
      "name: t",
      "methods: [randm]",
      "archs: [mlp]",
      "datasets: [fashion-mnist]",
      "sparsities: [1.5]",
      "seeds: [0]",
      "pretrain: {optimizer: sdg}",
      "colour: blue",
    ].join("\n");
    const errs = errorsOf(text);
    assert.deepEqual(
      errs.map((e) => [e.line, e.key]),
      [
        [2, "methods[0]"],
        [5, "sparsities[0]"],
        [7, "pretrain.optimizer"],
        [8, "colour"],
      ],
    );
  });

  test("the bad fixture file: pinned messages", () => {
    const path = join(FIXTURES, "bad.yaml");
    let thrown: unknown;
    try {
      loadGridFile(path, TEST_CATALOG);
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof GridErrors);
    assert.ok(thrown instanceof Error);
    const rel = thrown.errors.map((e) => e.message.slice(path.length));
    assert.deepEqual(rel, [
      ':4: methods[0]: unknown method "global-magnitud"; did you mean "global-magnitude"? valid: random, global-magnitude, layer-magnitude, iterative-magnitude',
      ':5: methods[1].scope: unknown scope "glob"; did you mean "global"? valid: layer, global',
      ':6: archs[1]: arch "resnet20" expects input shape [32, 32, 3] but dataset "fashion-mnist-mini" (datasets[0]) has input shape [28, 28, 1]',
      ":8: sparsities[2]: expected a sparsity in [0, 1) (the fraction of prunable weights removed), got 1.0",
      ':11: finetune.optimizr: unknown key "optimizr"; did you mean "optimizer"? valid: epochs, batch_size, optimizer, lr, momentum, weight_decay, schedule, step_epochs, gamma, nesterov, warmup_epochs, select',
    ]);
    assert.equal(thrown.message, thrown.errors.map((e) => e.message).join("\n"));
  });

  test("loadGridFile on a missing file throws GridErrors", () => {
    const dir = mkdtempSync(join(tmpdir(), "grid-"));
    assert.throws(() => loadGridFile(join(dir, "nope.yaml"), TEST_CATALOG), (e: unknown) => e instanceof GridErrors && /cannot read/.test(e.message));
    const p = join(dir, "ok.yaml");
    writeFileSync(p, withLines({}));
    assert.equal(loadGridFile(p, TEST_CATALOG).file, p);
  });
});

describe("expandGrid", () => {
  test("product in datasets x archs x seeds x methods x targets order", () => {
    const g = parseOk(
      withLines({
        2: "methods: [random, global-magnitude]",
        3: "archs: [mlp, lenet5]",
        4: "datasets: [fashion-mnist, fashion-mnist-mini]",
        5: "compressions: [2, 4, 8]",
        6: "seeds: [3, 1]",
      }),
    );
    const runs = expandGrid(g);
    assert.equal(runs.length, 2 * 2 * 2 * 2 * 3);
    const short = runs.map((r) => `${r.dataset}/${r.arch}/${r.seed}/${r.method.name}/${r.target.value}`);
    assert.deepEqual(short.slice(0, 7), [
      "fashion-mnist/mlp/3/random/2",
      "fashion-mnist/mlp/3/random/4",
      "fashion-mnist/mlp/3/random/8",
      "fashion-mnist/mlp/3/global-magnitude/2",
      "fashion-mnist/mlp/3/global-magnitude/4",
      "fashion-mnist/mlp/3/global-magnitude/8",
      "fashion-mnist/mlp/1/random/2",
    ]);
    assert.equal(short[12], "fashion-mnist/lenet5/3/random/2");
    assert.equal(short[24], "fashion-mnist-mini/mlp/3/random/2");
    assert.equal(new Set(short).size, runs.length);
    assert.deepEqual(expandGrid(g), runs, "deterministic");
    assert.deepEqual(runs[0], {
      method: { name: "random", params: { scope: "layer" } },
      ablation: "none",
      arch: "mlp",
      dataset: "fashion-mnist",
      target: { kind: "compression", value: 2 },
      seed: 3,
      model: DEFAULT_MODEL,
      pretrain: DEFAULT_PRETRAIN,
      finetune: DEFAULT_FINETUNE,
      data: { ...DEFAULT_DATA, augment: "none" },
      prunable: DEFAULT_PRUNABLE,
      eval: DEFAULT_EVAL,
    });
  });

  test("ablations multiply the runs, each method's next to it, and label their series; none keeps today's labels", () => {
    const g = parseOk(withLines({ 2: "methods: [random, global-magnitude]", 5: "sparsities: [0.5, 0.9]" }, ["ablations: [none, layer-shuffle, reinit]"]));
    assert.deepEqual(g.ablations, ["none", "layer-shuffle", "reinit"]);
    const runs = expandGrid(g);
    assert.equal(runs.length, countRuns(g));
    assert.equal(runs.length, 2 * 3 * 2);
    assert.deepEqual(runs.slice(0, 6).map((r) => `${r.method.name}/${r.ablation}/${r.target.value}`), [
      "random/none/0.5", "random/none/0.9", "random/layer-shuffle/0.5", "random/layer-shuffle/0.9", "random/reinit/0.5", "random/reinit/0.9",
    ]);
    assert.deepEqual(parseOk(withLines({})).ablations, ["none"], "the default is the methods themselves");
    const random = { name: "random", params: { scope: "global" } };
    assert.equal(methodLabel(random, TEST_CATALOG), "random(scope=global)");
    assert.equal(methodLabel(random, TEST_CATALOG, "none"), "random(scope=global)");
    assert.equal(methodLabel(random, TEST_CATALOG, "layer-shuffle"), "random(scope=global)+layer-shuffle");
    assert.equal(methodLabel({ name: "global-magnitude", params: {} }, TEST_CATALOG, "reinit"), "global-magnitude+reinit");
  });

  test("ablations: bad values, duplicates, and methods whose masks keep changing are refused with file:line:key", () => {
    expectOne(withLines({}, ["ablations: [none, layer-shufle]"]), 7, "ablations[1]", 'unknown ablation "layer-shufle"', 'did you mean "layer-shuffle"?', "valid: none, layer-shuffle, reinit");
    expectOne(withLines({}, ["ablations: [reinit, none, reinit]"]), 7, "ablations[2]", "duplicate ablation reinit (same as ablations[0])");
    expectOne(withLines({}, ["ablations: layer-shuffle"]), 7, "ablations", "expected a non-empty list", "write [layer-shuffle]");
    expectOne(withLines({}, ["ablations: []"]), 7, "ablations", "got an empty list");
    // Only the catalog knows a method's schedule: a stand-in where iterative-magnitude is iterative.
    const kinds: Record<string, string> = { random: "one-shot", "global-magnitude": "one-shot", "layer-magnitude": "one-shot", "iterative-magnitude": "iterative" };
    const cat: Catalog = { ...TEST_CATALOG, methods: Object.fromEntries(Object.entries(TEST_CATALOG.methods).map(([n, m]) => [n, { ...m, scheduleKind: () => kinds[n] }])) };
    const text = withLines({ 2: "methods: [random, iterative-magnitude]" }, ["ablations: [none, reinit]"]);
    const errs = errorsOf(text, cat);
    assert.equal(errs.length, 1, errs.map((e) => e.message).join("\n"));
    assert.deepEqual([errs[0].line, errs[0].key], [7, "ablations[1]"]);
    for (const f of ["ablation reinit", "iterative-magnitude (methods[1], line 2: iterative)", "one-shot and at-init"]) assert.ok(errs[0].problem.includes(f), errs[0].problem);
    assert.equal(parseOk(withLines({ 2: "methods: [random, iterative-magnitude]" }, ["ablations: [none]"]), cat).ablations.length, 1, "none modifies nothing: any method");
    assert.equal(parseOk(withLines({}, ["ablations: [layer-shuffle]"]), cat).ablations[0], "layer-shuffle");
  });

  test("runs do not share mutable settings objects", () => {
    const g = parseOk(withLines({ 6: "seeds: [0, 1]" }));
    const [a, b] = expandGrid(g);
    a.pretrain.lr = 123;
    a.method.params.scope = "global";
    assert.equal(b.pretrain.lr, DEFAULT_PRETRAIN.lr);
    assert.equal(b.method.params.scope, "layer");
    assert.equal(g.pretrain.lr, DEFAULT_PRETRAIN.lr);
  });
});

describe("labels and suggestions", () => {
  test("methodLabel shows only non-default hyperparameters", () => {
    assert.equal(methodLabel({ name: "random", params: { scope: "layer" } }, TEST_CATALOG), "random");
    assert.equal(methodLabel({ name: "random", params: { scope: "global" } }, TEST_CATALOG), "random(scope=global)");
    assert.equal(methodLabel({ name: "global-magnitude", params: {} }, TEST_CATALOG), "global-magnitude");
    assert.equal(
      methodLabel({ name: "iterative-magnitude", params: { rewind: true, rounds: 3, rate: 0.5 } }, TEST_CATALOG),
      "iterative-magnitude(rate=0.5, rewind=true)",
    );
  });

  test("didYouMean", () => {
    assert.equal(didYouMean("sdg", ["sgd", "adam"]), "sgd");
    assert.equal(didYouMean("ADAM", ["sgd", "adam"]), "adam");
    assert.equal(didYouMean("resnet", ["mlp", "lenet5", "resnet20"]), "resnet20");
    assert.equal(didYouMean("vgg16", ["mlp", "lenet5", "resnet20"]), null);
    assert.equal(didYouMean("x", ["mlp"]), null);
  });
});

/** `bench …` in a child process, timed; asynchronous so a slow command cannot stall the test runner's timers. */
function benchTimed(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string; seconds: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BENCH, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
  });
}

/** A grid of sparsities.length x seeds runs on one method, arch and dataset. */
function hugeGrid(sparsities: number, seeds: number, dataset = "fashion-mnist-mini"): string {
  const sp = Array.from({ length: sparsities }, (_, i) => String(i / sparsities)).join(", ");
  const sd = Array.from({ length: seeds }, (_, i) => String(i)).join(", ");
  return `name: huge\nmethods: [random]\narchs: [mlp]\ndatasets: [${dataset}]\nsparsities: [${sp}]\nseeds: [${sd}]\n`;
}

describe("grid files are read once, bounded, and counted without expanding", () => {
  const expectRefused = (path: string, ...fragments: string[]) => {
    assert.throws(
      () => loadGridFile(path, TEST_CATALOG),
      (e: unknown) => {
        assert.ok(e instanceof GridErrors);
        assert.equal(e.errors.length, 1);
        assert.ok(e.message.startsWith(`${path}: cannot read grid file: `), e.message);
        for (const f of fragments) assert.ok(e.message.includes(f), `${e.message} lacks ${f}`);
        return true;
      },
    );
  };

  test("devices, folders and FIFOs are refused without reading them (/dev/zero would never end)", () => {
    expectRefused("/dev/zero", "a character device, not a regular file");
    const dir = mkdtempSync(join(tmpdir(), "grid-"));
    expectRefused(dir, "a directory, not a regular file");
    const fifo = join(dir, "grid.fifo");
    const made = spawnSync("mkfifo", [fifo]);
    if (made.status === 0) expectRefused(fifo, "a FIFO (named pipe), not a regular file");
    else assert.fail(`mkfifo unavailable: ${made.error ?? made.stderr}`);
  });

  test("a file over the size limit is refused; one at the limit is read", () => {
    const dir = mkdtempSync(join(tmpdir(), "grid-"));
    const grid = withLines({});
    const atLimit = join(dir, "at-limit.yaml");
    writeFileSync(atLimit, grid + "#".repeat(MAX_GRID_FILE_BYTES - Buffer.byteLength(grid)));
    assert.equal(loadGridFile(atLimit, TEST_CATALOG).name, "t");
    const over = join(dir, "over.yaml");
    writeFileSync(over, grid + "#".repeat(MAX_GRID_FILE_BYTES + 1 - Buffer.byteLength(grid)));
    expectRefused(over, `${MAX_GRID_FILE_BYTES + 1} bytes, over the 1 MiB limit`);
  });

  test("loadGrid returns the text it validated and the line of every target", () => {
    const dir = mkdtempSync(join(tmpdir(), "grid-"));
    const p = join(dir, "g.yaml");
    const text = withLines({ 5: "compressions:\n  - 2\n  - 4" });
    writeFileSync(p, text);
    const loaded = loadGrid(p, TEST_CATALOG);
    assert.equal(loaded.text, text);
    assert.deepEqual(loaded.grid.targets.map((t) => t.value), [2, 4]);
    assert.deepEqual(loaded.lines.targets, [6, 7]);
  });

  test("countRuns is the length of expandGrid", () => {
    const g = parseOk(withLines({ 2: "methods: [random, global-magnitude]", 3: "archs: [mlp, lenet5]", 4: "datasets: [fashion-mnist, fashion-mnist-mini]", 5: "compressions: [2, 4, 8]", 6: "seeds: [3, 1]" }));
    assert.equal(countRuns(g), 48);
    assert.equal(countRuns(g), expandGrid(g).length);
  });

  test("bench validate counts a 10^7-run grid without expanding it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "grid-"));
    const file = join(dir, "huge.yaml");
    writeFileSync(file, hugeGrid(1000, 10_000));
    const r = await benchTimed(["validate", file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: ok — 10000000 runs = 1 dataset\(s\) × 1 arch\(s\) × 10000 seed\(s\) × 1 method\(s\) × 1000 target\(s\)/);
    // Expanding took minutes and ran out of memory; counting is start-up plus parsing. A loose bound for a busy machine.
    assert.ok(r.seconds < 30, `validate took ${r.seconds} s`);
  });

  test("bench sweep refuses a 10^6-run grid over --max-runs before reading a dataset or creating the database", async () => {
    const dir = mkdtempSync(join(tmpdir(), "grid-"));
    const file = join(dir, "huge.yaml");
    // mnist is nowhere to be found offline with empty data and cache folders: reading it first would fail differently.
    writeFileSync(file, hugeGrid(1000, 1000, "mnist"));
    const empty = join(dir, "empty");
    mkdirSync(empty);
    const db = join(dir, "r.db");
    const env = { BENCH_OFFLINE: "1", BENCH_DATA_DIR: empty, XDG_CACHE_HOME: empty };
    const r = await benchTimed(["sweep", file, "--db", db, "--cache-dir", join(dir, "cache"), "--data-dir", empty], env);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `error: ${file}: the grid expands to 1000000 runs, more than --max-runs 1000; pass --yes to run them all or raise --max-runs\n`);
    assert.ok(!existsSync(db), "no database");
    assert.ok(!existsSync(join(dir, "cache")), "no cache");
    assert.ok(r.seconds < 30, `sweep took ${r.seconds} s to refuse`);
  });

  test("bench validate and sweep refuse /dev/zero at once with exit code 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "grid-"));
    for (const args of [["validate", "/dev/zero"], ["sweep", "/dev/zero", "--db", join(dir, "r.db"), "--cache-dir", join(dir, "cache")]]) {
      const r = await benchTimed(args);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, "error: /dev/zero: cannot read grid file: it is a character device, not a regular file (a grid file is YAML text)\n");
    }
    assert.ok(!existsSync(join(dir, "r.db")));
  });
});

describe("reference rows and data subsets are checked like the rest of the grid", () => {
  const row = (fields: Record<string, string>) => {
    const base: Record<string, string> = {
      paper: "P", source: "T1", dataset: "fashion-mnist", arch: "mlp", method: "global-magnitude", sparsity: "0.9",
      metrics: "{top1_after: {value: 0.98, unit: fraction}}",
    };
    const lines = Object.entries({ ...base, ...fields }).filter(([, v]) => v !== "").map(([k, v]) => `${k}: ${v}`);
    // Line 7 is "reference:", the row's keys are on lines 8.. in the order above.
    return withLines({}, ["reference:", ...lines.map((l, i) => (i === 0 ? `  - ${l}` : `    ${l}`))]);
  };

  test("names a typo away from ours are refused with a did-you-mean; a paper's own names are kept", () => {
    expectOne(row({ arch: "mpl" }), 11, "reference[0].arch", 'unknown arch "mpl"; did you mean "mlp"?', "valid: mlp, lenet5, resnet20");
    expectOne(row({ method: "globl-magnitude" }), 12, "reference[0].method", 'did you mean "global-magnitude"?', "dense");
    expectOne(row({ method: "dens" }), 12, "reference[0].method", 'did you mean "dense"?');
    expectOne(row({ dataset: "fashoin-mnist" }), 10, "reference[0].dataset", 'did you mean "fashion-mnist"?');
    for (const [k, v] of [["method", "snip"], ["method", "dense"], ["method", "iterative magnitude (Han 2015)"], ["arch", "lenet-300-100"], ["arch", "MLP"], ["dataset", "imagenet"]]) {
      assert.equal(parseOk(row({ [k]: v })).reference.length, 1, `${k}: ${v}`);
    }
  });

  test("values outside what their unit allows are refused; the paper's unit is kept", () => {
    const metric = (value: string, unit: string, name = "top1_after") => row({ metrics: `{${name}: {value: ${value}, unit: ${unit}}}` });
    expectOne(metric("98.36", "fraction"), 14, "reference[0].metrics.top1_after.value", "expected a value in [0, 1] for top1_after in fraction, got 98.36", "write unit: percent");
    expectOne(metric("983.6", "percent"), 14, "reference[0].metrics.top1_after.value", "expected a value in [0, 100] for top1_after in percent, got 983.6");
    expectOne(metric("-5", "percent"), 14, "reference[0].metrics.top1_after.value", "got -5");
    expectOne(metric("-1", "count", "params_nonzero"), 14, "reference[0].metrics.params_nonzero.value", "expected a value >= 0 for params_nonzero in count, got -1");
    expectOne(metric("1", "percent", "top1_aftr"), 14, "reference[0].metrics.top1_aftr", 'did you mean "top1_after"?');
    for (const [v, u] of [["0", "fraction"], ["1", "fraction"], ["100", "percent"], ["98.36", '"%"']]) {
      assert.deepEqual(parseOk(metric(v, u)).reference[0].metrics.top1_after, { value: Number(v), unit: u.replace(/"/g, "") });
    }
    assert.deepEqual(parseOk(metric("1.3e6", "2xMACs", "macs_effective")).reference[0].metrics.macs_effective, { value: 1.3e6, unit: "2xMACs" });
    expectOne(row({ sparsity: "1.5" }), 13, "reference[0].sparsity", "expected a sparsity in [0, 1)");
    expectOne(row({ sparsity: "", compression: "0.5" }), 14, "reference[0].compression", "expected a compression ratio >= 1");
  });

  const SIZED: Catalog = {
    ...TEST_CATALOG,
    datasets: {
      ...TEST_CATALOG.datasets,
      "fashion-mnist-mini": { ...TEST_CATALOG.datasets["fashion-mnist-mini"], splitSizes: { train: 6000, test: 2000 } },
      "fashion-mnist": { ...TEST_CATALOG.datasets["fashion-mnist"], splitSizes: { train: 60000, test: 10000 } },
    },
  };
  const data = (block: string, datasets = "[fashion-mnist]") => withLines({ 4: `datasets: ${datasets}` }, [`data: ${block}`]);
  const subsetError = (text: string) => {
    const errs = errorsOf(text, SIZED);
    assert.equal(errs.length, 1, errs.map((e) => e.message).join("\n"));
    assert.equal(errs[0].line, 7);
    return errs[0];
  };

  test("subsets below 10 images per class are refused (3 training images, 1 test image)", () => {
    const e = subsetError(data("{train_subset: 3}"));
    assert.equal(e.key, "data.train_subset");
    assert.equal(e.problem, 'data.train_subset: 3 is too few images: at least 10 images per class (100 for the 10 classes of "fashion-mnist"); valid: null (all images) or an integer in [100, 54000]'.slice("data.train_subset: ".length));
    assert.match(subsetError(data("{test_subset: 1}")).message, /^bench\.yaml:7: data\.test_subset: 1 is too few images: .*valid: null \(all images\) or an integer in \[100, 10000\]$/);
    // The type check comes first and keeps its message.
    assert.match(subsetError(data("{train_subset: 0}")).problem, /expected null or an integer >= 1 \(number of images\), got 0/);
  });

  test("subsets larger than the split are refused, naming the smallest dataset and what val_fraction holds out", () => {
    const e = subsetError(data("{train_subset: 1e9}"));
    assert.equal(e.problem, '1e9 is more images than there are: dataset "fashion-mnist" has 54000 training images once val_fraction 0.1 holds out 6000 of its 60000 for validation; valid: null (all images) or an integer in [100, 54000]');
    assert.match(subsetError(data("{val_fraction: 0.2, train_subset: 5000}", "[fashion-mnist, fashion-mnist-mini]")).problem, /dataset "fashion-mnist-mini" has 4800 training images once val_fraction 0\.2 holds out 1200 of its 6000/);
    assert.match(subsetError(data("{test_subset: 2001}", "[fashion-mnist-mini]")).problem, /^2001 is more images than there are: dataset "fashion-mnist-mini" has 2000 test images; valid: .*\[100, 2000\]$/);
    // The bounds themselves are valid, and so is null (all images).
    assert.deepEqual(parseOk(data("{train_subset: 5400, test_subset: 2000}", "[fashion-mnist-mini]"), SIZED).data, { ...DEFAULT_DATA, valFraction: 0.1, trainSubset: 5400, testSubset: 2000 });
    assert.deepEqual(parseOk(data("{train_subset: 100, test_subset: 100}", "[fashion-mnist-mini]"), SIZED).data, { ...DEFAULT_DATA, valFraction: 0.1, trainSubset: 100, testSubset: 100 });
    assert.equal(parseOk(data("{train_subset: null}"), SIZED).data.trainSubset, null);
    // A dataset whose size the catalog does not know is only held to the minimum.
    assert.equal(parseOk(withLines({ 3: "archs: [resnet20]", 4: "datasets: [cifar10]" }, ["data: {train_subset: 1000000}"]), SIZED).data.trainSubset, 1000000);
  });
});

describe("protocol knobs in the grid", () => {
  test("each knob is read into the grid; a minimal grid gets the defaults; auto augmentation resolves per dataset", () => {
    const g = parseOk(withLines({}, [
      "model: {init: he-normal}",
      "pretrain: {nesterov: true, warmup_epochs: 2}",
      "finetune: {select: final, warmup_epochs: 0.5}",
      "data: {val_fraction: 0, normalize: {mean: [0.1307], std: [0.3081]}, augment: crop-flip}",
    ]));
    assert.deepEqual(g.model, { init: "he-normal" });
    assert.deepEqual(g.pretrain, { ...DEFAULT_PRETRAIN, nesterov: true, warmupEpochs: 2 });
    assert.deepEqual(g.finetune, { ...DEFAULT_FINETUNE, select: "final", warmupEpochs: 0.5 });
    assert.deepEqual(g.data, { ...DEFAULT_DATA, valFraction: 0, normalize: { mean: [0.1307], std: [0.3081] }, augment: "crop-flip" });
    assert.equal(expandGrid(g)[0].data.augment, "crop-flip");
    const d = parseOk(withLines({}));
    assert.deepEqual(d.model, DEFAULT_MODEL);
    assert.equal(d.data.augment, "auto");
    const runs = expandGrid(parseOk(withLines({ 3: "archs: [resnet20]", 4: "datasets: [cifar10]" }, ["data: {normalize: none}"])));
    assert.deepEqual(runs.map((r) => [r.data.augment, r.data.normalize, r.model.init]), [["crop-flip", "none", "torch-default"]]);
    assert.equal(expandGrid(d)[0].data.augment, "none", "fashion-mnist: no augmentation");
  });

  test("bad values: file:line:key, the value and the valid choices, with did-you-mean", () => {
    expectOne(withLines({}, ["model: {init: torch-defualt}"]), 7, "model.init", 'unknown init "torch-defualt"; did you mean "torch-default"?', "valid: torch-default, he-uniform, he-normal, glorot-uniform");
    expectOne(withLines({}, ["model: {int: he-normal}"]), 7, "model.int", 'unknown key "int"; did you mean "init"?');
    expectOne(withLines({}, ["pretrain: {nesterov: yes please}"]), 7, "pretrain.nesterov", "expected true or false");
    expectOne(withLines({}, ["finetune: {warmup_epochs: -1}"]), 7, "finetune.warmup_epochs", "expected a number >= 0");
    expectOne(withLines({}, ["finetune: {select: best}"]), 7, "finetune.select", 'unknown selection "best"', "valid: best-val, final");
    expectOne(withLines({}, ["pretrain: {select: final}"]), 7, "pretrain.select", 'unknown key "select"');
    expectOne(withLines({}, ["data: {augment: crop}"]), 7, "data.augment", 'unknown augmentation "crop"; did you mean "crop-flip"?', "valid: auto, none, crop-flip");
    expectOne(withLines({}, ["data: {normalize: datset}"]), 7, "data.normalize", 'unknown normalization "datset"; did you mean "dataset"?', "or {mean: [...], std: [...]}");
    expectOne(withLines({}, ["data: {normalize: 0.5}"]), 7, "data.normalize", "expected dataset or none, or {mean: [...], std: [...]}", "got 0.5");
    assert.deepEqual(errorsOf(withLines({}, ["data: {normalize: {mean: [0.1], sd: [0.3]}}"])).map((e) => e.message), [
      'bench.yaml:7: data.normalize.sd: unknown key "sd"; did you mean "std"? valid: mean, std',
      'bench.yaml:7: data.normalize.std: missing required key "std" (one value per channel)',
    ]);
    expectOne(withLines({}, ["data: {normalize: {mean: [0.1], std: [0]}}"]), 7, "data.normalize.std[0]", "expected a standard deviation > 0, got 0");
    expectOne(withLines({}, ["data: {normalize: {mean: [0.1, 0.2], std: [0.3]}}"]), 7, "data.normalize.std", "std has 1 values and mean 2");
  });

  test("settings that do not go together are refused where they are written", () => {
    expectOne(withLines({}, ["pretrain: {optimizer: adam, lr: 0.001, nesterov: true}"]), 7, "pretrain.nesterov", "SGD setting", "pretrain.optimizer is adam");
    expectOne(withLines({}, ["finetune: {momentum: 0, nesterov: true}"]), 7, "finetune.nesterov", "needs momentum > 0");
    expectOne(withLines({}, ["finetune: {epochs: 2, warmup_epochs: 3}"]), 7, "finetune.warmup_epochs", "longer than the phase (finetune.epochs 2)", "valid: a number in [0, 2]");
    expectOne(withLines({ 3: "archs: [resnet20]", 4: "datasets: [cifar10]" }, ["data: {normalize: {mean: [0.1307], std: [0.3081]}}"]), 7, "data.normalize", 'dataset "cifar10" has 3 channels');
    const e = expectOne(withLines({}, ["data: {val_fraction: 0}"]), 7, "data.val_fraction", "0 leaves no validation split", "finetune.select is best-val (the default)", "set finetune.select: final");
    assert.match(e.message, /^bench\.yaml:7: data\.val_fraction: /);
    expectOne(withLines({}, ["finetune: {select: best-val}", "data: {val_fraction: 0}"]), 8, "data.val_fraction", "finetune.select is best-val (line 7)");
    parseOk(withLines({}, ["finetune: {select: final}", "data: {val_fraction: 0}"]));
    parseOk(withLines({}, ["pretrain: {optimizer: adam, nesterov: false}"]));
  });
});
