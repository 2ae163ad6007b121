/**
 * Fault injection with real processes: workers and coordinators are killed with real signals, Ctrl-C is sent to the
 * sweep's process group as a terminal would, two sweeps share one database, files are truncated and made read-only.
 * Each test asserts what remains: no finished run lost, no run executed twice, no half-written run, a clear error.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, chmodSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { readCheckpoint } from "../src/run/checkpoint.js";
import { MIGRATIONS, SCHEMA_VERSION } from "../src/store/migrations.js";
import { BENCH, bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

const MINI_DATA = fileURLToPath(new URL("../../datasets/data/fashion-mnist-mini", import.meta.url));
const STORE_JS = fileURLToPath(new URL("../src/store/store.js", import.meta.url));

/** The tiny grid (4 runs), with 16 fine-tuning epochs (with SLOW: long enough to be caught mid-training), or changed. */
function grid(dir: string, finetune = "{epochs: 16, batch_size: 64, lr: 0.01}", name = "tiny.yaml"): string {
  const tiny = writeTinyGrid(dir);
  const text = readFileSync(tiny, "utf8").replace(/^finetune: .*$/m, `finetune: ${finetune}`);
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/**
 * A slow machine (fault injection in the worker): every epoch takes 250 ms longer, so a run of 16 fine-tuning epochs
 * lasts at least 4 s however fast the backend is, and a test can act while it is surely mid-training.
 */
const SLOW = { BENCH_FAULT_EPOCH_DELAY_MS: "250" };

/** One dense cache for the tests that do not test the cache: the dense model (same pretraining) is trained once. */
const sharedCache = tempDir("prunebench-cache-");
const opts = (db: string, jobs = 2, cache = sharedCache) => ["--db", db, "--cache-dir", cache, "--jobs", String(jobs), "--plain"];

interface Exit { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }
interface Running { child: ChildProcess; pid: number; exited: Promise<Exit>; result: Exit | null; output: () => string }

/** `bench …` in its own process group (so a signal can go to the whole group, like Ctrl-C in a terminal). */
function start(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [BENCH, ...args], { env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const running: Running = { child, pid: child.pid!, exited: null as never, result: null, output: () => stdout + stderr };
  running.exited = new Promise<Exit>((resolve) => child.on("close", (code, signal) => resolve((running.result = { code, signal, stdout, stderr }))));
  return running;
}

interface RunRow { key: string; status: string; attempts: number; error: string | null; lease_owner: string | null }

/** The runs table as another process sees it right now ([] before the sweep created it). */
function runs(db: string): RunRow[] {
  if (!existsSync(db)) return [];
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    d.pragma("busy_timeout = 5000");
    return d.prepare(`SELECT key, status, attempts, error, lease_owner FROM runs ORDER BY key`).all() as RunRow[];
  } catch {
    return [];
  } finally {
    d.close();
  }
}

function query<T>(db: string, sql: string, ...args: unknown[]): T[] {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return d.prepare(sql).all(...args) as T[];
  } finally {
    d.close();
  }
}

/** How many rows of metrics / layers / epochs / artifacts a run has. */
function rowsOf(db: string, key: string): number {
  return ["metrics", "layers", "epochs", "artifacts"]
    .map((t) => query<{ n: number }>(db, `SELECT count(*) AS n FROM ${t} WHERE run_key = ?`, key)[0].n)
    .reduce((a, b) => a + b, 0);
}

/** Poll until `probe` gives a value; fail early, with its output, if the sweep `s` ends first. */
async function waitFor<T>(what: string, probe: () => T | undefined | false, s?: Running, timeoutMs = 120_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (s?.result) throw new Error(`the sweep ended (code ${s.result.code}) before ${what}:\n${s.result.stdout}${s.result.stderr}`);
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function childPids(pid: number): number[] {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" }).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return []; // ps exits 1 when there is none
  }
}

/** Alive and not a zombie (an orphan's zombie may linger where pid 1 does not reap). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

const count = (rows: RunRow[], status: string) => rows.filter((r) => r.status === status).length;

/** Figures for the summary printed at the end (and asserted as we go). */
const tally = { faults: 0, lost: 0, twice: 0 };
/** A finished run is lost if it is not done any more; executed twice if a done run has attempts > 1 without a reason. */
function checkNothingLost(before: RunRow[], after: RunRow[]): void {
  for (const b of before.filter((r) => r.status === "done" || r.status === "diverged")) {
    const a = after.find((r) => r.key === b.key);
    if (!a || a.status !== b.status || a.attempts !== b.attempts) tally.lost++;
    assert.ok(a && a.status === b.status, `finished run ${b.key} was ${b.status}, now ${a?.status}`);
    assert.equal(a!.attempts, b.attempts, `finished run ${b.key} was executed again`);
  }
}

test("a worker SIGKILLed from outside mid-training fails only its run; the next sweep re-runs only that one", async () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir);
  const db = join(dir, "r.db");
  const s = start(["sweep", g, ...opts(db, 1)], SLOW);
  const victim = await waitFor("a run to start", () => runs(db).find((r) => r.status === "running"), s);
  await sleep(800); // into its fine-tuning (16 epochs, several seconds)
  const workers = childPids(s.pid);
  assert.equal(workers.length, 1, `one worker with --jobs 1, found ${workers}`);
  process.kill(workers[0], "SIGKILL");
  const r = await s.exited;
  assert.equal(r.code, 3, r.stdout + r.stderr);
  const after = runs(db);
  const killed = after.find((x) => x.key === victim.key)!;
  assert.equal(killed.status, "failed");
  assert.match(killed.error!, new RegExp(`worker process ${workers[0]} died \\(signal SIGKILL\\)`));
  assert.equal(rowsOf(db, victim.key), 0, "a killed run has no half-written rows");
  assert.equal(count(after, "done"), 3, "the pool replaced the worker and finished the other runs");

  const again = bench(["sweep", g, ...opts(db, 1)]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /4 runs planned, 3 already finished, 1 to run/);
  const final = runs(db);
  checkNothingLost(after, final);
  assert.equal(count(final, "done"), 4);
  assert.equal(final.find((x) => x.key === victim.key)!.attempts, 2);
  tally.twice += final.filter((x) => x.key !== victim.key && x.attempts !== 1).length;
});

