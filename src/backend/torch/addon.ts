// Loading of the libtorch tensor addon (native/build/Release/prunebench_torch.node, built by scripts/build-torch.sh
// from native/src/torch_*.cc) and its interface: the contract of the GPU design (issue #16) that the "torch" tfjs
// backend builds on. Tensors stay inside libtorch (on the CPU or a CUDA device); JS holds opaque handles.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { packageRoot } from "../../core/locations.js";

export type TorchDtype = "float32" | "int32" | "bool";
export interface TorchTensor { readonly __torchTensor: unique symbol } // opaque napi_wrap'd handle
export interface TorchDeviceInfo { index: number; name: string; totalMemoryBytes: number; capability?: string }
export interface TorchAddon {
  /** libtorch build facts: version, cuda/cudnn versions (null on CPU builds), cudaAvailable, devices. */
  info(): { torchVersion: string; cudaVersion: string | null; cudnnVersion: number | null; cudaAvailable: boolean; devices: TorchDeviceInfo[] };
  /** Process-wide settings, applied before any work: deterministic algorithms (cuDNN deterministic, benchmark off,
   *  CUBLAS_WORKSPACE_CONFIG), TF32 off unless allowTF32, intra-op threads for CPU tensors. */
  configure(opts: { deterministic?: boolean; allowTF32?: boolean; threads?: number }): void;
  /** Copies host data to a new tensor on `device` ("cpu" | "cuda:N"). */
  upload(values: Float32Array | Int32Array | Uint8Array, shape: number[], dtype: TorchDtype, device: string): TorchTensor;
  /** Copies a tensor to host memory (Float32Array / Int32Array / Uint8Array for bool). Other libtorch dtypes that ops
   *  may return come back converted: floating ones (float64, float16, ...) as Float32Array, integer ones (int64, ...)
   *  as Int32Array. */
  download(t: TorchTensor): Float32Array | Int32Array | Uint8Array;
  /** Calls an ATen operator by schema name ("aten::conv2d", "aten::add.Tensor", "aten::max_pool2d_with_indices_backward"),
   *  boxed: positional args then named args, each converted by the schema's argument type (number -> int/float/Scalar,
   *  number[] -> int[], TorchTensor -> Tensor, TorchTensor[] -> Tensor[], null -> None, boolean -> bool,
   *  string dtype name -> ScalarType); arguments not given take the schema's default. Returns a TorchTensor, an array
   *  for tuple/list returns, a number/boolean for scalar returns, null for None. Throws a JS Error naming the op and
   *  the argument for an unknown op or a bad argument. Operator handles are cached by name.
   *
   *  Details: undefined (by position or by name) is "not given": the schema's default; a Scalar given as an integral number is an integer Scalar (as a Python int is), otherwise a double;
   *  a single number stands for a fixed-size int list ("int[2] stride=1"); bool[] takes boolean[]; Tensor?[] takes
   *  (TorchTensor | null)[]; str takes a string, Device "cpu"/"cuda:N", MemoryFormat "contiguous"/"channels_last"/
   *  "preserve". An undefined tensor in a return (e.g. convolution_backward with output_mask false) is null. */
  call(op: string, args: unknown[], named?: Record<string, unknown>): unknown;
  /** dtype() names libtorch's other dtypes by their torch names ("int64", "float64", ...), beyond TorchDtype. */
  shape(t: TorchTensor): number[]; dtype(t: TorchTensor): TorchDtype; device(t: TorchTensor): string;
  /** Frees the tensor now (its memory returns to libtorch's allocator); a GC finalizer is only a safety net.
   *  Any later use of the handle, release included, throws "tensor already released". An array frees each of
   *  its tensors in one call. */
  release(t: TorchTensor | TorchTensor[]): void;
  /** Waits for the device's queued work (timing); no-op on CPU. */
  synchronize(device: string): void;
  /** Tensors and bytes held by live handles (leak tests): all devices, or only `device` ("cpu", "cuda:0") when given.
   *  bytes = the handles' element counts times element sizes (a view counts its own size). */
  liveTensors(device?: string): { count: number; bytes: number };
}

/** Path of the compiled addon; PRUNEBENCH_TORCH_ADDON overrides it. */
export function torchAddonPath(): string {
  const env = process.env.PRUNEBENCH_TORCH_ADDON;
  if (env) return resolve(env);
  return join(packageRoot(), "native", "build", "Release", "prunebench_torch.node");
}

let cached: TorchAddon | { error: string } | undefined;

/** Loads the addon once; never throws: the addon, or why there is none. */
export function loadTorchAddon(): TorchAddon | { error: string } {
  if (cached) return cached;
  let path: string;
  try {
    path = torchAddonPath();
  } catch (e) {
    return (cached = { error: (e as Error).message });
  }
  if (!existsSync(path)) {
    return (cached = { error: `torch addon not built: ${path} is missing (run npm run build:torch; see scripts/build-torch.sh)` });
  }
  try {
    const addon = createRequire(import.meta.url)(path) as TorchAddon;
    const missing = ["info", "configure", "upload", "download", "call", "shape", "dtype", "device", "release", "synchronize", "liveTensors"]
      .filter((k) => typeof (addon as unknown as Record<string, unknown>)[k] !== "function");
    if (missing.length > 0) return (cached = { error: `torch addon at ${path} lacks ${missing.join(", ")} (rebuild it: npm run build:torch)` });
    return (cached = addon);
  } catch (e) {
    return (cached = { error: `torch addon at ${path} failed to load: ${(e as Error).message}` });
  }
}

/** Narrows loadTorchAddon()'s result. */
export function isTorchAddon(x: TorchAddon | { error: string }): x is TorchAddon {
  return !("error" in x);
}
