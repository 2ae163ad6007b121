/**
 * npm run bench:threads — training step time of one model on the native backend at several intra-op thread counts,
 * interleaved round by round (1, 2, 1, 2, ...) in one process so that a change in the machine's load hits every
 * thread count alike. Prints one JSON line per measurement, then the median and spread per thread count and the
 * speed-up over the first count. Also checks that the weights after each round are bit-identical across counts.
 *
 *   node dist/scripts/bench-threads.js [--arch resnet20-b] [--threads 1,2] [--batch 128] [--steps 20] [--rounds 5]
 *
 * PRUNEBENCH_NATIVE_ADDON=path/to/prunebench_native.node times another build of the addon (before/after a change).
 */
import { loadavg } from "node:os";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { registerNativeBackend } from "../src/backend/native/index.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { stage, trainPhase } from "../src/train/loop.js";
import { MaskSet } from "../src/train/masks.js";
import { createModel, disposeModel, snapshot } from "../src/train/model.js";
import { makeRng } from "../src/core/rng.js";

const INPUT: Record<string, [number, number, number]> = { mlp: [28, 28, 1], lenet5: [28, 28, 1], "lenet5-caffe": [28, 28, 1] };

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const arch = arg("arch", "resnet20-b");
  const counts = arg("threads", "1,2").split(",").map(Number);
  const batch = Number(arg("batch", "128"));
  const steps = Number(arg("steps", "20"));
  const rounds = Number(arg("rounds", "5"));
  const info = await initBackend("native");
  if (info.name !== "native") throw new Error(`bench:threads needs the native backend (got ${info.name})`);
  const shape = INPUT[arch] ?? [32, 32, 3];
  const size = shape[0] * shape[1] * shape[2];
  const rng = makeRng(1, "x");
  const n = batch * steps;
  const train = stage({ x: new Float32Array(n * size).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, shape);
  const empty = stage({ x: new Float32Array(0), y: new Int32Array(0), count: 0 }, shape);
  const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: batch, lr: 0.01 };
  const masks = new MaskSet();
  const times = new Map<number, number[]>(counts.map((c) => [c, []]));
  let identical = true;
  // Round 0 is the warm-up (allocations, oneDNN primitive caches), not reported.
  for (let round = 0; round <= rounds; round++) {
    let first: Map<string, Float32Array> | undefined;
    for (const threads of counts) {
      await registerNativeBackend({ threads });
      const model = createModel(getArch(arch), shape, 10, 0);
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      await trainPhase({ phase: "finetune", model, train, val: empty, config, masks, seed: 0, selectBestOnVal: false });
      const msPerStep = (performance.now() - t0) / steps;
      const c1 = process.cpuUsage(c0);
      // CPU time (all threads) per step: what the step costs the machine, and on a loaded machine a check that the
      // wall time is not mostly waiting for a core.
      const cpuMsPerStep = (c1.user + c1.system) / 1000 / steps;
      const w = snapshot(model);
      disposeModel(model);
      if (!first) first = w;
      else for (const [k, v] of first) if (Buffer.compare(Buffer.from(v.buffer, v.byteOffset, v.byteLength), Buffer.from(w.get(k)!.buffer, w.get(k)!.byteOffset, w.get(k)!.byteLength)) !== 0) identical = false;
      if (round === 0) continue;
      times.get(threads)!.push(msPerStep);
      console.log(JSON.stringify({ arch, batch, threads, round, ms_per_step: Math.round(msPerStep * 10) / 10, cpu_ms_per_step: Math.round(cpuMsPerStep * 10) / 10, load1: Math.round(loadavg()[0] * 10) / 10 }));
    }
  }
  await registerNativeBackend({ threads: 1 });
  train.dispose(); empty.dispose(); masks.dispose();
  const med = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  const base = med(times.get(counts[0])!);
  console.log(`\n${arch}, batch ${batch}, ${steps} steps x ${rounds} rounds (interleaved), load ${loadavg().map((x) => x.toFixed(1)).join(" ")}, addon ${process.env.PRUNEBENCH_NATIVE_ADDON ?? "built"}`);
  for (const c of counts) {
    const xs = times.get(c)!;
    console.log(`  ${c} thread(s): ${med(xs).toFixed(1)} ms/step median (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}), ${(base / med(xs)).toFixed(2)}x of ${counts[0]} thread(s)`);
  }
  console.log(`  weights after training ${identical ? "bit-identical" : "DIFFER"} across thread counts`);
}

await main();
