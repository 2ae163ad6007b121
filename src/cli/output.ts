import { writeOutput, type OutputOptions } from "../io/paths.js";

/** Print to stdout, or (with `out`) write a file safely: see writeOutput for what is refused. */
export function emit(text: string, out?: string, options?: OutputOptions): void {
  if (out !== undefined) {
    writeOutput(out, text, options ?? { kind: "markdown" });
    process.stderr.write(`wrote ${out}\n`);
  } else {
    process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  }
}

/** A plain aligned text table. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n";
}
