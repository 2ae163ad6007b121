/**
 * The reports' read model: what reports, tables, exports, `bench ls` and `bench show` read from a results database.
 * The store owns the writes and the file; these queries belong to the reports and run through the store's guard, so a
 * damaged database is a clear error here too.
 */
import type { Store } from "../src/store/store.js";
import type { ReferenceRow, RunStatus } from "../src/core/types.js";
import type { ClassRow, EpochRow, LayerRow, ReportData, RunRow, SweepInfo } from "./model.js";

export interface RunFilter {
  sweep?: number;
  status?: RunStatus;
  method?: string;
  arch?: string;
  dataset?: string;
  /** The first characters of a run key. */
  keyPrefix?: string;
  /**
   * One row per level an iterative lineage reached: the first rounds of an iterative method are the same training for
   * every final target of a seed (one config, seed and dense model), so the runs to 8x, 16x and 32x each store the
   * same 2x and 4x levels; counted as they are stored, they would pass for three seeds with no spread. Reports and
   * tables ask for this; `bench ls`/`show` list every stored row.
   */
  distinctLevels?: boolean;
}

export type ArtifactRow = { kind: string; path: string; sha256: string; bytes: number };

export function readSweeps(store: Store): SweepInfo[] {
  return (store.read((db) => db.prepare(`SELECT * FROM sweeps ORDER BY id`).all()) as any[]).map((s) => ({
    id: s.id, name: s.name, gridFile: s.grid_file, gridText: s.grid_text, createdAt: s.created_at, codeVersion: s.code_version, database: store.path,
  }));
}

/** Runs with their metrics, filtered on runs columns. */
export function readRuns(store: Store, filter: RunFilter = {}): RunRow[] {
  const clauses: string[] = [];
  const args: unknown[] = [];
  if (filter.sweep !== undefined) { clauses.push(`key IN (SELECT run_key FROM sweep_runs WHERE sweep_id = ?)`); args.push(filter.sweep); }
  for (const col of ["status", "method", "arch", "dataset"] as const) {
    if (filter[col] !== undefined) { clauses.push(`${col} = ?`); args.push(filter[col]); }
  }
  // A prefix compared as a string, not a LIKE pattern: `_` and `%` in what a user typed are not wildcards.
  if (filter.keyPrefix) { clauses.push(`substr(key, 1, ?) = ?`); args.push(filter.keyPrefix.length, filter.keyPrefix); }
  return store.read((db) => {
    let rows = db.prepare(`SELECT * FROM runs ${clauses.length ? `WHERE ${clauses.join(" AND ")}` : ""} ORDER BY dataset, arch, method_label, target_value, seed, key`).all(...args) as any[];
    if (filter.distinctLevels) {
      // The same training = the same dense model, code and config (a level's config carries the target it reached).
      const lineage = (r: any) => `${r.dense_key}\u0000${r.code_version}\u0000${r.config_json}`;
      const seen = new Set(rows.filter((r) => r.parent_key == null).map(lineage));
      rows = rows.filter((r) => r.parent_key == null || (!seen.has(lineage(r)) && !!seen.add(lineage(r))));
    }
    const metrics = new Map<string, Record<string, number | null>>();
    // One JSON object per run built inside SQLite: a 10,000-run database has ~300,000 metric rows, and
    // converting each cell to a JS value costs more than parsing 10,000 small JSON strings.
    for (const [runKey, json] of db.prepare(`SELECT run_key, json_group_object(name, value) FROM metrics GROUP BY run_key`).raw().all() as Array<[string, string]>) {
      metrics.set(runKey, store.parseStored(json, `metrics of run ${runKey}`));
    }
    const sweepsOf = new Map<string, number[]>();
    for (const [sweepId, runKey] of db.prepare(`SELECT sweep_id, run_key FROM sweep_runs`).raw().all() as Array<[number, string]>) {
      const list = sweepsOf.get(runKey);
      if (list) list.push(sweepId);
      else sweepsOf.set(runKey, [sweepId]);
    }
    return rows.map((r) => ({
      key: r.key, sweepIds: sweepsOf.get(r.key) ?? [], database: store.path, status: r.status, method: r.method, methodLabel: r.method_label,
      arch: r.arch, dataset: r.dataset, targetKind: r.target_kind, targetValue: r.target_value, seed: r.seed, denseKey: r.dense_key, backend: r.backend,
      tfjsVersion: r.tfjs_version, device: r.device ?? null, gpu: r.gpu ?? null, error: r.error, startedAt: r.started_at, finishedAt: r.finished_at, metrics: metrics.get(r.key) ?? {},
      config: store.parseStored(r.config_json, `configuration of run ${r.key}`),
    }));
  });
}

