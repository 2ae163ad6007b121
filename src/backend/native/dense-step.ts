// The one-kernel SGD step of a plain dense stack (src/backend/dense-step.ts) on the native backend: the addon calls the
// taped step makes through the kernels of ./kernels.ts (GatherV2, MatMulBiasAct, SoftmaxCrossEntropy and its
// gradient, MatMulBiasActGrad, BatchMatMul for dx, SgdUpdate / SgdNesterovUpdate; for a layer with a sparsity pattern
// SparseMatMulBiasAct, BiasActGrad, SparseMatMulGradWeight and SparseMatMulGradInput), with the same arguments in an
// order that gives the same values, so the weights come out bit for bit as the taped step leaves them. Activations and
// gradients live in buffers kept between steps (one set per layer shape and batch size) instead of fresh tensors.

import * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { DenseStackSgdStep, inputName, type DenseStepAttrs } from "../dense-step.js";
import type { NativeAddon } from "./addon.js";
import { target, type InPlace, type NativeKernelFunc } from "./kernels.js";

type TensorInfo = tf.TensorInfo;

interface Scratch {
  /** Per layer: its output (the next layer's input), dz, the weight and bias gradients, and dx (not for layer 0). */
  y: Float32Array[];
  dz: Float32Array[];
  dw: Float32Array[];
  db: Float32Array[];
  dx: Array<Float32Array | null>;
  x: Float32Array;
  labels: Int32Array;
  dlogits: Float32Array;
}

/** Buffer sets kept at once: a phase's full and last batch, of a network and the one trained before it. */
const MAX_SHAPES = 4;

function scratch(B: number, dims: number[]): Scratch {
  const L = dims.length - 1;
  const s: Scratch = { y: [], dz: [], dw: [], db: [], dx: [], x: new Float32Array(B * dims[0]), labels: new Int32Array(B), dlogits: new Float32Array(B * dims[L]) };
  for (let i = 0; i < L; i++) {
    s.y.push(new Float32Array(B * dims[i + 1]));
    s.dz.push(new Float32Array(B * dims[i + 1]));
    s.dw.push(new Float32Array(dims[i] * dims[i + 1]));
    s.db.push(new Float32Array(dims[i + 1]));
    s.dx.push(i > 0 ? new Float32Array(B * dims[i]) : null);
  }
  return s;
}

