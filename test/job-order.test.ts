import assert from "node:assert/strict";
import { test } from "node:test";
import { catalog } from "../src/catalog.js";
import type { PlannedRun } from "../src/core/types.js";
import { estimatedCost, PriorityLimit } from "../src/sweep/job-order.js";
import { smallConfig } from "./helpers/config.js";

const planned = (arch: string, epochs = { pretrain: 5, finetune: 2 }): PlannedRun => {
  const base = smallConfig({ arch, dataset: "fashion-mnist" });
  return {
    key: arch, denseKey: `dense-${arch}`, methodLabel: "global-magnitude", codeVersion: "test", dataFingerprint: "test",
    config: { ...base, pretrain: { ...base.pretrain, epochs: epochs.pretrain }, finetune: { ...base.finetune, epochs: epochs.finetune } },
  };
};

test("estimated job cost: a LeNet-5-Caffe run outweighs an MLP run, pretraining 5 epochs outweighs fine-tuning 2", () => {
  const cat = catalog();
  const lenet = estimatedCost(planned("lenet5-caffe"), "run", cat);
  const mlp = estimatedCost(planned("mlp"), "run", cat);
  assert.ok(lenet > 5 * mlp, `lenet5-caffe ${lenet} vs mlp ${mlp}`);
  assert.equal(estimatedCost(planned("mlp"), "dense", cat), 2.5 * mlp);
  assert.equal(estimatedCost(planned("no-such-arch"), "run", cat), 0);
});

test("PriorityLimit: at most N at once; waiting tasks start by priority (element by element), ties first come first served", async () => {
  const limit = new PriorityLimit(2);
  const started: string[] = [];
  let active = 0;
  let peak = 0;
  const task = (name: string) => async () => {
    started.push(name);
    peak = Math.max(peak, ++active);
    await new Promise((r) => setTimeout(r, 5));
    active--;
    return name;
  };
  const names = await Promise.all([
    limit.run([0, 1], task("run-short")),
    limit.run([0, 9], task("run-long")),
    limit.run([1, 3], task("dense-a")),
    limit.run([0, 9], task("run-long-2")),
    limit.run([1, 7], task("dense-b")),
    limit.run([0, 5], task("run-mid")),
  ]);
  assert.deepEqual(names, ["run-short", "run-long", "dense-a", "run-long-2", "dense-b", "run-mid"]);
  assert.deepEqual(started, ["dense-b", "dense-a", "run-long", "run-long-2", "run-mid", "run-short"]);
  assert.equal(peak, 2);
});

test("PriorityLimit: a task added while others run waits its turn by priority, and a failure frees its slot", async () => {
  const limit = new PriorityLimit(1);
  const started: number[] = [];
  let release!: () => void;
  const first = limit.run([0], () => new Promise<void>((r) => { started.push(0); release = r; }));
  await new Promise((r) => setTimeout(r, 1));
  const failing = limit.run([1], async () => { started.push(1); throw new Error("boom"); });
  const low = limit.run([0], async () => { started.push(2); });
  const high = limit.run([5], async () => { started.push(3); });
  release();
  await first;
  await assert.rejects(failing, /boom/);
  await Promise.all([low, high]);
  assert.deepEqual(started, [0, 3, 1, 2]);
});
