/**
 * npm run bench:convs — CPU ms of VGG-16-BN's dense 3x3 convolutions at batch 128, 1 thread (conv2..conv13; conv1 runs
 * the sparse kernels at density 0.5): forward, input gradient and filter gradient per layer, straight through the
 * addon (no tfjs). With --base another build of the addon (e.g. main's), the two builds run alternately, call by call
 * in one process, so a shared machine's load hits both alike: the figures of a change to the conv paths without the
 * noise of whole training steps.
 *
 * --arch lenet5-caffe times LeNet-5-Caffe's conv kernels instead, as a training step calls them: conv1 with its ReLU and
 * 2x2 max pool (forward; filter and bias gradients from the pooled gradient), and conv2 over masks of the densities
 * global pruning leaves it at 2-32x (0.64, 0.47, 0.30, 0.19) and dense: forward, input and filter gradient from a dy
 * shaped by the ReLU and max pool after it (one position per window, 80 % of them nonzero). A build without the conv +
 * pool kernels (layer-ops' Conv2DBiasActPool) runs the separate kernels those replace. For the masked conv2 it also times
 * the pooled layer as a step runs it (conv + ReLU + pool; dz, dx and dw from the pooled gradient, all three in one pass
 * where the sparse kernels take both gradients), and a build without those kernels runs the separate calls instead.
 *
 *   node dist/scripts/bench-convs.js [--base path/to/prunebench_native.node] [--reps 5] [--arch lenet5-caffe]
 */
import { createRequire } from "node:module";
import { loadavg } from "node:os";
import { addonPath, type NativeAddon } from "../src/backend/native/addon.js";
import { sparsePattern } from "../src/backend/sparse-ops.js";

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

/** Median CPU ms of each op on each build, the builds alternating call by call; null where a build lacks the op. */
function time(ops: Array<[string, Array<((a: NativeAddon) => void) | null>]>): Array<[string, Array<number | null>]> {
  return ops.map(([name, perBuild]) => {
    perBuild.forEach((f, b) => f?.(builds[b][1]));
    const t = builds.map(() => [] as number[]);
    for (let i = 0; i < reps; i++) perBuild.forEach((f, b) => { if (f) t[b].push(cpu(() => f(builds[b][1]))); });
    return [name, t.map((v) => (v.length > 0 ? med(v) : null))];
  });
}

