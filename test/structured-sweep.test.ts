/**
 * A structured run end to end through `bench sweep`: every metric is recorded (the common ones and the structured
 * ones), the compacted model is what the counts say, and the run meets its MACs target.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { METRIC_NAMES } from "../src/metrics/names.js";
import { Store } from "../src/store/store.js";
import { readRuns } from "../reports/read.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

test("a structured sweep records every metric; the compacted model has the surviving parameters and meets the MACs target; bench latency re-times it", () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir, "", { methods: "[l1-filter]", archs: "[lenet5]", targets: "macs_reductions: [0.5]", data: "{train_subset: 300, test_subset: 200}" });
  const db = join(dir, "r.db");
  const r = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--artifacts-dir", join(dir, "art"), "--jobs", "1", "--plain"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const store = new Store(db);
  const runs = readRuns(store);
  store.close();
  assert.equal(runs.length, 1);
  const m = runs[0].metrics;
  for (const name of METRIC_NAMES) assert.ok(Number.isFinite(m[name]), `${name} = ${m[name]}`);
  assert.equal(m.latency_form_compacted, 1);
  assert.ok(m.target_achieved! >= 0.5, `MACs reduction achieved ${m.target_achieved}`);
  assert.ok(Math.abs(1 - m.macs_compacted! / m.macs_dense! - m.target_achieved!) < 1e-9);
  assert.equal(m.params_compacted, m.params_nonzero, "the compacted model holds exactly the surviving parameters");
  assert.ok(m.compacted_max_abs_diff! < 1e-4);

  // `bench latency` times the same two models again from what the run saved, and writes nothing.
  const before = readFileSync(db);
  const l = bench(["latency", "--db", db, "--json", "--repeats", "2"]);
  assert.equal(l.code, 0, l.stdout + l.stderr);
  const timed = JSON.parse(l.stdout);
  assert.equal(timed.runs.length, 1);
  const row = timed.runs[0];
  assert.equal(row.key, runs[0].key);
  assert.equal(row.theoreticalSpeedup, m.theoretical_speedup);
  assert.deepEqual(row.batches.map((b: { batch: number }) => b.batch), [1, m.latency_train_batch]);
  for (const b of row.batches) {
    assert.ok(b.dense.medianMs > 0 && b.compacted.medianMs > 0 && Math.abs(b.speedup - b.dense.medianMs / b.compacted.medianMs) < 1e-12, JSON.stringify(b));
  }
  assert.ok(readFileSync(db).equals(before), "the database is not written");
  const none = bench(["latency", "--db", db, "--arch", "mlp"]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no finished structured run/);
});
