/**
 * Content-addressed run identities. A run's key is a hash of everything that determines its result, so a finished
 * run is found again (and skipped) when the same configuration is asked for, and a changed configuration never
 * reuses a stale result. test/runkey.test.ts pins exact keys: changing what goes into the hash orphans every
 * stored run, so do it only on purpose (and bump the code fingerprint instead where possible).
 */
import { createHash } from "node:crypto";
import type { RunConfig } from "../core/types.js";
import { canonicalJson } from "../core/canonical.js";
import type { LossTerm } from "../prune/loss-terms.js";

/** Fingerprints of the code (harness + methods + archs version), of the prepared data files, and of the method. */
export interface Fingerprint {
  code: string;
  data: string;
  /** sha256 of the method's own source (methodSourceHash): editing a method re-keys its runs, and only its runs. */
  method?: string;
}

/**
 * Config fields added after keys were first issued, each with the value that reproduces the behaviour from before it
 * existed. At that value a field is left out of the hash, so adding it orphans no finished run (open_lth's hparams
 * do the same); any other value is part of the key. Append only.
 */
export const KEY_NEUTRAL_DEFAULTS: ReadonlyArray<{ path: readonly string[]; value: unknown }> = [
  // Protocol knobs (before them: He-uniform init, plain momentum, no warmup, best-validation-epoch selection, the
  // dataset's own statistics, no augmentation). `model` is a whole block that did not exist: it is matched whole,
  // since dropping only `init` would leave `model: {}` in the hash. A later field of `model` must widen this value.
  { path: ["model"], value: { init: "he-uniform" } },
  { path: ["pretrain", "nesterov"], value: false },
  { path: ["pretrain", "warmupEpochs"], value: 0 },
  { path: ["finetune", "nesterov"], value: false },
  { path: ["finetune", "warmupEpochs"], value: 0 },
  { path: ["finetune", "select"], value: "best-val" },
  { path: ["data", "normalize"], value: "dataset" },
  { path: ["data", "augment"], value: "none" },
  // Sanity ablations (before them every run was its method's own masks and weights).
  { path: ["ablation"], value: "none" },
];

/** `value` without the fields at their key-neutral default (a copy; nested objects copied along the paths). */
export function stripNeutralDefaults<T>(value: T, neutral: ReadonlyArray<{ path: readonly string[]; value: unknown }> = KEY_NEUTRAL_DEFAULTS): T {
  let out: any = value;
  for (const { path, value: neutralValue } of neutral) {
    const parents: any[] = [];
    let node: any = out;
    for (const k of path.slice(0, -1)) {
      parents.push(node);
      node = node?.[k];
    }
    const last = path[path.length - 1];
    if (node === null || typeof node !== "object" || !(last in node) || canonicalJson(node[last]) !== canonicalJson(neutralValue)) continue;
    // Copy the objects on the path, then drop the field from the innermost copy.
    let copy: any = { ...node };
    delete copy[last];
    for (let i = path.length - 2; i >= 0; i--) copy = { ...parents[i], [path[i]]: copy };
    out = copy;
  }
  return out;
}

export const KEY_HEX_CHARS = 16;

function hashKey(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value), "utf8").digest("hex").slice(0, KEY_HEX_CHARS);
}

/**
 * Identity of one pruning run: first 16 hex chars of sha256(canonicalJson({ config, code, data[, method] })), the
 * config without its key-neutral defaults.
 */
export function runKey(config: RunConfig, fp: Fingerprint): string {
  return hashKey({ config: stripNeutralDefaults(config), code: fp.code, data: fp.data, ...(fp.method ? { method: fp.method } : {}) });
}

/** The part of a run that dense pretraining depends on. Runs differing only in method, target, fine-tuning,
 * prunable policy or eval settings share it (and therefore share one dense model). The init is part of it; it is
 * absent (and so not hashed) when stripped at its key-neutral value, which keeps earlier dense keys. */
export function denseSpec(config: RunConfig): Pick<RunConfig, "arch" | "dataset" | "seed" | "pretrain" | "data"> & Partial<Pick<RunConfig, "model">> {
  return { arch: config.arch, dataset: config.dataset, seed: config.seed, model: config.model, pretrain: config.pretrain, data: config.data };
}

/**
 * Identity of the dense pretrained model a run starts from. `lossTerms`: the method's loss terms that act while
 * pretraining (pretrainTermsForKey), which make the dense model another one; none (the usual case) hashes exactly
 * what it always did, so no dense key moved when they were added.
 */
export function denseKey(config: RunConfig, fp: Fingerprint, lossTerms: ReadonlyArray<Omit<LossTerm, "phases">> = []): string {
  return hashKey({ dense: denseSpec(stripNeutralDefaults(config)), code: fp.code, data: fp.data, ...(lossTerms.length > 0 ? { lossTerms } : {}) });
}
