/** The package version, and the code fingerprint that goes into every run key. */
export const PRUNEBENCH_VERSION = "0.1.0";

/**
 * Bump RESULTS_REVISION whenever a change alters what a run computes (training, pruning, metrics): finished runs
 * then get new keys and are re-run, instead of silently mixing old and new numbers. Cosmetic changes leave it.
 */
export const RESULTS_REVISION = 3;

export const CODE_VERSION = `prunebench-${PRUNEBENCH_VERSION}+r${RESULTS_REVISION}`;

/**
 * sha256 of the sources that compute results, as of the last decision about RESULTS_REVISION
 * (test/results-revision.test.ts recomputes it and says what to do when it differs).
 */
export const RESULTS_SOURCES_SHA256 = "a230e17fe2430cb2f0193d32ca29f424a32f08166b822c2dd9ffe5007b8d9d64";
