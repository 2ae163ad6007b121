/**
 * The order in which a sweep hands jobs to its workers: dense models first (every run waits for one), then the
 * longest jobs first, so that the sweep's tail is made of short runs and no worker sits idle while another finishes a
 * long one (longest-processing-time-first scheduling). A job's length is estimated from its training MACs: the
 * architecture's MACs per image x images x epochs, from the layer table (no tensors, no backend).
 */
import { getArch, layerTable } from "../archs/index.js";
import type { Catalog, PlannedRun } from "../core/types.js";
import pLimit, { type LimitFunction } from "p-limit";

/** Estimated training MACs of a job (dense: pretraining; run: fine-tuning); 0 when the architecture is unknown here. */
export function estimatedCost(p: PlannedRun, kind: "dense" | "run", cat: Catalog): number {
  const { arch, dataset, pretrain, finetune } = p.config;
  const data = cat.datasets[dataset];
  if (!data) return 0;
  let macs: number;
  try {
    macs = layerTable(getArch(arch), data.inputShape, data.numClasses).reduce((n, l) => n + l.macs, 0);
  } catch {
    return 0; // an imported architecture not loaded in this process: ordered after the known ones
  }
  const images = data.splitSizes?.train ?? 1;
  return macs * images * (kind === "dense" ? pretrain.epochs : finetune.epochs);
}

/**
 * A concurrency limit whose waiting tasks start highest priority first, priorities compared element by element
 * (ties: first come, first served). p-limit holds the slots; its queue is first-come, so each slot it grants starts
 * whichever waiting task ranks highest at that moment rather than the task that asked for the slot. p-limit grants a
 * slot on a later turn, so tasks queued in the same turn compete by priority, not by who came first.
 */
export class PriorityLimit {
  private seq = 0;
  private readonly slots: LimitFunction;
  private readonly waiting: Array<{ priority: readonly number[]; seq: number; start: () => Promise<void> }> = [];

  constructor(concurrency: number) {
    this.slots = pLimit(concurrency);
  }

  run<T>(priority: readonly number[], fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ priority, seq: this.seq++, start: () => fn().then(resolve, reject) });
      void this.slots(() => this.takeBest().start());
    });
  }

  private takeBest() {
    let best = 0;
    for (let i = 1; i < this.waiting.length; i++) {
      const w = this.waiting[i];
      const b = this.waiting[best];
      const c = compare(w.priority, b.priority);
      if (c > 0 || (c === 0 && w.seq < b.seq)) best = i;
    }
    return this.waiting.splice(best, 1)[0];
  }
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
