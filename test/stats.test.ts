/**
 * The stats module against reference values (scipy 1.17.1 and printed t tables, stated at each number), and the
 * three places that judge "who wins" — the report's winner table, `bench compare` and the results table's bold —
 * agreeing on a small results database with 3 seeds; with 1 seed, the fallback to the binomial test of the test set.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { renderHtmlReport } from "../reports/html.js";
import { renderTable } from "../reports/table.js";
import { readReportData } from "../reports/read.js";
import {
  normalCdf,
  normalQuantile,
  pairedTTest,
  seedsToSeparate,
  studentTCdf,
  studentTQuantile,
  twoProportionTest,
  wilsonInterval,
} from "../reports/stats.js";
import { compareMethodRuns, noiseOf, testImagesOf, winnersAt } from "../reports/winners.js";
import { resolveTarget } from "../src/cli/compare.js";
import { PROTOCOL_VERSION, type Grid, type JobResult, type PlannedRun, type PruneTarget } from "../src/core/types.js";
import { Store } from "../src/store/store.js";
import { bench, tempDir } from "./helpers/cli.js";
import { smallConfig } from "./helpers/config.js";
import { tinyRun } from "./fixtures/report/tiny.js";

const close = (a: number, b: number, tol: number, what = "") => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);

describe("distributions and intervals against reference values", () => {
  it("Student t quantiles: the printed t table (two-sided 95%) and scipy.stats.t.ppf(0.975, df)", () => {
    // Any t table: 12.706, 4.303, 2.776, 2.262, 2.045; scipy: 12.706204736174694, 4.302652729749462, ...
    close(studentTQuantile(0.975, 1), 12.706204736174694, 1e-9, "df 1");
    close(studentTQuantile(0.975, 2), 4.302652729749462, 1e-9, "df 2");
    close(studentTQuantile(0.975, 4), 2.7764451051977934, 1e-9, "df 4");
    close(studentTQuantile(0.975, 9), 2.262157162798205, 1e-9, "df 9");
    close(studentTQuantile(0.975, 29), 2.045229642132703, 1e-9, "df 29");
    close(studentTCdf(-4.302652729749462, 2), 0.025, 1e-12, "cdf");
  });

  it("normal: scipy.stats.norm.ppf(0.975) = 1.959963984540054, norm.cdf(-3) = 0.0013498980316300933, norm.cdf(1.5) = 0.9331927987311419", () => {
    close(normalQuantile(0.975), 1.959963984540054, 1e-12, "z");
    close(normalQuantile(0.025), -1.959963984540054, 1e-12, "z lower");
    close(normalCdf(-3), 0.0013498980316300933, 1e-15, "cdf(-3)");
    close(normalCdf(1.5), 0.9331927987311419, 1e-14, "cdf(1.5)");
  });

  it("Wilson interval: scipy.stats.binomtest(k, n).proportion_ci(0.95, 'wilson')", () => {
    // 85/100 -> (0.7671644040916763, 0.9069401471634337); 1730/2000 -> (0.8493218663610856, 0.8792786891235999);
    // 0/20 -> (0, 0.16112515805281935): never a zero-width interval at the boundary.
    const [lo, hi] = wilsonInterval(0.85, 100);
    close(lo, 0.7671644040916763, 1e-12, "85/100 lo");
    close(hi, 0.9069401471634337, 1e-12, "85/100 hi");
    const w = wilsonInterval(0.865, 2000);
    close(w[0], 0.8493218663610856, 1e-12, "1730/2000 lo");
    close(w[1], 0.8792786891235999, 1e-12, "1730/2000 hi");
    const z = wilsonInterval(0, 20);
    close(z[0], 0, 1e-15, "0/20 lo");
    close(z[1], 0.16112515805281935, 1e-12, "0/20 hi");
  });

  it("paired t-test: scipy.stats.ttest_rel(a, b) statistic, pvalue and confidence_interval()", () => {
    // ttest_rel([.862, .871, .858], [.851, .866, .849]): t = 4.724555912615339, p = 0.041997918450815824,
    // CI (0.0007441672661398138, 0.01592249940052687).
    const t = pairedTTest([0.862 - 0.851, 0.871 - 0.866, 0.858 - 0.849]);
    close(t.t, 4.724555912615339, 1e-9, "t");
    close(t.p, 0.041997918450815824, 1e-10, "p");
    close(t.ci[0], 0.0007441672661398138, 1e-12, "ci lo");
    close(t.ci[1], 0.01592249940052687, 1e-12, "ci hi");
    assert.equal(t.significant, true);
    // Five seeds: t = 3.4157914533214218, p = 0.026883891988548857.
    const a = [0.9012, 0.8876, 0.8954, 0.899, 0.8931];
    const b = [0.8967, 0.8871, 0.8902, 0.8975, 0.888];
    const t5 = pairedTTest(a.map((x, i) => x - b[i]));
    close(t5.t, 3.4157914533214218, 1e-9, "t5");
    close(t5.p, 0.026883891988548857, 1e-10, "p5");
    assert.throws(() => pairedTTest([0.01]), /at least 2 pairs/);
  });

  it("two-proportion (Agresti–Caffo) test: the formula evaluated with scipy.stats.norm; interval and p agree", () => {
    // a = (k1+1)/(n1+2), b = (k2+1)/(n2+2), se = sqrt(a(1-a)/(n1+2) + b(1-b)/(n2+2)), CI = a - b ± norm.ppf(.975)·se,
    // p = 2·norm.sf(|a - b| / se). 85/100 vs 70/100: CI (0.03326798351086477, 0.2608496635479588), p = 0.011309719077297697.
    const t = twoProportionTest(0.85, 100, 0.7, 100);
    close(t.ci[0], 0.03326798351086477, 1e-12, "lo");
    close(t.ci[1], 0.2608496635479588, 1e-12, "hi");
    close(t.p, 0.011309719077297697, 1e-12, "p");
    close(t.diff, 0.15, 1e-12, "diff");
    // 86.50 % vs 86.40 % on 2,000 images: CI (-0.020227285474922467, 0.022225287472924397), p = 0.9265038653488702.
    const tie = twoProportionTest(0.865, 2000, 0.864, 2000);
    close(tie.p, 0.9265038653488702, 1e-12, "tie p");
    assert.equal(tie.significant, false);
    assert.ok(tie.ci[0] < 0 && tie.ci[1] > 0);
  });

  it("seeds to separate: the smallest n with |mean|·√n/std >= t(0.975, n−1)", () => {
    // mean/std = 1: n = 7 (√7 = 2.646 >= t(6) = 2.447, while √6 = 2.449 < t(5) = 2.571).
    assert.equal(seedsToSeparate(0.01, 0.01), 7);
    // mean/std = 0.5: n = 18 (√18/2 = 2.121 >= t(17) = 2.110; √17/2 = 2.062 < t(16) = 2.120).
    assert.equal(seedsToSeparate(-0.005, 0.01), 18);
    assert.equal(seedsToSeparate(0, 0.01), Infinity);
    assert.equal(seedsToSeparate(0.01, 0), 2);
    // Consistency with the test itself: at the returned n, a sample with exactly this mean and std is significant.
    for (const [m, s] of [[0.003, 0.004], [0.01, 0.03], [0.002, 0.0011]]) {
      const n = seedsToSeparate(m, s);
      assert.ok((m * Math.sqrt(n)) / s >= studentTQuantile(0.975, n - 1));
      assert.ok(n === 2 || (m * Math.sqrt(n - 1)) / s < studentTQuantile(0.975, n - 2));
    }
  });

  it("noise kinds: accuracies binomial, counts deterministic, timings measured", () => {
    assert.equal(noiseOf("top1_after"), "binomial");
    assert.equal(noiseOf("params_nonzero"), "deterministic");
    assert.equal(noiseOf("compression_ratio"), "deterministic");
    assert.equal(noiseOf("measured_speedup"), "measured");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// A results database written through the store

interface FixtureRun { method: string; target: PruneTarget; seed: number; top1: number; extra?: Record<string, number> }

const DENSE = [0.885, 0.889, 0.883];

function database(runs: readonly FixtureRun[], testSubset: number | null = null): string {
  const path = join(tempDir("stats-"), "r.db");
  const store = new Store(path);
  const key = (r: FixtureRun) => `${r.method}-${r.target.kind}-${r.target.value}-s${r.seed}`;
  const planned: PlannedRun[] = runs.map((r) => {
    const base = smallConfig();
    return {
      key: key(r), denseKey: `d-mlp-${r.seed}`, methodLabel: r.method, codeVersion: "test", dataFingerprint: "fp",
      config: smallConfig({ method: { name: r.method, params: {} }, target: r.target, seed: r.seed, data: { ...base.data, testSubset } }),
    };
  });
  store.createSweep({ name: "stats", file: "g.yaml", reference: [] } as unknown as Grid, "name: stats\n", "test", planned);
  for (const r of runs) {
    const result: JobResult = {
      protocol: PROTOCOL_VERSION, kind: "run", key: key(r), status: "done", error: null, backend: { name: "cpu", tfjsVersion: "4", threads: 2 },
      metrics: { top1_dense: DENSE[r.seed], top1_after: r.top1, compression_ratio: 10, theoretical_speedup: 8, params_nonzero: 26_661, params_total: 266_610, ...r.extra },
      layers: [], epochs: [], artifacts: [], startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:01:00Z", host: "h", pid: 1,
    };
    store.saveResult(result);
  }
  store.close();
  return path;
}

const S09: PruneTarget = { kind: "sparsity", value: 0.9 };
const S05: PruneTarget = { kind: "sparsity", value: 0.5 };

/**
 * fashion-mnist-mini · mlp, 2,000 test images, seeds 0–2.
 * At 0.9: global-magnitude 86.5/87.0/86.2 beats layer-magnitude 86.0/86.4/85.9 (paired: t = 5.2915026221291805,
 *   p = 0.0339082169207041, CI (0.0008720836330699078, 0.008461249700263433), scipy ttest_rel) and random 70/72/69.
 * At 0.5: global-magnitude 88.1/88.4/87.9 and layer-magnitude 88.2/88.0/88.1 tie (p = 0.8740118423302576), both beat random.
 */
