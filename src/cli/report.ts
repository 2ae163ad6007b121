import { statSync, writeFileSync } from "node:fs";
import { renderHtmlReport } from "../../reports/html.js";
import { openExisting, sweepFilter } from "./open.js";

export default function report(o: { db: string; compare?: string; compareSweep?: string; sweep?: string; out: string; title?: string }): number {
  const started = performance.now();
  const store = openExisting(o.db);
  const data = store.reportData({ sweep: sweepFilter(o.sweep), title: o.title });
  store.close();
  let compare;
  if (o.compare || o.compareSweep) {
    // Another database, another sweep of the same database, or both.
    const other = openExisting(o.compare ?? o.db);
    compare = other.reportData({ sweep: sweepFilter(o.compareSweep) });
    other.close();
  }
  writeFileSync(o.out, renderHtmlReport(data, { title: o.title, compare }));
  const kb = statSync(o.out).size / 1024;
  process.stderr.write(`wrote ${o.out} (${kb.toFixed(0)} KiB, ${data.runs.length} runs) in ${((performance.now() - started) / 1000).toFixed(2)} s\n`);
  return 0;
}
