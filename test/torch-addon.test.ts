// The libtorch tensor addon (native/src/torch_addon.cc, scripts/build-torch.sh) on CPU tensors: handles, boxed ATen
// calls by schema name, errors, release and the GC safety net, and the build script's flags for a PyTorch install.
// Where libtorch is installed the addon must be built: a missing or broken addon fails here instead of skipping
// (CI installs libtorch-dev); elsewhere the addon tests skip.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isTorchAddon, loadTorchAddon, torchAddonPath, type TorchAddon, type TorchTensor } from "../src/backend/torch/addon.js";

const BUILD = fileURLToPath(new URL("../../scripts/build-torch.sh", import.meta.url));
const loaded = loadTorchAddon();
const libtorchHere = existsSync("/usr/include/ATen/ATen.h") || !!process.env.PRUNEBENCH_TORCH_DIR;
const skip = isTorchAddon(loaded) ? false : `torch addon unavailable: ${loaded.error}`;
const T = (isTorchAddon(loaded) ? loaded : null) as TorchAddon;

test("the torch addon is built and loads wherever libtorch is installed", { skip: !libtorchHere && "libtorch is not installed here" }, () => {
  assert.ok(isTorchAddon(loaded), `libtorch is installed but the torch addon is unusable: ${(loaded as { error: string }).error}`);
});

function download(t: unknown): number[] {
  return Array.from(T.download(t as TorchTensor));
}

/** Releases every handle given, in arrays too (tuple and list returns). */
function releaseAll(...xs: unknown[]): void {
  for (const x of xs) {
    if (Array.isArray(x)) releaseAll(...x);
    else if (x !== null && typeof x === "object") T.release(x as TorchTensor);
  }
}

test("upload/download round trip: float32, int32, bool; 0-d and empty shapes", { skip }, () => {
  const start = T.liveTensors();
  const cases: Array<[Float32Array | Int32Array | Uint8Array, number[], "float32" | "int32" | "bool"]> = [
    [new Float32Array([1.5, -2.25, 3e-8, 4e30, -0, 6]), [2, 3], "float32"],
    [new Int32Array([7, -8, 2147483647, -2147483648]), [4, 1], "int32"],
    [new Uint8Array([1, 0, 0, 1, 1]), [5], "bool"],
    [new Float32Array([42]), [], "float32"],
    [new Int32Array([]), [0, 3], "int32"],
    [new Uint8Array([]), [2, 0], "bool"],
  ];
  for (const [values, shape, dtype] of cases) {
    const t = T.upload(values, shape, dtype, "cpu");
    assert.deepEqual(T.shape(t), shape);
    assert.equal(T.dtype(t), dtype);
    assert.equal(T.device(t), "cpu");
    const back = T.download(t);
    assert.equal(back.constructor, values.constructor, `${dtype} comes back as ${values.constructor.name}`);
    assert.deepEqual(Array.from(back), Array.from(values));
    T.release(t);
  }
  // A bool upload normalises any non-zero byte to true.
  const b = T.upload(new Uint8Array([0, 7, 255]), [3], "bool", "cpu");
  assert.deepEqual(download(b), [0, 1, 1]);
  T.release(b);
  assert.deepEqual(T.liveTensors(), start);
});

test("upload refuses a mismatched array type, a shape that does not fit, a bad dtype or device", { skip }, () => {
  assert.throws(() => T.upload(new Int32Array(4), [4], "float32", "cpu"), /upload: dtype float32 takes a Float32Array/);
  assert.throws(() => T.upload(new Float32Array(5), [2, 2], "float32", "cpu"), /shape holds 4 elements but values has 5/);
  assert.throws(() => T.upload(new Float32Array(1), [1], "complex64" as never, "cpu"), /dtype 'complex64' is not one of float32, int32, bool/);
  assert.throws(() => T.upload(new Float32Array(1), [1], "float32", "tpu:0"), /bad device 'tpu:0'/);
  const gpus = T.info().devices.length;
  assert.throws(() => T.upload(new Float32Array(1), [1], "float32", `cuda:${gpus}`), /upload: device 'cuda:\d+' is not available: /);
});

