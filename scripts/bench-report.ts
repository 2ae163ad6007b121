/**
 * Scale benchmark of the HTML report: a synthetic ReportData of N runs (default 10,000), timed through
 * renderHtmlReport; then the same data written into a synthetic SQLite database and timed end to end through
 * `bench report` (open, query, aggregate, render, write). Goal: < 5 s. Then, when Chromium is present, the page
 * itself, offline, at 1366x900: from navigation to the first view drawn (goal < 2 s), to the charts within a screen
 * of it drawn, and to every chart drawn after scrolling to the end a screen at a time (the page draws charts as they
 * come near); then how long each filter of the filter bar takes to reach every table and every chart near the screen
 * (goal < 500 ms: responsive) and every chart. Prints JSON lines and readable lines.
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
  try {
    await inBrowser(page, nRuns, repeat);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the page reports about one visit: milliseconds after navigation. */
interface Visit {
  /** Every chart on the first screen drawn (the boot script's own mark; a first screen of tables has none). */
  first_view_ms: number;
  first_view_charts: number;
  /** Every chart within a screen of the first one drawn too, without scrolling (the page is idle). */
  near_ms: number;
  /** Scrolled to the end a screen at a time, waiting each time until the charts near it are drawn. */
  scrolled_ms: number;
  /** Then every chart drawn, folded ones included (as printing does). */
  all_ms: number;
  drawn_by_scrolling: number;
  charts: number;
}

/**
 * Open the report in Chromium `repeat` times (fresh page each): time the first view, then a reader scrolling to the
 * end, then each filter of the filter bar once.
 */
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
    const visits: Visit[] = [];
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
      await page.waitForFunction(() => ["done", "error"].includes(document.body.getAttribute("data-first-view") ?? ""), undefined, { timeout: 120_000 });
      visits.push(await page.evaluate(SCROLL_THROUGH));
    }
    const best = (k: keyof Visit) => Math.min(...visits.map((v) => v[k]));
    const list = (k: keyof Visit) => visits.map((v) => v[k]);
    const draw = {
      bench: "report page in Chromium (ms after navigation)", runs: nRuns, viewport: "1366x900",
      first_view_ms: list("first_view_ms"), first_view_charts: visits[0].first_view_charts, near_ms: list("near_ms"),
      scrolled_to_end_ms: list("scrolled_ms"), all_charts_ms: list("all_ms"), charts: visits[0].charts, drawn_by_scrolling: visits[0].drawn_by_scrolling,
      goal_ms: 2000, ok: best("first_view_ms") < 2000, errors: errors.length,
    };
    console.log(JSON.stringify(draw));
    console.log(
      `report page, ${nRuns} runs, 1366x900: first view drawn ${list("first_view_ms").join(" / ")} ms after navigation (${draw.first_view_charts} charts on the first screen; goal < 2000 ms); ` +
        `with the charts within a screen of it ${list("near_ms").join(" / ")} ms; all charts drawn after scrolling to the end ${list("scrolled_ms").join(" / ")} ms ` +
        `(${draw.drawn_by_scrolling} of ${draw.charts} charts; the folded ones too: ${list("all_ms").join(" / ")} ms); ${errors.length} page errors`,
    );
    // Back at the top, each filter once (its first value), then back to everything: time until every table and every
    // chart near the screen has it, then until every other chart has it too (what printing would wait for).
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.waitForFunction(() => document.body.getAttribute("data-lazy") === "idle", undefined, { timeout: 60_000 });
    const filters: Record<string, number> = {};
    const everywhere: Record<string, number> = {};
    const dims = await page.$$eval("#pb-filter select", (ss) => ss.map((s) => ({ id: s.id, value: (s as HTMLSelectElement).options[1]?.value ?? "" })));
    for (const d of [...dims, { id: "pb-f-method", value: "" }]) {
      const before = Number(await page.evaluate(() => document.body.getAttribute("data-filtered") ?? 0));
      await page.selectOption(`#${d.id}`, d.value);
      await page.waitForFunction((b) => Number(document.body.getAttribute("data-filtered") ?? 0) > b, before, { timeout: 60_000 });
      const name = `${d.id.replace("pb-f-", "")}=${d.value || "all"}`;
      filters[name] = Number(await page.evaluate(() => document.body.getAttribute("data-filter-ms")));
      everywhere[name] = filters[name] + (await page.evaluate(async () => {
        const t0 = performance.now();
        await (window as unknown as { prunebench: { drawAll(): Promise<void> } }).prunebench.drawAll();
        return Math.round(performance.now() - t0);
      }));
    }
    const worst = Math.max(...Object.values(filters));
    const resp = { bench: "filter bar → every table and every chart near the screen updated", runs: nRuns, ms: filters, worst_ms: worst, every_chart_ms: everywhere, goal_ms: 500, ok: worst < 500 };
    console.log(JSON.stringify(resp));
    console.log(
      `filtering at the top of the page (cumulative, each select once): ${Object.entries(filters).map(([k, v]) => `${k} ${v} ms`).join(", ")} (worst ${worst} ms; goal < 500 ms); ` +
        `until every chart off screen has it too: ${Object.values(everywhere).join(" / ")} ms`,
    );
    if (!draw.ok || !resp.ok || errors.length > 0) process.exitCode = 1;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** In the page: wait for the charts near the first screen, scroll to the end a screen at a time, then draw the rest. */
const SCROLL_THROUGH = async (): Promise<Visit> => {
  // Defined inside: this function is serialised into the page. Two frames first: the observer reports a scroll then.
  const idle = (): Promise<void> =>
    new Promise((resolve) => {
      const ready = () => document.body.getAttribute("data-lazy") === "idle";
      requestAnimationFrame(() =>
        requestAnimationFrame(() => {
          if (ready()) return resolve();
          const mo = new MutationObserver(() => {
            if (ready()) {
              mo.disconnect();
              resolve();
            }
          });
          mo.observe(document.body, { attributes: true, attributeFilter: ["data-lazy"] });
        }),
      );
    });
  const drawn = () => document.querySelectorAll(".chart[data-rendered]").length;
  await idle();
  const near = performance.now();
  for (;;) {
    const y = scrollY;
    scrollBy(0, innerHeight);
    await idle();
    if (scrollY === y) break;
  }
  const scrolled = performance.now();
  const byScrolling = drawn();
  await (window as unknown as { prunebench: { drawAll(): Promise<void> } }).prunebench.drawAll();
  return {
    first_view_ms: Number(document.body.getAttribute("data-first-view-ms")),
    first_view_charts: Number(document.body.getAttribute("data-first-view-charts")),
    near_ms: Math.round(near), scrolled_ms: Math.round(scrolled), all_ms: Math.round(performance.now()),
    drawn_by_scrolling: byScrolling, charts: document.querySelectorAll(".chart").length,
  };
};

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
