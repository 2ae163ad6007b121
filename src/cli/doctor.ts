/**
 * `bench doctor`: what this installation will run on, and why. The backend a sweep trains on decides whether it takes
 * minutes or hours, so a new user gets it said in one place, with the reasons the faster ones were passed over and the
 * one line that gets them; likewise which datasets are present.
 */
import { existsSync, lstatSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { arch as cpuArch, availableParallelism } from "node:os";
import { DATASETS } from "../../datasets/index.js";
import { initBackend, isBackendRequest } from "../backend/index.js";
import { addonPath, cpuProblem } from "../backend/native/addon.js";
import { userCacheDir } from "../core/locations.js";
import { CODE_VERSION, PRUNEBENCH_VERSION } from "../core/version.js";
import { EXIT } from "./errors.js";
import { emit } from "./output.js";
import { listGpus, torchAddonGpus, type GpuInfo } from "../sweep/devices.js";

/** The Debian packages the native backend builds against, by a file each installs. */
const NATIVE_PACKAGES = [
  { pkg: "libtorch-dev", file: "/usr/include/ATen/ATen.h" },
  { pkg: "libdnnl-dev", file: "/usr/include/oneapi/dnnl/dnnl.h" },
];

export interface DoctorReport {
  prunebench: string;
  node: string;
  cpus: number;
  backend: { name: string; threads: number; tfjsVersion: string; skipped: string[] };
  native: { addon: string; built: boolean; cpu: string | null; packages: Record<string, boolean>; advice: string | null };
  datasets: Array<{ name: string; present: boolean; detail: string }>;
  /** The code version stored with every run (a results revision changes it), and what runs it. */
  versions: { prunebench: string; code: string; node: string; tfjs: string; v8: string };
  /** The shared cache of dense pretrained models (and downloads): where, how big, how many files. */
  cache: { dir: string; exists: boolean; bytes: number; files: number };
  /**
   * The GPUs `--gpus` can use (nvidia-smi, else the torch addon; `source` null and `why` when none), and whether the
   * torch backend (the one that trains on them) can start here, with why not.
   */
  gpus: { devices: GpuInfo[]; source: string | null; why: string[]; torch: { ok: boolean; detail: string; advice: string | null } };
}

/** Total size and file count under `dir` (symlinks not followed; unreadable entries skipped). */
export function folderSize(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  const walk = (d: string) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        try {
          bytes += lstatSync(p).size;
          files++;
        } catch {
          // removed while we looked
        }
      }
    }
  };
  walk(dir);
  return { bytes, files };
}

