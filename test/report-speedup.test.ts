/**
 * The report's speedup section, read from a small results database written through the store: structured runs'
 * measured speedup at batch 1 and at the training batch beside the theoretical one, with the latencies' IQR; the plain
 * statement for unstructured runs; and no section at all when no run has a latency.
 */
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { renderHtmlReport } from "../reports/html.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../scripts/report-screenshot.js";
import { readReportData } from "../reports/read.js";
import { unpackRows } from "../reports/sections/common.js";
import type { PackedTable } from "../reports/sections/index.js";
import { PROTOCOL_VERSION, type Grid, type JobResult, type PlannedRun, type PruneTarget } from "../src/core/types.js";
import { Store } from "../src/store/store.js";
import { tempDir } from "./helpers/cli.js";
import { smallConfig } from "./helpers/config.js";

interface FixtureRun { key: string; method: string; arch: string; target: PruneTarget; seed: number; metrics: Record<string, number> }

function database(runs: readonly FixtureRun[]): string {
  const path = join(tempDir("speedup-"), "r.db");
  const store = new Store(path);
  const planned: PlannedRun[] = runs.map((r) => ({
    key: r.key, denseKey: `d-${r.arch}-${r.seed}`, methodLabel: r.method, codeVersion: "test", dataFingerprint: "fp",
    config: smallConfig({ method: { name: r.method, params: {} }, arch: r.arch, dataset: "fashion-mnist", target: r.target, seed: r.seed }),
  }));
  store.createSweep({ name: "speedup", file: "g.yaml", reference: [] } as unknown as Grid, "name: speedup\n", "test", planned);
  for (const r of runs) {
    const result: JobResult = {
      protocol: PROTOCOL_VERSION, kind: "run", key: r.key, status: "done", error: null, backend: { name: "cpu", tfjsVersion: "4", threads: 2 },
      metrics: { top1_dense: 0.9, top1_after: 0.85, ...r.metrics }, layers: [], epochs: [], artifacts: [],
      startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:01:00Z", host: "h", pid: 1,
    };
    store.saveResult(result);
  }
  store.close();
  return path;
}

function structuredRun(seed: number, compactedB1: number, compactedTrain: number): FixtureRun {
  return {
    key: `l1-${seed}`, method: "l1-filter", arch: "lenet5", target: { kind: "macs-reduction", value: 0.5 }, seed,
    metrics: {
      theoretical_speedup: 2, macs_compacted: 208_000, params_compacted: 30_000, latency_form_compacted: 1,
      latency_b1_dense_ms: 1, latency_b1_dense_iqr_ms: 0.1, latency_b1_compacted_ms: compactedB1, latency_b1_compacted_iqr_ms: 0.05,
      measured_speedup_b1: 1 / compactedB1, latency_b1_batch: 1,
      latency_train_dense_ms: 10, latency_train_dense_iqr_ms: 0.4, latency_train_compacted_ms: compactedTrain, latency_train_compacted_iqr_ms: 0.2,
      measured_speedup_train: 10 / compactedTrain, latency_train_batch: 128,
      latency_dense_ms: 10, latency_pruned_ms: compactedTrain, measured_speedup: 10 / compactedTrain,
    },
  };
}

const UNSTRUCTURED: FixtureRun = {
  key: "mag-0", method: "global-magnitude", arch: "mlp", target: { kind: "sparsity", value: 0.9 }, seed: 0,
  metrics: { theoretical_speedup: 8, latency_dense_ms: 2, latency_pruned_ms: 2.04, measured_speedup: 2 / 2.04 },
};

function section(path: string): { html: string; rows: Record<string, unknown>[] } | null {
  const store = new Store(path, { readonly: true });
  const page = renderHtmlReport(readReportData(store));
  store.close();
  const start = page.indexOf('<section id="speedup"');
  if (start < 0) return null;
  const payload = JSON.parse(page.match(/<script type="application\/json" id="pb-data">([\s\S]*?)<\/script>/)![1]) as { data: Record<string, PackedTable> };
  return { html: page.slice(start, page.indexOf("</section>", start)), rows: payload.data.speedup ? unpackRows(payload.data.speedup) : [] };
}

