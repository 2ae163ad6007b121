import { statSync } from "node:fs";
import { renderHtmlReport } from "../../reports/html.js";
import { readReportData } from "../../reports/read.js";
import { checkOutputPath, writeOutput } from "../io/paths.js";
import { existingSweep } from "./choices.js";
import { openExisting } from "./open.js";

export default function report(o: { db: string; compare?: string; compareSweep?: string; sweep?: string; out: string; title?: string; force?: boolean }): number {
  const started = performance.now();
  const output = { kind: "html" as const, force: o.force, inputs: o.compare ? [o.db, o.compare] : [o.db] };
  // Before reading anything: a report that cannot be written must not cost the time of building it.
  checkOutputPath(o.out, output);
  const store = openExisting(o.db);
  let data;
  let compare;
  try {
    data = readReportData(store, { sweep: existingSweep(store, "--sweep", o.sweep), title: o.title });
    if (o.compare || o.compareSweep) {
      // Another database, another sweep of the same database, or both.
      const other = o.compare ? openExisting(o.compare) : store;
      try {
        compare = readReportData(other, { sweep: existingSweep(other, "--compare-sweep", o.compareSweep) });
      } finally {
        if (other !== store) other.close();
      }
    }
  } finally {
    store.close();
  }
  writeOutput(o.out, renderHtmlReport(data, { title: o.title, compare }), output);
  const kb = statSync(o.out).size / 1024;
  process.stderr.write(`wrote ${o.out} (${kb.toFixed(0)} KiB, ${data.runs.length} runs) in ${((performance.now() - started) / 1000).toFixed(2)} s\n`);
  return 0;
}
