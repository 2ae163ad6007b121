/**
 * GPU scheduling: which worker process trains on which GPU (`--gpus 0,1 --jobs-per-gpu K`). Each worker sees exactly
 * one GPU, as cuda:0, through CUDA_VISIBLE_DEVICES: the torch backend then never has to be told an index, a run cannot
 * spill onto a neighbour's GPU, and a job's result does not depend on which GPU it got. The assignment is pure (tested
 * without a GPU); listing the GPUs a machine has (nvidia-smi, else the torch addon) is kept apart from it.
 */
import { spawnSync } from "node:child_process";

/** One GPU as the machine lists it. `id` is what CUDA_VISIBLE_DEVICES takes: the index, or the UUID ("GPU-…"). */
export interface GpuInfo {
  index: number;
  name: string;
  uuid?: string;
  memoryMiB?: number;
}

/** What this machine says about its GPUs: the list (possibly empty) and where it came from, or why there is none. */
export interface GpuListing {
  gpus: GpuInfo[];
  /** "nvidia-smi" or "torch addon"; null when nothing could list GPUs. */
  source: string | null;
  /** Why each lister failed or found none, e.g. "nvidia-smi not found". */
  notes: string[];
}

/** A worker slot: the pool's slot index and the GPU (as given to CUDA_VISIBLE_DEVICES) its worker is bound to. */
export interface GpuSlot {
  slot: number;
  gpu: string;
}

/** The env names the binding sets (the torch backend reads PRUNEBENCH_TORCH_DEVICE; see the GPU contract, issue #16). */
export const GPU_ENV = { visible: "CUDA_VISIBLE_DEVICES", torchDevice: "PRUNEBENCH_TORCH_DEVICE", bound: "PRUNEBENCH_GPU" } as const;

/** A GPU id CUDA_VISIBLE_DEVICES accepts: an index or a UUID (GPU-…, or a MIG instance MIG-…). */
const GPU_ID = /^(\d+|GPU-[0-9A-Za-z-]+|MIG-[0-9A-Za-z/-]+)$/;

export class GpuOptionError extends Error {
  // Reported as bad input (exit 2) by the command line, like the sweep's other input errors.
  override name = "SweepInputError";
}

/** `--gpus 0,1` / a CUDA_VISIBLE_DEVICES value: the ids in order, each once. */
export function parseGpuList(value: string, what = "--gpus"): string[] {
  const ids = value.split(",").map((s) => s.trim());
  if (ids.length === 0 || ids.some((id) => id === "")) {
    throw new GpuOptionError(`${what} "${value}": give GPU ids separated by commas, e.g. 0,1 (indices as nvidia-smi lists them, or UUIDs GPU-…)`);
  }
  const bad = ids.find((id) => !GPU_ID.test(id));
  if (bad !== undefined) throw new GpuOptionError(`${what} "${value}": "${bad}" is not a GPU id; give indices (0,1) or UUIDs (GPU-…, MIG-…) as nvidia-smi -L lists them`);
  const seen = new Set<string>();
  const dup = ids.find((id) => seen.has(id) || !seen.add(id));
  if (dup !== undefined) throw new GpuOptionError(`${what} "${value}" names GPU ${dup} twice; to run more workers on one GPU use --jobs-per-gpu`);
  return ids;
}

/** `--jobs-per-gpu K`: workers sharing one GPU (small models leave most of a big GPU idle). */
export function parseJobsPerGpu(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new GpuOptionError(`--jobs-per-gpu must be a positive integer (workers sharing each GPU), got "${value}"`);
  }
  return n;
}

/**
 * Slots for `gpus` × `jobsPerGpu` workers, round-robin: slot i is on gpus[i mod n]. The pool gives a job the first free
 * slot, so the first n jobs land on n different GPUs before any GPU gets a second worker's job.
 */
export function gpuSlots(gpus: readonly string[], jobsPerGpu: number): GpuSlot[] {
  if (gpus.length === 0) throw new Error("gpuSlots: no GPUs");
  if (!Number.isInteger(jobsPerGpu) || jobsPerGpu < 1) throw new Error(`gpuSlots: jobsPerGpu ${jobsPerGpu} < 1`);
  return Array.from({ length: gpus.length * jobsPerGpu }, (_, slot) => ({ slot, gpu: gpus[slot % gpus.length] }));
}

/**
 * The environment a worker bound to `gpu` starts with: that GPU alone, seen as cuda:0. CUDA numbers GPUs fastest first
 * unless told otherwise, nvidia-smi (and Slurm) by PCI bus: on a machine of mixed GPUs index 1 could be two different
 * cards, so the worker is told PCI bus order (unless the environment already chose an order).
 */
export function gpuWorkerEnv(gpu: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return { [GPU_ENV.visible]: gpu, CUDA_DEVICE_ORDER: env.CUDA_DEVICE_ORDER || "PCI_BUS_ID", [GPU_ENV.torchDevice]: "cuda:0", [GPU_ENV.bound]: gpu };
}

