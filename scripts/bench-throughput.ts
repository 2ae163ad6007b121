/**
 * npm run bench:throughput — training and inference images/s of prunebench's own training step (the real loop:
 * masks applied after every step, 50% of every kernel pruned) per architecture and backend, beside the PyTorch
 * peer (../shared/peers/torch_throughput.py) measured in the same run with the same batch and thread count.
 * Prints JSON lines, then a table with the ratios.
 *
 *   node dist/scripts/bench-throughput.js [--arch mlp,lenet5,resnet20-b] [--backends native,wasm] [--batch 128] [--steps 20]
 *
 * The peer's ResNets have 1x1 projection shortcuts (option B): its `resnet20` is our `resnet20-b`, not our `resnet20`
 * (option A). PEER_NAME maps each of our architectures to the peer's same network; others run without a peer row.
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

const INPUT: Record<string, [number, number, number]> = {
  mlp: [28, 28, 1], lenet5: [28, 28, 1], "resnet20-b": [32, 32, 3], "resnet56-b": [32, 32, 3], resnet20: [32, 32, 3], resnet56: [32, 32, 3],
};
/** Our architecture -> the peer's name for the same network (../shared/peers/torch_throughput.py). */
const PEER_NAME: Record<string, string> = { mlp: "mlp", lenet5: "lenet5", "resnet20-b": "resnet20", "resnet56-b": "resnet56" };
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

interface Row {
  who: string; backend: string; arch: string; batch: number; threads: number; train_img_per_s: number; infer_img_per_s: number;
  /** The child's peak RSS once it has trained (and timed inference), and at its end, after evaluating as a run does. */
  train_peak_rss_mb?: number; peak_rss_mb?: number; note?: string;
}

/** A run evaluates its test split in batches of this many images (src/train/loop.ts evaluate's default). */
const EVAL_IMAGES = 512;

async function measureOne(backend: string, arch: string, batch: number, steps: number): Promise<Row> {
  const info = await initBackend(backend as BackendRequest);
  const shape = INPUT[arch];
  const model = createModel(getArch(arch), shape, 10, 0);
  const masks = randomKernelMasks(model.params, 0.5, 0);
  const rng = makeRng(1, "x");
  // At least the 3 warm-up batches and one evaluation batch.
  const n = Math.max(batch * Math.max(steps, 3), EVAL_IMAGES);
  const size = shape[0] * shape[1] * shape[2];
  const data = { x: new Float32Array(n * size).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n };
  const empty = stage({ x: new Float32Array(0), y: new Int32Array(0), count: 0 }, shape);
  const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: batch, lr: 0.01 };
  const warm = stage({ x: data.x.subarray(0, 3 * batch * size), y: data.y.subarray(0, 3 * batch), count: 3 * batch }, shape);
  await trainPhase({ phase: "finetune", model, train: warm, val: empty, config, masks, seed: 0, selectBestOnVal: false });
  const train = stage({ x: data.x.subarray(0, batch * steps * size), y: data.y.subarray(0, batch * steps), count: batch * steps }, shape);
  const r = await trainPhase({ phase: "finetune", model, train, val: empty, config, masks, seed: 0, selectBestOnVal: false });
  const ms = await measureLatency(model, train, batch, Math.max(5, steps));
  const trainPeak = process.resourceUsage().maxRSS / 1024;
  // One evaluation batch, as every run evaluates its test split: what it adds to the peak is the run's, too.
  const test = stage({ x: data.x.subarray(0, EVAL_IMAGES * size), y: data.y.subarray(0, EVAL_IMAGES), count: EVAL_IMAGES }, shape);
  await evaluate(model, test, EVAL_IMAGES, masks);
  train.dispose(); test.dispose(); warm.dispose(); empty.dispose(); masks.dispose(); disposeModel(model);
  return {
    who: "prunebench", backend: info.name, arch, batch, threads: info.threads, train_img_per_s: round(r.imagesPerSecond),
    infer_img_per_s: round((batch / ms) * 1000), train_peak_rss_mb: round(trainPeak), peak_rss_mb: round(process.resourceUsage().maxRSS / 1024),
  };
}

const round = (x: number) => Math.round(x * 10) / 10;

