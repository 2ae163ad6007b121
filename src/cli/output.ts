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

/**
 * A plain aligned text table. `style` may wrap a body cell after padding (colour codes would otherwise count as width).
 * Columns listed in `right` are right-aligned (numbers).
 */
export function textTable(header: string[], rows: string[][], style?: (row: number, col: number, padded: string) => string, right: readonly number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const pad = (c: string, i: number) => (right.includes(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]));
  const line = (cells: string[], r?: number) => cells.map((c, i) => (r === undefined || !style ? pad(c, i) : style(r, i, pad(c, i)))).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map((cells, r) => line(cells, r))].join("\n") + "\n";
}

/**
 * Whether to colour output on `stream`: never with NO_COLOR set (https://no-color.org), always with FORCE_COLOR set
 * (other than 0/false), else only on a terminal that is not TERM=dumb. Files, pipes and CI logs get plain text.
 */
export function colourOn(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0" && env.FORCE_COLOR !== "false") return true;
  return Boolean(stream.isTTY) && env.TERM !== "dumb";
}

const SGR = { red: 31, green: 32, yellow: 33, dim: 2 } as const;

/** `text` in an ANSI colour when `on`, else unchanged. */
export function paint(on: boolean, colour: keyof typeof SGR, text: string): string {
  return on ? `\x1b[${SGR[colour]}m${text}\x1b[0m` : text;
}
