/**
 * Scale benchmark of the HTML report: a synthetic ReportData of N runs (default 10,000), timed through
 * renderHtmlReport; then the same data written into a synthetic SQLite database and timed end to end through
 * `bench report` (open, query, aggregate, render, write). Prints JSON lines and readable lines. Goal: < 5 s.
 *   node dist/scripts/bench-report.js [nRuns] [--out report.html] [--repeat 3]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeSyntheticDatabase } from "../reports/synthetic-db.js";
import { performance } from "node:perf_hooks";
import { renderHtmlReport } from "../reports/html.js";
import { syntheticReportData } from "../reports/synthetic.js";

function main(): void {
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
}

main();