test("the coordinator SIGKILLed mid-sweep: its workers exit without writing, the next sweep reclaims its runs", async () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir);
  const db = join(dir, "r.db");
  const s = start(["sweep", g, ...opts(db, 2)], SLOW);
  await waitFor("two runs to start", () => count(runs(db), "running") === 2, s);
  await sleep(500);
  const workers = childPids(s.pid);
  assert.equal(workers.length, 2);
  process.kill(s.pid, "SIGKILL");
  const r = await s.exited;
  assert.equal(r.signal, "SIGKILL");
  // Orphaned workers notice (IPC gone, re-parented) and exit at their next progress point, without a stack trace.
  await waitFor("the orphaned workers to exit", () => workers.every((p) => !alive(p)), undefined, 15_000);
  const left = runs(db);
  const held = left.filter((x) => x.status === "running");
  assert.equal(held.length, 2, "the dead coordinator's runs are still marked running");
  assert.ok(held.every((x) => x.lease_owner!.split(":")[1] === String(s.pid)));
  for (const x of held) {
    assert.equal(rowsOf(db, x.key), 0);
    assert.ok(!existsSync(join(dir, "r-artifacts", x.key)), `an orphaned worker wrote artifacts for ${x.key}`);
  }

  const doneBefore = count(left, "done");
  const again = bench(["sweep", g, ...opts(db, 2)]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, new RegExp(`4 runs planned, ${doneBefore} already finished, ${4 - doneBefore} to run`));
  const final = runs(db);
  checkNothingLost(left, final);
  assert.equal(count(final, "done"), 4);
  for (const x of final) assert.equal(x.attempts, held.some((h) => h.key === x.key) ? 2 : 1, x.key);
});

test("Ctrl-C once: running runs finish, nothing new starts, exit 130; the same command then finishes only the rest", async () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir);
  const db = join(dir, "r.db");
  const s = start(["sweep", g, ...opts(db, 2)], SLOW);
  const running = await waitFor("two runs to start", () => {
    const rs = runs(db).filter((x) => x.status === "running");
    return rs.length === 2 && rs;
  }, s);
  await sleep(300);
  const workers = childPids(s.pid);
  process.kill(-s.pid, "SIGINT"); // the whole process group, as a terminal does: workers ignore it
  const r = await s.exited;
  assert.equal(r.code, 130, r.stdout + r.stderr);
  assert.match(r.stdout, /stopping: letting running runs finish/);
  assert.match(r.stdout, /sweep stopped in .*: 2 done, 0 failed, 0 diverged, 0 interrupted, 0 skipped \(already finished\), 2 not started/);
  const after = runs(db);
  for (const x of running) assert.equal(after.find((y) => y.key === x.key)!.status, "done", `${x.key} was running at Ctrl-C: it must finish`);
  assert.deepEqual(after.map((x) => x.status).sort(), ["done", "done", "pending", "pending"]);
  assert.ok(workers.every((p) => !alive(p)), "workers exit with the sweep");

  const again = bench(["sweep", g, ...opts(db, 2)]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /4 runs planned, 2 already finished, 2 to run/);
  const final = runs(db);
  checkNothingLost(after, final);
  assert.equal(count(final, "done"), 4);
  tally.twice += final.filter((x) => x.attempts !== 1).length;
  assert.ok(final.every((x) => x.attempts === 1), "no run executed twice");
});

test("Ctrl-C twice: workers are killed, their runs marked interrupted with no partial rows, exit 130; a re-run completes", async () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir);
  const db = join(dir, "r.db");
  const s = start(["sweep", g, ...opts(db, 2)], SLOW);
  await waitFor("two runs to start", () => count(runs(db), "running") === 2, s);
  await sleep(300);
  const workers = childPids(s.pid);
  process.kill(-s.pid, "SIGINT");
  await sleep(300);
  process.kill(-s.pid, "SIGINT");
  const r = await s.exited;
  assert.equal(r.code, 130, r.stdout + r.stderr);
  const after = runs(db);
  assert.equal(count(after, "running"), 0, "nothing is left marked running");
  const interrupted = after.filter((x) => x.status === "interrupted");
  assert.ok(interrupted.length >= 1, JSON.stringify(after));
  for (const x of interrupted) {
    assert.match(x.error!, /Ctrl-C/);
    assert.equal(rowsOf(db, x.key), 0, `interrupted run ${x.key} has partial rows`);
  }
  assert.ok(after.every((x) => ["done", "interrupted", "pending"].includes(x.status)));
  await waitFor("the killed workers to be gone", () => workers.every((p) => !alive(p)), undefined, 5000);

  const again = bench(["sweep", g, ...opts(db, 2)]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, new RegExp(`4 runs planned, ${count(after, "done")} already finished`));
  const final = runs(db);
  checkNothingLost(after, final);
  assert.equal(count(final, "done"), 4);
  for (const x of final) assert.equal(x.attempts, interrupted.some((i) => i.key === x.key) ? 2 : 1);
});