function threeSeedRuns(): FixtureRun[] {
  const runs: FixtureRun[] = [];
  const add = (method: string, target: PruneTarget, top1: number[]) => top1.forEach((v, seed) => runs.push({ method, target, seed, top1: v }));
  add("global-magnitude", S09, [0.865, 0.87, 0.862]);
  add("layer-magnitude", S09, [0.86, 0.864, 0.859]);
  add("random", S09, [0.7, 0.72, 0.69]);
  add("global-magnitude", S05, [0.881, 0.884, 0.879]);
  add("layer-magnitude", S05, [0.882, 0.88, 0.881]);
  add("random", S05, [0.85, 0.84, 0.845]);
  return runs;
}

function section(page: string, id: string): string {
  const start = page.indexOf(`<section id="${id}"`);
  assert.ok(start >= 0, `section ${id} present`);
  return page.slice(start, page.indexOf("</section>", start));
}

/** Rows of the results table's tbody: method, target and whether the top-1 cell is bold. */
function resultRows(html: string): { method: string; target: string; bold: boolean; ci: string }[] {
  const out: { method: string; target: string; bold: boolean; ci: string }[] = [];
  for (const m of html.matchAll(/<tr data-ds[^>]*><td>([^<]+)<\/td><td>([^<]+)<\/td><td class="num">\d+<\/td><td class="num( best)?">[^]*?<\/td><td class="num">([^]*?)<\/td>/g)) {
    out.push({ method: m[1], target: m[2], bold: m[3] !== undefined, ci: m[4] });
  }
  return out;
}