function lenet(): void {
  const N = 128, rng = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (Math.random() - 0.5) * scale);
  // conv1: 28x28x1 -> 24x24x20, pooled to 12x12.
  const x1 = rng(N * 784, 2), w1 = rng(500, 0.4), b1 = rng(20, 0.2);
  const y1 = new Float32Array(N * 576 * 20), p1 = new Float32Array(N * 144 * 20), c1 = new Int32Array(N * 144 * 20);
  const dp1 = rng(N * 144 * 20), dy1 = new Float32Array(N * 576 * 20), dw1 = new Float32Array(500), db1 = new Float32Array(20);
  const g1 = [N, 28, 28, 1, 24, 24, 20, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1], s1 = [N, 28, 28, 1, 24, 24, 20, 5, 5, 0, 0, 0, 0];
  const pool1 = [N, 24, 24, 20, 12, 12, 2, 2, 2, 2, 0, 0, 1, 1];
  const fused = (a: NativeAddon) => typeof a.convPoolSmall === "function";
  const rows: Array<[string, Array<((a: NativeAddon) => void) | null>]> = [
    ["conv1 + pool forward", builds.map(([, a]) => (fused(a)
      ? (b: NativeAddon) => { b.convPoolSmall!(x1, w1, b1, p1, c1, s1, null); }
      : (b: NativeAddon) => { b.conv2d(x1, w1, y1, g1, b1, 1); b.maxPool(y1, p1, pool1); }))],
    ["conv1 + pool weight grads", builds.map(([, a]) => (fused(a)
      ? (b: NativeAddon) => { b.convPoolGradFilter!(x1, dp1, c1, dw1, db1, s1); }
      : (b: NativeAddon) => { b.maxPoolGrad(dp1, y1, dy1, pool1); b.convBiasActGradFilter!(x1, dy1, y1, dw1, db1, s1, 1); }))],
  ];
  // conv2: 12x12x20 -> 8x8x50; dy as after ReLU and a 2x2 max pool.
  const x2 = rng(N * 144 * 20), dy2 = new Float32Array(N * 64 * 50);
  for (let n = 0; n < N; n++) for (let w = 0; w < 16; w++) for (let c = 0; c < 50; c++) {
    if (Math.random() < 0.2) continue;
    const k = Math.floor(Math.random() * 4), i = 2 * (w >> 2) + (k >> 1), j = 2 * (w & 3) + (k & 1);
    dy2[((n * 8 + i) * 8 + j) * 50 + c] = Math.random() - 0.5;
  }
  const y2 = new Float32Array(N * 64 * 50), dx2 = new Float32Array(N * 144 * 20), dw2 = new Float32Array(25000), b2 = rng(50, 0.2);
  const g2 = [N, 12, 12, 20, 8, 8, 50, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1], s2 = [N, 12, 12, 20, 8, 8, 50, 5, 5, 0, 0, 0, 0];
  for (const d of [1, 0.64, 0.47, 0.3, 0.19]) {
    const mask = Float32Array.from({ length: 25000 }, () => (d === 1 || Math.random() < d ? 1 : 0));
    const w2 = Float32Array.from(mask, (m) => m * (Math.random() - 0.5) * 0.2);
    const pat = sparsePattern(mask, [5, 5, 20, 50]).packed;
    const at = d === 1 ? "dense" : `density ${d}`;
    rows.push(
      [`conv2 ${at} forward`, builds.map(() => (d === 1 ? (a: NativeAddon) => a.conv2d(x2, w2, y2, g2, b2, 1) : (a: NativeAddon) => a.sparseConv2d!(x2, w2, pat, y2, s2, b2, 1)))],
      [`conv2 ${at} input grad`, builds.map(() => (d === 1 ? (a: NativeAddon) => a.conv2dBackpropInput(dy2, w2, dx2, g2) : (a: NativeAddon) => a.sparseConv2dGradInput!(dy2, w2, pat, dx2, s2)))],
      [`conv2 ${at} filter grad`, builds.map(() => (d === 1 ? (a: NativeAddon) => a.conv2dBackpropFilter(x2, dy2, dw2, g2) : (a: NativeAddon) => a.sparseConv2dGradFilter!(x2, dy2, pat, dw2, s2)))],
    );
    if (d === 1) continue;
    // The pooled layer as a training step runs it: conv + ReLU + pool (codes), and all three gradients from dp. A build
    // without the image-by-image kernels runs the separate calls they replace.
    const p2 = new Float32Array(N * 16 * 50), c2 = new Int32Array(N * 16 * 50), dp2 = rng(N * 16 * 50), dz2 = new Float32Array(N * 64 * 50), db2 = new Float32Array(50);
    const last = builds[builds.length - 1][1];
    last.sparseConv2d!(x2, w2, pat, y2, s2, b2, 1);
    last.maxPoolCode!(y2, p2, c2, N, 8, 8, 50, null);
    const separateGrads = (a: NativeAddon) => {
      a.maxPoolRoute!(dp2, c2, dz2, db2, N, 4, 4, 50);
      a.sparseConv2dGradInput!(dz2, w2, pat, dx2, s2);
      a.sparseConv2dGradFilter!(x2, dz2, pat, dw2, s2);
    };
    rows.push(
      [`conv2 ${at} + pool forward`, builds.map(([, a]) => (typeof a.sparseConvPool === "function"
        ? (b: NativeAddon) => { b.sparseConvPool!(x2, w2, b2, p2, c2, s2, null, pat); }
        : (b: NativeAddon) => { b.sparseConv2d!(x2, w2, pat, y2, s2, b2, 1); b.maxPoolCode!(y2, p2, c2, N, 8, 8, 50, null); }))],
      [`conv2 ${at} grads from dp`, builds.map(([, a]) => (typeof a.sparseConvPoolGrads === "function"
        ? (b: NativeAddon) => { if (!b.sparseConvPoolGrads!(x2, w2, dp2, c2, pat, dx2, dw2, db2, s2)) separateGrads(b); }
        : separateGrads))],
    );
  }
  let sums = builds.map(() => 0);
  for (const [name, t] of time(rows)) {
    console.log(`${name.padEnd(34)}${t.map((v) => (v === null ? "-" : v.toFixed(2))).join(" -> ")} ms`);
    sums = sums.map((s0, b) => s0 + (t[b] ?? 0));
  }
  console.log(`total CPU ms (${builds.map(([n]) => n).join(" -> ")}): ${sums.map((v) => v.toFixed(1)).join(" -> ")}; median of ${reps}, load ${loadavg()[0].toFixed(1)}`);
}

if (arg("arch", "vgg16-bn") === "lenet5-caffe") {
  lenet();
  process.exit(0);
}

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
