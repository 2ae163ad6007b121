// Training throughput of the "native" tfjs backend vs tfjs-wasm vs the PyTorch
// peer on the same CPU (batch 128, SGD momentum, 1 thread by default).
//
// usage: node dist/scripts/bench-native.js [--arch mlp,lenet5,resnet20]
//          [--backends native,wasm] [--batch 128] [--threads 1] [--seconds 4]
//          [--profile] [--no-peer]

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { packageRoot } from "../src/backend/native/addon.js";
import { registerNativeBackend } from "../src/backend/native/index.js";
import { loss, makeModel, randn } from "../src/backend/native/models.js";

interface Opts {
  archs: string[];
  backends: string[];
  batch: number;
  threads: number;
  seconds: number;
  profile: boolean;
  peer: boolean;
}

function parseArgs(argv: string[]): Opts {
  const o: Opts = {
    archs: ["mlp", "lenet5", "resnet20"], backends: ["native", "wasm"], batch: 128, threads: 1,
    seconds: 4, profile: false, peer: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === "--arch" || a === "--archs") o.archs = v().split(",");
    else if (a === "--backends") o.backends = v().split(",");
    else if (a === "--batch") o.batch = Number(v());
    else if (a === "--threads") o.threads = Number(v());
    else if (a === "--seconds") o.seconds = Number(v());
    else if (a === "--profile") o.profile = true;
    else if (a === "--no-peer") o.peer = false;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

async function setupBackend(name: string, threads: number): Promise<string | null> {
  if (name === "native") {
    const r = await registerNativeBackend({ threads });
    if (!r.ok) return r.reason;
  } else if (name === "wasm") {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    wasm.setThreadsCount(threads);
    // The project's initBackend also registers the kernels tfjs-wasm lacks (e.g. Conv2DBackpropFilter).
    try {
      const url = new URL("../src/backend/index.js", import.meta.url).href;
      const mod = (await import(url)) as { initBackend?: (r: string) => Promise<unknown> };
      if (typeof mod.initBackend === "function") await mod.initBackend("wasm");
    } catch (e) {
      console.log(`wasm: project initBackend unavailable (${(e as Error).message.split("\n")[0]}); plain tfjs-wasm`);
    }
  }
  const ok = await tf.setBackend(name);
  return ok ? null : `tf.setBackend("${name}") failed`;
}

interface Row {
  arch: string;
  backend: string;
  imgPerS: number;
  msPerStep: number;
  steps: number;
}

async function measure(arch: string, backend: string, o: Opts): Promise<Row> {
  const model = makeModel(arch, 1);
  const x = tf.tensor(randn(o.batch * model.inputShape.reduce((a, b) => a * b, 1), 7), [o.batch, ...model.inputShape]);
  const labels = tf.tensor1d(Array.from({ length: o.batch }, (_, i) => (i * 7) % 10), "int32");
  const opt = tf.train.momentum(0.01, 0.9);
  const step = (): number => {
    const { value, grads } = tf.variableGrads(() => loss(model, x, labels), model.vars);
    opt.applyGradients(grads as Parameters<typeof opt.applyGradients>[0]);
    const l = value.dataSync()[0];
    value.dispose();
    tf.dispose(grads);
    return l;
  };
  for (let i = 0; i < 2; i++) step();
  if (o.profile) {
    const prof = await tf.profile(() => { step(); });
    const by = new Map<string, { ms: number; n: number }>();
    let total = 0;
    for (const k of prof.kernels) {
      const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
      total += ms;
      const e = by.get(k.name) ?? { ms: 0, n: 0 };
      e.ms += ms;
      e.n += 1;
      by.set(k.name, e);
    }
    const t0 = performance.now();
    step();
    const wall = performance.now() - t0;
    console.log(`\nprofile ${arch} on ${backend}: kernels ${total.toFixed(1)} ms of a ${wall.toFixed(1)} ms step ` +
      `(${prof.kernels.length} kernel calls)`);
    for (const [name, e] of [...by.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 18)) {
      console.log(`  ${name.padEnd(24)} ${e.ms.toFixed(2).padStart(8)} ms  ${String(e.n).padStart(4)} calls`);
    }
  }
  let steps = 0;
  const t0 = performance.now();
  let elapsed = 0;
  while (steps < 3 || elapsed < o.seconds * 1000) {
    step();
    steps++;
    elapsed = performance.now() - t0;
    if (steps >= 200) break;
  }
  tf.dispose([x, labels, ...model.vars]);
  opt.dispose();
  return { arch, backend, steps, msPerStep: elapsed / steps, imgPerS: (steps * o.batch) / (elapsed / 1000) };
}

function runPeer(o: Opts): Map<string, number> {
  const out = new Map<string, number>();
  const script = join(packageRoot(), "..", "shared", "peers", "torch_throughput.py");
  if (!existsSync(script)) {
    console.log(`peer: ${script} not found; skipping the PyTorch figures`);
    return out;
  }
  const r = spawnSync("/usr/bin/python3",
    [script, "--threads", String(o.threads), "--batch", String(o.batch), "--arch", o.archs.join(",")],
    { encoding: "utf8" });
  if (r.status !== 0) {
    console.log(`peer failed (${r.status}): ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    return out;
  }
  for (const line of r.stdout.split("\n")) {
    if (!line.trim().startsWith("{")) continue;
    const row = JSON.parse(line) as { arch: string; train_img_per_s: number; blas?: string };
    out.set(row.arch, row.train_img_per_s);
    if (row.blas && row.blas !== "openblas") console.log(`peer warning: PyTorch uses BLAS "${row.blas}"`);
  }
  return out;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const rows: Row[] = [];
  for (const backend of o.backends) {
    const err = await setupBackend(backend, o.threads);
    if (err) {
      console.log(`backend ${backend}: unavailable (${err})`);
      continue;
    }
    for (const arch of o.archs) {
      let row: Row;
      try {
        row = await measure(arch, backend, o);
      } catch (e) {
        console.log(`${backend.padEnd(7)} ${arch.padEnd(9)} failed: ${(e as Error).message.split("\n")[0]}`);
        continue;
      }
      console.log(`${backend.padEnd(7)} ${arch.padEnd(9)} ${row.imgPerS.toFixed(1).padStart(9)} img/s ` +
        `(${row.msPerStep.toFixed(1)} ms/step, ${row.steps} steps)`);
      rows.push(row);
    }
  }
  const peer = o.peer ? runPeer(o) : new Map<string, number>();
  console.log(`\ntraining img/s, batch ${o.batch}, ${o.threads} thread(s)`);
  const header = ["arch", ...o.backends, "pytorch", ...o.backends.map((b) => `${b}/pt`)];
  console.log(header.map((h) => h.padStart(10)).join(""));
  for (const arch of o.archs) {
    const pt = peer.get(arch);
    const cells = [arch];
    for (const b of o.backends) {
      const r = rows.find((x) => x.arch === arch && x.backend === b);
      cells.push(r ? r.imgPerS.toFixed(1) : "-");
    }
    cells.push(pt ? pt.toFixed(1) : "-");
    for (const b of o.backends) {
      const r = rows.find((x) => x.arch === arch && x.backend === b);
      cells.push(r && pt ? `${(r.imgPerS / pt).toFixed(2)}x` : "-");
    }
    console.log(cells.map((c) => c.padStart(10)).join(""));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
