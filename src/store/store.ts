/**
 * The results database (better-sqlite3): WAL, a busy timeout, migrations by PRAGMA user_version. The sweep
 * coordinator is the only writer; every multi-row write is one transaction, so a kill leaves no partial rows.
 */
import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { canonicalJson } from "../core/canonical.js";
import type { Grid, JobResult, LevelResult, PlannedRun, RunConfig, RunStatus } from "../core/types.js";
import { MIGRATIONS, SCHEMA_VERSION } from "./migrations.js";

/** The tables holding rows of one run (by run_key), cleared when its result is written again. */
const RUN_ROW_TABLES = ["metrics", "layers", "epochs", "artifacts", "class_accuracy"] as const;

/** Why the database itself failed: its file is damaged, or the disk under it is full. */
export type StoreFault = "corrupt" | "full";

export class StoreError extends Error {
  override name = "StoreError";
  constructor(message: string, readonly fault?: StoreFault) {
    super(message);
  }
}

/**
 * Space a sweep holds on the database's disk, as a file beside it, and gives back when the disk is full: enough to
 * mark every run in flight `interrupted` (a few KB each) instead of leaving it `running`.
 */
const SPACE_RESERVE_BYTES = 256 * 1024;

export class Store {
  readonly db: Database.Database;
  private spaceReserve: string | null = null;
  /**
   * Set by a sweep: a claim that meets a full disk calls it and counts as not claimed (the run stays pending), so
   * that the sweep can stop launching runs while the ones in flight finish, instead of dying with them.
   */
  onClaimRefusedByFullDisk: ((e: StoreError) => void) | null = null;
  claimsRefusedByFullDisk = 0;

  constructor(readonly path: string, options: { readonly?: boolean } = {}) {
    const readonly = options.readonly ?? false;
    let opened: Database.Database | undefined;
    try {
      if (readonly) {
        opened = this.db = openForReading(path);
      } else {
        if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
        opened = this.db = new Database(path);
      }
      this.db.pragma("busy_timeout = 10000");
      // Before anything is written (the WAL switch, a migration, a sweep row) a damaged file is refused untouched;
      // before anything is read, so that every command says so, even one whose queries miss the damaged page.
      this.checkIntegrity(readonly);
      if (!readonly) {
        walMode(this.db);
        this.db.pragma("synchronous = NORMAL");
        this.db.pragma("foreign_keys = ON");
      }
    } catch (e) {
      opened?.close();
      if (e instanceof StoreError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "SQLITE_NOTADB") {
        throw new StoreError(`cannot open results database ${path}: file is not a database (if it was a prunebench results database, its header is damaged: ${RECOVER_HINT(path)})`, "corrupt");
      }
      const translated = translate(e, path);
      if (translated instanceof StoreError) throw translated;
      const why = code === "EEXIST" || code === "ENOTDIR" ? `${dirname(path)} is not a folder`
        : code?.startsWith("SQLITE_CANTOPEN") || code?.startsWith("SQLITE_READONLY") ? `${(e as Error).message} (is the file, its folder or its file system read-only?)`
        : (e as Error).message;
      throw new StoreError(`cannot open results database ${path}: ${why}`);
    }
    this.guarded(() => this.migrate(readonly));
  }

  /**
   * PRAGMA quick_check reads every page once (about a second per few hundred MB): cheap next to a sweep, and the
   * only way to learn that a page in the middle is damaged before writing next to it makes things worse.
   */
  private checkIntegrity(readonly: boolean): void {
    const problems = (this.db.pragma("quick_check(5)") as Array<{ quick_check: string }>).map((r) => r.quick_check);
    if (problems.length === 1 && problems[0] === "ok") return;
    const found = problems.join("; ").replace(/\s+/g, " ");
    throw new StoreError(readonly
      ? `results database ${this.path} is damaged (database disk image is malformed: ${found}). ${RECOVER_HINT(this.path)}`
      : `results database ${this.path} is damaged (${found}); nothing was written to it. ${RECOVER_HINT(this.path)}`, "corrupt");
  }

