/**
 * CPU time per training step on the native backend, in the bench:throughput setting (50 %-random kernel masks, the
 * fine-tuning defaults, batch 128, 1 thread), the steady state after 20 warm-up steps: process CPU, so other processes'
 * load does not count as it does in wall time (it still slows shared caches). Each round times the one-kernel step
 * (src/train/fused-step.ts, where it applies) and the taped step in the same process, and, where PyTorch is installed,
 * the PyTorch peer's same network in CPU time (scripts/peers/torch_step_cpu.py); the last lines give medians and the
 * peer's CPU per step over ours.
 *
 *   node dist/scripts/step-cpu.js [--arch mlp] [--steps 300] [--rounds 3] [--only one-kernel|taped] [--no-torch]
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { getArch } from "../src/archs/index.js";
import { initBackend } from "../src/backend/index.js";
import { DEFAULT_FINETUNE } from "../src/grid/index.js";
import { stage, trainPhase } from "../src/train/loop.js";
import { randomKernelMasks } from "../src/train/masks.js";
import { createModel } from "../src/train/model.js";
import { makeRng } from "../src/core/rng.js";
import { median } from "../src/metrics/counts.js";
import { fusedStepSettings } from "../src/train/fused-step.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
await initBackend("native");
const arch = arg("arch", "mlp");
const steps = Number(arg("steps", "300"));
const rounds = Number(arg("rounds", "3"));
const only = arg("only", "");
const withTorch = !process.argv.includes("--no-torch");
const batch = 128;
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

/** CPU ms per step of one phase of warm + steps steps, timed from the end of the warm-up. */
async function ours(oneKernel: boolean, seed: number): Promise<number> {
  fusedStepSettings.enabled = oneKernel;
  let c0 = process.cpuUsage();
  let ms = NaN;
  await trainPhase({
    phase: "finetune", model, train, val: empty, config, masks, seed, selectBestOnVal: false,
    hooks: {
      afterStep: (s) => {
        if (s.globalStep === warm - 1) c0 = process.cpuUsage();
        if (s.globalStep === warm + steps - 1) {
          const c = process.cpuUsage(c0);
          ms = (c.user + c.system) / 1000 / steps;
        }
      },
    },
  });
  return ms;
}

/** The PyTorch peer's CPU ms per step, or null (with the reason) where it cannot run. */
function torch(): number | null {
  const p = spawnSync("/usr/bin/python3", [join(root, "scripts", "peers", "torch_step_cpu.py"), "--arch", arch, "--batch", String(batch), "--steps", String(steps)],
    { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } });
  const line = p.stdout?.trim().split("\n").pop();
  if (p.status !== 0 || !line) {
    process.stderr.write(`PyTorch peer not measured (apt-get install -y python3-torch libopenblas0-serial): ${p.stderr?.trim().split("\n").pop() ?? p.error}\n`);
    return null;
  }
  return JSON.parse(line).cpu_ms_per_step as number;
}

const times: Record<string, number[]> = { "one-kernel": [], taped: [], pytorch: [] };
let peer = withTorch;
for (let r = 0; r < rounds; r++) {
  for (const variant of ["one-kernel", "taped"] as const) {
    if (only && only !== variant) continue;
    const ms = await ours(variant === "one-kernel", r);
    times[variant].push(ms);
    console.log(`${arch} round ${r} ${variant.padEnd(10)} CPU ${ms.toFixed(3)} ms/step`);
  }
  if (peer) {
    const ms = torch();
    if (ms == null) peer = false;
    else {
      times.pytorch.push(ms);
      console.log(`${arch} round ${r} pytorch    CPU ${ms.toFixed(3)} ms/step`);
    }
  }
}
fusedStepSettings.enabled = true;
for (const [k, v] of Object.entries(times)) {
  if (v.length === 0) continue;
  const vs = k === "pytorch" ? "" : times.pytorch.length === v.length
    ? `, PyTorch CPU / ours ${(median(times.pytorch) / median(v)).toFixed(2)} (${Math.min(...v.map((x, i) => times.pytorch[i] / x)).toFixed(2)}-${Math.max(...v.map((x, i) => times.pytorch[i] / x)).toFixed(2)})` : "";
  console.log(`${arch} ${k.padEnd(10)} median CPU ${median(v).toFixed(3)} ms/step over ${v.length} round(s)${vs}`);
}
