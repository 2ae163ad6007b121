/**
 * Training-batch augmentation: torchvision's RandomCrop(size, padding=4) followed by RandomHorizontalFlip(), on
 * standardized NHWC images. Padding is the standardized value of a black pixel per channel, as torchvision pads
 * the raw image with zeros before normalising. Applied to training batches only (loop.ts), from its own seeded
 * stream, so a run's batch order is the same with and without it.
 */
import type { Rng } from "../core/rng.js";

export interface Augmentation {
  kind: "crop-flip";
  /** Pixels of padding on each side before the random crop back to the original size. */
  pad: number;
  /** Per channel: the value a padded pixel takes (a black pixel, standardized). */
  fill: Float32Array;
}

/**
 * `count` images of shape [h, w, c] from `x`, each cropped at a random offset in [0, 2·pad]² of its padded copy and
 * flipped left-right with probability 1/2. Three draws per image, in image order.
 */
export function cropFlip(x: Float32Array, count: number, shape: readonly [number, number, number], aug: Augmentation, rng: Rng): Float32Array {
  const [h, w, c] = shape;
  const size = h * w * c;
  const out = new Float32Array(x.length);
  const span = 2 * aug.pad + 1;
  for (let n = 0; n < count; n++) {
    const dy = Math.floor(rng() * span) - aug.pad;
    const dx = Math.floor(rng() * span) - aug.pad;
    const flip = rng() < 0.5;
    const base = n * size;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      for (let xo = 0; xo < w; xo++) {
        // The crop's column xo (after the flip) reads column xc of the crop, i.e. column xc + dx of the original.
        const xc = flip ? w - 1 - xo : xo;
        const sx = xc + dx;
        const to = base + (y * w + xo) * c;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
          for (let k = 0; k < c; k++) out[to + k] = aug.fill[k];
        } else {
          const from = base + (sy * w + sx) * c;
          for (let k = 0; k < c; k++) out[to + k] = x[from + k];
        }
      }
    }
  }
  return out;
}
