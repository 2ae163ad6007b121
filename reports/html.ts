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
import { FILTER_DIMS, targetsOf } from "./sections/common.js";
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
nav.toc { position: sticky; top:0; z-index:5; background:rgba(255,255,255,.97); border-bottom:1px solid var(--line); padding: 6px 28px 4px; font-size:13px; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:16px; white-space:nowrap; }
nav.toc a:hover { text-decoration:underline; }
main { padding: 4px 28px 40px; max-width: 1400px; }
section { scroll-margin-top: 76px; padding-top: 10px; border-bottom: 1px solid var(--line); padding-bottom: 18px; }
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
.filterbar { display:flex; flex-wrap:wrap; gap: 6px 16px; align-items:center; padding: 5px 0 2px; font-size: 12.5px; }
.filterbar label { color: var(--muted); }
.filterbar select { font: inherit; padding: 1px 3px; max-width: 240px; color: var(--fg); }
.filterbar select.on { outline: 2px solid var(--accent); }
.filterbar button { font: inherit; padding: 1px 8px; cursor: pointer; }
.filterbar .shown { color: var(--muted); }
.filterbar .warn { color: #9b1c1c; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; font-size: 9px; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; font-size: 9px; }
details.collapsed-chart > summary { color: var(--muted); }
.vega-embed { padding-right: 38px; }
`;

/**
 * Boot script: unpack column-packed data, read the filter from the URL hash, then draw charts lazily with vega-embed
 * (SVG renderer, export actions on), each with the filter's signal values already set: the charts on screen at once,
 * the others when they come within a viewport's height of the screen (an IntersectionObserver triggers the check),
 * one chart per task so scrolling and the filter bar stay usable. A filter change re-runs only the drawn charts near
 * the screen; drawn charts further away are marked stale (data-stale) and re-run when they come near. Printing
 * (beforeprint) and window.prunebench.drawAll() draw and update every chart, folded ones included.
 * Sets on body (tests and scripts/bench-report.ts wait on them): data-first-view done/error once the charts on screen
 * at load are drawn (with data-first-view-ms, data-first-view-charts); data-charts done/error once every chart is drawn
 * (pending until then, which a page that is never scrolled may stay: call drawAll); data-filtered, a counter bumped
 * when the first view is drawn and each time a filter change has reached every table and every chart near the screen;
 * data-lazy idle/busy, idle when no chart near the screen waits to be drawn or updated.
 */
const BOOT = `
(function () {
  var P = JSON.parse(document.getElementById("pb-data").textContent);
  function unpack(t) {
    var out = new Array(t.n), i, j;
    for (i = 0; i < t.n; i++) out[i] = {};
    for (j = 0; j < t.cols.length; j++) {
      var c = t.cols[j], x;
      if (c.at) {
        for (i = 0; i < t.n; i++) out[i][c.name] = null;
        for (i = 0; i < c.at.length; i++) { x = c.v[i]; out[c.at[i]][c.name] = c.d && x !== null ? c.d[x] : x; }
      } else {
        for (i = 0; i < t.n; i++) { x = c.v[i]; out[i][c.name] = c.d && x !== null ? c.d[x] : x; }
      }
    }
    return out;
  }
  var DIMS = P.filter;
  var state = {};
  var applied = 0;
  var gen = 0; // bumped by each filter change; a chart showing an older one is stale
  var warn = document.getElementById("pb-filter-warn");
  function readHash() {
    var s = {}, bad = [];
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i < 1) return;
      var k = decodeURIComponent(kv.slice(0, i)), v = decodeURIComponent(kv.slice(i + 1).split("+").join(" "));
      var d = DIMS.filter(function (d) { return d.key === k; })[0];
      if (!d) return;
      if (v === "" || d.values.indexOf(v) >= 0) s[k] = v; else bad.push(k + " “" + v + "”");
    });
    if (warn) warn.textContent = bad.length ? "not in this report, ignored: " + bad.join(", ") : "";
    return s;
  }
  function writeHash() {
    var parts = [];
    DIMS.forEach(function (d) { if (state[d.key]) parts.push(encodeURIComponent(d.key) + "=" + encodeURIComponent(state[d.key])); });
    var h = parts.length ? "#" + parts.join("&") : "";
    if (location.hash === h || (h === "" && location.hash === "")) return;
    try { history.replaceState(null, "", h || location.pathname + location.search); } catch (e) { location.hash = h; }
  }
  function rowMatches(el) {
    for (var i = 0; i < DIMS.length; i++) {
      var d = DIMS[i], want = state[d.key];
      if (!want) continue;
      var have = el.getAttribute(d.attr);
      if (have === null) continue;
      if (d.key === "seed" ? have.indexOf("|" + want + "|") < 0 : have !== want) return false;
    }
    return true;
  }
  function filterElements() {
    var shown = 0, total = 0;
    var els = document.querySelectorAll("main [data-ds], main [data-a], main [data-m], main [data-t], main [data-ss]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i], ok = rowMatches(el);
      el.style.display = ok ? "" : "none";
      if (el.tagName === "TR" && el.hasAttribute("data-m")) { total++; if (ok) shown++; }
      // Published-number rows (tr.ref) follow the row they belong to.
      for (var n = el.nextElementSibling; el.tagName === "TR" && n && n.classList.contains("ref") && !n.hasAttribute("data-ds"); n = n.nextElementSibling) n.style.display = ok ? "" : "none";
    }
    var c = document.getElementById("pb-filter-count");
    if (c) c.textContent = total ? shown + " of " + total + " table rows shown" : "";
  }
  function apply() {
    var t0 = performance.now();
    gen++;
    DIMS.forEach(function (d) {
      var sel = document.getElementById("pb-f-" + d.key);
      if (sel) { sel.value = state[d.key] || ""; sel.classList.toggle("on", !!state[d.key]); }
    });
    filterElements();
    writeHash();
    var now = [];
    charts.forEach(function (c) {
      if (!c.drawn && !c.busy) return;
      if (isNear(c)) now.push(ensure(c)); else if (c.drawn) c.el.setAttribute("data-stale", "1");
    });
    Promise.all(now).then(function () {
      // How long the last filter change took to reach every table and every chart near the screen
      // (scripts/bench-report.ts reads it).
      document.body.setAttribute("data-filter-ms", String(Math.round(performance.now() - t0)));
      document.body.setAttribute("data-filtered", String(++applied));
    });
    // Charts the filter brought back into view, or near ones not drawn yet.
    pump();
  }
  state = readHash();
  DIMS.forEach(function (d) {
    var sel = document.getElementById("pb-f-" + d.key);
    if (sel) sel.addEventListener("change", function () { state[d.key] = sel.value; apply(); });
  });
  var reset = document.getElementById("pb-f-reset");
  if (reset) reset.addEventListener("click", function () { state = {}; apply(); });
  window.addEventListener("hashchange", function () { state = readHash(); apply(); });
  // Section links scroll without replacing the filter in the hash.
  Array.prototype.forEach.call(document.querySelectorAll("nav.toc a[data-target]"), function (a) {
    a.addEventListener("click", function (e) {
      var t = document.getElementById(a.getAttribute("data-target"));
      if (t) { e.preventDefault(); t.scrollIntoView(); }
    });
  });
  sortableTables();
  filterElements();
  DIMS.forEach(function (d) {
    var sel = document.getElementById("pb-f-" + d.key);
    if (sel) { sel.value = state[d.key] || ""; sel.classList.toggle("on", !!state[d.key]); }
  });
  // One record per chart: its vega view once drawn, the filter generation it shows, the draw or re-run in flight.
  var charts = P.charts.map(function (ch) {
    return { ch: ch, el: document.getElementById(ch.id), view: null, drawn: false, failed: false, busy: null, gen: -1 };
  });
  // A chart counts as near when it is within MARGIN px of the screen (one screen height: drawn before it is seen).
  var MARGIN = Math.max(600, innerHeight);
  function distance(c) {
    // Folded (closed <details>: laid out, yet not shown) or hidden by the filter.
    if (c.el.checkVisibility ? !c.el.checkVisibility() : !c.el.getClientRects().length) return Infinity;
    var r = c.el.getBoundingClientRect();
    return r.bottom < 0 ? -r.bottom : r.top > innerHeight ? r.top - innerHeight : 0;
  }
  function isNear(c) { return distance(c) <= MARGIN; }
  /** Draw c if it is not drawn, re-run it if it shows an older filter; resolves once it shows the current one. */
  function ensure(c) {
    if (c.failed) return Promise.resolve();
    if (c.busy) return c.busy.then(function () { return ensure(c); });
    if (c.drawn && c.gen === gen) return Promise.resolve();
    var g = gen;
    c.busy = (c.drawn ? rerun(c) : draw(c)).catch(function (err) { console.error(err); }).then(function () {
      c.busy = null;
      c.gen = g;
      if (g === gen) c.el.removeAttribute("data-stale");
      progress();
      setTimeout(pump, 0);
    });
    return c.busy.then(function () { return ensure(c); });
  }
  function rerun(c) {
    DIMS.forEach(function (d) { c.view.signal(d.signal, state[d.key] || ""); });
    return c.view.runAsync();
  }
  /** Every chart drawn and showing the current filter (printing, scripts, tests). */
  function drawAll() {
    return Promise.all(charts.map(ensure)).then(function () {});
  }
  window.prunebench = { drawAll: drawAll };
  // Printing is synchronous after beforeprint; every step of a draw is a microtask (data is inline), so the charts
  // are drawn before the page is laid out for print.
  window.addEventListener("beforeprint", function () { drawAll(); });
  // The charts on screen now: the first view, drawn first; its time is what a reader waits for.
  var first = charts.filter(function (c) { return distance(c) === 0; });
  var firstDone = false, allDone = false;
  function progress() {
    if (!firstDone && first.every(function (c) { return c.drawn || c.failed; })) {
      firstDone = true;
      document.body.setAttribute("data-first-view-ms", String(Math.round(performance.now())));
      document.body.setAttribute("data-first-view-charts", String(first.length));
      document.body.setAttribute("data-first-view", first.some(function (c) { return c.failed; }) ? "error" : "done");
      document.body.setAttribute("data-filtered", String(++applied));
    }
    if (!allDone && charts.every(function (c) { return c.drawn || c.failed; })) {
      allDone = true;
      // Milliseconds from navigation start to every chart drawn (scripts/bench-report.ts reads it).
      document.body.setAttribute("data-charts-ms", String(Math.round(performance.now())));
      document.body.setAttribute("data-charts", charts.some(function (c) { return c.failed; }) ? "error" : "done");
    }
  }
  /** Draw or update the nearest chart that needs it, then yield to the browser and look again. */
  var pumping = false;
  function pump() {
    if (pumping) return;
    var next = null, best = Infinity, inFlight = false;
    charts.forEach(function (c) {
      if (c.failed || (c.drawn && c.gen === gen && !c.busy)) return;
      var d = distance(c);
      if (d > MARGIN) return;
      if (c.busy) inFlight = true; // a filter change or drawAll is on it; look again when it ends
      else if (d < best) { best = d; next = c; }
    });
    // Scripts and tests wait on "idle": every chart near the screen is drawn and current.
    document.body.setAttribute("data-lazy", next || inFlight ? "busy" : "idle");
    if (!next) return;
    pumping = true;
    ensure(next).then(function () { pumping = false; setTimeout(pump, 0); });
  }
  document.body.setAttribute("data-charts", charts.length ? "pending" : "done");
  progress();
  if (typeof IntersectionObserver === "function") {
    var io = new IntersectionObserver(function () { pump(); }, { rootMargin: MARGIN + "px 0px " + MARGIN + "px 0px" });
    charts.forEach(function (c) { io.observe(c.el); });
    // Opening a folded chart does not always move it across the observer's edge.
    Array.prototype.forEach.call(document.querySelectorAll("main details"), function (d) { d.addEventListener("toggle", pump); });
    pump();
  } else {
    drawAll();
  }
  function draw(c) {
    var ch = c.ch, el = c.el;
    var spec = ch.spec, ds = {};
    ch.datasets.forEach(function (n) { ds[n] = unpack(P.data[n]); });
    spec.datasets = ds;
    // Start from the current filter (the linked view, or what was chosen meanwhile): one render, not two.
    (spec.params || []).forEach(function (p) {
      DIMS.forEach(function (d) { if (p.name === d.signal) p.value = state[d.key] || ""; });
    });
    var opts = {
      renderer: "svg", mode: "vega-lite", logLevel: vega.Error, downloadFileName: ch.id.replace(/^chart-/, ""),
      actions: { export: { svg: true, png: true }, source: false, compiled: false, editor: false },
      i18n: { SVG_ACTION: "Save as SVG", PNG_ACTION: "Save as PNG" },
    };
    var controls = document.getElementById(ch.id + "-controls");
    if (controls) opts.bind = controls;
    return vegaEmbed(el, spec, opts)
      .then(function (res) { c.view = res.view; c.drawn = true; el.setAttribute("data-rendered", "1"); })
      .catch(function (err) {
        c.failed = true;
        el.className += " chart-error";
        el.textContent = "This chart could not be drawn: " + (err && err.message ? err.message : err);
        console.error(err);
      });
  }

  /** Click a header to sort (again to reverse). A row keeps its published-number rows (tr.ref); dense rows stay on top. */
  function sortableTables() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
      if (!head || table.tHead.rows.length !== 1) return;
      Array.prototype.forEach.call(head.cells, function (th, col) {
        th.title = (th.title ? th.title + " " : "") + "(click to sort)";
        th.addEventListener("click", function () {
          var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
          Array.prototype.forEach.call(head.cells, function (h) { h.removeAttribute("aria-sort"); });
          th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
          Array.prototype.forEach.call(table.tBodies, function (body) {
            var blocks = [], top = [], cur = null;
            Array.prototype.forEach.call(body.rows, function (r) {
              if (r.classList.contains("ref") && cur) { cur.rows.push(r); return; }
              cur = { rows: [r], key: r.cells[col] ? cellKey(r.cells[col]) : null };
              (r.classList.contains("dense") ? top : blocks).push(cur);
            });
            blocks.sort(function (a, b) {
              var x = a.key, y = b.key;
              if (x === null || y === null) return x === null ? (y === null ? 0 : 1) : -1;
              if (typeof x === "number" && typeof y === "number") return dir * (x - y);
              return dir * String(x).localeCompare(String(y));
            });
            top.concat(blocks).forEach(function (b) { b.rows.forEach(function (r) { body.appendChild(r); }); });
          });
        });
      });
    });
  }
  function cellKey(td) {
    var v = td.getAttribute("data-v");
    if (v !== null) return v === "" ? null : Number(v);
    var t = (td.textContent || "").trim();
    if (t === "" || t === "–") return null;
    var m = /^[\\[(]?\\s*([+\\-−±]?)\\s*(\\d[\\d,]*(?:\\.\\d+)?)\\s*([kMG]?)/.exec(t);
    if (!m) return t.toLowerCase();
    var x = Number(m[2].replace(/,/g, "")) * (m[3] === "k" ? 1e3 : m[3] === "M" ? 1e6 : m[3] === "G" ? 1e9 : 1);
    return m[1] === "-" || m[1] === "−" ? -x : x;
  }
})();
`;

/** The filter bar: one select per dimension, "" = all; its values are every value present in the report. */
export function filterBar(ctx: ReportContext): { html: string; dims: { key: string; signal: string; attr: string; values: string[] }[] } {
  const sets = [ctx, ...(ctx.compare ? [ctx.compare] : [])];
  const groups = sets.flatMap((s) => s.groups);
  const values: Record<string, string[]> = {
    dataset: [...new Set(groups.map((g) => g.dataset))].sort(),
    arch: [...new Set(groups.map((g) => g.arch))].sort(),
    method: [...new Set(groups.map((g) => g.methodLabel))].sort((a, b) => a.localeCompare(b)),
    target: targetsOf(groups).map((t) => t.label),
    seed: [...new Set(groups.flatMap((g) => g.seeds))].sort((a, b) => a - b).map(String),
  };
  const dims = FILTER_DIMS.map((d) => ({ key: d.key, signal: d.signal, attr: d.attr, values: values[d.key] }));
  const html = `<div class="filterbar" id="pb-filter" role="search" aria-label="filter every section">${dims
    .map(
      (d) =>
        `<label for="pb-f-${d.key}">${d.key}</label><select id="pb-f-${d.key}" data-dim="${d.key}"><option value="">all${d.key === "seed" ? " (mean)" : ""}</option>${d.values
          .map((v) => `<option value="${escapeHtml(v)}">${escapeHtml(v)}</option>`)
          .join("")}</select>`,
    )
    .join("")}<button type="button" id="pb-f-reset" title="show everything">reset</button><span class="shown" id="pb-filter-count"></span><span class="warn" id="pb-filter-warn"></span></div>`;
  return { html, dims };
}

/** The context every section renders from. */
export function reportContext(data: ReportData, options: HtmlReportOptions = {}): ReportContext {
  const title = options.title ?? data.title ?? "prunebench report";
  return { ...buildResultSet(data), title, compare: options.compare ? buildResultSet(options.compare) : undefined };
}

/** Every section's HTML, charts and datasets (dataset names must be unique across sections). */
export function renderSections(ctx: ReportContext, sections: readonly Section[]): { charts: ChartSpec[]; datasets: Record<string, PackedTable>; parts: string[]; nav: string[] } {
  const charts: ChartSpec[] = [];
  const datasets: Record<string, PackedTable> = {};
  const parts: string[] = [];
  const nav: string[] = [];
  for (const s of sections) {
    const out = s.render(ctx);
    if (!out) continue;
    for (const [name, t] of Object.entries(out.data ?? {})) {
      if (name in datasets) throw new Error(`report section ${s.id}: dataset name "${name}" is already used by another section`);
      datasets[name] = t;
    }
    charts.push(...(out.charts ?? []));
    nav.push(`<a href="#${escapeHtml(s.id)}" data-target="${escapeHtml(s.id)}">${escapeHtml(s.title)}</a>`);
    parts.push(`<section id="${escapeHtml(s.id)}" data-section="${escapeHtml(s.id)}"><h2>${escapeHtml(s.title)}</h2>${out.html}</section>`);
  }
  return { charts, datasets, parts, nav };
}

/** Render `data` (and optionally a comparison with `options.compare`) as one self-contained HTML page. */
export function renderHtmlReport(data: ReportData, options: HtmlReportOptions = {}): string {
  const title = options.title ?? data.title ?? "prunebench report";
  const ctx = reportContext(data, options);
  const { charts, datasets, parts, nav } = renderSections(ctx, options.sections ?? SECTIONS);
  const bar = filterBar(ctx);
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
<nav class="toc"><div>${nav.join("")}</div>${bar.html}</nav>
<main>
${parts.join("\n")}
</main>
<footer>prunebench ${escapeHtml(PRUNEBENCH_VERSION)} · self-contained report: Vega, Vega-Lite and vega-embed are inlined, so this file works offline.</footer>
<script>${assets.vega}</script>
<script>${assets.vegaLite}</script>
<script>${assets.vegaEmbed}</script>
<script type="application/json" id="pb-data">${jsonForScript({ charts, data: datasets, filter: bar.dims })}</script>
<script>${BOOT}</script>
</body>
</html>
`;
}
