/**
 * Every bad input gets a clear error through the real command line: exit code 2, the file:line, the key, the bad
 * value, and the valid choices or a did-you-mean; and a sweep that refuses its input writes nothing.
 * (Random grids are covered by test/grid.property.test.ts; these are the mistakes people actually make.)
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { BENCH, bench, tempDir } from "./helpers/cli.js";

/** Bad inputs tried across this file, printed at the end. */
let triedInputs = 0;

async function tfjsNodeInstalled(): Promise<boolean> {
  try {
    await import("@tensorflow/tfjs-node" as string);
    return true;
  } catch {
    return false;
  }
}

/** `bench …` without blocking, so the cases run side by side. */
function benchAsync(args: string[], cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BENCH, ...args], { stdio: ["ignore", "pipe", "pipe"], cwd });
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
      line(10, `sparsity: unknown key "sparsity"; did you mean "sparsities"\\? valid: name, description, methods, archs, datasets, sparsities, compressions, macs_reductions, seeds`),
    ],
  },
  {
    name: "an empty axis",
    text: sub("methods: [random, global-magnitude]", "methods: []"),
    errors: [line(2, "methods: expected a non-empty list of methods .*, got an empty list")],
  },
  {
    // Names every JavaScript object has: they once reached a lookup that found Object.prototype's members.
    name: "names of Object.prototype members are unknown names, not internal errors",
    text: sub("archs: [mlp]", "archs: [constructor]").replace("[fashion-mnist-mini]", "[toString]") + "method_params: {__proto__: {}}\n",
    errors: [
      line(3, `archs\\[0\\]: unknown arch "constructor"; valid: mlp, lenet5, lenet5-caffe, conv2, conv4, conv6, resnet20, resnet32, resnet56`),
      line(4, `datasets\\[0\\]: unknown dataset "toString"; valid: fashion-mnist-mini, fashion-mnist, mnist, cifar10`),
      line(10, `method_params\\.__proto__: unknown method "__proto__"; valid: random, global-magnitude, layer-magnitude`),
    ],
  },
  {
    name: "a schedule that cannot run, and a hyperparameter out of its range (RigL's ΔT 0)",
    text: sub("methods: [random, global-magnitude]", "methods: [{name: gmp, start: 0.8, end: 0.5}, {name: rigl, interval: 0}]"),
    errors: [
      line(2, "methods\\[0\\]: method gmp: its schedule cannot run: needs 0 <= start < end <= 1, got start 0\\.8, end 0\\.5"),
      line(2, "methods\\[1\\]\\.interval: expected an integer >= 1, got 0"),
    ],
  },
  {
    name: "unknown method, arch and dataset, with did-you-mean",
    text: sub("[random, global-magnitude]", "[random, global-magnitud]").replace("[mlp]", "[lenet]").replace("[fashion-mnist-mini]", "[fashion-mnsit]"),
    errors: [
      line(2, `methods\\[1\\]: unknown method "global-magnitud"; did you mean "global-magnitude"\\? valid: random, global-magnitude, layer-magnitude`),
      line(3, `archs\\[0\\]: unknown arch "lenet"; did you mean "lenet5"\\? valid: mlp, lenet5, lenet5-caffe, conv2, conv4, conv6, resnet20, resnet32, resnet56`),
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
    errors: [line(6, "compressions: give exactly one of sparsities / compressions / macs_reductions, not several \\(sparsities is on line 5\\)")],
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
      line(11, `reference\\[0\\]\\.arch: unknown arch "mpl"; did you mean "mlp"\\? valid: mlp, lenet5, lenet5-caffe, conv2, conv4, conv6, resnet20, resnet32, resnet56`),
      line(11, `reference\\[0\\]\\.method: unknown method "globl-magnitude"; did you mean "global-magnitude"\\? valid: random, global-magnitude, layer-magnitude, (?:[a-z0-9-]+, )*dense`),
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
    name: "protocol knobs: nesterov with adam, misspelt selection, augmentation and init, statistics of unequal length",
    text: sub("pretrain: {epochs: 1, batch_size: 64, lr: 0.05}", "pretrain: {epochs: 1, batch_size: 64, lr: 0.05, optimizer: adam, nesterov: true}")
      .replace("lr: 0.01}", "lr: 0.01, select: best}")
      .replace("test_subset: 400}", "test_subset: 400, augment: crop, normalize: {mean: [0.1307, 0.5], std: [0.3081]}}") + "model: {init: he_normal}\n",
    errors: [
      line(7, "pretrain\\.nesterov: nesterov momentum is an SGD setting, but pretrain\\.optimizer is adam; valid with adam: false"),
      line(8, `finetune\\.select: unknown selection "best"; .*valid: best-val, final`),
      line(9, `data\\.augment: unknown augmentation "crop"; did you mean "crop-flip"\\? valid: auto, none, crop-flip`),
      line(9, "data\\.normalize\\.std: std has 1 values and mean 2: give one of each per channel"),
      line(10, `model\\.init: unknown init "he_normal"; did you mean "he-normal"\\? valid: torch-default, he-uniform, he-normal, glorot-uniform`),
    ],
  },
  {
    name: "val_fraction 0 while fine-tuning selects on the validation split",
    text: sub("data: {train_subset: 600, test_subset: 400}", "data: {train_subset: 600, test_subset: 400, val_fraction: 0}"),
    errors: [line(9, "data\\.val_fraction: 0 leaves no validation split, but finetune\\.select is best-val \\(the default\\), .*set finetune\\.select: final")],
  },
  {
    name: "a grid file over 1 MiB",
    text: GOOD + "#".repeat(1024 * 1024),
    errors: [/g\.yaml: cannot read grid file: it is \d+ bytes, over the 1 MiB limit for grid files/],
  },
  {
    name: "ablations: a near-miss value and a duplicate",
    text: GOOD + "ablations: [none, layer-shufle, none]\n",
    errors: [
      line(10, `ablations\\[1\\]: unknown ablation "layer-shufle"; did you mean "layer-shuffle"\\? valid: none, layer-shuffle, reinit`),
      line(10, "ablations\\[2\\]: duplicate ablation none \\(same as ablations\\[0\\]\\)"),
    ],
  },
  {
    name: "ablations on a method whose masks keep changing (gradual)",
    text: sub("methods: [random, global-magnitude]", "methods: [random, gmp]") + "ablations: [none, reinit]\n",
    errors: [line(10, "ablations\\[1\\]: ablation reinit modifies the masks once, after pruning and before training, but these methods keep changing their masks: gmp \\(methods\\[1\\], line 2: gradual\\); ablations apply to one-shot and at-init methods")],
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
    triedInputs += 2;
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
  const dbs = Array.from({ length: 24 }, (_, i) => join(dir, `r${i}.db`));
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
    // SQLite opens "" as a temporary database: the sweep would say "2 done" and keep nothing.
    ["--db \"\"", ["sweep", grid, "--db", ""], /option '--db <file>' argument '' is invalid\. give a file name, e\.g\. results\.db/],
    ["--jobs 1000", ["sweep", grid, "--db", next(), "--jobs", "1000"], /--jobs 1000 is more than \d+ \(4 per CPU, \d+ CPUs here\).*use at most \d+/],
    ["--jobs 1e3", ["sweep", grid, "--db", next(), "--jobs", "1e3"], /--jobs must be a positive integer, got "1e3"/],
    ["--max-runs 0x10", ["sweep", grid, "--db", next(), "--max-runs", "0x10"], /--max-runs must be a positive integer, got "0x10"/],
    ["--worker-max-rss lots", ["sweep", grid, "--db", next(), "--worker-max-rss", "lots"], /--worker-max-rss must be a number of MiB >= 0 \(0 = no limit\), got "lots"/],
    // mkdir -p under /proc waits forever: these hung before they were checked.
    ["--db under /proc", ["sweep", grid, "--db", "/proc/x.db"], /--db \/proc\/x\.db: its folder \/proc is on the kernel's proc pseudo file system; give a folder on a disk/],
    ["--artifacts-dir under /proc", ["sweep", grid, "--db", next(), "--artifacts-dir", "/proc/self/x"], /--artifacts-dir \/proc\/self\/x is on the kernel's proc pseudo file system/],
    ["--cache-dir under /proc", ["sweep", grid, "--db", next(), "--cache-dir", "/proc/1/x"], /--cache-dir \/proc\/1\/x is on the kernel's proc pseudo file system/],
    ["--db a folder", ["sweep", grid, "--db", dir], /--db .* exists and is not a regular file \(it is a folder\)/],
    ["--cache-dir a file", ["sweep", grid, "--db", next(), "--cache-dir", grid], /--cache-dir .*g\.yaml exists and is not a folder/],
    ["--backend node, not installed", ["sweep", grid, "--db", next(), "--backend", "node"], /--backend node: node backend unavailable: @tensorflow\/tfjs-node is not installed\..*or pass --backend wasm/],
  ];
  if (await tfjsNodeInstalled()) cases.pop();
  await Promise.all(cases.map(([name, args, re]) => t.test(name, async () => {
    const r = await benchAsync(args);
    triedInputs++;
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

/** A results database in `dir` holding one finished sweep of two runs. */
function finishedDatabase(dir: string, name: string): string {
  const grid = join(dir, "g.yaml");
  writeFileSync(grid, GOOD.replace("sparsities: [0.5, 0.9]", "sparsities: [0.5]"));
  const db = join(dir, name);
  const made = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--plain"]);
  assert.equal(made.code, 0, made.stdout + made.stderr);
  return db;
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

test("reading commands never write over a database or someone else's file, and refuse bad options with the valid choices", { concurrency: 4 }, async (t) => {
  const dir = tempDir();
  // The default database name, in the working directory: `bench report -o results.db` once destroyed it.
  const db = finishedDatabase(dir, "results.db");
  const dbHash = sha256(db);
  const notes = join(dir, "notes.yaml");
  writeFileSync(notes, "my: notes\n");
  const oldReport = join(dir, "old.html");
  writeFileSync(oldReport, "<!DOCTYPE html><p>an earlier report</p>\n");
  const cases: Array<[string, string[], RegExp]> = [
    ["report -o the default database", ["report", "-o", "results.db"], /-o results\.db is the results database this command reads; give the output another name/],
    ["report -o its --db, even with --force", ["report", "--db", db, "-o", db, "--force"], /is the results database this command reads/],
    ["export -o its --db", ["export", "--db", db, "-o", db], /is the results database this command reads/],
    ["table -o its --db", ["table", "--db", db, "-o", db], /is the results database this command reads/],
    ["report -o a file that is not HTML", ["report", "--db", db, "-o", notes], /-o .*notes\.yaml already exists and it is not an HTML file: refusing to overwrite it; give another name, or pass --force to replace it/],
    ["export -o a file of another kind", ["export", "--db", db, "-o", notes], /already exists and its extension \.yaml is not one of csv's \(\.csv, \.tsv, \.txt\)/],
    ["report -o a folder", ["report", "--db", db, "-o", dir], /-o .* is a folder; give a file name, e\.g\. .*report\.html/],
    ["report -o in a missing folder", ["report", "--db", db, "-o", join(dir, "nope", "r.html")], /folder .*nope does not exist; create it first/],
    ["report -o under /proc", ["report", "--db", db, "-o", "/proc/x.html"], /its folder \/proc is on the kernel's proc pseudo file system/],
    ["export -o under /proc/self", ["export", "--db", db, "-o", "/proc/self/x.csv"], /its folder \/proc\/self is on the kernel's proc pseudo file system/],
    ["table -o a device", ["table", "--db", db, "-o", "/dev/null"], /-o \/dev\/null exists and is not a regular file \(a device or pipe\); write to a file, or leave out -o to print to stdout/],
    ["table --group-by with a typo", ["table", "--db", db, "--group-by", "dataset,archh"], /--group-by: unknown value "archh"; did you mean "arch"\? valid: dataset, arch, method, target/],
    ["table --group-by twice", ["table", "--db", db, "--group-by", "arch,arch"], /--group-by lists "arch" twice/],
    ["table --metrics with a typo", ["table", "--db", db, "--metrics", "top1_aftr"], /--metrics: unknown value "top1_aftr"; did you mean "top1_after"\? valid: top1_dense, /],
    ["table --metrics empty", ["table", "--db", db, "--metrics", ""], /--metrics is empty; give one or more of: top1_dense, /],
    ["ls --status with a typo", ["ls", "--db", db, "--status", "dnoe"], /--status: unknown value "dnoe"; did you mean "done"\? valid: pending, running, done, failed, diverged, interrupted/],
    ["ls --sweep that does not exist", ["ls", "--db", db, "--sweep", "999"], /--sweep 999: no such sweep; sweeps in .*results\.db: 1/],
    ["report --compare-sweep that does not exist", ["report", "--db", db, "-o", join(dir, "c.html"), "--compare-sweep", "99"], /--compare-sweep 99: no such sweep; sweeps in .*: 1/],
    ["export --sweep -1", ["export", "--db", db, "--sweep", "-1"], /--sweep must be a sweep id \(a positive integer\), got "-1"; sweeps in .*: 1/],
    ["show with LIKE wildcards", ["show", "--db", db, "________________"], /"________________" is not a run key: keys are 16 hex characters/],
    ["show with a 100,000-character key", ["show", "--db", db, "a".repeat(100_000)], /"a{40}…" is not a run key/],
  ];
  await Promise.all(cases.map(([name, args, re]) => t.test(name, async () => {
    const r = await benchAsync(args, dir);
    triedInputs++;
    assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  })));
  assert.equal(sha256(db), dbHash, "the database is untouched");
  assert.equal(readFileSync(notes, "utf8"), "my: notes\n", "a foreign file is untouched");
  assert.ok(!existsSync(join(dir, "c.html")), "a refused report writes nothing");

  // Control: a previous report is replaced; a foreign file only with --force; nothing temporary is left.
  const again = bench(["report", "--db", db, "-o", oldReport]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(readFileSync(oldReport, "utf8"), /^<!DOCTYPE html>/i);
  assert.doesNotMatch(readFileSync(oldReport, "utf8"), /an earlier report/);
  const forced = bench(["report", "--db", db, "-o", notes, "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(readFileSync(notes, "utf8"), /^<!DOCTYPE html>/i);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes(".tmp-")), [], "no temporary files left");
});

test("an output that does not fit on its disk fails cleanly: the previous file stays whole, no temporary file is left", { skip: process.getuid?.() !== 0 && "needs root to mount a small tmpfs" }, () => {
  const dir = tempDir();
  const db = finishedDatabase(dir, "r.db");
  const small = join(dir, "small");
  mkdirSync(small);
  // A report inlines Vega (about 850 KiB): 256 KiB cannot hold it.
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", small]);
  try {
    const out = join(small, "report.html");
    writeFileSync(out, "<!DOCTYPE html><p>the report of yesterday</p>\n");
    const r = bench(["report", "--db", db, "-o", out]);
    triedInputs++;
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /cannot write .*report\.html: no space left on the device/);
    assert.equal(readFileSync(out, "utf8"), "<!DOCTYPE html><p>the report of yesterday</p>\n");
    assert.deepEqual(readdirSync(small), ["report.html"]);
  } finally {
    execFileSync("umount", [small]);
  }
});

test("a named backend that cannot start, or a --db that is not a results database, is refused before anything is created", async () => {
  const dir = tempDir();
  const grid = join(dir, "g.yaml");
  writeFileSync(grid, GOOD);
  const env = { ...process.env, PRUNEBENCH_NATIVE_ADDON: join(dir, "missing.node") };
  const native = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BENCH, "sweep", grid, "--db", join(dir, "n.db"), "--cache-dir", join(dir, "cache"), "--backend", "native"], { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stderr }));
  });
  triedInputs++;
  assert.equal(native.code, 2, native.stderr);
  assert.match(native.stderr, /--backend native: native backend unavailable: native addon not built: .*missing\.node is missing.*apt-get install -y libtorch-dev libdnnl-dev && npm run build:native`, or pass --backend wasm/);
  assert.deepEqual(readdirSync(dir).sort(), ["g.yaml"], "no database, cache or artifacts folder");

  // Someone else's file as --db: the database check comes before any folder is made.
  const foreign = join(dir, "notes.txt");
  writeFileSync(foreign, "not a database\n");
  const r = await benchAsync(["sweep", grid, "--db", foreign, "--cache-dir", join(dir, "cache")]);
  triedInputs++;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /notes\.txt/);
  assert.equal(readFileSync(foreign, "utf8"), "not a database\n");
  assert.deepEqual(readdirSync(dir).sort(), ["g.yaml", "notes.txt"], "no cache or artifacts folder");
});

test("under `ulimit -v` the runs fail as out of memory, not as a missing install", { skip: process.platform !== "linux" && "reads /proc/self/limits" }, () => {
  const dir = tempDir();
  const grid = join(dir, "g.yaml");
  writeFileSync(grid, GOOD.replace("sparsities: [0.5, 0.9]", "sparsities: [0.5]").replace("methods: [random, global-magnitude]", "methods: [random]"));
  const db = join(dir, "r.db");
  // 6 GB of address space is plenty for Node, not for WebAssembly's reservation.
  const r = spawnSync("bash", ["-c", `ulimit -v 6000000 && exec "${process.execPath}" "${BENCH}" sweep "${grid}" --db "${db}" --cache-dir "${join(dir, "cache")}" --backend wasm --plain`], { encoding: "utf8" });
  triedInputs++;
  assert.equal(r.status, 3, r.stdout + r.stderr);
  const shown = bench(["ls", "--db", db, "--json"]);
  const runs = JSON.parse(shown.stdout) as Array<{ status: string; error: string }>;
  assert.equal(runs.length, 1);
  assert.equal(runs[0].status, "failed");
  assert.match(runs[0].error, /out of memory: the wasm backend could not reserve its memory \(this process may use 5\.7 GiB of address space: ulimit -v 6000000\)\..*raise or remove the limit/);
  assert.doesNotMatch(runs[0].error, /Check that .* is installed/);
});

test("--dry-run never downloads or writes: a dataset that is not on this machine is planned with unknown keys", async () => {
  const dir = tempDir();
  const grid = join(dir, "g.yaml");
  writeFileSync(grid, GOOD.replace("[fashion-mnist-mini]", "[mnist]"));
  const cache = join(dir, "xdg-cache");
  const r = spawnSync(process.execPath, [BENCH, "sweep", grid, "--db", join(dir, "r.db"), "--dry-run"], {
    encoding: "utf8", env: { ...process.env, XDG_CACHE_HOME: cache, BENCH_DATA_DIR: "" },
  });
  triedInputs++;
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^4 runs, 1 dense model\(s\) to pretrain\nnot on this machine \(a sweep would download them; a dry run does not\): mnist/);
  assert.match(r.stdout, /^\?\s+mnist\s+mlp\s+random\s+sparsity 0\.5\s+0\s+\?$/m);
  assert.doesNotMatch(r.stderr, /downloading/);
  assert.deepEqual(readdirSync(dir), ["g.yaml"], "no cache, database or artifacts");
});

test("bad-input tally", (t) => {
  t.diagnostic(`bad inputs: ${triedInputs} tried, each ended with a message naming what was wrong and its documented exit code`);
  assert.ok(triedInputs > 0);
});
