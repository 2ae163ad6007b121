/** The report's sections, in page order. Add a section by writing a module and listing it here. */
import { accuracyDropSection } from "./accuracy-drop.js";
import { comparisonSection } from "./comparison.js";
import { finetuneSection } from "./finetune.js";
import { layerSection } from "./layers.js";
import { overviewSection } from "./overview.js";
import { reproduceSection } from "./reproduce.js";
import { resultsSection } from "./results.js";
import { speedupSection } from "./speedup.js";
import { tradeoffSection } from "./tradeoff.js";
import { winnersSection } from "./winners.js";
import type { Section } from "./types.js";

export const SECTIONS: readonly Section[] = [
  overviewSection,
  tradeoffSection,
  accuracyDropSection,
  layerSection,
  finetuneSection,
  winnersSection,
  resultsSection,
  speedupSection,
  reproduceSection,
  comparisonSection,
];

export type { ChartSpec, PackedTable, ReportContext, ResultSet, Section, SectionOutput, VlSpec } from "./types.js";
