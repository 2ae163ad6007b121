/**
 * Published tables graded cell by cell (reports/reproduce.ts; the same grades as `bench reproduce`), for every table
 * of benchmarks/published/ that this database has runs for. A report describes a database, not a machine, so cells
 * without runs say "not run" here; `bench reproduce` also says "dataset absent" where the files are missing.
 */
import { escapeHtml } from "../format.js";
import { countsLine, defaultCatalogue, gradeRows, gradeTable, type PublishedTable, type TableGrade } from "../reproduce.js";
import { note } from "./common.js";
import type { Section } from "./types.js";

const GRADE_CLASS: Record<string, string> = { reproduced: "ok", "outside tolerance": "bad" };

export const reproduceSection: Section = {
  id: "reproduce",
  title: "Reproduction of published tables",
  render(ctx) {
    let tables: PublishedTable[];
    try {
      tables = defaultCatalogue();
    } catch (e) {
      // A broken catalogue file must not cost the user the rest of the report.
      return { html: note(`The catalogue of published tables could not be read: ${escapeHtml((e as Error).message)}`) };
    }
    const graded: TableGrade[] = tables
      .map((t) => gradeTable(t, ctx.data.runs, undefined, ctx.groups))
      .filter((g) => g.counts.reproduced + g.counts["outside tolerance"] > 0);
    // Said rather than left out: the reader learns that published tables exist and how to see what to sweep.
    if (graded.length === 0) {
      return { html: note(`No published table of the catalogue (benchmarks/published/: ${escapeHtml(tables.map((t) => t.id).join(", "))}) has runs in this database; <code>bench reproduce --all</code> says which grid runs each.`) };
    }
    let html = note(
      "Each cell of a published table (benchmarks/published/) against the mean over seeds of the matching runs: " +
        "<b>reproduced</b> when the difference is within the cell's tolerance, else <b>outside tolerance</b> by how much. " +
        "Values marked (unconfirmed) were not checked against the paper. Print these with <code>bench reproduce --all --format markdown|latex</code>.",
    );
    for (const t of graded) {
      html += `<h3>${escapeHtml(t.table.paper)}, ${escapeHtml(t.table.table)} <span class="muted">(${escapeHtml(t.table.id)}, ${escapeHtml(t.table.dataset)})</span></h3>`;
      html += `<p>${escapeHtml(countsLine(t))}${t.table.grid ? `; protocol grid <code>${escapeHtml(t.table.grid)}</code>` : ""}${t.table.note ? `. ${escapeHtml(t.table.note)}` : ""}</p>`;
      html += `<table class="results"><thead><tr><th>cell</th><th>metric</th><th>published</th><th>ours (mean over seeds)</th><th>ours − published</th><th>tolerance</th><th>grade</th></tr></thead><tbody>`;
      for (const [i, r] of gradeRows(t).entries()) {
        const cls = GRADE_CLASS[t.cells[i].status] ?? "muted";
        html += `<tr><td>${escapeHtml(r.cell)}</td><td>${escapeHtml(r.metric)}</td><td class="num">${escapeHtml(r.published)}</td><td class="num">${escapeHtml(r.ours)}</td><td class="num">${escapeHtml(r.difference)}</td><td class="num">${escapeHtml(r.tolerance)}</td><td class="grade ${cls}">${escapeHtml(r.grade)}</td></tr>`;
      }
      html += `</tbody></table>`;
    }
    return { html };
  },
};