test("a diverging run is marked diverged with its epoch and the sweep goes on; a re-run keeps it", () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 2, batch_size: 64, lr: 1.0e6}");
  const db = join(dir, "r.db");
  const r = bench(["sweep", g, ...opts(db, 2)]);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /0 done, 0 failed, 4 diverged/);
  const rows = runs(db);
  assert.equal(count(rows, "diverged"), 4, "every run was tried, not just the first");
  for (const x of rows) {
    assert.match(x.error!, /training diverged in finetune epoch 0: loss (NaN|-?Infinity)/);
    const m = query<{ value: number }>(db, `SELECT value FROM metrics WHERE run_key = ? AND name = 'diverged_epoch'`, x.key);
    assert.deepEqual(m.map((v) => v.value), [0]);
  }
  const again = bench(["sweep", g, ...opts(db, 2)]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /4 runs planned, 4 already finished, 0 to run/);
  checkNothingLost(rows, runs(db));
});

test("a run that throws is failed with its error; the other runs finish", () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  const db = join(dir, "r.db");
  const plan = bench(["sweep", g, ...opts(db), "--dry-run"]);
  const victim = plan.stdout.split("\n").find((l) => l.includes("random") && l.includes("sparsity 0.9"))!.split(" ")[0];
  const r = bench(["sweep", g, ...opts(db, 2)], { BENCH_FAULT_THROW_RUN: victim });
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`FAILED .*\\[${victim}\\]: Error: injected fault \\(BENCH_FAULT_THROW_RUN\\) in finetune epoch 1`));
  const rows = runs(db);
  const failed = rows.find((x) => x.key === victim)!;
  assert.equal(failed.status, "failed");
  assert.match(failed.error!, /^Error: injected fault .*\n\s+at /, "the stored error keeps the stack trace");
  assert.equal(rowsOf(db, victim), 0);
  assert.equal(count(rows, "done"), 3);
});

test("--run-timeout kills an overrunning run and names the timeout; invalid values are refused", () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 100, batch_size: 64, lr: 0.01}");
  writeFileSync(g, readFileSync(g, "utf8").replace("methods: [random, global-magnitude]", "methods: [random]").replace("sparsities: [0.5, 0.9]", "sparsities: [0.5]"));
  const db = join(dir, "r.db");
  const started = Date.now();
  const r = bench(["sweep", g, ...opts(db, 1), "--run-timeout", "6"], SLOW);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.ok(Date.now() - started < 20_000, "100 slow epochs take 25 s or more: the run was cut short");
  const [row] = runs(db);
  assert.equal(row.status, "failed");
  assert.match(row.error!, /run timed out after 6 s \(--run-timeout\); its worker was killed/);
  assert.equal(rowsOf(db, row.key), 0);
  for (const bad of ["-1", "abc", ""]) {
    const b = bench(["sweep", g, "--db", join(dir, "x.db"), "--run-timeout", bad]);
    assert.equal(b.code, 2, `--run-timeout "${bad}": ${b.stderr}`);
    assert.match(b.stderr, /--run-timeout must be a number of seconds >= 0/);
  }
});

test("two sweeps on one new database at once: no lock errors, each run executed once, the dense model trained once", async () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 3, batch_size: 64, lr: 0.01}");
  const db = join(dir, "r.db");
  const cache = join(dir, "cache"); // fresh: both sweeps need the same dense model at the same time
  const slower = { BENCH_FAULT_EPOCH_DELAY_MS: "100" }; // so that the two sweeps surely overlap
  const a = start(["sweep", g, ...opts(db, 1, cache)], slower);
  const b = start(["sweep", g, ...opts(db, 1, cache)], slower);
  const [ra, rb] = await Promise.all([a.exited, b.exited]);
  for (const r of [ra, rb]) {
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, /locked|busy|already exists/i);
  }
  const rows = runs(db);
  assert.equal(count(rows, "done"), 4);
  tally.twice += rows.filter((x) => x.attempts !== 1).length;
  assert.deepEqual(rows.map((x) => x.attempts), [1, 1, 1, 1], "no run executed twice");
  const doneBy = (out: string) => Number(/: (\d+) done,/.exec(out)![1]);
  assert.equal(doneBy(ra.stdout) + doneBy(rb.stdout), 4, "the two sweeps shared the work");
  assert.equal((ra.stdout + rb.stdout).match(/dense model .* pretrained in/g)?.length, 1, "the dense model was trained once");
  assert.equal(query<{ n: number }>(db, `SELECT count(*) AS n FROM sweeps`)[0].n, 2);
});

test("many processes opening one new database at once all set it up without error (no 'locked', no 'already exists')", async () => {
  tally.faults++;
  const dir = tempDir();
  // Before the fixes, a round failed about one time in three: "table sweeps already exists" (two processes applying
  // the same migration) or "database is locked" (the switch to WAL refused without waiting).
  for (let round = 0; round < 4; round++) {
    const db = join(dir, `new-${round}.db`);
    const at = Date.now() + 1000; // every process opens it at the same moment
    const code = `import { Store } from ${JSON.stringify(STORE_JS)}; while (Date.now() < ${at}); new Store(${JSON.stringify(db)}).close();`;
    const results = await Promise.all(Array.from({ length: 8 }, () => new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      c.stderr!.on("data", (d) => (err += d));
      c.on("close", (code) => resolve({ code, err }));
    })));
    for (const r of results) assert.equal(r.code, 0, `round ${round}: ${r.err}`);
    assert.equal(query<{ user_version: number }>(db, "PRAGMA user_version")[0].user_version, SCHEMA_VERSION);
    assert.equal(query<{ n: number }>(db, "SELECT count(*) AS n FROM sqlite_master WHERE name = 'sweeps'")[0].n, 1);
  }
});

