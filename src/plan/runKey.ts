/**
 * Content-addressed run identities. A run's key is a hash of everything that determines its result, so a finished
 * run is found again (and skipped) when the same configuration is asked for, and a changed configuration never
 * reuses a stale result. test/runkey.test.ts pins exact keys: changing what goes into the hash orphans every
 * stored run, so do it only on purpose (and bump the code fingerprint instead where possible).
 */
import { createHash } from "node:crypto";
import type { RunConfig } from "../core/types.js";
import { canonicalJson } from "../core/canonical.js";

/** Fingerprints of the code (harness + methods + archs version) and of the prepared data files. */
export interface Fingerprint {
  code: string;
  data: string;
}

export const KEY_HEX_CHARS = 16;

function hashKey(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value), "utf8").digest("hex").slice(0, KEY_HEX_CHARS);
}

/** Identity of one pruning run: first 16 hex chars of sha256(canonicalJson({ config, code, data })). */
export function runKey(config: RunConfig, fp: Fingerprint): string {
  return hashKey({ config, code: fp.code, data: fp.data });
}

/** The part of a run that dense pretraining depends on. Runs differing only in method, target, fine-tuning,
 * prunable policy or eval settings share it (and therefore share one dense model). */
export function denseSpec(config: RunConfig): Pick<RunConfig, "arch" | "dataset" | "seed" | "pretrain" | "data"> {
  return { arch: config.arch, dataset: config.dataset, seed: config.seed, pretrain: config.pretrain, data: config.data };
}

/** Identity of the dense pretrained model a run starts from. */
export function denseKey(config: RunConfig, fp: Fingerprint): string {
  return hashKey({ dense: denseSpec(config), code: fp.code, data: fp.data });
}
