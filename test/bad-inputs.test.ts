/**
 * Every bad input gets a clear error through the real command line: exit code 2, the file:line, the key, the bad
 * value, and the valid choices or a did-you-mean; and a sweep that refuses its input writes nothing.
 * (Random grids are covered by test/grid.property.test.ts; these are the mistakes people actually make.)
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { BENCH, tempDir } from "./helpers/cli.js";

/** `bench …` without blocking, so the cases run side by side. */
function benchAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BENCH, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A valid grid, one key per line (line numbers below refer to it); `edit` rewrites it into a bad one. */
const GOOD = `name: tiny
methods: [random, global-magnitude]
archs: [mlp]
datasets: [fashion-mnist-mini]
sparsities: [0.5, 0.9]
seeds: [0]
pretrain: {epochs: 1, batch_size: 64, lr: 0.05}
finetune: {epochs: 1, batch_size: 64, lr: 0.01}
data: {train_subset: 600, test_subset: 400}
`;

interface Case {
  name: string;
  text: string;
  /** Every line of the error output must be matched, in order, by one of these. */
  errors: RegExp[];
}

const line = (n: number, rest: string) => new RegExp(`g\\.yaml:${n}: ${rest}`);
const sub = (from: string, to: string) => {
  assert.ok(GOOD.includes(from), from);
  return GOOD.replace(from, to);
};

