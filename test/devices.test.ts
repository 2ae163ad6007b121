/**
 * GPU scheduling without a GPU (issue #16): the assignment of workers to GPUs is a pure function, the options are
 * checked against what a (fake) nvidia-smi lists, the pool starts each worker with its slot's GPU and gives a replaced
 * worker the same one, the run record keeps the device and GPU through the store, exports and `bench merge`, and
 * `bench doctor` lists the GPUs it sees.
 */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { torchAddonPath } from "../src/backend/torch/addon.js";
import { join } from "node:path";
import { describe, it, test } from "node:test";
import { PROTOCOL_VERSION, type Grid, type Job, type JobResult, type PlannedRun } from "../src/core/types.js";
import {
  boundGpu, checkGpusPresent, checkTorchSeesGpus, gpuSlots, gpuWorkerEnv, parseGpuList, parseJobsPerGpu, parseNvidiaSmi, planGpus, type GpuListing,
} from "../src/sweep/devices.js";
import { threadsForGpuJob } from "../src/sweep/threads.js";
import { WorkerPool } from "../src/sweep/worker-pool.js";
import { runSweep } from "../src/sweep/coordinator.js";
import { Writable } from "node:stream";
import { Store } from "../src/store/store.js";
import { readRuns } from "../reports/read.js";
import { slurmJobsPerGpu, slurmScript } from "../src/cli/slurm.js";
import { exportRows } from "../reports/export.js";
import { BENCH, bench, tempDir, writeTinyGrid } from "./helpers/cli.js";
import { redisMissing, startRedis } from "./helpers/redis.js";
import { spawn } from "node:child_process";
import { smallConfig } from "./helpers/config.js";

const UUID0 = "GPU-11111111-2222-3333-4444-555555555555";
const UUID1 = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const SMI_CSV = `0, NVIDIA H100 80GB HBM3, ${UUID0}, 81559\n1, NVIDIA H100 80GB HBM3, ${UUID1}, 81559\n`;
const TWO: GpuListing = { gpus: parseNvidiaSmi(SMI_CSV), source: "nvidia-smi", notes: [] };
const NONE: GpuListing = { gpus: [], source: null, notes: ["nvidia-smi not found", "this prunebench has no torch backend"] };
const listing = (l: GpuListing) => async () => l;

/** A folder with an `nvidia-smi` that prints `csv` (or fails with `exit`), to put first on PATH. */
function fakeNvidiaSmi(dir: string, csv: string, exit = 0): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  const script = join(bin, "nvidia-smi");
  writeFileSync(script, `#!/bin/sh\n[ "$1" = "--query-gpu=index,name,uuid,memory.total" ] || { echo "unexpected arguments: $*" >&2; exit 9; }\ncat <<'EOF'\n${csv}EOF\nexit ${exit}\n`);
  chmodSync(script, 0o755);
  return bin;
}

