/**
 * CPU time and minor page faults per training step of one architecture on the native backend, in the bench:throughput
 * setting (50 %-random kernel masks, the fine-tuning defaults, batch 128), the steady state after a warm-up phase part:
 * process CPU, so other processes' load does not count (it still slows caches). Several rounds in one process.
 *
 *   node dist/scripts/step-cpu.js [--arch mlp] [--steps 200] [--rounds 5] [--only one-kernel|taped]
 */
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { stage, trainPhase } from "../src/train/loop.js";
import { randomKernelMasks } from "../src/train/masks.js";
import { createModel } from "../src/train/model.js";
import { makeRng } from "../src/core/rng.js";
import { fusedStepSettings } from "../src/train/fused-step.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
await initBackend("native");
const arch = arg("arch", "mlp");
const steps = Number(arg("steps", "200"));
const rounds = Number(arg("rounds", "5"));
const batch = 128;
const only = arg("only", "");
const def = getArch(arch);
const shape = def.inputShape ?? [28, 28, 1];
const model = createModel(def, shape, 10, 0);
const masks = randomKernelMasks(model.params, 0.5, 0);
const rng = makeRng(1, "x");
const size = shape[0] * shape[1] * shape[2];
const warm = 20;
const n = batch * (warm + steps);
const train = stage({ x: new Float32Array(n * size).map(() => rng() - 0.5), y: new Int32Array(n).map(() => Math.floor(rng() * 10)), count: n }, shape);
const empty = stage({ x: new Float32Array(0), y: new Int32Array(0), count: 0 }, shape);
const config = { ...DEFAULT_FINETUNE, epochs: 1, batchSize: batch, lr: 0.01 };
// Alternates the one-kernel step (where it applies) with the taped one, round by round.
for (let r = 0; r < 2 * rounds; r++) {
  fusedStepSettings.enabled = only === "taped" ? false : only === "one-kernel" ? true : r % 2 === 0;
  let c0 = process.cpuUsage();
  let f0 = process.resourceUsage().minorPageFault;
  let t0 = 0;
  let out = "";
  await trainPhase({
    phase: "finetune", model, train, val: empty, config, masks, seed: r, selectBestOnVal: false,
    hooks: {
      afterStep: (s) => {
        if (s.globalStep === warm - 1) { c0 = process.cpuUsage(); f0 = process.resourceUsage().minorPageFault; t0 = performance.now(); }
        if (s.globalStep === warm + steps - 1) {
          const c = process.cpuUsage(c0);
          const f = process.resourceUsage().minorPageFault - f0;
          out = `cpu ${((c.user + c.system) / 1000 / steps).toFixed(3)} ms/step (sys ${(c.system / 1000 / steps).toFixed(3)}), wall ${((performance.now() - t0) / steps).toFixed(3)}, faults ${(f / steps).toFixed(1)}/step`;
        }
      },
    },
  });
  console.log(`${arch} round ${r >> 1} ${fusedStepSettings.enabled ? "one-kernel" : "taped     "}: ${out}`);
}
