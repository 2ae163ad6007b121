/**
 * Small formatting helpers shared by the report renderers (HTML, tables). Pure functions, no DOM.
 */
import { METRICS } from "../src/metrics/names.js";

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === '"' ? "&quot;" : "&#39;"));
}

/** JSON that is safe to place inside a <script> element (no "</script", no HTML comment openers). */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}


/** A number without trailing zeros, at most `digits` decimals. */
export function trimNum(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  return String(Number(v.toFixed(digits)));
}

/** Metric unit as declared in src/metrics/names.ts ("" for unknown metrics). */
export function metricUnit(name: string): string {
  return METRICS.get(name)?.unit ?? "";
}

/** Whether a metric is a fraction that reads better as a percentage. */
export function isFraction(name: string): boolean {
  return metricUnit(name) === "fraction";
}

/** Human-readable integer with thin grouping: 1234567 -> "1.23M". */
export function compactCount(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(a >= 1e10 ? 1 : 2)}G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 1 : 2)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`;
  return String(Math.round(v));
}

/**
 * Format one value of a metric for display: fractions as percent (2 decimals), ratios with 2 decimals and "x",
 * counts compact, milliseconds/seconds with 2-3 significant decimals.
 */
export function formatMetric(name: string, v: number | null | undefined, withUnit = true): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  const unit = metricUnit(name);
  switch (unit) {
    case "fraction":
      return `${(v * 100).toFixed(2)}${withUnit ? "%" : ""}`;
    case "x":
      return `${v.toFixed(2)}${withUnit ? "×" : ""}`;
    case "count":
    case "MACs":
      return compactCount(v);
    case "ms":
      return `${v < 10 ? v.toFixed(2) : v.toFixed(1)}${withUnit ? " ms" : ""}`;
    case "s":
      return `${v < 10 ? v.toFixed(2) : v.toFixed(1)}${withUnit ? " s" : ""}`;
    default:
      return Math.abs(v) >= 1e4 ? compactCount(v) : trimNum(v, 3);
  }
}

/** Spread (std, CI half-width) in the same display scale as formatMetric, without the unit. */
export function formatSpread(name: string, v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  const unit = metricUnit(name);
  if (unit === "fraction") return (v * 100).toFixed(2);
  if (unit === "x") return v.toFixed(2);
  if (unit === "count" || unit === "MACs") return compactCount(v);
  if (unit === "ms" || unit === "s") return v < 10 ? v.toFixed(2) : v.toFixed(1);
  return trimNum(v, 3);
}

/** Seconds as "3 h 02 min" / "4 min 05 s" / "12.3 s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  return `${m} min ${String(r).padStart(2, "0")} s`;
}
