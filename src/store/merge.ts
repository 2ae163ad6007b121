/**
 * Merging results databases of sweeps run apart (`bench merge`). A run key names one run completely (configuration,
 * code version, data fingerprint), so runs are matched by key; what a run produced is compared, never overwritten
 * without a policy saying which side wins. Tables are discovered from the schema, not listed here: every table with a
 * `run_key` column travels with its run, so a table a later migration adds is carried along without touching this file.
 */
import Database from "better-sqlite3";
import { METRICS } from "../metrics/names.js";
import { SCHEMA_VERSION } from "./migrations.js";
import { Store, StoreError } from "./store.js";

/** fail: write nothing when a key differs; first: the row already in the target (or the earlier input) wins; last: the later input wins. */
export type ConflictPolicy = "fail" | "first" | "last";
export const CONFLICT_POLICIES: readonly ConflictPolicy[] = ["fail", "first", "last"];

export interface MergeConflict {
  key: string;
  /** The input whose run differs from the one already merged. */
  input: string;
  /** What differs, e.g. "metric top1_after: 0.8123 vs 0.815". */
  fields: string[];
}

export interface InputSummary {
  path: string;
  runs: number;
  /** New keys, and keys the target had unfinished that this input finished. */
  added: number;
  replaced: number;
  /** Same key, same results (or the target's is further along): nothing written. */
  unchanged: number;
  conflicts: number;
  sweepsAdded: number;
}

export interface MergeSummary {
  inputs: InputSummary[];
  conflicts: MergeConflict[];
  /** false when conflicts under policy "fail" rolled everything back. */
  written: boolean;
  /** Tables of an input with rows that belong to no run (not carried), so the user knows. */
  notCarried: string[];
}

/** Thrown inside the transaction to roll it back when policy "fail" meets a conflict. */
class Abort extends Error {}

/**
 * How far along a run is: a finished run (done or diverged) replaces an unfinished one silently; that is what merging
 * sweeps run apart is for. A failure carries an error worth keeping over a run that never started.
 */
const RANK: Record<string, number> = { done: 3, diverged: 3, failed: 2, interrupted: 1, running: 0, pending: 0 };

/**
 * Metrics that measure the machine rather than the method (wall times, latencies, throughput, memory, threads):
 * two hosts running the same key differ there by nature, which is not a conflict. Read from the metric units, so a new
 * timing metric is recognised without a list here.
 */
const MACHINE_UNITS = new Set(["s", "ms", "img/s", "MiB", "threads"]);
export function isMachineMeasurement(metric: string): boolean {
  const def = METRICS.get(metric);
  return metric.startsWith("measured_speedup") || (def !== undefined && MACHINE_UNITS.has(def.unit));
}

/** Per-run columns that record where and when, not what: ignored when comparing. */
const IGNORED_COLUMNS: Record<string, ReadonlySet<string>> = {
  epochs: new Set(["seconds"]),
};
/** Artifacts are files at paths of the machine that ran them: carried with the winning run, never compared. */
const NOT_COMPARED = new Set(["artifacts"]);

interface Schema {
  /** table -> its columns, in order */
  columns: Map<string, string[]>;
  /** tables with a run_key column, sweep_runs excepted */
  perRun: string[];
}

