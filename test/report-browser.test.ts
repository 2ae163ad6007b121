/**
 * Opens a generated report in headless Chromium with the network off and checks that every chart draws marks, that
 * the filter bar changes every section, that the URL hash restores a view, that a chart exports to an SVG file, that
 * nothing is fetched from outside file://, and that no console or page error happens.
 * Skipped when /usr/bin/chromium (or $CHROMIUM) is missing.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { renderHtmlReport } from "../reports/html.js";
import { syntheticReportData } from "../reports/synthetic.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../scripts/report-screenshot.js";
import { targetLabel } from "../src/grid/label.js";

const skip = existsSync(CHROMIUM_PATH) ? false : `Chromium not found at ${CHROMIUM_PATH} (set $CHROMIUM to run the browser test)`;

/** Wait until the page has applied the filter everywhere (body[data-filtered] moved past `since`). */
async function filtered(page: Page, since: number): Promise<number> {
  await page.waitForFunction((s) => Number(document.body.getAttribute("data-filtered") ?? 0) > s, since, { timeout: 20_000 });
  return Number(await page.evaluate(() => document.body.getAttribute("data-filtered")));
}

/** Draw every chart not drawn yet and bring every stale one up to the filter (the page draws lazily). */
async function drawAll(page: Page): Promise<void> {
  await page.evaluate(() => (window as unknown as { prunebench: { drawAll(): Promise<void> } }).prunebench.drawAll());
}

/** Wait until every chart near the screen is drawn and shows the current filter. */
async function idle(page: Page): Promise<void> {
  // The observer reports a scroll on the next frame: let two go by before trusting "idle".
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.waitForFunction(() => document.body.getAttribute("data-lazy") === "idle", undefined, { timeout: 30_000 });
}

/** Every mark's label in one chart, sorted (the order marks are drawn in may change with a re-run). */
async function marks(page: Page, id: string): Promise<string[]> {
  return (await page.$$eval(`#${id} g.role-mark [aria-label]`, (els) => els.map((e) => e.getAttribute("aria-label")!))).sort();
}

/** What each section shows (every chart drawn first): method points' labels per chart, visible filterable rows per section. */
async function snapshot(page: Page) {
  await drawAll(page);
  return page.evaluate(() => {
    const labels = (id: string) =>
      [...document.querySelectorAll(`#${id} g.mark-symbol path[aria-label]`)].map((p) => p.getAttribute("aria-label")!).filter((l) => l.startsWith("method: "));
    const shown = (r: Element) => {
      for (let e: HTMLElement | null = r as HTMLElement; e; e = e.parentElement) if (e.style.display === "none") return false;
      return true;
    };
    const rows = (section: string) => [...document.querySelectorAll(`section#${section} tr[data-m]`)].filter(shown).length;
    return {
      compression: labels("chart-tradeoff-compression"),
      speedup: labels("chart-tradeoff-speedup"),
      measured: labels("chart-tradeoff-measured"),
      drop: labels("chart-drop"),
      finetune: labels("chart-finetune"),
      layerCells: document.querySelectorAll("#chart-layers g.mark-rect.role-mark > path").length,
      overview: rows("overview"),
      results: rows("results"),
      comparison: rows("comparison"),
      // the winner table compares methods: one row per (dataset · arch, target), filtered by those only
      winners: [...document.querySelectorAll("section#winners tr[data-t]")].filter(shown).length,
    };
  });
}

