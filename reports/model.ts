/**
 * The plain data a report is rendered from. src/store fills it from SQLite; renderers never touch the database,
 * so every report section can be tested on a hand-made ReportData.
 */
import type { ClassAccuracy, EpochRecord, LayerCount, PruneTarget, ReferenceRow, RunStatus } from "../src/core/types.js";

export interface SweepInfo {
  id: number;
  name: string;
  gridFile: string;
  gridText: string;
  createdAt: string;
  codeVersion: string;
  /** Where the sweep's rows came from when several databases are compared (else the db file). */
  database: string;
}

export interface RunRow {
  key: string;
  sweepIds: number[];
  database: string;
  status: RunStatus;
  method: string;
  /** Method name plus non-default hyperparameters, e.g. "random(scope=global)". */
  methodLabel: string;
  arch: string;
  dataset: string;
  targetKind: PruneTarget["kind"];
  targetValue: number;
  seed: number;
  /** Key of the dense model the run pruned (runs of one seed share it); absent in hand-made data. */
  denseKey?: string;
  backend: string | null;
  tfjsVersion: string | null;
  /** The device the run trained on ("cpu", "cuda:0 <GPU name>") and the GPU id its worker was bound to; null before they were recorded. */
  device?: string | null;
  gpu?: string | null;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** Metric name → value (see src/metrics/names.ts for the names and their definitions). */
  metrics: Record<string, number | null>;
  config: unknown;
}

/** A run's per-layer counts (src/metrics/counts.ts), as stored. */
export type LayerRow = LayerCount & { runKey: string };

/** A run's per-epoch record (src/train/hooks.ts), as stored. */
export type EpochRow = EpochRecord & { runKey: string };

/**
 * A run's per-class top-1 in one phase (src/core/types.ts ClassAccuracy, stored one row per class), as parallel
 * arrays indexed by position, labels ascending: a 10,000-run database has 300,000 class rows, and one object per row
 * cost seconds to read.
 */
export interface ClassRow {
  runKey: string;
  phase: ClassAccuracy["phase"];
  labels: number[];
  names: string[];
  correct: number[];
  count: number[];
}

export interface ReportData {
  title: string;
  generatedAt: string;
  sweeps: SweepInfo[];
  runs: RunRow[];
  layers: LayerRow[];
  epochs: EpochRow[];
  references: ReferenceRow[];
  /** Per-class top-1 of the runs; absent in hand-made data and databases from before it was stored. */
  classes?: ClassRow[];
}
