/**
 * `bench reproduce` and the catalogue of published tables: grading on a database written through the store
 * (reproduced with the difference, outside tolerance by how much, one-sided claims, not run with the grid to sweep,
 * dataset absent, runs graded even where the dataset's files are absent), the shipped catalogue checked against the
 * grids it names, catalogue mistakes reported with file and key, the command's exit codes, and the report section.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { renderHtmlReport } from "../reports/html.js";
import { readReportData } from "../reports/read.js";
import { CatalogueError, defaultCatalogue, gradeTable, parseTable, renderGrades } from "../reports/reproduce.js";
import { catalog } from "../src/catalog.js";
import { packageRoot } from "../src/core/locations.js";
import { PROTOCOL_VERSION, type Grid, type JobResult, type PlannedRun, type PruneTarget } from "../src/core/types.js";
import { loadGridFile } from "../src/grid/index.js";
import { methodLabel, targetLabel } from "../src/grid/label.js";
import { Store } from "../src/store/store.js";
import { bench, tempDir } from "./helpers/cli.js";
import { smallConfig } from "./helpers/config.js";

interface FixtureRun { method: string; label?: string; arch: string; dataset: string; target: PruneTarget; seed: number; top1: number; dense: number; tag?: string; epochs?: number; metrics?: Record<string, number> }

function database(runs: readonly FixtureRun[]): string {
  const path = join(tempDir("reproduce-"), "r.db");
  const store = new Store(path);
  const key = (r: FixtureRun) => `${r.dataset}-${r.arch}-${r.label ?? r.method}-${r.target.value}-${r.seed}${r.tag ?? ""}`;
  const planned: PlannedRun[] = runs.map((r) => ({
    key: key(r), denseKey: `d-${r.dataset}-${r.arch}-${r.seed}`, methodLabel: r.label ?? r.method, codeVersion: "test", dataFingerprint: "fp",
    config: (() => {
      const c = smallConfig({ method: { name: r.method, params: {} }, arch: r.arch, dataset: r.dataset, target: r.target, seed: r.seed });
      return r.epochs === undefined ? c : { ...c, pretrain: { ...c.pretrain, epochs: r.epochs } };
    })(),
  }));
  store.createSweep({ name: "repro", file: "g.yaml", reference: [] } as unknown as Grid, "name: repro\n", "test", planned);
  for (const r of runs) {
    const result: JobResult = {
      protocol: PROTOCOL_VERSION, kind: "run", key: key(r), status: "done", error: null, backend: { name: "cpu", tfjsVersion: "4", threads: 2 },
      metrics: { top1_dense: r.dense, top1_after: r.top1, ...r.metrics }, layers: [], epochs: [], artifacts: [],
      startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:01:00Z", host: "h", pid: 1,
    };
    store.saveResult(result);
  }
  store.close();
  return path;
}

const C32: PruneTarget = { kind: "compression", value: 32 };
const fm = (method: string, top1: number, seed: number, extra: Partial<FixtureRun> = {}): FixtureRun =>
  ({ method, arch: "mlp", dataset: "fashion-mnist", target: C32, seed, top1, dense: 0.88, ...extra });

/** Three seeds of global-magnitude (82, 83, 84 %) and of layer-magnitude (80 %), dense 88 %, and one cifar10 run. */
const RUNS: FixtureRun[] = [
  fm("global-magnitude", 0.82, 0), fm("global-magnitude", 0.83, 1), fm("global-magnitude", 0.84, 2),
  fm("layer-magnitude", 0.8, 0), fm("layer-magnitude", 0.8, 1), fm("layer-magnitude", 0.8, 2),
  { method: "hrank", arch: "resnet20", dataset: "cifar10", target: { kind: "macs-reduction", value: 0.5 }, seed: 0, top1: 0.9, dense: 0.91 },
];

const gridExists = (p: string) => p === "benchmarks/shrinkbench-fmnist.yaml";