export function readLayers(store: Store, runKeys?: ReadonlySet<string>): LayerRow[] {
  const rows = store.read((db) => db.prepare(`SELECT run_key, name, kind, shape, params, nonzero, macs, macs_effective, prunable FROM layers ORDER BY run_key, idx`).raw().all()) as any[][];
  const out: LayerRow[] = [];
  for (const [runKey, name, kind, shape, params, nonzero, macs, macsEffective, prunable] of rows) {
    if (runKeys && !runKeys.has(runKey)) continue;
    // shape is stored as a JSON array of integers, e.g. "[5,5,1,6]".
    out.push({ runKey, name, kind, shape: shape.length > 2 ? shape.slice(1, -1).split(",").map(Number) : [], params, nonzero, macs, macsEffective, prunable: prunable === 1 });
  }
  return out;
}

export function readEpochs(store: Store, runKeys?: ReadonlySet<string>): EpochRow[] {
  const rows = store.read((db) => db.prepare(`SELECT run_key, phase, epoch, loss, train_acc, val_acc, lr, seconds, dnr FROM epochs ORDER BY run_key, phase DESC, epoch`).raw().all()) as any[][];
  const out: EpochRow[] = [];
  for (const [runKey, phase, epoch, loss, trainAcc, valAcc, lr, seconds, dnr] of rows) {
    // NULL: not measured (stored before the column existed, or no ReLU).
    if (!runKeys || runKeys.has(runKey)) out.push({ runKey, phase, epoch, loss, trainAcc, valAcc, lr, seconds, dnr: dnr ?? NaN });
  }
  return out;
}

/** Per-class top-1 (migration 5), one ClassRow per run and phase, of `runKeys` when given. */
export function readClassAccuracy(store: Store, runKeys?: ReadonlySet<string>): ClassRow[] {
  // Grouped inside SQLite (as the metrics are): one row per run and phase instead of one per class.
  const rows = store.read((db) => db.prepare(`SELECT run_key, phase, json_group_array(label), json_group_array(name), json_group_array(correct), json_group_array(count)
    FROM (SELECT * FROM class_accuracy ORDER BY run_key, phase, label) GROUP BY run_key, phase`).raw().all()) as string[][];
  const out: ClassRow[] = [];
  for (const [runKey, phase, labels, names, correct, count] of rows) {
    if (runKeys && !runKeys.has(runKey)) continue;
    const parse = (json: string) => store.parseStored(json, `per-class results of run ${runKey}`);
    out.push({ runKey, phase: phase as ClassRow["phase"], labels: parse(labels), names: parse(names), correct: parse(correct), count: parse(count) });
  }
  return out;
}

export function readArtifacts(store: Store, runKey: string): ArtifactRow[] {
  return store.read((db) => db.prepare(`SELECT kind, path, sha256, bytes FROM artifacts WHERE run_key = ?`).all(runKey)) as ArtifactRow[];
}

/** Published rows stored with the sweeps (each once, however many sweeps repeated it). */
export function readReferences(store: Store, sweep?: number): ReferenceRow[] {
  const rows = store.read((db) => (sweep === undefined
    ? db.prepare(`SELECT row_json FROM references_ ORDER BY id`).all()
    : db.prepare(`SELECT row_json FROM references_ WHERE sweep_id = ? ORDER BY id`).all(sweep))) as Array<{ row_json: string }>;
  const seen = new Set<string>();
  return rows.map((r) => r.row_json).filter((j) => !seen.has(j) && seen.add(j)).map((j) => store.parseStored(j, "a reference row"));
}

/** Everything a report, table or export needs: the runs of one sweep (or all), with their layers, epochs and references. */
export function readReportData(store: Store, options: { sweep?: number; title?: string } = {}): ReportData {
  const runs = readRuns(store, { sweep: options.sweep, distinctLevels: true });
  const keys = new Set(runs.map((r) => r.key));
  const sweeps = readSweeps(store).filter((s) => options.sweep === undefined || s.id === options.sweep);
  return {
    title: options.title ?? `prunebench report: ${[...new Set(sweeps.map((s) => s.name))].join(", ") || store.path}`,
    generatedAt: new Date().toISOString(),
    sweeps, runs, layers: readLayers(store, keys), epochs: readEpochs(store, keys), references: readReferences(store, options.sweep),
    classes: readClassAccuracy(store, keys),
  };
}
