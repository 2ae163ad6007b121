/**
 * Where the host's time goes in one process's training step: a V8 CPU profile (node --cpu-prof) summarised as the
 * share of sampled time per part of the stack — the libtorch addon's calls (the time inside them: on a GPU, launching
 * kernels; on the CPU, computing them), the torch backend's own JavaScript, tfjs' engine (dispatch, tape, gradients),
 * the training loop and model code, garbage collection, loading modules and addons (start-up), and the rest — plus the
 * functions with the most self time.
 * The GPU check's "profile" step runs it on a throughput.ts profile: on a GPU one process's step is bound by the host
 * (README's GPU section), and this says by what.
 *
 *   node dist/scripts/gpu-check/profile-summary.js PROFILE.cpuprofile [--top 15] [--json]
 */
import { readFileSync } from "node:fs";

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
export interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/** The parts a sample is counted in: the first of these (from the top of the stack down) that a frame belongs to. */
export type Part = "addon" | "torch backend" | "tfjs engine" | "training loop and model" | "gc" | "start-up" | "other";

/** Which part a frame is, by its function and file (dist/ paths, node_modules/@tensorflow, V8's pseudo-frames). */
export function partOf(f: CallFrame): Part | null {
  if (f.functionName === "(garbage collector)") return "gc";
  // Loading modules and the addons (once per process; a short profile is mostly this).
  if (f.functionName === "dlopen" || /^node:internal\/modules\//.test(f.url) || /cjs-module-lexer/.test(f.url)) return "start-up";
  if (/backend\/torch\/index\.js$/.test(f.url) && /^(call|callN|release|upload|download|shape)$/.test(f.functionName)) return "addon";
  if (/backend\/torch\//.test(f.url)) return "torch backend";
  if (/@tensorflow\//.test(f.url)) return "tfjs engine";
  if (/dist\/src\/(train|archs|prune|metrics)\//.test(f.url)) return "training loop and model";
  return null;
}

export interface Summary {
  totalMs: number;
  /** Sampled time per part, ms (each sample counted once, in the part of its innermost classified frame). */
  parts: Record<Part, number>;
  /** Functions by self time, ms. */
  top: Array<{ fn: string; ms: number }>;
}

/** Pure: unit-tested on a hand-made profile. */
export function summarise(p: CpuProfile, top = 15): Summary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const parts: Record<Part, number> = { addon: 0, "torch backend": 0, "tfjs engine": 0, "training loop and model": 0, gc: 0, "start-up": 0, other: 0 };
  const byFn = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    total += us;
    const leaf = byId.get(id)!;
    const name = `${leaf.callFrame.functionName || "(anonymous)"} ${leaf.callFrame.url.split("/").slice(-2).join("/")}:${leaf.callFrame.lineNumber + 1}`;
    byFn.set(name, (byFn.get(name) ?? 0) + us);
    // The innermost frame that belongs to a part names the sample's part (a tfjs helper called by our kernel is the
    // engine's; the addon call inside our kernel is the addon's).
    let part: Part = "other";
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const q = partOf(byId.get(cur)!.callFrame);
      if (q) {
        part = q;
        break;
      }
    }
    parts[part] += us;
  }
  const ms = (us: number) => Math.round(us / 10) / 100;
  for (const k of Object.keys(parts) as Part[]) parts[k] = ms(parts[k]);
  return {
    totalMs: ms(total),
    parts,
    top: [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, us]) => ({ fn, ms: ms(us) })),
  };
}

function main(): void {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith("--") && args[args.indexOf(a) - 1] !== "--top");
  if (!file) {
    process.stderr.write("profile-summary: give a .cpuprofile file (node --cpu-prof writes one)\n");
    process.exit(2);
  }
  const i = args.indexOf("--top");
  const s = summarise(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, i >= 0 ? Number(args[i + 1]) : 15);
  if (args.includes("--json")) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  const pct = (v: number) => `${((100 * v) / Math.max(s.totalMs, 1e-9)).toFixed(1).padStart(5)} %`;
  const lines = [`sampled ${s.totalMs.toFixed(0)} ms`, "by part (innermost frame that belongs to one):"];
  for (const [k, v] of Object.entries(s.parts)) lines.push(`  ${pct(v)}  ${v.toFixed(0).padStart(7)} ms  ${k}`);
  lines.push("by function, self time:");
  for (const t of s.top) lines.push(`  ${pct(t.ms)}  ${t.ms.toFixed(0).padStart(7)} ms  ${t.fn}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

if (process.argv[1] && /profile-summary\.js$/.test(process.argv[1])) main();
