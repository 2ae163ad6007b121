/**
 * Open a report in headless Chromium (network off) and save a full-page screenshot, for a person to look at.
 *   node dist/scripts/report-screenshot.js <report.html> <out.png> [--width 1366]
 * Uses /usr/bin/chromium (or $CHROMIUM) through playwright-core. Exits non-zero when a chart fails or the page logs
 * an error.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface ScreenshotResult {
  errors: string[];
  charts: number;
  status: string | null;
}

/** Open `htmlPath` offline, wait for the charts, save a full-page PNG to `outPng`. */
export async function screenshotReport(htmlPath: string, outPng: string, width = 1366): Promise<ScreenshotResult> {
  const profile = mkdtempSync(join(tmpdir(), "pb-chromium-"));
  // A fresh profile directory per launch (playwright passes it as --user-data-dir).
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, viewport: { width, height: 900 }, offline: true });
  try {
    await context.route("**/*", (route) => (route.request().url().startsWith("file:") ? route.continue() : route.abort()));
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(pathToFileURL(resolve(htmlPath)).href);
    await page.waitForFunction(() => ["done", "error"].includes(document.body.getAttribute("data-first-view") ?? ""), undefined, { timeout: 60_000 });
    // The page draws charts as they come near the screen; a full-page picture needs them all.
    await page.evaluate(() => (window as unknown as { prunebench: { drawAll(): Promise<void> } }).prunebench.drawAll());
    const status = await page.evaluate(() => document.body.getAttribute("data-charts"));
    const charts = await page.evaluate(() => document.querySelectorAll(".chart[data-rendered]").length);
    await page.screenshot({ path: outPng, fullPage: true });
    return { errors, charts, status };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const wi = args.indexOf("--width");
  const width = wi >= 0 ? Number(args.splice(wi, 2)[1]) : 1366;
  const [html, out] = args;
  if (!html || !out) {
    console.error("usage: node dist/scripts/report-screenshot.js <report.html> <out.png> [--width 1366]");
    process.exit(2);
  }
  if (!existsSync(CHROMIUM_PATH)) {
    console.error(`Chromium not found at ${CHROMIUM_PATH} (set $CHROMIUM)`);
    process.exit(2);
  }
  const r = await screenshotReport(html, out, width);
  console.log(`saved ${out}: ${r.charts} charts rendered, status ${r.status}, ${r.errors.length} page errors`);
  for (const e of r.errors) console.error(`  page error: ${e}`);
  if (r.status !== "done" || r.errors.length > 0) process.exit(1);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
