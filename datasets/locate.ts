/**
 * Finding a dataset's files, and downloading them when they are nowhere to be found.
 *
 * Search order (first folder holding every required file wins):
 *   1. options.dataDir (--data-dir), then $BENCH_DATA_DIR: each as `<dir>/<dataset>/` and then `<dir>/` itself;
 *   2. the per-user cache `$XDG_CACHE_HOME/prunebench/datasets/<dataset>` (default `~/.cache/...`);
 *   3. a system folder where a distribution package installs the files (Debian's dataset-fashion-mnist).
 * If none has the files and downloading is allowed (options.download !== false and BENCH_OFFLINE is not set), the
 * missing files are downloaded from their canonical URLs into the cache, checked against published checksums, and
 * moved into place atomically (temporary file + rename). Otherwise a DatasetError says where it looked and how to get
 * the files.
 */
import { createHash, randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { userCacheDir } from "../src/core/locations.js";
import { DatasetError, DatasetNotFoundError, type LoadOptions } from "./types.js";

export type HashAlgorithm = "sha256" | "md5";

export interface Checksum {
  algorithm: HashAlgorithm;
  hex: string;
  /** Where the value was published, for the record. */
  source?: string;
}

export interface RemoteFile {
  /** File name in the cache folder (also the name a user should save it as). */
  name: string;
  /** Canonical URL first, then mirrors; tried in order. */
  urls: string[];
  /** All must match; a download that fails any is rejected. At least one is required. */
  checksums: Checksum[];
  /** Expected size in bytes, when known. */
  size?: number;
}

export interface FileRequirement {
  /** What this is, for messages ("training images"). */
  label: string;
  /** Accepted layouts relative to the dataset folder, in preference order; every path of one alternative must exist. */
  alternatives: string[][];
  /** What to download when this requirement is unmet; saved under its name (the first alternative's single path). */
  download?: RemoteFile;
}

export interface SystemDir {
  dir: string;
  /** How to get the files there, e.g. "sudo apt-get install -y dataset-fashion-mnist". */
  install: string;
}

export interface DatasetSource {
  /** Dataset name: the subfolder name under a data dir and in the cache. */
  name: string;
  title: string;
  requirements: FileRequirement[];
  systemDirs?: SystemDir[];
  homepage?: string;
  /** Other accepted layouts, in words, for messages ("or unpacked with gunzip"). */
  layoutHint?: string;
}

export interface SearchRoots {
  /** Searched first, each as `<dir>/<name>` then `<dir>`. */
  dataDirs: Array<{ dir: string; origin: string }>;
  /** The cache base; the dataset lives in `<cacheDir>/<name>`. */
  cacheDir: string;
  systemDirs: SystemDir[];
}

/** Opens a URL and returns the body of a successful response; throws otherwise. */
export type Fetcher = (url: string) => Promise<AsyncIterable<Uint8Array>>;

export interface LocateOptions extends LoadOptions {
  /** Environment to read BENCH_DATA_DIR, BENCH_OFFLINE, XDG_CACHE_HOME and HOME from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Replace parts of the search path (tests). */
  roots?: { dataDirs?: string[]; cacheDir?: string; systemDirs?: Array<string | SystemDir> };
  /** Replace the HTTP(S) client (tests). */
  fetcher?: Fetcher;
  /** Progress messages (default: stderr). */
  log?: (message: string) => void;
}

export type LocatedOrigin = "data-dir" | "cache" | "system" | "download";

export interface Located {
  /** The folder the files were found in. */
  dir: string;
  /** Per requirement: index of the alternative found, and its absolute paths. */
  chosen: Array<{ alternative: number; paths: string[] }>;
  origin: LocatedOrigin;
}



export function isOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.BENCH_OFFLINE ?? "").trim().toLowerCase();
  return v !== "" && v !== "0" && v !== "false" && v !== "no";
}