test("structured runs: theoretical vs measured speedup at batch 1 and at the training batch, with the latencies' IQR, per method, arch and target", () => {
  const s = section(database([structuredRun(0, 0.8, 6), structuredRun(1, 0.5, 5)]))!;
  assert.ok(s, "the section is there");
  // One row per group: theoretical 2×, b1 measured 1.25× and 2× (mean 1.63), train 1.67× and 2× (mean 1.83).
  assert.match(s.html, /<td>fashion-mnist · lenet5<\/td><td>l1-filter<\/td><td>macs-reduction 0\.5<\/td><td class="num">2<\/td><td class="num">2\.00×<\/td>/);
  assert.match(s.html, /1\.63× <span class="muted">\[1\.25–2\.00\]<\/span><\/td><td class="num">1\.00 ms <span class="muted">\(IQR 0\.10\)<\/span><\/td><td class="num">0\.65 ms <span class="muted">\(IQR 0\.05\)<\/span>/);
  assert.match(s.html, /1\.83× <span class="muted">\[1\.67–2\.00\]<\/span><\/td><td class="num">10\.0 ms <span class="muted">\(IQR 0\.40\)<\/span><\/td><td class="num">5\.50 ms <span class="muted">\(IQR 0\.20\)<\/span>/);
  assert.match(s.html, /<th colspan="3">training batch \(128\)<\/th>/);
  assert.match(s.html, /<div class="chart" id="chart-speedup"><\/div>/);
  assert.doesNotMatch(s.html, /Unstructured runs/, "no unstructured runs, no statement about them");
  assert.deepEqual(s.rows.map((r) => [r.b, r.th, r.ms, r.lo, r.hi, r.n]), [["batch 1", 2, 1.625, 1.25, 2, 2], ["training batch (128)", 2, 1.8333, 1.6667, 2, 2]]);
});

test("unstructured runs: the section states that dense kernels gain nothing from zeros, with their measured and theoretical speedups", () => {
  const both = section(database([structuredRun(0, 0.8, 6), UNSTRUCTURED]))!;
  assert.match(both.html, /Unstructured runs \(1 run in 1 group\): dense kernels gain nothing from zeros\./);
  assert.match(both.html, /measured speedup is ≈ 1 by construction: 0\.98× to 0\.98× here, while their theoretical speedup \(dense \/ effective MACs\) reaches 8\.00×/);
  assert.ok(both.rows.every((r) => r.m === "l1-filter"), "unstructured runs are not charted");
  const only = section(database([UNSTRUCTURED]))!;
  assert.match(only.html, /dense kernels gain nothing from zeros/);
  assert.doesNotMatch(only.html, /chart-speedup/);
});

test("no run with a latency: no speedup section", () => {
  const none = database([{ key: "mag-0", method: "global-magnitude", arch: "mlp", target: { kind: "sparsity", value: 0.9 }, seed: 0, metrics: { theoretical_speedup: 8 } }]);
  assert.equal(section(none), null);
});

test("the speedup chart draws its points, bars and y = x line in a browser, offline and without errors", { skip: existsSync(CHROMIUM_PATH) ? false : `Chromium not found at ${CHROMIUM_PATH}`, timeout: 120_000 }, async () => {
  const dir = tempDir("speedup-page-");
  const store = new Store(database([structuredRun(0, 0.8, 6), structuredRun(1, 0.5, 5), UNSTRUCTURED]), { readonly: true });
  const file = join(dir, "report.html");
  writeFileSync(file, renderHtmlReport(readReportData(store)));
  store.close();
  const context = await chromium.launchPersistentContext(join(dir, "profile"), { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, offline: true });
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction(() => ["done", "error"].includes(document.body.getAttribute("data-first-view") ?? ""), undefined, { timeout: 60_000 });
    // Charts off screen are drawn when scrolled to: draw them all.
    await page.evaluate(() => (window as unknown as { prunebench: { drawAll(): Promise<void> } }).prunebench.drawAll());
    assert.deepEqual(errors, []);
    const points = await page.$$eval("#chart-speedup g.mark-symbol.role-mark > path", (ps) => ps.length);
    const rules = await page.$$eval("#chart-speedup g.mark-rule.role-mark > line", (ls) => ls.length);
    assert.equal(points, 2, "one point per batch of the one structured group");
    assert.equal(rules, 2 + 1, "a min–max bar per point and the y = x line");
  } finally {
    await context.close();
  }
});
