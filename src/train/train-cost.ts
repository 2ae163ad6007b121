/**
 * The compute a training phase spends, counted as it goes: images through training steps, and training MACs under
 * the convention stated with the metrics (src/metrics/names.ts, train_macs): one training image costs
 * TRAIN_MACS_PER_FORWARD × the forward MACs of the masked model at that step (forward 1×, backward ≈ 2×: the gradient
 * with respect to activations and to weights each cost about one forward). The masked model's forward MACs are the
 * effective MACs of the README (each layer's MACs × its kernel's mask density), recounted only when the masks
 * change (MaskSet.version), so a gradual or dynamic schedule is charged what each of its steps trained.
 */
import type { LayerInfo } from "../archs/ops.js";
import { maskedMacs } from "../metrics/counts.js";
import type { MaskSet } from "./masks.js";

/** Forward + backward ≈ 3 forward passes (Kaplan et al. 2020; the usual accounting of training FLOPs). */
export const TRAIN_MACS_PER_FORWARD = 3;

/** Forward MACs of one input through `layers` with each kernel's MACs scaled by its mask's density. */
export function maskedForwardMacs(layers: readonly LayerInfo[], masks: MaskSet): number {
  return maskedMacs(layers, (name) => (masks.has(name) ? masks.values(name) : undefined)).effective;
}

export class TrainCost {
  images = 0;
  macs = 0;
  private perImage = 0;
  private version = -1;

  constructor(private readonly layers: readonly LayerInfo[], private readonly masks: MaskSet) {}

  /** One training step over `batch` images, under the masks as they are now. */
  step(batch: number): void {
    if (this.masks.version !== this.version) {
      this.version = this.masks.version;
      this.perImage = TRAIN_MACS_PER_FORWARD * maskedForwardMacs(this.layers, this.masks);
    }
    this.images += batch;
    this.macs += batch * this.perImage;
  }
}