describe("the assignment of workers to GPUs", () => {
  it("parses --gpus and CUDA_VISIBLE_DEVICES lists: indices, UUIDs, MIG instances; refuses the rest by name", () => {
    assert.deepEqual(parseGpuList("0,1"), ["0", "1"]);
    assert.deepEqual(parseGpuList(" 3 , 1 "), ["3", "1"], "order kept: the first GPU named gets the first worker");
    assert.deepEqual(parseGpuList(`${UUID0},${UUID1}`), [UUID0, UUID1]);
    assert.deepEqual(parseGpuList("MIG-5c8ee3e1-9ab1-5b39-9f8f-6d2a3d2f4f80"), ["MIG-5c8ee3e1-9ab1-5b39-9f8f-6d2a3d2f4f80"]);
    assert.throws(() => parseGpuList(""), /--gpus "": give GPU ids separated by commas/);
    assert.throws(() => parseGpuList("0,,1"), /separated by commas/);
    assert.throws(() => parseGpuList("cuda:0"), /"cuda:0" is not a GPU id; give indices \(0,1\) or UUIDs/);
    assert.throws(() => parseGpuList("0,1,0"), /names GPU 0 twice; to run more workers on one GPU use --jobs-per-gpu/);
    assert.equal(parseJobsPerGpu("4"), 4);
    for (const bad of ["0", "-1", "1.5", "two", ""]) assert.throws(() => parseJobsPerGpu(bad), /--jobs-per-gpu must be a positive integer/, bad);
  });

  it("gives gpus x K slots round-robin: the first jobs spread over the GPUs, each GPU gets K workers", () => {
    assert.deepEqual(gpuSlots(["0", "1"], 2).map((s) => s.gpu), ["0", "1", "0", "1"]);
    assert.deepEqual(gpuSlots(["0", "1"], 2).map((s) => s.slot), [0, 1, 2, 3]);
    assert.deepEqual(gpuSlots(["3"], 1), [{ slot: 0, gpu: "3" }]);
    for (const [n, k] of [[1, 1], [1, 4], [3, 1], [3, 3], [8, 2]]) {
      const gpus = Array.from({ length: n }, (_, i) => String(7 - i));
      const slots = gpuSlots(gpus, k);
      assert.equal(slots.length, n * k);
      // The pool hands a job the first free slot: the first n jobs are on n different GPUs.
      assert.deepEqual(new Set(slots.slice(0, n).map((s) => s.gpu)), new Set(gpus));
      for (const g of gpus) assert.equal(slots.filter((s) => s.gpu === g).length, k, `GPU ${g} of ${n}x${k}`);
    }
    assert.throws(() => gpuSlots([], 1), /no GPUs/);
    assert.throws(() => gpuSlots(["0"], 0), /< 1/);
  });

  it("binds a worker to one GPU seen as cuda:0, and records that GPU", () => {
    assert.deepEqual(gpuWorkerEnv(UUID1, {}), { CUDA_VISIBLE_DEVICES: UUID1, CUDA_DEVICE_ORDER: "PCI_BUS_ID", PRUNEBENCH_TORCH_DEVICE: "cuda:0", PRUNEBENCH_GPU: UUID1 });
    // nvidia-smi's indices are in PCI bus order; an order the user chose is kept.
    assert.equal(gpuWorkerEnv("1", { CUDA_DEVICE_ORDER: "FASTEST_FIRST" }).CUDA_DEVICE_ORDER, "FASTEST_FIRST");
    assert.equal(boundGpu(gpuWorkerEnv("1"), "cuda:0 NVIDIA H100 80GB HBM3"), "1");
    // Started by hand on a GPU machine: cuda:N is the N-th of CUDA_VISIBLE_DEVICES.
    assert.equal(boundGpu({ CUDA_VISIBLE_DEVICES: "2,5" }, "cuda:1 NVIDIA H100"), "5");
    assert.equal(boundGpu({ CUDA_VISIBLE_DEVICES: "2,5" }, "cpu"), null, "a CPU run has no GPU, whatever the environment says");
    assert.equal(boundGpu({}, "cuda:0 NVIDIA H100"), null);
    assert.equal(threadsForGpuJob(undefined), 1);
    assert.equal(threadsForGpuJob("auto"), 1, "idle cores do not speed a GPU up");
    assert.equal(threadsForGpuJob(3), 3);
  });

  it("reads nvidia-smi's CSV, with or without units", () => {
    assert.deepEqual(parseNvidiaSmi(SMI_CSV)[1], { index: 1, name: "NVIDIA H100 80GB HBM3", uuid: UUID1, memoryMiB: 81559 });
    assert.deepEqual(parseNvidiaSmi(`\n0, Tesla T4, ${UUID0}, 15360 MiB\n`), [{ index: 0, name: "Tesla T4", uuid: UUID0, memoryMiB: 15360 }]);
    assert.deepEqual(parseNvidiaSmi("No devices were found\n"), []);
  });

  it("checks --gpus: ids this machine has, a GPU backend, --jobs that agree; none listable is refused with why", async () => {
    const torch = { backend: "torch" };
    assert.deepEqual((await planGpus({ gpus: "0,1", jobsPerGpu: "2", ...torch }, {}, listing(TWO))).slots.map((s) => s.gpu), ["0", "1", "0", "1"]);
    assert.deepEqual((await planGpus({ gpus: UUID1, ...torch }, {}, listing(TWO))).gpus, [UUID1]);
    assert.equal((await planGpus({ gpus: "0,1", jobsPerGpu: "3", jobs: 6, ...torch }, {}, listing(TWO))).slots.length, 6);
    await assert.rejects(planGpus({ gpus: "0,2", ...torch }, {}, listing(TWO)),
      /--gpus: GPU 2 is not on this machine; nvidia-smi lists 0 \(NVIDIA H100 80GB HBM3, GPU-1111.*\), 1 \(/);
    await assert.rejects(planGpus({ gpus: "GPU-ffffffff", ...torch }, {}, listing(TWO)), /GPU GPU-ffffffff is not on this machine/);
    await assert.rejects(planGpus({ gpus: "0", ...torch }, {}, listing(NONE)),
      /no GPU can be listed on this machine \(nvidia-smi not found; this prunebench has no torch backend\)/);
    await assert.rejects(planGpus({ gpus: "0", backend: "native" }, {}, listing(TWO)), /--gpus needs a GPU backend \(torch\): --backend native trains on the CPU/);
    await assert.rejects(planGpus({ gpus: "0", backend: "auto", resolvedBackend: "wasm" }, {}, listing(TWO)), /--backend auto picks wasm here, which trains on the CPU/);
    assert.equal((await planGpus({ gpus: "0", backend: "auto", resolvedBackend: "torch" }, {}, listing(TWO))).slots.length, 1);
    await assert.rejects(planGpus({ gpus: "0,1", jobsPerGpu: "2", jobs: 3, ...torch }, {}, listing(TWO)),
      /--jobs 3 disagrees with --gpus 0,1 × --jobs-per-gpu 2 = 4 workers/);
    await assert.rejects(planGpus({ gpus: "0", jobsPerGpu: "0", ...torch }, {}, listing(TWO)), /--jobs-per-gpu must be a positive integer/);
    // Errors are bad input (exit 2 through the CLI's error mapping).
    await assert.rejects(planGpus({ gpus: "9", ...torch }, {}, listing(TWO)), (e: Error) => e.name === "SweepInputError");
  });

  it("--backend torch --gpus refuses a torch addon that cannot use CUDA (built against a CPU libtorch, or no GPU visible)", async () => {
    const addon = (cudaAvailable: boolean, cudaVersion: string | null) => async () => ({ gpus: [], cudaAvailable, torchVersion: "2.11.0", cudaVersion });
    await checkTorchSeesGpus(["0"], addon(true, "13.0"));
    await assert.rejects(checkTorchSeesGpus(["0"], addon(false, null)), /--gpus 0: the torch addon cannot use a GPU: it was built against libtorch 2\.11\.0 without CUDA; rebuild it against a PyTorch with CUDA: scripts\/build-torch\.sh --torch-dir auto/);
    await assert.rejects(checkTorchSeesGpus(["0", "1"], addon(false, "13.0")), /libtorch 2\.11\.0 with CUDA 13\.0 finds no GPU/);
    await assert.rejects(checkTorchSeesGpus(["0"], async () => ({ error: "torch addon not built: x.node is missing" })), /--gpus 0 with --backend torch: torch addon not built/);
  });

  it("--gpus all: Slurm's CUDA_VISIBLE_DEVICES list as given (UUIDs too), else every GPU listed", async () => {
    const env = { CUDA_VISIBLE_DEVICES: `${UUID1},${UUID0}` };
    const never = async (): Promise<GpuListing> => assert.fail("the launcher's list is not checked against nvidia-smi");
    const p = await planGpus({ gpus: "all", jobsPerGpu: "2" }, env, never);
    assert.deepEqual(p.slots.map((s) => s.gpu), [UUID1, UUID0, UUID1, UUID0]);
    assert.deepEqual((await planGpus({ gpus: "all" }, {}, listing(TWO))).gpus, ["0", "1"]);
    await assert.rejects(planGpus({ gpus: "all" }, {}, listing(NONE)), /no GPU can be listed/);
    assert.throws(() => checkGpusPresent(["0"], { gpus: [], source: "nvidia-smi", notes: [] }), /GPU 0 is not on this machine/);
  });
});

const FAILING_JOB = (key: string, dir: string): Job => ({
  protocol: PROTOCOL_VERSION, kind: "run", key, denseKey: "d", backend: "cpu",
  // A dataset that does not exist: the job fails fast, after the worker started its backend and recorded its device.
  config: smallConfig({ dataset: "no-such-dataset" }), paths: { cacheDir: join(dir, "cache"), artifactsDir: join(dir, "art") },
});

/** A live worker's environment, as the kernel has it. */
const environOf = (pid: number): Record<string, string> =>
  Object.fromEntries(readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));

