/** Option values checked against what exists, with the valid choices and a did-you-mean: bad input exits 2. */
import { didYouMean } from "../grid/suggest.js";
import type { ReportData } from "../../reports/model.js";
import { readReportData, readSweeps } from "../../reports/read.js";
import type { Store } from "../store/store.js";
import { UsageError } from "./errors.js";
import { openExisting } from "./open.js";

/** `value` must be one of `valid`; the message names the option, the value, a near miss and every choice. */
export function oneOf<T extends string>(flag: string, value: string, valid: readonly T[]): T {
  if ((valid as readonly string[]).includes(value)) return value as T;
  const near = didYouMean(value, valid);
  throw new UsageError(`${flag}: unknown value "${value}"${near ? `; did you mean "${near}"?` : ""} valid: ${valid.join(", ")}`);
}

/** A comma-separated list, each item one of `valid`, none twice, at least one. */
export function listOf<T extends string>(flag: string, value: string, valid: readonly T[]): T[] {
  const items = value.split(",").map((x) => x.trim());
  if (items.every((x) => x === "")) throw new UsageError(`${flag} is empty; give one or more of: ${valid.join(", ")}`);
  const out = items.map((x) => {
    if (x === "") throw new UsageError(`${flag} "${value}" has an empty item; give a comma-separated list of: ${valid.join(", ")}`);
    return oneOf(flag, x, valid);
  });
  const twice = out.find((x, i) => out.indexOf(x) !== i);
  if (twice) throw new UsageError(`${flag} lists "${twice}" twice`);
  return out;
}

/**
 * A sweep id (see `bench ls`) that exists in `store`; undefined when the option was not given. A sweep that does
 * not exist would otherwise select nothing and print an empty table with exit 0.
 */
export function existingSweep(store: Store, flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ids = readSweeps(store).map((s) => s.id);
  const n = Number(value);
  const valid = ids.length > 0 ? `sweeps in ${store.path}: ${ids.join(", ")}` : `${store.path} has no sweeps yet`;
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new UsageError(`${flag} must be a sweep id (a positive integer), got "${value}"; ${valid}`);
  if (!ids.includes(n)) throw new UsageError(`${flag} ${value}: no such sweep; ${valid}`);
  return n;
}

/** Everything a report, table or export reads: the runs of one existing sweep (`--sweep`) or of all. */
export function reportDataOf(dbPath: string, sweepOption: string | undefined, title?: string): ReportData {
  const store = openExisting(dbPath);
  try {
    return readReportData(store, { sweep: existingSweep(store, "--sweep", sweepOption), title });
  } finally {
    store.close();
  }
}
