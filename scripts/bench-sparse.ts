/**
 * npm run bench:sparse — what the sparse (masked) kernels buy in fine-tuning: ms per training step (batch 128, the
 * real loop: trainPhase with SGD Nesterov and masks) of LeNet-5-Caffe and LeNet-300-100 on the native backend, with
 * every kernel but the classifier's masked at the density of each of ShrinkBench's compressions (2..32x; the
 * classifier stays dense and counts in the ratio, as in benchmarks/shrinkbench-fmnist.yaml), in three modes:
 * dense (the dense kernels on masked weights, as before), sparse (the sparse kernels at every density) and auto
 * (the thresholds in src/backend/sparse-ops.ts). Modes and densities are interleaved repetition by repetition, so
 * drift from other processes hits them alike; min/median/max of wall and of CPU time are printed. Then the projected fine-tuning epoch
 * (60,000 images) of LeNet-5-Caffe per compression, and with --epoch the actual one (random images; speed does not
 * depend on the values).
 *
 *   node dist/scripts/bench-sparse.js [--arch lenet5-caffe,mlp] [--reps 5] [--steps 8] [--epoch]
 */
import * as tf from "@tensorflow/tfjs-core";
import { getArch } from "../src/archs/index.js";
import { tensorNames } from "../src/archs/ops.js";
import { initBackend } from "../src/backend/index.js";
import { SPARSE_MAX_DENSITY, sparseThresholds } from "../src/backend/sparse-ops.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { stage, trainPhase, type StagedSplit } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, type Model } from "../src/train/model.js";
import { makeRng } from "../src/core/rng.js";
import { median } from "../src/metrics/counts.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const COMPRESSIONS = [2, 4, 8, 16, 32];
const BATCH = 128;
const EPOCH_IMAGES = 60_000;
const SHAPE: [number, number, number] = [28, 28, 1];
type Mode = "dense" | "sparse" | "auto";
const MODES: Mode[] = ["dense", "sparse", "auto"];

function setMode(mode: Mode): void {
  const v = mode === "dense" ? -1 : mode === "sparse" ? 1 : null;
  sparseThresholds.conv = v ?? SPARSE_MAX_DENSITY.conv;
  sparseThresholds.dense = v ?? SPARSE_MAX_DENSITY.dense;
}

/**
 * The kept fraction of every prunable tensor (all but the classifier's) that gives `compression` over the whole
 * network, classifier counted.
 */
function densityFor(model: Model, compression: number): number {
  const classifier = model.layers[model.layers.length - 1];
  const total = model.layers.reduce((a, l) => a + l.params, 0);
  return (total / compression - classifier.params) / (total - classifier.params);
}

/** Seeded random masks keeping `density` of every kernel and bias but the classifier's. */
function masksAt(model: Model, density: number, seed: number): MaskSet {
  const masks = new MaskSet();
  for (const layer of model.layers.slice(0, -1)) {
    for (const name of [tensorNames.kernel(layer.name), tensorNames.bias(layer.name)]) {
      const v = model.params.get(name);
      if (!v) continue;
      const rng = makeRng(seed, name);
      masks.set(name, new Float32Array(v.size).map(() => (rng() < density ? 1 : 0)), v.shape);
    }
  }
  return masks;
}

function randomSplit(count: number, seed: number): StagedSplit {
  const rng = makeRng(seed, "bench-sparse");
  const size = SHAPE[0] * SHAPE[1] * SHAPE[2];
  return stage({ x: new Float32Array(count * size).map(() => rng() - 0.5), y: new Int32Array(count).map(() => Math.floor(rng() * 10)), count }, SHAPE);
}

const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: BATCH, lr: 0.001, momentum: 0.9, nesterov: true, weightDecay: 0 };

/**
 * ms per step of one short fine-tuning phase: wall time, and this process's CPU time (on a shared machine the wall
 * time carries other processes' load; the CPU time of a one-thread step is what the step costs).
 */
async function stepMs(model: Model, masks: MaskSet, train: StagedSplit, empty: StagedSplit): Promise<{ wall: number; cpu: number }> {
  const steps = Math.ceil(train.count / BATCH);
  const c0 = process.cpuUsage();
  const r = await trainPhase({ phase: "finetune", model, train, val: empty, config, masks, seed: 0, selectBestOnVal: false });
  const c = process.cpuUsage(c0);
  return { wall: (r.trainSeconds * 1000) / steps, cpu: (c.user + c.system) / 1000 / steps };
}

const fmt = (x: number) => x.toFixed(2).padStart(7);

