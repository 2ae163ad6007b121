/** The package version, and the code fingerprint that goes into every run key. */
export const PRUNEBENCH_VERSION = "0.1.0";

/**
 * Bump RESULTS_REVISION whenever a change alters what a run computes (training, pruning, metrics): finished runs
 * then get new keys and are re-run, instead of silently mixing old and new numbers. Cosmetic changes leave it.
 */
export const RESULTS_REVISION = 1;

export const CODE_VERSION = `prunebench-${PRUNEBENCH_VERSION}+r${RESULTS_REVISION}`;
