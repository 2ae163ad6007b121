/**
 * `bench merge` under the real CLI, on small databases written through the store (no training): what lands in the
 * merged database, that merging again changes nothing, that a key with different results is reported and never
 * silently overwritten, and the files it must refuse to write.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { PROTOCOL_VERSION, type Grid, type JobResult, type PlannedRun, type RunStatus } from "../src/core/types.js";
import { MIGRATIONS, SCHEMA_VERSION } from "../src/store/migrations.js";
import { isMachineMeasurement } from "../src/store/merge.js";
import { levelRunKey, Store } from "../src/store/store.js";
import { bench, tempDir } from "./helpers/cli.js";
import { smallConfig } from "./helpers/config.js";

interface Fixture {
  key: string;
  status?: RunStatus;
  top1?: number;
  seconds?: number;
  /** iterative run: top-1 of each level (the last is the run's own) */
  levels?: number[];
}

function database(dir: string, name: string, runs: readonly Fixture[], sweepName = name): string {
  const path = join(dir, `${name}.db`);
  const store = new Store(path);
  const planned: PlannedRun[] = runs.map((r, i) => ({
    key: r.key, denseKey: "dense-0", methodLabel: "global-magnitude", codeVersion: "test", dataFingerprint: "fp",
    config: smallConfig({ seed: i }),
  }));
  const grid = { name: sweepName, file: `${sweepName}.yaml`, reference: [{ method: "paper", top1_after: 0.9 }] } as unknown as Grid;
  store.createSweep(grid, `name: ${sweepName}\n`, "test", planned);
  for (const r of runs) {
    const status = r.status ?? "done";
    if (status === "pending") continue;
    if (status === "failed") {
      store.markFailed(r.key, "failed", "worker crashed");
      continue;
    }
    const level = (top1: number) => ({
      metrics: { top1_after: top1, sparsity: 0.9, compression_ratio: 10, params_nonzero: 100, total_seconds: r.seconds ?? 1, latency_pruned_ms: (r.seconds ?? 1) * 3 },
      layers: [{ name: "fc1", kind: "dense" as const, shape: [4, 2], params: 8, nonzero: 1, macs: 8, macsEffective: 1, prunable: true }],
      epochs: [{ phase: "finetune" as const, epoch: 1, loss: 0.5, trainAcc: 0.8, valAcc: 0.79, lr: 0.01, seconds: r.seconds ?? 1, dnr: 0.1 }],
      classes: [{ phase: "after" as const, label: 0, name: "T-shirt", correct: Math.round(top1 * 10), count: 10 }],
    });
    const levels = (r.levels ?? []).map((top1, i) => ({ level: i + 1, ...level(top1) }));
    const result: JobResult = {
      protocol: PROTOCOL_VERSION, kind: "run", key: r.key, status: status as JobResult["status"], error: null, backend: { name: "cpu", tfjsVersion: "4", threads: 1 },
      ...level(r.top1 ?? 0.8), artifacts: [{ kind: "masks", path: `/somewhere/${r.key}/masks.bin`, sha256: `sha-${r.seconds ?? 1}`, bytes: 8 }],
      startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:01:00Z", host: name, pid: 1,
      ...(levels.length ? { levels } : {}),
    };
    store.saveResult(result);
  }
  store.close();
  return path;
}

/** Every row of every table, ids and all: what "merging again changes nothing" compares. */
function dump(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true });
  try {
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as Array<{ name: string }>).map((t) => t.name);
    return Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}" ORDER BY 1, 2`).all()]));
  } finally {
    db.close();
  }
}

function query<T>(path: string, sql: string, ...args: unknown[]): T[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
}
const top1 = (db: string, key: string) => query<{ value: number }>(db, `SELECT value FROM metrics WHERE run_key = ? AND name = 'top1_after'`, key)[0]?.value;