test("call: add.Tensor fills the default alpha; named args; a Scalar; dtype strings", { skip }, () => {
  const a = T.upload(new Float32Array([1, 2, 3, 4]), [2, 2], "float32", "cpu");
  const b = T.upload(new Float32Array([10, 20, 30, 40]), [2, 2], "float32", "cpu");
  const sum = T.call("aten::add.Tensor", [a, b]);
  assert.deepEqual(download(sum), [11, 22, 33, 44]);
  const scaled = T.call("aten::add.Tensor", [a, b], { alpha: 0.5 }); // a Scalar given by name
  assert.deepEqual(download(scaled), [6, 12, 18, 24]);
  const half = T.call("aten::mul.Scalar", [a, 0.5]); // a Scalar given by position
  assert.deepEqual(download(half), [0.5, 1, 1.5, 2]);
  // An integral Scalar keeps an int tensor int, as a Python int does; a fractional one promotes it.
  const ints = T.upload(new Int32Array([1, 2]), [2], "int32", "cpu");
  const timesTwo = T.call("aten::mul.Scalar", [ints, 2]);
  assert.equal(T.dtype(timesTwo as TorchTensor), "int32");
  const timesHalf = T.call("aten::mul.Scalar", [ints, 0.5]);
  assert.equal(T.dtype(timesHalf as TorchTensor), "float32");
  // dtype strings: aten::sum.dim_IntList's keyword-only ScalarType? and aten::to.dtype's ScalarType.
  const rowSums = T.call("aten::sum.dim_IntList", [a, [1]], { dtype: "int64" });
  assert.equal(T.dtype(rowSums as TorchTensor), "int64");
  assert.deepEqual(download(rowSums), [3, 7], "int64 downloads as Int32Array values");
  const asInt = T.call("aten::to.dtype", [a, "int32"]);
  assert.equal(T.dtype(asInt as TorchTensor), "int32");
  const asBool = T.call("aten::to.dtype", [a], { dtype: "bool" });
  assert.equal(T.dtype(asBool as TorchTensor), "bool");
  // A bool-returning and a number-returning op.
  assert.equal(T.call("aten::equal", [a, a]), true);
  assert.equal(T.call("aten::size.int", [a, 1]), 2);
  releaseAll(a, b, sum, scaled, half, ints, timesTwo, timesHalf, rowSums, asInt, asBool);
});

test("call: conv2d with its defaults, an int list, an optional None, and a tuple return", { skip }, () => {
  const x = T.upload(Float32Array.from({ length: 16 }, (_, i) => i), [1, 1, 4, 4], "float32", "cpu");
  const w = T.upload(new Float32Array(9).fill(1), [1, 1, 3, 3], "float32", "cpu");
  // bias=None, stride=1, padding=0, dilation=1, groups=1 from the schema: the 2x2 valid 3x3 box sums.
  const valid = T.call("aten::conv2d", [x, w]);
  assert.deepEqual(T.shape(valid as TorchTensor), [1, 1, 2, 2]);
  assert.deepEqual(download(valid), [45, 54, 81, 90]);
  // int[2] padding given as a list, bias as an explicit null; one integer also stands for an int[2].
  const padded = T.call("aten::conv2d", [x, w, null, [1, 1], [1, 1]]);
  const padded1 = T.call("aten::conv2d", [x, w], { padding: 1 });
  assert.deepEqual(T.shape(padded as TorchTensor), [1, 1, 4, 4]);
  assert.deepEqual(download(padded), [10, 18, 24, 18, 27, 45, 54, 39, 51, 81, 90, 63, 42, 66, 72, 50]);
  assert.deepEqual(download(padded1), download(padded));
  // undefined is "not given": the schema's default (stride=1 here), as a skipped named argument would be.
  const skipped = T.call("aten::conv2d", [x, w, undefined, undefined, 1]);
  assert.deepEqual(download(skipped), download(padded));
  const pooled = T.call("aten::max_pool2d_with_indices", [x, [2, 2]]);
  assert.ok(Array.isArray(pooled) && pooled.length === 2, "a tuple return is an array");
  const [values, indices] = pooled as TorchTensor[];
  assert.deepEqual(download(values), [5, 7, 13, 15]);
  assert.equal(T.dtype(indices), "int64");
  assert.deepEqual(download(indices), [5, 7, 13, 15]);
  // A list return, and a Tensor[] argument.
  const parts = T.call("aten::split.Tensor", [x, 2, 2]) as TorchTensor[];
  assert.equal(parts.length, 2);
  const joined = T.call("aten::cat", [parts, 2]);
  assert.deepEqual(download(joined), download(x));
  // bool[3] output_mask; a gradient not asked for comes back as null.
  const dy = T.upload(new Float32Array(4).fill(1), [1, 1, 2, 2], "float32", "cpu");
  const grads = T.call("aten::convolution_backward", [dy, x, w, null, [1, 1], [0, 0], [1, 1], false, [0, 0], 1, [true, true, false]]) as unknown[];
  assert.equal(grads.length, 3);
  assert.equal(grads[2], null);
  assert.deepEqual(download(grads[1]), [10, 14, 18, 26, 30, 34, 42, 46, 50]);
  releaseAll(x, w, valid, padded, padded1, skipped, pooled, parts, joined, dy, grads);
});

