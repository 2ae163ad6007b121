/**
 * exportRows: the raw rows of a ReportData (runs, per-layer rows, per-epoch rows) as CSV, JSON or JSON Lines.
 * Runs get one column per metric (the names of src/metrics/names.ts first, in that order, then any other metric
 * found in the data, sorted). In CSV, arrays are joined (sweepIds with ";", shape with "x"), config is a JSON string,
 * null is an empty field.
 */
import { stringify } from "csv-stringify/sync";
import { METRIC_NAMES } from "../src/metrics/names.js";
import type { ReportData } from "./model.js";

export type ExportWhat = "runs" | "layers" | "epochs";
export type ExportFormat = "csv" | "json" | "jsonl";

const RUN_FIELDS = [
  "key", "sweepIds", "database", "status", "method", "methodLabel", "arch", "dataset", "targetKind", "targetValue", "seed",
  "backend", "tfjsVersion", "device", "gpu", "error", "startedAt", "finishedAt",
] as const;
const LAYER_FIELDS = ["runKey", "name", "kind", "shape", "params", "nonzero", "macs", "macsEffective", "prunable"] as const;
const EPOCH_FIELDS = ["runKey", "phase", "epoch", "loss", "trainAcc", "valAcc", "lr", "seconds", "dnr"] as const;

/** Metric columns for the runs: known names first (in definition order), then others found, sorted. */
export function runMetricColumns(data: ReportData): string[] {
  const found = new Set<string>();
  for (const r of data.runs) for (const k of Object.keys(r.metrics)) found.add(k);
  const known = METRIC_NAMES.filter((m) => found.has(m));
  const extra = [...found].filter((m) => !METRIC_NAMES.includes(m)).sort();
  return [...known, ...extra];
}

function table(data: ReportData, what: ExportWhat): { columns: string[]; rows: Record<string, unknown>[] } {
  switch (what) {
    case "runs": {
      const metrics = runMetricColumns(data);
      const columns = [...RUN_FIELDS, ...metrics, "config"];
      const rows = data.runs.map((r) => {
        const o: Record<string, unknown> = {};
        for (const f of RUN_FIELDS) o[f] = r[f];
        for (const m of metrics) o[m] = r.metrics[m] ?? null;
        o.config = r.config ?? null;
        return o;
      });
      return { columns, rows };
    }
    case "layers":
      return { columns: [...LAYER_FIELDS], rows: data.layers.map((l) => Object.fromEntries(LAYER_FIELDS.map((f) => [f, l[f]]))) };
    case "epochs":
      return { columns: [...EPOCH_FIELDS], rows: data.epochs.map((e) => Object.fromEntries(EPOCH_FIELDS.map((f) => [f, e[f]]))) };
    default:
      throw new Error(`exportRows: unknown row kind "${String(what)}" (runs, layers, epochs)`);
  }
}

function csvValue(key: string, v: unknown): string | number | boolean | null {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return v.join(key === "shape" ? "x" : ";");
  if (typeof v === "object") return JSON.stringify(v);
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  return v as string | number | boolean;
}

/** Non-finite numbers are not JSON; write them as null. */
function jsonSafe(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (typeof o[k] === "number" && !Number.isFinite(o[k] as number)) o[k] = null;
  return o;
}

export function exportRows(data: ReportData, what: ExportWhat, format: ExportFormat): string {
  const { columns, rows } = table(data, what);
  switch (format) {
    case "csv":
      return stringify(
        rows.map((r) => Object.fromEntries(columns.map((c) => [c, csvValue(c, r[c])]))),
        { header: true, columns, cast: { boolean: (b) => (b ? "true" : "false"), number: (n) => String(n) } },
      );
    case "json":
      return rows.length === 0 ? "[]\n" : `[\n${rows.map((r) => JSON.stringify(jsonSafe(r))).join(",\n")}\n]\n`;
    case "jsonl":
      return rows.map((r) => JSON.stringify(jsonSafe(r)) + "\n").join("");
    default:
      throw new Error(`exportRows: unknown format "${String(format)}" (csv, json, jsonl)`);
  }
}
