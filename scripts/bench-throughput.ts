/**
 * npm run bench:throughput — training and inference images/s of prunebench's own training step (the real loop:
 * masks applied after every step, 50% of every kernel pruned) per architecture and backend, beside a PyTorch peer
 * with the same batch and thread count: ../shared/peers/torch_throughput.py (or $TORCH_PEER), or for the
 * architectures it lacks scripts/peers/torch_extra.py (the shared script's measurement with more networks).
 * The two sides are measured in alternation, architecture by architecture, `--rounds` times, so drift on a shared
 * machine hits both alike; the table gives each side's median and the ratio's median and range over the rounds.
 * Prints JSON lines (one per measurement), then the table.
 *
 *   node dist/scripts/bench-throughput.js [--arch mlp,lenet5,...] [--backends native,wasm] [--batch 128] [--steps 20] [--rounds 3]
 *
 * The peer's ResNets have 1x1 projection shortcuts (option B): its `resnet20` is our `resnet20-b`, not our `resnet20`
 * (option A). PEER maps each of our architectures to the peer script and name of the same network; others run
 * without a peer row. Heavy architectures (HEAVY) run at most 5 timed steps on either side.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getArch } from "../src/archs/index.js";
import { initBackend, type BackendRequest } from "../src/backend/index.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { evaluate, measureLatency, stage, trainPhase } from "../src/train/loop.js";
import { randomKernelMasks } from "../src/train/masks.js";
import { createModel, disposeModel } from "../src/train/model.js";
import { makeRng } from "../src/core/rng.js";
import { median } from "../src/metrics/counts.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const SHARED_PEER = process.env.TORCH_PEER ?? join(root, "..", "shared", "peers", "torch_throughput.py");
const EXTRA_PEER = join(root, "scripts", "peers", "torch_extra.py");
/** Our architecture -> the peer script and its name for the same network. */
const PEER: Record<string, { script: string; name: string }> = {
  mlp: { script: SHARED_PEER, name: "mlp" },
  lenet5: { script: SHARED_PEER, name: "lenet5" },
  "resnet20-b": { script: SHARED_PEER, name: "resnet20" },
  "resnet56-b": { script: SHARED_PEER, name: "resnet56" },
  "lenet5-caffe": { script: EXTRA_PEER, name: "lenet5-caffe" },
  "vgg16-bn": { script: EXTRA_PEER, name: "vgg16-bn" },
};
const HEAVY = /^(resnet|vgg)/;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

interface Row {
  who: string; backend: string; arch: string; batch: number; threads: number; train_img_per_s: number; infer_img_per_s: number;
  /** The child's peak RSS once it has trained (and timed inference), and at its end, after evaluating as a run does. */
  train_peak_rss_mb?: number; peak_rss_mb?: number; note?: string; round?: number;
}

/** A run evaluates its test split in batches of this many images (src/train/loop.ts evaluate's default). */
const EVAL_IMAGES = 512;

async function measureOne(backend: string, arch: string, batch: number, steps: number): Promise<Row> {
  const info = await initBackend(backend as BackendRequest);
  const def = getArch(arch);
  const shape = def.inputShape ?? [28, 28, 1];
  const model = createModel(def, shape, 10, 0);
  const masks = randomKernelMasks(model.params, 0.5, 0);
  const rng = makeRng(1, "x");
  // Warm-up as long as the timed part (capped): V8 compiles the step's JS over its first few dozen calls. Warm-up and
  // timed steps are one training phase, timed from the end of the warm-up on, as the peer times its steps after warm-up
  // with the same model and optimizer: a sweep's phase trains thousands of steps, so a phase's fixed start-up (masks
  // applied, optimizer state created) is not part of the step's rate (it is of the run's, which `bench:sweep` measures).
  const w = Math.min(steps, 20);
  // At least one evaluation batch.
  const n = Math.max(batch * (w + steps), EVAL_IMAGES);
  const size = shape[0] * shape[1] * shape[2];
  const data = { x: new Float32Array(n * size).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n };
  const empty = stage({ x: new Float32Array(0), y: new Int32Array(0), count: 0 }, shape);
  const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: batch, lr: 0.01 };
  const train = stage({ x: data.x.subarray(0, batch * (w + steps) * size), y: data.y.subarray(0, batch * (w + steps)), count: batch * (w + steps) }, shape);
  let timedFrom = 0;
  let timedTo = 0;
  await trainPhase({
    phase: "finetune", model, train, val: empty, config, masks, seed: 0, selectBestOnVal: false,
    hooks: { afterStep: (s) => { if (s.globalStep === w - 1) timedFrom = performance.now(); if (s.globalStep === w + steps - 1) timedTo = performance.now(); } },
  });
  const r = { imagesPerSecond: (steps * batch) / ((timedTo - timedFrom) / 1000) };
  const ms = await measureLatency(model, train, batch, Math.max(5, steps));
  const trainPeak = process.resourceUsage().maxRSS / 1024;
  // One evaluation batch, as every run evaluates its test split: what it adds to the peak is the run's, too.
  const test = stage({ x: data.x.subarray(0, EVAL_IMAGES * size), y: data.y.subarray(0, EVAL_IMAGES), count: EVAL_IMAGES }, shape);
  await evaluate(model, test, EVAL_IMAGES, masks);
  train.dispose(); test.dispose(); empty.dispose(); masks.dispose(); disposeModel(model);
  return {
    who: "prunebench", backend: info.name, arch, batch, threads: info.threads, train_img_per_s: round(r.imagesPerSecond),
    infer_img_per_s: round((batch / ms) * 1000), train_peak_rss_mb: round(trainPeak), peak_rss_mb: round(process.resourceUsage().maxRSS / 1024),
  };
}

