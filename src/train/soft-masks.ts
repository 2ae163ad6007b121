/**
 * Soft masks: training where a masked weight is out of the forward pass but not out of training. The forward pass
 * sees W⊙T; the gradient ∂L/∂(W⊙T) updates all of W, masked entries included (straight-through), so a weight pruned
 * now keeps moving and can come back when its mask turns to 1 again (Guo et al. 2016's Dynamic Network Surgery
 * trains this way). Hard masks (the default) zero masked weights and their gradients after every step instead.
 *
 * How: the model's variables hold W⊙T and the dense W of each masked tensor is kept in a variable of its own here,
 * rather than the variables holding W and W⊙T being swapped in around each forward/backward pass. With the
 * variables holding W⊙T at every moment outside an optimizer step, everything that reads the model (the forward
 * pass, the gradient, validation, best-epoch snapshots, scoring, the run's measurements, saved weights) sees the
 * masked weights without knowing that soft masks exist, the gradient with respect to the variables is exactly
 * ∂L/∂(W⊙T), and a phase ends with W⊙T in the model by construction. Only the optimizer (and a hook that asks)
 * sees W: it updates the dense copy without a mask, and W⊙T is derived again, one multiply per masked tensor per
 * step. A swap would cost two copies per step and a rule for every reader. Nothing here runs on the hard path.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { MaskSet } from "./masks.js";

export class DenseWeights {
  private readonly dense = new Map<string, tf.Variable>();
  private targets: Map<string, tf.Variable>;
  private seen: number;

  /** Takes the variables' values as the dense weights of every masked tensor: call it before the masks are applied. */
  constructor(private readonly params: ReadonlyMap<string, tf.Variable>, private readonly masks: MaskSet) {
    this.targets = new Map(params);
    this.adopt();
    this.seen = masks.version;
  }

  /** The tensors the optimizer updates, by name: a masked tensor's dense weights, any other tensor's variable. */
  optimizerParams(): Map<string, tf.Variable> {
    return this.targets;
  }

  /** The dense weights W of every masked tensor (read-only for callers). */
  weights(): ReadonlyMap<string, tf.Tensor> {
    return this.dense;
  }

  /** The variables from the dense weights: W⊙T. Call after every optimizer step. */
  refresh(): void {
    for (const [name, w] of this.dense) {
      const v = this.params.get(name)!;
      tf.tidy(() => v.assign(tf.mul(w, this.masks.get(name)!)));
    }
  }

  /**
   * After a mask may have changed (a hook): a tensor masked for the first time has its dense weights taken from its
   * variable (still dense: on this path nothing but this class applies masks), and W⊙T is derived again under the
   * new masks, so a weight spliced back returns with its dense value. Nothing happens when no mask changed.
   */
  sync(): void {
    if (this.masks.version === this.seen) return;
    this.adopt();
    this.refresh();
    this.seen = this.masks.version;
  }

  dispose(): void {
    for (const w of this.dense.values()) w.dispose();
    this.dense.clear();
  }

  private adopt(): void {
    let added = false;
    for (const name of this.masks.names()) {
      if (this.dense.has(name)) continue;
      const v = this.params.get(name);
      if (!v) throw new Error(`mask for unknown tensor ${name}`);
      this.dense.set(name, tf.tidy(() => tf.variable(v.clone(), false)));
      added = true;
    }
    if (added) this.targets = new Map([...this.params].map(([name, v]) => [name, this.dense.get(name) ?? v]));
  }
}
