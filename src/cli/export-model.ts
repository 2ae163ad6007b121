import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { readArtifacts, readRuns, type ArtifactRow } from "../../reports/read.js";
import { isLayersModelArch, loadLayersModelArch } from "../archs/index.js";
import { initBackend } from "../backend/index.js";
import { exportRun, fileSha256 } from "../export/export-run.js";
import { KEY_HEX_CHARS } from "../plan/runKey.js";
import { UsageError } from "./errors.js";
import { openExisting } from "./open.js";

/** `bench export-model <run> -o DIR`: see src/export/export-run.ts for what the folder holds. */
export default async function exportModel(run: string, o: { db: string; out: string; force?: boolean; dataDir?: string; layersModel?: string }): Promise<number> {
  if (!new RegExp(`^[0-9a-f]{1,${KEY_HEX_CHARS}}$`).test(run)) {
    throw new UsageError(`"${run.length > 40 ? `${run.slice(0, 40)}…` : run}" is not a run key: keys are ${KEY_HEX_CHARS} hex characters (0-9, a-f; see \`bench ls\`); give a key or a prefix of one`);
  }
  const store = openExisting(o.db);
  let row: ReturnType<typeof readRuns>[number];
  let artifacts: ArtifactRow[];
  try {
    const matches = readRuns(store, { keyPrefix: run });
    if (matches.length !== 1) {
      throw new UsageError(matches.length === 0 ? `no run with key (prefix) "${run}" in ${o.db}` : `"${run}" matches ${matches.length} runs: ${matches.slice(0, 5).map((r) => r.key).join(", ")}${matches.length > 5 ? ", …" : ""}; give more of the key`);
    }
    row = matches[0];
    artifacts = readArtifacts(store, row.key);
  } finally {
    store.close();
  }
  const weights = artifacts.find((a) => a.kind === "pruned-weights");
  const masks = artifacts.find((a) => a.kind === "masks");
  if (!weights || !masks) {
    throw new UsageError(`run ${row.key} (${row.arch} / ${row.methodLabel}, status ${row.status}) has no saved ${!weights ? "weights" : "masks"} in ${o.db}: ` +
      `only runs that finished (status done) save their pruned weights and masks; see \`bench show ${row.key.slice(0, 8)} --db ${o.db}\``);
  }
  await initBackend("cpu");
  // An imported architecture is known by its files' hash: the files it came from are read again, and must be the same.
  if (isLayersModelArch(row.arch)) {
    if (!o.layersModel) throw new UsageError(`run ${row.key} is on ${row.arch}, imported from a tfjs LayersModel: give its model.json with --layers-model`);
    await loadLayersModelArch(resolve(o.layersModel), row.arch);
  }
  const summary = await exportRun({
    key: row.key, method: row.method, methodLabel: row.methodLabel, arch: row.arch, dataset: row.dataset, targetKind: row.targetKind,
    targetValue: row.targetValue, seed: row.seed, status: row.status, metrics: row.metrics, config: row.config, database: o.db, backend: row.backend,
    weightsPath: located(weights, o.db, row.key), masksPath: located(masks, o.db, row.key),
  }, { out: o.out, force: o.force, inputs: [o.db], dataDir: o.dataDir });
  const top1 = summary.storedTop1 === null ? "" : `, stored test top-1 ${(100 * summary.storedTop1).toFixed(2)} %`;
  process.stderr.write(`wrote ${summary.out}: ${summary.form} ${row.arch} (${summary.trainableParams} trainable parameters${top1}): ${summary.files.map((f) => basename(f)).join(", ")}\n`);
  return 0;
}

/**
 * Where an artifact is now: the path the run recorded, else the default artifacts folder beside the database (a
 * database moved with its artifacts, or a relative path recorded from another working directory). It must be the
 * file the run wrote: its sha256 is checked.
 */
export function located(a: ArtifactRow, db: string, key: string): string {
  const beside = join(dirname(db), `${basename(db).replace(/\.[^.]+$/, "")}-artifacts`, key, basename(a.path));
  const path = [a.path, beside].find((p) => existsSync(p));
  if (!path) throw new UsageError(`run ${key}: its ${a.kind} file ${a.path} is missing (also looked for ${beside}); was the artifacts folder moved or deleted?`);
  const sha = fileSha256(path);
  if (sha !== a.sha256) throw new UsageError(`run ${key}: ${path} is not the ${a.kind} file the run saved (sha256 ${sha.slice(0, 16)}…, recorded ${a.sha256.slice(0, 16)}…)`);
  return path;
}
