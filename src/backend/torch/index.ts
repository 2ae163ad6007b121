// The "torch" tfjs backend: every tensor's data is a libtorch tensor on one device (PRUNEBENCH_TORCH_DEVICE: "cpu" or
// "cuda:N"), kernels are short mappings to ATen operators through the addon (src/backend/torch/addon.ts), so a
// training step never copies weights or activations between host and device. Kernels without a mapping run the cpu
// backend's kernel on host copies (a "host fallback", counted per kernel name: torchBackendStats()).

import * as tf from "@tensorflow/tfjs-core";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { loadTorchAddon, type TorchAddon, type TorchDtype, type TorchTensor } from "./addon.js";
import { registerComposedKernels } from "../fused-ops.js";
import { fusedBackends, registerComposedLayerKernels } from "../layer-ops.js";
import { registerComposedSparseKernels } from "../sparse-ops.js";
import { torchKernels } from "./kernels.js";
import { torchFusedKernels } from "./kernels-fused.js";
import { registerTorchGradients, torchGradientKernels } from "./gradients.js";
import { ensureGradients } from "../gradients.js";

export const TORCH_BACKEND = "torch";

interface Entry {
  /** The tensor on the backend's device; null until first used (write() keeps host values until a kernel needs them). */
  t: TorchTensor | null;
  /** Host values: a write() not yet uploaded, a rank-0 tensor (kept: see `scalarOf`), or strings (never uploaded). */
  host: tf.backend_util.BackendValues | null;
  /** A rank-0 tensor's copy on the CPU, which ATen's elementwise ops take beside tensors on any device. */
  cpuScalar: TorchTensor | null;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
}

const TORCH_DTYPES: ReadonlySet<string> = new Set(["float32", "int32", "bool"]);

/** Host fallbacks and other counters, process-wide (a test asserts zero fallbacks during training). */
const stats = { fallbacks: 0, fallbackKernels: new Map<string, number>() };

export interface TorchBackendStats {
  /** Kernels run on host copies through the cpu backend, in all and by kernel name. */
  fallbacks: number;
  fallbackKernels: Record<string, number>;
}

export function torchBackendStats(): TorchBackendStats {
  return { fallbacks: stats.fallbacks, fallbackKernels: Object.fromEntries(stats.fallbackKernels) };
}

export function resetTorchBackendStats(): void {
  stats.fallbacks = 0;
  stats.fallbackKernels.clear();
}

export class TorchBackend extends tf.KernelBackend {
  private readonly data = new WeakMap<object, Entry>();
  private count = 0;
  /** Intermediate tensors of the kernels running now (one list per nesting level), released when each ends. */
  private readonly scopes: TorchTensor[][] = [];
  /** Tensors a kernel returns: not released with its scope. */
  private readonly kept = new Set<TorchTensor>();
  /** Side outputs a kernel leaves for a later one (MaxPool's argmax indices for MaxPoolGrad), by output dataId. */
  readonly side = new WeakMap<object, TorchTensor>();
  /** Constant tensors kept on the device (e.g. 0..n-1 for one-hot), by key. */
  private readonly constants = new Map<string, TorchTensor>();

  constructor(readonly addon: TorchAddon, readonly device: string) {
    super();
  }