test("determinism: the same grid, seed, backend and threads gives bit-identical results in two databases", () => {
  const dir = tempDir();
  const g = writeTinyGrid(dir);
  const dbs = [join(dir, "a.db"), join(dir, "b.db")];
  for (const [i, db] of dbs.entries()) {
    // Separate caches: each trains its own dense model.
    const r = bench(["sweep", g, ...opts(db, 2, join(dir, `cache-${i}`))]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }
  const timing = /(_ms|_seconds|^measured_speedup|^train_img_per_s|^peak_rss_mb)$/;
  const snapshot = (db: string) => ({
    runs: query(db, `SELECT key, status, backend, tfjs_version, threads FROM runs ORDER BY key`),
    metrics: query<{ name: string }>(db, `SELECT run_key, name, value FROM metrics ORDER BY run_key, name`).filter((m) => !timing.test(m.name)),
    epochs: query(db, `SELECT run_key, phase, epoch, loss, train_acc, val_acc, lr FROM epochs ORDER BY run_key, phase, epoch`),
    layers: query(db, `SELECT * FROM layers ORDER BY run_key, idx`),
    artifacts: query(db, `SELECT run_key, kind, sha256, bytes FROM artifacts ORDER BY run_key, kind`),
  });
  const [a, b] = dbs.map(snapshot);
  assert.equal(a.runs.length, 4);
  assert.ok(a.metrics.length >= 4 * 20, "the comparison covers the metrics");
  assert.ok(a.metrics.some((m) => m.name === "top1_after") && !a.metrics.some((m) => m.name === "latency_dense_ms"));
  assert.deepEqual(b, a);
  // The two dense checkpoints hold the same tensors, bit for bit (their metadata records pretraining times).
  const dense = dbs.map((_, i) => readdirSync(join(dir, `cache-${i}`, "dense")).filter((f) => f.endsWith(".safetensors")));
  assert.deepEqual(dense[0], dense[1]);
  const [ta, tb] = dense.map((files, i) => readCheckpoint(join(dir, `cache-${i}`, "dense", files[0])).tensors);
  assert.ok(ta.size >= 6);
  for (const [name, t] of ta) {
    assert.deepEqual(tb.get(name)!.shape, t.shape);
    assert.ok(Buffer.from(tb.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), `dense tensor ${name} differs`);
  }
});

test("a truncated or corrupted dataset file is a clear error before anything runs", () => {
  tally.faults += 2;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  writeFileSync(g, readFileSync(g, "utf8").replace("datasets: [fashion-mnist-mini]", "datasets: [fashion-mnist]"));
  const env = { BENCH_OFFLINE: "1" };
  const data = join(dir, "data");
  mkdirSync(data);
  for (const f of readdirSync(MINI_DATA).filter((f) => f.endsWith(".gz"))) copyFileSync(join(MINI_DATA, f), join(data, f));
  // Control: the intact copy plans fine.
  const ok = bench(["sweep", g, "--db", join(dir, "r.db"), "--data-dir", data, "--dry-run"], env);
  assert.equal(ok.code, 0, ok.stderr);

  truncateSync(join(data, "train-images-idx3-ubyte.gz"), 20_000);
  const db = join(dir, "r.db");
  const r = bench(["sweep", g, ...opts(db, 1), "--data-dir", data], env);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /train-images-idx3-ubyte\.gz: gunzip failed .*truncated or corrupted \(20000 bytes on disk\)/);
  assert.ok(!existsSync(db), "no database is created for a sweep that cannot start");

  // The same file unpacked, then cut short: the IDX header no longer matches the size.
  const data2 = join(dir, "data2");
  cpSync(data, data2, { recursive: true });
  copyFileSync(join(MINI_DATA, "train-images-idx3-ubyte.gz"), join(data2, "train-images-idx3-ubyte.gz"));
  execFileSync("gunzip", [join(data2, "train-labels-idx1-ubyte.gz")]);
  truncateSync(join(data2, "train-labels-idx1-ubyte"), 3000);
  const r2 = bench(["validate", g], env); // validate does not read data: it stays ok
  assert.equal(r2.code, 0, r2.stderr);
  const r3 = bench(["sweep", g, ...opts(db, 1), "--data-dir", data2], env);
  assert.equal(r3.code, 2, r3.stdout + r3.stderr);
  assert.match(r3.stderr, /train-labels-idx1-ubyte: truncated: the header declares .* 6008 bytes, found 3000 bytes/);
});

