/**
 * Compute backend choice for tfjs.
 *
 * auto order: node (@tensorflow/tfjs-node, backend "tensorflow") → native (./native/, backend "native")
 * → wasm. The cpu backend is used only when asked for by name: it is 10-100x slower than the others and
 * a silent fall back to it would make every timing in a report meaningless.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { ensureGradients } from "./gradients.js";
import { registerWasmKernels } from "./wasm-kernels.js";

export { ensureGradients } from "./gradients.js";
export { registerWasmKernels } from "./wasm-kernels.js";

export const BACKEND_REQUESTS = ["auto", "node", "native", "wasm", "cpu", "torch"] as const;
export type BackendRequest = (typeof BACKEND_REQUESTS)[number];

export interface BackendInfo {
  /** The tfjs backend actually active: "tensorflow", "native", "wasm" or "cpu". */
  name: string;
  /** What was asked for ("auto" or a backend kind). */
  requested: string;
  tfjsVersion: string;
  threads: number;
  simd?: boolean;
  /** Why earlier candidates of "auto" were skipped, or other remarks. */
  note?: string;
  /** The device the backend computes on, for a person to read: "cpu", or "cuda:0 NVIDIA H100 80GB HBM3" (torch only). */
  device?: string;
}

type NativeModule = {
  registerNativeBackend(opts?: { threads?: number }): Promise<{ ok: true; threads?: number } | { ok: false; reason: string }>;
};

const require = createRequire(import.meta.url);
const cache = new Map<BackendRequest, Promise<BackendInfo>>();

/** A backend that was asked for by name cannot run here: bad input (exit 2), told before anything is planned. */
export class BackendError extends Error {
  override name = "BackendError";
}

/**
 * Fail now when a backend asked for by name (node, native) cannot start in this installation: otherwise every run of
 * a sweep fails, one by one, with the same message. auto, wasm and cpu need nothing beyond the npm install.
 */
export async function checkBackendAvailable(requested: string): Promise<void> {
  if (requested !== "node" && requested !== "native" && requested !== "torch") return;
  const r = requested === "node" ? await tryNode() : requested === "native" ? await tryNative() : await tryTorch();
  if (!r.ok) throw new BackendError(`--backend ${requested}: ${r.reason}`);
}

export function isBackendRequest(value: string): value is BackendRequest {
  return (BACKEND_REQUESTS as readonly string[]).includes(value);
}

/**
 * Selects and initialises the tfjs backend. `requested` defaults to env BENCH_BACKEND, then "auto".
 * Idempotent: a second call with the same request returns the same BackendInfo object (and re-activates
 * that backend if something switched away from it meanwhile).
 */
export async function initBackend(requested?: BackendRequest): Promise<BackendInfo> {
  const raw = requested ?? (process.env.BENCH_BACKEND?.trim() || "auto");
  if (!isBackendRequest(raw)) {
    throw new Error(`Unknown compute backend '${raw}' (from BENCH_BACKEND?); expected one of ${BACKEND_REQUESTS.join(", ")}`);
  }
  let promise = cache.get(raw);
  if (promise == null) {
    promise = select(raw);
    cache.set(raw, promise);
    promise.catch(() => cache.delete(raw));
  }
  const info = await promise;
  if (tf.getBackend() !== info.name) await activate(info.name);
  return info;
}

async function select(requested: BackendRequest): Promise<BackendInfo> {
  switch (requested) {
    case "node": {
      const r = await tryNode();
      if (!r.ok) throw new Error(r.reason);
      return r.info;
    }
    case "native": {
      const r = await tryNative();
      if (!r.ok) throw new Error(r.reason);
      return r.info;
    }
    case "torch": {
      const r = await tryTorch();
      if (!r.ok) throw new Error(r.reason);
      return r.info;
    }
    case "wasm":
      return initWasm("wasm");
    case "cpu":
      return initCpu();
    case "auto": {
      const skipped: string[] = [];
      for (const attempt of [tryNode, tryNative]) {
        const r = await attempt("auto");
        if (r.ok) return skipped.length > 0 ? { ...r.info, note: skipped.join(" | ") } : r.info;
        skipped.push(r.reason);
      }
      return initWasm("auto", skipped.join(" | "));
    }
  }
}

