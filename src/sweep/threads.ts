/**
 * How many intra-op threads a job gets when it starts. A sweep runs one job per worker; in its tail (or a sweep of
 * one long run) fewer jobs are left than workers and cores sit idle, so the jobs that start then share the cores.
 * The count is fixed for a job once it starts. The native backend's results are the same at any count, so this
 * changes speed, never results.
 */
export type ThreadsSetting = "auto" | number;

/** `--threads auto|N`: a clear message for anything else. */
export function parseThreads(value: string): ThreadsSetting | Error {
  if (value === "auto") return "auto";
  if (/^\s*\d+\s*$/.test(value) && Number(value) >= 1) return Number(value);
  return new Error(`--threads must be "auto" or a positive integer, got "${value}"`);
}

/**
 * auto: the cores divided among the jobs that can run at once (the workers, or fewer when fewer jobs are left,
 * counting those running and those waiting), at least 1.
 */
export function threadsForJob(setting: ThreadsSetting, cores: number, workers: number, jobsLeft: number): number {
  if (setting !== "auto") return setting;
  return Math.max(1, Math.floor(cores / Math.max(1, Math.min(workers, jobsLeft))));
}

/**
 * A GPU worker's CPU threads: 1 unless a count was given. Its kernels run on the GPU; the CPU only feeds it, and
 * gpus x K workers would otherwise contend for a machine's few cores ("auto" too: idle cores do not speed a GPU up).
 */
export function threadsForGpuJob(setting: ThreadsSetting | undefined): number {
  return setting === undefined || setting === "auto" ? 1 : setting;
}
