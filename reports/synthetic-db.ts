/** Synthetic report data written into a real results database (tests of commands that read one, the scale benchmark). */
import { Store } from "../src/store/store.js";
import type { ReportData } from "./model.js";

/** Store synthetic runs through the real schema (a sweep, runs, metrics, layers, epochs, references). */
export function writeSyntheticDatabase(path: string, data: ReportData): void {
  const store = new Store(path);
  const db = store.db;
  db.transaction(() => {
    const sweep = Number(db.prepare(`INSERT INTO sweeps (name, grid_file, grid_text, code_version, created_at) VALUES ('synthetic', 'synthetic.yaml', '', 'synthetic', ?)`).run(new Date().toISOString()).lastInsertRowid);
    const run = db.prepare(`INSERT INTO runs (key, dense_key, status, method, method_label, arch, dataset, target_kind, target_value, seed, config_json, code_version,
      data_fingerprint, backend, tfjs_version, error, created_at, started_at, finished_at) VALUES (?, 'd', ?, ?, ?, ?, ?, ?, ?, ?, '{}', 'synthetic', 'x', ?, ?, ?, ?, ?, ?)`);
    const link = db.prepare(`INSERT INTO sweep_runs (sweep_id, run_key) VALUES (?, ?)`);
    const metric = db.prepare(`INSERT INTO metrics (run_key, name, value) VALUES (?, ?, ?)`);
    for (const r of data.runs) {
      run.run(r.key, r.status, r.method, r.methodLabel, r.arch, r.dataset, r.targetKind, r.targetValue, r.seed, r.backend, r.tfjsVersion, r.error, r.startedAt ?? "", r.startedAt, r.finishedAt);
      link.run(sweep, r.key);
      for (const [name, value] of Object.entries(r.metrics)) metric.run(r.key, name, value);
    }
    const layer = db.prepare(`INSERT INTO layers (run_key, idx, name, kind, shape, params, nonzero, macs, macs_effective, prunable) VALUES (?,?,?,?,?,?,?,?,?,?)`);
    const index = new Map<string, number>();
    for (const l of data.layers) {
      const i = index.get(l.runKey) ?? 0;
      index.set(l.runKey, i + 1);
      layer.run(l.runKey, i, l.name, l.kind, JSON.stringify(l.shape), l.params, l.nonzero, l.macs, l.macsEffective, l.prunable ? 1 : 0);
    }
    const epoch = db.prepare(`INSERT OR REPLACE INTO epochs (run_key, phase, epoch, loss, train_acc, val_acc, lr, seconds) VALUES (?,?,?,?,?,?,?,?)`);
    for (const e of data.epochs) epoch.run(e.runKey, e.phase, e.epoch, e.loss, e.trainAcc, e.valAcc, e.lr, e.seconds);
    const cls = db.prepare(`INSERT INTO class_accuracy (run_key, phase, label, name, correct, count) VALUES (?,?,?,?,?,?)`);
    for (const c of data.classes ?? []) c.labels.forEach((label, i) => cls.run(c.runKey, c.phase, label, c.names[i], c.correct[i], c.count[i]));
    const ref = db.prepare(`INSERT INTO references_ (sweep_id, row_json) VALUES (?, ?)`);
    for (const r of data.references) ref.run(sweep, JSON.stringify(r));
  })();
  store.close();
}