type Attempt = { ok: true; info: BackendInfo } | { ok: false; reason: string };

async function activate(name: string): Promise<void> {
  let ok = false;
  let why = "";
  try {
    ok = await tf.setBackend(name);
  } catch (e) {
    why = `: ${(e as Error).message}`;
  }
  if (!ok || tf.getBackend() !== name) {
    throw new Error(`tfjs backend '${name}' failed to initialise${why}`);
  }
}

/**
 * Sets the intra-op threads of the active backend for what follows and returns the count now in effect. Only the
 * native backend changes it at run time (its results do not depend on it: test/threads.test.ts); the others keep the
 * count they started with.
 */
export async function setBackendThreads(info: BackendInfo, threads: number): Promise<number> {
  if (info.name === "torch") {
    const mod = (await import(new URL("./torch/index.js", import.meta.url).href)) as TorchModule;
    const r = await mod.registerTorchBackend({ threads });
    return r.ok ? threads : info.threads;
  }
  if (info.name !== "native") return info.threads;
  const mod = (await import(new URL("./native/index.js", import.meta.url).href)) as NativeModule;
  const r = await mod.registerNativeBackend({ threads });
  return r.ok ? threads : info.threads;
}

function base(name: string, requested: BackendRequest, threads: number): BackendInfo {
  return { name, requested, tfjsVersion: tf.version_core, threads };
}

async function tryNode(requested: BackendRequest = "node"): Promise<Attempt> {
  const spec = "@tensorflow/tfjs-node";
  try {
    await import(spec);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === "ERR_MODULE_NOT_FOUND" || err.code === "MODULE_NOT_FOUND"
        ? `${spec} is not installed`
        : `${spec} failed to load (${err.message.split("\n")[0]})`;
    return {
      ok: false,
      reason:
        `node backend unavailable: ${why}. Install it with \`npm install @tensorflow/tfjs-node@${tf.version_core}\` ` +
        `(downloads libtensorflow at install time; Linux x64, macOS, Windows x64), or pass --backend wasm (or auto).`,
    };
  }
  try {
    await activate("tensorflow");
  } catch (e) {
    return { ok: false, reason: `node backend unavailable: ${(e as Error).message}` };
  }
  await ensureGradients();
  const intra = Number(process.env.TF_NUM_INTRAOP_THREADS);
  return { ok: true, info: base("tensorflow", requested, intra > 0 ? intra : availableParallelism()) };
}

const NATIVE_HINT =
  ". Build it with \`apt-get install -y libtorch-dev libdnnl-dev && npm run build:native\`, or pass --backend wasm (or auto)";

async function tryNative(requested: BackendRequest = "native"): Promise<Attempt> {
  const url = new URL("./native/index.js", import.meta.url).href;
  let mod: NativeModule;
  try {
    mod = (await import(url)) as NativeModule;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ERR_MODULE_NOT_FOUND" ? "the native module is not built (dist/src/backend/native/ missing)" : err.message.split("\n")[0];
    return { ok: false, reason: `native backend unavailable: ${why}${NATIVE_HINT}` };
  }
  let result: Awaited<ReturnType<NativeModule["registerNativeBackend"]>>;
  try {
    if (typeof mod.registerNativeBackend !== "function") throw new Error("./native/index.js exports no registerNativeBackend()");
    result = await mod.registerNativeBackend();
  } catch (e) {
    return { ok: false, reason: `native backend unavailable: ${(e as Error).message.split("\n")[0]}${NATIVE_HINT}` };
  }
  if (!result.ok) return { ok: false, reason: `native backend unavailable: ${result.reason}${NATIVE_HINT}` };
  try {
    await activate("native");
  } catch (e) {
    return { ok: false, reason: `native backend unavailable: ${(e as Error).message}` };
  }
  await ensureGradients();
  const threads = typeof result.threads === "number" && result.threads > 0 ? result.threads : 1;
  return { ok: true, info: base("native", requested, threads) };
}

type TorchModule = typeof import("./torch/index.js");

