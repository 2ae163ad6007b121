/**
 * Paths a command is about to write, checked before anything is created, and outputs written so that a failed or
 * mistaken write never destroys what was there: an output never replaces a results database or a file of another
 * kind (unless forced), and it lands through a temporary file renamed into place.
 */
import { accessSync, closeSync, constants, openSync, readSync, renameSync, rmSync, statfsSync, statSync, writeFileSync, type Stats } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";

export class PathError extends Error {
  override name = "PathError";
}

/**
 * Kernel pseudo file systems (statfs f_type magic numbers). `mkdir -p` under /proc waits forever and files there are
 * not files: nothing of ours may be written on them.
 */
const PSEUDO_FILE_SYSTEMS = new Map<number, string>([
  [0x9fa0, "proc"], [0x62656572, "sysfs"], [0x27e0eb, "cgroup"], [0x63677270, "cgroup2"], [0x64626720, "debugfs"],
  [0x73636673, "securityfs"], [0x1cd1, "devpts"], [0x74726163, "tracefs"], [0x6165676c, "pstore"], [0xcafe4a11, "bpf"],
  [0x62656570, "configfs"], [0x65735543, "fusectl"], [0x42494e4d, "binfmt_misc"],
]);

/** stat, or undefined when nothing is there (also when a parent is a file: ENOTDIR). */
export function statIfAny(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw e;
  }
}

/** The deepest existing ancestor of `path` (itself included), with its stat. */
function nearestExisting(path: string): { path: string; stat: Stats } {
  let p = resolve(path);
  for (;;) {
    const stat = statIfAny(p);
    if (stat) return { path: p, stat };
    const up = dirname(p);
    if (up === p) throw new PathError(`${path}: no part of this path exists`);
    p = up;
  }
}

function pseudoFileSystem(path: string): string | null {
  try {
    return PSEUDO_FILE_SYSTEMS.get(statfsSync(path).type) ?? null;
  } catch {
    return null;
  }
}

/**
 * `dir` must be a folder (or creatable under one) on a real, writable file system. `what` names the option, e.g.
 * "--cache-dir", for the message.
 */
export function checkWritableFolder(dir: string, what: string): void {
  if (dir.trim() === "") throw new PathError(`${what} is empty; give a folder`);
  const { path, stat } = nearestExisting(dir);
  if (path === resolve(dir) && !stat.isDirectory()) throw new PathError(`${what} ${dir} exists and is not a folder`);
  if (!stat.isDirectory()) throw new PathError(`${what} ${dir}: ${path} is not a folder`);
  const pseudo = pseudoFileSystem(path);
  if (pseudo) throw new PathError(`${what} ${dir} is on the kernel's ${pseudo} pseudo file system; give a folder on a disk`);
  try {
    accessSync(path, constants.W_OK);
  } catch {
    throw new PathError(`${what} ${dir} cannot be written: ${path} is not writable (is it, or its file system, read-only?)`);
  }
}

/** A file a command will create or update in place (the results database): a regular file, in a writable folder. */
export function checkWritableFile(file: string, what: string): void {
  if (file.trim() === "") throw new PathError(`${what} is empty; give a file name such as results.db`);
  const stat = statIfAny(file);
  if (stat && !stat.isFile()) throw new PathError(`${what} ${file} exists and is not a regular file${stat.isDirectory() ? " (it is a folder)" : ""}`);
  checkWritableFolder(dirname(resolve(file)), `${what} ${file}: its folder`);
}

export type OutputKind = "html" | "csv" | "json" | "jsonl" | "markdown" | "latex" | "svg" | "png" | "pdf" | "sbatch";

/** Extensions a user may reuse for a kind of output; an existing file with another one is someone else's. */
const OUTPUT_EXTENSIONS: Record<OutputKind, string[]> = {
  html: [".html", ".htm"],
  csv: [".csv", ".tsv", ".txt"],
  json: [".json"],
  jsonl: [".jsonl", ".ndjson", ".json"],
  markdown: [".md", ".markdown", ".txt"],
  latex: [".tex", ".txt"],
  svg: [".svg"],
  png: [".png"],
  pdf: [".pdf"],
  sbatch: [".sbatch", ".slurm", ".sh"],
};