/** A copy of the shared cache holding the tiny grid's dense model (trained here when this file runs alone). */
function cacheWithDenseModel(dir: string): { cache: string; file: string } {
  const cache = join(dir, "cache");
  cpSync(sharedCache, cache, { recursive: true }); // holds the tiny grid's dense model from the tests above
  if (!existsSync(join(cache, "dense"))) { // run alone: make one
    const r = bench(["sweep", grid(dir, "{epochs: 0}", "warm.yaml"), ...opts(join(dir, "warm.db"), 1, cache)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }
  const files = readdirSync(join(cache, "dense")).filter((f) => f.endsWith(".safetensors"));
  assert.equal(files.length, 1, `one cached dense model expected, found ${files}`);
  return { cache, file: join(cache, "dense", files[0]) };
}

/** Every metric but the timing ones, by run key: what must not change when a damaged cache is retrained. */
function resultsOf(db: string): unknown[] {
  const timing = /(_ms|_seconds|^measured_speedup|^train_img_per_s|^peak_rss_mb)$/;
  return query<{ name: string }>(db, `SELECT run_key, name, value FROM metrics ORDER BY run_key, name`).filter((m) => !timing.test(m.name));
}

test("a truncated cached dense model is discarded with a warning and retrained; its runs finish", () => {
  tally.faults++;
  const dir = tempDir();
  const { cache, file } = cacheWithDenseModel(dir);
  truncateSync(file, 5000);
  // A method no earlier sweep ran, so every run needs the dense model.
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  writeFileSync(g, readFileSync(g, "utf8").replace("methods: [random, global-magnitude]", "methods: [layer-magnitude]"));
  const db = join(dir, "r.db");
  const r = bench(["sweep", g, ...opts(db, 1, cache)]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const key = file.split("/").pop()!.replace(".safetensors", "");
  assert.match(r.stdout, new RegExp(`warning: cached dense model ${key} \\(mlp/fashion-mnist-mini/seed 0\\) is unreadable; discarded and retrained \\(.*truncated checkpoint`));
  assert.match(r.stderr, /warning: cached dense model .* is unreadable; discarded and retrained/, "the worker's stderr has it too");
  assert.match(r.stdout, /dense model mlp\/fashion-mnist-mini\/seed 0 pretrained in/);
  assert.equal(count(runs(db), "done"), 2);
  assert.ok(readCheckpoint(file).tensors.size >= 6, "the retrained model replaced the damaged file");
});

test("a cached dense model overwritten in place (same size, data or header) or without a checksum: retrained, same results as a clean run", () => {
  tally.faults += 3;
  const dir = tempDir();
  const { cache, file } = cacheWithDenseModel(dir);
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  writeFileSync(g, readFileSync(g, "utf8").replace("methods: [random, global-magnitude]", "methods: [layer-magnitude]"));
  const clean = join(dir, "clean.db");
  const rc = bench(["sweep", g, ...opts(clean, 1, cache)]);
  assert.equal(rc.code, 0, rc.stdout + rc.stderr);
  assert.doesNotMatch(rc.stdout, /warning|pretrained in/, "the intact cache is used as it is");
  const size = readFileSync(file).length;

  // Bytes in the middle of the weights: before checksums, this loaded silently and changed top1_dense / top1_after.
  const bytes = readFileSync(file);
  bytes.fill(0x41, Math.floor(size / 2), Math.floor(size / 2) + 64);
  writeFileSync(file, bytes);
  const db = join(dir, "data.db");
  const r = bench(["sweep", g, ...opts(db, 1, cache)]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /warning: cached dense model \w+ \(mlp\/fashion-mnist-mini\/seed 0\) failed its checksum; discarded and retrained \(.*checksum mismatch/);
  assert.match(r.stdout, /dense model .* pretrained in/);
  assert.deepEqual(resultsOf(db), resultsOf(clean), "the same run keys give the clean run's results");
  assert.ok(readCheckpoint(file).tensors.size >= 6, "the retrained model replaced the damaged file");

  // A digit of a shape in the header: the JSON still parses, the sizes no longer add up to the checksummed header.
  const text = readFileSync(file);
  const header = text.subarray(8, 8 + Number(text.readBigUInt64LE(0))).toString("latin1");
  const at = header.indexOf("[784,300]");
  assert.ok(at > 0, header.slice(0, 200));
  text.write("[784,301]", 8 + at, "latin1");
  writeFileSync(file, text);
  const db2 = join(dir, "header.db");
  const r2 = bench(["sweep", g, ...opts(db2, 1, cache)]);
  assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  assert.match(r2.stdout, /warning: cached dense model .* discarded and retrained/);
  assert.deepEqual(resultsOf(db2), resultsOf(clean));

  // Intact, but from an older prunebench, without a checksum: it cannot be trusted either.
  const intact = readFileSync(file);
  const headerLength = Number(intact.readBigUInt64LE(0));
  const parsed = JSON.parse(intact.subarray(8, 8 + headerLength).toString("utf8"));
  delete parsed.__metadata__.checksum;
  let json = JSON.stringify(parsed);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([length, Buffer.from(json), intact.subarray(8 + headerLength)]));
  const db3 = join(dir, "old.db");
  const r3 = bench(["sweep", g, ...opts(db3, 1, cache)]);
  assert.equal(r3.code, 0, r3.stdout + r3.stderr);
  assert.match(r3.stdout, /warning: cached dense model .* has no checksum; discarded and retrained/);
  assert.deepEqual(resultsOf(db3), resultsOf(clean));
});

/** The dense model's key and cache file of a grid, from its plan. */
function denseFileOf(g: string, cache: string): string {
  const plan = bench(["sweep", g, "--db", join(cache, "..", "plan.db"), "--dry-run"]);
  const denseKey = plan.stdout.split("\n")[2].trim().split(/\s+/).pop()!;
  assert.match(denseKey, /^[0-9a-f]{16}$/, plan.stdout);
  mkdirSync(join(cache, "dense"), { recursive: true });
  return join(cache, "dense", `${denseKey}.safetensors`);
}

/** A lock as a killed sweep leaves it: the lease folder, and the owner it names. */
function leaveLock(file: string, owner: { host: string; pid: number }): void {
  mkdirSync(`${file}.lock`);
  writeFileSync(`${file}.lock-owner`, JSON.stringify(owner));
}

test("a dense lock left with a live pid, from another host, or in the old format is taken over once its lease expires", async () => {
  tally.faults += 3;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  const cases = [
    // pid 1 is alive but is not a sweep (pids wrap): before the lease, this lock made the sweep wait forever, silently.
    // 12 s: the wait is only reported after 3 s of it, and a loaded machine can take 3-8 s to start the sweep (8 s was
    // not enough with CI sharing 2 cores with sweeps).
    { name: "live", leaseMs: 12000, make: (f: string) => leaveLock(f, { host: hostname(), pid: 1 }) },
    { name: "other-host", leaseMs: 2000, make: (f: string) => leaveLock(f, { host: "elsewhere.example", pid: process.pid }) },
    { name: "old-format", leaseMs: 2000, make: (f: string) => writeFileSync(`${f}.lock`, JSON.stringify({ pid: 1, host: "elsewhere.example" })) },
  ];
  for (const c of cases) {
    const cache = join(dir, `cache-${c.name}`);
    const file = denseFileOf(g, cache);
    c.make(file);
    const db = join(dir, `${c.name}.db`);
    const started = Date.now();
    const r = bench(["sweep", g, ...opts(db, 1, cache)], { BENCH_DENSE_LEASE_MS: String(c.leaseMs) });
    assert.equal(r.code, 0, `${c.name}: ${r.stdout}${r.stderr}`);
    assert.ok(Date.now() - started >= c.leaseMs, `${c.name}: the lock was honoured until its lease expired`);
    assert.equal(count(runs(db), "done"), 4, c.name);
    assert.ok(existsSync(file) && !existsSync(`${file}.lock`) && !existsSync(`${file}.lock-owner`), `${c.name}: model cached, lock released`);
    if (c.name === "live") {
      assert.match(r.stdout, new RegExp(`waiting for dense model mlp/fashion-mnist-mini/seed 0 \\(locked by ${hostname()}:1, lease expires in \\d+ s\\)`));
    }
  }
});

test("a dense lease is renewed while its holder trains: a second sweep waits (and says so) instead of training it again", async () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  // Pretraining lasts 24 x 400 ms, more than twice the 4 s lease: only renewal keeps the lock. (A shorter lease
  // is lost on a loaded machine, where a worker's event loop may not turn for a second or two.)
  writeFileSync(g, readFileSync(g, "utf8").replace(/^pretrain: .*$/m, "pretrain: {epochs: 24, batch_size: 64, lr: 0.05}"));
  const cache = join(dir, "cache");
  const env = { BENCH_DENSE_LEASE_MS: "4000", BENCH_FAULT_EPOCH_DELAY_MS: "400" };
  const a = start(["sweep", g, ...opts(join(dir, "a.db"), 1, cache)], env);
  await waitFor("the first sweep to take the lease", () => existsSync(join(cache, "dense")) && readdirSync(join(cache, "dense")).some((f) => f.endsWith(".lock-owner")), a, 30_000);
  const b = start(["sweep", g, ...opts(join(dir, "b.db"), 1, cache)], env);
  const [ra, rb] = await Promise.all([a.exited, b.exited]);
  assert.equal(ra.code, 0, ra.stdout + ra.stderr);
  assert.equal(rb.code, 0, rb.stdout + rb.stderr);
  assert.match(ra.stdout, /dense model .* pretrained in/);
  assert.doesNotMatch(rb.stdout, /pretrained in/, "the second sweep used the first one's model");
  assert.match(rb.stdout, new RegExp(`waiting for dense model mlp/fashion-mnist-mini/seed 0 \\(locked by ${hostname()}:\\d+, lease expires in [0-4] s\\)`));
  assert.doesNotMatch(ra.stdout + ra.stderr, /lost the lease/);
});

test("SIGTERM while a sweep only waits for a dense lock stops it at once: its runs interrupted, no rows, exit 130", async () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  const cache = join(dir, "cache");
  const file = denseFileOf(g, cache);
  leaveLock(file, { host: "elsewhere.example", pid: 4242 }); // a sweep on another machine, training (for a minute)
  const db = join(dir, "r.db");
  const s = start(["sweep", g, ...opts(db, 2, cache)]);
  await waitFor("the wait to be reported", () => /waiting for dense model .*locked by elsewhere\.example:4242, lease expires in \d+ s/.test(s.output()), s, 30_000);
  const workers = childPids(s.pid);
  const signalled = Date.now();
  process.kill(s.pid, "SIGTERM");
  const r = await s.exited;
  assert.equal(r.code, 130, r.stdout + r.stderr);
  assert.ok(Date.now() - signalled < 5000, `stopped in ${Date.now() - signalled} ms, not at the end of the lease`);
  const rows = runs(db);
  assert.equal(count(rows, "interrupted"), 4, JSON.stringify(rows));
  for (const x of rows) {
    assert.match(x.error!, /sweep stopped \(Ctrl-C \/ SIGTERM\) while waiting for dense model mlp\/fashion-mnist-mini\/seed 0/);
    assert.equal(rowsOf(db, x.key), 0);
  }
  assert.ok(existsSync(`${file}.lock`), "the other host's lock is not ours to remove");
  await waitFor("the waiting worker to be gone", () => workers.every((p) => !alive(p)), undefined, 5000);
});

test("divergence in dense pretraining: every dependent run is diverged (not failed), and a re-run skips them", () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  writeFileSync(g, readFileSync(g, "utf8").replace(/^pretrain: .*$/m, "pretrain: {epochs: 2, batch_size: 64, lr: 1.0e30}"));
  const db = join(dir, "r.db");
  const r = bench(["sweep", g, ...opts(db, 2, join(dir, "cache"))]);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /0 done, 0 failed, 4 diverged/);
  assert.doesNotMatch(r.stdout, /retrying/, "a diverged pretraining is not retried: it would diverge again");
  const rows = runs(db);
  assert.equal(count(rows, "diverged"), 4);
  for (const x of rows) {
    assert.match(x.error!, /^dense pretraining diverged: training diverged in pretrain epoch 0: loss (NaN|-?Infinity)/);
    const m = query<{ value: number }>(db, `SELECT value FROM metrics WHERE run_key = ? AND name = 'diverged_epoch'`, x.key);
    assert.deepEqual(m.map((v) => v.value), [0]);
  }
  const again = bench(["sweep", g, ...opts(db, 2, join(dir, "cache"))]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /4 runs planned, 4 already finished, 0 to run/);
  checkNothingLost(rows, runs(db));
});

