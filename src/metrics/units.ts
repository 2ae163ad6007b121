/**
 * Units a published number may be given in, and how each converts to the metric's own unit. Papers differ: error
 * vs accuracy in percent, FLOPs as MACs or as 2×MACs (Han 2015, Network Slimming). A reference row keeps the unit
 * its paper used; comparisons convert with these factors, written once here.
 */
import { METRICS } from "./names.js";

const ALTERNATIVES: Record<string, Record<string, (v: number) => number>> = {
  fraction: { percent: (v) => v / 100, "%": (v) => v / 100 },
  MACs: { "2xMACs": (v) => v / 2, "FLOPs(2xMACs)": (v) => v / 2, "FLOPs(MACs)": (v) => v },
  ms: { s: (v) => v * 1000 },
  s: { ms: (v) => v / 1000, min: (v) => v * 60 },
};

/** Units accepted for a metric: its own first, then the convertible ones. */
export function acceptedUnits(metric: string): string[] {
  const unit = METRICS.get(metric)?.unit;
  if (!unit) return [];
  return [unit, ...Object.keys(ALTERNATIVES[unit] ?? {})];
}

/** The value in the metric's own unit, or null when the unit is not one of acceptedUnits(metric). */
export function toMetricUnit(metric: string, value: number, unit: string): number | null {
  const own = METRICS.get(metric)?.unit;
  if (!own) return null;
  if (unit === own) return value;
  const convert = ALTERNATIVES[own]?.[unit];
  return convert ? convert(value) : null;
}
