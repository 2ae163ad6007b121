/**
 * The GPU check's throughput figures (run.sh's throughput.jsonl: one line per measurement, PyTorch's from
 * scripts/peers/torch_gpu.py and ours from throughput.ts, each with its round) as ratios: per architecture, our
 * images/s over PyTorch's measured beside it in the same round with the same settings, median and range over rounds.
 *
 *   node dist/scripts/gpu-check/ratio.js [--table] throughput.jsonl
 *
 * Prints one JSON object ({archs: [{arch, ours, pytorch, pytorchDefault, ratio, ratioMin, ratioMax, rounds}]}), or
 * with --table a table for a person.
 */
import { readFileSync } from "node:fs";
import { median } from "../../src/metrics/counts.js";

export interface Measurement { who?: string; peer?: string; arch: string; round?: number; settings?: string; batch?: number; train_img_per_s: number; device?: string; gpu?: string }

export interface ArchRatio {
  arch: string;
  /** Medians over rounds, images/s. */
  ours: number | null;
  pytorch: number | null;
  /** PyTorch with its own defaults (TF32 convolutions, non-deterministic cuDNN allowed), when measured. */
  pytorchDefault: number | null;
  ratio: number | null;
  ratioMin: number | null;
  ratioMax: number | null;
  rounds: number;
}

/** Ratios ours / PyTorch per round, paired by round (a round without both sides is left out). Pure: unit-tested. */
export function ratios(rows: readonly Measurement[]): ArchRatio[] {
  const isPeer = (r: Measurement) => r.peer === "pytorch";
  const archs = [...new Set(rows.map((r) => r.arch))];
  return archs.map((arch) => {
    const mine = rows.filter((r) => r.arch === arch);
    const ours = mine.filter((r) => !isPeer(r));
    const peer = mine.filter((r) => isPeer(r) && r.settings !== "default");
    const peerDefault = mine.filter((r) => isPeer(r) && r.settings === "default");
    const paired = ours.flatMap((o) => {
      const p = peer.find((q) => q.round === o.round);
      return p && p.train_img_per_s > 0 ? [o.train_img_per_s / p.train_img_per_s] : [];
    });
    const med = (xs: number[]) => (xs.length ? median(xs) : null);
    return {
      arch,
      ours: med(ours.map((r) => r.train_img_per_s)),
      pytorch: med(peer.map((r) => r.train_img_per_s)),
      pytorchDefault: med(peerDefault.map((r) => r.train_img_per_s)),
      ratio: med(paired),
      ratioMin: paired.length ? Math.min(...paired) : null,
      ratioMax: paired.length ? Math.max(...paired) : null,
      rounds: paired.length,
    };
  });
}

function main(): void {
  const table = process.argv.includes("--table");
  const file = process.argv.slice(2).find((a) => !a.startsWith("--"));
  if (!file) {
    process.stderr.write("usage: ratio.js [--table] throughput.jsonl\n");
    process.exit(2);
  }
  const rows = readFileSync(file, "utf8").split("\n").filter((l) => l.trim().startsWith("{")).map((l) => JSON.parse(l) as Measurement);
  const out = ratios(rows);
  if (!table) {
    process.stdout.write(`${JSON.stringify({ archs: out })}\n`);
    return;
  }
  const f = (x: number | null, d = 0) => (x == null ? "-" : x.toFixed(d));
  const device = rows.find((r) => r.gpu)?.gpu ?? rows.find((r) => r.device)?.device ?? "";
  process.stdout.write(`training images/s, batch ${rows.find((r) => r.batch)?.batch ?? "?"}, ${device}; ratio = prunebench / PyTorch (same settings), median (range) over rounds\n`);
  process.stdout.write(`${"arch".padEnd(12)}${"prunebench".padStart(12)}${"pytorch".padStart(10)}${"ratio (range)".padStart(22)}${"pytorch default".padStart(17)}\n`);
  for (const r of out) {
    process.stdout.write(`${r.arch.padEnd(12)}${f(r.ours).padStart(12)}${f(r.pytorch).padStart(10)}${`${f(r.ratio, 2)} (${f(r.ratioMin, 2)}-${f(r.ratioMax, 2)})`.padStart(22)}${f(r.pytorchDefault).padStart(17)}\n`);
  }
}

if (process.argv[1]?.endsWith("ratio.js")) main();