  /** Every query goes through here: a damaged file or a full disk becomes a StoreError that says what to do. */
  private guarded<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw translate(e, this.path);
    }
  }

  private migrate(readonly: boolean): void {
    const version = this.db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new StoreError(`${this.path} has schema version ${version}, newer than this prunebench (${SCHEMA_VERSION}); upgrade prunebench`);
    }
    if (version === SCHEMA_VERSION) return;
    if (readonly) {
      // Reading must not write: upgrade a private copy in memory; the next sweep upgrades the file itself.
      const copy = inMemoryCopy(this.db.serialize());
      this.db.close();
      (this as { db: Database.Database }).db = copy;
    }
    try {
      // IMMEDIATE takes the write lock first, and the version is read again under it: two sweeps opening a new
      // database at once must not both apply the same migration ("table sweeps already exists").
      this.db.transaction(() => {
        const current = this.db.pragma("user_version", { simple: true }) as number;
        for (let v = current; v < SCHEMA_VERSION; v++) this.db.exec(MIGRATIONS[v]);
        if (current < SCHEMA_VERSION) this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
    } catch (e) {
      this.db.close();
      const translated = translate(e, this.path);
      if (translated instanceof StoreError) throw translated;
      throw new StoreError(`cannot upgrade results database ${this.path} from schema version ${version} to ${SCHEMA_VERSION}: ${(e as Error).message}` +
        (version === 0 ? " (is it a prunebench results database? give --db a new file name)" : ""));
    }
  }

  /** Fail now, with a clear message, when the database cannot be written (read-only file, folder or mount). */
  checkWritable(): void {
    try {
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } catch (e) {
      const translated = translate(e, this.path);
      if (translated instanceof StoreError) throw translated;
      throw new StoreError(`cannot write to results database ${this.path}: ${(e as Error).message} (is the file, its folder or its file system read-only?)`);
    }
    this.holdSpaceReserve();
  }

  private holdSpaceReserve(): void {
    if (this.path === ":memory:") return;
    const prefix = `${basename(this.path)}-reserve-`;
    try {
      // Reserves of sweeps that were killed (kill -9 skips close()).
      for (const name of readdirSync(dirname(this.path))) {
        const pid = name.startsWith(prefix) ? name.slice(prefix.length) : "";
        if (/^\d+$/.test(pid) && !processAlive(Number(pid))) rmSync(join(dirname(this.path), name), { force: true });
      }
      const file = `${this.path}-reserve-${process.pid}`;
      this.spaceReserve = file;
      writeFileSync(file, Buffer.alloc(SPACE_RESERVE_BYTES));
    } catch {
      // Already too full for it: the sweep runs without one (its runs may then stay `running` until the next sweep).
      this.releaseSpaceReserve();
    }
  }

  /** Give the reserved space back to the disk (when it is full, so that the last status updates fit). */
  releaseSpaceReserve(): void {
    if (this.spaceReserve) rmSync(this.spaceReserve, { force: true });
    this.spaceReserve = null;
  }

  close(): void {
    this.releaseSpaceReserve();
    this.db.close();
  }

  createSweep(grid: Grid, gridText: string, codeVersion: string, planned: readonly PlannedRun[]): number {
    const now = new Date().toISOString();
    return this.guarded(() => this.db.transaction(() => {
      const id = Number(this.db.prepare(`INSERT INTO sweeps (name, grid_file, grid_text, code_version, created_at) VALUES (?, ?, ?, ?, ?)`)
        .run(grid.name, grid.file, gridText, codeVersion, now).lastInsertRowid);
      const insertRun = this.db.prepare(`INSERT OR IGNORE INTO runs (key, dense_key, status, method, method_label, arch, dataset, target_kind,
        target_value, seed, config_json, code_version, data_fingerprint, created_at)
        VALUES (@key, @denseKey, 'pending', @method, @methodLabel, @arch, @dataset, @targetKind, @targetValue, @seed, @config, @codeVersion, @dataFingerprint, @now)`);
      const link = this.db.prepare(`INSERT OR IGNORE INTO sweep_runs (sweep_id, run_key) VALUES (?, ?)`);
      const linkChildren = this.db.prepare(`INSERT OR IGNORE INTO sweep_runs (sweep_id, run_key) SELECT ?, key FROM runs WHERE parent_key = ?`);
      for (const p of planned) {
        insertRun.run({
          key: p.key, denseKey: p.denseKey, method: p.config.method.name, methodLabel: p.methodLabel, arch: p.config.arch,
          dataset: p.config.dataset, targetKind: p.config.target.kind, targetValue: p.config.target.value, seed: p.config.seed,
          config: JSON.stringify(p.config), codeVersion: p.codeVersion, dataFingerprint: p.dataFingerprint, now,
        });
        link.run(id, p.key);
        // A finished iterative run is skipped by this sweep, but its levels are points of it too.
        linkChildren.run(id, p.key);
      }
      const ref = this.db.prepare(`INSERT INTO references_ (sweep_id, row_json) VALUES (?, ?)`);
      for (const r of grid.reference) ref.run(id, JSON.stringify(r));
      return id;
    })());
  }

  statusOf(keys: readonly string[]): Map<string, RunStatus> {
    return this.guarded(() => {
      const get = this.db.prepare(`SELECT status FROM runs WHERE key = ?`);
      return new Map(keys.map((k) => [k, (get.get(k) as { status: RunStatus } | undefined)?.status ?? "pending"]));
    });
  }

  /**
   * Claim a run for this coordinator: pending, failed or interrupted runs, or running ones whose lease expired
   * (their coordinator died). Returns false when another live coordinator holds it or it is already done.
   */
  claim(key: string, owner: string, leaseMs: number): boolean {
    const now = Date.now();
    try {
      const r = this.guarded(() => this.db.prepare(`UPDATE runs SET status = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1,
          started_at = ?, error = NULL
        WHERE key = ? AND (status IN ('pending', 'failed', 'interrupted') OR (status = 'running' AND (lease_until < ? OR lease_owner = ?)))`)
        .run(owner, now + leaseMs, new Date(now).toISOString(), key, now, owner));
      return r.changes === 1;
    } catch (e) {
      if (!(e instanceof StoreError && e.fault === "full" && this.onClaimRefusedByFullDisk)) throw e;
      this.claimsRefusedByFullDisk++;
      this.onClaimRefusedByFullDisk(e);
      return false;
    }
  }

  /** Runs left "running" by a coordinator on this host that no longer exists become interrupted (claimable). */
  reclaimDeadOwners(host: string): number {
    return this.guarded(() => this.reclaimDeadOwnersUnguarded(host));
  }

  private reclaimDeadOwnersUnguarded(host: string): number {
    const rows = this.db.prepare(`SELECT key, lease_owner FROM runs WHERE status = 'running'`).all() as Array<{ key: string; lease_owner: string | null }>;
    let n = 0;
    for (const r of rows) {
      const [ownerHost, pid] = (r.lease_owner ?? "").split(":");
      if (ownerHost !== host || !pid || processAlive(Number(pid))) continue;
      // Only if still held by the dead owner: another sweep may have reclaimed and claimed it since the SELECT.
      n += this.db.prepare(`UPDATE runs SET status = 'interrupted', error = ?, finished_at = ?, lease_owner = NULL, lease_until = NULL
        WHERE key = ? AND status = 'running' AND lease_owner = ?`)
        .run("its sweep process died before the run finished", new Date().toISOString(), r.key, r.lease_owner).changes;
    }
    return n;
  }

  /**
   * Best effort, from a timer: a throw there would kill the coordinator with its runs in flight (a full disk, a busy
   * database). A missed renewal only lets a sweep on another machine take the run after the lease expires.
   */
  renewLeases(owner: string, leaseMs: number): boolean {
    try {
      this.db.prepare(`UPDATE runs SET lease_until = ? WHERE status = 'running' AND lease_owner = ?`).run(Date.now() + leaseMs, owner);
      return true;
    } catch {
      return false;
    }
  }

  /** Record a finished job's outcome: all rows of a run in one transaction. */
  saveResult(result: JobResult): void {
    this.guarded(() => this.db.transaction(() => this.writeResult(result))());
  }

  /**
   * Save a result kept aside while the database could not take it (see unsaved.ts), unless the run was finished,
   * re-run or is held by a live sweep since. Says what it did, so the caller knows whether to keep the result.
   */
  saveKeptResult(result: JobResult): "saved" | "finished" | "held" | "unknown" {
    return this.guarded(() => this.db.transaction(() => {
      const row = this.db.prepare(`SELECT status, lease_until FROM runs WHERE key = ?`).get(result.key) as { status: RunStatus; lease_until: number | null } | undefined;
      if (!row) return "unknown";
      if (row.status === "done" || row.status === "diverged") return "finished";
      if (row.status === "running" && (row.lease_until ?? 0) >= Date.now()) return "held";
      this.writeResult(result);
      return "saved";
    }).immediate());
  }

  private writeResult(result: JobResult): void {
    {
      for (const table of RUN_ROW_TABLES) this.db.prepare(`DELETE FROM ${table} WHERE run_key = ?`).run(result.key);
      this.db.prepare(`UPDATE runs SET status = ?, error = ?, backend = ?, tfjs_version = ?, threads = ?, device = ?, gpu = ?, host = ?, worker_pid = ?, finished_at = ?,
          started_at = COALESCE(started_at, ?), lease_owner = NULL, lease_until = NULL WHERE key = ?`)
        .run(result.status, result.error, result.backend?.name ?? null, result.backend?.tfjsVersion ?? null, result.backend?.threads ?? null,
          result.backend?.device ?? null, result.backend?.gpu ?? null, result.host, result.pid, result.finishedAt, result.startedAt, result.key);
      this.writeRows(result.key, result);
      const artifact = this.db.prepare(`INSERT INTO artifacts (run_key, kind, path, sha256, bytes) VALUES (?,?,?,?,?)`);
      for (const a of result.artifacts) artifact.run(result.key, a.kind, a.path, a.sha256, a.bytes);
      this.writeLevels(result);
    }
  }

  /**
   * The levels of an iterative run, each but the last (the run's own row) as a child run. Child runs rather than a
   * levels table: reports, `bench table`, exports and comparisons all work on runs, so a level stored as a run (its
   * own config with the sparsity it reached, its metrics, layers and epochs) is an ordinary point of its method at
   * its sparsity everywhere, with no change to any of them; `parent_key` and `level` say where it came from.
   * Written in the caller's transaction, with the parent's rows. A result without levels removes stale children.
   */
  private writeLevels(result: JobResult): void {
    const stale = (this.db.prepare(`SELECT key FROM runs WHERE parent_key = ?`).all(result.key) as Array<{ key: string }>).map((r) => r.key);
    for (const key of stale) {
      for (const table of RUN_ROW_TABLES) this.db.prepare(`DELETE FROM ${table} WHERE run_key = ?`).run(key);
      this.db.prepare(`DELETE FROM sweep_runs WHERE run_key = ?`).run(key);
      this.db.prepare(`DELETE FROM runs WHERE key = ?`).run(key);
    }
    const levels = result.levels ?? [];
    if (levels.length === 0) return;
    this.db.prepare(`UPDATE runs SET level = ? WHERE key = ?`).run(levels[levels.length - 1].level, result.key);
    if (result.status !== "done" || levels.length < 2) return;
    const parent = this.db.prepare(`SELECT * FROM runs WHERE key = ?`).get(result.key) as Record<string, any> | undefined;
    if (!parent) return;
    const config = this.parseStored(parent.config_json, `configuration of run ${result.key}`) as RunConfig;
    const insert = this.db.prepare(`INSERT INTO runs (key, dense_key, status, method, method_label, arch, dataset, target_kind, target_value, seed,
        config_json, code_version, data_fingerprint, backend, tfjs_version, threads, device, gpu, host, worker_pid, attempts, created_at, started_at, finished_at, parent_key, level)
      VALUES (@key, @dense_key, 'done', @method, @method_label, @arch, @dataset, @target_kind, @target_value, @seed, @config_json, @code_version,
        @data_fingerprint, @backend, @tfjs_version, @threads, @device, @gpu, @host, @worker_pid, @attempts, @created_at, @started_at, @finished_at, @parent_key, @level)`);
    for (const level of levels.slice(0, -1)) {
      const key = levelRunKey(result.key, level.level);
      // A structured run's level is a point of its own target's kind, at what that level reached on its compacted
      // model (channel sparsity, compression or MACs reduction); a weight run's, at the sparsity it reached.
      const achieved = level.metrics.target_achieved;
      const target = Number.isFinite(achieved) ? { kind: config.target.kind, value: achieved } : { kind: "sparsity" as const, value: level.metrics.sparsity };
      insert.run({
        ...parent, key, target_kind: target.kind, target_value: target.value, config_json: JSON.stringify({ ...config, target }),
        parent_key: result.key, level: level.level,
      });
      this.db.prepare(`INSERT OR IGNORE INTO sweep_runs (sweep_id, run_key) SELECT sweep_id, ? FROM sweep_runs WHERE run_key = ?`).run(key, result.key);
      this.writeRows(key, level);
    }
  }

  private writeRows(key: string, rows: Pick<LevelResult, "metrics" | "layers" | "epochs" | "classes">): void {
    const metric = this.db.prepare(`INSERT INTO metrics (run_key, name, value) VALUES (?, ?, ?)`);
    for (const [name, value] of Object.entries(rows.metrics)) metric.run(key, name, Number.isFinite(value) ? value : null);
    const layer = this.db.prepare(`INSERT INTO layers (run_key, idx, name, kind, shape, params, nonzero, macs, macs_effective, prunable) VALUES (?,?,?,?,?,?,?,?,?,?)`);
    rows.layers.forEach((l, i) => layer.run(key, i, l.name, l.kind, JSON.stringify(l.shape), l.params, l.nonzero, l.macs, l.macsEffective, l.prunable ? 1 : 0));
    const epoch = this.db.prepare(`INSERT OR REPLACE INTO epochs (run_key, phase, epoch, loss, train_acc, val_acc, lr, seconds, dnr) VALUES (?,?,?,?,?,?,?,?,?)`);
    // dnr may be absent from epochs recorded before it existed (a dense model cached then): stored as NULL.
    for (const e of rows.epochs) epoch.run(key, e.phase, e.epoch, finite(e.loss), finite(e.trainAcc), finite(e.valAcc), e.lr, e.seconds, finite(e.dnr ?? NaN));
    const cls = this.db.prepare(`INSERT INTO class_accuracy (run_key, phase, label, name, correct, count) VALUES (?,?,?,?,?,?)`);
    for (const c of rows.classes ?? []) cls.run(key, c.phase, c.label, c.name, c.correct, c.count);
  }

  /** Mark a run as failed (or interrupted) without a worker result, e.g. when its worker died. */
  markFailed(key: string, status: "failed" | "interrupted", error: string): void {
    this.guarded(() => this.db.prepare(`UPDATE runs SET status = ?, error = ?, finished_at = ?, lease_owner = NULL, lease_until = NULL WHERE key = ?`)
      .run(status, error, new Date().toISOString(), key));
  }

  /** Runs this owner still holds as running (e.g. at a graceful stop) become interrupted. */
  releaseOwned(owner: string): number {
    return this.guarded(() => this.db.prepare(`UPDATE runs SET status = 'interrupted', error = 'interrupted before finishing', lease_owner = NULL, lease_until = NULL
      WHERE status = 'running' AND lease_owner = ?`).run(owner).changes);
  }

  /**
   * Run a read-only query (the reports' read model lives in reports/read.ts) under the same guard as the store's own
   * statements: a damaged file becomes a StoreError that says what to do.
   */
  read<T>(query: (db: Database.Database) => T): T {
    return this.guarded(() => query(this.db));
  }

  /** JSON that prunebench wrote itself: if it does not parse, bytes inside a row were damaged (quick_check cannot see that). */
  parseStored(json: string, what: string): any {
    try {
      return JSON.parse(json);
    } catch (e) {
      throw new StoreError(`results database ${this.path} is damaged: the ${what} is not valid JSON (${(e as Error).message}). ${RECOVER_HINT(this.path)}`, "corrupt");
    }
  }
}

