import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  aggregateRuns,
  denseBaselines,
  normalizeReferenceValue,
  paretoFrontier,
  studentTQuantile,
  summarize,
  summarizeGroups,
} from "../reports/aggregate.js";
import { exportRows } from "../reports/export.js";
import { renderHtmlReport } from "../reports/html.js";
import type { ReportData } from "../reports/model.js";
import { packRows, unpackRows } from "../reports/sections/common.js";
import { SECTIONS, type PackedTable } from "../reports/sections/index.js";
import { syntheticReportData } from "../reports/synthetic.js";
import { renderTable } from "../reports/table.js";
import { tinyReportData, tinyRun } from "./fixtures/report/tiny.js";

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b} (eps ${eps})`);

/** Minimal RFC 4180 CSV parser (quotes, doubled quotes, CRLF/LF), for round-trip checks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') q = false;
      else cell += c;
    } else if (c === '"') q = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

describe("statistics", () => {
  it("Student t quantiles match published tables", () => {
    close(studentTQuantile(0.975, 1), 12.706204736174705, 1e-9);
    close(studentTQuantile(0.975, 2), 4.302652729911275, 1e-9);
    close(studentTQuantile(0.975, 4), 2.7764451051977987, 1e-9);
    close(studentTQuantile(0.975, 10), 2.2281388519649385, 1e-9);
    close(studentTQuantile(0.975, 30), 2.0422724563012373, 1e-9);
    close(studentTQuantile(0.975, 1000), 1.9623390808264078, 1e-8);
    close(studentTQuantile(0.025, 4), -2.7764451051977987, 1e-9);
  });

  it("summarize: mean, sample std, t interval, min/max; ignores null and NaN", () => {
    const s = summarize([0.9, null, 0.8, Number.NaN, 0.7])!;
    assert.equal(s.n, 3);
    close(s.mean, 0.8);
    close(s.std!, 0.1);
    const half = 4.302652729911275 * (0.1 / Math.sqrt(3));
    close(s.ci95![0], 0.8 - half, 1e-9);
    close(s.ci95![1], 0.8 + half, 1e-9);
    close(s.min, 0.7);
    close(s.max, 0.9);
    const one = summarize([5])!;
    assert.equal(one.std, null);
    assert.equal(one.ci95, null);
    assert.equal(summarize([null, undefined]), null);
  });
});

describe("aggregation", () => {
  it("groups done runs over seeds, with the dense baseline and delta", () => {
    const data = tinyReportData();
    const groups = aggregateRuns(data.runs);
    assert.equal(groups.length, 2);
    const mag = groups.find((g) => g.methodLabel === "magnitude")!;
    const rnd = groups.find((g) => g.methodLabel === "random")!;
    assert.deepEqual(mag.seeds, [0, 1, 2]);
    assert.deepEqual(rnd.seeds, [0, 1], "the failed seed-2 run is excluded");
    close(mag.metrics.top1_after.mean, 0.8);
    close(mag.metrics.top1_after.std!, 0.1);
    close(rnd.metrics.top1_after.mean, 0.55);
    close(rnd.metrics.top1_after.std!, Math.sqrt(0.005));
    const half = 12.706204736174705 * (Math.sqrt(0.005) / Math.sqrt(2));
    close(rnd.metrics.top1_after.ci95![1], 0.55 + half, 1e-9);
    // Dense: per seed 0.95, 0.97, 0.93 -> mean 0.95 (the failed run's 0.1 must not count).
    const base = denseBaselines(data.runs).get("mnist · mlp")!;
    close(base.top1.mean, 0.95);
    close(base.top1.std!, 0.02);
    close(mag.deltaTop1!.mean, 0.8 - 0.95);
    close(rnd.deltaTop1!.mean, 0.55 - 0.95);
    close(mag.deltaTop1!.std!, 0.1, 1e-12);
  });

  it("summarizeGroups groups by any subset of dimensions", () => {
    const data = syntheticReportData(180, 3);
    const byMethod = summarizeGroups(data.runs, ["method"]);
    assert.deepEqual(byMethod.map((g) => g.by.method), ["global_magnitude", "layer_magnitude", "random"]);
    const done = data.runs.filter((r) => r.status === "done");
    assert.equal(byMethod.reduce((a, g) => a + g.runKeys.length, 0), done.length);
    const gm = done.filter((r) => r.methodLabel === "global_magnitude").map((r) => r.metrics.top1_after as number);
    close(byMethod[0].metrics.top1_after.mean, gm.reduce((a, b) => a + b, 0) / gm.length, 1e-12);
    const byTarget = summarizeGroups(data.runs, ["target", "arch"]);
    assert.equal(byTarget[0].by.target, "sparsity 0.5");
    assert.equal(byTarget[0].by.arch, "lenet5");
    assert.equal(byTarget.at(-1)!.by.target, "sparsity 0.98");
  });
});

describe("Pareto frontier", () => {
  const pts = [
    { id: "a", x: 1, y: 0.9 },
    { id: "b", x: 2, y: 0.85 },
    { id: "c", x: 2, y: 0.8 }, // same x as b, worse
    { id: "d", x: 4, y: 0.86 }, // dominates b
    { id: "e", x: 8, y: 0.5 },
    { id: "f", x: 3, y: 0.7 }, // dominated by d
    { id: "g", x: null as number | null, y: 0.99 }, // ignored
    { id: "h", x: 8, y: 0.5 }, // duplicate of e: only one kept
  ];
  it("keeps exactly the non-dominated points, sorted by x (higher x better)", () => {
    const f = paretoFrontier(pts, (p) => p.x, (p) => p.y, "higher").map((p) => p.id);
    assert.deepEqual(f, ["a", "d", "e"]);
  });
  it("lower x better (latency)", () => {
    const f = paretoFrontier(pts, (p) => p.x, (p) => p.y, "lower").map((p) => p.id);
    assert.deepEqual(f, ["a"]);
    const g = paretoFrontier([{ x: 1, y: 0.5 }, { x: 2, y: 0.7 }, { x: 3, y: 0.6 }], (p) => p.x, (p) => p.y, "lower");
    assert.deepEqual(g, [{ x: 1, y: 0.5 }, { x: 2, y: 0.7 }]);
  });
  it("agrees with a brute-force dominance check on random point sets", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ x: fc.integer({ min: 0, max: 6 }), y: fc.integer({ min: 0, max: 6 }) }), { maxLength: 25 }), fc.boolean(), (ps, higher) => {
        const better = (a: number, b: number) => (higher ? a > b : a < b);
        const front = paretoFrontier(ps, (p) => p.x, (p) => p.y, higher ? "higher" : "lower");
        const dominated = (p: { x: number; y: number }) =>
          ps.some((q) => (q.x === p.x || better(q.x, p.x)) && q.y >= p.y && (better(q.x, p.x) || q.y > p.y));
        // every non-dominated (x, y) value appears exactly once; nothing dominated appears
        const want = new Set(ps.filter((p) => !dominated(p)).map((p) => `${p.x},${p.y}`));
        const got = front.map((p) => `${p.x},${p.y}`);
        assert.equal(new Set(got).size, got.length);
        assert.deepEqual(new Set(got), want);
        for (let i = 1; i < front.length; i++) assert.ok(front[i - 1].x <= front[i].x);
      }),
    );
  });
});

describe("reference units", () => {
  it("converts percent, FLOPs as 2xMACs, and refuses unknown units", () => {
    assert.equal(normalizeReferenceValue("top1_after", 91.5, "%").normalized, 0.915);
    const f = normalizeReferenceValue("macs_effective", 2e6, "FLOPs(2xMACs)");
    assert.equal(f.normalized, 1e6);
    assert.match(f.conversion, /FLOPs as 2×MACs/);
    assert.equal(normalizeReferenceValue("compression_ratio", 12, "x").normalized, 12);
    assert.equal(normalizeReferenceValue("top1_after", 3, "furlongs").normalized, null);
  });
});

describe("HTML report", () => {
  const data = syntheticReportData(180, 1);
  const compare: ReportData = {
    ...syntheticReportData(180, 2),
    title: "other run",
  };
  const html = renderHtmlReport(data, { title: "Synthetic <test>", compare });

  it("is self-contained: no external scripts, styles, images or fonts", () => {
    assert.doesNotMatch(html, /<script[^>]+src=/i);
    assert.doesNotMatch(html, /<link[^>]+href=/i);
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i);
    assert.doesNotMatch(html, /@import/i);
    assert.doesNotMatch(html, /url\(\s*["']?https?:/i);
    // the libraries are inlined
    assert.ok(html.includes("vegaEmbed") && html.length > 700_000, "vega, vega-lite and vega-embed are inlined");
    assert.equal((html.match(/<script/g) ?? []).length, 5);
    assert.equal((html.match(/<\/script>/g) ?? []).length, 5, "no inlined text closes a script early");
  });

  it("has every section, a nav link for each, and escapes the title", () => {
    for (const s of SECTIONS) {
      assert.ok(html.includes(`<section id="${s.id}"`), `section ${s.id}`);
      assert.ok(html.includes(`href="#${s.id}"`), `nav link ${s.id}`);
    }
    assert.ok(html.includes("<title>Synthetic &lt;test&gt;</title>"));
    const without = renderHtmlReport(data);
    assert.ok(!without.includes(`<section id="comparison"`), "comparison only with compare");
  });

  it("inlines chart specs whose datasets and containers exist", () => {
    const m = html.match(/<script type="application\/json" id="pb-data">([\s\S]*?)<\/script>/);
    assert.ok(m);
    const payload = JSON.parse(m[1]) as { charts: { id: string; spec: Record<string, unknown>; datasets: string[] }[]; data: Record<string, PackedTable> };
    const ids = payload.charts.map((c) => c.id);
    assert.deepEqual(ids.sort(), ["chart-class-damage", "chart-cost", "chart-drop", "chart-finetune", "chart-layers", "chart-targets", "chart-tradeoff-compression", "chart-tradeoff-measured", "chart-tradeoff-speedup"]);
    for (const c of payload.charts) {
      assert.ok(html.includes(`<div class="chart" id="${c.id}">`));
      for (const d of c.datasets) {
        assert.ok(payload.data[d], `dataset ${d}`);
        assert.ok(payload.data[d].n > 0);
        for (const col of payload.data[d].cols) assert.equal(col.v.length, col.at ? col.at.length : payload.data[d].n);
      }
    }
    // aggregated: one trade-off row per group ("*": mean over seeds) and one per (group, seed) for the seed filter
    const tradeoff = unpackRows(payload.data.tradeoff);
    const kinds = tradeoff.map((r) => r.k);
    assert.equal(tradeoff.filter((r) => r.k === "g" && r.s === "*").length, aggregateRuns(data.runs).length);
    assert.equal(tradeoff.filter((r) => r.k === "g" && r.s !== "*").length, data.runs.filter((r) => r.status === "done").length);
    assert.equal(kinds.filter((k) => k === "d").length, 4);
    assert.equal(kinds.filter((k) => k === "r").length, 2);
    // the layer heatmap's default target is the one present for most methods (here all tie: the middle one)
    const layers = payload.charts.find((c) => c.id === "chart-layers")!.spec as { params: { value: string; bind: { options: string[] } }[] };
    assert.equal(layers.params[0].value, "sparsity 0.9");
    assert.deepEqual(layers.params[0].bind.options, ["sparsity 0.5", "sparsity 0.75", "sparsity 0.9", "sparsity 0.95", "sparsity 0.98"]);
  });

  it("overview lists failures with errors, counts and compute time", () => {
    const failed = data.runs.filter((r) => r.status === "failed" || r.status === "diverged");
    assert.ok(failed.length >= 2);
    assert.ok(html.includes(`Failed and diverged runs (${failed.length})`));
    for (const r of failed) assert.ok(html.includes(r.error!.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;")));
    assert.match(html, /done <b>178<\/b>/);
    assert.match(html, /total_seconds<\/code> over 180 runs/);
  });

  it("results table bolds only a win outside the noise and shows references with units and deltas", () => {
    const tiny = tinyReportData();
    tiny.references.push({
      paper: "Someone 2020",
      source: "Table 2",
      dataset: "mnist",
      arch: "mlp",
      method: "magnitude",
      target: { kind: "sparsity", value: 0.9 },
      metrics: { top1_after: { value: 81, unit: "%" }, macs_effective: { value: 200, unit: "FLOPs(2xMACs)" } },
    });
    const h = renderHtmlReport(tiny);
    const results = h.slice(h.indexOf('<section id="results"'), h.indexOf("</section>", h.indexOf('<section id="results"')));
    // magnitude has the best mean top-1 (80.00%), but on the 2 seeds both ran (differences 0.4, 0.2) the paired t-test
    // gives p = 0.205 (df 1): a tie, so not bold. random's theoretical speedup (5.00x vs 4.00x, a count) is bold.
    assert.doesNotMatch(results, /<td class="num best">80\.00%/);
    assert.match(results, /<td class="num best">5\.00×<\/td>/);
    assert.doesNotMatch(results, /<td class="num best">55\.00%/);
    assert.match(results, /Someone 2020/);
    assert.match(results, /ours − paper <b>−1\.00 pp<\/b>/);
    assert.match(results, /FLOPs as 2×MACs/);
  });

  it("places published dense rows under our dense row and other methods beside our best group at that target", () => {
    const tiny = tinyReportData();
    tiny.references.push(
      { paper: "Dense paper", source: "T1", dataset: "mnist", arch: "mlp", method: "dense", target: { kind: "compression", value: 1 }, metrics: { top1_after: { value: 0.96, unit: "fraction" } } },
      { paper: "Iterative paper", source: "T2", dataset: "mnist", arch: "mlp", method: "iterative magnitude", target: { kind: "sparsity", value: 0.9 }, metrics: { top1_after: { value: 0.79, unit: "fraction" } } },
      { paper: "Elsewhere", source: "T3", dataset: "mnist", arch: "mlp", method: "snip", target: { kind: "sparsity", value: 0.95 }, metrics: { top1_after: { value: 0.9, unit: "fraction" } } },
    );
    const h = renderHtmlReport(tiny);
    const results = h.slice(h.indexOf('<section id="results"'), h.indexOf("</section>", h.indexOf('<section id="results"')));
    const dense = results.indexOf('<tr class="dense"');
    const densePaper = results.indexOf("Dense paper");
    const firstGroup = results.search(/<tr[^>]*><td>magnitude<\/td>/);
    assert.ok(dense >= 0 && dense < densePaper && densePaper < firstGroup, "dense reference right under the dense row");
    // ours (dense mean 95.00%) vs 96.00% -> -1.00 pp
    assert.match(results.slice(densePaper, firstGroup), /ours − paper <b>−1\.00 pp<\/b>/);
    // iterative magnitude: after the last group at sparsity 0.9 (random), compared with magnitude (best top-1, 80%)
    const it = results.indexOf("Iterative paper");
    const random = results.search(/<tr[^>]*><td>random<\/td>/);
    assert.ok(random >= 0 && it > random);
    assert.match(results.slice(it), /compared with our best top-1 at sparsity 0\.9: <b>magnitude<\/b>/);
    assert.match(results.slice(it), /ours − paper <b>\+1\.00 pp<\/b>/);
    // no reproduced group at sparsity 0.95: listed apart
    assert.ok(results.indexOf("Elsewhere") > results.indexOf("Published numbers without a reproduced match"));
  });

  it("comparison section shows both values and the difference", () => {
    const a = tinyReportData();
    const b = tinyReportData();
    b.title = "B";
    for (const r of b.runs) if (r.metrics.top1_after !== undefined && r.status === "done") r.metrics.top1_after = (r.metrics.top1_after as number) + 0.02;
    const h = renderHtmlReport(a, { compare: b });
    const cmp = h.slice(h.indexOf('<section id="comparison"'));
    assert.match(cmp, /80\.00%<\/td><td class="num">82\.00%<\/td><td class="num diff pos">\+2\.00 pp/);
    assert.match(cmp, /10\.00×<\/td><td class="num">10\.00×<\/td><td class="num diff">±0\.00×/);
    assert.match(cmp, /2 in both, 0 only in A, 0 only in B/);
  });

  it("renders an empty result set and escapes hostile labels", () => {
    const empty: ReportData = { title: "empty", generatedAt: "now", sweeps: [], runs: [], layers: [], epochs: [], references: [] };
    const h = renderHtmlReport(empty);
    // comparison needs a second result set, speedup a run with a latency (test/report-speedup.test.ts).
    for (const s of SECTIONS.filter((s) => s.id !== "comparison" && s.id !== "speedup")) assert.ok(h.includes(`<section id="${s.id}"`));
    const evil = tinyReportData();
    for (const r of evil.runs) r.methodLabel = `</script><script>alert(1)</script>`;
    const he = renderHtmlReport(evil);
    assert.equal((he.match(/<\/script>/g) ?? []).length, 5);
    assert.ok(!he.includes("<script>alert(1)"));
  });
});

describe("tables", () => {
  const data = syntheticReportData(90, 1);
  const nGroups = aggregateRuns(data.runs).length;
  // Each dataset x arch block opens with its dense model.
  const nBlocks = new Set(data.runs.filter((r) => r.status === "done").map((r) => `${r.dataset}|${r.arch}`)).size;

  const cells = (line: string) => line.replace(/\\\|/g, "").split("|").length - 2;

  it("markdown: every row has as many cells as the header", () => {
    const md = renderTable(data, { format: "markdown", metrics: ["top1_after", "compression_ratio", "theoretical_speedup", "params_nonzero"] });
    const lines = md.trim().split("\n");
    assert.equal(lines.length, 2 + nBlocks + nGroups + data.references.length, "every published row is shown once");
    const n = cells(lines[0]);
    assert.equal(n, 4 + 1 + 4 + 1, "dims, n, the metrics and Δ top-1");
    for (const l of lines) assert.equal(cells(l), n, l);
    assert.match(lines[1], /^\|[ -]+\|[ -]+\|/);
    assert.match(md, /\*\*\d+\.\d\d\*\* ± \d/);
    const byMethod = renderTable(data, { format: "markdown", groupBy: ["method"], averageOver: ["dataset", "arch", "target"] }).trim().split("\n");
    assert.equal(byMethod.length, 2 + 1 + 3, "one dense row, then the methods");
  });

  it("latex: balanced environments, booktabs, column counts, escaped specials", () => {
    const d = syntheticReportData(90, 1);
    for (const r of d.runs) if (r.methodLabel === "random") r.methodLabel = "rand_om 50% & #1 $x$ {y} ~^\\";
    const tex = renderTable(d, { format: "latex", caption: "Results: 10% of a_b", label: "tab:my results" });
    for (const env of ["table", "tabular"]) {
      assert.equal((tex.match(new RegExp(`\\\\begin\\{${env}\\}`, "g")) ?? []).length, 1);
      assert.equal((tex.match(new RegExp(`\\\\end\\{${env}\\}`, "g")) ?? []).length, 1);
    }
    assert.ok(tex.indexOf("\\begin{table}") < tex.indexOf("\\begin{tabular}"));
    assert.ok(tex.indexOf("\\end{tabular}") < tex.indexOf("\\end{table}"));
    const order = ["\\toprule", "\\midrule", "\\bottomrule"].map((r) => tex.indexOf(r));
    assert.ok(order[0] > 0 && order[0] < order[1] && order[1] < order[2]);
    assert.match(tex, /\\caption\{Results: 10\\% of a\\_b\}/);
    assert.match(tex, /\\label\{tab:my-results\}/);
    const spec = tex.match(/\\begin\{tabular\}\{(.*)\}\n/)![1].replace(/@\{(?:[^{}]|\{[^{}]*\})*\}/g, "");
    const specCols = (spec.match(/S\[[^\]]*\]|[lrc]/g) ?? []).length;
    const body = tex.slice(tex.indexOf("\\midrule"), tex.indexOf("\\bottomrule"));
    const rows = body.split("\n").map((l) => l.trim()).filter((l) => l.endsWith("\\\\"));
    assert.equal(rows.length, nBlocks + nGroups + d.references.length, "every published row is shown once");
    for (const row of rows) assert.equal(row.split(/(?<!\\)&/).length, specCols, row);
    assert.ok(tex.includes("rand\\_om 50\\% \\& \\#1 \\$x\\$ \\{y\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}"));
    // every $ that is not escaped opens/closes math in pairs on each row
    for (const row of rows) assert.equal((row.match(/(?<!\\)\$/g) ?? []).length % 2, 0, row);
    assert.match(tex, / & \d+\.\d\d & \d+\.\d\d & /, "mean and std in S sub-columns");
    assert.match(tex, /\\bfseries \d/);
  });

  it("csv parses back to the aggregated numbers; json carries the stats", () => {
    const csv = renderTable(data, { format: "csv", groupBy: ["arch", "method"], metrics: ["top1_after"], averageOver: ["dataset", "target"], dense: false });
    const rows = parseCsv(csv);
    const header = rows[0];
    assert.deepEqual(header, ["arch", "method", "n", "top1_after_mean", "top1_after_std", "top1_after_n", "top1_after_ci95_lo", "top1_after_ci95_hi"]);
    assert.equal(rows.length - 1, 2 * 3);
    const groups = summarizeGroups(data.runs, ["arch", "method"]);
    rows.slice(1).forEach((r, i) => {
      assert.equal(r.length, header.length);
      assert.equal(r[0], groups[i].by.arch);
      close(Number(r[3]), groups[i].metrics.top1_after.mean, 1e-12);
      close(Number(r[4]), groups[i].metrics.top1_after.std!, 1e-12);
    });
    const json = JSON.parse(renderTable(data, { format: "json", groupBy: ["target"], averageOver: ["dataset", "arch", "method"], dense: false }));
    assert.equal(json.length, 5);
    assert.equal(json[0].target, "sparsity 0.5");
    assert.equal(json[0].targetValue, 0.5);
    assert.equal(typeof json[0].metrics.top1_after.mean, "number");
    assert.equal(json[0].metrics.top1_after.ci95.length, 2);
  });

  it("published rows sit under their group in every format, in our unit, marked with their paper and source", () => {
    const tiny = tinyReportData();
    tiny.references.push(
      { paper: "Mag paper", source: "Table 2", dataset: "mnist", arch: "mlp", method: "magnitude", target: { kind: "sparsity", value: 0.9 }, metrics: { top1_after: { value: 81, unit: "%" } }, note: "their MLP" },
      { paper: "Snip paper", source: "Fig. 3", dataset: "MNIST", arch: "mlp", method: "snip", target: { kind: "sparsity", value: 0.9 }, metrics: { top1_after: { value: 0.7, unit: "fraction" }, compression_ratio: { value: 12, unit: "x" } } },
      { paper: "Dense paper", source: "T1", dataset: "mnist", arch: "mlp", method: "dense", target: { kind: "compression", value: 1 }, metrics: { top1_after: { value: 0.96, unit: "fraction" } } },
    );
    const metrics = ["top1_after", "compression_ratio"];
    const md = renderTable(tiny, { format: "markdown", metrics }).trim().split("\n");
    // header, rule, our dense row, magnitude, its reference, random (cells printed again after a published row), the
    // snip row (same target, method not run), the published dense row last
    assert.equal(md.length, 8, md.join("\n"));
    assert.match(md[2], /^\| mnist .*\| dense .*\|\s+3 \|\s+95\.00 ± 2\.00 \|/);
    // Not bold: on the 2 seeds both methods ran, 80 % vs random is a tie (paired t-test p = 0.205; reports/winners.ts)
    assert.match(md[3], /^\| +\| +\| magnitude .*\|\s+0\.9 \|.*\|\s+3 \| 80\.00 ± 10\.00 \|/);
    assert.match(md[4], /^\| ↳ mnist .*\| magnitude \[Mag paper, Table 2\] .*\|\s+ref \|\s+81\.00 \|\s+– \|\s+– \|$/);
    assert.match(md[5], /^\| mnist .*\| random /);
    assert.match(md[6], /^\| ↳ MNIST .*\| snip \[Snip paper, Fig\. 3\] .*\|\s+0\.9 \|.*\|\s+ref \|\s+70\.00 \|\s+– \|\s+12\.00 \|$/);
    // a published dense point at compression 1 goes under the compression column, as a number
    assert.match(md[7], /^\| ↳ mnist .*\| dense \[Dense paper, T1\] .*\|\s+\|\s+1 \|\s+ref \|\s+96\.00 \|/);
    // published numbers never take the bold "best" mark from ours
    assert.ok(!md.slice(3).some((l) => l.includes("**") && l.includes("ref")));

    const tex = renderTable(tiny, { format: "latex", metrics });
    const texRows = tex.split("\n").filter((l) => l.includes("$\\hookrightarrow$"));
    assert.equal(texRows.length, 3);
    assert.match(texRows[0], /\\textit\{\$\\hookrightarrow\$ mnist\} & .*\\textit\{magnitude \[Mag paper, Table 2\]\} & .* & ref\. & \{\\itshape 81\.00\} & \{\} & \{--\} & \{\} & \{--\} & \{\} \\\\$/);
    // dataset, arch, method, sparsity, compression target, n, then mean and std sub-columns of top-1, Δ and compression
    for (const row of texRows) assert.equal(row.split(/(?<!\\)&/).length, 5 + 1 + 2 * (metrics.length + 1), row);
    assert.match(tex, /published numbers \(italic, ref\.\) converted to our units/);

    const csv = parseCsv(renderTable(tiny, { format: "csv", metrics: ["top1_after"] }));
    assert.deepEqual(csv[0].slice(-3), ["reference_paper", "reference_source", "reference_note"]);
    const col = (name: string) => csv[0].indexOf(name);
    const magRef = csv.find((r) => r[col("reference_paper")] === "Mag paper")!;
    assert.equal(Number(magRef[col("top1_after_mean")]), 0.81, "csv keeps raw numbers in our unit (fraction)");
    assert.equal(magRef[col("method")], "magnitude");
    assert.equal(magRef[col("reference_note")], "their MLP");
    assert.equal(magRef[col("n")], "");
    assert.equal(csv.indexOf(magRef), 3, "right under the magnitude group (after the header and the dense row)");
    assert.equal(csv.filter((r) => r[col("reference_paper")] === "").length, 3, "our dense row and two groups have no paper");

    const json = JSON.parse(renderTable(tiny, { format: "json", metrics }));
    assert.equal(json.length, 6);
    assert.equal(json[0].dense, true);
    assert.deepEqual(json[2].reference, { paper: "Mag paper", source: "Table 2", note: "their MLP" });
    assert.deepEqual(json[2].metrics.top1_after, { value: 0.81, published: { value: 81, unit: "%" } });
    assert.equal(json[2].metrics.compression_ratio, null);
    assert.equal(json[2].method, "magnitude");
    assert.equal(json[0].reference, undefined);

    // Grouped without dataset, arch or target, a published row describes no row of the table: none is shown.
    assert.equal(renderTable(tiny, { format: "markdown", groupBy: ["method"], metrics }).trim().split("\n").length, 5);
    assert.deepEqual(parseCsv(renderTable(tiny, { format: "csv", groupBy: ["arch", "method"], metrics }))[0].includes("reference_paper"), false);
  });

  it("rejects unknown dimensions and metrics", () => {
    assert.throws(() => renderTable(data, { format: "csv", groupBy: ["colour"] }), /unknown groupBy "colour"/);
    assert.throws(() => renderTable(data, { format: "csv", metrics: ["top7"] }), /unknown metric "top7"/);
  });
});

describe("exportRows", () => {
  const data = tinyReportData();
  data.runs[0].error = 'quote " and, comma\nnewline';
  data.layers.push({ runKey: "mag-0", name: "fc1", kind: "dense", shape: [784, 300], params: 235500, nonzero: 23550, macs: 235200, macsEffective: 23520, prunable: true });
  data.epochs.push({ runKey: "mag-0", phase: "finetune", epoch: 0, loss: 0.5, trainAcc: 0.8, valAcc: 0.79, lr: 0.01, seconds: 1.5, dnr: 0.4 });

  it("runs as CSV: one column per metric, parses back", () => {
    const rows = parseCsv(exportRows(data, "runs", "csv"));
    const h = rows[0];
    assert.equal(rows.length - 1, data.runs.length);
    for (const m of ["top1_dense", "top1_after", "compression_ratio", "theoretical_speedup", "total_seconds"]) assert.ok(h.includes(m), m);
    assert.ok(h.indexOf("top1_dense") < h.indexOf("top1_after"), "definition order");
    assert.equal(rows[1][h.indexOf("error")], 'quote " and, comma\nnewline');
    assert.equal(Number(rows[1][h.indexOf("top1_after")]), 0.9);
    assert.equal(rows[6][h.indexOf("compression_ratio")], "", "missing metric -> empty");
    assert.equal(rows[6][h.indexOf("status")], "failed");
  });

  it("json and jsonl carry the same rows", () => {
    const a = JSON.parse(exportRows(data, "runs", "json"));
    const b = exportRows(data, "runs", "jsonl").trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(a, b);
    assert.equal(a[0].top1_after, 0.9);
    assert.deepEqual(a[0].sweepIds, [1]);
    const layers = parseCsv(exportRows(data, "layers", "csv"));
    assert.deepEqual(layers[1], ["mag-0", "fc1", "dense", "784x300", "235500", "23550", "235200", "23520", "true"]);
    const epochs = JSON.parse(exportRows(data, "epochs", "json"));
    assert.equal(epochs[0].valAcc, 0.79);
    assert.equal(exportRows({ ...data, epochs: [] }, "epochs", "jsonl"), "");
  });
});

describe("packed chart data", () => {
  it("round-trips rows, dictionary-encoding repetitive strings", () => {
    const rows = [
      { p: "a", x: 1, s: null, b: true },
      { p: "a", x: 2.5, s: "u" },
      { p: "b", x: null, s: "u", b: false },
      { p: "a", x: 4, s: "u", b: true },
    ];
    const t = packRows(rows);
    assert.equal(t.n, 4);
    assert.deepEqual(t.cols.find((c) => c.name === "p")!.d, ["a", "b"]);
    assert.deepEqual(t.cols.find((c) => c.name === "p")!.v, [0, 0, 1, 0]);
    assert.deepEqual(unpackRows(t), rows.map((r) => ({ p: r.p, x: r.x, s: r.s, b: "b" in r ? r.b : null })));
  });

  it("stores mostly-empty columns sparsely and round-trips them", () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ i, paper: i === 7 ? "Han 2015" : null, f: i === 2 ? true : i === 9 ? false : null }));
    const t = packRows(rows);
    const paper = t.cols.find((c) => c.name === "paper")!;
    assert.deepEqual(paper.at, [7]);
    assert.deepEqual(paper.v, ["Han 2015"]);
    assert.deepEqual(t.cols.find((c) => c.name === "f")!.at, [2, 9]);
    assert.equal(t.cols.find((c) => c.name === "i")!.at, undefined, "a full column stays dense");
    assert.deepEqual(unpackRows(t), rows);
  });
});

describe("synthetic data", () => {
  it("has the requested size and shape", () => {
    const d = syntheticReportData(180, 7);
    assert.equal(d.runs.length, 180);
    assert.equal(new Set(d.runs.map((r) => r.methodLabel)).size, 3);
    assert.equal(new Set(d.runs.map((r) => r.arch)).size, 2);
    assert.equal(new Set(d.runs.map((r) => r.dataset)).size, 2);
    assert.equal(new Set(d.runs.map((r) => r.targetValue)).size, 5);
    assert.equal(new Set(d.runs.map((r) => r.seed)).size, 3);
    assert.ok(d.runs.filter((r) => r.status !== "done").length >= 2);
    assert.ok(d.layers.length > 0 && d.epochs.some((e) => e.phase === "finetune") && d.references.length > 0);
    assert.equal(syntheticReportData(10_000, 1).runs.length, 10_000);
    assert.deepEqual(syntheticReportData(50, 4), syntheticReportData(50, 4), "deterministic");
    // tiny fixture helper sanity
    assert.equal(tinyRun({ key: "x", metrics: {} }).status, "done");
  });
});