test("a worker killed during dense pretraining: the dense job is retried once on a fresh worker before its runs fail", () => {
  tally.faults += 2;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  const killed = join(dir, "killed-once");
  const db = join(dir, "r.db");
  const r = bench(["sweep", g, ...opts(db, 1, join(dir, "cache"))], { BENCH_FAULT_KILL_DENSE: killed });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(readFileSync(killed, "utf8").length, 1, "the fault struck once");
  assert.match(r.stdout, /dense model mlp\/fashion-mnist-mini\/seed 0 failed \(worker process \d+ died \(signal SIGKILL\).*\); retrying once on a fresh worker/);
  assert.equal(count(runs(db), "done"), 4, "the killed worker's lock was taken over at once and the retry trained the model");

  // Killed on both workers: only then do its runs fail, naming both attempts; there is no third.
  const twice = join(dir, "killed-twice");
  const db2 = join(dir, "r2.db");
  const r2 = bench(["sweep", g, ...opts(db2, 1, join(dir, "cache2"))], { BENCH_FAULT_KILL_DENSE: twice, BENCH_FAULT_KILL_DENSE_TIMES: "5" });
  assert.equal(r2.code, 3, r2.stdout + r2.stderr);
  assert.equal(readFileSync(twice, "utf8").length, 2, "one retry, not more");
  const rows = runs(db2);
  assert.equal(count(rows, "failed"), 4);
  for (const x of rows) {
    assert.match(x.error!, /^dense pretraining failed: worker process \d+ died \(signal SIGKILL\)[^]*first attempt, on another worker: worker process \d+ died/);
    assert.equal(rowsOf(db2, x.key), 0);
  }
});

