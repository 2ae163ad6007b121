/**
 * From a grid's runs to a plan: each run gets its key (config + code + data fingerprints) and the key of the dense
 * model it starts from, so the scheduler trains each dense model once.
 */
import type { Catalog, PlannedRun, RunConfig } from "../core/types.js";
import { methodLabel } from "../grid/index.js";
import { CODE_VERSION } from "../core/version.js";
import { methodSourceHash } from "./method-source.js";
import { denseKey, runKey } from "./runKey.js";
import { getMethod } from "../../methods/index.js";
import { pretrainTermsForKey } from "../prune/loss-terms.js";

export function planRuns(configs: readonly RunConfig[], dataFingerprints: ReadonlyMap<string, string>, cat: Catalog): PlannedRun[] {
  return configs.map((config) => {
    const data = dataFingerprints.get(config.dataset);
    if (!data) throw new Error(`no data fingerprint for dataset ${config.dataset}`);
    const fp = { code: CODE_VERSION, data };
    const terms = pretrainTermsForKey(getMethod(config.method.name).lossTerms?.(config.method.params) ?? []);
    return { key: runKey(config, { ...fp, method: methodSourceHash(config.method.name) }), denseKey: denseKey(config, fp, terms), config, methodLabel: methodLabel(config.method, cat, config.ablation), codeVersion: CODE_VERSION, dataFingerprint: data };
  });
}

/** Dense models the plan needs, each with the first run that needs it (its config defines the pretraining). */
export function denseModels(runs: readonly PlannedRun[]): PlannedRun[] {
  const seen = new Map<string, PlannedRun>();
  for (const r of runs) if (!seen.has(r.denseKey)) seen.set(r.denseKey, r);
  return [...seen.values()];
}
