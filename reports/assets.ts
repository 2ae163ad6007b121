/** The Vega libraries a report inlines, read from node_modules at render time (no network at view time). */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

export interface VegaAssets {
  vega: string;
  vegaLite: string;
  vegaEmbed: string;
}

/** Path of a package's UMD build. vega-embed's exports map hides build/ files, so resolve its main and go sideways. */
export function vegaAssetPaths(): { vega: string; vegaLite: string; vegaEmbed: string } {
  return {
    vega: require.resolve("vega/build/vega.min.js"),
    vegaLite: require.resolve("vega-lite/build/vega-lite.min.js"),
    vegaEmbed: join(dirname(require.resolve("vega-embed")), "vega-embed.min.js"),
  };
}

/** Make script text safe to inline: no "</script" may end the element early. */
function inlineSafe(js: string): string {
  return js.replace(/<\/(script)/gi, "<\\/$1").replace(/\/\/# sourceMappingURL=.*$/gm, "");
}

export function readVegaAssets(): VegaAssets {
  const p = vegaAssetPaths();
  return {
    vega: inlineSafe(readFileSync(p.vega, "utf8")),
    vegaLite: inlineSafe(readFileSync(p.vegaLite, "utf8")),
    vegaEmbed: inlineSafe(readFileSync(p.vegaEmbed, "utf8")),
  };
}
