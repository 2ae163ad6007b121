/**
 * Sanity ablations of a mask (Frankle et al. 2021, "Pruning Neural Networks at Initialization: Why are We Missing the
 * Mark?"; Su et al. 2020, "Sanity-checking pruning methods: random tickets can win the jackpot"): if a method's
 * masks are worth no more than their per-layer ratios, shuffling the survivors inside each layer costs nothing.
 */
import { makeRng } from "../core/rng.js";

/**
 * A mask with as many ones as `mask`, at positions drawn uniformly at random (a partial Fisher–Yates over all
 * positions, from the stream of `seed` and `stream`): same seed and stream, same positions.
 */
export function shuffledMask(mask: Float32Array, seed: number, stream: string): Float32Array {
  let kept = 0;
  for (const m of mask) if (m !== 0) kept++;
  const rng = makeRng(seed, stream);
  const order = Int32Array.from({ length: mask.length }, (_, i) => i);
  const out = new Float32Array(mask.length);
  // Only the first `kept` picks are needed: each is uniform over the positions not yet picked.
  for (let i = 0; i < kept; i++) {
    const j = i + Math.floor(rng() * (mask.length - i));
    const tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
    out[order[i]] = 1;
  }
  return out;
}
