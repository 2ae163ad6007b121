/**
 * `bench table` for papers: the dense row and Δ column, numeric target columns, blank repeats, booktabs + siunitx
 * LaTeX, the method pivot, caption seed counts, one number style per column, and the refusal to average over an axis
 * that varies. Numbers are checked against the hand-computed values of test/fixtures/report/tiny.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ReportData } from "../reports/model.js";
import { seedPhrase, renderTable, TableError, variedAxes } from "../reports/table.js";
import { tinyReportData, tinyRun } from "./fixtures/report/tiny.js";

const mdRows = (md: string) => md.trim().split("\n").filter((l) => l.startsWith("|")).map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));

/** Columns a tabular spec declares: l, r, c, or S[...] (the @{...} separators declare none). */
function specColumns(tex: string): number {
  const spec = /\\begin\{tabular\}\{(.*)\}\n/.exec(tex)![1].replace(/@\{(?:[^{}]|\{[^{}]*\})*\}/g, "");
  return (spec.match(/S\[[^\]]*\]|[lrc]/g) ?? []).length;
}

/** The body rows (between \midrule after the header and \bottomrule), as cell lists. */
function texBody(tex: string): string[][] {
  const body = tex.slice(tex.indexOf("\\midrule"), tex.indexOf("\\bottomrule"));
  return body.split("\n").map((l) => l.trim()).filter((l) => l.endsWith("\\\\")).map((l) => l.slice(0, -2).split(/(?<!\\)&/).map((c) => c.trim()));
}

/** tiny plus a second target (sparsity 0.5) and a second architecture, so blocks, pivots and averaging have something to do. */
function wider(): ReportData {
  const d = tinyReportData();
  const dense = [0.95, 0.97, 0.93];
  for (const [method, values] of [["magnitude", [0.94, 0.93, 0.92]], ["random", [0.9, 0.88, 0.86]]] as const) {
    values.forEach((v, seed) =>
      d.runs.push(tinyRun({ key: `${method}-half-${seed}`, seed, method, methodLabel: method, targetValue: 0.5, metrics: { top1_dense: dense[seed], top1_after: v, compression_ratio: 2, params_nonzero: 500, params_total: 1000 } })),
    );
  }
  d.runs.push(tinyRun({ key: "cnn-0", arch: "cnn", seed: 0, metrics: { top1_dense: 0.99, top1_after: 0.98, compression_ratio: 10, params_nonzero: 120_000, params_total: 1_200_000 } }));
  return d;
}

describe("bench table: dense row and Δ", () => {
  it("each dataset x arch block opens with its dense model (n = seeds) and Δ pairs each run with its own seed's dense model", () => {
    const rows = mdRows(renderTable(tinyReportData(), { format: "markdown", metrics: ["top1_after", "compression_ratio"] }));
    assert.deepEqual(rows[0], ["Dataset", "Arch", "Method", "Sparsity", "n", "Top-1 (%)", "Δ top-1 (pt)", "Compression (x)"]);
    // dense: seeds 0, 1, 2 -> 0.95, 0.97, 0.93: mean 95.00, std 2.00; compression 1 by definition; no Δ against itself
    assert.deepEqual(rows[2], ["mnist", "mlp", "dense", "–", "3", "95.00 ± 2.00", "–", "1.00"]);
    // magnitude deltas per seed: 90-95, 80-97, 70-93 = -5, -17, -23 pt: mean -15, sample std sqrt(84) = 9.17
    assert.equal(rows[3][6], "-15.00 ± 9.17");
    // random ran seeds 0 and 1 only: 50-95, 60-97 = -45, -37: mean -41 (not 55 - 95 = -40), std 8/sqrt(2) = 5.66
    assert.equal(rows[4][6], "-41.00 ± 5.66");
  });

  it("--no-dense (dense: false) drops both; Δ can still be asked for by name", () => {
    const md = renderTable(tinyReportData(), { format: "markdown", metrics: ["top1_after"], dense: false });
    assert.ok(!md.includes("dense") && !md.includes("Δ"), md);
    const asked = mdRows(renderTable(tinyReportData(), { format: "markdown", metrics: ["delta_top1"], dense: false }));
    assert.equal(asked[2][5], "-15.00 ± 9.17");
  });

  it("no dense row for a block whose runs recorded no dense accuracy (an older database)", () => {
    const d = tinyReportData();
    for (const r of d.runs) delete r.metrics.top1_dense;
    const md = renderTable(d, { format: "markdown", metrics: ["top1_after", "compression_ratio"] });
    assert.ok(!md.includes("dense"), md);
    assert.equal(mdRows(md).length, 4);
  });

  it("csv and json carry the dense rows and the Δ columns as raw fractions", () => {
    const csv = renderTable(tinyReportData(), { format: "csv", metrics: ["top1_after"] }).trim().split("\n");
    assert.match(csv[0], /top1_after_mean,top1_after_std,.*delta_top1_mean,delta_top1_std/);
    assert.match(csv[1], /^mnist,mlp,dense,,,,3,0\.95/);
    const json = JSON.parse(renderTable(tinyReportData(), { format: "json", metrics: ["top1_after"] }));
    assert.equal(json[0].dense, true);
    assert.equal(json[0].n, 3);
    assert.ok(Math.abs(json[1].metrics.delta_top1.mean - -0.15) < 1e-12);
  });
});