describe("bench merge", () => {
  it("carries runs of sweeps run apart with every per-run row, sweeps and references; merging again changes nothing", () => {
    const dir = tempDir("merge-");
    const a = database(dir, "a", [{ key: "k1" }, { key: "k2", top1: 0.7 }]);
    const b = database(dir, "b", [{ key: "k3", levels: [0.85, 0.83, 0.81], top1: 0.81 }, { key: "k4", status: "pending" }]);
    const c = join(dir, "c.db");
    const r = bench(["merge", a, b, "--into", c]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /a\.db: 2 runs: 2 added, 0 unchanged, 0 differing; 1 sweep\(s\) added/);
    assert.match(r.stdout, /b\.db: 2 runs: 2 added/);

    const runs = query<{ key: string; status: string; parent_key: string | null; level: number | null }>(c, `SELECT key, status, parent_key, level FROM runs ORDER BY key`);
    const children = [levelRunKey("k3", 1), levelRunKey("k3", 2)];
    assert.deepEqual(runs.map((x) => x.key).sort(), ["k1", "k2", "k3", "k4", ...children].sort());
    assert.equal(runs.find((x) => x.key === "k4")!.status, "pending");
    assert.deepEqual(runs.filter((x) => x.parent_key === "k3").map((x) => x.level).sort(), [1, 2]);
    assert.equal(top1(c, "k2"), 0.7);
    assert.equal(top1(c, children.find((k) => runs.find((x) => x.key === k)!.level === 1)!), 0.85);
    // Per-run tables travel whole, for children too.
    for (const table of ["metrics", "layers", "epochs", "artifacts", "class_accuracy"]) {
      const count = (db: string) => query<{ n: number }>(db, `SELECT count(*) AS n FROM ${table}`)[0].n;
      assert.equal(count(c), count(a) + count(b), table);
    }
    assert.equal(query<{ n: number }>(c, `SELECT count(*) AS n FROM class_accuracy WHERE run_key IN (?, ?)`, ...children)[0].n, 2);
    const sweeps = query<{ id: number; name: string }>(c, `SELECT id, name FROM sweeps ORDER BY id`);
    assert.deepEqual(sweeps.map((s) => s.name), ["a", "b"]);
    const sweepB = sweeps[1].id;
    assert.deepEqual(query<{ run_key: string }>(c, `SELECT run_key FROM sweep_runs WHERE sweep_id = ? ORDER BY run_key`, sweepB).map((x) => x.run_key),
      ["k3", "k4", ...children].sort());
    assert.equal(query<{ n: number }>(c, `SELECT count(*) AS n FROM references_`)[0].n, 2);
    assert.equal(query<{ v: number }>(c, `PRAGMA user_version`).length, 1);

    const before = dump(c);
    const again = bench(["merge", a, b, "--into", c]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /a\.db: 2 runs: 0 added, 2 unchanged, 0 differing; 0 sweep\(s\) added/);
    assert.deepEqual(dump(c), before);
    const json = bench(["merge", a, b, "--into", c, "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const summary = JSON.parse(json.stdout);
    assert.equal(summary.written, true);
    assert.deepEqual(summary.conflicts, []);
    assert.deepEqual(summary.inputs.map((i: { added: number; unchanged: number }) => [i.added, i.unchanged]), [[0, 2], [0, 2]]);
    // The other order, and one input twice: still nothing new.
    assert.equal(bench(["merge", b, a, a, "--into", c]).code, 0);
    assert.deepEqual(dump(c), before);
  });

  it("the same key finished on two machines: timings differ (not a conflict), a finished run completes an unfinished one", () => {
    const dir = tempDir("merge-");
    const a = database(dir, "a", [{ key: "k1", seconds: 1 }, { key: "k2", status: "pending" }, { key: "k3", status: "failed" }, { key: "k4" }]);
    const b = database(dir, "b", [{ key: "k1", seconds: 7 }, { key: "k2", top1: 0.6 }, { key: "k3", top1: 0.65 }, { key: "k4", status: "failed" }]);
    const c = join(dir, "c.db");
    const r = bench(["merge", a, b, "--into", c]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /b\.db: 4 runs: 2 added, 2 unchanged, 0 differing/);
    const status = new Map(query<{ key: string; status: string }>(c, `SELECT key, status FROM runs`).map((x) => [x.key, x.status]));
    assert.deepEqual(Object.fromEntries(status), { k1: "done", k2: "done", k3: "done", k4: "done" });
    assert.equal(top1(c, "k2"), 0.6);
    assert.equal(top1(c, "k3"), 0.65);
    // k1 kept a's row (merged first), its timing with it.
    assert.equal(query<{ value: number }>(c, `SELECT value FROM metrics WHERE run_key = 'k1' AND name = 'total_seconds'`)[0].value, 1);
    assert.ok(isMachineMeasurement("total_seconds") && isMachineMeasurement("latency_pruned_ms") && isMachineMeasurement("measured_speedup"));
    assert.ok(!isMachineMeasurement("top1_after") && !isMachineMeasurement("compression_ratio") && !isMachineMeasurement("loss_after"));
  });

  it("a key with different results is reported with what differs and nothing is written, unless --on-conflict says which side wins", () => {
    const dir = tempDir("merge-");
    const a = database(dir, "a", [{ key: "k1", top1: 0.8 }, { key: "k2" }]);
    const b = database(dir, "b", [{ key: "k1", top1: 0.9 }, { key: "k3" }]);
    const c = join(dir, "c.db");
    const r = bench(["merge", a, b, "--into", c]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /1 run key\(s\) with different results \(nothing was written\)/);
    assert.match(r.stderr, /k1 \(.*b\.db\): metric top1_after: 0\.8 vs 0\.9; class_accuracy: 2 row\(s\) differ/);
    assert.match(r.stderr, /--on-conflict first .* --on-conflict last/);
    assert.equal(query<{ n: number }>(a, `SELECT count(*) AS n FROM runs`)[0].n, 2);
    assert.throws(() => readFileSync(c), /ENOENT/, "a new --into is not left behind");

    // An existing target stays exactly as it was.
    const existing = join(dir, "existing.db");
    assert.equal(bench(["merge", a, "--into", existing]).code, 0);
    const before = dump(existing);
    assert.equal(bench(["merge", b, "--into", existing]).code, 4);
    assert.deepEqual(dump(existing), before);

    const first = join(dir, "first.db");
    const f = bench(["merge", a, b, "--into", first, "--on-conflict", "first"]);
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stderr, /kept the run merged first/);
    assert.equal(top1(first, "k1"), 0.8);
    assert.equal(top1(first, "k3"), 0.8, "the rest of b merged");

    const last = join(dir, "last.db");
    const l = bench(["merge", a, b, "--into", last, "--on-conflict", "last"]);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(top1(last, "k1"), 0.9);
    assert.equal(query<{ correct: number }>(last, `SELECT correct FROM class_accuracy WHERE run_key = 'k1'`)[0].correct, 9);
    assert.equal(query<{ n: number }>(last, `SELECT count(*) AS n FROM metrics WHERE run_key = 'k1'`)[0].n, 6, "old rows replaced, not added to");
  });

  it("an iterative run replaced by --on-conflict last brings its own levels", () => {
    const dir = tempDir("merge-");
    const a = database(dir, "a", [{ key: "k1", levels: [0.9, 0.8], top1: 0.8 }]);
    const b = database(dir, "b", [{ key: "k1", levels: [0.91, 0.85, 0.7], top1: 0.7 }]);
    const c = join(dir, "c.db");
    const r = bench(["merge", a, b, "--into", c, "--on-conflict", "last"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /levels: 1 vs 2 child runs/);
    const children = query<{ key: string; level: number }>(c, `SELECT key, level FROM runs WHERE parent_key = 'k1' ORDER BY level`);
    assert.deepEqual(children.map((x) => x.level), [1, 2]);
    assert.equal(top1(c, children[1].key), 0.85);
    assert.equal(query<{ n: number }>(c, `SELECT count(*) AS n FROM sweep_runs WHERE run_key = ?`, children[1].key)[0].n, 1);
  });

  it("refuses an --into that is an input, a file of another kind or someone else's SQLite database; reads older schemas without writing them", () => {
    const dir = tempDir("merge-");
    const a = database(dir, "a", [{ key: "k1" }]);
    const same = bench(["merge", a, "--into", join(dir, ".", "a.db")]);
    assert.equal(same.code, 2);
    assert.match(same.stderr, /--into .*a\.db is also an input/);

    const notes = join(dir, "notes.txt");
    writeFileSync(notes, "my notes\n");
    const text = bench(["merge", a, "--into", notes]);
    assert.equal(text.code, 2);
    assert.match(text.stderr, /not a SQLite database: refusing to overwrite it/);
    assert.equal(readFileSync(notes, "utf8"), "my notes\n");

    const foreign = join(dir, "foreign.db");
    const f = new Database(foreign);
    f.exec(`CREATE TABLE mine (x INTEGER)`);
    f.close();
    const bytes = readFileSync(foreign);
    const fr = bench(["merge", a, "--into", foreign]);
    assert.equal(fr.code, 2);
    assert.match(fr.stderr, /not a prunebench results database/);
    assert.ok(readFileSync(foreign).equals(bytes));

    const missing = bench(["merge", join(dir, "nope.db"), "--into", join(dir, "m.db")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.db does not exist/);
    assert.throws(() => readFileSync(join(dir, "m.db")), /ENOENT/);

    // A database of schema version 4 (before class_accuracy): upgraded in memory to merge, its file untouched.
    const old = join(dir, "old.db");
    const o = new Database(old);
    for (const m of MIGRATIONS.slice(0, 4)) o.exec(m);
    o.pragma("user_version = 4");
    o.prepare(`INSERT INTO runs (key, dense_key, status, method, method_label, arch, dataset, target_kind, target_value, seed, config_json, code_version, data_fingerprint, created_at)
      VALUES ('old1', 'd', 'done', 'random', 'random', 'mlp', 'fashion-mnist-mini', 'sparsity', 0.5, 0, '{}', 'v', 'fp', 'now')`).run();
    o.prepare(`INSERT INTO metrics (run_key, name, value) VALUES ('old1', 'top1_after', 0.42)`).run();
    o.close();
    const oldBytes = readFileSync(old);
    const c = join(dir, "c.db");
    const m = bench(["merge", old, a, "--into", c]);
    assert.equal(m.code, 0, m.stderr);
    assert.equal(top1(c, "old1"), 0.42);
    assert.equal(query<{ user_version: number }>(c, `PRAGMA user_version`)[0].user_version, SCHEMA_VERSION);
    assert.ok(readFileSync(old).equals(oldBytes), "the older input is not upgraded on disk");

    // An older --into is upgraded in place (as a sweep would), keeping its rows.
    const oldTarget = join(dir, "old-target.db");
    writeFileSync(oldTarget, oldBytes);
    const up = bench(["merge", a, "--into", oldTarget]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(query<{ user_version: number }>(oldTarget, `PRAGMA user_version`)[0].user_version, SCHEMA_VERSION);
    assert.deepEqual(query<{ key: string }>(oldTarget, `SELECT key FROM runs ORDER BY key`).map((x) => x.key), ["k1", "old1"]);
    assert.equal(query<{ n: number }>(oldTarget, `SELECT count(*) AS n FROM class_accuracy WHERE run_key = 'k1'`)[0].n, 1);

    const newer = join(dir, "newer.db");
    const n = new Database(newer);
    n.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    n.close();
    const nr = bench(["merge", newer, "--into", join(dir, "n.db")]);
    assert.equal(nr.code, 2);
    assert.match(nr.stderr, /newer than this prunebench/);
  });
});
