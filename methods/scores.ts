/** Score helpers shared by several methods. */
import type { PrunableTensor } from "./types.js";

export function absoluteValues(tensors: readonly PrunableTensor[]): Map<string, Float32Array> {
  return new Map(tensors.map((t) => [t.name, t.values.map(Math.abs)]));
}
