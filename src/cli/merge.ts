import { existsSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { checkWritableFile, isSqlite, PathError, sameFile } from "../io/paths.js";
import { checkMergeTarget, mergeInto, type ConflictPolicy, type MergeSummary } from "../store/merge.js";
import { Store } from "../store/store.js";
import { EXIT, UsageError } from "./errors.js";
import { openExisting } from "./open.js";

export default function merge(inputs: string[], o: { into: string; onConflict: ConflictPolicy; json?: boolean }): number {
  const into = o.into;
  if (into.trim() === "") throw new UsageError("--into is empty; give a file name such as merged.db");
  for (const input of inputs) {
    if (resolve(input) === resolve(into) || sameFile(input, into)) {
      throw new PathError(`--into ${into} is also an input (${input}): merge into a new file, or list only the other databases as inputs`);
    }
  }
  const existed = existsSync(into);
  if (existed) {
    // Never write into a file that is not a results database (the same refusal as `bench report -o results.db` the other way round).
    checkWritableFile(into, "--into");
    if (statSync(into).size > 0) {
      if (!isSqlite(into)) throw new PathError(`--into ${into} already exists and is not a SQLite database: refusing to overwrite it; give another name`);
      checkMergeTarget(into);
    }
  } else {
    checkWritableFile(into, "--into");
  }

  // Inputs are opened (and checked) before the target is created: a bad input leaves no empty file behind.
  const opened: Array<{ path: string; store: Store }> = [];
  let target: Store | undefined;
  let summary: MergeSummary;
  try {
    for (const path of inputs) opened.push({ path, store: openExisting(path) });
    target = new Store(into);
    target.checkWritable();
    summary = mergeInto(target, opened, o.onConflict);
  } finally {
    target?.close();
    for (const i of opened) i.store.close();
  }
  if (!summary.written && !existed) {
    for (const suffix of ["", "-wal", "-shm"]) rmSync(`${into}${suffix}`, { force: true });
  }

  if (o.json) {
    process.stdout.write(`${JSON.stringify({ into, onConflict: o.onConflict, ...summary }, null, 2)}\n`);
  } else {
    for (const i of summary.inputs) {
      process.stdout.write(`${i.path}: ${i.runs} runs: ${i.added} added, ${i.unchanged} unchanged, ${i.conflicts} differing` +
        `${i.replaced ? ` (${i.replaced} replaced)` : ""}; ${i.sweepsAdded} sweep(s) added\n`);
    }
  }
  for (const table of summary.notCarried) process.stderr.write(`warning: not carried (a table this prunebench does not know): ${table}\n`);
  if (summary.conflicts.length > 0) {
    const verdict = o.onConflict === "fail" ? "nothing was written" : o.onConflict === "first" ? "kept the run merged first" : "took the later input's run";
    process.stderr.write(`${summary.conflicts.length} run key(s) with different results (${verdict}):\n`);
    for (const c of summary.conflicts) process.stderr.write(`  ${c.key} (${c.input}): ${c.fields.join("; ")}\n`);
    if (o.onConflict === "fail") {
      process.stderr.write(`choose which side wins with --on-conflict first (the run already in ${into} or the earlier input) or --on-conflict last (the later input)\n`);
      return EXIT.mergeConflict;
    }
  }
  if (summary.written && !o.json) process.stderr.write(`merged ${inputs.length} database(s) into ${into}\n`);
  return EXIT.ok;
}
