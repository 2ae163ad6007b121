/**
 * npm run bench:convs — CPU ms of VGG-16-BN's dense 3x3 convolutions at batch 128, 1 thread (conv2..conv13; conv1 runs
 * the sparse kernels at density 0.5): forward, input gradient and filter gradient per layer, straight through the
 * addon (no tfjs). With --base another build of the addon (e.g. main's), the two builds run alternately, call by call
 * in one process, so a shared machine's load hits both alike: the figures of a change to the conv paths without the
 * noise of whole training steps.
 *
 *   node dist/scripts/bench-convs.js [--base path/to/prunebench_native.node] [--reps 5]
 */
import { createRequire } from "node:module";
import { loadavg } from "node:os";
import { addonPath, type NativeAddon } from "../src/backend/native/addon.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const require = createRequire(import.meta.url);
const builds: Array<[string, NativeAddon]> = [];
if (process.argv.includes("--base")) builds.push(["base", require(arg("base", "")) as NativeAddon]);
builds.push(["this", require(addonPath()) as NativeAddon]);
for (const [, a] of builds) a.setNumThreads(1);
const reps = Number(arg("reps", "5"));
/** [input map side, in channels, out channels] of conv2..conv13. */
const LAYERS = [[32, 64, 64], [16, 64, 128], [16, 128, 128], [8, 128, 256], [8, 256, 256], [8, 256, 256], [4, 256, 512], [4, 512, 512], [4, 512, 512], [2, 512, 512], [2, 512, 512], [2, 512, 512]];
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const cpu = (f: () => void) => { const c = process.cpuUsage(); f(); const d = process.cpuUsage(c); return (d.user + d.system) / 1000; };
const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
const OPS = ["forward", "input grad", "filter grad"] as const;
const total = builds.map(() => [0, 0, 0]);
for (const [s, ci, co] of LAYERS) {
  const N = 128, x = rnd(N * s * s * ci), w = rnd(9 * ci * co), dy = rnd(N * s * s * co);
  const y = new Float32Array(N * s * s * co), dx = new Float32Array(N * s * s * ci), dw = new Float32Array(9 * ci * co);
  const g = [N, s, s, ci, s, s, co, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];
  const run = [(a: NativeAddon) => a.conv2d(x, w, y, g), (a: NativeAddon) => a.conv2dBackpropInput(dy, w, dx, g), (a: NativeAddon) => a.conv2dBackpropFilter(x, dy, dw, g)];
  const cells: string[] = [];
  run.forEach((f, k) => {
    for (const [, a] of builds) f(a);
    const t = builds.map(() => [] as number[]);
    for (let i = 0; i < reps; i++) builds.forEach(([, a], b) => t[b].push(cpu(() => f(a))));
    t.forEach((v, b) => { total[b][k] += med(v); });
    cells.push(`${OPS[k]} ${t.map((v) => med(v).toFixed(1)).join(" -> ")}`);
  });
  console.log(`${`${s}x${s} ${ci}->${co}`.padEnd(16)}${cells.join("   ")}`);
}
const fmt = (k: number) => total.map((t) => t[k].toFixed(0)).join(" -> ");
console.log(`total CPU ms (${builds.map(([n]) => n).join(" -> ")}): ${OPS.map((o, k) => `${o} ${fmt(k)}`).join(", ")}, all ${total.map((t) => (t[0] + t[1] + t[2]).toFixed(0)).join(" -> ")}; median of ${reps}, load ${loadavg()[0].toFixed(1)}`);