async function main(): Promise<void> {
  const batch = Number(arg("batch", "128"));
  const steps = Number(arg("steps", "20"));
  if (process.argv.includes("--child")) {
    const row = await measureOne(arg("backend", "wasm"), arg("arch", "lenet5"), batch, steps);
    process.stdout.write(`${JSON.stringify(row)}\n`);
    return;
  }
  const archs = arg("arch", "mlp,lenet5,resnet20-b").split(",");
  const ours = new Map(archs.filter((a) => PEER_NAME[a]).map((a) => [PEER_NAME[a], a]));
  const backends = arg("backends", "native,wasm").split(",");
  const rows: Row[] = [];
  const peerScript = process.env.TORCH_PEER ?? join(root, "..", "shared", "peers", "torch_throughput.py");
  if (ours.size > 0 && existsSync("/usr/bin/python3") && existsSync(peerScript)) {
    const p = spawnSync("/usr/bin/python3", [peerScript, "--threads", "1", "--batch", String(batch), "--steps", String(steps), "--arch", [...ours.keys()].join(",")], { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } });
    if (p.status === 0) {
      for (const line of p.stdout.trim().split("\n")) {
        const j = JSON.parse(line);
        const row: Row = { who: "pytorch", backend: `torch ${j.torch} (${j.blas})`, arch: ours.get(j.arch) ?? j.arch, batch: j.batch, threads: j.threads, train_img_per_s: j.train_img_per_s, infer_img_per_s: j.infer_img_per_s };
        rows.push(row);
        process.stdout.write(`${JSON.stringify(row)}\n`);
      }
      if (p.stderr.trim()) process.stderr.write(p.stderr);
    } else {
      process.stderr.write(`PyTorch peer failed (apt-get install -y python3-torch libopenblas0-serial):\n${p.stderr}\n`);
    }
  } else {
    process.stderr.write(`no PyTorch peer (${peerScript} with /usr/bin/python3): printing prunebench figures only\n`);
  }
  for (const backend of backends) {
    for (const arch of archs) {
      // One process per measurement: a fresh heap, and peak RSS that belongs to this measurement alone.
      const c = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--child", "--backend", backend, "--arch", arch, "--batch", String(batch), "--steps", String(arch.startsWith("resnet") ? Math.min(steps, 5) : steps)], { encoding: "utf8" });
      if (c.status !== 0) {
        process.stderr.write(`${backend}/${arch}: ${c.stderr.split("\n").filter((l) => l.includes("rror")).slice(0, 2).join(" ") || `exit ${c.status}`}\n`);
        continue;
      }
      const row = JSON.parse(c.stdout.trim().split("\n").pop()!) as Row;
      rows.push(row);
      process.stdout.write(`${JSON.stringify(row)}\n`);
    }
  }
  const peer = new Map(rows.filter((r) => r.who === "pytorch").map((r) => [r.arch, r]));
  process.stdout.write(`\n${"arch".padEnd(10)}${"backend".padEnd(34)}${"train img/s".padStart(12)}${"× torch".padStart(9)}${"infer img/s".padStart(13)}${"× torch".padStart(9)}${"peak RSS MiB: train".padStart(21)}${"+ eval".padStart(8)}\n`);
  for (const r of rows) {
    const p = peer.get(r.arch);
    const ratio = (a: number, b?: number) => (b && r.who !== "pytorch" ? (a / b).toFixed(2) : "");
    process.stdout.write(`${r.arch.padEnd(10)}${r.backend.slice(0, 33).padEnd(34)}${r.train_img_per_s.toFixed(0).padStart(12)}${ratio(r.train_img_per_s, p?.train_img_per_s).padStart(9)}` +
      `${r.infer_img_per_s.toFixed(0).padStart(13)}${ratio(r.infer_img_per_s, p?.infer_img_per_s).padStart(9)}${(r.train_peak_rss_mb?.toFixed(0) ?? "").padStart(21)}${(r.peak_rss_mb?.toFixed(0) ?? "").padStart(8)}\n`);
  }
  process.stdout.write(`batch ${batch}, 1 thread, ${rows.length} measurements; cores on this machine: ${(await import("node:os")).availableParallelism()}\n`);
}

await main();