const round = (x: number) => Math.round(x * 10) / 10;

/** One PyTorch measurement of `arch` (null, with the reason on stderr, when the peer cannot run). */
function peerRow(arch: string, batch: number, steps: number): Row | null {
  const peer = PEER[arch];
  if (!peer || !existsSync("/usr/bin/python3") || !existsSync(peer.script)) return null;
  const p = spawnSync("/usr/bin/python3", [peer.script, "--threads", "1", "--batch", String(batch), "--steps", String(steps), "--arch", peer.name], { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } });
  if (p.status !== 0) {
    process.stderr.write(`PyTorch peer failed for ${arch} (apt-get install -y python3-torch libopenblas0-serial):\n${p.stderr}\n`);
    return null;
  }
  if (p.stderr.trim()) process.stderr.write(p.stderr);
  const j = JSON.parse(p.stdout.trim().split("\n").pop()!);
  return { who: "pytorch", backend: `torch ${j.torch} (${j.blas})`, arch, batch: j.batch, threads: j.threads, train_img_per_s: j.train_img_per_s, infer_img_per_s: j.infer_img_per_s };
}

/** One measurement of ours, in a process of its own: a fresh heap, and peak RSS that belongs to this measurement alone. */
function ourRow(backend: string, arch: string, batch: number, steps: number): Row | null {
  const c = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--child", "--backend", backend, "--arch", arch, "--batch", String(batch), "--steps", String(steps)], { encoding: "utf8" });
  if (c.status !== 0) {
    process.stderr.write(`${backend}/${arch}: ${c.stderr.split("\n").filter((l) => l.includes("rror")).slice(0, 2).join(" ") || `exit ${c.status}`}\n`);
    return null;
  }
  return JSON.parse(c.stdout.trim().split("\n").pop()!) as Row;
}

async function main(): Promise<void> {
  const batch = Number(arg("batch", "128"));
  const steps = Number(arg("steps", "20"));
  if (process.argv.includes("--child")) {
    const row = await measureOne(arg("backend", "wasm"), arg("arch", "lenet5"), batch, steps);
    process.stdout.write(`${JSON.stringify(row)}\n`);
    return;
  }
  const archs = arg("arch", "mlp,lenet5,lenet5-caffe,resnet20-b,resnet56-b,vgg16-bn").split(",");
  for (const a of archs) getArch(a);
  const backends = arg("backends", "native,wasm").split(",");
  const rounds = Math.max(1, Number(arg("rounds", "3")));
  const missing = archs.filter((a) => PEER[a] && !existsSync(PEER[a].script));
  if (!existsSync("/usr/bin/python3") || missing.length > 0) process.stderr.write(`no PyTorch peer for ${existsSync("/usr/bin/python3") ? missing.join(", ") : "any architecture (no /usr/bin/python3)"}: printing prunebench figures only there\n`);
  const rows: Row[] = [];
  const keep = (r: Row | null, round: number) => {
    if (!r) return;
    r.round = round;
    rows.push(r);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  };
  for (let round = 0; round < rounds; round++) {
    for (const arch of archs) {
      const s = HEAVY.test(arch) ? Math.min(steps, 5) : steps;
      keep(peerRow(arch, batch, s), round);
      for (const backend of backends) keep(ourRow(backend, arch, batch, s), round);
    }
  }
  // Per (arch, side): medians over the rounds; ratios per round (each against the peer measured beside it).
  const peerOf = (r: Row) => rows.find((p) => p.who === "pytorch" && p.arch === r.arch && p.round === r.round);
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const key = `${r.arch}\u0000${r.who === "pytorch" ? "pytorch" : r.backend}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const fmt = (xs: number[]) => (xs.length === 0 ? "" : xs.length === 1 ? xs[0].toFixed(2) : `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`);
  process.stdout.write(`\n${"arch".padEnd(13)}${"backend".padEnd(28)}${"train img/s".padStart(12)}${"× torch".padStart(19)}${"infer img/s".padStart(13)}${"× torch".padStart(19)}${"peak RSS MiB: train".padStart(21)}${"+ eval".padStart(8)}\n`);
  for (const g of groups.values()) {
    const r = g[0];
    const ratios = (key: "train_img_per_s" | "infer_img_per_s") => r.who === "pytorch" ? [] : g.flatMap((x) => { const p = peerOf(x); return p ? [x[key] / p[key]] : []; });
    const med = (key: "train_img_per_s" | "infer_img_per_s") => median(g.map((x) => x[key])).toFixed(0);
    const maxOf = (xs: Array<number | undefined>) => { const v = xs.filter((x): x is number => x != null); return v.length ? Math.max(...v).toFixed(0) : ""; };
    process.stdout.write(`${r.arch.padEnd(13)}${r.backend.slice(0, 27).padEnd(28)}${med("train_img_per_s").padStart(12)}${fmt(ratios("train_img_per_s")).padStart(19)}` +
      `${med("infer_img_per_s").padStart(13)}${fmt(ratios("infer_img_per_s")).padStart(19)}${maxOf(g.map((x) => x.train_peak_rss_mb)).padStart(21)}${maxOf(g.map((x) => x.peak_rss_mb)).padStart(8)}\n`);
  }
  process.stdout.write(`batch ${batch}, 1 thread, ${rounds} round(s) of interleaved measurements: medians, ratio ranges in parentheses; cores on this machine: ${(await import("node:os")).availableParallelism()}\n`);
}

await main();