test("call errors name the op and the argument (and show the schema)", { skip }, () => {
  const a = T.upload(new Float32Array([1, 2]), [2], "float32", "cpu");
  assert.throws(() => T.call("aten::no_such_op", [a]), /unknown operator 'aten::no_such_op'/);
  assert.throws(() => T.call("aten::add.NoSuchOverload", [a, a]), /unknown operator 'aten::add\.NoSuchOverload'/);
  assert.throws(() => T.call("add", [a, a]), /unknown operator 'add' \(names carry a namespace, e\.g\. "aten::add"\)/);
  assert.throws(() => T.call("aten::add.Tensor", [a, "x"]), (e: Error) =>
    /call aten::add\.Tensor: argument 'other': expected a TorchTensor handle/.test(e.message) && /schema: aten::add\.Tensor\(Tensor self, Tensor other/.test(e.message));
  assert.throws(() => T.call("aten::conv2d", [a, a, null, [1, 1.5]]), /call aten::conv2d: argument 'stride': element 1: expected an integer/);
  assert.throws(() => T.call("aten::sum.dim_IntList", [a, [0]], { dtype: "float8" }), /argument 'dtype': unknown dtype 'float8'/);
  assert.throws(() => T.call("aten::add.Tensor", [a]), /argument 'other': missing \(it has no default\)/);
  assert.throws(() => T.call("aten::add.Tensor", [a, undefined]), /argument 'other': missing \(it has no default\)/);
  assert.throws(() => T.call("aten::add.Tensor", [a, a], { alhpa: 2 }), /argument 'alhpa': no such argument/);
  assert.throws(() => T.call("aten::add.Tensor", [a, a, 2]), /3 positional arguments given, at most 2 taken/);
  // An error inside the operator itself names the op too.
  const b = T.upload(new Float32Array(3), [3], "float32", "cpu");
  assert.throws(() => T.call("aten::add.Tensor", [a, b]), /call aten::add\.Tensor: .*size of tensor a \(2\) must match/);
  releaseAll(a, b);
});

test("release frees at once; any later use is a clear error; liveTensors returns to its start", { skip }, () => {
  const start = T.liveTensors();
  const a = T.upload(new Float32Array(1000), [10, 100], "float32", "cpu");
  const b = T.call("aten::relu", [a]) as TorchTensor;
  const during = T.liveTensors();
  assert.equal(during.count, start.count + 2);
  assert.equal(during.bytes, start.bytes + 8000);
  assert.deepEqual(T.liveTensors("cpu"), during);
  assert.deepEqual(T.liveTensors("cuda:0"), { count: 0, bytes: 0 });
  T.release(a);
  assert.throws(() => T.download(a), /download: tensor already released/);
  assert.throws(() => T.shape(a), /tensor already released/);
  assert.throws(() => T.call("aten::relu", [a]), /call aten::relu: argument 'self': tensor already released/);
  assert.throws(() => T.call("aten::cat", [[b, a]]), /argument 'tensors': element 1: tensor already released/);
  assert.throws(() => T.release(a), /release: tensor already released/);
  assert.deepEqual(download(b), new Array(1000).fill(0), "a result outlives the input it was computed from");
  T.release(b);
  assert.deepEqual(T.liveTensors(), start);
  assert.throws(() => T.release({} as TorchTensor), /expected a TorchTensor handle/);
  // An array frees every tensor in it in one call (what the backend does at the end of each kernel).
  const c = T.upload(new Float32Array(4), [4], "float32", "cpu");
  const d = T.call("aten::neg", [c]) as TorchTensor;
  assert.equal(T.liveTensors().count, start.count + 2);
  T.release([c, d]);
  assert.deepEqual(T.liveTensors(), start);
  assert.throws(() => T.release([d]), /release: tensor already released/);
  assert.throws(() => T.release([{} as TorchTensor]), /expected a TorchTensor handle or an array of them/);
});

test("info: this libtorch's version; a CPU-only build reports no CUDA and no devices; configure applies", { skip }, () => {
  const info = T.info();
  assert.match(info.torchVersion, /^\d+\.\d+\.\d+/);
  if (info.cudaVersion === null) {
    assert.equal(info.cudaAvailable, false);
    assert.deepEqual(info.devices, []);
    assert.equal(info.cudnnVersion, null);
  }
  if (existsSync("/usr/include/ATen/ATen.h") && !process.env.PRUNEBENCH_TORCH_DIR) {
    assert.equal(info.cudaAvailable, false, "Debian's libtorch-dev is a CPU build");
  }
  T.configure({ deterministic: true, allowTF32: false, threads: 1 });
  assert.throws(() => T.configure({ threads: 0 }), /threads must be a positive integer/);
  assert.throws(() => T.configure({ deterministic: "yes" as never }), /deterministic must be a boolean/);
  T.synchronize("cpu");
  if (info.devices.length === 0) assert.throws(() => T.synchronize("cuda:0"), /synchronize: device 'cuda:0' is not available/);
});

test("a million handles dropped without release stay bounded in memory: the GC finalizers free them", { skip }, () => {
  // One synchronous loop, as a training step is: the addon's finalizers run inside the GCs the loop causes.
  const script = `
    const t = require(${JSON.stringify(torchAddonPath())});
    const x = t.upload(new Float32Array(256), [256], "float32", "cpu");
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    for (let i = 0; i < 1e6; i++) {
      t.call("aten::alias", [x]);
      if (i % 65536 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(JSON.stringify({ growthMB: (peak - rss0) / 1e6, live: t.liveTensors().count }));`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, PRUNEBENCH_TORCH_ADDON: torchAddonPath() } });
  assert.equal(r.status, 0, r.stderr);
  const { growthMB, live } = JSON.parse(r.stdout) as { growthMB: number; live: number };
  // Kept alive, a million handles hold about 500 MB (TensorImpl, storage reference, JS wrapper).
  assert.ok(growthMB < 150, `RSS grew ${growthMB.toFixed(0)} MB`);
  assert.ok(live < 500_000, `${live} handles still live`);
});

