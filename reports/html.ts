/**
 * renderHtmlReport: ReportData -> one self-contained HTML file. Vega, Vega-Lite and vega-embed are inlined from
 * node_modules, every chart spec and its (pre-aggregated, column-packed) data are inlined as JSON, so the file works
 * from file:// with the network off. Sections live in reports/sections/ (one module each).
 */
import { aggregateRuns, denseBaselines } from "./aggregate.js";
import { PRUNEBENCH_VERSION } from "../src/core/version.js";
import { readVegaAssets } from "./assets.js";
import { escapeHtml, jsonForScript } from "./format.js";
import type { ReportData } from "./model.js";
import { SECTIONS } from "./sections/index.js";
import type { ChartSpec, PackedTable, ReportContext, ResultSet, Section } from "./sections/types.js";

export interface HtmlReportOptions {
  /** Page title; default data.title. */
  title?: string;
  /** A second result set to compare against group by group (adds the "Comparison" section). */
  compare?: ReportData;
  /** Sections to render, in order; default SECTIONS. */
  sections?: readonly Section[];
}

/** Aggregate one ReportData for the sections. */
export function buildResultSet(data: ReportData): ResultSet {
  const groups = aggregateRuns(data.runs);
  const baselines = denseBaselines(data.runs);
  const panelKeys = new Map<string, [string, string]>();
  for (const g of groups) panelKeys.set(g.panel, [g.dataset, g.arch]);
  const panels = [...panelKeys.entries()].sort((a, b) => a[1][0].localeCompare(b[1][0]) || a[1][1].localeCompare(b[1][1])).map((e) => e[0]);
  const methods = [...new Set(groups.map((g) => g.methodLabel))].sort((a, b) => a.localeCompare(b));
  return { data, groups, baselines, panels, methods };
}

const CSS = `
:root { --fg:#1d1f23; --muted:#6b7280; --line:#e5e7eb; --bg:#fff; --accent:#1f5fa8; --soft:#f6f7f9; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header.top { padding: 18px 28px 10px; border-bottom:1px solid var(--line); }
header.top h1 { margin:0 0 4px; font-size:22px; font-weight:650; }
header.top .sub { color:var(--muted); font-size:13px; }
nav.toc { position: sticky; top:0; z-index:5; background:rgba(255,255,255,.96); border-bottom:1px solid var(--line); padding: 6px 28px; font-size:13px; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:16px; white-space:nowrap; }
nav.toc a:hover { text-decoration:underline; }
main { padding: 4px 28px 40px; max-width: 1400px; }
section { scroll-margin-top: 36px; padding-top: 10px; border-bottom: 1px solid var(--line); padding-bottom: 18px; }
section:last-child { border-bottom: none; }
h2 { font-size:18px; margin: 18px 0 6px; }
h3 { font-size:14px; margin: 16px 0 6px; color:#333; }
.note { color:var(--muted); margin: 4px 0 10px; max-width: 980px; }
.muted { color:var(--muted); }
code { font: 12px/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft); padding: 0 3px; border-radius:3px; }
pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft); padding: 8px 10px; overflow:auto; max-height: 320px; }
dl.facts { display:grid; grid-template-columns: max-content 1fr; gap: 3px 18px; margin: 8px 0 12px; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; }
.badge { display:inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; background:#eef2f7; color:#334; margin-right:3px; }
.badge b { font-weight:650; }
.st-done { background:#e6f4ea; color:#1e6b35; }
.st-failed { background:#fde8e8; color:#9b1c1c; }
.st-diverged { background:#fff1e0; color:#8a4b08; }
.st-interrupted, .st-running, .st-pending { background:#eef2f7; }
.scroll { overflow-x:auto; max-width:100%; }
table.data { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; margin: 4px 0 8px; }
table.data th, table.data td { padding: 3px 9px; border-bottom: 1px solid var(--line); text-align:left; vertical-align: top; }
table.data th { font-weight:600; background: var(--soft); }
table.data th.grp { text-align:center; border-left: 1px solid var(--line); }
table.data td.num, table.data th.num { text-align:right; white-space: nowrap; }
table.data tbody tr:hover { background: #f8fafc; }
table.data td.best { font-weight: 700; }
table.data tr.dense td { background: #fafafa; font-style: italic; }
table.data tr.ref td { background: #fbf8ef; color:#4a3d17; font-size: 12px; white-space: normal; }
table.data tr.ref .ritems { display:flex; flex-wrap:wrap; gap: 2px 22px; margin-top: 2px; }
table.data tr.ref .muted { color: #8a7a4f; }
table.data tr.unmatched td { color: var(--muted); }
table.data td.sep, table.data th.sep { border-left: 1px solid var(--line); }
table.data td.pos { color: #1e6b35; }
table.data td.neg { color: #9b1c1c; }
table.data td:first-child { white-space: nowrap; }
table.data td.err { font: 11.5px/1.35 ui-monospace, Menlo, Consolas, monospace; color:#7a1d1d; max-width: 620px; white-space: pre-wrap; word-break: break-word; }
table.defs td:first-child { white-space:nowrap; }
.pm { color: var(--muted); font-weight: normal; }
.sub { color: #8a7a4f; font-size: 11px; white-space: normal; }
details { margin: 6px 0; }
details.panel > summary { font-size: 14px; color: var(--fg); padding: 4px 0; }
summary { cursor: pointer; color: var(--accent); }
.chart { margin: 6px 0 10px; min-height: 40px; }
.chart-error { color:#9b1c1c; font-family: monospace; }
.controls { font-size: 12.5px; margin: 6px 0 4px; display:flex; gap: 18px; flex-wrap: wrap; align-items: center; }
.controls .vega-bind { display:inline-block; }
.controls:empty { display:none; }
.vega-bindings { font-size: 12.5px; margin: 6px 0; display:flex; gap: 16px; flex-wrap: wrap; }
.vega-bind-name { color: var(--muted); }
.vega-bindings select { font: inherit; padding: 2px 4px; }
footer { color:var(--muted); font-size:12px; padding: 0 28px 24px; }
`;