const TORCH_HINT =
  ". Build it with `apt-get install -y libtorch-dev && npm run build:torch` (or scripts/build-torch.sh --torch-dir auto " +
  "against a PyTorch install, for CUDA), or pass --backend native (or auto)";

/**
 * The "torch" backend: tensors on the libtorch device PRUNEBENCH_TORCH_DEVICE (cpu, cuda:N). Never chosen by "auto":
 * it is the GPU path, asked for by name. Threads (CPU tensors): 1, as the native backend, until setBackendThreads.
 */
async function tryTorch(): Promise<Attempt> {
  let mod: TorchModule;
  try {
    mod = (await import(new URL("./torch/index.js", import.meta.url).href)) as TorchModule;
  } catch (e) {
    return { ok: false, reason: `torch backend unavailable: ${(e as Error).message.split("\n")[0]}${TORCH_HINT}` };
  }
  const r = await mod.registerTorchBackend();
  if (!r.ok) return { ok: false, reason: `torch backend unavailable: ${r.reason}${TORCH_HINT}` };
  try {
    await activate(mod.TORCH_BACKEND);
  } catch (e) {
    return { ok: false, reason: `torch backend unavailable: ${(e as Error).message}` };
  }
  await ensureGradients();
  return { ok: true, info: { ...base(mod.TORCH_BACKEND, "torch", 1), device: r.deviceName } };
}

async function initWasm(requested: BackendRequest, note?: string): Promise<BackendInfo> {
  let wasm: typeof import("@tensorflow/tfjs-backend-wasm");
  try {
    wasm = await import("@tensorflow/tfjs-backend-wasm");
    if (tf.findBackend("wasm") == null) {
      // Point the loader at the package's own dist/ folder, wherever our dist/ lives.
      const dir = dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
      try {
        wasm.setWasmPaths(join(dir, "/"));
      } catch {
        // Already initialised through another path: its own locator found the binary.
      }
    }
    registerWasmKernels();
    await activate("wasm");
  } catch (e) {
    const oom = wasmOutOfMemory();
    if (oom) throw new Error(oom);
    throw new Error(
      `wasm backend failed to initialise (${(e as Error).message.split("\n")[0]}). ` +
        `Check that @tensorflow/tfjs-backend-wasm ${tf.version_core} is installed with its .wasm files. ` +
        (note ? `Other backends: ${note}. ` : "") +
        `The slow cpu backend is never chosen automatically: use BENCH_BACKEND=cpu (or --backend cpu) to run on it.`,
    );
  }
  await ensureGradients();
  const info = base("wasm", requested, wasm.getThreadsCount());
  info.simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
  if (note) info.note = note;
  return info;
}

/**
 * WebAssembly reserves gigabytes of address space per memory, so under `ulimit -v` the wasm backend fails to start
 * with a generic error although it is installed: find out whether that is why, and say so.
 */
function wasmOutOfMemory(): string | null {
  try {
    new WebAssembly.Memory({ initial: 1 });
    return null;
  } catch {
    let limit = "";
    try {
      const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max address space"));
      const bytes = Number(line?.trim().split(/\s+/)[3]);
      if (Number.isFinite(bytes)) limit = ` (this process may use ${(bytes / 2 ** 30).toFixed(1)} GiB of address space: ulimit -v ${bytes / 1024})`;
    } catch {
      // Not Linux: no /proc to read the limit from.
    }
    return `out of memory: the wasm backend could not reserve its memory${limit}. WebAssembly reserves about 10 GiB of ` +
      `virtual address space per instance: raise or remove the limit (\`ulimit -v unlimited\`), or use --backend native.`;
  }
}

async function initCpu(): Promise<BackendInfo> {
  await import("@tensorflow/tfjs-backend-cpu");
  await activate("cpu");
  // It was asked for by name: skip tfjs' "install tfjs-node" banner on its first tensor.
  const cpu = tf.backend() as unknown as { firstUse?: boolean };
  if (typeof cpu.firstUse === "boolean") cpu.firstUse = false;
  await ensureGradients();
  return { ...base("cpu", "cpu", 1), note: "cpu backend (explicitly requested): slow reference implementation" };
}
