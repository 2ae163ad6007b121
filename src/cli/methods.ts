import { METHODS } from "../../methods/index.js";
import type { PruningMethod } from "../../methods/types.js";
import type { HyperValue } from "../core/types.js";
import type { Distribution } from "../prune/allocate.js";
import { emit } from "./output.js";

/**
 * Where a method's per-layer ratios come from, read from its declared distribution (never from its name): "global"
 * ranks every prunable weight (or channel) together, so each layer's ratio is the method's outcome; "layer" and "erk"
 * take the ratios from a rule fixed before scoring. `with` lists the hyperparameter choices that change it from the
 * default (gmp's scope, rigl's distribution).
 */
export interface LayerRatios {
  source: "method" | "distribution";
  distribution: Distribution;
  with: Array<{ param: string; value: HyperValue; source: "method" | "distribution"; distribution: Distribution }>;
}

const sourceOf = (d: Distribution): LayerRatios["source"] => (d === "global" ? "method" : "distribution");

export function layerRatios(m: PruningMethod): LayerRatios {
  const defaults: Record<string, HyperValue> = Object.fromEntries(Object.entries(m.params).map(([k, p]) => [k, p.default]));
  const distribution = m.distribution(defaults);
  const alternatives: LayerRatios["with"] = [];
  for (const [param, spec] of Object.entries(m.params)) {
    for (const value of spec.choices ?? []) {
      if (value === spec.default) continue;
      const d = m.distribution({ ...defaults, [param]: value });
      if (d !== distribution) alternatives.push({ param, value, source: sourceOf(d), distribution: d });
    }
  }
  return { source: sourceOf(distribution), distribution, with: alternatives };
}

const DESCRIBE: Record<Distribution, string> = {
  global: "set by the method (global: one ranking across layers)",
  layer: "from a distribution (layer: the same fraction in every layer)",
  erk: "from a distribution (erk: Erdős–Rényi-Kernel)",
};

/** One line for the text listing. */
export function layerRatiosLine(r: LayerRatios): string {
  const alt = r.with.map((a) => `; ${a.param}: ${String(a.value)} → ${a.distribution}`).join("");
  return `layer ratios: ${DESCRIBE[r.distribution]}${alt}`;
}

export default function methods(o: { json?: boolean }): number {
  if (o.json) {
    emit(JSON.stringify(METHODS.map((m) => ({ name: m.name, summary: m.summary, paper: m.paper, params: m.params, needs: m.needs, layerRatios: layerRatios(m) })), null, 2));
    return 0;
  }
  const blocks = METHODS.map((m) => {
    const params = Object.entries(m.params).map(([k, p]) =>
      `    ${k} (${p.type}${p.choices ? `: ${p.choices.join("|")}` : ""}${p.min !== undefined ? `, min ${p.min}` : ""}${p.max !== undefined ? `, max ${p.max}` : ""}) = ${JSON.stringify(p.default)} — ${p.description}`);
    return [`${m.name}`, `    ${m.summary}`, `    paper: ${m.paper.authors}, "${m.paper.title}", ${m.paper.venue} ${m.paper.year}${m.paper.url ? ` ${m.paper.url}` : ""}`,
      `    ${layerRatiosLine(layerRatios(m))}`,
      params.length ? `    hyperparameters:\n${params.map((l) => `  ${l}`).join("\n")}` : "    hyperparameters: none"].join("\n");
  });
  emit(blocks.join("\n\n"));
  return 0;
}