const CASES: Case[] = [
  {
    name: "malformed YAML (bad indentation)",
    text: sub("archs: [mlp]", "  archs: [mlp]"),
    errors: [line(3, "invalid YAML: All mapping items must start at the same column")],
  },
  {
    name: "not a mapping at all",
    text: "- random\n- mlp\n",
    errors: [line(1, "expected a mapping \\(the grid\\) with keys name, description, methods, .*, got a list")],
  },
  {
    name: "an empty file",
    text: "",
    errors: [line(1, "the grid file is empty; expected a mapping with keys name, description, methods")],
  },
  {
    name: "wrong types: a word, a fraction and a quoted number where numbers go",
    text: sub("pretrain: {epochs: 1, batch_size: 64, lr: 0.05}", `pretrain: {epochs: ten, batch_size: 1.5, lr: "0.05"}`),
    errors: [
      line(7, `pretrain\\.epochs: expected an integer >= 1, got "ten"`),
      line(7, "pretrain\\.batch_size: expected an integer >= 1, got 1\\.5"),
      line(7, `pretrain\\.lr: expected a number > 0, got "0\\.05" \\(a quoted string; remove the quotes\\)`),
    ],
  },
  {
    name: "a scalar where a list goes",
    text: sub("seeds: [0]", "seeds: 0"),
    errors: [line(6, "seeds: expected a non-empty list of seeds \\(non-negative integers\\), got 0 \\(write \\[0\\] for a single value\\)")],
  },
  {
    name: "unknown keys, with did-you-mean",
    text: sub("finetune: {epochs: 1,", "finetune: {epochz: 1,") + "sparsity: [0.3]\n",
    errors: [
      line(8, `finetune\\.epochz: unknown key "epochz"; did you mean "epochs"\\? valid: epochs, batch_size, optimizer, lr, momentum, weight_decay, schedule, step_epochs, gamma`),
      line(10, `sparsity: unknown key "sparsity"; did you mean "sparsities"\\? valid: name, description, methods, archs, datasets, sparsities, compressions, seeds`),
    ],
  },
  {
    name: "an empty axis",
    text: sub("methods: [random, global-magnitude]", "methods: []"),
    errors: [line(2, "methods: expected a non-empty list of methods .*, got an empty list")],
  },
  {
    name: "unknown method, arch and dataset, with did-you-mean",
    text: sub("[random, global-magnitude]", "[random, global-magnitud]").replace("[mlp]", "[lenet]").replace("[fashion-mnist-mini]", "[fashion-mnsit]"),
    errors: [
      line(2, `methods\\[1\\]: unknown method "global-magnitud"; did you mean "global-magnitude"\\? valid: random, global-magnitude, layer-magnitude`),
      line(3, `archs\\[0\\]: unknown arch "lenet"; did you mean "lenet5"\\? valid: mlp, lenet5, resnet20, resnet56`),
      line(4, `datasets\\[0\\]: unknown dataset "fashion-mnsit"; did you mean "fashion-mnist"\\? valid: fashion-mnist-mini, fashion-mnist, mnist, cifar10`),
    ],
  },
  {
    name: "sparsities outside [0, 1)",
    text: sub("sparsities: [0.5, 0.9]", "sparsities: [0.5, 1.0, -0.1]"),
    errors: [
      line(5, "sparsities\\[1\\]: expected a sparsity in \\[0, 1\\) \\(the fraction of prunable weights removed\\), got 1\\.0"),
      line(5, "sparsities\\[2\\]: expected a sparsity in \\[0, 1\\) \\(the fraction of prunable weights removed\\), got -0\\.1"),
    ],
  },
  {
    name: "a compression below 1",
    text: sub("sparsities: [0.5, 0.9]", "compressions: [0.5, 4]"),
    errors: [line(5, "compressions\\[0\\]: expected a compression ratio >= 1 \\(total params / nonzero params\\), got 0\\.5")],
  },
  {
    name: "both target axes",
    text: sub("sparsities: [0.5, 0.9]", "sparsities: [0.5, 0.9]\ncompressions: [4]"),
    errors: [line(6, "compressions: give exactly one of sparsities / compressions, not both \\(the other is on line 5\\)")],
  },
  {
    // Every architecture adapts to its dataset's input shape (src/archs: inputShape null), so no arch/dataset pair
    // can mismatch; what the architecture can make impossible is a compression ratio beyond total / non-prunable.
    name: "a compression the architecture cannot reach (LeNet-300-100 keeps its 410 biases: max 650.3x)",
    text: sub("sparsities: [0.5, 0.9]", "compressions: [4, 1000]"),
    errors: [line(5, `compressions\\[1\\]: compression 1000x is unreachable: 410 of 266610 parameters are not prunable \\(max 650\\.3x\\) for arch "mlp" on dataset "fashion-mnist-mini".*use a smaller compression, or make more tensors prunable`)],
  },
  {
    // No method has a numeric hyperparameter yet: "out of range" for a choice is a value outside its choices.
    name: "method hyperparameters: a value outside its choices, an unknown one, one a method does not have",
    text: sub("methods: [random, global-magnitude]", "methods: [{name: random, scope: everywhere}, {name: random, sigma: 2}]") +
      "method_params: {global-magnitude: {scope: layer}}\n",
    errors: [
      line(2, `methods\\[0\\]\\.scope: unknown scope "everywhere"; valid: layer, global`),
      line(2, `methods\\[1\\]\\.sigma: unknown hyperparameter "sigma" for method "random"; valid: scope`),
      line(10, `method_params\\.global-magnitude\\.scope: method "global-magnitude" has no hyperparameters, got "scope"`),
    ],
  },
  {
    name: "duplicate axis values (also a method equal to another once its defaults are filled in)",
    text: sub("methods: [random, global-magnitude]", "methods: [random, {name: random, scope: layer}]").replace("[0.5, 0.9]", "[0.5, 0.50]").replace("seeds: [0]", "seeds: [0, 0]"),
    errors: [
      line(2, "methods\\[1\\]: duplicate method random: same as methods\\[0\\] once defaults and method_params are filled in"),
      line(5, "sparsities\\[1\\]: duplicate sparsity 0\\.50 \\(same as sparsities\\[0\\]\\)"),
      line(6, "seeds\\[1\\]: duplicate seed 0 \\(same as seeds\\[0\\]\\)"),
    ],
  },
  {
    name: "a setting out of range and an unknown choice",
    text: sub("finetune: {epochs: 1, batch_size: 64, lr: 0.01}", "finetune: {epochs: 1, batch_size: 64, lr: 0.01, momentum: 1.5, optimizer: adamw}"),
    errors: [
      line(8, "finetune\\.momentum: expected a number in \\[0, 1\\), got 1\\.5"),
      line(8, `finetune\\.optimizer: unknown optimizer "adamw"; did you mean "adam"\\? valid: sgd, adam`),
    ],
  },
  {
    name: "data subsets: one clamped silently (1e9), two too small to mean anything (3 training, 1 test image)",
    text: sub("data: {train_subset: 600, test_subset: 400}", "data: {train_subset: 1e9, test_subset: 1}"),
    errors: [
      line(9, `data\\.train_subset: 1e9 is more images than there are: dataset "fashion-mnist-mini" has 5400 training images once val_fraction 0\\.1 holds out 600 of its 6000 for validation; valid: null \\(all images\\) or an integer in \\[100, 5400\\]`),
      line(9, `data\\.test_subset: 1 is too few images: at least 10 images per class \\(100 for the 10 classes of "fashion-mnist-mini"\\); valid: null \\(all images\\) or an integer in \\[100, 2000\\]`),
    ],
  },
  {
    name: "data subsets: 3 training images",
    text: sub("train_subset: 600", "train_subset: 3"),
    errors: [line(9, "data\\.train_subset: 3 is too few images: at least 10 images per class .*\\[100, 5400\\]")],
  },
  {
    name: "reference rows: a misspelt arch and method, a percent given as a fraction, percents out of range",
    text: GOOD + `reference:
  - {paper: P, source: T1, dataset: fashion-mnist-mini, arch: mpl, method: globl-magnitude, sparsity: 0.5,
     metrics: {top1_after: {value: 98.36, unit: fraction}}}
  - {paper: P, source: T1, dataset: fashion-mnist-mini, arch: mlp, method: dense, sparsity: 0, metrics: {top1_after: {value: 983.6, unit: percent}}}
  - {paper: P, source: T1, dataset: fashion-mnist-mini, arch: mlp, method: snip, sparsity: 0.9, metrics: {top1_after: {value: -5, unit: percent}}}
`,
    errors: [
      line(11, `reference\\[0\\]\\.arch: unknown arch "mpl"; did you mean "mlp"\\? valid: mlp, lenet5, resnet20, resnet56`),
      line(11, `reference\\[0\\]\\.method: unknown method "globl-magnitude"; did you mean "global-magnitude"\\? valid: random, global-magnitude, layer-magnitude, dense`),
      line(12, "reference\\[0\\]\\.metrics\\.top1_after\\.value: expected a value in \\[0, 1\\] for top1_after in fraction, got 98\\.36 \\(for 98\\.36 %, write unit: percent\\)"),
      line(13, "reference\\[1\\]\\.metrics\\.top1_after\\.value: expected a value in \\[0, 100\\] for top1_after in percent, got 983\\.6"),
      line(14, "reference\\[2\\]\\.metrics\\.top1_after\\.value: expected a value in \\[0, 100\\] for top1_after in percent, got -5"),
    ],
  },
  {
    name: "reference rows: an unknown unit and metric, a target out of range",
    text: GOOD + `reference:
  - {paper: P, source: T1, dataset: fashion-mnist-mini, arch: mlp, method: random, sparsity: 1.5, metrics: {top1_after: {value: 98, unit: percnt}, top1_aftr: {value: 0.9, unit: fraction}}}
`,
    errors: [
      line(11, "reference\\[0\\]\\.sparsity: expected a sparsity in \\[0, 1\\)"),
      line(11, `reference\\[0\\]\\.metrics\\.top1_after\\.unit: unit "percnt" is not one top1_after can be given in; valid: fraction, percent, %`),
      line(11, `reference\\[0\\]\\.metrics\\.top1_aftr: unknown metric "top1_aftr"; did you mean "top1_after"\\?`),
    ],
  },
  {
    name: "a grid file over 1 MiB",
    text: GOOD + "#".repeat(1024 * 1024),
    errors: [/g\.yaml: cannot read grid file: it is \d+ bytes, over the 1 MiB limit for grid files/],
  },
];