async function main(): Promise<void> {
  const info = await initBackend("native");
  const archs = arg("arch", "lenet5-caffe,mlp").split(",");
  const reps = Number(arg("reps", "5"));
  const steps = Number(arg("steps", "8"));
  console.log(`backend ${info.name}, ${info.threads} thread(s); batch ${BATCH}; ${steps} steps x ${reps} interleaved repetitions; thresholds ${JSON.stringify(SPARSE_MAX_DENSITY)}`);
  const empty = stage({ x: new Float32Array(0), y: new Int32Array(0), count: 0 }, SHAPE);
  const train = randomSplit(steps * BATCH, 1);
  const projected: Record<string, Array<{ compression: number; density: number; ms: Record<Mode, number> }>> = {};
  for (const arch of archs) {
    const model = createModel(getArch(arch), SHAPE, 10, 0, "torch-default");
    const cells = COMPRESSIONS.map((c) => ({ compression: c, density: densityFor(model, c), masks: null as MaskSet | null, times: { dense: [], sparse: [], auto: [] } as Record<Mode, number[]>, cpu: { dense: [], sparse: [], auto: [] } as Record<Mode, number[]> }));
    for (const cell of cells) cell.masks = masksAt(model, cell.density, cell.compression);
    for (const cell of cells) for (const mode of MODES) { setMode(mode); await stepMs(model, cell.masks!, train, empty); }
    for (let r = 0; r < reps; r++) {
      for (const cell of cells) {
        for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) {
          setMode(mode);
          const t = await stepMs(model, cell.masks!, train, empty);
          cell.times[mode].push(t.wall);
          cell.cpu[mode].push(t.cpu);
        }
      }
    }
    for (const [what, key] of [["wall", "times"], ["CPU", "cpu"]] as const) {
      console.log(`\n${arch}: ${what} ms per training step (min / median / max)`);
      console.log(`compr  density   ${MODES.map((m) => `${m.padEnd(6)}    min     med     max`).join("   ")}   sparse/dense  auto/dense`);
      for (const cell of cells) {
        const t = cell[key];
        const cols = MODES.map((m) => `       ${fmt(Math.min(...t[m]))} ${fmt(median(t[m]))} ${fmt(Math.max(...t[m]))}`).join("   ");
        console.log(`${String(cell.compression).padStart(4)}x  ${cell.density.toFixed(4)}  ${cols}   ${(median(t.sparse) / median(t.dense)).toFixed(3).padStart(12)}  ${(median(t.auto) / median(t.dense)).toFixed(3).padStart(10)}`);
      }
    }
    projected[arch] = cells.map((c) => ({ compression: c.compression, density: c.density, ms: { dense: median(c.cpu.dense), sparse: median(c.cpu.sparse), auto: median(c.cpu.auto) } }));
    for (const cell of cells) cell.masks!.dispose();
    disposeModel(model);
  }
  const stepsPerEpoch = Math.ceil(EPOCH_IMAGES / BATCH);
  for (const arch of archs) {
    console.log(`\n${arch}: projected fine-tuning epoch (${stepsPerEpoch} steps x median CPU ms/step), seconds`);
    console.log("compr   dense  sparse    auto");
    for (const p of projected[arch]) console.log(`${String(p.compression).padStart(4)}x ${MODES.map((m) => (p.ms[m] * stepsPerEpoch / 1000).toFixed(2).padStart(7)).join(" ")}`);
  }
  if (process.argv.includes("--epoch")) {
    const arch = archs[0];
    const model = createModel(getArch(arch), SHAPE, 10, 0, "torch-default");
    const full = randomSplit(EPOCH_IMAGES, 2);
    console.log(`\n${arch}: actual fine-tuning epoch (${EPOCH_IMAGES} random images), seconds`);
    console.log("compr   dense    auto   (wall; CPU in parentheses)");
    for (const c of COMPRESSIONS) {
      const masks = masksAt(model, densityFor(model, c), c);
      const secs: string[] = [];
      for (const mode of ["dense", "auto"] as Mode[]) {
        setMode(mode);
        const c0 = process.cpuUsage();
        const r = await trainPhase({ phase: "finetune", model, train: full, val: empty, config, masks, seed: 0, selectBestOnVal: false });
        const cpu = process.cpuUsage(c0);
        secs.push(`${r.trainSeconds.toFixed(2).padStart(7)} (${((cpu.user + cpu.system) / 1e6).toFixed(2)})`);
      }
      console.log(`${String(c).padStart(4)}x ${secs.join(" ")}`);
      masks.dispose();
    }
    full.dispose();
    disposeModel(model);
  }
  setMode("auto");
  train.dispose();
  empty.dispose();
  console.log(`\n(tensors alive: ${tf.memory().numTensors})`);
}

await main();
