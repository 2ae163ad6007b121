import { readArtifacts, readEpochs, readLayers, readRuns } from "../../reports/read.js";
import { METRICS } from "../metrics/names.js";
import { KEY_HEX_CHARS } from "../plan/runKey.js";
import { UsageError } from "./errors.js";
import { openExisting } from "./open.js";
import { emit, textTable } from "./output.js";

export default function show(run: string, o: { db: string; json?: boolean }): number {
  // Keys are lowercase hex: anything else (a pasted path, `%` or `_`, a 100,000-character string) matches no run.
  if (!new RegExp(`^[0-9a-f]{1,${KEY_HEX_CHARS}}$`).test(run)) {
    throw new UsageError(`"${run.length > 40 ? `${run.slice(0, 40)}…` : run}" is not a run key: keys are ${KEY_HEX_CHARS} hex characters (0-9, a-f; see \`bench ls\`); give a key or a prefix of one`);
  }
  const store = openExisting(o.db);
  const matches = readRuns(store, { keyPrefix: run });
  if (matches.length !== 1) {
    store.close();
    throw new UsageError(matches.length === 0 ? `no run with key (prefix) "${run}" in ${o.db}` : `"${run}" matches ${matches.length} runs: ${matches.slice(0, 5).map((r) => r.key).join(", ")}…; give more of the key`);
  }
  const r = matches[0];
  const keys = new Set([r.key]);
  const layers = readLayers(store, keys);
  const epochs = readEpochs(store, keys);
  const artifacts = readArtifacts(store, r.key);
  store.close();
  if (o.json) {
    emit(JSON.stringify({ ...r, layers, epochs, artifacts }, null, 2));
    return 0;
  }
  let text = `run ${r.key}  [${r.status}]\n${r.dataset} / ${r.arch} / ${r.methodLabel} / ${r.targetKind} ${r.targetValue} / seed ${r.seed}\n`;
  const device = r.device ? `  on ${r.device}${r.gpu ? ` (GPU ${r.gpu})` : ""}` : "";
  text += `backend ${r.backend ?? "?"} (tfjs ${r.tfjsVersion ?? "?"})${device}  started ${r.startedAt ?? "-"}  finished ${r.finishedAt ?? "-"}\n`;
  if (r.error) text += `error: ${r.error}\n`;
  text += `\nmetrics\n` + textTable(["name", "value", "unit"], Object.entries(r.metrics).map(([k, v]) => [k, v === null ? "" : String(Number(v.toPrecision(6))), METRICS.get(k)?.unit ?? ""]));
  if (layers.length) {
    text += `\nlayers\n` + textTable(["layer", "kind", "shape", "params", "nonzero", "density", "MACs", "MACs eff.", "prunable"], layers.map((l) => [
      l.name, l.kind, `[${l.shape.join("x")}]`, String(l.params), String(l.nonzero), (l.nonzero / l.params).toFixed(3), String(l.macs), String(Math.round(l.macsEffective)), l.prunable ? "yes" : "no",
    ]));
  }
  if (epochs.length) {
    // dnr: the dynamic dead-neuron rate (share of ReLU outputs exactly 0 on the training batches); empty in older runs.
    text += `\nepochs\n` + textTable(["phase", "epoch", "loss", "train acc", "val acc", "dead ReLU", "lr", "seconds"], epochs.map((e) => [
      e.phase, String(e.epoch), e.loss?.toFixed(4) ?? "", e.trainAcc?.toFixed(4) ?? "", e.valAcc?.toFixed(4) ?? "",
      e.dnr === null || e.dnr === undefined || Number.isNaN(e.dnr) ? "" : e.dnr.toFixed(3), e.lr.toPrecision(3), e.seconds.toFixed(1),
    ]));
  }
  if (artifacts.length) text += `\nartifacts\n` + textTable(["kind", "path", "bytes", "sha256"], artifacts.map((a) => [a.kind, a.path, String(a.bytes), a.sha256.slice(0, 16)]));
  emit(text);
  return 0;
}
