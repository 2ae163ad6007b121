/**
 * Training images/s of prunebench's own loop on one backend/device, timed so that a GPU's queued work is counted:
 * the GPU check's "ours" side beside scripts/peers/torch_gpu.py (run.sh interleaves the two).
 *
 *   PRUNEBENCH_TORCH_DEVICE=cuda:0 node dist/scripts/gpu-check/throughput.js --backend torch --arch resnet20-b
 *        [--batch 128] [--steps 50] [--pruned 0] [--threads N]
 *
 * One training phase of two epochs through trainPhase (SGD momentum 0.9, weight decay 5e-4, as the peer): epoch 0 is
 * the warm-up, epoch 1 the timed one, `--steps` steps each (an epoch is the loop's unit, so the warm-up is as long as
 * the timed part). Each epoch ends by reading its summed loss back to the host, which waits for every queued kernel,
 * so the timed epoch's `seconds` is wall time with the device drained at both ends (bench:throughput's per-step hooks
 * would time only the launches on an asynchronous device).
 * `--pruned 0` (default) trains dense, as the peer does; `--pruned 0.5` masks half of every kernel (the real loop of
 * a pruning run, as bench:throughput measures on CPU). Prints one JSON line.
 */
import { getArch } from "../../src/archs/index.js";
import { initBackend, setBackendThreads, type BackendRequest } from "../../src/backend/index.js";
import { makeRng } from "../../src/core/rng.js";
import { DEFAULT_PRETRAIN } from "../../src/grid/index.js";
import { stage, trainPhase } from "../../src/train/loop.js";
import { MaskSet, randomKernelMasks } from "../../src/train/masks.js";
import { createModel, disposeModel } from "../../src/train/model.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const backend = arg("backend", "torch");
const archName = arg("arch", "resnet20-b");
const batch = Number(arg("batch", "128"));
const steps = Number(arg("steps", "50"));
const pruned = Number(arg("pruned", "0"));
const threads = Number(arg("threads", "0"));
for (const [k, v] of Object.entries({ batch, steps })) {
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`throughput: --${k} must be a positive integer\n`);
    process.exit(2);
  }
}

let info = await initBackend(backend as BackendRequest);
if (threads > 0) info = { ...info, threads: await setBackendThreads(info, threads) };
const arch = getArch(archName);
const shape: [number, number, number] = [32, 32, 3];
const model = createModel(arch, arch.inputShape ?? shape, 10, 0, "torch-default");
const inputShape = model.inputShape;
const size = inputShape[0] * inputShape[1] * inputShape[2];
const rng = makeRng(1, "gpu-check:throughput");
const n = batch * steps;
const train = stage({ x: Float32Array.from({ length: n * size }, () => rng() - 0.5), y: Int32Array.from({ length: n }, () => Math.floor(rng() * 10)), count: n }, inputShape);
const empty = stage({ x: new Float32Array(0), y: new Int32Array(0), count: 0 }, inputShape);
const masks = pruned > 0 ? randomKernelMasks(model.params, pruned, 0) : new MaskSet();
const result = await trainPhase({
  phase: "finetune", model, train, val: empty, masks, seed: 0, selectBestOnVal: false,
  config: { ...DEFAULT_PRETRAIN, epochs: 2, batchSize: batch, lr: 0.01, schedule: "constant" },
});
const timed = result.epochs[1];
train.dispose(); empty.dispose(); masks.dispose(); disposeModel(model);
process.stdout.write(`${JSON.stringify({
  who: "prunebench", backend: info.name, device: info.device ?? process.env.PRUNEBENCH_TORCH_DEVICE ?? "cpu", arch: archName, batch, steps, pruned,
  threads: info.threads, train_img_per_s: Math.round((steps * batch / timed.seconds) * 10) / 10, warmup_seconds: Math.round(result.epochs[0].seconds * 100) / 100,
})}\n`);
