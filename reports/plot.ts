/**
 * One report chart as a file for a paper: the same Vega-Lite spec and data the HTML report inlines, with the filter
 * bar's values applied. Drawn by the report's own Vega libraries inside Chromium through playwright-core (already used
 * for the report's browser tests), offline: the page is set from a string and every request is refused. Chromium
 * measures text as the HTML report does (Vega in Node, without the native canvas package, only estimates text and
 * lays facets out with gaps), gives SVG identical to the report's "Save as SVG", a PNG at any scale and a vector PDF.
 * Without Chromium, SVG falls back to Vega's headless renderer in Node.
 */
import { existsSync } from "node:fs";
import { compile } from "vega-lite";
import * as vega from "vega";
import type { ReportData } from "./model.js";
import { readVegaAssets } from "./assets.js";
import { filterBar, reportContext, renderSections } from "./html.js";
import { unpackRows } from "./sections/common.js";
import { SECTIONS } from "./sections/index.js";
import type { ChartSpec, PackedTable, VlSpec } from "./sections/types.js";

export const PLOT_FORMATS = ["svg", "png", "pdf"] as const;
export type PlotFormat = (typeof PLOT_FORMATS)[number];

/** The filter bar's dimensions; a value must be one the report offers (see plotChoices). */
export type PlotFilter = Partial<Record<"dataset" | "arch" | "method" | "target" | "seed", string>>;

export class PlotError extends Error {
  override name = "PlotError";
}

interface Charts {
  charts: ChartSpec[];
  datasets: Record<string, PackedTable>;
  /** Per filter dimension: its signal name and the values present. */
  dims: { key: string; signal: string; values: string[] }[];
}

function chartsOf(data: ReportData): Charts {
  const ctx = reportContext(data);
  const { charts, datasets } = renderSections(ctx, SECTIONS);
  return { charts, datasets, dims: filterBar(ctx).dims };
}

/** Chart ids (the report's chart element ids without "chart-") and the values each filter dimension accepts. */
export function plotChoices(data: ReportData): { charts: string[]; filter: Record<string, string[]> } {
  const c = chartsOf(data);
  return { charts: c.charts.map((x) => x.id.replace(/^chart-/, "")), filter: Object.fromEntries(c.dims.map((d) => [d.key, d.values])) };
}

/** The chart's Vega-Lite spec with its data inlined and the filter's values set (unchecked: see plotChoices). */
export function plotSpec(data: ReportData, chart: string, filter: PlotFilter = {}): VlSpec {
  const c = chartsOf(data);
  const ch = c.charts.find((x) => x.id === `chart-${chart}`);
  if (!ch) throw new PlotError(`no chart "${chart}" in this report; charts: ${c.charts.map((x) => x.id.replace(/^chart-/, "")).join(", ")}`);
  // A figure cannot be clicked: its legend says "method", not the page's "(click to highlight)".
  const spec = JSON.parse(JSON.stringify(ch.spec).replaceAll(" (click to highlight)", "")) as VlSpec;
  spec.datasets = Object.fromEntries(ch.datasets.map((n) => [n, unpackRows(c.datasets[n])]));
  const values = new Map(c.dims.map((d) => [d.signal, (filter as Record<string, string | undefined>)[d.key] ?? ""]));
  // Controls bound to HTML inputs mean nothing in a file: keep their current value, drop the input.
  spec.params = ((spec.params as Record<string, unknown>[]) ?? []).map((p) => {
    const out: Record<string, unknown> = { ...p };
    if (values.has(p.name as string)) out.value = values.get(p.name as string);
    if (out.bind && out.bind !== "legend") delete out.bind;
    return out;
  });
  return spec;
}

/** Render a chart to SVG text in Node with Vega's own SVG renderer: no browser, but text is measured by estimate. */
export async function plotSvgHeadless(data: ReportData, chart: string, filter: PlotFilter = {}): Promise<string> {
  const vg = compile(plotSpec(data, chart, filter) as never).spec;
  const view = new vega.View(vega.parse(vg), { renderer: "none", logLevel: vega.Error });
  try {
    await view.runAsync();
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export const CHROMIUM_PATH = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Why Chromium cannot draw here, or null when it can. */
export async function chromiumMissing(): Promise<string | null> {
  try {
    await import("playwright-core");
  } catch {
    return "the playwright-core package is not installed";
  }
  return existsSync(CHROMIUM_PATH) ? null : `Chromium is not at ${CHROMIUM_PATH} (set $CHROMIUM)`;
}

/**
 * Render a chart in Chromium with the same Vega libraries the report inlines, offline (page set from a string, every
 * request refused): SVG text, a PNG (scaled, white background) or a one-page vector PDF the size of the chart.
 */
export async function plotInChromium(data: ReportData, chart: string, filter: PlotFilter, format: PlotFormat, scale = 2): Promise<string | Buffer> {
  const why = await chromiumMissing();
  if (why) throw new PlotError(`drawing --format ${format} needs Chromium through playwright-core: ${why}${format === "svg" ? "" : "; --format svg works without it"}`);
  const spec = plotSpec(data, chart, filter);
  const { chromium } = await import("playwright-core");
  const assets = readVegaAssets();
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  try {
    const page = await browser.newPage({ deviceScaleFactor: format === "png" ? scale : 1, offline: true });
    await page.route("**/*", (route) => route.abort());
    await page.setContent(
      `<!doctype html><html><head><meta charset="utf-8"><style>html,body{margin:0;background:#fff;font-family:system-ui,sans-serif}#c svg{display:block}</style></head>` +
        `<body><div id="c" style="display:inline-block"></div><script>${assets.vega}</script><script>${assets.vegaLite}</script></body></html>`,
    );
    const svg = await page.evaluate(async (s) => {
      const w = window as unknown as { vega: any; vegaLite: any };
      const view = new w.vega.View(w.vega.parse(w.vegaLite.compile(s).spec), { renderer: "svg", container: "#c", logLevel: w.vega.Error });
      await view.runAsync();
      return (await view.toSVG()) as string;
    }, spec);
    if (format === "svg") return svg;
    const box = await page.locator("#c svg").first().boundingBox();
    if (!box) throw new PlotError("the chart drew nothing");
    const width = Math.ceil(box.width);
    const height = Math.ceil(box.height);
    if (format === "png") return await page.screenshot({ clip: { x: 0, y: 0, width, height }, type: "png" });
    return await page.pdf({ width: `${width}px`, height: `${height + 1}px`, printBackground: true, pageRanges: "1", margin: { top: "0", right: "0", bottom: "0", left: "0" } });
  } finally {
    await browser.close();
  }
}