const FMNIST_TABLE = `
id: fixture-fmnist
paper: "A. Author 2020"
table: "Table 9"
dataset: fashion-mnist
grid: benchmarks/shrinkbench-fmnist.yaml
tolerance: {abs: 1.0}
cells:
  - {arch: mlp, method: global-magnitude, compression: 32, metric: top1_after, value: 82.6, unit: percent, confirmed: true}
  - {arch: mlp, method: layer-magnitude, compression: 32, metric: top1_after, value: 83.0, unit: percent, confirmed: false}
  - {arch: mlp, method: {name: random, scope: global}, compression: 32, metric: top1_after, value: 50, unit: percent, confirmed: true}
  - {arch: mlp, method: global-magnitude, compression: 32, metric: delta_top1, claim: at-least, value: 0, unit: pt, tolerance: {abs: 0.5}, confirmed: true}
  - {arch: mlp, method: layer-magnitude, compression: 32, metric: top1_after, value: 0.805, std: 0.01, unit: fraction, tolerance: {std: 2}, confirmed: true}
  - {arch: mlp, method: a-method-of-the-paper, compression: 32, metric: top1_after, value: 90, unit: percent, confirmed: true}
  - {arch: mlp, method: global-magnitude, versus: layer-magnitude, compression: 32, metric: top1_after, claim: at-least, value: 0, unit: pt, tolerance: {abs: 0}, confirmed: true}
  - {arch: mlp, method: global-magnitude, versus: {name: random, scope: global}, compression: 32, metric: top1_after, value: 1, unit: pt, confirmed: true}
`;

const CIFAR_TABLE = `
id: fixture-cifar
paper: "B. Author 2020"
table: "Table 1"
dataset: cifar10
grid: null
grid_note: "somebody's branch"
tolerance: {abs: 0.5}
cells:
  - {arch: resnet20, method: hrank, macs_reduction: 0.5, metric: top1_after, value: 90.3, unit: percent, confirmed: true}
  - {arch: resnet20, method: hrank, macs_reduction: 0.7, metric: top1_after, value: 88, unit: percent, confirmed: true}
`;

function runsOf(path: string) {
  const store = new Store(path, { readonly: true });
  try {
    return readReportData(store).runs;
  } finally {
    store.close();
  }
}

test("grading: reproduced with the difference, outside tolerance by how much, one-sided claims, std tolerances, not run with what to do", () => {
  const table = parseTable(FMNIST_TABLE, "fixture.yaml", catalog(), gridExists);
  const g = gradeTable(table, runsOf(database(RUNS)), true);
  const [gm, lm, rnd, delta, lmStd, paperOwn, versus, versusMissing] = g.cells;
  // 82, 83, 84 %: mean 83 %, sample std 1 pt, 95 % t-interval 83 ± t(0.975, 2)·1/√3 with t = 4.302652729911275
  // (scipy.stats.t.ppf(0.975, 2)): 80.516–85.484.
  assert.equal(gm.status, "reproduced");
  assert.ok(Math.abs(gm.difference! - 0.004) < 1e-12, `83.0 − 82.6 = +0.4 pt, got ${gm.difference}`);
  assert.ok(Math.abs(gm.ours!.ci95![0] - (0.83 - 4.302652729911275 * 0.01 / Math.sqrt(3))) < 1e-9);
  assert.equal(lm.status, "outside tolerance");
  assert.ok(Math.abs(lm.beyond! - 0.02) < 1e-12, `|80 − 83| − 1 = 2 pt beyond, got ${lm.beyond}`);
  assert.equal(rnd.status, "not run");
  assert.equal(rnd.cell.label, "random(scope=global)");
  assert.match(rnd.reason, /sweep benchmarks\/shrinkbench-fmnist\.yaml/);
  // Δ vs dense: 83 − 88 = −5 pt, claimed ≥ 0 with 0.5 pt slack: 4.5 pt short.
  assert.equal(delta.status, "outside tolerance");
  assert.ok(Math.abs(delta.beyond! - 0.045) < 1e-12, `got ${delta.beyond}`);
  // 80.5 % ± 1 pt published, tolerance 2 stds = 2 pt: 80 % is within.
  assert.equal(lmStd.status, "reproduced");
  assert.ok(Math.abs(lmStd.tolerance - 0.02) < 1e-12);
  assert.equal(paperOwn.status, "not run");
  assert.match(paperOwn.reason, /a-method-of-the-paper is not a prunebench method yet/);
  // global − layer magnitude, paired by seed: 2, 3, 4 pt, so 3 pt ± 1 (same t-interval as above): at least 0, reproduced.
  assert.equal(versus.status, "reproduced");
  assert.equal(versus.ours!.n, 3);
  assert.ok(Math.abs(versus.ours!.mean - 0.03) < 1e-12 && Math.abs(versus.ours!.std! - 0.01) < 1e-12);
  assert.equal(versusMissing.status, "not run");
  assert.match(versusMissing.reason, /no runs of random\(scope=global\): sweep benchmarks\/shrinkbench-fmnist\.yaml/);
  assert.deepEqual(g.counts, { reproduced: 3, "outside tolerance": 2, "not run": 3, "dataset absent": 0 });

  const md = renderGrades([g], "markdown");
  assert.match(md, /\| mlp · global-magnitude · compression 32x \| top1_after \| 82\.60% \| 83\.00% ± 1\.00 \(n=3, CI 80\.52 to 85\.48\) \| \+0\.40 pt \| ±1\.00 pt \| reproduced \|/);
  assert.match(md, /\| mlp · global-magnitude − layer-magnitude · compression 32x \| top1_after \| ≥ 0\.00 pt \| \+3\.00 pt ± 1\.00 \(n=3, CI 0\.52 to 5\.48\) \| \+3\.00 pt \| 0\.00 pt \| reproduced \|/);
  assert.match(md, /\| 83\.00% \(unconfirmed\) \| 80\.00% ± 0\.00 \(n=3, CI 80\.00 to 80\.00\) \| −3\.00 pt \| ±1\.00 pt \| outside tolerance by 2\.00 pt \|/);
  const tex = renderGrades([g], "latex");
  assert.match(tex, /\\begin\{tabular\}/);
  assert.match(tex, /outside tolerance by 2\.00 pt/);
  assert.match(tex, /\\label\{tab:reproduce-fixture-fmnist\}/);
  assert.doesNotMatch(tex, /[±≥≤−·]/, "unicode signs are written as LaTeX math");
  const json = JSON.parse(renderGrades([g], "json"));
  assert.equal(json[0].cells[1].status, "outside tolerance");
});