test("bad grids: validate and sweep both exit 2 naming file:line, key, value and what is valid; sweep writes nothing", { concurrency: 4 }, async (t) => {
  const dir = tempDir();
  let tried = 0;
  await Promise.all(CASES.map((c, i) => t.test(c.name, async () => {
    const caseDir = join(dir, String(i));
    mkdirSync(caseDir);
    const file = join(caseDir, "g.yaml");
    writeFileSync(file, c.text);
    const db = join(caseDir, "r.db");
    const [v, s] = await Promise.all([benchAsync(["validate", file]), benchAsync(["sweep", file, "--db", db, "--cache-dir", join(caseDir, "cache")])]);
    tried++;
    for (const [cmd, r] of [["validate", v], ["sweep", s]] as const) {
      assert.equal(r.code, 2, `${cmd}: ${r.stdout}${r.stderr}`);
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, `${cmd} must not print a stack trace`);
      const lines = r.stderr.replace(/^error: /, "").trimEnd().split("\n");
      assert.equal(lines.length, c.errors.length, `${cmd}: one line per problem:\n${r.stderr}`);
      c.errors.forEach((re, k) => assert.match(lines[k], re, `${cmd}, problem ${k + 1}`));
      assert.ok(lines.every((l) => l.startsWith(file)), `${cmd}: every line names the file`);
    }
    assert.ok(!existsSync(db), "a refused sweep creates no database");
    assert.ok(!existsSync(join(caseDir, "cache")), "a refused sweep creates no cache");
  })));
  assert.equal(tried, CASES.length);
  // Control: the unedited grid is fine.
  const file = join(dir, "good.yaml");
  writeFileSync(file, GOOD);
  const ok = await benchAsync(["validate", file]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /ok — 4 runs/);
});

