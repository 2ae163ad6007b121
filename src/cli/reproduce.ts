/**
 * `bench reproduce <table-id>|--all`: published tables (benchmarks/published/) graded cell by cell against a results
 * database (without an id or --all: the catalogue). A table whose dataset is not on this machine grades its unrun cells "dataset absent", which is an answer,
 * not an error (exit 0); an unknown table id is bad input (exit 2) and lists the catalogue.
 */
import { DATASETS } from "../../datasets/index.js";
import { aggregateRuns } from "../../reports/aggregate.js";
import { defaultCatalogue, gradeTable, renderGrades, type ReproduceFormat } from "../../reports/reproduce.js";
import { didYouMean } from "../grid/suggest.js";
import { UsageError } from "./errors.js";
import { reportDataOf } from "./choices.js";
import { emit } from "./output.js";
import { checkOutputPath } from "../io/paths.js";

/** Whether a dataset's files are on this machine, asked as `bench doctor` asks: never downloading. */
async function present(name: string): Promise<boolean> {
  const d = DATASETS.find((x) => x.name === name);
  if (!d) return false;
  try {
    await d.fingerprint({ download: false });
    return true;
  } catch {
    return false;
  }
}

export default async function reproduce(id: string | undefined, o: { db: string; all?: boolean; format: ReproduceFormat; sweep?: string; out?: string; force?: boolean }): Promise<number> {
  const tables = defaultCatalogue();
  const listing = tables.map((t) => `  ${t.id.padEnd(28)} ${t.paper}, ${t.table} (${t.dataset})`).join("\n");
  if (id !== undefined && o.all) throw new UsageError(`give a table id or --all, not both; tables:\n${listing}`);
  if (id === undefined && !o.all) {
    process.stdout.write(`published tables (benchmarks/published/); grade one with bench reproduce <id>, or all with --all:\n${listing}\n`);
    return 0;
  }
  const chosen = o.all ? tables : tables.filter((t) => t.id === id);
  if (chosen.length === 0) {
    const near = didYouMean(id!, tables.map((t) => t.id));
    throw new UsageError(`no published table "${id}"${near ? `; did you mean "${near}"?` : ""} tables in benchmarks/published/:\n${listing}`);
  }
  const output = { kind: o.format === "text" ? ("markdown" as const) : o.format, force: o.force, inputs: [o.db] };
  if (o.out !== undefined) checkOutputPath(o.out, output);
  const data = reportDataOf(o.db, o.sweep);
  const presence = new Map<string, boolean>();
  for (const t of chosen) if (!presence.has(t.dataset)) presence.set(t.dataset, await present(t.dataset));
  const groups = aggregateRuns(data.runs); // once, whatever the number of tables
  const grades = chosen.map((t) => gradeTable(t, data.runs, presence.get(t.dataset), groups));
  emit(renderGrades(grades, o.format), o.out, output);
  return 0;
}
