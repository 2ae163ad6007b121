import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import type { WorkerMessage } from "../src/sweep/protocol.js";
import { type Job, PROTOCOL_VERSION } from "../src/core/types.js";
import { BENCH, tempDir } from "./helpers/cli.js";
import { smallConfig } from "./helpers/config.js";

test("bench worker speaks the job protocol as JSON lines on stdin/stdout (for launchers other than the local pool)", () => {
  const dir = tempDir();
  const paths = { cacheDir: join(dir, "cache"), artifactsDir: join(dir, "artifacts") };
  const config = smallConfig({ pretrain: { ...smallConfig().pretrain, epochs: 1 } });
  const dense: Job = { protocol: PROTOCOL_VERSION, kind: "dense", key: "d1", denseKey: "d1", config, paths, backend: "auto" };
  const run: Job = { ...dense, kind: "run", key: "r1" };
  const input = [dense, run].map((job) => JSON.stringify({ type: "job", job })).join("\n") + "\n";
  const r = spawnSync(process.execPath, [BENCH, "worker"], { input, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const messages = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as WorkerMessage);
  assert.equal(messages[0].type, "ready");
  const results = messages.flatMap((m) => (m.type === "result" ? [m.result] : []));
  assert.deepEqual(results.map((x) => [x.kind, x.key, x.status]), [["dense", "d1", "done"], ["run", "r1", "done"]]);
  assert.ok(results[1].metrics.compression_ratio > 9 && results[1].metrics.compression_ratio < 11, `${results[1].metrics.compression_ratio}`);
  assert.ok(messages.some((m) => m.type === "progress" && m.key === "r1" && m.phase === "finetune"));
});
