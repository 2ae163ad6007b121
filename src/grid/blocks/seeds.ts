/** The seeds axis. */
import type { Checker, TopLevel } from "../checker.js";

export function readSeeds(c: Checker, top: TopLevel): number[] | undefined {
  const node = top.get("seeds");
  if (node === undefined) {
    top.missing("seeds", "a list of non-negative integers, e.g. [0, 1, 2]");
    return undefined;
  }
  const items = c.distinctList(node, "seeds", "seeds (non-negative integers)", (item, p) => c.number(item, p, { integer: true, min: 0, noun: "an integer seed" }), {
    id: (seed) => seed,
    duplicate: (seed, first) => `duplicate seed ${seed} (same as seeds[${first}])`,
  });
  return items?.map((x) => x.value);
}