test("the pool starts each worker bound to its slot's GPU, and a worker that died is replaced on the same GPU", async () => {
  const dir = tempDir();
  const slots = gpuSlots(["0", "1"], 2);
  const pool = new WorkerPool({ size: slots.length, slotEnv: slots.map((s) => gpuWorkerEnv(s.gpu)) });
  try {
    pool.warm();
    const before = pool.slotPids;
    assert.ok(before.every((p) => p !== null));
    assert.deepEqual(before.map((p) => environOf(p!).CUDA_VISIBLE_DEVICES), ["0", "1", "0", "1"]);
    assert.ok(before.every((p) => environOf(p!).PRUNEBENCH_TORCH_DEVICE === "cuda:0"));
    process.kill(before[2]!, "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    const results: JobResult[] = await Promise.all([0, 1, 2, 3].map((i) => pool.run(FAILING_JOB(`k${i}`, dir))));
    const after = pool.slotPids;
    assert.notEqual(after[2], before[2], "the dead worker was replaced");
    assert.deepEqual([after[0], after[1], after[3]], [before[0], before[1], before[3]], "the others kept theirs");
    assert.equal(environOf(after[2]!).CUDA_VISIBLE_DEVICES, "0", "its replacement is on the dead worker's GPU");
    // Four jobs at once took the four slots: two on each GPU, each result naming its GPU.
    for (const r of results) assert.equal(r.status, "failed");
    assert.deepEqual(results.map((r) => r.backend?.gpu).sort(), ["0", "0", "1", "1"]);
    assert.ok(results.every((r) => r.backend?.device === "cpu"));
  } finally {
    await pool.close("kill");
  }
});

test("a sweep on --gpus 0,1 --jobs-per-gpu 2 (CPU backend standing in for torch): every run records the GPU its worker was bound to", async () => {
  const dir = tempDir();
  const db = join(dir, "r.db");
  // The command line refuses --gpus without the torch backend; the coordinator takes the checked plan as it is given.
  const gpus = await planGpus({ gpus: "0,1", jobsPerGpu: "2" }, {}, listing(TWO));
  let said = "";
  const out = new Writable({ write(chunk, _enc, done) { said += String(chunk); done(); } });
  const ran: JobResult[] = [];
  const summary = await runSweep({
    gridFile: writeTinyGrid(dir), dbPath: db, jobs: 1, backend: "auto", cacheDir: join(dir, "cache"), artifactsDir: join(dir, "art"),
    plain: true, out: out as never, gpus, threads: "auto", onResult: (r) => ran.push(r),
  });
  assert.equal(summary.done, 4, said);
  assert.match(said, /4 runs planned, 0 already finished, 4 to run on 4 worker\(s\) \(GPU 0, 1: 2 each\)/);
  // --threads auto on GPUs: 1 CPU thread per worker.
  assert.ok(ran.every((r) => r.backend?.threads === 1 && r.metrics.compute_threads === 1), JSON.stringify(ran.map((r) => r.backend)));
  const store = new Store(db);
  const runs = readRuns(store);
  store.close();
  assert.ok(runs.every((r) => r.device === "cpu" && (r.gpu === "0" || r.gpu === "1")), JSON.stringify(runs.map((r) => [r.device, r.gpu])));
  // The first jobs went to different GPUs: both were used.
  assert.deepEqual(new Set(runs.map((r) => r.gpu)), new Set(["0", "1"]));
});

function storeWith(path: string, device: { device?: string; gpu?: string }, host: string): void {
  const store = new Store(path);
  const planned: PlannedRun[] = [{ key: "00c0ffee00c0ffee", denseKey: "dense-0", methodLabel: "global-magnitude", codeVersion: "test", dataFingerprint: "fp", config: smallConfig() }];
  store.createSweep({ name: "g", file: "g.yaml", reference: [] } as unknown as Grid, "name: g\n", "test", planned);
  store.saveResult({
    protocol: PROTOCOL_VERSION, kind: "run", key: "00c0ffee00c0ffee", status: "done", error: null,
    backend: { name: "torch", tfjsVersion: "4", threads: 1, ...device },
    metrics: { top1_after: 0.8 }, layers: [], epochs: [], artifacts: [],
    startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:01:00Z", host, pid: 1,
  });
  store.close();
}

test("the run record keeps the device and GPU: bench show, the runs export, the report's overview, and bench merge", () => {
  const dir = tempDir();
  const a = join(dir, "a.db");
  storeWith(a, { device: "cuda:0 NVIDIA H100 80GB HBM3", gpu: "1" }, "gpu-box");
  const s = new Store(a);
  const runs = readRuns(s);
  s.close();
  assert.equal(runs[0].device, "cuda:0 NVIDIA H100 80GB HBM3");
  assert.equal(runs[0].gpu, "1");
  const csv = exportRows({ runs } as never, "runs", "csv").split("\n");
  const header = csv[0].split(",");
  assert.equal(csv[1].split(",")[header.indexOf("device")], "cuda:0 NVIDIA H100 80GB HBM3");
  assert.equal(csv[1].split(",")[header.indexOf("gpu")], "1");

  const show = bench(["show", "00c0ffee00c0ffee", "--db", a]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /backend torch \(tfjs 4\)  on cuda:0 NVIDIA H100 80GB HBM3 \(GPU 1\)/);

  const html = join(dir, "a.html");
  const report = bench(["report", "--db", a, "-o", html]);
  assert.equal(report.code, 0, report.stderr);
  assert.match(readFileSync(html, "utf8"), /<dt>Devices<\/dt><dd><code>cuda:0 NVIDIA H100 80GB HBM3<\/code><\/dd>/);

  // The same run on a CPU elsewhere: merged, the device travels with the run kept, and is not a conflict by itself.
  const b = join(dir, "b.db");
  storeWith(b, { device: "cpu" }, "laptop");
  const into = join(dir, "m.db");
  const m = bench(["merge", a, "--into", into, "--json"]);
  assert.equal(m.code, 0, m.stderr);
  const merged = new Store(into);
  assert.deepEqual(readRuns(merged).map((r) => [r.device, r.gpu]), [["cuda:0 NVIDIA H100 80GB HBM3", "1"]]);
  merged.close();
  const last = bench(["merge", b, "--into", into, "--on-conflict", "last", "--json"]);
  assert.equal(last.code, 0, last.stderr);
  const m2 = new Store(into);
  assert.deepEqual(readRuns(m2).map((r) => [r.device, r.gpu]), [["cuda:0 NVIDIA H100 80GB HBM3", "1"]], "same results: nothing replaced");
  m2.close();
});

describe("the command line with a fake nvidia-smi", () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir);
  const PATH = `${fakeNvidiaSmi(dir, SMI_CSV)}:${process.env.PATH}`;
  const sweep = (args: string[], env: NodeJS.ProcessEnv = { PATH }) => bench(["sweep", grid, "--db", join(dir, "r.db"), "--cache-dir", join(dir, "cache"), ...args], env);

  it("bench doctor lists the GPUs nvidia-smi sees, and says why there are none without it", () => {
    const r = bench(["doctor", "--json"], { PATH });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.gpus.source, "nvidia-smi");
    assert.deepEqual(report.gpus.devices.map((g: { index: number; uuid: string }) => [g.index, g.uuid]), [[0, UUID0], [1, UUID1]]);
    // Where the torch addon is built (CI builds it against Debian's CPU libtorch), doctor starts the backend to say so.
    if (existsSync(torchAddonPath())) assert.match(`${report.gpus.torch.ok} ${report.gpus.torch.detail}`, /^true starts \(libtorch /);
    else assert.deepEqual([report.gpus.torch.ok, report.gpus.torch.advice !== null], [false, true]);
    const text = bench(["doctor"], { PATH });
    assert.match(text.stdout, /^gpus: 0 NVIDIA H100 80GB HBM3 \(80 GiB\) GPU-1111.*\(from nvidia-smi; bench sweep --backend torch --gpus 0,1\)$/m);
    assert.match(text.stdout, /^ {2}torch backend: /m);
    const none = bench(["doctor"], { PATH: "/usr/bin:/bin", PRUNEBENCH_TORCH_ADDON: join(dir, "no-such.node") });
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /^gpus: none \(nvidia-smi not found; torch addon not built: .*no-such\.node is missing/m);
    assert.match(none.stdout, /^ {2}torch backend: unavailable: .*to build it: scripts\/build-torch\.sh --torch-dir auto/m);
    const broken = bench(["doctor"], { PATH: `${fakeNvidiaSmi(join(dir, "broken"), "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", 9)}:/usr/bin:/bin` });
    assert.match(broken.stdout, /^gpus: none \(nvidia-smi failed \(exit 9\): NVIDIA-SMI has failed/m);
  });

  it("bench sweep --gpus refuses, exit 2, what cannot run: unknown ids, a CPU backend, --jobs that disagree, K < 1, no GPUs", () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [["--gpus", "0,2", "--backend", "native"], { PATH }, /--gpus: GPU 2 is not on this machine; nvidia-smi lists 0 \(NVIDIA H100/],
      [["--gpus", "0,1", "--backend", "native"], { PATH }, /--gpus needs a GPU backend \(torch\): --backend native trains on the CPU/],
      [["--gpus", "0", "--backend", "wasm"], { PATH }, /--backend wasm trains on the CPU/],
      [["--gpus", "0", "--jobs-per-gpu", "0", "--backend", "native"], { PATH }, /--jobs-per-gpu must be a positive integer/],
      [["--gpus", "0", "--backend", "native"], { PATH: "/usr/bin:/bin" }, /no GPU can be listed on this machine \(nvidia-smi not found/],
      [["--gpus", "0,x"], { PATH }, /"x" is not a GPU id/],
      [["--jobs-per-gpu", "2"], { PATH }, /--jobs-per-gpu needs --gpus/],
      [["--gpus", "0", "--queue", "redis://127.0.0.1:1"], { PATH }, /--gpus binds local workers; with --queue/],
    ];
    for (const [args, env, message] of cases) {
      const r = sweep(args, env);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
    }
    const auto = sweep(["--gpus", "0", "--backend", "auto"]);
    assert.equal(auto.code, 2);
    assert.match(auto.stderr, /--backend auto picks \w+ here, which trains on the CPU/);
  });

  it("bench worker: --gpus needs --queue, and is checked like the sweep's before the queue is reached", () => {
    const r = bench(["worker", "--gpus", "0"], { PATH });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--gpus and --jobs-per-gpu need --queue/);
    const q = bench(["worker", "--queue", "redis://127.0.0.1:1", "--gpus", "0,3", "--jobs-per-gpu", "2"], { PATH });
    assert.equal(q.code, 2);
    assert.match(q.stderr, /--gpus: GPU 3 is not on this machine/);
    const jobs = bench(["worker", "--queue", "redis://127.0.0.1:1", "--gpus", "0,1", "--jobs", "3"], { PATH });
    assert.equal(jobs.code, 2);
    assert.match(jobs.stderr, /--jobs 3 disagrees with --gpus 0,1 × --jobs-per-gpu 1 = 2 workers/);
  });
});

