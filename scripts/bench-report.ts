/**
 * Scale benchmark of the HTML report: a synthetic ReportData of N runs (default 10,000), timed through
 * renderHtmlReport; then the same data written into a synthetic SQLite database and timed end to end through
 * `bench report` (open, query, aggregate, render, write). Goal: < 5 s. Then, when Chromium is present, the page
 * itself, offline: from navigation to every chart drawn (goal < 2 s), and how long each filter of the filter bar
 * takes to reach every chart and table (goal < 500 ms: responsive). Prints JSON lines and readable lines.
 *   node dist/scripts/bench-report.js [nRuns] [--out report.html] [--repeat 3]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./report-screenshot.js";
import { writeSyntheticDatabase } from "../reports/synthetic-db.js";
import { performance } from "node:perf_hooks";
import { renderHtmlReport } from "../reports/html.js";
import { syntheticReportData } from "../reports/synthetic.js";

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const take = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const out = take("--out");
  const repeat = Math.max(1, Number(take("--repeat") ?? 3));
  const nRuns = Number(args[0] ?? 10_000);
  if (!Number.isInteger(nRuns) || nRuns < 1) throw new Error(`nRuns must be a positive integer (got ${args[0]})`);

  const g0 = performance.now();
  const data = syntheticReportData(nRuns, 1);
  const genMs = performance.now() - g0;

  const times: number[] = [];
  let html = "";
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    html = renderHtmlReport(data);
    times.push(performance.now() - t0);
  }
  const bytes = Buffer.byteLength(html, "utf8");
  if (out) writeFileSync(out, html);
  const best = Math.min(...times);
  const first = times[0];
  const result = {
    bench: "renderHtmlReport",
    runs: nRuns,
    layers: data.layers.length,
    epochs: data.epochs.length,
    render_ms_first: Math.round(first),
    render_ms_best: Math.round(best),
    repeats: repeat,
    html_bytes: bytes,
    generate_ms: Math.round(genMs),
    goal_ms: 5000,
    ok: first < 5000,
  };
  console.log(JSON.stringify(result));
  console.log(
    `renderHtmlReport: ${nRuns} runs (${data.layers.length} layer rows, ${data.epochs.length} epoch rows) -> ${(bytes / 1024 / 1024).toFixed(2)} MiB HTML in ${Math.round(first)} ms (best of ${repeat}: ${Math.round(best)} ms; goal < 5000 ms)${out ? `, written to ${out}` : ""}`,
  );
  if (!result.ok) process.exitCode = 1;

  const dir = mkdtempSync(join(tmpdir(), "prunebench-report-bench-"));
  const db = join(dir, "synthetic.db");
  writeSyntheticDatabase(db, data);
  const page = join(dir, "report.html");
  const bench = resolve(dirname(fileURLToPath(import.meta.url)), "../../bin/bench.js");
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bench, "report", "--db", db, "-o", page], { encoding: "utf8" });
  const endToEnd = performance.now() - t0;
  if (r.status !== 0) throw new Error(`bench report failed: ${r.stderr}`);
  const e2e = { bench: "bench report (SQLite → HTML, whole command)", runs: nRuns, ms: Math.round(endToEnd), db_bytes: statSync(db).size, html_bytes: statSync(page).size, goal_ms: 5000, ok: endToEnd < 5000 };
  console.log(JSON.stringify(e2e));
  console.log(`bench report over a ${nRuns}-run database (${(e2e.db_bytes / 1024 / 1024).toFixed(1)} MiB): ${e2e.ms} ms end to end, HTML ${(e2e.html_bytes / 1024 / 1024).toFixed(2)} MiB (goal < 5000 ms)`);
  if (!e2e.ok) process.exitCode = 1;
  await inBrowser(page, nRuns, repeat);
}

/** Open the report in Chromium `repeat` times (fresh page each) and time drawing, then each filter dimension once. */
async function inBrowser(file: string, nRuns: number, repeat: number): Promise<void> {
  if (!existsSync(CHROMIUM_PATH)) {
    console.log(`(no Chromium at ${CHROMIUM_PATH}: the in-browser timings are skipped)`);
    return;
  }
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "pb-bench-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, offline: true, viewport: { width: 1366, height: 900 } });
  try {
    await context.route("**/*", (route) => (route.request().url().startsWith("file:") ? route.continue() : route.abort()));
    const draws: number[] = [];
    const firsts: number[] = [];
    const errors: string[] = [];
    let page = await context.newPage();
    for (let i = 0; i < repeat; i++) {
      if (i > 0) {
        await page.close();
        page = await context.newPage();
      }
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      await page.goto(pathToFileURL(file).href);
      await page.waitForFunction(() => document.body.getAttribute("data-charts") === "done", undefined, { timeout: 120_000 });
      draws.push(Number(await page.evaluate(() => document.body.getAttribute("data-charts-ms"))));
      firsts.push(Number(await page.evaluate(() => document.body.getAttribute("data-first-view-ms"))));
    }
    const draw = {
      bench: "report page in Chromium (navigation → charts on screen drawn; → every chart drawn)", runs: nRuns,
      first_view_ms: firsts, first_view_best_ms: Math.min(...firsts), all_charts_ms: draws, all_charts_best_ms: Math.min(...draws),
      goal_ms: 2000, ok: Math.min(...firsts) < 2000, errors: errors.length,
    };
    console.log(JSON.stringify(draw));
    console.log(`report page, ${nRuns} runs: charts on screen drawn ${firsts.join(" / ")} ms after navigation (goal < 2000 ms); every chart ${draws.join(" / ")} ms; ${errors.length} page errors`);
    // Each filter once (its first value), then back to everything: time until every chart and table has it.
    const filters: Record<string, number> = {};
    const dims = await page.$$eval("#pb-filter select", (ss) => ss.map((s) => ({ id: s.id, value: (s as HTMLSelectElement).options[1]?.value ?? "" })));
    for (const d of [...dims, { id: "pb-f-method", value: "" }]) {
      const before = Number(await page.evaluate(() => document.body.getAttribute("data-filtered") ?? 0));
      await page.selectOption(`#${d.id}`, d.value);
      await page.waitForFunction((b) => Number(document.body.getAttribute("data-filtered") ?? 0) > b, before, { timeout: 60_000 });
      filters[`${d.id.replace("pb-f-", "")}=${d.value || "all"}`] = Number(await page.evaluate(() => document.body.getAttribute("data-filter-ms")));
    }
    const worst = Math.max(...Object.values(filters));
    const resp = { bench: "filter bar → every chart and table updated", runs: nRuns, ms: filters, worst_ms: worst, goal_ms: 500, ok: worst < 500 };
    console.log(JSON.stringify(resp));
    console.log(`filtering (cumulative, each select once): ${Object.entries(filters).map(([k, v]) => `${k} ${v} ms`).join(", ")} (worst ${worst} ms; goal < 500 ms)`);
    if (!draw.ok || !resp.ok || errors.length > 0) process.exitCode = 1;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