// ---- build script: the flags derived from a PyTorch-style install (--print-flags needs no compiler or libtorch)

/** A PyTorch-style torch/ directory; from 2.11 on, torch/version.h only includes torch/headeronly/version.h. */
function fakeTorch(cuda: boolean, abi: 0 | 1, minor = 12): string {
  const dir = mkdtempSync(join(tmpdir(), "fake-torch-"));
  for (const d of ["include/ATen", "include/torch/csrc/api/include/torch", "include/torch/headeronly", "lib", "share/cmake/Torch"]) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, "include/ATen/ATen.h"), "");
  const defines = `#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR ${minor}\n`;
  const split = minor >= 11;
  writeFileSync(join(dir, "include/torch/csrc/api/include/torch/version.h"), split ? "#include <torch/headeronly/version.h>\n" : defines);
  if (split) writeFileSync(join(dir, "include/torch/headeronly/version.h"), defines);
  writeFileSync(join(dir, "share/cmake/Torch/TorchConfig.cmake"), `  set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=${abi}")\n`);
  const libs = ["libtorch.so", "libtorch_cpu.so", "libc10.so", ...(cuda ? ["libtorch_cuda.so", "libc10_cuda.so"] : [])];
  for (const l of libs) writeFileSync(join(dir, "lib", l), "");
  return dir;
}

function printFlags(args: string[], env: Record<string, string> = {}): { status: number | null; out: string; err: string } {
  const r = spawnSync("bash", [BUILD, "--print-flags", ...args], { encoding: "utf8", env: { ...process.env, NODE_INCLUDE: "/fake/node", ...env } });
  return { status: r.status, out: r.stdout.replace(/\\,/g, ","), err: r.stderr };
}

