import assert from "node:assert/strict";
import { readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { denseMeasure, forgetDenseMeasures } from "../src/run/dense-measures.js";
import { tempDir } from "./helpers/cli.js";

test("dense measures: taken once per checkpoint, shared through the sidecar, taken again for a rewritten checkpoint", async () => {
  const dir = tempDir();
  const checkpoint = join(dir, "abc.safetensors");
  writeFileSync(checkpoint, "weights v1");
  let calls = 0;
  const measure = async () => ({ top1: 0.5, calls: ++calls });

  assert.deepEqual(await denseMeasure(checkpoint, "test-eval", ["fmnist"], false, measure), { top1: 0.5, calls: 1 });
  assert.deepEqual(await denseMeasure(checkpoint, "test-eval", ["fmnist"], false, measure), { top1: 0.5, calls: 1 }, "this worker remembers");
  forgetDenseMeasures();
  assert.deepEqual(await denseMeasure(checkpoint, "test-eval", ["fmnist"], false, measure), { top1: 0.5, calls: 1 }, "another worker reads the sidecar");
  assert.equal(calls, 1);

  // Another key (another split, batch or thread count) is another measure.
  assert.equal((await denseMeasure(checkpoint, "test-eval", ["mnist"], false, measure)).calls, 2);
  assert.equal(Object.keys(JSON.parse(readFileSync(`${checkpoint}.measures.json`, "utf8"))).length, 2);

  // A retrained dense model under the same name: measured again, the old entries dropped.
  writeFileSync(checkpoint, "weights v2, retrained");
  utimesSync(checkpoint, new Date(), new Date(Date.now() + 5000));
  forgetDenseMeasures();
  assert.equal((await denseMeasure(checkpoint, "test-eval", ["fmnist"], false, measure)).calls, 3);
  assert.equal(Object.keys(JSON.parse(readFileSync(`${checkpoint}.measures.json`, "utf8"))).length, 1);
});

test("dense measures: a sidecar that cannot be read is measured again; one that cannot be written still serves this worker", async () => {
  const dir = tempDir();
  const checkpoint = join(dir, "abc.safetensors");
  writeFileSync(checkpoint, "weights");
  writeFileSync(`${checkpoint}.measures.json`, "{torn");
  let calls = 0;
  assert.equal(await denseMeasure(checkpoint, "latency-ms", [128], true, async () => ++calls), 1);
  assert.equal(await denseMeasure(checkpoint, "latency-ms", [128], true, async () => ++calls), 1);
  const missing = join(dir, "no-such-folder", "x.safetensors");
  assert.equal(await denseMeasure(missing, "latency-ms", [128], true, async () => 7), 7);
  assert.equal(await denseMeasure(missing, "latency-ms", [128], true, async () => 8), 7);
});
