/**
 * Iterative runs store each level they pass through as a child run. Runs of one seed to different final targets pass
 * through the same first levels (the same training), so reports and tables must count such a level once: stored three
 * times, it would pass for three seeds with no spread.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { PROTOCOL_VERSION, type Grid, type JobResult, type PlannedRun } from "../src/core/types.js";
import { Store } from "../src/store/store.js";
import { readReportData, readRuns } from "../reports/read.js";
import { tempDir } from "./helpers/cli.js";
import { smallConfig } from "./helpers/config.js";

function level(top1: number, sparsity: number) {
  return {
    metrics: { top1_after: top1, sparsity, compression_ratio: 1 / (1 - sparsity) },
    layers: [], epochs: [], classes: [],
  };
}

test("a level shared by one seed's runs to several targets is one point in reports; ls/show still list every stored row", () => {
  const store = new Store(join(tempDir("levels-"), "r.db"));
  const method = { name: "imp", params: { rate: 0.5 } };
  // Seed 0 to 4x and 8x (both pass through 2x, the 8x run through 4x too); seed 1 to 4x.
  const runs = [
    { key: "s0-4x", seed: 0, target: 0.75, levels: [[0.86, 0.5], [0.85, 0.75]] },
    { key: "s0-8x", seed: 0, target: 0.875, levels: [[0.86, 0.5], [0.85, 0.75], [0.83, 0.875]] },
    { key: "s1-4x", seed: 1, target: 0.75, levels: [[0.84, 0.5], [0.83, 0.75]] },
  ];
  const planned: PlannedRun[] = runs.map((r) => ({
    key: r.key, denseKey: `dense-${r.seed}`, methodLabel: "imp", codeVersion: "test", dataFingerprint: "fp",
    config: smallConfig({ method, seed: r.seed, target: { kind: "sparsity", value: r.target } }),
  }));
  store.createSweep({ name: "levels", file: "levels.yaml", reference: [] } as unknown as Grid, "name: levels\n", "test", planned);
  for (const r of runs) {
    const levels = r.levels.map(([top1, sparsity], i) => ({ level: i + 1, ...level(top1, sparsity) }));
    const result: JobResult = {
      protocol: PROTOCOL_VERSION, kind: "run", key: r.key, status: "done", error: null, backend: { name: "cpu", tfjsVersion: "4", threads: 1 },
      ...levels[levels.length - 1], artifacts: [], startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:01:00Z", host: "h", pid: 1, levels,
    };
    store.saveResult(result);
  }
  const at = (rows: ReturnType<typeof readRuns>, sparsity: number) => rows.filter((r) => r.targetKind === "sparsity" && r.targetValue === sparsity);

  const stored = readRuns(store);
  assert.equal(stored.length, 3 + 1 + 2 + 1, "3 runs, seed 0's 4x run: 1 level below it, 8x: 2, seed 1: 1");
  assert.equal(at(stored, 0.5).length, 3);

  const report = readReportData(store).runs;
  // 2x: one point per seed, seed 0's level (stored by both of its lineages) once.
  assert.deepEqual(at(report, 0.5).map((r) => [r.seed, r.metrics.top1_after]).sort(), [[0, 0.86], [1, 0.84]]);
  // 4x: seed 0's own 4x run is the same training as the 8x run's level at 4x: the run row stands for both.
  assert.deepEqual(at(report, 0.75).map((r) => r.key).sort(), ["s0-4x", "s1-4x"]);
  assert.equal(report.length, 3 + 2, "the three runs and one 2x level per seed");
  store.close();
});
