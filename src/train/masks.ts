/** Binary masks on named parameters: a pruned weight is 0 in its mask and stays exactly 0 after every step. */
import * as tf from "@tensorflow/tfjs-core";
import { sparsePattern, type SparsePattern, type SparsePatterns } from "../backend/sparse-ops.js";
import { makeRng } from "../core/rng.js";

export class MaskSet implements SparsePatterns {
  private readonly masks = new Map<string, tf.Tensor>();
  private changes = 0;
  /** Sparsity patterns of the masks, built on first use and dropped when their mask is replaced. */
  private readonly patterns = new Map<string, SparsePattern>();

  /** Set (or replace) the mask of a tensor from 0/1 values. */
  set(name: string, values: Float32Array, shape: number[]): void {
    this.masks.get(name)?.dispose();
    this.dropPattern(name);
    this.masks.set(name, tf.keep(tf.tensor(values, shape)));
    this.changes++;
  }

  /** Changes with every `set`: soft-mask training (soft-masks.ts) re-derives the weights only when a mask changed. */
  get version(): number { return this.changes; }

  /** The support of `name`'s mask, for the sparse kernels (src/backend/sparse-ops.ts); undefined when unmasked. */
  pattern(name: string): SparsePattern | undefined {
    let p = this.patterns.get(name);
    if (!p) {
      const mask = this.masks.get(name);
      if (!mask) return undefined;
      p = sparsePattern(mask.dataSync(), mask.shape);
      this.patterns.set(name, p);
    }
    return p;
  }

  private dropPattern(name: string): void {
    this.patterns.get(name)?.dispose();
    this.patterns.delete(name);
  }

  has(name: string): boolean { return this.masks.has(name); }
  get(name: string): tf.Tensor | undefined { return this.masks.get(name); }
  get size(): number { return this.masks.size; }
  names(): string[] { return [...this.masks.keys()]; }

  /** Multiply each masked variable by its mask: only pruned tensors are touched. */
  apply(params: ReadonlyMap<string, tf.Variable>): void {
    for (const [name, mask] of this.masks) {
      const w = params.get(name);
      if (!w) throw new Error(`mask for unknown tensor ${name}`);
      tf.tidy(() => w.assign(tf.mul(w, mask)));
    }
  }

  values(name: string): Float32Array | undefined {
    return this.masks.get(name)?.dataSync() as Float32Array | undefined;
  }

  dispose(): void {
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
    for (const name of [...this.patterns.keys()]) this.dropPattern(name);
  }
}

/** Seeded random masks removing a fraction `pruned` of every kernel: a fixture for tests and benchmarks of the masked step. */
export function randomKernelMasks(params: ReadonlyMap<string, tf.Variable>, pruned: number, seed: number): MaskSet {
  const masks = new MaskSet();
  for (const [name, v] of params) {
    if (!name.endsWith("/kernel")) continue;
    const rng = makeRng(seed, name);
    masks.set(name, new Float32Array(v.size).map(() => (rng() < pruned ? 0 : 1)), v.shape);
  }
  return masks;
}
