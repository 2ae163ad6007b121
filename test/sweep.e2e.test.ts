import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { COMMON_METRIC_NAMES } from "../src/metrics/names.js";
import { readCheckpoint } from "../src/run/checkpoint.js";
import { Store } from "../src/store/store.js";
import { readArtifacts, readEpochs, readLayers, readRuns } from "../reports/read.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

test("bench sweep: grid → runs → SQLite, every metric filled, re-run skips, a killed worker loses nothing else", async (t) => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir);
  const db = join(dir, "results.db");
  const common = ["--db", db, "--cache-dir", join(dir, "cache"), "--jobs", "2", "--plain"];

  // Plan first to learn a run key to kill.
  const plan = bench(["sweep", grid, ...common, "--dry-run"]);
  assert.equal(plan.code, 0, plan.stderr);
  const victim = plan.stdout.split("\n").find((l) => l.includes("global-magnitude") && l.includes("sparsity 0.9"))!.split(" ")[0];

  await t.test("a worker SIGKILLed mid-training fails only its run", () => {
    const r = bench(["sweep", grid, ...common], { BENCH_FAULT_KILL_RUN: victim });
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const store = new Store(db);
    const runs = readRuns(store);
    store.close();
    assert.equal(runs.length, 4);
    const killed = runs.find((x) => x.key === victim)!;
    assert.equal(killed.status, "failed");
    assert.match(killed.error!, /died \(signal SIGKILL\)/);
    assert.deepEqual(runs.filter((x) => x.key !== victim).map((x) => x.status), ["done", "done", "done"]);
  });

  await t.test("running the same grid again retries only the failed run", () => {
    const r = bench(["sweep", grid, ...common]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /4 runs planned, 3 already finished, 1 to run/);
    const again = bench(["sweep", grid, ...common]);
    assert.match(again.stdout, /4 runs planned, 4 already finished, 0 to run/);
  });

  await t.test("every metric is recorded; compression = total / nonzero; saved pruned weights are zero where masked", () => {
    const store = new Store(db);
    const runs = readRuns(store);
    assert.ok(runs.every((r) => r.status === "done" && ["wasm", "native", "tensorflow"].includes(r.backend!) && r.tfjsVersion));
    for (const r of runs) {
      for (const name of COMMON_METRIC_NAMES) assert.ok(Number.isFinite(r.metrics[name]), `${r.key} ${name} = ${r.metrics[name]}`);
      assert.equal(r.metrics.compression_ratio, r.metrics.params_total! / r.metrics.params_nonzero!);
      assert.equal(r.metrics.params_total, 266_610);
      assert.ok(Math.abs(r.metrics.sparsity! - r.targetValue) < 1e-3, `sparsity ${r.metrics.sparsity} for target ${r.targetValue}`);
      const artifacts = readArtifacts(store, r.key);
      const weights = readCheckpoint(artifacts.find((a) => a.kind === "pruned-weights")!.path);
      const masks = readCheckpoint(artifacts.find((a) => a.kind === "masks")!.path);
      for (const [name, mask] of masks.tensors) {
        const w = weights.tensors.get(name)!.data;
        let masked = 0;
        mask.data.forEach((m, i) => { if (m === 0) { masked++; assert.ok(w[i] === 0, `${name}[${i}] pruned but ${w[i]}`); } });
        assert.ok(masked > 0);
      }
      const keys = new Set([r.key]);
      assert.equal(readLayers(store, keys).length, 3);
      const phases = readEpochs(store, keys).map((e) => e.phase);
      assert.deepEqual(phases.sort(), ["finetune", "pretrain", "pretrain"]);
    }
    // Both methods started from the same cached dense model.
    assert.equal(new Set(runs.map((r) => r.metrics.top1_dense)).size, 1);
    store.close();
  });

  await t.test("report, table and export read the database", () => {
    const html = join(dir, "report.html");
    const r = bench(["report", "--db", db, "-o", html]);
    assert.equal(r.code, 0, r.stderr);
    const page = readFileSync(html, "utf8");
    assert.doesNotMatch(page, /<script[^>]+src=["']https?:/);
    assert.match(page, /Trade-off curves/);
    const latex = bench(["table", "--db", db, "--format", "latex"]);
    assert.match(latex.stdout, /\\begin\{tabular\}[\s\S]*global-magnitude[\s\S]*\\end\{tabular\}/);
    const csv = bench(["export", "--db", db, "--format", "csv"]).stdout.trim().split("\n");
    assert.equal(csv.length, 5);
    assert.match(csv[0], /top1_after/);
    const missing = bench(["report", "--db", join(dir, "nope.db")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.db does not exist/);
  });

  await t.test("ls and show read the database", () => {
    const ls = bench(["ls", "--db", db, "--json"]);
    assert.equal(JSON.parse(ls.stdout).length, 4);
    const show = bench(["show", victim.slice(0, 8), "--db", db]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /global-magnitude/);
    assert.match(show.stdout, /fc1\s+dense\s+\[784x300\]/);
  });
});

test("bench sweep refuses bad grids with file:line, and oversize grids without --yes", () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir, "bogus_key: 1\n");
  const r = bench(["sweep", grid, "--db", join(dir, "x.db")]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /tiny\.yaml:11: bogus_key/);
  const ok = writeTinyGrid(dir);
  const big = bench(["sweep", ok, "--db", join(dir, "x.db"), "--max-runs", "3"]);
  assert.equal(big.code, 2);
  assert.match(big.stderr, /expands to 4 runs, more than --max-runs 3; pass --yes/);
});

test("--worker-max-rss replaces a worker that grew past the bound, and its runs still finish", () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir);
  const db = join(dir, "results.db");
  // 1 MiB: every worker is over the bound after its first job, so each job gets a fresh worker.
  const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--jobs", "1", "--plain", "--worker-max-rss", "1"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const store = new Store(db);
  const runs = readRuns(store);
  const pids = store.db.prepare("SELECT DISTINCT worker_pid FROM runs").all();
  store.close();
  assert.deepEqual(runs.map((x) => x.status), ["done", "done", "done", "done"]);
  // One worker slot (--jobs 1), yet every run ran in a fresh process.
  assert.equal(pids.length, 4);
});
