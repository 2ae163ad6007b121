/**
 * `bench plot`: one report chart as SVG/PNG/PDF with the report's filters. The spec and the headless SVG are checked
 * in-process; the command's choices and exit codes, and the Chromium-drawn PNG/PDF, through the real CLI (the latter
 * skipped without Chromium).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CHROMIUM_PATH, plotChoices, plotSpec, plotSvgHeadless } from "../reports/plot.js";
import { syntheticReportData } from "../reports/synthetic.js";
import { writeSyntheticDatabase } from "../reports/synthetic-db.js";
import { bench, tempDir } from "./helpers/cli.js";

const data = syntheticReportData(180, 1);

describe("plot specs", () => {
  it("offers one chart id per report chart and the filter bar's values", () => {
    const c = plotChoices(data);
    assert.deepEqual(c.charts.sort(), ["class-damage", "cost", "drop", "finetune", "layers", "targets", "tradeoff-compression", "tradeoff-measured", "tradeoff-speedup"]);
    assert.deepEqual(c.filter.method, ["global_magnitude", "layer_magnitude", "random"]);
    assert.deepEqual(c.filter.seed, ["0", "1", "2"]);
    assert.deepEqual(c.filter.dataset, ["cifar10", "mnist"]);
  });

  it("sets the filter's signals, drops HTML inputs, keeps the data inline", () => {
    const spec = plotSpec(data, "drop", { dataset: "mnist", method: "random" }) as { params: { name: string; value: unknown; bind?: unknown }[]; datasets: Record<string, unknown[]> };
    const value = (n: string) => spec.params.find((p) => p.name === n)?.value;
    assert.equal(value("pb_dataset"), "mnist");
    assert.equal(value("pb_method"), "random");
    assert.equal(value("pb_arch"), "");
    assert.ok(spec.params.every((p) => p.bind === undefined || p.bind === "legend"));
    assert.ok(spec.datasets.drop.length > 0);
    assert.doesNotMatch(JSON.stringify(spec), /click to highlight/);
  });

  it("draws only the filtered groups (headless Vega SVG)", async () => {
    const svg = await plotSvgHeadless(data, "drop", { dataset: "mnist", method: "random" });
    assert.match(svg, /^<svg/);
    const points = [...svg.matchAll(/aria-label="(method: [^"]*)"/g)].map((m) => m[1]);
    const groups = new Set(data.runs.filter((r) => r.status === "done" && r.dataset === "mnist" && r.methodLabel === "random").map((r) => `${r.arch}${r.targetValue}`));
    assert.equal(points.length, groups.size);
    assert.ok(points.every((p) => p.startsWith("method: random;") && p.includes("run keys: mnist-")));
  });
});

describe("bench plot", () => {
  let dir: string;
  let db: string;
  before(() => {
    dir = tempDir("pb-plot-");
    db = join(dir, "s.db");
    writeSyntheticDatabase(db, data);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses an unknown chart or filter value with exit 2, naming the choices", () => {
    const chart = bench(["plot", "tradeof", "--db", db, "-o", join(dir, "x.svg")]);
    assert.equal(chart.code, 2);
    assert.match(chart.stderr, /<chart>: unknown value "tradeof"; did you mean "tradeoff-speedup"\?|<chart>: unknown value "tradeof".*tradeoff-compression/);
    const method = bench(["plot", "drop", "--db", db, "--method", "randomm", "-o", join(dir, "x.svg")]);
    assert.equal(method.code, 2);
    assert.match(method.stderr, /--method: unknown value "randomm"; did you mean "random"\? valid: global_magnitude, layer_magnitude, random/);
    const format = bench(["plot", "drop", "--db", db, "--format", "jpg"]);
    assert.equal(format.code, 2);
    const self = bench(["plot", "drop", "--db", db, "-o", db, "--force"]);
    assert.equal(self.code, 2);
    assert.match(self.stderr, /is the results database this command reads/);
    assert.ok(!existsSync(join(dir, "x.svg")), "nothing written on bad input");
  });

  it("writes SVG, PNG and PDF files (Chromium)", { skip: existsSync(CHROMIUM_PATH) ? false : `no Chromium at ${CHROMIUM_PATH}` }, () => {
    for (const format of ["svg", "png", "pdf"]) {
      const out = join(dir, `drop.${format}`);
      const r = bench(["plot", "drop", "--db", db, "--format", format, "--dataset", "cifar10", "-o", out]);
      assert.equal(r.code, 0, r.stderr);
      const bytes = readFileSync(out);
      if (format === "svg") {
        assert.match(bytes.toString("utf8"), /^<svg[^>]+width="\d+"/);
        assert.doesNotMatch(bytes.toString("utf8"), /mnist ·/, "filtered to cifar10");
      } else if (format === "png") {
        assert.deepEqual([...bytes.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
        // IHDR: width and height at bytes 16 and 20; --scale 2 by default, so at least twice a 380 px panel
        assert.ok(bytes.readUInt32BE(16) > 760 && bytes.readUInt32BE(20) > 300, `${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}`);
      } else {
        assert.equal(bytes.subarray(0, 5).toString("latin1"), "%PDF-");
        assert.match(bytes.toString("latin1"), /\/Count 1\b/, "one page");
      }
    }
    // replacing its own previous figure is fine; a file of another kind is not
    assert.equal(bench(["plot", "drop", "--db", db, "--format", "png", "-o", join(dir, "drop.png")]).code, 0);
    const clash = bench(["plot", "drop", "--db", db, "--format", "png", "-o", join(dir, "drop.pdf")]);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /already exists and it is not a PNG file/);
  });
});
