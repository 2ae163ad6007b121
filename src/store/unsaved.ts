/**
 * Results the database could not take because its disk was full. A run can take hours; re-running it because a disk
 * filled up for a minute would waste them, so its result (metrics, layers, epochs, artifact records: a few KB) is
 * appended as one JSON line to a file in the OS temp folder, which is usually another file system than the results,
 * and the next `bench sweep` on the same database saves it there, without running it again.
 */
import { createHash } from "node:crypto";
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import type { JobResult } from "../core/types.js";
import type { Store } from "./store.js";

interface KeptLine {
  database: string;
  keptAt: string;
  result: JobResult;
}

/** One file per database, named after its real path, so that the next sweep of that database finds it. */
export function unsavedResultsFile(dbPath: string): string {
  let real = resolve(dbPath);
  try {
    real = realpathSync(dbPath);
  } catch {
    // a database that vanished keeps the name its path gives
  }
  const id = createHash("sha256").update(real).digest("hex").slice(0, 16);
  const dir = process.env.BENCH_UNSAVED_DIR ?? join(tmpdir(), "prunebench-unsaved");
  return join(dir, `${basename(real)}-${id}.jsonl`);
}

/** Append a result, flushed to disk; returns the file, or null when it could not be written either. */
export function keepUnsavedResult(dbPath: string, result: JobResult): string | null {
  const file = unsavedResultsFile(dbPath);
  try {
    mkdirSync(join(file, ".."), { recursive: true });
    const line: KeptLine = { database: resolve(dbPath), keptAt: new Date().toISOString(), result };
    appendFileSync(file, JSON.stringify(line) + "\n");
    const fd = openSync(file, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return file;
  } catch {
    return null;
  }
}

/**
 * Save the results kept for this database (after the sweep's checks passed). A result whose run was finished or
 * re-run since is dropped; one whose run a live sweep holds stays for later. A torn last line (the process died
 * while appending) is dropped: that run was never marked finished and simply runs again.
 */
export function importUnsavedResults(store: Store, dbPath: string): { imported: string[]; file: string } {
  const file = unsavedResultsFile(dbPath);
  if (!existsSync(file)) return { imported: [], file };
  const keep: string[] = [];
  const imported: string[] = [];
  for (const text of readFileSync(file, "utf8").split("\n")) {
    if (!text.trim()) continue;
    let line: KeptLine;
    try {
      line = JSON.parse(text);
    } catch {
      continue;
    }
    const outcome = store.saveKeptResult(line.result);
    if (outcome === "saved") imported.push(line.result.key);
    else if (outcome === "held") keep.push(text);
  }
  if (keep.length === 0) {
    rmSync(file, { force: true });
  } else {
    writeFileSync(`${file}.tmp`, keep.join("\n") + "\n");
    renameSync(`${file}.tmp`, file);
  }
  return { imported, file };
}