function schemaOf(db: Database.Database): Schema {
  const tables = (sql(db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as Array<{ name: string }>)
    .map((t) => t.name);
  const columns = new Map(tables.map((t) => [t, (db.pragma(`table_info(${quote(t)})`) as Array<{ name: string }>).map((c) => c.name)]));
  const perRun = tables.filter((t) => t !== "sweep_runs" && columns.get(t)!.includes("run_key"));
  return { columns, perRun };
}

/** Prepared statements by database and text: merging runs the same few statements once per run key. */
const statements = new WeakMap<Database.Database, Map<string, Database.Statement>>();
function sql(db: Database.Database, text: string): Database.Statement {
  let byText = statements.get(db);
  if (!byText) statements.set(db, (byText = new Map()));
  let st = byText.get(text);
  if (!st) byText.set(text, (st = db.prepare(text)));
  return st;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Refuse a target that is not a results database (or not one of ours) before anything opens it for writing: opening
 * switches the journal mode and applies migrations, which would alter someone else's SQLite file.
 */
export function checkMergeTarget(path: string): void {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const version = db.pragma("user_version", { simple: true }) as number;
    const tables = (sql(db, `SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'`).get() as { n: number }).n;
    if (version === 0 && tables > 0) {
      throw new StoreError(`--into ${path} is a SQLite database but not a prunebench results database (schema version 0 with ${tables} table(s)): refusing to write into it; give another file name`);
    }
    if (version > SCHEMA_VERSION) {
      throw new StoreError(`--into ${path} has schema version ${version}, newer than this prunebench (${SCHEMA_VERSION}); upgrade prunebench`);
    }
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreError(`cannot read --into ${path}: ${(e as Error).message}`);
  } finally {
    db?.close();
  }
}

/**
 * Merge `inputs` (opened for reading; older schemas are upgraded in memory by Store) into `target`, in order, in one
 * transaction: a merge that fails or meets a conflict under policy "fail" leaves the target as it was.
 */
export function mergeInto(target: Store, inputs: ReadonlyArray<{ path: string; store: Store }>, policy: ConflictPolicy): MergeSummary {
  const summary: MergeSummary = { inputs: [], conflicts: [], written: false, notCarried: [] };
  const t = target.db;
  const schema = schemaOf(t);
  try {
    target.read(() => t.transaction(() => {
      for (const input of inputs) summary.inputs.push(mergeOne(t, schema, input, policy, summary));
      if (policy === "fail" && summary.conflicts.length > 0) throw new Abort();
    }).immediate());
    summary.written = true;
  } catch (e) {
    if (!(e instanceof Abort)) throw e;
  }
  return summary;
}

function mergeOne(t: Database.Database, schema: Schema, input: { path: string; store: Store }, policy: ConflictPolicy, summary: MergeSummary): InputSummary {
  const s = input.store.db;
  const sSchema = schemaOf(s);
  const out: InputSummary = { path: input.path, runs: 0, added: 0, replaced: 0, unchanged: 0, conflicts: 0, sweepsAdded: 0 };
  for (const [table] of sSchema.columns) {
    if (schema.columns.has(table) || (sql(s, `SELECT count(*) AS n FROM ${quote(table)}`).get() as { n: number }).n === 0) continue;
    summary.notCarried.push(`${input.path}: table ${table}`);
  }

  const sweepIds = mergeSweeps(t, s, out);
  // Child runs (levels of an iterative run) travel with their parent: they are one result.
  const parents = sql(s, `SELECT * FROM runs WHERE parent_key IS NULL ORDER BY key`).all() as Array<Record<string, unknown>>;
  const existing = sql(t, `SELECT status FROM runs WHERE key = ?`);
  for (const run of parents) {
    out.runs++;
    const key = run.key as string;
    const have = existing.get(key) as { status: string } | undefined;
    if (!have) {
      copyRun(t, s, schema, key);
      out.added++;
      continue;
    }
    const [mine, theirs] = [RANK[have.status] ?? 0, RANK[run.status as string] ?? 0];
    if (theirs < mine || (theirs === mine && theirs < RANK.done)) {
      out.unchanged++;
      continue;
    }
    if (theirs > mine) {
      replaceRun(t, s, schema, key);
      out.added++;
      continue;
    }
    const fields = differences(t, s, schema, key);
    if (fields.length === 0) {
      out.unchanged++;
      continue;
    }
    out.conflicts++;
    summary.conflicts.push({ key, input: input.path, fields });
    if (policy === "last") {
      replaceRun(t, s, schema, key);
      out.replaced++;
    }
  }
  const link = sql(t, `INSERT OR IGNORE INTO sweep_runs (sweep_id, run_key) SELECT ?, key FROM runs WHERE key = ?`);
  for (const r of sql(s, `SELECT sweep_id, run_key FROM sweep_runs`).all() as Array<{ sweep_id: number; run_key: string }>) {
    const id = sweepIds.get(r.sweep_id);
    if (id !== undefined) link.run(id, r.run_key);
  }
  return out;
}

/**
 * Sweeps are matched by everything they record (name, grid file and text, code version, creation time): a sweep
 * merged twice maps to the one row, so merging again adds nothing. Returns input sweep id -> target sweep id.
 */
function mergeSweeps(t: Database.Database, s: Database.Database, out: InputSummary): Map<number, number> {
  const ids = new Map<number, number>();
  const find = sql(t, `SELECT id FROM sweeps WHERE name = ? AND grid_file = ? AND grid_text = ? AND code_version = ? AND created_at = ? ORDER BY id LIMIT 1`);
  const insert = sql(t, `INSERT INTO sweeps (name, grid_file, grid_text, code_version, created_at) VALUES (?, ?, ?, ?, ?)`);
  const ref = sql(t, `INSERT INTO references_ (sweep_id, row_json) VALUES (?, ?)`);
  const refs = sql(s, `SELECT row_json FROM references_ WHERE sweep_id = ? ORDER BY id`);
  for (const sw of sql(s, `SELECT * FROM sweeps ORDER BY id`).all() as Array<{ id: number; name: string; grid_file: string; grid_text: string; code_version: string; created_at: string }>) {
    const args = [sw.name, sw.grid_file, sw.grid_text, sw.code_version, sw.created_at];
    const found = find.get(...args) as { id: number } | undefined;
    if (found) {
      ids.set(sw.id, found.id);
      continue;
    }
    const id = Number(insert.run(...args).lastInsertRowid);
    for (const r of refs.all(sw.id) as Array<{ row_json: string }>) ref.run(id, r.row_json);
    ids.set(sw.id, id);
    out.sweepsAdded++;
  }
  return ids;
}

/** Insert run `key` and its children, with every per-run row, from `s` into `t` (which has none of them). */
function copyRun(t: Database.Database, s: Database.Database, schema: Schema, key: string): void {
  const keys = [key, ...childrenOf(s, key)];
  insertRuns(t, s, schema, keys);
  copyRows(t, s, schema, keys);
}

/** Replace the target's run `key` (rows, children and their rows) by the input's. Sweep links stay. */
function replaceRun(t: Database.Database, s: Database.Database, schema: Schema, key: string): void {
  const stale = childrenOf(t, key);
  for (const k of [key, ...stale]) {
    for (const table of schema.perRun) sql(t, `DELETE FROM ${quote(table)} WHERE run_key = ?`).run(k);
  }
  for (const k of stale) {
    sql(t, `DELETE FROM sweep_runs WHERE run_key = ?`).run(k);
    sql(t, `DELETE FROM runs WHERE key = ?`).run(k);
  }
  // The run row is updated in place rather than deleted and inserted: sweep_runs rows point at it.
  const row = sql(s, `SELECT * FROM runs WHERE key = ?`).get(key) as Record<string, unknown>;
  const cols = schema.columns.get("runs")!.filter((c) => c !== "key");
  sql(t, `UPDATE runs SET ${cols.map((c) => `${quote(c)} = ?`).join(", ")} WHERE key = ?`).run(...cols.map((c) => row[c] ?? null), key);
  const children = childrenOf(s, key);
  insertRuns(t, s, schema, children);
  copyRows(t, s, schema, [key, ...children]);
}

const childrenOf = (db: Database.Database, key: string) =>
  (sql(db, `SELECT key FROM runs WHERE parent_key = ? ORDER BY key`).all(key) as Array<{ key: string }>).map((r) => r.key);

function insertRuns(t: Database.Database, s: Database.Database, schema: Schema, keys: readonly string[]): void {
  const cols = schema.columns.get("runs")!;
  const insert = sql(t, `INSERT INTO runs (${cols.map(quote).join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`);
  const get = sql(s, `SELECT * FROM runs WHERE key = ?`);
  for (const k of keys) {
    const row = get.get(k) as Record<string, unknown>;
    insert.run(...cols.map((c) => row[c] ?? null));
  }
}

function copyRows(t: Database.Database, s: Database.Database, schema: Schema, keys: readonly string[]): void {
  for (const table of schema.perRun) {
    const cols = schema.columns.get(table)!;
    const put = sql(t, `INSERT INTO ${quote(table)} (${cols.map(quote).join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`);
    const get = sql(s, `SELECT * FROM ${quote(table)} WHERE run_key = ?`);
    for (const k of keys) {
      for (const r of get.all(k) as Array<Record<string, unknown>>) put.run(...cols.map((c) => r[c] ?? null));
    }
  }
}

const MAX_FIELDS = 8;

/** What differs between the two databases' results for finished run `key` (and its levels); empty when nothing does. */
function differences(t: Database.Database, s: Database.Database, schema: Schema, key: string): string[] {
  const out: string[] = [];
  const status = (db: Database.Database, k: string) => (sql(db, `SELECT status FROM runs WHERE key = ?`).get(k) as { status: string } | undefined)?.status;
  if (status(t, key) !== status(s, key)) out.push(`status: ${status(t, key)} vs ${status(s, key)}`);
  const [tc, sc] = [childrenOf(t, key), childrenOf(s, key)];
  if (tc.join() !== sc.join()) out.push(`levels: ${tc.length} vs ${sc.length} child runs`);
  for (const k of [key, ...tc.filter((c) => sc.includes(c))]) {
    const where = k === key ? "" : `level run ${k}: `;
    out.push(...metricDifferences(t, s, k).map((d) => where + d));
    for (const table of schema.perRun) {
      if (table === "metrics" || NOT_COMPARED.has(table)) continue;
      const n = rowDifferences(t, s, schema, table, k);
      if (n > 0) out.push(`${where}${table}: ${n} row(s) differ`);
    }
  }
  return out.length > MAX_FIELDS ? [...out.slice(0, MAX_FIELDS), `… and ${out.length - MAX_FIELDS} more`] : out;
}

function metricDifferences(t: Database.Database, s: Database.Database, key: string): string[] {
  const read = (db: Database.Database) => new Map((sql(db, `SELECT name, value FROM metrics WHERE run_key = ?`).all(key) as Array<{ name: string; value: number | null }>)
    .filter((m) => !isMachineMeasurement(m.name)).map((m) => [m.name, m.value]));
  const [a, b] = [read(t), read(s)];
  const out: string[] = [];
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const [x, y] = [a.get(name), b.get(name)];
    if (x !== y) out.push(`metric ${name}: ${x === undefined ? "absent" : x} vs ${y === undefined ? "absent" : y}`);
  }
  return out;
}

/** Rows of `table` for `key` present on one side only, compared on every column but run_key and the ignored ones. */
function rowDifferences(t: Database.Database, s: Database.Database, schema: Schema, table: string, key: string): number {
  const ignored = IGNORED_COLUMNS[table] ?? new Set<string>();
  const cols = schema.columns.get(table)!.filter((c) => c !== "run_key" && !ignored.has(c));
  const rows = (db: Database.Database) => (sql(db, `SELECT ${cols.map(quote).join(", ")} FROM ${quote(table)} WHERE run_key = ?`).all(key) as Array<Record<string, unknown>>)
    .map((r) => JSON.stringify(cols.map((c) => r[c])));
  const [a, b] = [rows(t), rows(s)];
  const count = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
  const [ca, cb] = [count(a), count(b)];
  let n = 0;
  for (const [row, k] of ca) n += Math.max(0, k - (cb.get(row) ?? 0));
  for (const [row, k] of cb) n += Math.max(0, k - (ca.get(row) ?? 0));
  return n;
}