describe("bench slurm with GPUs", () => {
  const base = {
    gridFile: "g.yaml", gridName: "g", queue: "redis://head:6379", array: 2, cpusPerTask: 8, gpusPerTask: 2, projectDir: "/p", node: "/usr/bin/node",
    bench: "/p/bin/bench.js", logDir: "/p", exitIdle: 0,
  };
  it("each task's worker binds its processes to the GPUs Slurm gave it (--gpus all), K per GPU", () => {
    assert.match(slurmScript(base), /worker --queue redis:\/\/head:6379 --gpus all --jobs-per-gpu 4$/m, "8 CPUs over 2 GPUs");
    assert.match(slurmScript({ ...base, jobsPerGpu: 3 }), /--gpus all --jobs-per-gpu 3$/m);
    assert.match(slurmScript({ ...base, gpusPerTask: 0 }), /worker --queue redis:\/\/head:6379 --jobs 8$/m);
    assert.equal(slurmJobsPerGpu({ cpusPerTask: 1, gpusPerTask: 4 }), 1, "at least one per GPU");
  });
});

test("a queue worker on Slurm's GPUs (--gpus all, CUDA_VISIBLE_DEVICES a UUID list) binds each training process to one; runs record it", { skip: redisMissing() ?? false }, async () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir);
  const redis = await startRedis();
  const env = { ...process.env, BENCH_QUEUE_LOCK_MS: "2000", CUDA_VISIBLE_DEVICES: `${UUID1},${UUID0}` };
  const worker = spawn(process.execPath, [BENCH, "worker", "--queue", redis.url, "--gpus", "all", "--cache-dir", join(dir, "cache-w")], { env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  worker.stdout!.on("data", (d) => { log += d; });
  worker.stderr!.on("data", (d) => { log += d; });
  const exited = new Promise((resolve) => worker.on("exit", resolve));
  try {
    const db = join(dir, "q.db");
    const sweep = spawn(process.execPath, [BENCH, "sweep", grid, "--db", db, "--cache-dir", join(dir, "cache-c"), "--queue", redis.url, "--plain"], { env: { ...process.env, BENCH_QUEUE_LOCK_MS: "2000" }, stdio: "ignore" });
    const code = await new Promise((resolve) => sweep.on("exit", resolve));
    assert.equal(code, 0, log);
    assert.match(log, new RegExp(`2 training process\\(es\\) on GPU ${UUID1}, ${UUID0} \\(1 each\\)`));
    const store = new Store(db);
    const runs = readRuns(store);
    store.close();
    assert.equal(runs.length, 4);
    for (const r of runs) assert.ok(r.gpu === UUID0 || r.gpu === UUID1, `${r.key}: gpu ${r.gpu}`);
  } finally {
    worker.kill("SIGKILL");
    await exited;
    await redis.dispose();
  }
});
