import { METHODS } from "../../methods/index.js";
import { emit } from "./output.js";

export default function methods(o: { json?: boolean }): number {
  if (o.json) {
    emit(JSON.stringify(METHODS.map((m) => ({ name: m.name, summary: m.summary, paper: m.paper, params: m.params, needs: m.needs })), null, 2));
    return 0;
  }
  const blocks = METHODS.map((m) => {
    const params = Object.entries(m.params).map(([k, p]) =>
      `    ${k} (${p.type}${p.choices ? `: ${p.choices.join("|")}` : ""}${p.min !== undefined ? `, min ${p.min}` : ""}${p.max !== undefined ? `, max ${p.max}` : ""}) = ${JSON.stringify(p.default)} — ${p.description}`);
    return [`${m.name}`, `    ${m.summary}`, `    paper: ${m.paper.authors}, "${m.paper.title}", ${m.paper.venue} ${m.paper.year}${m.paper.url ? ` ${m.paper.url}` : ""}`,
      params.length ? `    hyperparameters:\n${params.map((l) => `  ${l}`).join("\n")}` : "    hyperparameters: none"].join("\n");
  });
  emit(blocks.join("\n\n"));
  return 0;
}