test("build-torch.sh derives a CUDA build's flags from a PyTorch install's torch directory", () => {
  const dir = fakeTorch(true, 0);
  try {
    const { status, out, err } = printFlags(["--torch-dir", dir, "--out", "/tmp/x.node"]);
    assert.equal(status, 0, err);
    for (const want of [`-I${dir}/include `, `-I${dir}/include/torch/csrc/api/include `, `-L${dir}/lib `, `-Wl,-rpath,${dir}/lib`,
      "-D_GLIBCXX_USE_CXX11_ABI=0", "-DPRUNEBENCH_TORCH_CUDA=1", "-I/fake/node ", "-std=c++20", "-o /tmp/x.node.tmp"]) {
      assert.ok(out.includes(want), `missing ${want} in: ${out}`);
    }
    // libtorch_cuda must stay linked although nothing in it is called: its static initializers register the kernels.
    assert.match(out, /-Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -ltorch_cuda -lc10_cuda -Wl,--as-needed/);
    // PRUNEBENCH_TORCH_DIR is the same as --torch-dir.
    const byEnv = printFlags([], { PRUNEBENCH_TORCH_DIR: dir });
    assert.ok(byEnv.out.includes(`-I${dir}/include `) && byEnv.out.includes("-ltorch_cuda"), byEnv.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("build-torch.sh --torch-dir auto asks $PYTHON where torch is, and that Python for the ABI when no CMake config says it", () => {
  const dir = fakeTorch(true, 1);
  const bin = mkdtempSync(join(tmpdir(), "fake-python-"));
  try {
    rmSync(join(dir, "share"), { recursive: true });
    const python = join(bin, "python3");
    // Answers the two questions the script asks: where torch is, and its _GLIBCXX_USE_CXX11_ABI.
    writeFileSync(python, `#!/bin/sh\ncase "$2" in *GLIBCXX*) echo 0 ;; *) echo ${dir} ;; esac\n`, { mode: 0o755 });
    const { status, out, err } = printFlags(["--torch-dir", "auto"], { PYTHON: python });
    assert.equal(status, 0, err);
    assert.ok(out.includes(`-I${dir}/include `) && out.includes("-D_GLIBCXX_USE_CXX11_ABI=0") && out.includes("-ltorch_cuda"), out);
    const none = printFlags(["--torch-dir", "auto"], { PYTHON: join(bin, "no-such-python") });
    assert.equal(none.status, 2);
    assert.match(none.err, /--torch-dir auto: .*no-such-python not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(bin, { recursive: true, force: true });
  }
});

test("build-torch.sh: a CPU-only install gets no CUDA flags; torch up to 2.11 gets C++17; a bad directory is exit 2", () => {
  const dir = fakeTorch(false, 1, 1);
  try {
    const v211 = fakeTorch(false, 1, 11);
    const built211 = printFlags(["--torch-dir", v211]);
    rmSync(v211, { recursive: true, force: true });
    assert.ok(built211.out.includes("-std=c++17"), `2.11: ${built211.out} ${built211.err}`);
    const { status, out, err } = printFlags(["--torch-dir", dir]);
    assert.equal(status, 0, err);
    assert.ok(!out.includes("torch_cuda") && !out.includes("PRUNEBENCH_TORCH_CUDA"), out);
    assert.ok(out.includes("-D_GLIBCXX_USE_CXX11_ABI=1") && out.includes("-std=c++17"), out);
    assert.ok(out.includes("native/build/Release/prunebench_torch.node.tmp"), "the default output path");
    rmSync(join(dir, "lib", "libc10.so"));
    const bad = printFlags(["--torch-dir", dir]);
    assert.equal(bad.status, 2);
    assert.match(bad.err, /is not a PyTorch torch directory with headers and libraries: missing .*libc10\.so/);
    const optional = printFlags(["--torch-dir", dir, "--if-available"]);
    assert.equal(optional.status, 0);
    assert.match(optional.err, /^prunebench: torch backend not built \(.*\); the other backends are unaffected/);
    assert.equal(optional.err.trim().split("\n").length, 1);
    const unknown = printFlags(["--gpu"]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.err, /unknown option '--gpu' \(valid: --torch-dir DIR\|auto, --out FILE, --if-available, --print-flags\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