/**
 * The GPU a worker trains on, for the run record: the one the scheduler bound it to, else (a torch backend on cuda
 * started by hand) CUDA_VISIBLE_DEVICES when it names one GPU; null on CPU.
 */
export function boundGpu(env: NodeJS.ProcessEnv, device: string | undefined): string | null {
  const bound = env[GPU_ENV.bound]?.trim();
  if (bound) return bound;
  const visible = env[GPU_ENV.visible]?.trim();
  if (!device?.startsWith("cuda") || !visible) return null;
  const list = visible.split(",").map((s) => s.trim()).filter(Boolean);
  const index = Number(/^cuda:(\d+)/.exec(device)?.[1] ?? 0);
  return list[index] ?? null;
}

/** `nvidia-smi --query-gpu=index,name,uuid,memory.total --format=csv,noheader[,nounits]` output. */
export function parseNvidiaSmi(csv: string): GpuInfo[] {
  const out: GpuInfo[] = [];
  for (const line of csv.split("\n")) {
    if (!line.trim()) continue;
    const [index, name, uuid, memory] = line.split(",").map((s) => s.trim());
    const i = Number(index);
    if (!/^\d+$/.test(index ?? "")) continue;
    const mib = Number(/^(\d+)/.exec(memory ?? "")?.[1]);
    out.push({ index: i, name: name ?? "", ...(uuid ? { uuid } : {}), ...(Number.isFinite(mib) ? { memoryMiB: mib } : {}) });
  }
  return out;
}

/** nvidia-smi's list, or why there is none (not installed, no driver, failed). */
export function nvidiaSmiGpus(env: NodeJS.ProcessEnv = process.env): { gpus: GpuInfo[] } | { error: string } {
  const r = spawnSync("nvidia-smi", ["--query-gpu=index,name,uuid,memory.total", "--format=csv,noheader,nounits"], { encoding: "utf8", env, timeout: 20_000 });
  if (r.error) return { error: (r.error as NodeJS.ErrnoException).code === "ENOENT" ? "nvidia-smi not found" : `nvidia-smi failed: ${r.error.message}` };
  if (r.status !== 0) return { error: `nvidia-smi failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split("\n")[0]}` };
  const gpus = parseNvidiaSmi(r.stdout);
  return gpus.length > 0 ? { gpus } : { error: "nvidia-smi lists no GPU" };
}

/** The torch addon's view, when the torch backend's addon module exists and is built (issue #16's contract). */
export async function torchAddonGpus(): Promise<{ gpus: GpuInfo[]; cudaAvailable: boolean; torchVersion: string; cudaVersion: string | null } | { error: string }> {
  type Info = { torchVersion: string; cudaVersion: string | null; cudaAvailable: boolean; devices: Array<{ index: number; name: string; totalMemoryBytes: number }> };
  let mod: { loadTorchAddon?: () => { info(): Info } | { error: string } };
  try {
    // A path built at run time: this build may not have the torch backend at all.
    mod = await import(new URL("../backend/torch/addon.js", import.meta.url).href);
  } catch {
    return { error: "this prunebench has no torch backend" };
  }
  if (typeof mod.loadTorchAddon !== "function") return { error: "this prunebench's torch backend has no loadTorchAddon()" };
  let addon;
  try {
    addon = mod.loadTorchAddon();
  } catch (e) {
    return { error: `torch addon failed to load: ${(e as Error).message.split("\n")[0]}` };
  }
  // The loader's reasons already name the addon ("torch addon not built: …").
  if ("error" in addon) return { error: /^torch addon/.test(addon.error) ? addon.error : `torch addon not available: ${addon.error}` };
  const info = addon.info();
  return {
    gpus: info.devices.map((d) => ({ index: d.index, name: d.name, memoryMiB: Math.round(d.totalMemoryBytes / 2 ** 20) })),
    cudaAvailable: info.cudaAvailable, torchVersion: info.torchVersion, cudaVersion: info.cudaVersion,
  };
}

/** Every GPU this machine lists: nvidia-smi first (it names UUIDs), else the torch addon; with why when none. */
export async function listGpus(env: NodeJS.ProcessEnv = process.env): Promise<GpuListing> {
  const notes: string[] = [];
  const smi = nvidiaSmiGpus(env);
  if ("gpus" in smi) return { gpus: smi.gpus, source: "nvidia-smi", notes };
  notes.push(smi.error);
  const torch = await torchAddonGpus();
  if ("error" in torch) notes.push(torch.error);
  else if (!torch.cudaAvailable || torch.gpus.length === 0) notes.push(`torch addon (libtorch ${torch.torchVersion}) ${torch.cudaVersion ? "sees no CUDA device" : "built without CUDA"}`);
  else return { gpus: torch.gpus, source: "torch addon", notes };
  return { gpus: [], source: null, notes };
}

/**
 * Checks `--gpus` against what the machine lists: every index or UUID must be one of its GPUs. A machine where nothing
 * can list GPUs is refused too: a sweep whose every run fails on a missing device is worse than an error now.
 */
