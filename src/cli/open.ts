import { existsSync } from "node:fs";
import { Store } from "../store/store.js";
import { UsageError } from "./errors.js";

/**
 * Open an existing results database for reading. Commands other than sweep never create, upgrade or write one: a
 * copy on a read-only disk, or one a running sweep is writing, must read the same either way.
 */
export function openExisting(path: string): Store {
  if (!existsSync(path)) throw new UsageError(`results database ${path} does not exist (run \`bench sweep <grid> --db ${path}\` first, or pass --db)`);
  return new Store(path, { readonly: true });
}
