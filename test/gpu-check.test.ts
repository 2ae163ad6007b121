// The GPU check's parts that run without a GPU (scripts/gpu-check/, scripts/peers/torch_gpu.py): the PyTorch peer
// builds the project's resnet20-b/resnet56-b (same parameter counts), compare-train's comparison and its CPU path end
// to end on a small network, the throughput ratios, and the check's grid file.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { getArch, layerTable } from "../src/archs/index.js";
import { compareRuns, syntheticSet, TOLERANCE } from "../scripts/gpu-check/compare-train.js";
import { ratios } from "../scripts/gpu-check/ratio.js";
import { partOf, summarise, type CpuProfile } from "../scripts/gpu-check/profile-summary.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const PEER = join(root, "scripts", "peers", "torch_gpu.py");
const COMPARE = fileURLToPath(new URL("../scripts/gpu-check/compare-train.js", import.meta.url));
const PYTHON = "/usr/bin/python3";
const torchHere = existsSync(PYTHON) && spawnSync(PYTHON, ["-c", "import torch"]).status === 0;
/** CI installs python3-torch (.ci/run): there a missing PyTorch fails the peer's tests instead of skipping them. */
const peerSkip = torchHere || process.env.CI === "true" ? false : "no PyTorch at /usr/bin/python3 (apt-get install -y python3-torch)";

test("torch_gpu.py builds resnet20-b and resnet56-b with the project's parameter counts", { skip: peerSkip }, () => {
  const p = spawnSync(PYTHON, [PEER, "--params-only", "--arch", "resnet20-b,resnet56-b"], { encoding: "utf8" });
  assert.equal(p.status, 0, p.stderr);
  const rows = p.stdout.trim().split("\n").map((l) => JSON.parse(l) as { arch: string; params: number });
  assert.equal(rows.length, 2);
  for (const r of rows) {
    const ours = layerTable(getArch(r.arch), [32, 32, 3], 10).reduce((n, l) => n + l.params, 0);
    assert.equal(r.params, ours, `${r.arch}: PyTorch peer ${r.params} params, prunebench ${ours}`);
  }
});

test("torch_gpu.py refuses an architecture it does not build, naming the valid ones", { skip: peerSkip }, () => {
  const p = spawnSync(PYTHON, [PEER, "--params-only", "--arch", "resnet20"], { encoding: "utf8" });
  assert.notEqual(p.status, 0);
  assert.match(p.stderr, /unknown --arch resnet20; valid: resnet20-b, resnet56-b/);
});

test("the synthetic set is the same for a seed, labels cover the classes, and another stream differs", () => {
  const a = syntheticSet(3, 200, "train");
  const b = syntheticSet(3, 200, "train");
  assert.deepEqual(a.x, b.x);
  assert.deepEqual(a.y, b.y);
  assert.equal(new Set(a.y).size, 10);
  assert.ok(a.y.every((v) => v >= 0 && v < 10));
  assert.notDeepEqual(syntheticSet(3, 200, "test").x.subarray(0, 100), a.x.subarray(0, 100));
  assert.equal(a.x.length, 200 * 32 * 32 * 3);
  // Learnable: images of one class share their pattern (large mean dot product), images of two classes do not.
  const size = 32 * 32 * 3;
  const dot = (i: number, j: number) => { let s = 0; for (let k = 0; k < size; k++) s += a.x[i * size + k] * a.x[j * size + k]; return s; };
  const same: number[] = [];
  const other: number[] = [];
  for (let i = 0; i < 60; i++) for (let j = i + 1; j < 60; j++) (a.y[i] === a.y[j] ? same : other).push(dot(i, j));
  const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
  assert.ok(mean(same) > 4 * Math.abs(mean(other)) && mean(same) > 300, `same-class ${mean(same)}, other ${mean(other)}`);
});

function side(losses: number[], top1: number) {
  return { side: "x", backend: "x", losses, trainAcc: losses.map(() => 0), top1, testLoss: 1, seconds: 1, tensors: [] };
}

