/**
 * npm run bench:torch-call — what one call into the libtorch tensor addon costs (src/backend/torch/addon.ts): the
 * tfjs "torch" backend makes one per kernel, so on small tensors this overhead is the backend's floor.
 *
 *   node dist/scripts/bench-torch-call.js [--calls 100000] [--rounds 5] [--device cpu]
 *
 * Per case, the median over rounds of wall and CPU time per call (CPU time is what the process itself spent: on a
 * loaded machine wall time mostly measures the other processes). Cases: a bare handle query (the N-API round trip),
 * aten::add.Tensor on 4 floats with the default alpha and with alpha given by name, aten::neg, upload of 4 floats,
 * each followed by release. libtorch's own share of an add is not measurable from here: compare with a C++ loop
 * calling the boxed operator. PRUNEBENCH_TORCH_ADDON=path times another build.
 */
import { loadavg } from "node:os";
import { isTorchAddon, loadTorchAddon, type TorchTensor } from "../src/backend/torch/addon.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main(): void {
  const calls = Number(arg("calls", "100000"));
  const rounds = Number(arg("rounds", "5"));
  const device = arg("device", "cpu");
  const t = loadTorchAddon();
  if (!isTorchAddon(t)) throw new Error(t.error);
  t.configure({ threads: 1 });
  const x = t.upload(new Float32Array([1, 2, 3, 4]), [4], "float32", device);
  const host = new Float32Array(4);
  const cases: Record<string, () => void> = {
    "dtype (N-API round trip)": () => t.dtype(x),
    "aten::add.Tensor": () => t.release(t.call("aten::add.Tensor", [x, x]) as TorchTensor),
    "aten::add.Tensor, alpha named": () => t.release(t.call("aten::add.Tensor", [x, x], { alpha: 2 }) as TorchTensor),
    "aten::neg": () => t.release(t.call("aten::neg", [x]) as TorchTensor),
    upload: () => t.release(t.upload(host, [4], "float32", device)),
  };
  const wall: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    // Interleaved round by round, so a change in the machine's load hits every case alike.
    for (const [name, f] of Object.entries(cases)) {
      for (let i = 0; i < 2000; i++) f();
      t.synchronize(device);
      const c0 = process.cpuUsage();
      const w0 = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) f();
      t.synchronize(device);
      const w = Number(process.hrtime.bigint() - w0) / 1000 / calls;
      const c = process.cpuUsage(c0);
      (wall[name] ??= []).push(w);
      (cpu[name] ??= []).push((c.user + c.system) / calls);
    }
  }
  t.release(x);
  console.log(JSON.stringify({ torch: t.info().torchVersion, device, calls, rounds, loadavg1: loadavg()[0] }));
  for (const name of Object.keys(cases)) {
    console.log(`${name.padEnd(32)} wall ${median(wall[name]).toFixed(2).padStart(6)} µs   cpu ${median(cpu[name]).toFixed(2).padStart(6)} µs`);
  }
}

main();
