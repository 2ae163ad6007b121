/** Report v2 pieces that are pure functions: y zoom, timing noise, weight sparsity, epoch ticks, the filter's fields. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { aggregateRuns } from "../reports/aggregate.js";
import { renderHtmlReport } from "../reports/html.js";
import { filterExpr, METHOD_COLORS, unpackRows } from "../reports/sections/common.js";
import { weightSparsity } from "../reports/sections/layers.js";
import { defaultZoom, latencyNoise } from "../reports/sections/tradeoff.js";
import { syntheticReportData } from "../reports/synthetic.js";
import type { PackedTable } from "../reports/sections/types.js";

const payload = (html: string) => JSON.parse(html.match(/<script type="application\/json" id="pb-data">([\s\S]*?)<\/script>/)![1]) as {
  charts: { id: string; spec: any }[];
  data: Record<string, PackedTable>;
  filter: { key: string; values: string[] }[];
};

describe("report v2", () => {
  it("weight sparsity counts kernel weights only: biases are neither zeros nor in the denominator", () => {
    // dense 84x10 (840 weights) + 10 biases, every weight pruned: 100 %, not 840/850 = 98.8 %
    assert.equal(weightSparsity({ kind: "dense", shape: [84, 10], params: 850, nonzero: 10 }), 1);
    // conv 5x5x1x6 (150 weights) + 6 biases, 30 weights left: 80 %
    assert.equal(weightSparsity({ kind: "conv", shape: [5, 5, 1, 6], params: 156, nonzero: 36 }), 0.8);
    assert.equal(weightSparsity({ kind: "batchnorm", shape: [16], params: 32, nonzero: 32 }), null, "no weights to prune");
  });

  it("zooms the trade-off y axis to 1.5 x the median drop, on the listed steps", () => {
    const g = (d: number) => ({ deltaTop1: { mean: -d / 100 } }) as never;
    assert.equal(defaultZoom([g(0.3), g(0.6), g(0.5)]), 1); // median 0.5 pp -> 0.75 -> 1 pp
    assert.equal(defaultZoom([g(1), g(3), g(40)]), 5); // median 3 -> 4.5 -> 5 pp: random's 40 pp falls off
    assert.equal(defaultZoom([g(30), g(40)]), 0, "beyond 20 pp: the whole range");
    assert.equal(defaultZoom([]), 0);
  });

  it("timing noise is 2 x the relative sample std of the panel's dense latencies", () => {
    const run = (ms: number) => ({ status: "done", dataset: "d", arch: "a", metrics: { latency_dense_ms: ms } }) as never;
    // values 9, 10, 11: mean 10, sample std 1 -> 2 * 1 / 10 = 0.2
    const n = latencyNoise([run(9), run(10), run(11)]);
    assert.ok(Math.abs(n.get("d · a")! - 0.2) < 1e-12);
    assert.equal(latencyNoise([run(10)]).size, 0, "one timing: no estimate");
  });

  it("inlines what the client needs: filter values, integer epoch ticks, one palette", () => {
    const data = syntheticReportData(180, 1);
    const p = payload(renderHtmlReport(data));
    const dims = Object.fromEntries(p.filter.map((d) => [d.key, d.values]));
    assert.deepEqual(dims.method, ["global_magnitude", "layer_magnitude", "random"]);
    assert.deepEqual(dims.target, ["sparsity 0.5", "sparsity 0.75", "sparsity 0.9", "sparsity 0.95", "sparsity 0.98"]);
    assert.deepEqual(dims.seed, ["0", "1", "2"]);
    const ft = p.charts.find((c) => c.id === "chart-finetune")!.spec;
    const ticks = ft.spec.layer[1].encoding.x.axis.values as number[];
    assert.deepEqual(ticks, [1, 2, 3, 4, 5, 6, 7, 8], "8 epochs: each integer once (was 1,2,2,3,3 from a 'd' format)");
    // every chart carries the five filter signals and the filter transform
    for (const c of p.charts) {
      const names = (c.spec.params as { name: string }[]).map((x) => x.name);
      for (const s of ["pb_dataset", "pb_arch", "pb_method", "pb_target", "pb_seed"]) assert.ok(names.includes(s), `${c.id} has ${s}`);
      assert.ok(JSON.stringify(c.spec.transform).includes("pb_dataset"), c.id);
    }
    const color = p.charts.find((c) => c.id === "chart-drop")!.spec.spec.layer[3].encoding.color;
    assert.deepEqual(color.scale.range, METHOD_COLORS.slice(0, 3));
    // accuracy drop on a log axis of compression (not categories of sparsity)
    const x = p.charts.find((c) => c.id === "chart-drop")!.spec.spec.layer[3].encoding.x;
    assert.equal(x.field, "cr");
    assert.deepEqual(x.scale, { type: "log", base: 2, nice: false });
    // top1_before reaches the trade-off chart
    const rows = unpackRows(p.data.tradeoff).filter((r) => r.k === "g" && r.s === "*");
    assert.equal(rows.length, aggregateRuns(data.runs).length);
    assert.ok(rows.every((r) => typeof r.yb === "number" && (r.yb as number) <= (r.y as number) + 1e-9), "synthetic: fine-tuning never hurts");
  });

  it("the filter expression keeps context rows and reads a seed either per run or by membership", () => {
    assert.match(filterExpr(true), /datum\.x \|\| \(pb_seed == '' \? datum\.s == '\*' : datum\.s == pb_seed\)/);
    assert.match(filterExpr(false), /indexof\(datum\.ss, '\|' \+ pb_seed \+ '\|'\) >= 0/);
  });
});