test("compareRuns: equal runs match; each figure outside its tolerance fails its own check", () => {
  const w = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i));
  const same = compareRuns(side([2.3, 1.5, 1.0], 0.8), w, side([2.3, 1.5, 1.0], 0.8), w);
  assert.equal(same.pass, true);
  assert.equal(same.figures.weightsRel, 0);

  const firstOff = compareRuns(side([2.3 * (1 + 3 * TOLERANCE.firstLossRel), 1.5, 1.0], 0.8), w, side([2.3, 1.5, 1.0], 0.8), w);
  assert.deepEqual([firstOff.pass, firstOff.checks.firstLoss, firstOff.checks.lossCurve], [false, false, true]);

  const curveOff = compareRuns(side([2.3, 1.5, 1.0 + 2 * TOLERANCE.lossAbs], 0.8), w, side([2.3, 1.5, 1.0], 0.8), w);
  assert.deepEqual([curveOff.pass, curveOff.checks.lossCurve, curveOff.checks.firstLoss], [false, false, true]);

  const tailOff = compareRuns(side([2.3, 1.5, 1.0 + 2 * TOLERANCE.tailLossAbs], 0.8), w, side([2.3, 1.5, 1.0], 0.8), w);
  assert.deepEqual([tailOff.pass, tailOff.checks.tailLoss, tailOff.checks.lossCurve], [false, false, true]);

  const top1Off = compareRuns(side([2.3, 1.5, 1.0], 0.8 + (TOLERANCE.top1Points + 1) / 100), w, side([2.3, 1.5, 1.0], 0.8), w);
  assert.deepEqual([top1Off.pass, top1Off.checks.top1], [false, false]);

  const far = w.map((v) => v * (1 + 2 * TOLERANCE.weightsRel));
  const weightsOff = compareRuns(side([2.3, 1.5, 1.0], 0.8), far, side([2.3, 1.5, 1.0], 0.8), w);
  assert.deepEqual([weightsOff.pass, weightsOff.checks.weights], [false, false]);
  assert.ok(Math.abs(weightsOff.figures.weightsRel - 2 * TOLERANCE.weightsRel) < 1e-6);

  const diverged = compareRuns(side([2.3, NaN, 1.0], 0.8), w, side([2.3, 1.5, 1.0], 0.8), w);
  assert.deepEqual([diverged.pass, diverged.checks.finite], [false, false]);

  assert.throws(() => compareRuns(side([2.3], 0.8), w, side([2.3, 1.5], 0.8), w), /different runs/);
});