test("grading: a table's dataset absent here says so (not an error), but runs already in the database are still graded", () => {
  const table = parseTable(CIFAR_TABLE, "fixture-cifar.yaml", catalog(), gridExists);
  const runs = runsOf(database(RUNS));
  const absent = gradeTable(table, runs, false);
  assert.equal(absent.cells[0].status, "reproduced", "the cifar10 run in the database is graded: 90.0 vs 90.3 within 0.5");
  assert.equal(absent.cells[1].status, "dataset absent");
  assert.match(absent.cells[1].reason, /cifar10 is not on this machine/);
  // Where presence is unknown (the report), a cell without runs is "not run", with the pending grid named.
  const unknown = gradeTable(table, runs);
  assert.equal(unknown.cells[1].status, "not run");
  assert.match(unknown.cells[1].reason, /no grid in benchmarks\/ runs it yet \(somebody's branch\)/);
});

test("grading says when it averaged runs of several protocols, or several runs of one seed (e.g. two sweeps)", () => {
  const table = parseTable(FMNIST_TABLE, "fixture.yaml", catalog(), gridExists);
  const twice = gradeTable(table, runsOf(database([fm("global-magnitude", 0.82, 0), fm("global-magnitude", 0.83, 0, { tag: "-again" })])), true);
  assert.equal(twice.cells[0].seeds, 1);
  assert.equal(twice.cells[0].repeatedSeeds, true);
  assert.match(renderGrades([twice], "text"), /reproduced \(a seed ran more than once, e.g. in several sweeps, and its runs were averaged: choose one with --sweep\)/);
  const protocols = gradeTable(table, runsOf(database([fm("global-magnitude", 0.82, 0), fm("global-magnitude", 0.83, 1, { epochs: 7 })])), true);
  assert.equal(protocols.cells[0].protocols, 2);
  assert.match(renderGrades([protocols], "text"), /reproduced \(averages runs of 2 protocols: choose one with --sweep\)/);
  // The fixture of the first test: one protocol, one run per seed, no remark.
  assert.doesNotMatch(renderGrades([gradeTable(table, runsOf(database(RUNS)), true)], "text"), /choose one with --sweep/);
});

test("a cell its grid cannot run says why, and is graded 'not run' with that reason", () => {
  const text = `${FMNIST_TABLE.trimEnd()}\n  - {arch: lenet5-caffe, method: global-magnitude, sparsity: 0.999, value: 50, unit: percent, confirmed: true, not_in_grid: "the grid stops at 32x"}\n`;
  const g = gradeTable(parseTable(text, "fixture.yaml", catalog(), gridExists), runsOf(database(RUNS)), true);
  const last = g.cells[g.cells.length - 1];
  assert.equal(last.status, "not run");
  assert.equal(last.reason, "not in benchmarks/shrinkbench-fmnist.yaml: the grid stops at 32x");
});

test("a cell on another metric is graded in that metric's unit (Han et al.'s FLOPs as 2xMACs are halved)", () => {
  const text = FMNIST_TABLE.replace(/cells:[^]*$/, `cells:
  - {arch: mlp, method: global-magnitude, compression: 32, metric: macs_effective, value: 16700, unit: 2xMACs, tolerance: {abs: 200}, confirmed: true}
`);
  const runs = [8000, 8100, 8300].map((m, seed) => fm("global-magnitude", 0.83, seed, { metrics: { macs_effective: m } }));
  const g = gradeTable(parseTable(text, "fixture.yaml", catalog(), gridExists), runsOf(database(runs)), true);
  // 16,700 FLOPs = 8,350 MACs ± 100; ours 8,133.33: 216.67 off, 116.67 beyond.
  assert.equal(g.cells[0].status, "outside tolerance");
  assert.ok(Math.abs(g.cells[0].beyond! - 116.6666667) < 1e-6);
  assert.match(renderGrades([g], "markdown"), /\| 8350 MACs \| 8133\.3333 MACs ± 152\.7525 \(n=3, CI 7753\.875 to 8512\.7916\) \| −216\.6667 MACs \| ±100 MACs \| outside tolerance by 116\.6667 MACs \|/);
});

test("catalogue mistakes are reported together, each with the file and key, typos with a did-you-mean", () => {
  const bad = `
id: Bad_Id
paper: p
table: t
dataset: fashon-mnist
grid: benchmarks/nope.yaml
cells:
  - {arch: mpl, method: globl-magnitude, compression: 32, value: 80, unit: percent, confirmed: true, tolerance: {abs: 1}}
  - {arch: mlp, method: {name: random, scpoe: global}, sparsity: 1.5, value: 80, unit: MACs, tolerance: {abs: 1}}
  - {arch: mlp, method: random, compression: 4, sparsity: 0.5, value: 80, unit: percent, confirmed: true}
`;
  assert.throws(() => parseTable(bad, "bad.yaml", catalog(), gridExists), (e: Error) => {
    assert.ok(e instanceof CatalogueError);
    for (const re of [
      /bad\.yaml: id: "Bad_Id" must be lowercase/,
      /bad\.yaml: dataset: unknown dataset "fashon-mnist"; did you mean "fashion-mnist"\?/,
      /bad\.yaml: grid: no grid file "benchmarks\/nope\.yaml"/,
      /bad\.yaml: cells\[0\]\.arch: unknown arch "mpl"; did you mean "mlp"\?/,
      /bad\.yaml: cells\[0\]\.method: unknown method "globl-magnitude"; did you mean "global-magnitude"\?/,
      /bad\.yaml: cells\[1\]\.method\.scpoe: random has no hyperparameter "scpoe"/,
      /bad\.yaml: cells\[1\]\.sparsity: must be a number in \[0, 1\)/,
      /bad\.yaml: cells\[1\]\.unit: "MACs" does not convert to top1_after's unit fraction/,
      /bad\.yaml: cells\[1\]\.confirmed: say true/,
      /bad\.yaml: cells\[2\]: give exactly one target/,
      /bad\.yaml: cells\[2\]\.tolerance: no tolerance/,
    ]) assert.match(e.message, re);
    return true;
  });
});

test("the shipped catalogue parses, and every cell of a table with a grid is one that grid runs", () => {
  const cat = catalog();
  const tables = defaultCatalogue();
  const ids = tables.map((t) => t.id);
  for (const id of ["shrinkbench-fmnist", "lth-fmnist", "lth-mnist", "han2015-t1", "guo2016-t1", "snip2019-t1", "li2017-t1-resnet56", "hrank2020-resnet56", "gate-decorator2019-resnet56"]) {
    assert.ok(ids.includes(id), `${id} is in the catalogue`);
  }
  for (const t of tables) {
    // Every shipped cell names a method prunebench has (a paper-only method would be allowed, but none is left).
    for (const c of t.cells) assert.ok(c.known && (!c.versus || c.versus.known), `${t.id}: ${c.label} is a prunebench method`);
    if (t.grid === null) {
      assert.ok(t.gridNote !== "", `${t.id}: a table without a grid says why`);
      continue;
    }
    const grid = loadGridFile(join(packageRoot(), t.grid), cat);
    assert.ok(grid.datasets.includes(t.dataset), `${t.id}: ${t.grid} runs ${t.dataset}`);
    const labels = grid.methods.map((m) => methodLabel(m, cat));
    const targets = new Set(grid.targets.map(targetLabel));
    for (const c of t.cells) {
      // IMP reports every round as a child run: 20 % of the remaining weights per round, so level k is 1 − 0.8^k.
      const levels = c.method.name.startsWith("imp") ? Array.from({ length: 30 }, (_, k) => targetLabel({ kind: "sparsity", value: 1 - 0.8 ** (k + 1) })) : [];
      const runs = grid.archs.includes(c.arch) && labels.includes(c.label) && (!c.versus || labels.includes(c.versus.label)) &&
        (targets.has(targetLabel(c.target)) || levels.includes(targetLabel(c.target)));
      // A cell its grid cannot run says why (not_in_grid); one that says so while the grid runs it is stale.
      assert.equal(runs, c.notInGrid === "", `${t.id}: ${t.grid} ${runs ? "runs" : "does not run"} ${c.arch} · ${c.label}${c.versus ? ` − ${c.versus.label}` : ""} · ${targetLabel(c.target)}${c.notInGrid ? `, yet the cell says: ${c.notInGrid}` : ` (it runs ${grid.archs.join(", ")}; ${labels.join(", ")}; ${[...targets].join(", ")})`}`);
    }
  }
});

test("bench reproduce: a table graded from the database, CIFAR tables 'dataset absent' (exit 0), an unknown id exit 2 with the catalogue, no id the catalogue", () => {
  const db = database([fm("global-magnitude", 0.82, 0), fm("global-magnitude", 0.83, 1), fm("global-magnitude", 0.824, 2)]);
  // A cache folder of our own: cifar10 is looked up there and in --data-dir, so it is absent whatever this machine has.
  const env = { XDG_CACHE_HOME: tempDir("repro-cache-"), BENCH_DATA_DIR: "" };
  const one = bench(["reproduce", "shrinkbench-fmnist", "--db", db], env);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /mlp · global-magnitude · compression 32x\s+top1_after\s+82\.60% \(unconfirmed\)\s+82\.47% ± 0\.50 \(n=3, CI 81\.22 to 83\.72\)\s+−0\.13 pt\s+±1\.00 pt\s+reproduced/);
  const all = bench(["reproduce", "--all", "--db", db, "--format", "markdown"], env);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /### li2017-t1-resnet56[^]*dataset absent: cifar10 is not on this machine/);
  assert.match(all.stdout, /### hrank2020-resnet56[^]*3 dataset absent/);
  const unknown = bench(["reproduce", "shrinkbench", "--db", db], env);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no published table "shrinkbench"; did you mean "shrinkbench-fmnist"\?/);
  assert.match(unknown.stderr, /lth-fmnist\s+Frankle, Carbin 2019/);
  const list = bench(["reproduce", "--db", db], env);
  assert.equal(list.code, 0, "neither an id nor --all: the catalogue");
  assert.match(list.stdout, /han2015-t1\s+Han, Pool, Tran, Dally 2015/);
  assert.equal(bench(["reproduce", "han2015-t1", "--all", "--db", db], env).code, 2, "an id and --all");
});

test("the report's reproduction section shows the grades of the tables the database has runs for, and says so when it has runs for none", () => {
  const page = (path: string) => {
    const store = new Store(path, { readonly: true });
    try {
      return renderHtmlReport(readReportData(store));
    } finally {
      store.close();
    }
  };
  const html = page(database(RUNS));
  const start = html.indexOf('<section id="reproduce"');
  assert.ok(start > 0, "the section is there");
  const s = html.slice(start, html.indexOf("</section>", start));
  assert.match(s, /shrinkbench-fmnist, fashion-mnist/);
  assert.match(s, /<td>mlp · global-magnitude · compression 32x<\/td><td>top1_after<\/td><td class="num">82\.60% \(unconfirmed\)<\/td><td class="num">83\.00% ± 1\.00 \(n=3, CI 80\.52 to 85\.48\)<\/td><td class="num">\+0\.40 pt<\/td><td class="num">±1\.00 pt<\/td><td class="grade ok">reproduced<\/td>/);
  assert.doesNotMatch(s, /lth-mnist/, "tables without runs in this database are left out");
  const none = page(database([fm("random", 0.5, 0, { target: { kind: "sparsity", value: 0.5 } })]));
  const n0 = none.indexOf('<section id="reproduce"');
  const ns = none.slice(n0, none.indexOf("</section>", n0));
  assert.match(ns, /No published table of the catalogue \(benchmarks\/published\/: gate-decorator2019-resnet56, .*han2015-t1, .*\) has runs in this database/);
  assert.doesNotMatch(ns, /<table/);
});

// Keep the fixture writer honest: a file written here is what parseTable reads.
test("a catalogue folder with two tables of one id is refused", () => {
  const dir = tempDir("catalogue-");
  writeFileSync(join(dir, "a.yaml"), FMNIST_TABLE);
  writeFileSync(join(dir, "b.yaml"), FMNIST_TABLE);
  assert.throws(() => defaultCatalogue(dir), /b\.yaml: id: "fixture-fmnist" is also the id of .*a\.yaml/);
});
