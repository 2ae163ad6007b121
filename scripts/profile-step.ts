/**
 * Per-kernel time of a training step (the real loop: trainPhase, SGD Nesterov, masks) on the native backend, from
 * tf.profile: LeNet-5-Caffe (or --arch) at each --compressions (0 = unmasked), random masks as in bench-sparse.
 * Kernels called from inside other kernels (composed implementations) are listed too, so sums can double count.
 *
 *   node dist/scripts/profile-step.js [--arch lenet5-caffe] [--compressions 0,2,8,32] [--steps 8] [--top 25]
 *        [--layer-densities conv1=0.9,conv2=0.47,fc1=0.23]
 *
 * --layer-densities gives the listed layers those densities instead of the compression's uniform one (global pruning
 * leaves LeNet-5-Caffe's layers unevenly dense: the figures above are global magnitude's at 4x on a trained model).
 */
import * as tf from "@tensorflow/tfjs-core";
import { getArch } from "../src/archs/index.js";
import { tensorNames } from "../src/archs/ops.js";
import { initBackend } from "../src/backend/index.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { stage, trainPhase, type StagedSplit } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, type Model } from "../src/train/model.js";
import { makeRng } from "../src/core/rng.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const BATCH = 128;

function densityFor(model: Model, compression: number): number {
  const classifier = model.layers[model.layers.length - 1];
  const total = model.layers.reduce((a, l) => a + l.params, 0);
  return (total / compression - classifier.params) / (total - classifier.params);
}
function masksAt(model: Model, uniform: number, seed: number, perLayer: ReadonlyMap<string, number>): MaskSet {
  const masks = new MaskSet();
  if (uniform >= 1 && perLayer.size === 0) return masks;
  for (const layer of model.layers.slice(0, -1)) {
    const density = perLayer.get(layer.name) ?? uniform;
    if (density >= 1) continue;
    for (const name of [tensorNames.kernel(layer.name), tensorNames.bias(layer.name)]) {
      const v = model.params.get(name);
      if (!v) continue;
      const rng = makeRng(seed, name);
      masks.set(name, new Float32Array(v.size).map(() => (rng() < density ? 1 : 0)), v.shape);
    }
  }
  return masks;
}

async function main(): Promise<void> {
  await initBackend("native");
  // Kernel times as this process's CPU time (the machine is shared: wall time carries other processes' load).
  (tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> }).time = async (f) => {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    return { kernelMs: (c.user + c.system) / 1000 };
  };
  const arch = arg("arch", "lenet5-caffe");
  const steps = Number(arg("steps", "8"));
  const top = Number(arg("top", "25"));
  const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: BATCH, lr: 0.001, momentum: 0.9, nesterov: true, weightDecay: 0 };
  const SHAPE = (getArch(arch).inputShape ?? [28, 28, 1]) as [number, number, number];
  const rng = makeRng(1, "profile");
  const size = SHAPE[0] * SHAPE[1] * SHAPE[2];
  const count = steps * BATCH;
  const train: StagedSplit = stage({ x: new Float32Array(count * size).map(() => rng() - 0.5), y: new Int32Array(count).map(() => Math.floor(rng() * 10)), count }, SHAPE);
  const empty = stage({ x: new Float32Array(0), y: new Int32Array(0), count: 0 }, SHAPE);
  const model = createModel(getArch(arch), SHAPE, 10, 0, "torch-default");
  const perLayer = new Map(arg("layer-densities", "").split(",").filter(Boolean).map((kv) => {
    const [layer, d] = kv.split("=");
    return [layer, Number(d)] as const;
  }));
  for (const c of arg("compressions", "0,2,8,32").split(",").map(Number)) {
    const masks = masksAt(model, c > 0 ? densityFor(model, c) : 1, c, perLayer);
    await trainPhase({ phase: "finetune", model, train, val: empty, config, masks, seed: 0, selectBestOnVal: false });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let wall = 0;
    const info = await tf.profile(async () => {
      const r = await trainPhase({ phase: "finetune", model, train, val: empty, config, masks, seed: 0, selectBestOnVal: false });
      wall = r.trainSeconds * 1000;
    });
    const total = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    const agg = new Map<string, { ms: number; n: number }>();
    for (const k of info.kernels) {
      const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
      const a = agg.get(key) ?? { ms: 0, n: 0 };
      a.ms += (k.kernelTimeMs as number) ?? 0;
      a.n++;
      agg.set(key, a);
    }
    const rows = [...agg.entries()].sort((a, b) => b[1].ms - a[1].ms);
    const sum = rows.reduce((s, r) => s + r[1].ms, 0);
    console.log(`\n${arch} compression ${c || "none"}: per step ${(wall / steps).toFixed(2)} ms wall (profiled), CPU ${((cpu.user + cpu.system) / 1000 / steps).toFixed(2)} ms, kernel CPU sum ${(sum / steps).toFixed(2)} ms, ${(info.kernels.length / steps).toFixed(0)} kernels/step`);
    for (const [key, a] of rows.slice(0, top)) console.log(`${(a.ms / steps).toFixed(3).padStart(8)} ms  x${(a.n / steps).toFixed(0).padStart(2)}  ${key.slice(0, 130)}`);
    void total;
    masks.dispose();
  }
  disposeModel(model);
  train.dispose();
  empty.dispose();
}

await main();