function formatBytes(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

/** Whether the torch backend starts here, said without switching this process's backend for good. */
async function torchStatus(): Promise<{ ok: boolean; detail: string; advice: string | null }> {
  const addon = await torchAddonGpus();
  if ("error" in addon) return { ok: false, detail: addon.error, advice: "scripts/build-torch.sh --torch-dir auto (against this machine's PyTorch; without one, Debian's libtorch-dev: CPU only)" };
  const where = addon.cudaAvailable ? `CUDA ${addon.cudaVersion}, ${addon.gpus.length} GPU(s)` : addon.cudaVersion ? "CUDA build, but no GPU visible: CPU tensors only" : "built without CUDA: CPU tensors only";
  if (!isBackendRequest("torch")) return { ok: false, detail: `addon built (libtorch ${addon.torchVersion}, ${where}) but this prunebench cannot select --backend torch yet`, advice: null };
  try {
    await initBackend("torch" as never);
    return { ok: true, detail: `starts (libtorch ${addon.torchVersion}, ${where})`, advice: null };
  } catch (e) {
    return { ok: false, detail: `addon built (libtorch ${addon.torchVersion}) but the backend did not start: ${(e as Error).message.split("\n")[0]}`, advice: null };
  }
}

export async function doctorReport(cacheDir: string = userCacheDir()): Promise<DoctorReport> {
  // Asked before auto's backend is chosen, so that the tfjs backend left active is auto's.
  const torch = await torchStatus();
  const listing = await listGpus();
  const info = await initBackend("auto");
  const addon = addonPath();
  const built = existsSync(addon);
  const packages = Object.fromEntries(NATIVE_PACKAGES.map((p) => [p.pkg, existsSync(p.file)]));
  const missing = NATIVE_PACKAGES.filter((p) => !packages[p.pkg]).map((p) => p.pkg);
  const cpu = cpuProblem();
  const advice = info.name === "native" || info.name === "tensorflow" ? null
    : cpu ? `the native backend cannot run here (${cpu}); wasm is what this machine has`
    : missing.length > 0 ? `apt-get install -y ${missing.join(" ")} && npm run build:native`
    : !built ? "npm run build:native (the packages are installed; the addon was not built, or its build failed: see native/build-native.log)"
    : "the addon is built but did not start (see the reason above); rebuild it with npm run build:native";
  const datasets = [];
  for (const d of DATASETS) {
    try {
      await d.fingerprint({ download: false });
      datasets.push({ name: d.name, present: true, detail: "found" });
    } catch (e) {
      // The loader's message is a page long; doctor keeps what to fetch and where it goes.
      const lines = (e as Error).message.split("\n");
      const needed = lines.find((l) => l.startsWith("Needed"));
      const folder = /^\s*1\. (\S+)/m.exec((e as Error).message)?.[1];
      datasets.push({ name: d.name, present: false, detail: needed ? `${needed}${folder ? ` Default folder: ${folder}` : ""}` : lines[0] });
    }
  }
  return {
    prunebench: PRUNEBENCH_VERSION, node: process.version, cpus: availableParallelism(),
    backend: { name: info.name, threads: info.threads, tfjsVersion: info.tfjsVersion, skipped: info.note ? info.note.split(" | ") : [] },
    native: { addon, built, cpu, packages, advice },
    datasets,
    versions: { prunebench: PRUNEBENCH_VERSION, code: CODE_VERSION, node: process.version, tfjs: info.tfjsVersion, v8: process.versions.v8 },
    cache: { dir: cacheDir, exists: existsSync(cacheDir), ...folderSize(cacheDir) },
    gpus: { devices: listing.gpus, source: listing.source, why: listing.notes, torch },
  };
}

export function formatDoctor(r: DoctorReport): string {
  const lines = [
    `prunebench ${r.prunebench}, Node ${r.node}, tfjs ${r.backend.tfjsVersion}, ${r.cpus} CPUs (${cpuArch()})`,
    `backend: ${r.backend.name}, ${r.backend.threads} thread(s) per worker (what \`bench sweep\` uses with --backend auto)`,
    ...r.backend.skipped.map((s) => `  passed over: ${s}`),
    `native addon: ${r.native.built ? r.native.addon : `not built (${r.native.addon} is missing)`}${r.native.built ? ` (built ${statSync(r.native.addon).mtime.toISOString().slice(0, 16).replace("T", " ")})` : ""}`,
    `  packages: ${Object.entries(r.native.packages).map(([p, ok]) => `${p} ${ok ? "installed" : "missing"}`).join(", ")}`,
    `  cpu: ${r.native.cpu ?? "x86-64 with AVX2 and FMA: fine"}`,
    ...(r.native.advice ? [`  to get the native backend (5-10x faster than wasm): ${r.native.advice}`] : []),
    "datasets:",
    ...r.datasets.map((d) => `  ${d.name}: ${d.present ? "found" : `not found: ${d.detail}`}`),
    `gpus: ${r.gpus.devices.length > 0
      ? `${r.gpus.devices.map((g) => `${g.index} ${g.name}${g.memoryMiB !== undefined ? ` (${(g.memoryMiB / 1024).toFixed(0)} GiB)` : ""}${g.uuid ? ` ${g.uuid}` : ""}`).join(", ")} (from ${r.gpus.source}; bench sweep --backend torch --gpus ${r.gpus.devices.map((g) => g.index).join(",")})`
      : `none (${r.gpus.why.join("; ")})`}`,
    `  torch backend: ${r.gpus.torch.ok ? r.gpus.torch.detail : `unavailable: ${r.gpus.torch.detail}${r.gpus.torch.advice ? `; to build it: ${r.gpus.torch.advice}` : ""}`}`,
    `cache: ${r.cache.dir}: ${r.cache.exists ? `${formatBytes(r.cache.bytes)} in ${r.cache.files} file(s) (dense models are reused across sweeps; delete the folder to free it)` : "not created yet"}`,
    `versions: code ${r.versions.code}, Node ${r.versions.node} (V8 ${r.versions.v8}), tfjs ${r.versions.tfjs}`,
  ];
  return lines.join("\n") + "\n";
}

export default async function doctor(o: { json?: boolean; expect?: string; cacheDir?: string }): Promise<number> {
  if (o.expect !== undefined && !isBackendRequest(o.expect)) {
    process.stderr.write(`error: --expect must be a backend name (node, native, wasm, cpu), got "${o.expect}"\n`);
    return EXIT.badInput;
  }
  const report = await doctorReport(o.cacheDir);
  emit(o.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
  // --expect: CI's check that a machine with the packages really runs on the native backend.
  const expected = o.expect === "node" ? "tensorflow" : o.expect;
  if (expected && report.backend.name !== expected) {
    process.stderr.write(`error: the backend is ${report.backend.name}, not ${o.expect}${report.native.advice ? ` (${report.native.advice})` : ""}\n`);
    return 1;
  }
  return 0;
}
