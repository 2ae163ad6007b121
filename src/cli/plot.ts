import { PLOT_FORMATS, chromiumMissing, plotChoices, plotInChromium, plotSvgHeadless, type PlotFilter, type PlotFormat } from "../../reports/plot.js";
import { checkOutputPath, writeOutput } from "../io/paths.js";
import { oneOf, reportDataOf } from "./choices.js";

export interface PlotOptions {
  db: string;
  sweep?: string;
  format: PlotFormat;
  out?: string;
  force?: boolean;
  scale: string;
  dataset?: string;
  arch?: string;
  method?: string;
  target?: string;
  seed?: string;
}

export default async function plot(chart: string, o: PlotOptions): Promise<number> {
  const format = oneOf("--format", o.format, PLOT_FORMATS);
  const out = o.out ?? `${chart}.${format}`;
  const output = { kind: format, force: o.force, inputs: [o.db] };
  checkOutputPath(out, output);
  const scale = Number(o.scale);
  if (!(scale > 0 && scale <= 8)) oneOf("--scale", o.scale, ["1", "2", "3", "4"]);
  const data = reportDataOf(o.db, o.sweep);
  const choices = plotChoices(data);
  oneOf("<chart>", chart, choices.charts);
  const filter: PlotFilter = {};
  for (const key of ["dataset", "arch", "method", "target", "seed"] as const) {
    const v = o[key];
    if (v !== undefined) filter[key] = oneOf(`--${key}`, v, choices.filter[key]);
  }
  // SVG needs no browser: without Chromium, Vega's headless renderer (text widths estimated) still writes one.
  const why = format === "svg" ? await chromiumMissing() : null;
  const content = why ? await plotSvgHeadless(data, chart, filter) : await plotInChromium(data, chart, filter, format, scale);
  writeOutput(out, content, output);
  process.stderr.write(`wrote ${out}${why ? ` (drawn by Vega in Node: ${why})` : ""}\n`);
  return 0;
}