test("the cache folder deleted during dense pretraining: the checkpoint write recreates it and every run finishes", () => {
  tally.faults++;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  const cache = join(dir, "cache");
  const deleted = join(dir, "deleted-once");
  const db = join(dir, "r.db");
  const r = bench(["sweep", g, ...opts(db, 1, cache)], { BENCH_FAULT_RM_CACHE: deleted });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(readFileSync(deleted, "utf8").length, 1, "the cache folder was deleted mid-pretraining");
  assert.equal(count(runs(db), "done"), 4);
  const files = readdirSync(join(cache, "dense"));
  assert.equal(files.filter((f) => f.endsWith(".safetensors")).length, 1, `the dense model is cached again: ${files}`);
  assert.deepEqual(files.filter((f) => f.includes(".tmp-")), []);
});

/** Every file under `dir`, recursively (folders themselves are not listed). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => join(e.parentPath ?? e.path, e.name));
}

test("a full disk under --artifacts-dir: runs fail with 'no space left', and no temporary or orphaned file remains", (t) => {
  const dir = tempDir();
  const art = join(dir, "artifacts");
  mkdirSync(art);
  // Room for one run's pruned weights (~1.07 MB), not for its masks after them: both failure points are exercised.
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1600k", "tmpfs", art], { stdio: "pipe" });
  } catch (e) {
    return t.skip(`cannot mount a small tmpfs here (needs root): ${(e as Error).message.split("\n")[0]}`);
  }
  tally.faults++;
  try {
    const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
    const db = join(dir, "r.db");
    const r = bench(["sweep", g, ...opts(db, 2), "--artifacts-dir", art]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const rows = runs(db);
    assert.equal(count(rows, "failed"), 4, JSON.stringify(rows));
    for (const x of rows) {
      assert.match(x.error!, /CheckpointError: cannot write .*\.safetensors: ENOSPC: no space left on device/);
      assert.equal(rowsOf(db, x.key), 0);
    }
    assert.deepEqual(filesUnder(art), [], "no *.tmp-PID file and no artifact of a failed run is left to keep the disk full");
  } finally {
    execFileSync("umount", [art]);
  }
});

test("database versions: older schemas are migrated, a newer one or a foreign file is a clear error and stays untouched", () => {
  tally.faults += SCHEMA_VERSION + 3;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  writeFileSync(g, readFileSync(g, "utf8").replace("sparsities: [0.5, 0.9]", "sparsities: [0.5]"));

  // Every older version (0 = a database with only someone else's table in it).
  for (let v = 0; v < SCHEMA_VERSION; v++) {
    const db = join(dir, `v${v}.db`);
    const d = new Database(db);
    d.exec(`CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('keep me');`);
    for (const m of MIGRATIONS.slice(0, v)) d.exec(m);
    d.pragma(`user_version = ${v}`);
    d.close();
    const r = bench(["sweep", g, ...opts(db, 1)]);
    assert.equal(r.code, 0, `from version ${v}: ${r.stdout}${r.stderr}`);
    assert.equal(count(runs(db), "done"), 2);
    assert.equal(query<{ user_version: number }>(db, "PRAGMA user_version")[0].user_version, SCHEMA_VERSION);
    assert.deepEqual(query(db, "SELECT text FROM notes"), [{ text: "keep me" }]);
  }

  // Newer than this prunebench.
  const newer = join(dir, "newer.db");
  const d = new Database(newer);
  d.pragma(`user_version = ${SCHEMA_VERSION + 7}`);
  d.close();
  for (const args of [["sweep", g, ...opts(newer, 1)], ["ls", "--db", newer]]) {
    const r = bench(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`newer\\.db has schema version ${SCHEMA_VERSION + 7}, newer than this prunebench \\(${SCHEMA_VERSION}\\); upgrade prunebench`));
  }
  assert.deepEqual(query(newer, "SELECT name FROM sqlite_master"), [], "a newer database is not written to");

  // A foreign database whose table names collide: the migration is rolled back whole.
  const foreign = join(dir, "foreign.db");
  const f = new Database(foreign);
  f.exec(`CREATE TABLE runs (id INTEGER); INSERT INTO runs VALUES (1);`);
  f.close();
  const rf = bench(["sweep", g, ...opts(foreign, 1)]);
  assert.equal(rf.code, 2, rf.stdout + rf.stderr);
  assert.match(rf.stderr, /cannot upgrade results database .*foreign\.db from schema version 0 to \d+: table runs already exists \(is it a prunebench results database\?/);
  assert.deepEqual(query(foreign, "SELECT name FROM sqlite_master WHERE type = 'table'"), [{ name: "runs" }], "no partial schema");
  assert.equal(query<{ user_version: number }>(foreign, "PRAGMA user_version")[0].user_version, 0);

  // Not a database at all.
  const text = join(dir, "notes.txt");
  writeFileSync(text, "these are my notes, not a database\n".repeat(200));
  const rt = bench(["sweep", g, ...opts(text, 1)]);
  assert.equal(rt.code, 2, rt.stdout + rt.stderr);
  assert.match(rt.stderr, /cannot open results database .*notes\.txt: file is not a database/);
  assert.equal(readFileSync(text, "utf8"), "these are my notes, not a database\n".repeat(200));
});

/**
 * Make a file or folder read-only in a way that also binds root (tests often run as root, where chmod does not):
 * the immutable attribute as root, chmod otherwise. Returns an undo function, or null when neither works here.
 */