test("compare-train trains both sides from one seed in processes of their own and reports the match (CPU path)", () => {
  const out = mkdtempSync(join(tmpdir(), "gpu-check-test-"));
  try {
    // lenet5 on the wasm backend on both sides (B beside A, as on a GPU machine): the same kernels, so the runs are
    // bit-identical, and identical sides match.
    const p = spawnSync(process.execPath, [COMPARE, "--a", "wasm", "--b", "wasm", "--arch", "lenet5", "--steps", "4", "--chunk", "2", "--batch", "8", "--test-images", "40", "--repeat-a", "--parallel", "--out", out], { encoding: "utf8" });
    assert.equal(p.status, 0, p.stderr + p.stdout);
    const s = JSON.parse(readFileSync(join(out, "compare-train.json"), "utf8"));
    assert.equal(s.pass, true);
    assert.equal(s.repeatIdenticalA, true);
    assert.equal(s.steps, 4);
    assert.equal(s.sides.length, 2);
    assert.equal(s.sides[0].losses.length, 2);
    assert.equal(s.figures.weightsRel, 0);
    assert.ok(s.sides.every((x: { losses: number[] }) => x.losses.every(Number.isFinite)));
    assert.match(p.stdout, /MATCH within tolerance/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("compare-train refuses a missing side or a bad step count with exit 2", () => {
  const noB = spawnSync(process.execPath, [COMPARE, "--a", "wasm"], { encoding: "utf8" });
  assert.equal(noB.status, 2);
  assert.match(noB.stderr, /--a BACKEND\[@DEVICE\] --b BACKEND\[@DEVICE\]/);
  const badSteps = spawnSync(process.execPath, [COMPARE, "--a", "wasm", "--b", "wasm", "--steps", "0"], { encoding: "utf8" });
  assert.equal(badSteps.status, 2);
  assert.match(badSteps.stderr, /--steps must be a positive integer/);
});

test("throughput ratios pair each of our measurements with PyTorch's of the same round; default settings stay apart", () => {
  const rows = [
    { peer: "pytorch", arch: "resnet20-b", round: 0, settings: "matched", train_img_per_s: 1000 },
    { who: "prunebench", arch: "resnet20-b", round: 0, train_img_per_s: 500 },
    { peer: "pytorch", arch: "resnet20-b", round: 1, settings: "matched", train_img_per_s: 800 },
    { who: "prunebench", arch: "resnet20-b", round: 1, train_img_per_s: 600 },
    { peer: "pytorch", arch: "resnet20-b", round: 2, settings: "matched", train_img_per_s: 1000 },
    { who: "prunebench", arch: "resnet20-b", round: 2, train_img_per_s: 700 },
    { peer: "pytorch", arch: "resnet20-b", settings: "default", train_img_per_s: 5000 },
    { who: "prunebench", arch: "resnet56-b", round: 0, train_img_per_s: 100 },
  ];
  const [r20, r56] = ratios(rows);
  assert.equal(r20.arch, "resnet20-b");
  assert.equal(r20.rounds, 3);
  assert.equal(r20.ratio, 0.7);
  assert.equal(r20.ratioMin, 0.5);
  assert.equal(r20.ratioMax, 0.75);
  assert.equal(r20.pytorch, 1000);
  assert.equal(r20.ours, 600);
  assert.equal(r20.pytorchDefault, 5000);
  // No PyTorch measurement beside it: no ratio rather than a ratio against another round.
  assert.deepEqual([r56.ratio, r56.rounds, r56.pytorch], [null, 0, null]);
});

test("the GPU check's grid file is valid", () => {
  const p = spawnSync(process.execPath, [join(root, "bin", "bench.js"), "validate", join(root, "benchmarks", "gpu-check.yaml")], { encoding: "utf8" });
  assert.equal(p.status, 0, p.stderr + p.stdout);
  assert.match(p.stdout, /8 runs/);
});

test("profile-summary counts each sample in the part of its innermost classified frame and ranks self time", () => {
  const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url, lineNumber: 0 }, children });
  const T = "file:///w/dist/src/backend/torch/index.js", K = "file:///w/dist/src/backend/torch/kernels.js";
  const ENGINE = "file:///w/node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js", LOOP = "file:///w/dist/src/train/loop.js";
  const p: CpuProfile = {
    nodes: [
      frame(1, "(root)", "", [2, 8]),
      frame(2, "trainPhase", LOOP, [3]),
      frame(3, "runKernel", ENGINE, [4]),
      frame(4, "conv2D", K, [5, 7]),
      frame(5, "call", T, [6]),
      frame(6, "(anonymous)", ""), // the native call itself: unclassified, so its sample goes to `call`
      frame(7, "map", ""),
      frame(8, "(garbage collector)", ""),
    ],
    samples: [6, 6, 5, 7, 3, 2, 8, 1],
    timeDeltas: [1000, 1000, 1000, 2000, 500, 500, 3000, 1000],
  };
  const s = summarise(p, 3);
  assert.equal(s.totalMs, 10);
  assert.deepEqual(s.parts, { addon: 3, "torch backend": 2, "tfjs engine": 0.5, "training loop and model": 0.5, gc: 3, "start-up": 0, other: 1 });
  assert.deepEqual(s.top.map((t) => t.ms), [3, 2, 2]);
  assert.match(s.top[0].fn, /garbage collector/);
  // Loading modules and addons is start-up, wherever it is called from.
  assert.equal(partOf({ functionName: "dlopen", url: "", lineNumber: 0 }), "start-up");
  assert.equal(partOf({ functionName: "compileSourceTextModule", url: "node:internal/modules/esm/utils", lineNumber: 0 }), "start-up");
});