describe("HTML report in a browser (offline)", { skip, timeout: 240_000 }, () => {
  let dir: string;
  let file: string;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];
  const external: string[] = [];
  const data = syntheticReportData(180, 1);
  const compare = { ...syntheticReportData(180, 2), title: "seed-2 synthetic" };

  async function open(hash = ""): Promise<Page> {
    const p = await context.newPage();
    p.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    p.on("pageerror", (e) => errors.push(`pageerror: ${String(e)}`));
    p.on("requestfailed", (r) => {
      if (!r.url().startsWith("file:")) external.push(r.url());
    });
    await p.goto(pathToFileURL(file).href + hash);
    await p.waitForFunction(() => ["done", "error"].includes(document.body.getAttribute("data-first-view") ?? ""), undefined, { timeout: 60_000 });
    return p;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "pb-report-browser-"));
    file = join(dir, "report.html");
    writeFileSync(file, renderHtmlReport(data, { compare }));
    context = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS,
      offline: true,
      acceptDownloads: true,
      viewport: { width: 1366, height: 900 },
    });
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("file:") || url.startsWith("data:") || url.startsWith("blob:")) return route.continue();
      external.push(url);
      return route.abort();
    });
    page = await open();
  });

  after(async () => {
    await context?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("draws marks in every chart, with no errors and no network", async () => {
    await drawAll(page);
    assert.equal(await page.evaluate(() => document.body.getAttribute("data-charts")), "done");
    const charts = await page.$$eval(".chart", (els) =>
      els.map((el) => ({
        id: el.id,
        rendered: el.hasAttribute("data-rendered"),
        svg: el.querySelectorAll("svg").length,
        marks: el.querySelectorAll("svg g.role-mark > path, svg g.role-mark > line").length,
        text: (el.textContent ?? "").slice(0, 200),
      })),
    );
    // The overview's requested-vs-achieved targets, the per-class damage and the cost charts among them.
    assert.deepEqual(charts.map((c) => c.id).sort(), ["chart-class-damage", "chart-cost", "chart-drop", "chart-finetune", "chart-layers", "chart-targets", "chart-tradeoff-compression", "chart-tradeoff-measured", "chart-tradeoff-speedup"]);
    for (const c of charts) {
      assert.ok(c.rendered, `${c.id} rendered (${c.text})`);
      assert.equal(c.svg >= 1, true, `${c.id} has an svg`);
      assert.ok(c.marks > 0, `${c.id} has drawn data marks`);
    }
    // 3 methods x 4 panels: one line per method and panel in the compression chart (plus the dashed before-fine-tuning lines)
    const lines = await page.$$eval("#chart-tradeoff-compression g.mark-line.role-mark > path", (ps) => ps.length);
    assert.ok(lines >= 24, `lines: ${lines}`);
    // heatmap: one cell per (panel, method, layer) at the chosen target = 3 methods x (5 + 22 layers) x 2 datasets
    const s = await snapshot(page);
    assert.equal(s.layerCells, 3 * (5 + 22) * 2);
    // every method point carries its run keys in the tooltip
    assert.ok(s.compression.length > 0 && s.compression.every((l) => /run keys: \S+-seed\d/.test(l)), s.compression[0]);
    // nothing beats the noise in the synthetic data (pruned latency ≈ dense): the measured chart is folded away
    assert.equal(await page.locator("details.collapsed-chart #chart-tradeoff-measured").count(), 1);
    assert.deepEqual(errors, []);
    assert.deepEqual(external, []);
  });

  it("reference points carry their paper in the tooltip", async () => {
    const diamond = page.locator('#chart-tradeoff-compression path[aria-label*="published in: Han et al. 2015"]');
    assert.equal(await diamond.count(), 1);
    await diamond.hover({ force: true });
    await page.waitForFunction(() => (document.getElementById("vg-tooltip-element")?.textContent ?? "").includes("Han et al. 2015"), undefined, { timeout: 5000 });
    const tip = await page.evaluate(() => document.getElementById("vg-tooltip-element")?.textContent ?? "");
    assert.match(tip, /top-1 \(published\)99\.23%/);
  });

  it("the filter bar changes every section and writes the URL hash", async () => {
    const before = await snapshot(page);
    let n = Number(await page.evaluate(() => document.body.getAttribute("data-filtered")));
    await page.selectOption("#pb-f-dataset", "mnist");
    n = await filtered(page, n);
    await page.selectOption("#pb-f-method", "random");
    n = await filtered(page, n);
    const s = await snapshot(page);
    const done = data.runs.filter((r) => r.status === "done");
    const groups = new Set(done.filter((r) => r.dataset === "mnist" && r.methodLabel === "random").map((r) => `${r.arch}|${r.targetValue}`));
    // charts: only mnist · random points remain, one per (arch, target)
    for (const chart of ["compression", "speedup", "drop"] as const) {
      assert.equal(s[chart].length, groups.size, `${chart}: ${s[chart].length} points`);
      assert.ok(s[chart].every((l) => l.startsWith("method: random;")), chart);
      assert.ok(before[chart].length > s[chart].length, `${chart} changed`);
    }
    assert.equal(s.measured.length, groups.size);
    // fine-tuning: one method x 8 epochs x 2 mnist panels, at the chart's default target
    assert.equal(s.finetune.length, 8 * 2);
    assert.ok(s.finetune.every((l) => l.startsWith("method: random;")));
    // heatmap: 1 method x (5 + 22) layers x 1 dataset
    assert.equal(s.layerCells, 5 + 22);
    // tables: results and comparison one row per group; overview's failures of mnist · random only
    assert.equal(s.results, groups.size);
    assert.equal(s.comparison, groups.size);
    assert.ok(before.results > s.results && before.comparison > s.comparison);
    const targets = new Set(done.map((r) => r.targetValue)).size;
    assert.equal(before.winners, 4 * targets, "4 panels");
    assert.equal(s.winners, 2 * targets, "the 2 mnist panels, every method still compared");
    const failures = data.runs.filter((r) => r.status !== "done");
    assert.equal(before.overview, failures.length);
    assert.equal(s.overview, failures.filter((r) => r.dataset === "mnist" && r.methodLabel === "random").length);
    assert.equal(new URL(page.url()).hash, "#dataset=mnist&method=random");
    // a seed shows that seed's own runs (their keys in the tooltips)
    await page.selectOption("#pb-f-seed", "1");
    n = await filtered(page, n);
    const seeded = await snapshot(page);
    assert.equal(seeded.compression.length, groups.size);
    assert.ok(seeded.compression.every((l) => /run keys: mnist-\w+-random-s[\d.]+-seed1(;|$)/.test(l)), seeded.compression[0]);
    // a target narrows the per-target charts and the tables to that target
    const target = targetLabel({ kind: "sparsity", value: 0.9 });
    await page.selectOption("#pb-f-target", target);
    n = await filtered(page, n);
    const t = await snapshot(page);
    assert.equal(t.results, 2, "one row per mnist arch");
    assert.equal(t.drop.length, 2);
    assert.equal(t.winners, 2);
    await page.click("#pb-f-reset");
    n = await filtered(page, n);
    // back to the first view (marks may be drawn in another order after a re-render)
    const sorted = (x: Awaited<ReturnType<typeof snapshot>>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Array.isArray(v) ? [...v].sort() : v]));
    assert.deepEqual(sorted(await snapshot(page)), sorted(before));
    assert.equal(new URL(page.url()).hash, "");
    assert.deepEqual(errors, []);
  });

  it("a link with a filter in its hash reopens the same view", async () => {
    const target = targetLabel({ kind: "sparsity", value: 0.5 });
    const linked = await open(`#dataset=cifar10&arch=lenet5&target=${encodeURIComponent(target)}&method=bogus`);
    await filtered(linked, 0);
    const values = await linked.evaluate(() => ["dataset", "arch", "method", "target", "seed"].map((k) => (document.getElementById(`pb-f-${k}`) as HTMLSelectElement).value));
    assert.deepEqual(values, ["cifar10", "lenet5", "", target, ""]);
    assert.match(await linked.locator("#pb-filter-warn").innerText(), /method “bogus”/);
    const s = await snapshot(linked);
    assert.equal(s.results, 3, "3 methods at one target in one panel");
    assert.equal(s.drop.length, 3);
    assert.ok(s.drop.every((l) => l.includes(`target: ${target}`)));
    await linked.close();
    assert.deepEqual(errors, []);
  });

  it("draws off-screen charts only when they come near, and a filter reaches each chart once it is scrolled to", async () => {
    // What each chart shows when drawn with the filter from the start.
    const ref = await open("#dataset=mnist&method=random");
    await drawAll(ref);
    const ids = await ref.$$eval(".chart", (els) => els.map((e) => e.id));
    const want = new Map<string, string[]>();
    for (const id of ids) want.set(id, await marks(ref, id));
    await ref.close();

    const lazy = await open();
    await idle(lazy);
    const drawn = () => lazy.$$eval(".chart", (els) => els.filter((e) => e.hasAttribute("data-rendered")).map((e) => e.id));
    // the first screen holds tables; charts further down than a screen below it wait
    const first = await drawn();
    for (const id of ["chart-layers", "chart-finetune", "chart-class-damage", "chart-cost"]) assert.ok(!first.includes(id), `${id} drawn at load: ${first.join()}`);
    assert.equal(await lazy.evaluate(() => document.body.getAttribute("data-charts")), "pending");
    // jump to the last chart: it is drawn, the charts jumped over are not
    await lazy.locator("#chart-cost").scrollIntoViewIfNeeded();
    await idle(lazy);
    const jumped = await drawn();
    assert.ok(jumped.includes("chart-cost"), jumped.join());
    assert.ok(!jumped.includes("chart-layers") && !jumped.includes("chart-finetune"), jumped.join());
    assert.ok((await marks(lazy, "chart-cost")).length > 0);
    const unfiltered = { cost: await marks(lazy, "chart-cost"), compression: await marks(lazy, "chart-tradeoff-compression") };
    assert.ok(unfiltered.compression.length > 0, "drawn at load");
    // filter down there: the charts near the screen follow at once, drawn charts far away are marked stale
    let n = Number(await lazy.evaluate(() => document.body.getAttribute("data-filtered")));
    await lazy.selectOption("#pb-f-dataset", "mnist");
    n = await filtered(lazy, n);
    await lazy.selectOption("#pb-f-method", "random");
    n = await filtered(lazy, n);
    assert.notDeepEqual(want.get("chart-cost"), unfiltered.cost);
    assert.deepEqual(await marks(lazy, "chart-cost"), want.get("chart-cost"));
    assert.equal(await lazy.getAttribute("#chart-tradeoff-compression", "data-stale"), "1");
    assert.deepEqual(await marks(lazy, "chart-tradeoff-compression"), unfiltered.compression, "not re-run while far away");
    // back up chart by chart (opening the folded one): each is drawn, or brought up to the filter, as it comes near
    for (const id of [...ids].reverse()) {
      const folded = lazy.locator(`details.collapsed-chart:has(#${id}) > summary`);
      if ((await folded.count()) > 0) {
        await folded.scrollIntoViewIfNeeded();
        await idle(lazy);
        assert.equal(await lazy.getAttribute(`#${id}`, "data-rendered"), null, `${id} folded, not drawn`);
        await folded.click();
      }
      await lazy.locator(`#${id}`).scrollIntoViewIfNeeded();
      await idle(lazy);
      assert.equal(await lazy.getAttribute(`#${id}`, "data-rendered"), "1", id);
      assert.equal(await lazy.getAttribute(`#${id}`, "data-stale"), null, id);
      assert.deepEqual(await marks(lazy, id), want.get(id), id);
    }
    assert.equal(await lazy.evaluate(() => document.body.getAttribute("data-charts")), "done");
    await lazy.close();
    assert.deepEqual(errors, []);
  });

  it("printing draws every chart and brings stale ones up to the filter first", async () => {
    const p = await open();
    await idle(p);
    await p.locator("#chart-cost").scrollIntoViewIfNeeded();
    await idle(p);
    await p.evaluate(() => window.scrollTo(0, 0));
    await idle(p);
    const n = Number(await p.evaluate(() => document.body.getAttribute("data-filtered")));
    await p.selectOption("#pb-f-method", "random");
    await filtered(p, n);
    assert.equal(await p.getAttribute("#chart-cost", "data-stale"), "1");
    assert.equal(await p.evaluate(() => document.body.getAttribute("data-charts")), "pending");
    // A listener added after the page's own runs after the page's draws (all microtasks): it sees what is printed.
    await p.evaluate(() =>
      window.addEventListener("beforeprint", () => {
        const all = document.querySelectorAll(".chart").length;
        const drawn = document.querySelectorAll(".chart[data-rendered]:not([data-stale])").length;
        document.body.setAttribute("data-at-print", `${drawn} of ${all}`);
      }),
    );
    const pdf = await p.pdf();
    assert.ok(pdf.length > 10_000);
    assert.equal(await p.evaluate(() => document.body.getAttribute("data-at-print")), "9 of 9");
    assert.ok((await marks(p, "chart-cost")).every((l) => !l.startsWith("method: ") || l.startsWith("method: random")));
    await p.close();
    assert.deepEqual(errors, []);
  });

  it("clicking a legend entry highlights that method and mutes the others", async () => {
    const opacities = () =>
      page.$$eval("#chart-drop g.mark-symbol.role-mark path[aria-label^='method: ']", (ps) => [
        ...new Set(ps.map((p) => `${p.getAttribute("aria-label")!.split(";")[0]}=${p.getAttribute("opacity") ?? "1"}`)),
      ]);
    assert.deepEqual((await opacities()).sort(), ["method: global_magnitude=1", "method: layer_magnitude=1", "method: random=1"]);
    await page.locator("#chart-drop g.role-legend text", { hasText: /^random$/ }).first().click();
    await page.waitForFunction(() => document.querySelector("#chart-drop g.mark-symbol.role-mark path[aria-label^='method: global_magnitude']")?.getAttribute("opacity") === "0.12", undefined, { timeout: 5000 });
    assert.deepEqual((await opacities()).sort(), ["method: global_magnitude=0.12", "method: layer_magnitude=0.12", "method: random=1"]);
    assert.deepEqual(errors, []);
  });

  it("sorts a results table by a column", async () => {
    const table = page.locator("section#results table.sortable").first();
    const top1 = () => table.locator("tbody tr[data-m] td:nth-child(4)").allInnerTexts();
    await table.locator("thead th", { hasText: "top-1" }).first().click();
    const asc = (await top1()).map((t) => parseFloat(t));
    assert.deepEqual(asc, [...asc].sort((a, b) => a - b));
    await table.locator("thead th", { hasText: "top-1" }).first().click();
    const desc = (await top1()).map((t) => parseFloat(t));
    assert.deepEqual(desc, [...asc].sort((a, b) => b - a));
    // the dense row stays on top
    assert.equal(await table.locator("tbody tr").first().getAttribute("class"), "dense");
  });

  it("exports a chart as an SVG file through the vega-embed menu", async () => {
    const chart = page.locator("#chart-drop");
    await chart.locator("details > summary").click();
    const link = chart.locator(".vega-actions a", { hasText: "Save as SVG" });
    await link.dispatchEvent("mousedown");
    await page.waitForFunction(() => [...document.querySelectorAll("#chart-drop .vega-actions a")].some((a) => /^(blob|data):/.test(a.getAttribute("href")!)), undefined, { timeout: 10_000 });
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    assert.equal(download.suggestedFilename(), "drop.svg");
    const saved = join(dir, "drop.svg");
    await download.saveAs(saved);
    const svg = readFileSync(saved, "utf8");
    assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /Δ top-1 vs dense \(pp\)/);
    assert.deepEqual(errors, []);
  });

  it("has the comparison section and saves a non-empty screenshot", async () => {
    assert.equal(await page.locator("section#comparison table.compare tbody tr").count(), 60);
    const png = join(dir, "report.png");
    await page.screenshot({ path: png, fullPage: true });
    const size = statSync(png).size;
    assert.ok(size > 50_000, `screenshot ${size} bytes`);
    assert.deepEqual(errors, []);
    assert.deepEqual(external, []);
  });
});
