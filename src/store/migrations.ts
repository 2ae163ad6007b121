/**
 * The schema, as an ordered list of migrations. PRAGMA user_version holds how many have been applied; opening an
 * older database applies the rest in one transaction. Append only: never edit a migration that has shipped.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the foundation schema
  `
  CREATE TABLE sweeps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    grid_file TEXT NOT NULL,
    grid_text TEXT NOT NULL,
    code_version TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE runs (
    key TEXT PRIMARY KEY,
    dense_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending','running','done','failed','diverged','interrupted')),
    method TEXT NOT NULL,
    method_label TEXT NOT NULL,
    arch TEXT NOT NULL,
    dataset TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_value REAL NOT NULL,
    seed INTEGER NOT NULL,
    config_json TEXT NOT NULL,
    code_version TEXT NOT NULL,
    data_fingerprint TEXT NOT NULL,
    backend TEXT,
    tfjs_version TEXT,
    threads INTEGER,
    host TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
  );
  CREATE INDEX runs_status ON runs(status);
  CREATE TABLE sweep_runs (
    sweep_id INTEGER NOT NULL REFERENCES sweeps(id),
    run_key TEXT NOT NULL REFERENCES runs(key),
    PRIMARY KEY (sweep_id, run_key)
  );
  CREATE TABLE metrics (
    run_key TEXT NOT NULL REFERENCES runs(key),
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_key, name)
  );
  CREATE TABLE layers (
    run_key TEXT NOT NULL REFERENCES runs(key),
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    shape TEXT NOT NULL,
    params INTEGER NOT NULL,
    nonzero INTEGER NOT NULL,
    macs REAL NOT NULL,
    macs_effective REAL NOT NULL,
    prunable INTEGER NOT NULL,
    PRIMARY KEY (run_key, idx)
  );
  CREATE TABLE epochs (
    run_key TEXT NOT NULL REFERENCES runs(key),
    phase TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    loss REAL, train_acc REAL, val_acc REAL, lr REAL, seconds REAL,
    PRIMARY KEY (run_key, phase, epoch)
  );
  CREATE TABLE artifacts (
    run_key TEXT NOT NULL REFERENCES runs(key),
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (run_key, kind)
  );
  CREATE TABLE references_ (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sweep_id INTEGER NOT NULL REFERENCES sweeps(id),
    row_json TEXT NOT NULL
  );
  `,
  // 2: which worker process ran a run (with host), for diagnosing crashes and memory recycling
  `ALTER TABLE runs ADD COLUMN worker_pid INTEGER;`,
  // 3: child runs, one per level of an iterative run (Store.saveResult): the run they came from and their level
  // (a parent holds its own last level number; NULL for runs with one result)
  `
  ALTER TABLE runs ADD COLUMN parent_key TEXT;
  ALTER TABLE runs ADD COLUMN level INTEGER;
  CREATE INDEX runs_parent ON runs(parent_key);
  `,
  // 4: the dynamic dead neuron rate of each training epoch (EpochRecord.dnr); NULL for epochs stored before it
  `ALTER TABLE epochs ADD COLUMN dnr REAL;`,
  // 5: per-class top-1 on the test split (ClassAccuracy), counted in the evaluation pass of top1_dense / _before /
  // _after: hits and images rather than a fraction, so accuracies over classes, seeds or runs weigh exactly; WITHOUT
  // ROWID: the rows live in their key's b-tree (30 per run), not twice
  `
  CREATE TABLE class_accuracy (
    run_key TEXT NOT NULL REFERENCES runs(key),
    phase TEXT NOT NULL CHECK (phase IN ('dense','before','after')),
    label INTEGER NOT NULL,
    name TEXT NOT NULL,
    correct INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (run_key, phase, label)
  ) WITHOUT ROWID;
  `,
  // 6: the device a run trained on ("cpu", or the torch backend's "cuda:0 <GPU name>") and the GPU its worker was
  // bound to (`--gpus`: the CUDA_VISIBLE_DEVICES id); NULL for runs stored before, which all ran on the CPU
  `
  ALTER TABLE runs ADD COLUMN device TEXT;
  ALTER TABLE runs ADD COLUMN gpu TEXT;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
