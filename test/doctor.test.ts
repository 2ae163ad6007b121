// The fast path for a new user: `npm ci` builds the native addon when it can (scripts/build-native.sh --if-available)
// and otherwise says why in one line; `bench doctor` says which backend sweeps run on; an addon built for AVX2/FMA
// refuses a CPU without them instead of dying of an illegal instruction.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { cpuProblem } from "../src/backend/native/addon.js";
import { BENCH } from "./helpers/cli.js";

const BUILD = fileURLToPath(new URL("../../scripts/build-native.sh", import.meta.url));

test("cpuProblem: the addon needs x86-64 with AVX2 and FMA", () => {
  assert.match(cpuProblem("arm64") ?? "", /arm64/);
  const haswell = "processor : 0\nflags\t\t: fpu sse sse2 avx fma avx2 bmi2\n";
  assert.equal(cpuProblem("x64", haswell), null);
  const sandyBridge = "processor : 0\nflags\t\t: fpu sse sse2 avx\n";
  assert.match(cpuProblem("x64", sandyBridge) ?? "", /lacks avx2 and fma/);
  assert.match(cpuProblem("x64", "flags : avx2 sse\n") ?? "", /lacks fma\b/);
});

test("build-native.sh --if-available (npm ci's install step) gives up in one line and exit 0; plain, it is an error", () => {
  const env = { ...process.env, PRUNEBENCH_NATIVE: "off" };
  const optional = spawnSync("bash", [BUILD, "--if-available"], { encoding: "utf8", env });
  assert.equal(optional.status, 0, optional.stderr);
  const lines = optional.stderr.trim().split("\n");
  assert.equal(lines.length, 1, optional.stderr);
  assert.match(lines[0], /^prunebench: native backend not built \(PRUNEBENCH_NATIVE=off\); running on wasm.*apt-get install -y libtorch-dev libdnnl-dev/);
  const strict = spawnSync("bash", [BUILD], { encoding: "utf8", env });
  assert.equal(strict.status, 2);
  assert.match(strict.stderr, /build-native: PRUNEBENCH_NATIVE=off/);
});

test("bench doctor names the backend auto picks, what it passed over, and the datasets present", () => {
  const r = spawnSync(process.execPath, [BENCH, "doctor", "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.ok(["native", "tensorflow", "wasm"].includes(report.backend.name), report.backend.name);
  // Whichever it is, the report says why: the native backend, or the advice that gets it (or why it cannot run here).
  assert.equal(report.native.advice === null, report.backend.name !== "wasm");
  assert.deepEqual(report.datasets.map((d: { name: string }) => d.name).slice(0, 2), ["fashion-mnist-mini", "fashion-mnist"]);
  assert.equal(report.datasets[0].present, true, "the embedded dataset is always there");
  // --expect is CI's guard: the backend actually picked passes, another one fails with the reason.
  const ok = spawnSync(process.execPath, [BENCH, "doctor", "--expect", report.backend.name === "tensorflow" ? "node" : report.backend.name], { encoding: "utf8" });
  assert.equal(ok.status, 0, ok.stderr);
  const wrong = spawnSync(process.execPath, [BENCH, "doctor", "--expect", "cpu"], { encoding: "utf8" });
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, new RegExp(`the backend is ${report.backend.name}, not cpu`));
  const bad = spawnSync(process.execPath, [BENCH, "doctor", "--expect", "gpu"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
});

test("without the addon, auto falls back to wasm and doctor says how to get the native backend", () => {
  const env = { ...process.env, PRUNEBENCH_NATIVE_ADDON: "/nonexistent/prunebench_native.node" };
  const r = spawnSync(process.execPath, [BENCH, "doctor", "--json"], { encoding: "utf8", env });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  if (report.backend.name === "tensorflow") return; // tfjs-node installed: it comes first
  assert.equal(report.backend.name, "wasm");
  assert.ok(report.backend.skipped.some((s: string) => /native backend unavailable: native addon not built/.test(s)), report.backend.skipped.join("\n"));
  assert.match(report.native.advice, /npm run build:native|apt-get install|cannot run here/);
});
