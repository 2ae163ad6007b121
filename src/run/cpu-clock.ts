/**
 * CPU time of a worker, charged to the phase it is in: where a sweep's compute goes (dense pretraining, pruning and
 * scoring, fine-tuning, evaluation, latency timing, set-up, saving). Process CPU (all threads), not wall time: on a
 * shared machine wall time measures the neighbours. Phases nest exclusively: a prune inside a training hook is charged
 * to pruning only, the rest of that training step to fine-tuning. "startup": a worker's imports and backend start,
 * charged to its first job.
 */
export const CPU_PHASES = ["startup", "setup", "pretrain", "prune", "finetune", "eval", "latency", "save"] as const;
export type CpuPhase = (typeof CPU_PHASES)[number];

export const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

export class CpuClock {
  private readonly spent = new Map<CpuPhase, number>();
  private current: CpuPhase = "setup";
  private since = cpuSeconds();

  /** Charge `seconds` spent before this clock started (a worker's start-up) to `phase`. */
  charge(phase: CpuPhase, seconds: number): void {
    this.spent.set(phase, (this.spent.get(phase) ?? 0) + seconds);
  }

  /** Charge what was spent so far to the current phase and start `phase`; returns the phase left. */
  enter(phase: CpuPhase): CpuPhase {
    const now = cpuSeconds();
    this.spent.set(this.current, (this.spent.get(this.current) ?? 0) + now - this.since);
    this.since = now;
    const left = this.current;
    this.current = phase;
    return left;
  }

  async time<T>(phase: CpuPhase, fn: () => Promise<T> | T): Promise<T> {
    const left = this.enter(phase);
    try {
      return await fn();
    } finally {
      this.enter(left);
    }
  }

  /** `cpu_<phase>_seconds` for every phase (0 for those not entered), charging the current one up to now. */
  metrics(): Record<string, number> {
    this.enter(this.current);
    return Object.fromEntries(CPU_PHASES.map((p) => [`cpu_${p}_seconds`, this.spent.get(p) ?? 0]));
  }
}
