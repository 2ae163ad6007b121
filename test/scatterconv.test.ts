// The addon's scatter kernels (native/src/scatterconv.cc): conv input and filter gradients that visit only the nonzero
// entries of dy, which a conv feeding ReLU + 2x2 max pooling gets (at most a quarter of them). The conv gradients
// choose them by cost, so a dy with 10 % nonzeros takes them: checked against a float64 reference on LeNet-5-Caffe's
// conv2 and on filter rows that exercise the kernels' blocking (a masked tail, a row longer than 12 vectors), dense
// and through the sparse kernels' entry points (dw 0 outside the pattern). A second process with PRUNEBENCH_SCATTER=0
// computes the same gradients on the kernels they replace: equal within rounding, and not bit for bit (so the scatter
// path is what ran here). Skipped without the addon.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { loadAddon, type NativeAddon } from "../src/backend/native/addon.js";
import { sparsePattern } from "../src/backend/sparse-ops.js";
import { makeRng, normal } from "../src/core/rng.js";

const loaded = loadAddon();
const addon: NativeAddon | null = "addon" in loaded ? loaded.addon : null;
// In the PRUNEBENCH_SCATTER=0 child (second test) this module only lends gradientsForChild: no tests of its own.
const skip = process.env.SCATTERCONV_TEST_CHILD ? "child process" : addon ? false : `native addon unavailable: ${"error" in loaded ? loaded.error : ""}`;

interface Case { name: string; N: number; H: number; W: number; C: number; KH: number; KW: number; O: number }
const CASES: Case[] = [
  { name: "LeNet-5-Caffe conv2 (row 100: 12 vectors + a 4-lane tail)", N: 3, H: 12, W: 12, C: 20, KH: 5, KW: 5, O: 50 },
  { name: "row 21 (2 vectors + a 5-lane tail), non-square", N: 2, H: 9, W: 7, C: 7, KH: 3, KW: 3, O: 10 },
  { name: "row 120 (a block of 12 vectors, then 3)", N: 2, H: 8, W: 9, C: 24, KH: 2, KW: 5, O: 6 },
];

/** `n` normal values, each kept with probability `keep` (0 otherwise). */
function values(n: number, seed: number, keep = 1): Float32Array {
  const rng = makeRng(seed, "scatterconv-test");
  return Float32Array.from({ length: n }, () => (rng() < keep ? normal(rng) : 0));
}

function inputs(c: Case) {
  const OH = c.H - c.KH + 1, OW = c.W - c.KW + 1;
  return {
    OH, OW,
    x: values(c.N * c.H * c.W * c.C, 1),
    w: values(c.KH * c.KW * c.C * c.O, 2),
    dy: values(c.N * OH * OW * c.O, 3, 0.1),
    mask: Float32Array.from(values(c.KH * c.KW * c.C * c.O, 4), (v) => (v > 0.3 ? 1 : 0)),
  };
}

/** Float64 reference: dx[n,ih,iw,c] = Σ dy[n,ih-kh,iw-kw,o] w[kh,kw,c,o]; dw[kh,kw,c,o] = Σ dy[n,oy,ox,o] x[n,oy+kh,ox+kw,c]. */
function reference(c: Case, x: Float32Array, w: Float32Array, dy: Float32Array, OH: number, OW: number) {
  const dx = new Float64Array(x.length), dw = new Float64Array(w.length);
  for (let n = 0; n < c.N; n++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++)
        for (let o = 0; o < c.O; o++) {
          const g = dy[((n * OH + oy) * OW + ox) * c.O + o];
          if (g === 0) continue;
          for (let kh = 0; kh < c.KH; kh++)
            for (let kw = 0; kw < c.KW; kw++)
              for (let ch = 0; ch < c.C; ch++) {
                const xi = ((n * c.H + oy + kh) * c.W + ox + kw) * c.C + ch, wi = ((kh * c.KW + kw) * c.C + ch) * c.O + o;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
        }
  return { dx, dw };
}

function relErr(got: Float32Array, ref: Float64Array): number {
  let maxRef = 0, maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    maxDiff = Math.max(maxDiff, Math.abs(got[i] - ref[i]));
  }
  return maxDiff / maxRef;
}