export function checkGpusPresent(ids: readonly string[], listing: GpuListing, what = "--gpus"): void {
  if (listing.source === null) {
    throw new GpuOptionError(`${what} ${ids.join(",")}: no GPU can be listed on this machine (${listing.notes.join("; ")}); run \`bench doctor\` to see what is missing`);
  }
  const known = (id: string) => listing.gpus.some((g) => String(g.index) === id || g.uuid === id || (id.startsWith("MIG-") && listing.source === "nvidia-smi"));
  const missing = ids.filter((id) => !known(id));
  if (missing.length > 0) {
    const choices = listing.gpus.map((g) => `${g.index} (${g.name}${g.uuid ? `, ${g.uuid}` : ""})`).join(", ");
    throw new GpuOptionError(`${what}: GPU ${missing.join(", ")} is not on this machine; ${listing.source} lists ${choices}`);
  }
}

export interface GpuRequest {
  /** `--gpus`: "0,1", a UUID list, or "all" (CUDA_VISIBLE_DEVICES's list when set, else every GPU listed). */
  gpus: string;
  jobsPerGpu?: string;
  /** `--jobs` when the user gave it (it must then equal gpus × K). */
  jobs?: number;
  /** The backend asked for (absent: not known yet, as for a queue worker, whose jobs name it), and what auto resolves to. */
  backend?: string;
  resolvedBackend?: string;
}

export interface GpuPlan {
  gpus: string[];
  jobsPerGpu: number;
  slots: GpuSlot[];
}

/** The backends that train on a GPU. */
export const GPU_BACKENDS = ["torch"] as const;

/**
 * `--gpus … [--jobs-per-gpu K]` validated and turned into worker slots. `listing` is consulted for explicit ids
 * (and for "all" without CUDA_VISIBLE_DEVICES); the ids of CUDA_VISIBLE_DEVICES are taken as given, as the launcher
 * (Slurm) that set it knows them.
 */
export async function planGpus(req: GpuRequest, env: NodeJS.ProcessEnv, listing: () => Promise<GpuListing> = () => listGpus(env)): Promise<GpuPlan> {
  // Checked in the order a user fixes them: the ids as typed, then whether this machine has them, then the backend.
  const jobsPerGpu = parseJobsPerGpu(req.jobsPerGpu ?? "1");
  let gpus: string[];
  if (req.gpus.trim() === "all") {
    const visible = env[GPU_ENV.visible]?.trim();
    if (visible) gpus = parseGpuList(visible, "CUDA_VISIBLE_DEVICES (for --gpus all)");
    else {
      const l = await listing();
      if (l.source === null || l.gpus.length === 0) checkGpusPresent(["all"], l);
      gpus = l.gpus.map((g) => String(g.index));
    }
  } else {
    gpus = parseGpuList(req.gpus);
    checkGpusPresent(gpus, await listing());
  }
  const backend = req.backend === "auto" ? req.resolvedBackend ?? "auto" : req.backend;
  if (backend !== undefined && !(GPU_BACKENDS as readonly string[]).includes(backend)) {
    const how = req.backend === "auto" ? `--backend auto picks ${backend} here, which` : `--backend ${backend}`;
    throw new GpuOptionError(`--gpus needs a GPU backend (${GPU_BACKENDS.join(", ")}): ${how} trains on the CPU; pass --backend torch (built with scripts/build-torch.sh --torch-dir auto), or leave --gpus out`);
  }
  const workers = gpus.length * jobsPerGpu;
  if (req.jobs !== undefined && req.jobs !== workers) {
    throw new GpuOptionError(`--jobs ${req.jobs} disagrees with --gpus ${gpus.join(",")} × --jobs-per-gpu ${jobsPerGpu} = ${workers} workers; leave --jobs out (it follows from the GPUs) or set --jobs-per-gpu`);
  }
  return { gpus, jobsPerGpu, slots: gpuSlots(gpus, jobsPerGpu) };
}

/**
 * `--backend torch --gpus`: the torch addon must see CUDA. An addon built against a CPU-only libtorch (Debian's
 * libtorch-dev, on a machine whose nvidia-smi lists GPUs) would otherwise fail every run, one by one.
 */
export async function checkTorchSeesGpus(gpus: readonly string[], addon: typeof torchAddonGpus = torchAddonGpus): Promise<void> {
  const a = await addon();
  if ("error" in a) throw new GpuOptionError(`--gpus ${gpus.join(",")} with --backend torch: ${a.error}`);
  if (!a.cudaAvailable) {
    const why = a.cudaVersion ? `libtorch ${a.torchVersion} with CUDA ${a.cudaVersion} finds no GPU (driver? CUDA_VISIBLE_DEVICES?)` : `it was built against libtorch ${a.torchVersion} without CUDA`;
    throw new GpuOptionError(`--gpus ${gpus.join(",")}: the torch addon cannot use a GPU: ${why}; rebuild it against a PyTorch with CUDA: scripts/build-torch.sh --torch-dir auto`);
  }
}