/** Boot script: unpack column-packed data and render every chart with vega-embed (SVG renderer). */
const BOOT = `
(function () {
  var P = JSON.parse(document.getElementById("pb-data").textContent);
  function unpack(t) {
    var out = new Array(t.n);
    for (var i = 0; i < t.n; i++) {
      var o = {};
      for (var j = 0; j < t.cols.length; j++) {
        var c = t.cols[j], x = c.v[i];
        o[c.name] = c.d && x !== null ? c.d[x] : x;
      }
      out[i] = o;
    }
    return out;
  }
  var pending = P.charts.length, failed = 0;
  function settle() { if (--pending === 0) document.body.setAttribute("data-charts", failed ? "error" : "done"); }
  if (pending === 0) { document.body.setAttribute("data-charts", "done"); return; }
  document.body.setAttribute("data-charts", "pending");
  P.charts.forEach(function (ch) {
    var el = document.getElementById(ch.id);
    var spec = ch.spec, ds = {};
    ch.datasets.forEach(function (n) { ds[n] = unpack(P.data[n]); });
    spec.datasets = ds;
    var opts = { renderer: "svg", actions: false, mode: "vega-lite", logLevel: vega.Error };
    var controls = document.getElementById(ch.id + "-controls");
    if (controls) opts.bind = controls;
    vegaEmbed(el, spec, opts)
      .then(function () { el.setAttribute("data-rendered", "1"); settle(); })
      .catch(function (err) {
        failed++;
        el.className += " chart-error";
        el.textContent = "This chart could not be drawn: " + (err && err.message ? err.message : err);
        console.error(err);
        settle();
      });
  });
})();
`;

/** Render `data` (and optionally a comparison with `options.compare`) as one self-contained HTML page. */
export function renderHtmlReport(data: ReportData, options: HtmlReportOptions = {}): string {
  const title = options.title ?? data.title ?? "prunebench report";
  const ctx: ReportContext = { ...buildResultSet(data), title, compare: options.compare ? buildResultSet(options.compare) : undefined };
  const charts: ChartSpec[] = [];
  const datasets: Record<string, PackedTable> = {};
  const parts: string[] = [];
  const nav: string[] = [];
  for (const s of options.sections ?? SECTIONS) {
    const out = s.render(ctx);
    if (!out) continue;
    for (const [name, t] of Object.entries(out.data ?? {})) {
      if (name in datasets) throw new Error(`report section ${s.id}: dataset name "${name}" is already used by another section`);
      datasets[name] = t;
    }
    charts.push(...(out.charts ?? []));
    nav.push(`<a href="#${escapeHtml(s.id)}">${escapeHtml(s.title)}</a>`);
    parts.push(`<section id="${escapeHtml(s.id)}" data-section="${escapeHtml(s.id)}"><h2>${escapeHtml(s.title)}</h2>${out.html}</section>`);
  }
  const assets = readVegaAssets();
  const done = data.runs.filter((r) => r.status === "done").length;
  const subtitle = `${data.runs.length} runs (${done} done) · ${ctx.groups.length} groups · generated ${escapeHtml(data.generatedAt)}${
    ctx.compare ? ` · compared with <i>${escapeHtml(ctx.compare.data.title)}</i>` : ""
  }`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="prunebench">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header class="top"><h1>${escapeHtml(title)}</h1><div class="sub">${subtitle}</div></header>
<nav class="toc">${nav.join("")}</nav>
<main>
${parts.join("\n")}
</main>
<footer>prunebench ${escapeHtml(PRUNEBENCH_VERSION)} · self-contained report: Vega, Vega-Lite and vega-embed are inlined, so this file works offline.</footer>
<script>${assets.vega}</script>
<script>${assets.vegaLite}</script>
<script>${assets.vegaEmbed}</script>
<script type="application/json" id="pb-data">${jsonForScript({ charts, data: datasets })}</script>
<script>${BOOT}</script>
</body>
</html>
`;
}