/** The four gradients (dense dx, dense dw, sparse-entry dx, sparse-entry dw) of one case on this process's addon. */
function gradients(a: NativeAddon, c: Case) {
  const { OH, OW, x, w, dy, mask } = inputs(c);
  const wm = Float32Array.from(w, (v, i) => v * mask[i]);
  const geom = [c.N, c.H, c.W, c.C, OH, OW, c.O, c.KH, c.KW, 1, 1, 0, 0, 0, 0, 1, 1];
  const sgeom = [c.N, c.H, c.W, c.C, OH, OW, c.O, c.KH, c.KW, 0, 0, 0, 0];
  const dx = new Float32Array(x.length), dw = new Float32Array(w.length);
  a.conv2dBackpropInput(dy, w, dx, geom as never);
  a.conv2dBackpropFilter(x, dy, dw, geom as never);
  const pattern = sparsePattern(mask, [c.KH, c.KW, c.C, c.O]).packed;
  const sdx = new Float32Array(x.length), sdw = new Float32Array(w.length);
  a.sparseConv2dGradInput!(dy, wm, pattern, sdx, sgeom as never);
  a.sparseConv2dGradFilter!(x, dy, pattern, sdw, sgeom as never);
  return { dx, dw, sdx, sdw, x, w, wm, dy, mask, OH, OW };
}

// float32 sums of up to KH*KW*O (dx) or N*OH*OW (dw) products, against float64.
const TOL = 2e-6;

test("scatter conv gradients match a float64 reference: dense and sparse entry points, tails and blocks", { skip }, () => {
  for (const c of CASES) {
    const r = gradients(addon!, c);
    const ref = reference(c, r.x, r.w, r.dy, r.OH, r.OW);
    const refSparse = reference(c, r.x, r.wm, r.dy, r.OH, r.OW);
    assert.ok(relErr(r.dx, ref.dx) <= TOL, `${c.name}: dx ${relErr(r.dx, ref.dx)}`);
    assert.ok(relErr(r.dw, ref.dw) <= TOL, `${c.name}: dw ${relErr(r.dw, ref.dw)}`);
    assert.ok(relErr(r.sdx, refSparse.dx) <= TOL, `${c.name}: sparse dx ${relErr(r.sdx, refSparse.dx)}`);
    const outside = r.sdw.filter((v, i) => r.mask[i] === 0 && v !== 0).length;
    assert.equal(outside, 0, `${c.name}: sparse dw written outside the pattern`);
    const refMasked = Float64Array.from(ref.dw, (v, i) => v * r.mask[i]);
    assert.ok(relErr(r.sdw, refMasked) <= TOL, `${c.name}: sparse dw ${relErr(r.sdw, refMasked)}`);
  }
});

test("with PRUNEBENCH_SCATTER=0 the replaced kernels give the same gradients within rounding, in other bits", { skip }, () => {
  const here = fileURLToPath(import.meta.url);
  const script = `
    const { loadAddon } = await import(${JSON.stringify(new URL("../src/backend/native/addon.js", import.meta.url).href)});
    const t = await import(${JSON.stringify(new URL(import.meta.url).href)} + "?child");
    const r = t.gradientsForChild(loadAddon().addon);
    process.stdout.write(JSON.stringify(r.map((a) => Array.from(a))) + "\\n");`;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8", env: { ...process.env, PRUNEBENCH_SCATTER: "0", SCATTERCONV_TEST_CHILD: "1" }, maxBuffer: 64 << 20,
  });
  assert.equal(child.status, 0, `${here}: child failed: ${child.stderr}`);
  // The first line: what the child printed before node:test reports this module's (skipped) tests.
  const off = (JSON.parse(child.stdout.split("\n")[0]) as number[][]).map((v) => Float32Array.from(v));
  const on = gradientsForChild(addon!);
  for (let i = 0; i < on.length; i++) {
    const ref = Float64Array.from(off[i]);
    assert.ok(relErr(on[i], ref) <= 1e-5, `output ${i}: ${relErr(on[i], ref)}`);
    assert.ok(on[i].some((v, j) => v !== off[i][j]), `output ${i}: bit-identical, so the scatter kernels did not run`);
  }
});

/** LeNet-5-Caffe conv2's four gradients (used by the child process too). */
export function gradientsForChild(a: NativeAddon): Float32Array[] {
  const r = gradients(a, CASES[0]);
  return [r.dx, r.dw, r.sdx, r.sdw];
}
