/**
 * Faults in the results database itself, injected into real files under the real CLI: a damaged page, a database on a
 * read-only mount, a disk that fills up while a sweep runs. Each test asserts what remains: exit codes, messages, the
 * runs table, and the database file's bytes where nothing may be written.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { Store, StoreError } from "../src/store/store.js";
import { BENCH, bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

const sharedCache = tempDir("prunebench-cache-");
const opts = (db: string, jobs = 1) => ["--db", db, "--cache-dir", sharedCache, "--jobs", String(jobs), "--plain"];
/** Every epoch 250 ms longer (worker fault injection): a run of 16 fine-tuning epochs lasts at least 4 s. */
const SLOW = { BENCH_FAULT_EPOCH_DELAY_MS: "250" };
const root = process.getuid?.() === 0;
const NOT_ROOT = "needs root to mount a tmpfs (a read-only or a full file system that binds root too)";

function grid(dir: string, finetune = "{epochs: 1, batch_size: 64, lr: 0.01}"): string {
  const path = writeTinyGrid(dir);
  writeFileSync(path, readFileSync(path, "utf8").replace(/^finetune: .*$/m, `finetune: ${finetune}`));
  return path;
}

interface RunRow { key: string; status: string; attempts: number; error: string | null }

function query<T>(db: string, sql: string): T[] {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    d.pragma("busy_timeout = 5000");
    return d.prepare(sql).all() as T[];
  } finally {
    d.close();
  }
}
const runs = (db: string) => query<RunRow>(db, `SELECT key, status, attempts, error FROM runs ORDER BY key`);
const count = (rows: RunRow[], status: string) => rows.filter((r) => r.status === status).length;
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** A finished database of the tiny grid (4 runs done), made once and copied by the tests that damage it. */
let finished: { dir: string; db: string; grid: string } | undefined;
function finishedDatabase(): { dir: string; db: string; grid: string } {
  if (finished) return finished;
  const dir = tempDir();
  const g = grid(dir);
  const db = join(dir, "finished.db");
  const r = bench(["sweep", g, ...opts(db)]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(count(runs(db), "done"), 4);
  return (finished = { dir, db, grid: g });
}

function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
}
function unmount(dir: string): void {
  execFileSync("umount", ["-l", dir]);
}

const tally = { faults: 0, lost: 0, twice: 0 };
/** Finished runs must stay finished, with the same attempt count (not run again). */
function checkNothingLost(before: RunRow[], after: RunRow[]): void {
  for (const b of before.filter((r) => r.status === "done" || r.status === "diverged")) {
    const a = after.find((r) => r.key === b.key);
    if (!a || a.status !== b.status) tally.lost++;
    if (a && a.attempts !== b.attempts) tally.twice++;
    assert.ok(a && a.status === b.status, `finished run ${b.key} was ${b.status}, now ${a?.status}`);
    assert.equal(a!.attempts, b.attempts, `finished run ${b.key} was executed again`);
  }
}

const READERS = (db: string, key: string, out: string): string[][] => [
  ["ls", "--db", db],
  ["report", "--db", db, "-o", out],
  ["export", "--db", db],
  ["show", key, "--db", db],
  ["table", "--db", db],
];

