/**
 * The contract between the HTML page (reports/html.ts) and its sections. A section turns the precomputed context
 * into an HTML fragment plus the Vega-Lite charts that fragment holds; the page inlines the charts' data once.
 */
import type { Baseline, GroupAggregate } from "../aggregate.js";
import type { ReportData } from "../model.js";

/** A Vega-Lite spec as plain JSON. */
export type VlSpec = Record<string, unknown>;

/**
 * Rows packed column-wise to keep the inlined JSON small: n rows; per column its values, or (for repetitive string
 * columns) indexes into a dictionary `d`. See packRows / unpackRows in sections/common.ts.
 */
export interface PackedTable {
  n: number;
  /** at: the column is sparse — v holds the values of rows `at` only, every other row is null. */
  cols: { name: string; v: unknown[]; d?: string[]; at?: number[] }[];
}

/** One chart: rendered by vega-embed into the element with id `id`, with the named datasets attached. */
export interface ChartSpec {
  id: string;
  spec: VlSpec;
  /** Names of the datasets (from SectionOutput.data of any section) the spec reads with {data: {name}}. */
  datasets: string[];
}

export interface SectionOutput {
  html: string;
  charts?: ChartSpec[];
  /** Datasets by name; names must be unique across sections (prefix them with the section id). */
  data?: Record<string, PackedTable>;
}

/** Aggregates of one result set. */
export interface ResultSet {
  data: ReportData;
  groups: GroupAggregate[];
  baselines: Map<string, Baseline>;
  /** Dataset · arch panel labels with done runs, sorted by dataset then arch. */
  panels: string[];
  /** Method labels with done runs, sorted; the color domain shared by all charts. */
  methods: string[];
}

export interface ReportContext extends ResultSet {
  title: string;
  /** Present when the report compares against a second result set. */
  compare?: ResultSet;
}

export interface Section {
  id: string;
  title: string;
  /** null: the section does not apply (e.g. the comparison without a second result set). */
  render(ctx: ReportContext): SectionOutput | null;
}