/**
 * Switch to WAL. The switch needs an exclusive lock taken while holding a shared one, which SQLite refuses at once
 * (SQLITE_BUSY, no busy handler: it could deadlock) when another process is opening the same new database; so wait
 * and retry here, as the busy timeout would.
 */
function walMode(db: Database.Database): void {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      db.pragma("journal_mode = WAL");
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== "SQLITE_BUSY" || Date.now() > deadline) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 + Math.random() * 30);
    }
  }
}

const RECOVER_HINT = (path: string) =>
  `Restore it from a backup copy, or recover what is still readable into a new file: sqlite3 ${path} ".recover" | sqlite3 recovered.db ` +
  `(then use --db recovered.db; the next sweep re-runs whatever was lost)`;

/** SQLite's codes for a damaged file and a full disk, as StoreErrors that say what to do; anything else unchanged. */
function translate(e: unknown, path: string): unknown {
  const code = (e as { code?: unknown })?.code;
  if (typeof code !== "string" || e instanceof StoreError) return e;
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") {
    return new StoreError(`results database ${path} is damaged (${(e as Error).message}). ${RECOVER_HINT(path)}`, "corrupt");
  }
  if (code === "SQLITE_FULL") {
    return new StoreError(`the disk holding results database ${path} is full (${(e as Error).message}): free some space there, or move the database ` +
      `to a disk with room, and run the same command again`, "full");
  }
  return e;
}