test("a damaged database page: every command says so (exit 2, how to recover), and a sweep writes nothing into it", () => {
  const { dir, db: good, grid: g } = finishedDatabase();
  const key = runs(good)[0].key;
  const db = join(dir, "damaged.db");
  copyFileSync(good, db);
  // Scribble over the middle of a leaf page of the metrics table, as a bad sector or a stray write would.
  const d = new Database(db, { readonly: true });
  const { pageno } = d.prepare(`SELECT pageno FROM dbstat WHERE name = 'metrics' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1`).get() as { pageno: number };
  const pageSize = d.pragma("page_size", { simple: true }) as number;
  d.close();
  const fd = openSync(db, "r+");
  writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, (pageno - 1) * pageSize + pageSize / 2);
  closeSync(fd);
  assert.notEqual(query<{ quick_check: string }>(db, "PRAGMA quick_check")[0].quick_check, "ok", "the damage must be real for this test to mean anything");
  const hash = sha256(db);

  for (const args of READERS(db, key, join(dir, "damaged.html"))) {
    tally.faults++;
    const r = bench(args);
    assert.equal(r.code, 2, `${args[0]}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /results database .*damaged\.db is damaged \(.*malformed.*\)\. Restore it from a backup copy, or recover .*sqlite3 .*damaged\.db "\.recover" \| sqlite3 recovered\.db/, args[0]);
    assert.doesNotMatch(r.stderr, /internal error|SqliteError/, args[0]);
    assert.equal(sha256(db), hash, `${args[0]} wrote into the damaged file`);
  }

  tally.faults++;
  const r = bench(["sweep", g, ...opts(db), "--artifacts-dir", join(dir, "art")]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /results database .*damaged\.db is damaged \(.*Tree \d+ page \d+.*\); nothing was written to it\. Restore it/);
  assert.doesNotMatch(r.stdout, /runs planned/, "no sweep started");
  assert.equal(sha256(db), hash, "the refused sweep changed the damaged file");
  assert.ok(!existsSync(`${db}-wal`) || statSync(`${db}-wal`).size === 0, "the refused sweep wrote into the WAL");

  // Damage inside a row's bytes (a run's configuration), which SQLite's own checks cannot see: still a clear error.
  const rowDamaged = join(dir, "row-damaged.db");
  copyFileSync(good, rowDamaged);
  const bytes = readFileSync(rowDamaged);
  const at = bytes.indexOf(Buffer.from(`"method":{"name"`));
  assert.ok(at > 0);
  // Every copy: a row rewritten by a status update leaves its old bytes in free space, where damage goes unseen.
  for (let i = at; i >= 0; i = bytes.indexOf(Buffer.from(`"method":{"name"`), i + 1)) bytes[i + 9] = 0x00;
  writeFileSync(rowDamaged, bytes);
  tally.faults++;
  const rl = bench(["ls", "--db", rowDamaged]);
  assert.equal(rl.code, 2, rl.stdout + rl.stderr);
  assert.match(rl.stderr, /results database .*row-damaged\.db is damaged: the configuration of run [0-9a-f]+ is not valid JSON .*"\.recover"/);
});

test("a database on a read-only file system can be read by every reading command (WAL rows included); a sweep is refused", (t) => {
  if (!root) return t.skip(NOT_ROOT);
  const { dir, db: good, grid: g } = finishedDatabase();
  const expected = runs(good);
  const key = expected[0].key;

  // A copy taken while a sweep held it open: committed rows still in the -wal file, not yet in the main file.
  const live = join(dir, "live.db");
  copyFileSync(good, live);
  const writer = new Database(live);
  writer.pragma("wal_autocheckpoint = 0");
  writer.prepare(`UPDATE runs SET error = 'written to the WAL only' WHERE key = ?`).run(key);

  const ro = join(dir, "ro");
  mountTmpfs(ro, "4m");
  try {
    copyFileSync(good, join(ro, "r.db"));
    copyFileSync(live, join(ro, "live.db"));
    copyFileSync(`${live}-wal`, join(ro, "live.db-wal"));
    writer.close();
    execFileSync("mount", ["-o", "remount,ro", ro]);
    const db = join(ro, "r.db");
    const hash = sha256(db);

    const outputs = READERS(db, key, join(dir, "ro.html")).map((args) => {
      tally.faults++;
      const r = bench(args);
      assert.equal(r.code, 0, `${args[0]}: ${r.stdout}${r.stderr}`);
      return r.stdout;
    });
    assert.match(outputs[0], /4 run\(s\)/);
    assert.ok(statSync(join(dir, "ro.html")).size > 10_000, "the report was written");
    assert.equal(outputs[2].trim().split("\n").length, 5, "export: a header and 4 runs");
    assert.match(outputs[3], new RegExp(`run ${key}  \\[done\\]`));
    assert.match(outputs[4], /\| mlp +\|/);
    assert.deepEqual(readdirSync(ro).sort(), ["live.db", "live.db-wal", "r.db"]);
    assert.equal(sha256(db), hash);

    tally.faults++;
    const w = bench(["show", key, "--db", join(ro, "live.db"), "--json"]);
    assert.equal(w.code, 0, w.stdout + w.stderr);
    assert.equal(JSON.parse(w.stdout).error, "written to the WAL only", "rows committed to the -wal file are read");

    tally.faults++;
    const s = bench(["sweep", g, ...opts(db), "--artifacts-dir", join(dir, "ro-art")]);
    assert.equal(s.code, 2, s.stdout + s.stderr);
    // Refused by the path check, before SQLite is asked to open anything.
    assert.match(s.stderr, /--db .*r\.db: its folder .*ro cannot be written: .*ro is not writable \(is it, or its file system, read-only\?\)/);
    assert.doesNotMatch(s.stderr, /internal error/);
  } finally {
    unmount(ro);
  }
});

test("reading commands never create or write a database", () => {
  const { dir, db: good } = finishedDatabase();
  const missing = join(dir, "missing.db");
  tally.faults++;
  const r = bench(["ls", "--db", missing]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /results database .*missing\.db does not exist/);
  assert.ok(!existsSync(missing));

  // An older schema (here: before worker_pid) is read through an upgraded copy in memory; the file stays as it was.
  const old = join(dir, "old.db");
  copyFileSync(good, old);
  const d = new Database(old);
  d.exec(`ALTER TABLE runs DROP COLUMN worker_pid`);
  // …and before migration 3 (child runs of iterative schedules).
  d.exec(`DROP INDEX runs_parent; ALTER TABLE runs DROP COLUMN parent_key; ALTER TABLE runs DROP COLUMN level`);
  // …and before migration 4 (the epochs' dynamic dead neuron rate).
  d.exec(`ALTER TABLE epochs DROP COLUMN dnr`);
  // …and before migration 5 (per-class accuracy).
  d.exec(`DROP TABLE class_accuracy`);
  // …and before migration 6 (the device and GPU a run trained on).
  d.exec(`ALTER TABLE runs DROP COLUMN device; ALTER TABLE runs DROP COLUMN gpu`);
  d.pragma("user_version = 1");
  d.close();
  const hash = sha256(old);
  const key = runs(good)[0].key;
  for (const args of READERS(old, key, join(dir, "old.html"))) {
    const o = bench(args);
    assert.equal(o.code, 0, `${args[0]}: ${o.stdout}${o.stderr}`);
    assert.equal(sha256(old), hash, `${args[0]} wrote into the database`);
  }
  assert.equal(query<{ user_version: number }>(old, "PRAGMA user_version")[0].user_version, 1, "not migrated by a reading command");
});

test("the disk under the database fills up mid-sweep: results are kept, the sweep stops cleanly (exit 74), the next sweep saves them without re-running", async (t) => {
  if (!root) return t.skip(NOT_ROOT);
  const dir = tempDir();
  const g = grid(dir, "{epochs: 16, batch_size: 64, lr: 0.01}");
  const disk = join(dir, "disk");
  const db = join(disk, "r.db");
  const unsaved = join(dir, "unsaved");
  const env = { ...SLOW, BENCH_UNSAVED_DIR: unsaved };
  mountTmpfs(disk, "4m");
  try {
    const child = spawn(process.execPath, [BENCH, "sweep", g, ...opts(db, 2), "--artifacts-dir", join(dir, "art")],
      { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b) => (out += b));
    child.stderr.on("data", (b) => (out += b));
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    // The database file exists a moment before its tables do: until then it has no running runs.
    const runsSoFar = () => { try { return runs(db); } catch { return []; } };
    for (const until = Date.now() + 120_000; count(existsSync(db) ? runsSoFar() : [], "running") < 2;) {
      assert.ok(Date.now() < until && child.exitCode === null, `two runs never ran at once:\n${out}`);
      await sleep(100);
    }
    // Fill the disk to the last byte while both runs train.
    tally.faults++;
    fillDisk(join(disk, "filler"));
    const code = await exited;
    assert.equal(code, 74, out);
    assert.match(out, /sweep stopped: the disk holding results database .*r\.db is full \(database or disk is full\): free some space there/);
    assert.doesNotMatch(out, /internal error|SqliteError/);
    const after = runs(db);
    assert.equal(count(after, "running"), 0, `no run left running: ${JSON.stringify(after)}`);
    assert.equal(count(after, "pending"), 2, "no new run started after the disk filled");
    // The first result to meet the full disk is kept aside; the second may fit in the space the sweep then gives back.
    const kept = count(after, "interrupted");
    assert.ok(kept >= 1 && kept + count(after, "done") === 2, JSON.stringify(after));
    assert.match(out, new RegExp(`${kept} finished run\\(s\\) could not be saved: their results are kept in .*unsaved/r\\.db-[0-9a-f]{16}\\.jsonl, and the next \`bench sweep\` on .*r\\.db saves them`));
    for (const r of after.filter((x) => x.status === "interrupted")) assert.match(r.error!, /disk was full: its result waits in .*\.jsonl/);
    const keptFiles = readdirSync(unsaved);
    assert.equal(keptFiles.length, 1);
    assert.equal(readFileSync(join(unsaved, keptFiles[0]), "utf8").trim().split("\n").length, kept);
    assert.deepEqual(readdirSync(disk).filter((f) => f.includes("reserve")), [], "the space reserve was given back");

    rmSync(join(disk, "filler"));
    const again = bench(["sweep", g, ...opts(db, 2), "--artifacts-dir", join(dir, "art")], { BENCH_UNSAVED_DIR: unsaved });
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /4 runs planned, 2 already finished, 2 to run/);
    assert.match(again.stdout, new RegExp(`${kept} result\\(s\\) kept while the disk was full were saved \\(not run again\\)`));
    const final = runs(db);
    checkNothingLost(after, final);
    assert.equal(count(final, "done"), 4);
    for (const r of final) {
      if (r.attempts !== 1) tally.twice++;
      assert.equal(r.attempts, 1, `run ${r.key} ran ${r.attempts} times`);
    }
    for (const r of after.filter((x) => x.status === "interrupted")) {
      assert.ok(query<{ n: number }>(db, `SELECT count(*) AS n FROM metrics WHERE run_key = '${r.key}'`)[0].n > 10, "the kept result's metrics were saved");
    }
    assert.deepEqual(readdirSync(unsaved), [], "the kept results are removed once saved");
  } finally {
    unmount(disk);
  }
});