  // ---- storage -------------------------------------------------------------------------------------------------

  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): object {
    const dataId = {};
    this.data.set(dataId, { t: null, host: values, cpuScalar: null, shape, dtype, refCount: 1 });
    this.count++;
    return dataId;
  }

  override move(dataId: object, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    if (!this.data.has(dataId)) this.count++;
    this.data.set(dataId, { t: null, host: values, cpuScalar: null, shape, dtype, refCount });
  }

  override refCount(dataId: object): number {
    return this.data.get(dataId)?.refCount ?? 0;
  }

  override incRef(dataId: object): void {
    const e = this.data.get(dataId);
    if (e) e.refCount++;
  }

  override numDataIds(): number {
    return this.count;
  }

  override disposeData(dataId: object, force = false): boolean {
    const e = this.data.get(dataId);
    if (!e) return true;
    e.refCount--;
    if (!force && e.refCount > 0) return false;
    if (e.t) this.addon.release(e.t);
    if (e.cpuScalar) this.addon.release(e.cpuScalar);
    const side = this.side.get(dataId);
    if (side) {
      this.addon.release(side);
      this.side.delete(dataId);
    }
    this.data.delete(dataId);
    this.count--;
    return true;
  }

  override readSync(dataId: object): tf.backend_util.BackendValues {
    const e = this.entry(dataId);
    if (e.host) return e.host;
    return this.addon.download(e.t!);
  }

  override async read(dataId: object): Promise<tf.backend_util.BackendValues> {
    return this.readSync(dataId);
  }

  override memory(): { unreliable: boolean; reasons?: string[] } {
    return { unreliable: false };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override timerAvailable(): boolean {
    return true;
  }

  override async time(f: () => void): Promise<tf.BackendTimingInfo> {
    const t0 = performance.now();
    f();
    this.addon.synchronize(this.device);
    return { kernelMs: performance.now() - t0 };
  }

  override dispose(): void {
    for (const t of this.constants.values()) this.addon.release(t);
    this.constants.clear();
  }

  private entry(dataId: object): Entry {
    const e = this.data.get(dataId);
    if (!e) throw new Error("torch backend: tensor data not found (disposed, or owned by another backend)");
    return e;
  }

  // ---- what kernels use ----------------------------------------------------------------------------------------

  /** The device tensor of a kernel input, uploaded at its first use. */
  t(info: tf.TensorInfo): TorchTensor {
    const e = this.entry(info.dataId);
    if (e.t) return e.t;
    if (!TORCH_DTYPES.has(e.dtype)) throw new Error(`torch backend: ${e.dtype} tensors have no torch kernels`);
    const host = e.host as Float32Array | Int32Array | Uint8Array;
    e.t = this.addon.upload(host, e.shape, e.dtype as TorchDtype, this.device);
    // A rank-0 tensor keeps its host value: reading a scalar back (losses, counts) is then free, and ATen takes it
    // from the CPU beside device tensors (`scalarOf`).
    if (e.shape.length > 0) e.host = null;
    return e.t;
  }

  /**
   * Like `t`, but a rank-0 tensor that lives on the host (a constant such as tf.mul(x, 2)'s 2) comes as a CPU tensor:
   * ATen's elementwise operators take 0-dim CPU tensors beside tensors on any device, so no host-to-device copy
   * (which synchronizes the stream) is made. Only for elementwise operators' second inputs.
   */
  scalarOf(info: tf.TensorInfo): TorchTensor {
    const e = this.entry(info.dataId);
    if (e.t || this.device === "cpu" || e.shape.length > 0 || !e.host || !TORCH_DTYPES.has(e.dtype)) return this.t(info);
    e.cpuScalar ??= this.addon.upload(e.host as Float32Array | Int32Array | Uint8Array, [], e.dtype as TorchDtype, "cpu");
    return e.cpuScalar;
  }

  /** Runs an ATen operator; tensors it returns are released when the running kernel ends unless returned by `out`. */
  call(op: string, args: unknown[], named?: Record<string, unknown>): TorchTensor {
    const r = this.addon.call(op, args, named);
    this.track(r);
    return r as TorchTensor;
  }

  /** `call` for operators that return several tensors. */
  callN(op: string, args: unknown[], named?: Record<string, unknown>): TorchTensor[] {
    const r = this.addon.call(op, args, named);
    this.track(r);
    return r as TorchTensor[];
  }

  private track(r: unknown): void {
    const scope = this.scopes[this.scopes.length - 1];
    if (!scope) return;
    if (Array.isArray(r)) {
      for (const x of r) if (x != null && typeof x === "object") scope.push(x as TorchTensor);
    } else if (r != null && typeof r === "object") scope.push(r as TorchTensor);
  }

  /** A kernel output: a new dataId holding `t` (shape from libtorch unless given). */
  out(t: TorchTensor, dtype: tf.DataType, shape?: number[]): tf.TensorInfo {
    this.kept.add(t);
    const s = shape ?? this.addon.shape(t);
    const dataId = {};
    this.data.set(dataId, { t, host: null, cpuScalar: null, shape: s, dtype, refCount: 1 });
    this.count++;
    return { dataId, shape: s, dtype };
  }

  /** A kernel output made from host values (small results computed in JS). */
  outHost(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): tf.TensorInfo {
    return { dataId: this.write(values, shape, dtype), shape, dtype };
  }

  /** Keeps `t` past the running kernel (a side output such as pooling indices). */
  keep(t: TorchTensor): TorchTensor {
    this.kept.add(t);
    return t;
  }

  /** A constant on the device, made once by `make` (host values) and kept until the backend is disposed. */
  constant(key: string, make: () => { values: Float32Array | Int32Array | Uint8Array; shape: number[]; dtype: TorchDtype }): TorchTensor {
    let c = this.constants.get(key);
    if (!c) {
      const { values, shape, dtype } = make();
      c = this.addon.upload(values, shape, dtype, this.device);
      this.constants.set(key, c);
    }
    return c;
  }

  /** Runs a kernel body with its own scope of intermediate tensors. */
  run<T>(f: () => T): T {
    const scope: TorchTensor[] = [];
    this.scopes.push(scope);
    try {
      return f();
    } finally {
      this.scopes.pop();
      const done: TorchTensor[] = [];
      for (const t of scope) {
        if (this.kept.has(t)) this.kept.delete(t);
        else done.push(t);
      }
      if (done.length > 0) this.addon.release(done.length === 1 ? done[0] : done);
    }
  }

  // ---- host fallback -------------------------------------------------------------------------------------------

  private cpu: MathBackendCPU | null = null;

  /** Runs the cpu backend's kernel `name` on host copies of the inputs and uploads its outputs (lazily). */
  fallback(name: string, kernel: tf.KernelFunc, args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | tf.TensorInfo[] {
    stats.fallbacks++;
    stats.fallbackKernels.set(name, (stats.fallbackKernels.get(name) ?? 0) + 1);
    if (!this.cpu) {
      this.cpu = new MathBackendCPU();
      (this.cpu as unknown as { firstUse: boolean }).firstUse = false;
    }
    const cpu = this.cpu;
    const inputs: Record<string, tf.TensorInfo> = {};
    const made: object[] = [];
    for (const [k, info] of Object.entries(args.inputs)) {
      if (info == null) continue;
      const dataId = cpu.write(this.readSync(info.dataId), info.shape, info.dtype);
      made.push(dataId);
      inputs[k] = { dataId, shape: info.shape, dtype: info.dtype };
    }
    try {
      const r = kernel({ inputs, attrs: args.attrs, backend: cpu });
      const outs = Array.isArray(r) ? r : [r];
      const mine = outs.map((o) => this.outHost(cpu.readSync(o.dataId), o.shape, o.dtype));
      for (const o of outs) cpu.disposeData(o.dataId, true);
      return Array.isArray(r) ? mine : mine[0];
    } finally {
      for (const d of made) cpu.disposeData(d, true);
    }
  }
}

export type TorchKernel = (args: { inputs: Record<string, tf.TensorInfo>; attrs: tf.NamedAttrMap; backend: TorchBackend }) => tf.TensorInfo | tf.TensorInfo[];

/** The device from PRUNEBENCH_TORCH_DEVICE ("cpu" unless set), checked against what the addon sees. */
export function torchDevice(addon: TorchAddon, env: NodeJS.ProcessEnv = process.env): string {
  const d = (env.PRUNEBENCH_TORCH_DEVICE ?? "").trim() || "cpu";
  if (d === "cpu") return d;
  const m = /^cuda(?::(\d+))?$/.exec(d);
  if (!m) throw new Error(`PRUNEBENCH_TORCH_DEVICE=${d}: expected cpu or cuda:N`);
  const info = addon.info();
  if (!info.cudaAvailable) {
    throw new Error(`PRUNEBENCH_TORCH_DEVICE=${d}, but this libtorch (${info.torchVersion}) ${info.cudaVersion ? "sees no CUDA device" : "is a CPU-only build"}`);
  }
  const index = Number(m[1] ?? 0);
  if (!info.devices.some((x) => x.index === index)) {
    throw new Error(`PRUNEBENCH_TORCH_DEVICE=${d}: no such device (libtorch sees ${info.devices.map((x) => `cuda:${x.index}`).join(", ") || "none"})`);
  }
  return `cuda:${index}`;
}

/** A human-readable name of the device: "cpu", or "cuda:0 NVIDIA H100 80GB HBM3". */
export function torchDeviceName(addon: TorchAddon, device: string): string {
  if (device === "cpu") return "cpu";
  const index = Number(device.split(":")[1] ?? 0);
  const d = addon.info().devices.find((x) => x.index === index);
  return d ? `${device} ${d.name}` : device;
}

function envFlag(name: string, fallback: boolean): boolean {
  const v = process.env[name]?.trim();
  if (v == null || v === "") return fallback;
  return !(v === "0" || v.toLowerCase() === "false" || v.toLowerCase() === "no");
}

let registered: { ok: true; device: string; deviceName: string; addon: TorchAddon } | { ok: false; reason: string } | undefined;

/** Names of the kernels the torch backend maps to ATen (everything else it runs as a host fallback). */
export const torchKernelNames: string[] = [];

export function isTorch(): boolean {
  return tf.getBackend() === TORCH_BACKEND;
}

/**
 * Loads the addon, configures libtorch (PRUNEBENCH_TORCH_DETERMINISTIC, default 1; PRUNEBENCH_TORCH_TF32, default 0;
 * `threads` intra-op threads for CPU tensors, default 1) and registers the "torch" backend (priority 0: only used when
 * selected). Never throws; idempotent (a later call may change the thread count).
 */
export async function registerTorchBackend(opts: { threads?: number } = {}): Promise<
  { ok: true; device: string; deviceName: string } | { ok: false; reason: string }
> {
  if (registered?.ok) {
    if (opts.threads != null) registered.addon.configure({ threads: Math.max(1, Math.floor(opts.threads)) });
    return registered;
  }
  try {
    const loaded = loadTorchAddon();
    if ("error" in loaded) return (registered = { ok: false, reason: loaded.error });
    const addon = loaded;
    const device = torchDevice(addon);
    addon.configure({
      deterministic: envFlag("PRUNEBENCH_TORCH_DETERMINISTIC", true),
      allowTF32: envFlag("PRUNEBENCH_TORCH_TF32", false),
      threads: Math.max(1, Math.floor(opts.threads ?? 1)),
    });
    await import("@tensorflow/tfjs-backend-cpu");
    const cpuKernels = tf.getKernelsForBackend("cpu");
    if (cpuKernels.length === 0) return (registered = { ok: false, reason: "no cpu kernels registered (tfjs-backend-cpu not loaded)" });
    if (!tf.findBackendFactory(TORCH_BACKEND)) tf.registerBackend(TORCH_BACKEND, () => new TorchBackend(addon, device), 0);

    const mapped: Record<string, TorchKernel> = { ...torchKernels, ...torchFusedKernels, ...torchGradientKernels };
    const already = new Set(tf.getKernelsForBackend(TORCH_BACKEND).map((c) => c.kernelName));
    for (const [kernelName, fn] of Object.entries(mapped)) {
      if (already.has(kernelName)) continue;
      tf.registerKernel({
        kernelName,
        backendName: TORCH_BACKEND,
        kernelFunc: ((args: Parameters<TorchKernel>[0]) => args.backend.run(() => fn(args))) as unknown as tf.KernelFunc,
      });
      torchKernelNames.push(kernelName);
      already.add(kernelName);
    }
    // The project's own kernels this backend does not map run their composed tfjs ops, i.e. torch kernels.
    registerComposedKernels(TORCH_BACKEND);
    registerComposedLayerKernels(TORCH_BACKEND);
    registerComposedSparseKernels(TORCH_BACKEND);
    for (const c of cpuKernels) {
      if (already.has(c.kernelName) || tf.getKernel(c.kernelName, TORCH_BACKEND) != null) continue;
      const kernel = c.kernelFunc;
      tf.registerKernel({
        kernelName: c.kernelName,
        backendName: TORCH_BACKEND,
        kernelFunc: ((args: Parameters<tf.KernelFunc>[0]) => (args.backend as TorchBackend).fallback(c.kernelName, kernel, args)) as tf.KernelFunc,
      });
    }
    // Conv and dense layers with bias and ReLU, and the loss, run as one kernel each (fewer launches on a GPU).
    fusedBackends.add(TORCH_BACKEND);
    await ensureGradients();
    registerTorchGradients();
    registered = { ok: true, device, deviceName: torchDeviceName(addon, device), addon };
    return { ok: true, device, deviceName: registered.deviceName };
  } catch (e) {
    return (registered = { ok: false, reason: `torch backend registration failed: ${(e as Error).message}` });
  }
}

/** The addon behind the registered backend (tests: liveTensors). */
export function torchAddon(): TorchAddon | null {
  return registered?.ok ? registered.addon : null;
}
