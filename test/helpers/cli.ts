/** Run the real `bench` command line in a child process. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH = fileURLToPath(new URL("../../../bin/bench.js", import.meta.url));

export function bench(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BENCH, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 600_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(prefix = "prunebench-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A grid small enough for tests: LeNet-300-100 on a few hundred images, one epoch each. */
/**
 * A tiny grid (2 methods, mlp, fashion-mnist-mini, 2 sparsities, 1 seed) in `dir`; `set` replaces whole top-level
 * lines by key (`targets` stands for the targets line, e.g. "macs_reductions: [0.5]"), `extra` is appended.
 */
export function writeTinyGrid(dir: string, extra = "", set: Partial<Record<"methods" | "archs" | "targets" | "pretrain" | "finetune" | "data", string>> = {}): string {
  const path = join(dir, "tiny.yaml");
  const line = (key: string, value: string) => (key === "targets" ? set.targets ?? value : `${key}: ${(set as Record<string, string>)[key] ?? value}`);
  writeFileSync(path, `name: tiny
${line("methods", "[random, global-magnitude]")}
${line("archs", "[mlp]")}
datasets: [fashion-mnist-mini]
${line("targets", "sparsities: [0.5, 0.9]")}
seeds: [0]
${line("pretrain", "{epochs: 2, batch_size: 64, lr: 0.05}")}
${line("finetune", "{epochs: 1, batch_size: 64, lr: 0.01}")}
${line("data", "{train_subset: 600, test_subset: 400}")}
eval: {latency_batch: 32, latency_repeats: 2}
${extra}`);
  return path;
}