test("bad command lines exit 2 with the flag, the bad value and what is valid", { concurrency: 4 }, async (t) => {
  const dir = tempDir();
  const grid = join(dir, "g.yaml");
  writeFileSync(grid, GOOD);
  // Each case its own database path (they run side by side), none of which may come to exist.
  const dbs = Array.from({ length: 12 }, (_, i) => join(dir, `r${i}.db`));
  let n = 0;
  const next = () => dbs[n++];
  const db = next();
  const cases: Array<[string, string[], RegExp]> = [
    ["--backend bogus", ["sweep", grid, "--db", next(), "--backend", "bogus"], /option '--backend <name>' argument 'bogus' is invalid\. Allowed choices are auto, node, native, wasm, cpu/],
    ["--jobs 0", ["sweep", grid, "--db", next(), "--jobs", "0"], /--jobs must be a positive integer, got "0"/],
    ["--jobs 1.5", ["sweep", grid, "--db", next(), "--jobs", "1.5"], /--jobs must be a positive integer, got "1\.5"/],
    ["--max-runs many", ["sweep", grid, "--db", next(), "--max-runs", "many"], /--max-runs must be a positive integer, got "many"/],
    ["--run-timeout -5", ["sweep", grid, "--db", next(), "--run-timeout", "-5"], /--run-timeout must be a number of seconds >= 0 \(0 = no limit\), got "-5"/],
    ["--run-timeout soon", ["sweep", grid, "--db", next(), "--run-timeout", "soon"], /--run-timeout must be a number of seconds >= 0 \(0 = no limit\), got "soon"/],
    ["--format xml", ["table", "--db", next(), "--format", "xml"], /argument 'xml' is invalid\. Allowed choices are markdown, latex, csv, json/],
    ["an unknown option", ["sweep", grid, "--db", next(), "--job", "2"], /unknown option '--job'\n\(Did you mean --jobs\?\)/],
    ["an unknown command", ["sweeep", grid], /unknown command 'sweeep'\n\(Did you mean sweep\?\)/],
    ["a missing argument", ["sweep"], /missing required argument 'grid'/],
    ["a grid file that does not exist", ["sweep", join(dir, "nope.yaml"), "--db", next()], /nope\.yaml: cannot read grid file: ENOENT/],
    ["a database that does not exist (reading commands)", ["ls", "--db", next()], /results database .*r\d+\.db does not exist \(run `bench sweep <grid> --db .*r\d+\.db` first, or pass --db\)/],
  ];
  await Promise.all(cases.map(([name, args, re]) => t.test(name, async () => {
    const r = await benchAsync(args);
    assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /internal error/);
  })));
  assert.ok(n <= dbs.length);
  for (const d of [db, ...dbs]) assert.ok(!existsSync(d), `no database was created by a refused command (${d})`);
});

test("a grid larger than --max-runs is refused without --yes, and accepted with it", async () => {
  const dir = tempDir();
  const grid = join(dir, "g.yaml");
  writeFileSync(grid, GOOD.replace("seeds: [0]", "seeds: [0, 1, 2]")); // 12 runs
  const db = join(dir, "r.db");
  const refused = await benchAsync(["sweep", grid, "--db", db, "--max-runs", "10"]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /g\.yaml: the grid expands to 12 runs, more than --max-runs 10; pass --yes to run them all or raise --max-runs/);
  assert.ok(!existsSync(db));
  const accepted = await benchAsync(["sweep", grid, "--db", db, "--max-runs", "10", "--yes", "--dry-run"]);
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.match(accepted.stdout, /^12 runs, 3 dense model\(s\) to pretrain/);
  const atLimit = await benchAsync(["sweep", grid, "--db", db, "--max-runs", "12", "--dry-run"]);
  assert.equal(atLimit.code, 0, atLimit.stderr);
});
