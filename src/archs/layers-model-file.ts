/**
 * The tfjs-free half of importing a LayersModel (src/archs/layers-model.ts): its content hash and the architecture
 * name derived from it, which the grid needs before anything loads tfjs.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

export class ImportError extends Error {
  override name = "ImportError";
}

/** Keras classes the importer maps, for messages (ReLU: without max_value/threshold/negative_slope). */
export const SUPPORTED_LAYER_CLASSES = [
  "InputLayer", "Conv2D", "DepthwiseConv2D", "Dense", "BatchNormalization", "Activation", "ReLU", "MaxPooling2D", "AveragePooling2D",
  "GlobalAveragePooling2D", "Flatten", "Dropout", "Add", "ZeroPadding2D",
] as const;

/** sha256 over model.json and every weight file its manifest names: an edited file is another architecture. */
export function layersModelHash(file: string): string {
  let json: Buffer;
  try {
    json = readFileSync(file);
  } catch (e) {
    throw new ImportError(`cannot read the LayersModel ${file}: ${(e as Error).message}`);
  }
  const h = createHash("sha256").update(json);
  for (const path of manifestPaths(file, json)) {
    try {
      h.update(readFileSync(join(dirname(file), path)));
    } catch (e) {
      throw new ImportError(`cannot read the weight file ${path} that ${file} names: ${(e as Error).message}`);
    }
  }
  return h.digest("hex");
}

export function manifestPaths(file: string, json: Buffer): string[] {
  let parsed: { weightsManifest?: Array<{ paths?: string[] }> };
  try {
    parsed = JSON.parse(json.toString("utf8"));
  } catch (e) {
    throw new ImportError(`${file}: not a tfjs model.json: ${(e as Error).message}`);
  }
  return (parsed.weightsManifest ?? []).flatMap((g) => g.paths ?? []);
}

/**
 * The architecture name an import gets: "layers-model:<label>@<first 12 hex of the content hash>", where the label is
 * the file's folder for a model.json and its stem otherwise. The hash makes it (and so run keys) change with the files.
 */
export function layersModelArchName(file: string, sha256: string): string {
  const stem = basename(file).replace(/\.json$/i, "");
  const label = (stem === "model" ? basename(dirname(resolve(file))) : stem).replace(/[^A-Za-z0-9._-]/g, "_") || "model";
  return `layers-model:${label}@${sha256.slice(0, 12)}`;
}

export const isLayersModelArch = (name: string): boolean => name.startsWith("layers-model:");

