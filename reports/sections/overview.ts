/** Overview: provenance (sweeps, grid files, backends, versions), run counts, compute time, failures. */
import { METRICS } from "../../src/metrics/names.js";
import { escapeHtml, formatDuration } from "../format.js";
import type { RunStatus } from "../../src/core/types.js";
import { targetLabel } from "../../src/grid/label.js";
import type { Section } from "./types.js";
import { validityBlock } from "./validity-block.js";

const STATUSES: RunStatus[] = ["done", "failed", "diverged", "interrupted", "running", "pending"];
const MAX_FAILURES = 500;
const INLINE_FAILURES = 12;

function distinct(values: Iterable<string | null | undefined>): string[] {
  const s = new Set<string>();
  for (const v of values) if (v !== null && v !== undefined && v !== "") s.add(v);
  return [...s].sort();
}

function list(values: string[]): string {
  return values.length === 0 ? `<span class="muted">unknown</span>` : values.map((v) => `<code>${escapeHtml(v)}</code>`).join(", ");
}

export const overviewSection: Section = {
  id: "overview",
  title: "Overview",
  render(ctx) {
    const { data } = ctx;
    const counts = new Map<string, number>();
    for (const r of data.runs) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    let compute = 0;
    let timed = 0;
    for (const r of data.runs) {
      const t = r.metrics.total_seconds;
      if (typeof t === "number" && Number.isFinite(t)) {
        compute += t;
        timed++;
      }
    }
    const statusBadges = STATUSES.filter((s) => counts.has(s))
      .concat([...counts.keys()].filter((s) => !STATUSES.includes(s as RunStatus)) as RunStatus[])
      .map((s) => `<span class="badge st-${escapeHtml(s)}">${escapeHtml(s)} <b>${counts.get(s)}</b></span>`)
      .join(" ");
    const sweepRows = data.sweeps
      .map(
        (s) =>
          `<tr><td class="num">${s.id}</td><td>${escapeHtml(s.name)}</td><td><code>${escapeHtml(s.gridFile)}</code></td><td>${escapeHtml(s.createdAt)}</td><td><code>${escapeHtml(s.codeVersion)}</code></td><td><code>${escapeHtml(s.database)}</code></td></tr>`,
      )
      .join("");
    const grids = data.sweeps
      .filter((s) => s.gridText)
      .map((s) => `<details><summary>Grid file of sweep ${s.id} (<code>${escapeHtml(s.gridFile)}</code>)</summary><pre>${escapeHtml(s.gridText)}</pre></details>`)
      .join("");
    const failures = data.runs.filter((r) => r.status === "failed" || r.status === "diverged");
    const failureRow = (r: (typeof failures)[number]) =>
      `<tr data-ds="${escapeHtml(r.dataset)}" data-a="${escapeHtml(r.arch)}" data-m="${escapeHtml(r.methodLabel)}" data-t="${escapeHtml(targetLabel({ kind: r.targetKind, value: r.targetValue }))}" data-ss="|${r.seed}|" title="run ${escapeHtml(r.key)}"><td><span class="badge st-${r.status}">${r.status}</span></td><td>${escapeHtml(r.dataset)}</td><td>${escapeHtml(r.arch)}</td><td>${escapeHtml(r.methodLabel)}</td><td>${escapeHtml(targetLabel({ kind: r.targetKind, value: r.targetValue }))}</td><td class="num">${r.seed}</td><td><code>${escapeHtml(r.key)}</code></td><td class="err">${escapeHtml(r.error ?? "(no error recorded)")}</td></tr>`;
    const failureTable = (rows: typeof failures) =>
      `<div class="scroll"><table class="data sortable"><thead><tr><th>status</th><th>dataset</th><th>arch</th><th>method</th><th>target</th><th>seed</th><th>run key</th><th>error</th></tr></thead><tbody>${rows.map(failureRow).join("")}</tbody></table></div>`;
    let failureBlock: string;
    if (failures.length === 0) failureBlock = `<p>No failed or diverged runs.</p>`;
    else if (failures.length <= INLINE_FAILURES) failureBlock = `<h3>Failed and diverged runs (${failures.length})</h3>${failureTable(failures)}`;
    else {
      // Many failures: one line per distinct (status, error), then the full list folded away.
      const kinds = new Map<string, { status: string; error: string; n: number; where: Set<string> }>();
      for (const r of failures) {
        const error = r.error ?? "(no error recorded)";
        const k = `${r.status}\u0000${error}`;
        let e = kinds.get(k);
        if (!e) kinds.set(k, (e = { status: r.status, error, n: 0, where: new Set() }));
        e.n++;
        e.where.add(`${r.dataset} · ${r.arch}`);
      }
      const summary = [...kinds.values()]
        .sort((a, b) => b.n - a.n)
        .map(
          (e) =>
            `<tr><td><span class="badge st-${escapeHtml(e.status)}">${escapeHtml(e.status)}</span></td><td class="num">${e.n}</td><td class="err">${escapeHtml(e.error)}</td><td>${[...e.where].slice(0, 6).map(escapeHtml).join(", ")}${e.where.size > 6 ? `, … (${e.where.size})` : ""}</td></tr>`,
        )
        .join("");
      failureBlock = `<h3>Failed and diverged runs (${failures.length})</h3>
<div class="scroll"><table class="data"><thead><tr><th>status</th><th class="num">runs</th><th>error</th><th>where</th></tr></thead><tbody>${summary}</tbody></table></div>
<details><summary>All ${failures.length} failed and diverged runs${failures.length > MAX_FAILURES ? ` (first ${MAX_FAILURES})` : ""}</summary>${failureTable(failures.slice(0, MAX_FAILURES))}${
        failures.length > MAX_FAILURES ? `<p class="note">… and ${failures.length - MAX_FAILURES} more (export the runs to see them all).</p>` : ""
      }</details>`;
    }
    const validity = validityBlock(ctx);
    const usedMetrics = new Set<string>();
    for (const g of ctx.groups) for (const k of Object.keys(g.metrics)) usedMetrics.add(k);
    const defs = [...METRICS.values()]
      .filter((d) => usedMetrics.has(d.name))
      .map((d) => `<tr><td><code>${d.name}</code></td><td>${escapeHtml(d.unit)}</td><td>${escapeHtml(d.definition)}</td></tr>`)
      .join("");
    const html = `
<dl class="facts">
  <dt>Runs</dt><dd>${data.runs.length} &nbsp; ${statusBadges || `<span class="muted">none</span>`}</dd>
  <dt>Groups</dt><dd>${ctx.groups.length} (dataset × arch × method × target, aggregated over seeds)</dd>
  <dt>Datasets</dt><dd>${list(distinct(data.runs.map((r) => r.dataset)))}</dd>
  <dt>Architectures</dt><dd>${list(distinct(data.runs.map((r) => r.arch)))}</dd>
  <dt>Methods</dt><dd>${list(distinct(data.runs.map((r) => r.methodLabel)))}</dd>
  <dt>Total compute</dt><dd>${formatDuration(compute)} <span class="muted">(sum of <code>total_seconds</code> over ${timed} runs)</span></dd>
  <dt>Backends</dt><dd>${list(distinct(data.runs.map((r) => r.backend)))}</dd>
  <dt>Devices</dt><dd>${list(distinct(data.runs.map((r) => r.device)))}</dd>
  <dt>tfjs</dt><dd>${list(distinct(data.runs.map((r) => r.tfjsVersion)))}</dd>
  <dt>Code version</dt><dd>${list(distinct(data.sweeps.map((s) => s.codeVersion)))}</dd>
  <dt>Grid files</dt><dd>${list(distinct(data.sweeps.map((s) => s.gridFile)))}</dd>
  <dt>Generated</dt><dd>${escapeHtml(data.generatedAt)}</dd>
</dl>
<h3>Sweeps</h3>
${data.sweeps.length === 0 ? `<p class="muted">No sweeps recorded.</p>` : `<div class="scroll"><table class="data"><thead><tr><th>id</th><th>name</th><th>grid file</th><th>created</th><th>code version</th><th>database</th></tr></thead><tbody>${sweepRows}</tbody></table></div>`}
${grids}
${failureBlock}
${validity.html}
${defs ? `<details><summary>Metric definitions</summary><table class="data defs"><thead><tr><th>metric</th><th>unit</th><th>definition</th></tr></thead><tbody>${defs}</tbody></table></details>` : ""}`;
    return { html, charts: validity.charts, data: validity.data };
  },
};