export function searchRoots(source: DatasetSource, options: LocateOptions = {}): SearchRoots {
  const env = options.env ?? process.env;
  let dataDirs: SearchRoots["dataDirs"];
  if (options.roots?.dataDirs) {
    dataDirs = options.roots.dataDirs.map((dir) => ({ dir: resolve(dir), origin: "data dir" }));
  } else {
    dataDirs = [];
    if (options.dataDir) dataDirs.push({ dir: resolve(options.dataDir), origin: "--data-dir" });
    const envDir = env.BENCH_DATA_DIR;
    if (envDir && envDir.trim() !== "" && !dataDirs.some((d) => d.dir === resolve(envDir))) {
      dataDirs.push({ dir: resolve(envDir), origin: "BENCH_DATA_DIR" });
    }
  }
  const cacheDir = resolve(options.roots?.cacheDir ?? join(userCacheDir(env), "datasets"));
  const systemDirs = options.roots?.systemDirs
    ? options.roots.systemDirs.map((d) => (typeof d === "string" ? { dir: d, install: "" } : d))
    : (source.systemDirs ?? []);
  return { dataDirs, cacheDir, systemDirs };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

interface Probe {
  dir: string;
  origin: string;
  chosen?: Located["chosen"];
  /** Human-readable result when the folder does not qualify. */
  note?: string;
}

/** Checks one folder: does it satisfy every requirement? */
export function probeDir(source: DatasetSource, dir: string): { chosen?: Located["chosen"]; missing: string[]; exists: boolean } {
  if (!isDir(dir)) return { missing: [], exists: false };
  const chosen: Located["chosen"] = [];
  const missing: string[] = [];
  for (const req of source.requirements) {
    const idx = req.alternatives.findIndex((alt) => alt.every((p) => isFile(join(dir, p))));
    if (idx < 0) missing.push(req.alternatives.map((alt) => alt.join(" + ")).join(" or "));
    else chosen.push({ alternative: idx, paths: req.alternatives[idx].map((p) => join(dir, p)) });
  }
  return missing.length === 0 ? { chosen, missing, exists: true } : { missing, exists: true };
}

function candidates(source: DatasetSource, roots: SearchRoots): Array<{ dir: string; origin: string; kind: LocatedOrigin }> {
  const out: Array<{ dir: string; origin: string; kind: LocatedOrigin }> = [];
  for (const d of roots.dataDirs) {
    out.push({ dir: join(d.dir, source.name), origin: d.origin, kind: "data-dir" });
    out.push({ dir: d.dir, origin: d.origin, kind: "data-dir" });
  }
  out.push({ dir: join(roots.cacheDir, source.name), origin: "per-user cache", kind: "cache" });
  for (const s of roots.systemDirs) out.push({ dir: resolve(s.dir), origin: "system package folder", kind: "system" });
  return out;
}

/** Finds (or downloads) the dataset's files. */
export async function locateDataset(source: DatasetSource, options: LocateOptions = {}): Promise<Located> {
  const env = options.env ?? process.env;
  const roots = searchRoots(source, options);
  const probes: Probe[] = [];
  for (const c of candidates(source, roots)) {
    const p = probeDir(source, c.dir);
    if (p.chosen) return { dir: c.dir, chosen: p.chosen, origin: c.kind };
    probes.push({
      dir: c.dir,
      origin: c.origin,
      note: !p.exists ? "no such folder" : `missing ${p.missing.join("; ")}`,
    });
  }

  const offline = isOffline(env);
  const allowed = options.download !== false && !offline;
  let downloadNote: string;
  if (allowed) {
    const target = join(roots.cacheDir, source.name);
    const failures: string[] = [];
    const fetcher = options.fetcher ?? defaultFetcher;
    const log = options.log ?? ((m: string) => process.stderr.write(`${m}\n`));
    for (const req of source.requirements) {
      if (req.alternatives.some((alt) => alt.every((p) => isFile(join(target, p))))) continue;
      if (!req.download) {
        failures.push(`${req.label}: no download source known`);
        continue;
      }
      try {
        await downloadFile(req.download, target, fetcher, log);
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err));
        break;
      }
    }
    const after = probeDir(source, target);
    if (after.chosen && failures.length === 0) return { dir: target, chosen: after.chosen, origin: "download" };
    downloadNote = `Download into ${target} failed:\n${failures.map((f) => `    ${f.replace(/\n/g, "\n    ")}`).join("\n")}`;
  } else {
    downloadNote = offline
      ? `Download not attempted: BENCH_OFFLINE=${env.BENCH_OFFLINE} (unset it to let prunebench download the files).`
      : "Download not attempted: downloading is disabled for this run.";
  }
  throw new DatasetNotFoundError(notFoundMessage(source, roots, probes, downloadNote));
}

function notFoundMessage(source: DatasetSource, roots: SearchRoots, probes: Probe[], downloadNote: string): string {
  const lines: string[] = [];
  lines.push(`${source.title} (dataset "${source.name}"): files not found.`);
  lines.push(
    `Needed in one folder: ${source.requirements.map((r) => r.alternatives[0].join(" + ")).join(", ")}` +
      (source.layoutHint ? ` (${source.layoutHint}).` : "."),
  );
  lines.push("Looked in, in this order:");
  probes.forEach((p, i) => lines.push(`  ${i + 1}. ${p.dir}  [${p.origin}]: ${p.note}`));
  if (roots.dataDirs.length === 0) lines.push("  (no --data-dir given and BENCH_DATA_DIR not set)");
  lines.push(downloadNote);
  lines.push("How to get the files:");
  let or = "";
  for (const s of roots.systemDirs) {
    if (!s.install) continue;
    lines.push(`  - ${or}${s.install}   (installs the files into ${s.dir})`);
    or = "or ";
  }
  const downloads = source.requirements.filter((r) => r.download).map((r) => r.download as RemoteFile);
  if (downloads.length > 0) {
    lines.push(`  - ${or}download ${downloads.length === 1 ? "this file" : "these files"}:`);
    or = "or ";
    for (const d of downloads) lines.push(`      ${d.urls[0]}`);
    lines.push(`    into ${join(roots.cacheDir, source.name)}/`);
  }
  lines.push(
    `  - ${or}put them in a folder of your choice and pass --data-dir <folder> (or set BENCH_DATA_DIR=<folder>); ` +
      `the folder may hold the files directly or in a ${source.name}/ subfolder.`,
  );
  if (source.homepage) lines.push(`Dataset home page: ${source.homepage}`);
  return lines.join("\n");
}

function formatBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`;
}

/**
 * Downloads `remote` into `dir/<remote.name>`: tries each URL in turn, streams into a temporary file in the same folder
 * while hashing, checks the size and every checksum, and renames into place only when all match. Nothing is left
 * behind on failure. Returns the final path.
 */
export async function downloadFile(
  remote: RemoteFile,
  dir: string,
  fetcher: Fetcher = defaultFetcher,
  log: (message: string) => void = () => {},
): Promise<string> {
  if (remote.checksums.length === 0) throw new DatasetError(`${remote.name}: refusing to download without a checksum`);
  await mkdir(dir, { recursive: true });
  const dest = join(dir, remote.name);
  const errors: string[] = [];
  for (const url of remote.urls) {
    const tmp = join(dir, `.${basename(remote.name)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    log(`prunebench: downloading ${url}${remote.size ? ` (${formatBytes(remote.size)})` : ""} -> ${dest}`);
    try {
      const body = await fetcher(url);
      const hashes = new Map<HashAlgorithm, ReturnType<typeof createHash>>();
      for (const c of remote.checksums) if (!hashes.has(c.algorithm)) hashes.set(c.algorithm, createHash(c.algorithm));
      let size = 0;
      const fh = await open(tmp, "wx");
      try {
        for await (const chunk of body) {
          const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
          size += bytes.length;
          if (remote.size !== undefined && size > remote.size) {
            throw new DatasetError(`${url}: more than the expected ${remote.size} bytes`);
          }
          for (const h of hashes.values()) h.update(bytes);
          await fh.write(bytes);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (remote.size !== undefined && size !== remote.size) {
        throw new DatasetError(`${url}: size mismatch: expected ${remote.size} bytes, got ${size}`);
      }
      const digests = new Map<HashAlgorithm, string>();
      for (const [alg, h] of hashes) digests.set(alg, h.digest("hex"));
      for (const c of remote.checksums) {
        const got = digests.get(c.algorithm);
        if (got !== c.hex.toLowerCase()) {
          throw new DatasetError(
            `${url}: checksum mismatch: expected ${c.algorithm} ${c.hex.toLowerCase()}, got ${got} (${size} bytes); download rejected`,
          );
        }
      }
      await rename(tmp, dest);
      log(`prunebench: saved ${dest} (${formatBytes(size)}, ${remote.checksums.map((c) => c.algorithm).join("+")} verified)`);
      return dest;
    } catch (err) {
      await unlink(tmp).catch(() => {});
      errors.push(err instanceof Error ? err.message : String(err));
    }
  }
  throw new DatasetError(`could not download ${remote.name}:\n  ${errors.join("\n  ")}`);
}

/** A download that neither answers nor sends a byte for this long is abandoned (a whole download may take longer). */
const STALL_MS = 60_000;

/**
 * GET with the platform's fetch (redirects followed), refusing anything but 200. An idle timer, restarted by every
 * chunk, aborts a server that stops answering: AbortSignal.timeout alone would also cut a slow but healthy download.
 */
export const defaultFetcher: Fetcher = async (url) => {
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(new Error(`${url}: no response in ${STALL_MS / 1000} s`)), STALL_MS);
  let res: Response;
  try {
    res = await fetch(url, { headers: { "user-agent": "prunebench" }, redirect: "follow", signal: controller.signal });
  } catch (e) {
    clearTimeout(timer);
    const cause = (e as { cause?: Error }).cause;
    throw new Error(`${url}: ${cause?.message ?? (e as Error).message}`);
  }
  if (res.status !== 200 || !res.body) {
    clearTimeout(timer);
    await res.body?.cancel();
    throw new Error(`${res.url || url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
  }
  const body = res.body;
  return (async function* () {
    try {
      for await (const chunk of body) {
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(new Error(`${url}: no data for ${STALL_MS / 1000} s`)), STALL_MS);
        yield chunk;
      }
    } finally {
      clearTimeout(timer);
    }
  })();
};
