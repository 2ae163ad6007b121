/**
 * What a run measures on its dense model (test accuracy, inference latency) is the same for every run pruned from it:
 * measured once per dense model, by the dense job right after pretraining, and kept beside the cached checkpoint
 * (`<checkpoint>.measures.json`) for every worker, sweep and run that starts from it; a worker also keeps them in
 * memory. Entries are tied to the checkpoint file (size and mtime), so a retrained dense model is measured again;
 * latencies also to the host, backend and threads they were timed on. Losing an entry to a concurrent writer (two
 * workers measuring at once) only costs a measurement again.
 */
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";

const memory = new Map<string, unknown>();

function sidecar(checkpoint: string): string {
  return `${checkpoint}.measures.json`;
}

function identity(checkpoint: string): string {
  const s = statSync(checkpoint, { throwIfNoEntry: false });
  return s ? `${s.size}:${s.mtimeMs}` : "absent";
}

function readAll(checkpoint: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(sidecar(checkpoint), "utf8")) as Record<string, unknown>;
  } catch {
    return {}; // absent, or torn by a crash: measured again
  }
}

/**
 * The measure `what` of the dense model cached at `checkpoint`, under `key` (what it depends on besides the
 * checkpoint); `measure` runs only when neither this worker nor the sidecar has it. `perHost`: a timing, valid only
 * on the host that took it.
 */
export async function denseMeasure<T>(checkpoint: string, what: string, key: unknown, perHost: boolean, measure: () => Promise<T>): Promise<T> {
  const full = JSON.stringify([what, identity(checkpoint), perHost ? hostname() : "", key]);
  const mem = `${checkpoint}\n${full}`;
  if (memory.has(mem)) return memory.get(mem) as T;
  const stored = readAll(checkpoint)[full];
  if (stored !== undefined) {
    remember(mem, stored);
    return stored as T;
  }
  const value = await measure();
  remember(mem, value);
  try {
    // Entries of an earlier checkpoint under the same name (a retrained dense model) are dropped.
    const id = identity(checkpoint);
    const all = Object.fromEntries(Object.entries({ ...readAll(checkpoint), [full]: value }).filter(([k]) => JSON.parse(k)[1] === id));
    const tmp = `${sidecar(checkpoint)}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(all));
    renameSync(tmp, sidecar(checkpoint));
  } catch {
    // A read-only or full cache: this worker keeps the value in memory, others measure it themselves.
    rmSync(`${sidecar(checkpoint)}.tmp-${process.pid}`, { force: true });
  }
  return value;
}

function remember(key: string, value: unknown): void {
  if (memory.size > 256) memory.clear();
  memory.set(key, value);
}

/** Forget what this process remembers (tests: a second worker, which only has the sidecar). */
export function forgetDenseMeasures(): void {
  memory.clear();
}