function winnerRows(html: string): { target: string; best: string; verdict: string }[] {
  return [...html.matchAll(/<tr class="(?:win|tie|)"[^>]*><td>([^<]+)<\/td><td>(?:<b>)?([^<]+)(?:<\/b>)?<\/td>(?:<td[^>]*>[^]*?<\/td>){3}<td>([^]*?)<\/td>/g)].map((m) => ({
    target: m[1], best: m[2], verdict: m[3].replace(/<[^>]+>/g, ""),
  }));
}

describe("winner table, bench compare and the results table agree (3 seeds)", () => {
  const db = database(threeSeedRuns());
  const store = new Store(db, { readonly: true });
  const data = readReportData(store);
  store.close();
  const page = renderHtmlReport(data);

  it("the runs read back know their test-set size (fashion-mnist-mini's 2,000) and dense model", () => {
    assert.equal(testImagesOf(data.runs[0]), 2000);
    assert.equal(testImagesOf(tinyRun({ key: "x", dataset: "fashion-mnist-mini", config: { data: { testSubset: 300 } }, metrics: {} })), 300);
    assert.equal(testImagesOf(tinyRun({ key: "y", dataset: "no-such-set", metrics: {} })), null);
    assert.ok(data.runs.every((r) => r.denseKey === `d-mlp-${r.seed}`));
  });

  it("paired comparison equals scipy's ttest_rel on the per-seed differences", () => {
    const at = (m: string) => data.runs.filter((r) => r.methodLabel === m && r.targetValue === 0.9);
    const c = compareMethodRuns(at("global-magnitude"), at("layer-magnitude"))!;
    assert.equal(c.test, "paired-t");
    assert.deepEqual(c.pairedSeeds, [0, 1, 2]);
    close(c.p!, 0.0339082169207041, 1e-10, "p");
    close(c.ci![0], 0.0008720836330699078, 1e-12, "lo");
    close(c.ci![1], 0.008461249700263433, 1e-12, "hi");
    assert.equal(c.better, "global-magnitude");
    assert.equal(c.seedsNeeded, 3, "already separated at 3 seeds (t = 5.29 >= t(2) = 4.30; at 2 seeds 4.32 < 12.71)");
  });

  it("the winner table: a significant win at 0.9, a tie listing both magnitudes at 0.5", () => {
    const rows = winnerRows(section(page, "winners"));
    assert.deepEqual(rows.map((r) => [r.target, r.best]), [["sparsity 0.5", "global-magnitude"], ["sparsity 0.9", "global-magnitude"]]);
    assert.match(rows[0].verdict, /^tie: global-magnitude, layer-magnitude$/);
    assert.match(rows[1].verdict, /global-magnitude wins/);
    assert.doesNotMatch(section(page, "winners"), /One seed/);
  });

  it("the results table bolds exactly the significant winners' top-1, per target", () => {
    const rows = resultRows(section(page, "results"));
    assert.equal(rows.length, 6);
    const bold = rows.filter((r) => r.bold).map((r) => `${r.method} @ ${r.target}`);
    assert.deepEqual(bold, ["global-magnitude @ sparsity 0.9"]);
    assert.ok(rows.every((r) => /^\[\d+\.\d\d, \d+\.\d\d\]%$/.test(r.ci)), "t intervals over seeds, not Wilson");
    // Compression is 10× for everyone: never bold, although it is the "best" column value.
    assert.doesNotMatch(section(page, "results"), /<td class="num best">10\.00×/);
  });

  it("bench table bolds the same cells: only the significant winner's top-1 at its target", () => {
    const md = renderTable(data, { format: "markdown", metrics: ["top1_after", "compression_ratio"] });
    const lines = md.split("\n");
    const bold = lines.filter((l) => l.includes("**"));
    assert.equal(bold.length, 1, md);
    assert.match(bold[0], /\|\s+0\.9 \|\s+3 \| \*\*\d+\.\d\d\*\* ±/);
    // the method cell is printed once per method and left blank below: the row belongs to the last one named above it
    const methodAbove = lines.slice(0, lines.indexOf(bold[0]) + 1).map((l) => l.split("|")[3]?.trim()).filter(Boolean).pop();
    assert.equal(methodAbove, "global-magnitude");
    assert.doesNotMatch(md, /\*\*10\.00\*\*/, "an equal compression is no win");
  });

  it("bench compare prints the same verdicts, and --at / --json select and serialize them", () => {
    const all = bench(["compare", "global-magnitude", "layer-magnitude", "--db", db]);
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.split("\n");
    assert.match(lines.find((l) => l.includes("sparsity 0.9"))!, /\+0\.47 .*paired t \(3 seeds\)\s+0\.034\s+global-magnitude better\s+3/);
    assert.match(lines.find((l) => l.includes("sparsity 0.5"))!, /\btie\b/);
    const json = bench(["compare", "global-magnitude", "layer-magnitude", "--db", db, "--at", "0.9", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.stdout);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].better, "global-magnitude");
    close(rows[0].p, 0.0339082169207041, 1e-10, "json p");
    // Against the winner table: every target's best vs runner-up verdict is compare's.
    for (const w of winnersAt(data.runs)) {
      const r = bench(["compare", w.best, w.runnerUp!, "--db", db, "--at", String(w.targetValue), "--json"]);
      const [c] = JSON.parse(r.stdout);
      assert.equal(c.better, w.significant ? w.best : null, `${w.target}`);
    }
  });

  it("bad input exits 2 naming the valid choices", () => {
    const method = bench(["compare", "global-magnitud", "random", "--db", db]);
    assert.equal(method.code, 2);
    assert.match(method.stderr, /did you mean "global-magnitude"\?.*valid: global-magnitude, layer-magnitude, random/);
    const target = bench(["compare", "global-magnitude", "random", "--db", db, "--at", "16x"]);
    assert.equal(target.code, 2);
    assert.match(target.stderr, /--at 16x: no such target .*valid: 0\.5, 0\.9/);
    const arch = bench(["compare", "global-magnitude", "random", "--db", db, "--arch", "resnet20"]);
    assert.equal(arch.code, 2);
    assert.match(arch.stderr, /--arch: unknown value "resnet20".*valid: mlp/);
  });
});