export function makeDenseStepKernels(addon: NativeAddon): Record<string, NativeKernelFunc> {
  const { biasAct, biasActGrad, softmaxCrossEntropy: loss, softmaxCrossEntropyGrad: lossGrad, sgdUpdate, sgdNesterovUpdate, gatherRows } = addon;
  const countZeros = addon.countZeros;
  const { sparseMatMul: spMm, sparseMatMulGradInput: spMmIn, sparseMatMulGradWeight: spMmW } = addon;
  if (!biasAct || !biasActGrad || !loss || !lossGrad || !sgdUpdate || !sgdNesterovUpdate) return {};
  // One set of buffers per network shape and batch size (a phase's last, short batch gets its own).
  const buffers = new Map<string, Scratch>();

  const step: NativeKernelFunc = (args) => {
    const b = args.backend as MathBackendCPU & InPlace;
    const a = args.attrs as unknown as DenseStepAttrs;
    const inp = args.inputs;
    const arr = (name: string): Float32Array | null => {
      const t = inp[name];
      const v = t && t.dtype === "float32" ? b.data.get(t.dataId)?.values : null;
      return v instanceof Float32Array ? v : null;
    };
    const fail = (why: string): never => { throw new Error(`${DenseStackSgdStep}: ${why}`); };
    if (typeof b.updatable !== "function") fail("the backend cannot update tensors in place");
    const L = a.relu.length;
    const B = a.rows.length;
    const xs = arr("x");
    const yv = inp.y && inp.y.dtype === "int32" ? b.data.get(inp.y.dataId)?.values : null;
    if (!xs || !(yv instanceof Int32Array) || L === 0 || B === 0) fail("needs float32 x, int32 y, a layer and a batch");
    const ys = yv as Int32Array;
    const lossSum = arr("lossSum"), hitsSum = arr("hitsSum"), zerosSum = inp.zerosSum ? arr("zerosSum") : null;
    if (lossSum?.length !== 1 || hitsSum?.length !== 1 || (inp.zerosSum && zerosSum?.length !== 1)) fail("needs the running sums as float32 scalars");
    if (zerosSum && !countZeros) fail("this addon cannot count zeros");
    const count = inp.x!.shape[0];
    const dims = [count > 0 ? xs!.length / count : 0];
    for (let i = 0; i < L; i++) {
      const k = inp[inputName("k", i)];
      if (!k || k.shape.length !== 2 || k.shape[0] !== dims[i] || !arr(inputName("k", i))) fail(`layer ${i}'s kernel does not follow its input (${dims[i]} features)`);
      dims.push(k!.shape[1]);
      if (arr(inputName("b", i))?.length !== dims[i + 1]) fail(`layer ${i}'s bias is not [${dims[i + 1]}]`);
    }
    const momentum = a.momentum > 0;
    const key = `${B}:${dims.join(",")}`;
    let s = buffers.get(key);
    if (!s) {
      // A long-lived worker trains many networks (compacted ones have widths of their own): keep the last few shapes.
      if (buffers.size >= MAX_SHAPES) buffers.delete(buffers.keys().next().value!);
      buffers.set(key, (s = scratch(B, dims)));
    }
    // A layer with a pattern runs the sparse kernels, as the taped step's SparseMatMulBiasAct does.
    const patterns: Array<Int32Array | null> = [];
    for (let i = 0; i < L; i++) {
      const t = inp[inputName("p", i)];
      const v = t && t.dtype === "int32" ? b.data.get(t.dataId)?.values : null;
      if (t && !(v instanceof Int32Array)) fail(`layer ${i}'s pattern is not int32`);
      if (t && !(spMm && spMmIn && spMmW)) fail("this addon has no sparse kernels");
      patterns.push(t ? (v as Int32Array) : null);
    }
    const rows = a.rows;
    for (let j = 0; j < B; j++) if (!(rows[j] >= 0 && rows[j] < count)) fail(`row ${rows[j]} is outside x's ${count}`);

    // The batch (GatherV2 of x and of y).
    const inner = dims[0];
    if (gatherRows && inner >= 64) gatherRows.call(addon, xs!, rows, inner, s.x);
    else for (let j = 0; j < B; j++) s.x.set(xs!.subarray(rows[j] * inner, (rows[j] + 1) * inner), j * inner);
    for (let j = 0; j < B; j++) s.labels[j] = ys[rows[j]];

    // Forward: MatMulBiasAct per layer (and, counting, CountZeros of each ReLU output added up as tf.addN does).
    let h = s.x;
    const z = new Float32Array(1);
    let zeros: number | null = null;
    for (let i = 0; i < L; i++) {
      const p = patterns[i];
      if (p) spMm!.call(addon, h, arr(inputName("k", i))!, p, s.y[i], B, dims[i], dims[i + 1]);
      else addon.matmul(h, arr(inputName("k", i))!, s.y[i], 1, 1, B, dims[i], dims[i + 1], 0, 0);
      biasAct.call(addon, s.y[i], arr(inputName("b", i))!, s.y[i], B, dims[i + 1], a.relu[i]);
      if (zerosSum && a.relu[i]) {
        countZeros!.call(addon, s.y[i], z);
        zeros = zeros === null ? z[0] : Math.fround(zeros + z[0]);
      }
      h = s.y[i];
    }
    const C = dims[L];
    const r = new Float32Array(2);
    loss.call(addon, h, s.labels, B, C, r);
    // The tape seeds the loss's gradient with 1.
    lossGrad.call(addon, h, s.labels, 1, B, C, s.dlogits);

    // Backward, last layer first: MatMulBiasActGrad (dz, db, aᵀ·dz), then dx = dz·Wᵀ (never for the first layer). Each
    // layer's tensors are updated once its dx is taken (nothing later reads them), as the taped step's optimizer
    // updates them after the whole backward pass: each update reads only its own tensor's gradient, velocity and mask.
    const update = a.nesterov ? sgdNesterovUpdate : sgdUpdate;
    const wd = a.weightDecay > 0 ? a.weightDecay : 0;
    const news: TensorInfo[] = [];
    const vels: TensorInfo[] = [];
    // When no other tensor shares any of the updated tensors' data (the usual case), the new values are installed under
    // their own data (in their arrays, or copy-on-write ones) and the kernel returns the sums alone: a dozen output
    // tensors made and dropped per step cost more than the two smallest layers' updates.
    const updated: string[] = [];
    for (let i = 0; i < L; i++) {
      updated.push(inputName("k", i), inputName("b", i));
      if (momentum) updated.push(inputName("vk", i), inputName("vb", i));
    }
    const inPlace = updated.every((n) => b.data.get(inp[n]?.dataId ?? {})?.refCount === 1);
    /** Where tensor `t`'s new values go: its own (or a copy-on-write) array, installed by `commit`. */
    const own = (t: TensorInfo, keep: boolean) => {
      const values = b.updatable(t.dataId) ?? fail("a tensor to update in place is shared");
      if (keep) {
        const old = b.data.get(t.dataId)!.values as Float32Array;
        if (values !== old) values.set(old);
      }
      return { values, commit: () => b.commitValues(t.dataId, values) };
    };
    const apply = (name: string, g: Float32Array, vName: string, maskName: string): void => {
      const t = inp[name]!;
      const vt = momentum ? inp[vName] : undefined;
      const mask = inp[maskName] ? arr(maskName) : null;
      const cur = arr(name)!;
      if (momentum && arr(vName)?.length !== cur.length) fail(`${name} has no velocity of its size`);
      if (inp[maskName] && mask?.length !== cur.length) fail(`${name}'s mask is not of its size`);
      if (inPlace) {
        const wt = own(t, false), v = vt ? own(vt, true) : null;
        update.call(addon, cur, g, v?.values ?? null, mask, wt.values, a.lr, a.momentum, wd);
        wt.commit();
        v?.commit();
        return;
      }
      const wt = target(b, t, false), v = vt ? target(b, vt, true) : null;
      update.call(addon, cur, g, v?.values ?? null, mask, wt.values, a.lr, a.momentum, wd);
      news.push(wt.done());
      if (v) vels.push(v.done());
    };
    let dy = s.dlogits;
    const done: Array<[TensorInfo[], TensorInfo[]]> = [];
    for (let i = L - 1; i >= 0; i--) {
      const input = i > 0 ? s.y[i - 1] : s.x;
      biasActGrad.call(addon, dy, s.y[i], s.dz[i], s.db[i], B, dims[i + 1], a.relu[i]);
      const p = patterns[i];
      // Sparse: the weight gradient only at the pattern's positions (SparseMatMulGradWeight), dx through the pattern.
      if (p) spMmW!.call(addon, input, s.dz[i], p, s.dw[i], B, dims[i], dims[i + 1]);
      else addon.matmul(input, s.dz[i], s.dw[i], 1, 1, dims[i], B, dims[i + 1], 1, 0);
      if (i > 0) {
        if (p) spMmIn!.call(addon, s.dz[i], arr(inputName("k", i))!, p, s.dx[i]!, B, dims[i], dims[i + 1]);
        else addon.matmul(s.dz[i], arr(inputName("k", i))!, s.dx[i]!, 1, 1, B, dims[i + 1], dims[i], 0, 1);
        dy = s.dx[i]!;
      }
      news.length = 0;
      vels.length = 0;
      apply(inputName("k", i), s.dw[i], inputName("vk", i), inputName("mk", i));
      apply(inputName("b", i), s.db[i], inputName("vb", i), inputName("mb", i));
      done[i] = [[...news], [...vels]];
    }
    // The loop's tf.add(lossSum, tf.mul(loss, B)) and tf.add(hitsSum, hits): float32 operations, which a double
    // operation on float32 values rounded once to float32 gives exactly.
    const f = Math.fround;
    const outs: TensorInfo[] = [
      b.makeTensorInfo([], "float32", Float32Array.of(f(lossSum![0] + f(r[0] * B)))),
      b.makeTensorInfo([], "float32", Float32Array.of(f(hitsSum![0] + r[1]))),
    ];
    // No ReLU: the loop's zeros are tf.scalar(0).
    if (zerosSum) outs.push(b.makeTensorInfo([], "float32", Float32Array.of(f(zerosSum[0] + (zeros ?? 0)))));
    for (const [n] of done) outs.push(...n);
    for (const [, v] of done) outs.push(...v);
    return outs;
  };
  return { [DenseStackSgdStep]: step };
}