/** Binary outputs recognised by their first bytes, so a previous figure may be replaced and nothing else. */
const MAGIC: Partial<Record<OutputKind, Buffer>> = { png: Buffer.from([0x89, 0x50, 0x4e, 0x47]), pdf: Buffer.from("%PDF-", "latin1") };

const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");

function head(path: string, bytes = 4096): Buffer {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

/** Whether the file at `path` starts like a SQLite database. */
export function isSqlite(path: string): boolean {
  return head(path, SQLITE_MAGIC.length).equals(SQLITE_MAGIC);
}

/** Why the existing file at `path` is not a previous output of this kind, or null when replacing it is fine. */
function foreignReason(path: string, kind: OutputKind): string | null {
  const start = head(path);
  if (start.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC)) return "it is a SQLite database";
  const magic = MAGIC[kind];
  if (magic) return start.subarray(0, magic.length).equals(magic) ? null : `it is not a ${kind.toUpperCase()} file`;
  if (start.includes(0)) return "it is a binary file";
  if (kind === "html") {
    return /^\s*<!doctype html/i.test(start.toString("utf8")) ? null : "it is not an HTML file";
  }
  const ext = extname(path).toLowerCase();
  return OUTPUT_EXTENSIONS[kind].includes(ext) ? null : `its extension ${ext || "(none)"} is not one of ${kind}'s (${OUTPUT_EXTENSIONS[kind].join(", ")})`;
}

/** Whether `a` and `b` are the same existing file (same device and inode). */
export function sameFile(a: string, b: string): boolean {
  const sa = statIfAny(a);
  const sb = statIfAny(b);
  return Boolean(sa && sb && sa.dev === sb.dev && sa.ino === sb.ino);
}

export interface OutputOptions {
  kind: OutputKind;
  /** Replace an existing file even when it is not a previous output of this kind. */
  force?: boolean;
  /** Files this command reads (its databases): never replaced, even with force. */
  inputs?: readonly string[];
  /** The option naming the output, for messages ("-o"). */
  flag?: string;
}

/** Refuse, before any work, an output path that cannot or must not be written. */
export function checkOutputPath(out: string, options: OutputOptions): void {
  const flag = options.flag ?? "-o";
  if (out.trim() === "") throw new PathError(`${flag} is empty; give a file name`);
  const stat = statIfAny(out);
  if (stat) {
    if (stat.isDirectory()) throw new PathError(`${flag} ${out} is a folder; give a file name, e.g. ${join(out, `report.${options.kind === "latex" ? "tex" : options.kind === "markdown" ? "md" : options.kind}`)}`);
    if (!stat.isFile()) throw new PathError(`${flag} ${out} exists and is not a regular file (a device or pipe); write to a file, or leave out ${flag} to print to stdout`);
    for (const input of options.inputs ?? []) {
      if (sameFile(out, input)) throw new PathError(`${flag} ${out} is the results database this command reads; give the output another name`);
    }
    const foreign = foreignReason(out, options.kind);
    if (foreign && !options.force) {
      throw new PathError(`${flag} ${out} already exists and ${foreign}: refusing to overwrite it; give another name, or pass --force to replace it`);
    }
  }
  const dir = dirname(resolve(out));
  const dirStat = statIfAny(dir);
  if (!dirStat) throw new PathError(`${flag} ${out}: folder ${dirname(out)} does not exist; create it first`);
  checkWritableFolder(dir, `${flag} ${out}: its folder`);
}

/** Check `out`, then write it through a temporary file in the same folder and rename it into place. */
export function writeOutput(out: string, content: string | Uint8Array, options: OutputOptions): void {
  checkOutputPath(out, options);
  const tmp = join(dirname(resolve(out)), `.${basename(out)}.tmp-${process.pid}`);
  try {
    writeFileSync(tmp, content);
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOSPC" ? "no space left on the device" : err.message;
    throw new PathError(`cannot write ${out}: ${why}`);
  }
}