describe("one seed: the report says so and falls back to the binomial test", () => {
  // 86.50 % vs 86.40 % on 2,000 test images (one image = 0.05 pt): a tie, so nothing is bold; 88.50 % vs 84.00 %
  // (p = 3.5592527063063184e-05 by the two-proportion test, formula with scipy.stats.norm) is a win.
  const db = database([
    // random pruning's 1.10x measured speedup is one timing: with one seed nothing shows its noise, so it is not bold.
    { method: "global-magnitude", target: S09, seed: 0, top1: 0.865, extra: { measured_speedup: 1.1 } },
    { method: "layer-magnitude", target: S09, seed: 0, top1: 0.864, extra: { measured_speedup: 1.01 } },
    { method: "global-magnitude", target: S05, seed: 0, top1: 0.885 },
    { method: "layer-magnitude", target: S05, seed: 0, top1: 0.84 },
  ]);
  const store = new Store(db, { readonly: true });
  const data = readReportData(store);
  store.close();
  const page = renderHtmlReport(data);

  it("results table: Wilson intervals instead of 'n < 2', and 86.50 vs 86.40 is not bold", () => {
    const results = section(page, "results");
    assert.doesNotMatch(results, /n &lt; 2/);
    assert.match(results, /One seed per group/);
    const rows = resultRows(results);
    const at09 = rows.filter((r) => r.target === "sparsity 0.9");
    assert.deepEqual(at09.map((r) => r.bold), [false, false]);
    // scipy binomtest(1730, 2000).proportion_ci(method='wilson') = (0.8493..., 0.8793...)
    assert.match(at09.find((r) => r.method === "global-magnitude")!.ci, /\[84\.93, 87\.93\]% W/);
    assert.deepEqual(rows.filter((r) => r.bold).map((r) => `${r.method} @ ${r.target}`), ["global-magnitude @ sparsity 0.5"]);
    assert.match(results, /<td class="num">1\.10×<\/td>/);
    assert.doesNotMatch(results, /<td class="num best">1\.10×/);
    // The dense row's interval is the Wilson interval of top1_dense (88.50 % of 2,000).
    assert.match(results, /<tr class="dense"[^>]*>.*?\[\d+\.\d\d, \d+\.\d\d\]% W/);
  });

  it("winner table says one seed and uses the two-proportion test", () => {
    const html = section(page, "winners");
    assert.match(html, /One seed per method/);
    const rows = winnerRows(html);
    assert.match(rows.find((r) => r.target === "sparsity 0.9")!.verdict, /^tie: global-magnitude, layer-magnitude$/);
    assert.match(rows.find((r) => r.target === "sparsity 0.5")!.verdict, /global-magnitude wins/);
    assert.match(html, /two-proportion, 2,000 images/);
  });

  it("bench compare uses the same fallback", () => {
    const r = bench(["compare", "global-magnitude", "layer-magnitude", "--db", db, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<{ target: PruneTarget; test: string; better: string | null; test_images: number; p: number }>;
    assert.deepEqual(rows.map((c) => [c.target.value, c.test, c.better, c.test_images]), [
      [0.5, "two-proportion", "global-magnitude", 2000],
      [0.9, "two-proportion", null, 2000],
    ]);
    close(rows[1].p, 0.9265038653488702, 1e-12, "p of 86.5 vs 86.4");
  });
});

describe("--at", () => {
  const targets: PruneTarget[] = [
    { kind: "sparsity", value: 0.9 },
    { kind: "compression", value: 16 },
    { kind: "macs-reduction", value: 0.5 },
  ];
  it("reads 16x, 0.9, sparsity=0.9, macs-reduction 0.5 and a bare 0.5 (only a MACs reduction has it)", () => {
    assert.deepEqual(resolveTarget("16x", targets), targets[1]);
    assert.deepEqual(resolveTarget("compression 16", targets), targets[1]);
    assert.deepEqual(resolveTarget("0.9", targets), targets[0]);
    assert.deepEqual(resolveTarget("sparsity=0.9", targets), targets[0]);
    assert.deepEqual(resolveTarget("macs-reduction 0.5", targets), targets[2]);
    assert.deepEqual(resolveTarget("0.5", targets), targets[2]);
  });
  it("refuses an ambiguous or missing target, listing the valid ones", () => {
    assert.throws(() => resolveTarget("0.5", [...targets, { kind: "sparsity", value: 0.5 }]), /ambiguous: sparsity 0\.5 or macs-reduction 0\.5/);
    assert.throws(() => resolveTarget("8x", targets), /no such target.*valid: 0\.9, 16x, macs-reduction 0\.5/);
    assert.throws(() => resolveTarget("lots", targets), /not a target/);
  });
});