function makeReadOnly(path: string, isDir: boolean): (() => void) | null {
  const root = process.getuid?.() === 0;
  try {
    if (root) execFileSync("chattr", ["+i", path], { stdio: "ignore" });
    else chmodSync(path, isDir ? 0o555 : 0o444);
  } catch {
    return null;
  }
  const undo = () => (root ? execFileSync("chattr", ["-i", path], { stdio: "ignore" }) : chmodSync(path, isDir ? 0o755 : 0o644));
  try {
    // Check that it took: writing must now fail.
    if (isDir) writeFileSync(join(path, ".probe"), "x");
    else closeSync(openSync(path, "r+"));
    rmSync(join(path, ".probe"), { force: true });
    undo();
    return null;
  } catch {
    return undo;
  }
}

test("a read-only database, folder or path is a clear error before anything runs, and leaves no partial rows", (t) => {
  tally.faults += 2;
  const dir = tempDir();
  const g = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}");
  writeFileSync(g, readFileSync(g, "utf8").replace("sparsities: [0.5, 0.9]", "sparsities: [0.5]"));

  // The database's folder is a regular file (works for root too).
  const file = join(dir, "plain-file");
  writeFileSync(file, "x");
  const r1 = bench(["sweep", g, ...opts(join(file, "r.db"), 1), "--artifacts-dir", join(dir, "art")]);
  assert.equal(r1.code, 2, r1.stdout + r1.stderr);
  assert.match(r1.stderr, /--db .*plain-file\/r\.db: its folder .*plain-file exists and is not a folder/);
  const r2 = bench(["sweep", g, ...opts(join(file, "r.db"), 1)]);
  assert.equal(r2.code, 2, r2.stdout + r2.stderr);
  assert.match(r2.stderr, /--db .*plain-file\/r\.db: its folder .*plain-file exists and is not a folder/);
  const r3 = bench(["sweep", g, ...opts(join(dir, "r3.db"), 1), "--artifacts-dir", join(file, "art")]);
  assert.equal(r3.code, 2, r3.stdout + r3.stderr);
  assert.match(r3.stderr, /--artifacts-dir .*plain-file\/art: .*plain-file is not a folder/);

  // An existing database with finished runs, then made read-only.
  const db = join(dir, "r.db");
  const first = bench(["sweep", g, ...opts(db, 1)]);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const g2 = grid(dir, "{epochs: 1, batch_size: 64, lr: 0.01}", "more.yaml"); // 4 runs: 3 new ones to write
  const before = JSON.stringify([query(db, "SELECT * FROM runs"), query(db, "SELECT * FROM sweeps"), query(db, "SELECT count(*) FROM metrics")]);
  const undoDb = makeReadOnly(db, false);
  if (!undoDb) return t.skip("cannot make a file read-only here (neither chattr +i nor chmod binds this user)");
  tally.faults += 2;
  try {
    const r = bench(["sweep", g2, ...opts(db, 1)]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /cannot write to results database .*r\.db: attempt to write a readonly database \(is the file, its folder or its file system read-only\?\)/);
    assert.doesNotMatch(r.stderr, /internal error/);
  } finally {
    undoDb();
  }
  const after = JSON.stringify([query(db, "SELECT * FROM runs"), query(db, "SELECT * FROM sweeps"), query(db, "SELECT count(*) FROM metrics")]);
  assert.equal(after, before, "no partial rows");

  // A read-only artifacts folder: refused up front, not after every run trained.
  const art = join(dir, "art-ro");
  mkdirSync(art);
  const undoArt = makeReadOnly(art, true)!;
  assert.ok(undoArt);
  try {
    const db3 = join(dir, "r3.db");
    const r = bench(["sweep", g, ...opts(db3, 1), "--artifacts-dir", join(art, "sub")]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--artifacts-dir .*art-ro\/sub cannot be written/);
    assert.ok(!existsSync(db3), "no database rows for a sweep that cannot run");
  } finally {
    undoArt();
  }
});

test("reliability tally", (t) => {
  t.diagnostic(`reliability: ${tally.faults} faults injected, ${tally.lost} finished runs lost, ${tally.twice} runs executed twice`);
  assert.equal(tally.lost, 0);
  assert.equal(tally.twice, 0);
});
