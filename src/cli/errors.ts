/** One place that maps error types to exit codes and messages: expected user errors vs internal bugs. */
import { DatasetError } from "../../datasets/types.js";
import { GridError } from "../grid/types.js";
import { StoreError } from "../store/store.js";
import { CheckpointError } from "../run/checkpoint.js";

/**
 * 74 is EX_IOERR (sysexits.h): the disk under the results database filled up. Not bad input (the same command
 * works once there is space) and not a bug; scripts can tell it apart and free space before retrying.
 * 4: `bench merge` found a run key with different results on two sides and wrote nothing (a choice is needed, not a fix).
 */
export const EXIT = { ok: 0, runsFailed: 3, badInput: 2, internal: 70, diskFull: 74, interrupted: 130, mergeConflict: 4 } as const;

export class UsageError extends Error {
  override name = "UsageError";
}

const expected = (e: unknown): boolean =>
  e instanceof UsageError || e instanceof GridError || e instanceof DatasetError || e instanceof StoreError || e instanceof CheckpointError ||
  (e instanceof Error && ["GridErrors", "SweepInputError", "BackendError", "PathError", "QueueError", "ExportError", "ImportError", "PlotError"].includes(e.name));

export function reportError(e: unknown): number {
  if (e instanceof StoreError && e.fault === "full") {
    process.stderr.write(`error: ${e.message}\n`);
    return EXIT.diskFull;
  }
  if (expected(e)) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return EXIT.badInput;
  }
  process.stderr.write(`internal error (a bug in prunebench; please report it with this trace):\n${(e as Error)?.stack ?? String(e)}\n`);
  return EXIT.internal;
}