/** Write until the file system is full (ENOSPC); the filler file is left in place. */
function fillDisk(file: string): void {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, "ENOSPC");
  } finally {
    closeSync(fd);
  }
}

test("on a full disk a claim stops the sweep instead of killing it, a lease renewal never throws, and the space reserve fits the last updates", (t) => {
  if (!root) return t.skip(NOT_ROOT);
  const { dir, db: good } = finishedDatabase();
  const disk = join(dir, "small-disk");
  mountTmpfs(disk, "1m");
  try {
    const db = join(disk, "r.db");
    copyFileSync(good, db);
    const store = new Store(db);
    try {
      store.checkWritable();
      assert.equal(readdirSync(disk).filter((f) => f.startsWith("r.db-reserve-")).length, 1, "the sweep holds a space reserve beside the database");
      const [first, second] = runs(db).map((r) => r.key);
      store.db.prepare(`UPDATE runs SET status = 'pending' WHERE key IN (?, ?)`).run(first, second);
      assert.equal(store.claim(second, "me", 60_000), true, "a run in flight when the disk fills");
      tally.faults++;
      fillDisk(join(disk, "filler"));

      assert.throws(() => store.claim(first, "me", 60_000), (e) => e instanceof StoreError && e.fault === "full" && /disk holding results database .*r\.db is full/.test(e.message));
      const refused: StoreError[] = [];
      store.onClaimRefusedByFullDisk = (e) => refused.push(e);
      assert.equal(store.claim(first, "me", 60_000), false);
      assert.equal(refused.length, 1);
      assert.equal(store.claimsRefusedByFullDisk, 1);
      assert.equal(store.renewLeases("me", 60_000), false, "a renewal on a full disk reports instead of throwing");
      assert.equal(runs(db).find((r) => r.key === first)!.status, "pending");

      store.releaseSpaceReserve();
      assert.equal(store.claim(first, "me", 60_000), true, "the reserve makes room for a status update");
      store.markFailed(first, "interrupted", "disk full");
      assert.equal(store.releaseOwned("me"), 1, "the run in flight is released too");
      assert.deepEqual(runs(db).filter((r) => r.key === first || r.key === second).map((r) => r.status), ["interrupted", "interrupted"]);
    } finally {
      store.close();
    }
  } finally {
    unmount(disk);
  }
});

test("reliability (results database) tally", (t) => {
  t.diagnostic(`reliability (results database): ${tally.faults} faults injected, ${tally.lost} finished runs lost, ${tally.twice} runs executed twice`);
  assert.equal(tally.lost, 0);
  assert.equal(tally.twice, 0);
});
