/**
 * Opens a generated report in headless Chromium with the network off and checks that every chart draws marks,
 * that nothing is fetched from outside file://, and that no console or page error happens.
 * Skipped when /usr/bin/chromium (or $CHROMIUM) is missing.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { renderHtmlReport } from "../reports/html.js";
import { syntheticReportData } from "../reports/synthetic.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../scripts/report-screenshot.js";

const skip = existsSync(CHROMIUM_PATH) ? false : `Chromium not found at ${CHROMIUM_PATH} (set $CHROMIUM to run the browser test)`;

describe("HTML report in a browser (offline)", { skip, timeout: 180_000 }, () => {
  let dir: string;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];
  const external: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "pb-report-browser-"));
    const data = syntheticReportData(180, 1);
    const compare = { ...syntheticReportData(180, 2), title: "seed-2 synthetic" };
    const file = join(dir, "report.html");
    writeFileSync(file, renderHtmlReport(data, { compare }));
    context = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS,
      offline: true,
      viewport: { width: 1366, height: 900 },
    });
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("file:") || url.startsWith("data:") || url.startsWith("blob:")) return route.continue();
      external.push(url);
      return route.abort();
    });
    page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => errors.push(`pageerror: ${String(e)}`));
    page.on("requestfailed", (r) => {
      if (!r.url().startsWith("file:")) external.push(r.url());
    });
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction(() => ["done", "error"].includes(document.body.getAttribute("data-charts") ?? ""), undefined, { timeout: 60_000 });
  });

  after(async () => {
    await context?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("draws marks in every chart, with no errors and no network", async () => {
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
    assert.equal(charts.length, 9);
    assert.deepEqual(["chart-targets", "chart-class-damage", "chart-cost"].filter((id) => !charts.some((c) => c.id === id)), []);
    for (const c of charts) {
      assert.ok(c.rendered, `${c.id} rendered (${c.text})`);
      assert.equal(c.svg >= 1, true, `${c.id} has an svg`);
      assert.ok(c.marks > 0, `${c.id} has drawn data marks`);
    }
    const byId = Object.fromEntries(charts.map((c) => [c.id, c.marks]));
    // 3 methods x 4 panels: one line per method and panel in the compression chart
    const lines = await page.$$eval("#chart-tradeoff-compression g.mark-line.role-mark > path", (ps) => ps.length);
    assert.ok(lines >= 12, `lines: ${lines}`);
    // heatmap: one cell per (panel, method, layer) at the chosen target = 3 methods x (5 + 22 layers) x 2 datasets
    const cells = await page.$$eval("#chart-layers g.mark-rect.role-mark > path", (ps) => ps.length);
    assert.equal(cells, 3 * (5 + 22) * 2);
    assert.ok(byId["chart-finetune"] > 0);
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

  it("dropdowns re-filter the charts", async () => {
    const select = page.locator("#chart-finetune-controls select").nth(1); // method
    await select.selectOption("random");
    await page.waitForTimeout(300);
    const points = await page.$$eval("#chart-finetune g.mark-symbol.role-mark > path", (ps) => ps.length);
    assert.equal(points, 8 * 4, "one method x 8 epochs x 4 panels");
    const target = page.locator("#chart-layers-controls select").first();
    await target.selectOption("sparsity 0.5");
    await page.waitForTimeout(300);
    const cells = await page.$$eval("#chart-layers g.mark-rect.role-mark > path", (ps) => ps.length);
    assert.equal(cells, 3 * (5 + 22) * 2);
    assert.deepEqual(errors, []);
  });

  it("has the comparison section and saves a non-empty screenshot", async () => {
    assert.equal(await page.locator("section#comparison table.compare tbody tr").count(), 60);
    const png = join(dir, "report.png");
    await page.screenshot({ path: png, fullPage: true });
    const size = statSync(png).size;
    assert.ok(size > 50_000, `screenshot ${size} bytes`);
  });
});