/**
 * Open a database only for reading, without writing anything into it. A WAL database needs its -shm file (made
 * beside it on first open); where that cannot be made (a read-only file, folder or mount) SQLite refuses ("unable to
 * open database file"), and this better-sqlite3 is built without URI filenames, so `immutable=1` is out of reach:
 * read a private copy in memory instead. A -wal file with committed rows not yet in the main file is read through a
 * temporary copy of both, where SQLite can build the index it needs.
 */
function openForReading(path: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma("user_version"); // opening is lazy: this is where the WAL index is needed
    return db;
  } catch (e) {
    db?.close();
    if (!(e as { code?: string }).code?.startsWith("SQLITE_CANTOPEN") || !existsSync(path)) throw e;
  }
  const wal = `${path}-wal`;
  if (!existsSync(wal) || statSync(wal).size === 0) return inMemoryCopy(readFileSync(path));
  const dir = mkdtempSync(join(tmpdir(), "prunebench-readonly-"));
  try {
    copyFileSync(path, join(dir, "results.db"));
    copyFileSync(wal, join(dir, "results.db-wal"));
    const copy = new Database(join(dir, "results.db"), { readonly: true, fileMustExist: true });
    try {
      return inMemoryCopy(copy.serialize());
    } finally {
      copy.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An in-memory database from a file image. Bytes 18-19 say "WAL"; memory databases cannot use WAL, so say "rollback". */
function inMemoryCopy(image: Buffer): Database.Database {
  if (image.length >= 20) image[18] = image[19] = 1;
  return new Database(image);
}


function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The key of level `level` of run `parentKey`: its own identity, derived only from the parent's (which already hashes
 * everything that determines the run) and the level, so that a re-run of the parent replaces exactly these rows.
 */
export function levelRunKey(parentKey: string, level: number): string {
  return createHash("sha256").update(canonicalJson({ parent: parentKey, level }), "utf8").digest("hex").slice(0, parentKey.length);
}

function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}
