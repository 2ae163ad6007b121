// Sweep workers run V8's garbage collector on their own thread (--single-threaded-gc, src/sweep/worker-pool.ts): one
// worker per core leaves no core for V8's helper threads, which took CPU from the other workers. A slot whose
// environment sets PRUNEBENCH_CONCURRENT_GC=1 keeps V8's default (A/B measurements).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { WorkerPool } from "../src/sweep/worker-pool.js";

/** A live process's command line, as the kernel has it. */
const argvOf = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);

test("workers start with the collector on their own thread, unless their environment asks for V8's default", { skip: process.platform !== "linux" && "reads /proc" }, async () => {
  const pool = new WorkerPool({ size: 2, slotEnv: [{}, { PRUNEBENCH_CONCURRENT_GC: "1" }] });
  try {
    pool.warm();
    const [plain, concurrent] = pool.slotPids;
    assert.ok(plain && concurrent);
    const a = argvOf(plain), b = argvOf(concurrent);
    assert.ok(a.includes("--single-threaded-gc"), a.join(" "));
    assert.ok(!b.includes("--single-threaded-gc"), b.join(" "));
    assert.ok(a.some((s) => s.endsWith("worker.js")) && b.some((s) => s.endsWith("worker.js")), `${a} / ${b}`);
  } finally {
    await pool.close("kill");
  }
});
