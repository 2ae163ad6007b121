/** Sweep progress: a redrawn bar with ETA on a terminal, one plain line per event otherwise (CI logs, files). */

export interface ProgressCounts {
  total: number;
  done: number;
  failed: number;
  running: number;
  skipped: number;
}

export class Progress {
  private readonly started = Date.now();
  private readonly tty: boolean;
  private lastDraw = 0;
  private runSeconds: number[] = [];
  /** Runs finished per worker (host:pid), when the workers are not this machine's own (a queue). */
  private workers: ReadonlyMap<string, number> | null = null;

  constructor(private readonly out: NodeJS.WriteStream, private readonly jobs: number, forcePlain = false) {
    this.tty = Boolean(out.isTTY) && !forcePlain;
  }

  /** A line that must stay in the log (a finished or failed run). */
  event(line: string, counts: ProgressCounts, runSeconds?: number): void {
    if (runSeconds !== undefined) this.runSeconds.push(runSeconds);
    if (this.tty) this.out.write(`\r\x1b[K${line}\n`);
    else this.out.write(`[${counts.done + counts.failed}/${counts.total - counts.skipped}] ${line}\n`);
    this.draw(counts, true);
  }

  draw(counts: ProgressCounts, force = false): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 200) return;
    this.lastDraw = now;
    const todo = counts.total - counts.skipped;
    const finished = counts.done + counts.failed;
    const width = 28;
    const filled = todo === 0 ? width : Math.round((finished / todo) * width);
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    this.out.write(`\r\x1b[K[${bar}] ${finished}/${todo}  done ${counts.done}  failed ${counts.failed}  running ${counts.running}  ` +
      `elapsed ${fmt((now - this.started) / 1000)}  ETA ${this.eta(todo - finished)}` +
      (this.workers && this.workers.size > 0 ? `  workers ${[...this.workers].map(([w, n]) => `${w}=${n}`).join(" ")}` : ""));
  }

  setWorkers(workers: ReadonlyMap<string, number>): void {
    this.workers = workers;
  }

  finish(): void {
    if (this.tty) this.out.write("\n");
  }

  private eta(remaining: number): string {
    if (remaining <= 0) return "0s";
    if (this.runSeconds.length === 0) return "?";
    const mean = this.runSeconds.reduce((a, b) => a + b, 0) / this.runSeconds.length;
    return fmt((mean * remaining) / Math.max(this.jobs, this.workers?.size ?? 0));
  }
}

export function fmt(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`;
}