describe("bench table: layout", () => {
  it("the target is a number under a header that names its kind, one column per kind present", () => {
    const d = tinyReportData();
    d.runs.push(tinyRun({ key: "c16", targetKind: "compression", targetValue: 16, metrics: { top1_dense: 0.95, top1_after: 0.5 } }));
    d.runs.push(tinyRun({ key: "m50", targetKind: "macs-reduction", targetValue: 0.5, metrics: { top1_dense: 0.95, top1_after: 0.4 } }));
    const md = renderTable(d, { format: "markdown", metrics: ["top1_after"] });
    assert.ok(!/sparsity 0\.9|sparsity=|compression 16x/.test(md), md);
    const rows = mdRows(md);
    const col = (h: string) => rows[0].indexOf(h);
    assert.ok(col("Sparsity") > 0 && col("Compression target (x)") > 0 && col("MACs reduction (%)") > 0, rows[0].join(" | "));
    assert.ok(rows.some((r) => r[col("Compression target (x)")] === "16" && r[col("Sparsity")] === ""));
    assert.ok(rows.some((r) => r[col("MACs reduction (%)")] === "50"));
    const tex = renderTable(d, { format: "latex", metrics: ["top1_after"] });
    assert.match(tex, /\{Sparsity\} & \{Compression target \(\$\\times\$\)\} & \{MACs reduction \(\\%\)\}/);
    assert.ok(texBody(tex).some((r) => r.includes("16")));
  });

  it("dataset and arch are printed once per block and the method once per run of targets (blank repeats)", () => {
    const rows = mdRows(renderTable(wider(), { format: "markdown", metrics: ["top1_after"] })).slice(2);
    assert.deepEqual(rows.map((r) => r.slice(0, 4)), [
      ["mnist", "cnn", "dense", "–"],
      ["", "", "magnitude", "0.9"],
      ["", "mlp", "dense", "–"],
      ["", "", "magnitude", "0.5"],
      ["", "", "", "0.9"],
      ["", "", "random", "0.5"],
      ["", "", "", "0.9"],
    ]);
    const body = texBody(renderTable(wider(), { format: "latex", metrics: ["top1_after"] }));
    assert.deepEqual(body.map((r) => r.slice(0, 3)), rows.map((r) => r.slice(0, 3)));
  });

  it("latex: booktabs rules, siunitx S columns sized to the numbers, a midrule between blocks, every row as wide as the spec", () => {
    const tex = renderTable(wider(), { format: "latex", metrics: ["top1_after", "compression_ratio", "params_nonzero"] });
    assert.match(tex, /\\usepackage\{booktabs\} and \\usepackage\{siunitx\}/);
    const at = ["\\toprule", "\\midrule", "\\bottomrule"].map((r) => tex.indexOf(r));
    assert.ok(at[0] > 0 && at[0] < at[1] && at[1] < at[2], "booktabs rules in order");
    assert.ok(!/\\hline/.test(tex));
    // Top-1: 2 integer digits, 2 decimals, then the ± std sub-column; Δ is signed.
    assert.match(tex, /S\[table-format=2\.2\]@\{\\,\\\(\\pm\\\)\\,\}S\[table-format=\d\.2\]/);
    assert.match(tex, /S\[table-format=-2\.2\]/);
    const n = specColumns(tex);
    const header = tex.split("\n").find((l) => l.includes("Dataset &"))!;
    const headerCols = header.replace(/\\\\\s*$/, "").split(/(?<!\\)&/).reduce((a, c) => a + Number(/\\multicolumn\{(\d+)\}/.exec(c)?.[1] ?? 1), 0);
    assert.equal(headerCols, n, header);
    const body = texBody(tex);
    for (const row of body) assert.equal(row.length, n, row.join(" & "));
    // every cell of an S column is a number, empty, or braced text
    const numeric = /^(?:\\bfseries )?[+-]?\d+(?:\.\d+)?$|^\{.*\}$|^$/;
    for (const row of body) for (const c of row.slice(3)) assert.match(c, numeric, row.join(" & "));
    assert.equal((tex.match(/\\midrule/g) ?? []).length, 2, "after the header, and between the cnn and mlp blocks");
    assert.match(tex, /\{Params \$\\neq 0\$\}/, "plain counts: no scale suffix");
  });

  it("one number style per column: a count column is scaled once for all its rows, by its smallest value", () => {
    const big = wider();
    big.runs = big.runs.filter((r) => r.arch === "cnn");
    big.runs.push(tinyRun({ key: "cnn-1", arch: "cnn", seed: 0, targetValue: 0.5, metrics: { top1_dense: 0.99, top1_after: 0.985, params_nonzero: 600_000, params_total: 1_200_000 } }));
    const rows = mdRows(renderTable(big, { format: "markdown", metrics: ["params_nonzero"] }));
    const c = rows[0].indexOf("Params nonzero (k)");
    assert.ok(c > 0, rows[0].join(" | "));
    assert.deepEqual(rows.slice(2).map((r) => r[c].replace(/\*\*/g, "")), ["1200.0", "600.0", "120.0"]);
    // 100 and 1.2M in one column: plain integers, so the small one does not print as 0.00M
    const mixed = mdRows(renderTable(wider(), { format: "markdown", metrics: ["params_nonzero"] }));
    const m = mixed[0].indexOf("Params nonzero");
    assert.ok(m > 0, mixed[0].join(" | "));
    const cells = mixed.slice(2).map((r) => r[m].replace(/\*\*/g, "").split(" ± ")[0]);
    assert.deepEqual(cells, ["1200000", "120000", "1000", "500", "100", "500", "100"]);
  });

  it("--pivot method: targets as rows, one column per method, the dense model once per block", () => {
    const d = wider();
    d.runs = d.runs.filter((r) => r.arch === "mlp");
    const rows = mdRows(renderTable(d, { format: "markdown", pivot: "method", metrics: ["top1_after"] }));
    assert.deepEqual(rows[0], ["Dataset", "Arch", "Sparsity", "dense", "magnitude", "random"]);
    assert.equal(rows.length, 4);
    assert.deepEqual(rows[2].slice(0, 4), ["mnist", "mlp", "0.5", "95.00 ± 2.00"]);
    assert.equal(rows[2][4], "93.00 ± 1.00");
    assert.deepEqual(rows[3].slice(0, 5), ["", "", "0.9", "", "80.00 ± 10.00"]);
    assert.equal(rows[3][5], "55.00 ± 7.07");
    const tex = renderTable(d, { format: "latex", pivot: "method", metrics: ["top1_after", "compression_ratio"] });
    assert.match(tex, /\\multicolumn\{3\}\{c\}\{dense\} & \\multicolumn\{4\}\{c\}\{magnitude\}/);
    assert.match(tex, /\\cmidrule\(lr\)\{4-6\} \\cmidrule\(lr\)\{7-10\}/);
    for (const row of texBody(tex)) assert.equal(row.length, specColumns(tex), row.join(" & "));
    assert.throws(() => renderTable(d, { format: "csv", pivot: "method" }), /--pivot method is for markdown and latex/);
    assert.throws(() => renderTable(d, { format: "markdown", pivot: "method", groupBy: ["dataset", "arch"], averageOver: ["target"] }), /must include target/);
  });

  it("--caption and --label: LaTeX escapes them; markdown prints a pandoc Table: line", () => {
    const tex = renderTable(tinyReportData(), { format: "latex", caption: "FMNIST: 10% & more", label: "tab:my results" });
    assert.match(tex, /\\caption\{FMNIST: 10\\% \\& more\}/);
    assert.match(tex, /\\label\{tab:my-results\}/);
    const md = renderTable(tinyReportData(), { format: "markdown", caption: "FMNIST", label: "tab:f" });
    assert.match(md, /\nTable: FMNIST \{#tab:f\}\n$/);
    assert.ok(!renderTable(tinyReportData(), { format: "markdown" }).includes("Table:"));
  });
});

describe("bench table: caption seed counts", () => {
  const one = () => {
    const d = tinyReportData();
    d.runs = d.runs.filter((r) => r.seed === 0);
    return d;
  };
  it("1 seed, 3 seeds, or the range when rows differ", () => {
    assert.match(renderTable(one(), { format: "latex" }), /One run per row \(1 seed\)/);
    assert.ok(!renderTable(one(), { format: "latex" }).includes("1 seeds"));
    const three = tinyReportData();
    three.runs = three.runs.filter((r) => r.method === "magnitude");
    assert.match(renderTable(three, { format: "latex" }), /over 3 seeds per row/);
    assert.match(renderTable(tinyReportData(), { format: "latex" }), /over 2--3 seeds per row/);
    assert.equal(seedPhrase([{ by: {}, seeds: [0, 1], runKeys: [], metrics: {} }, { by: {}, seeds: [0, 1, 2], runKeys: [], metrics: {} }]), "2\u20133 seeds");
  });
});

describe("bench table: averaging over an axis that varies", () => {
  it("is refused, naming the axis and its values, unless --average-over says so", () => {
    const d = wider();
    assert.deepEqual(variedAxes(d.runs, ["arch", "method"]), [{ axis: "target", values: ["sparsity 0.5", "sparsity 0.9"] }]);
    assert.throws(
      () => renderTable(d, { format: "markdown", groupBy: ["arch", "method"] }),
      (e: Error) => e instanceof TableError && /would average over target, which varies within a row \(sparsity 0\.5, sparsity 0\.9\)/.test(e.message) && /--average-over target/.test(e.message),
    );
    assert.throws(() => renderTable(d, { format: "markdown", groupBy: ["dataset", "target"] }), /average over arch, .*\(cnn, mlp\).*average over method, .*\(magnitude, random\)/);
    const ok = renderTable(d, { format: "markdown", groupBy: ["arch", "method"], averageOver: ["target"], metrics: ["top1_after"] });
    // mlp magnitude over both targets and all seeds: mean (94 + 93 + 92 + 90 + 80 + 70) / 6 = 86.50, sample std
    // sqrt(455.5 / 5) = 9.54; the row sits under the mlp dense row, its arch left blank
    const okRows = mdRows(ok);
    const mlp = okRows.findIndex((r) => r[0] === "mlp");
    // averaged over targets: no target to win, so nothing is bold
    assert.deepEqual(okRows[mlp + 1].slice(0, 4), ["", "magnitude", "6", "86.50 ± 9.54"]);
    assert.match(renderTable(d, { format: "latex", groupBy: ["arch", "method"], averageOver: ["target"] }), /per row, averaged over target;/);
    assert.throws(() => renderTable(d, { format: "markdown", averageOver: ["target"] }), /--average-over target: target is in --group-by/);
    // an axis that does not vary inside any row needs no permission (one dataset here)
    assert.doesNotThrow(() => renderTable(d, { format: "markdown", groupBy: ["arch", "method", "target"] }));
  });
});
