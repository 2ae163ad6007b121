import type { HyperValue } from "../src/core/types.js";
import type { Schedule } from "../src/prune/schedules.js";
import { eligibleGroups, producingKernels } from "./channel-scores.js";
import { NAP_2021 } from "./citations.js";
import { matMul, meanDiagonal, principal, spdInverse } from "./linalg.js";
import type { ChannelGroupView, KfacFactors, PruningMethod, ScoreContext } from "./types.js";

/**
 * NAP, Network Automatic Pruning (Zeng, Xiong, Urtasun, "Network Automatic Pruning: Start NAP and Take a Nap", arXiv
 * 2101.06608; no public code): the loss increase of removing a weight or a channel, from an Optimal-Brain-Surgeon
 * quadratic model whose Hessian is K-FAC's per-layer A ⊗ G, ranked over all layers at once, so the method, not a
 * hand-set distribution, decides how much each layer loses. Two registry entries share this code: `nap` (single
 * weights, here) and `nap-channel` (output channels / neurons through the channel groups of src/archs/graph.ts; its
 * registry file methods/nap-channel.ts only assembles the pieces below).
 *
 * From the paper's abstract: K-FAC curvature, OBS-like importance, fine-grained and structured modes, per-layer ratios
 * chosen automatically. The formulas (METHOD-NOTES "Curvature family"; the same algebra as the public K-FAC pruner
 * EigenDamage-Pytorch) with W a layer's d_out × d_in weights (bias as its last column), A and G its damped factors:
 * - weight (i, j): ΔL = W_ij² / (2·[G⁻¹]_ii·[A⁻¹]_jj); compensation ΔW = −G⁻¹·E·A⁻¹, E_ij = W_ij / ([G⁻¹]_ii·[A⁻¹]_jj)
 *   on the weights pruned at this step, 0 elsewhere: the sum of each weight's own OBS update (WoodFisher's choice for
 *   many weights at once; the exact joint update would need a |Q|×|Q| solve over every pruned weight), the engine
 *   then zeroing the pruned entries. Exact for one weight.
 * - output unit i (a filter, a neuron, with its bias): ΔL = (W_i,:·A·W_i,:ᵀ) / (2·[G⁻¹]_ii); the units of a residual
 *   group (one channel produced by several layers) sum their producers' ΔL, each layer its own K-FAC block. The
 *   compensation is joint over all removed rows Q of a layer (earlier steps' included, so they stay at zero):
 *   ΔW = −G⁻¹[:, Q]·([G⁻¹]_QQ)⁻¹·W_Q,:, exact for the quadratic model (it touches the layer's other outputs only).
 *
 * Choices where the paper is silent (each a hyperparameter):
 * - Curvature: the empirical Fisher (`labels: data`, the real labels; `sampled` draws them from the model for K-FAC's
 *   true Fisher, which EigenDamage's CIFAR configs use: fisher_type "true"), over `batches` × `batch_size` training images in training mode (batch norm on batch statistics).
 *   A conv's A is over every patch and image, its G sums over output positions (KFC's convention), so A ⊗ G is the
 *   Fisher of the mean loss in every layer and the ΔL of different layers compare in the same units.
 * - Damping: K-FAC's π-corrected Tikhonov damping, A + π·√λ·I and G + (√λ/π)·I, π = √((tr A/d_in)/(tr G/d_out)),
 *   `damping` λ = 1e-3 (a common K-FAC default; the paper gives none). The ranking is invariant to rescaling
 *   consecutive ReLU layers (×s, ÷s) as λ → 0 (A and G of the two layers scale by s² and 1/s², the weights by s
 *   and 1/s, and ΔL does not move); the damping terms √λ·π and √λ/π do not scale with them, so a finite λ breaks the
 *   invariance by a term of order √λ relative to the factors.
 * - Schedule: iterative (`schedule: iterative`): each round removes `rate` of what is left (weights, or the run's
 *   structured measure), recomputes the curvature on the pruned model and fine-tunes (rewind none, Han et al.'s
 *   retraining); EigenDamage's CIFAR setting is 7 rounds of 50 % (ratio 0.5, prune_ratio_limit 0.5), the default. `schedule: one-shot` prunes once.
 * - Only conv and dense kernels (and their biases, where prunable) are modelled: any other prunable tensor (batch
 *   norm, depthwise, embeddings, attention's own) scores +∞ and is pruned last. Compensation updates a bias only where
 *   the method is handed its values (a prunable bias, or a channel group's member); otherwise the bias column's part
 *   of the update is dropped.
 * - Structured: a group's channels are removed with their batch norm; the K-FAC model sees only the producing conv or
 *   dense layer's output, so the batch norm's shift (β) that remains until the channel is physically removed is not in
 *   ΔL. The classifier's outputs are never offered (the graph protects them). EigenDamage caps each layer's pruned
 *   fraction per step: `cap` (0.5) here, as a priority (in a group, units beyond a `cap` fraction of its live ones go
 *   after every uncapped unit of the network), so the run still reaches its target; 1 turns it off. The kept scores
 *   are then ranks (the order, not ΔL, is what the engine reads).
 */
export const NAP_PARAMS: PruningMethod["params"] = {
  damping: { type: "number", default: 1e-3, min: 0, max: 1e6, description: "K-FAC Tikhonov damping λ (π-corrected: A + π√λ·I, G + √λ/π·I)" },
  batches: { type: "integer", default: 8, min: 1, max: 100_000, description: "training batches the K-FAC factors are gathered over" },
  batch_size: { type: "integer", default: 128, min: 1, max: 100_000, description: "images per batch" },
  labels: { type: "string", default: "data", choices: ["data", "sampled"], description: "empirical Fisher (real labels) or the true Fisher (labels sampled from the model)" },
  compensate: { type: "boolean", default: true, description: "apply the OBS update to the surviving weights after each step" },
  schedule: { type: "string", default: "iterative", choices: ["iterative", "one-shot"], description: "prune in rounds with recomputed curvature and fine-tuning in between, or once" },
  rate: { type: "number", default: 0.5, min: 0.01, max: 0.99, description: "iterative: fraction of what is left removed per round" },
  max_rounds: { type: "integer", default: 20, min: 1, max: 100, description: "iterative: most rounds a run may take (a target that needs more is refused when the sweep is planned)" },
};

export function napSchedule(p: Readonly<Record<string, HyperValue>>): Schedule {
  if (p.schedule === "one-shot") return { kind: "one-shot" };
  return { kind: "iterative", rate: Number(p.rate), maxRounds: Number(p.max_rounds), rewind: "none", rewindEpoch: 1 };
}

/** One layer's damped K-FAC block and its factors' inverses. */
export interface LayerCurvature {
  f: KfacFactors;
  /** π√λ, the damping added to A's diagonal. */
  aShift: number;
  /** A + π√λ·I (only where the factors hold A: not under `input: "trace"`). */
  readonly aDamped: Float64Array;
  /** (A + π√λ·I)⁻¹, computed when first read: the channel mode never needs it (O(d_in³) on the host). */
  readonly aInv: Float64Array;
  gInv: Float64Array;
}

export function dampedCurvature(f: KfacFactors, damping: number, layer = "layer"): LayerCurvature {
  const a = f.traceA / f.inDim;
  const g = meanDiagonal(f.G, f.outDim);
  const pi = a > 0 && g > 0 ? Math.sqrt(a / g) : 1;
  const gamma = Math.sqrt(damping);
  const gDamped = f.G.slice();
  for (let i = 0; i < f.outDim; i++) gDamped[i * f.outDim + i] += gamma / pi;
  let aDamped: Float64Array | null = null;
  let aInv: Float64Array | null = null;
  const damped = () => {
    if (f.A.length !== f.inDim * f.inDim) throw new Error(`${layer}: the K-FAC factors were gathered without A`);
    if (!aDamped) {
      aDamped = f.A.slice();
      for (let j = 0; j < f.inDim; j++) aDamped[j * f.inDim + j] += pi * gamma;
    }
    return aDamped;
  };
  return {
    f, aShift: pi * gamma, gInv: spdInverse(gDamped, f.outDim, `${layer}: K-FAC factor G`),
    get aDamped() { return damped(); },
    get aInv() { return (aInv ??= spdInverse(damped(), f.inDim, `${layer}: K-FAC factor A`)); },
  };
}

/** A layer's kernel (and bias) as the d_out × d_in matrix W of KfacFactors, bias in the last column. */
export function weightMatrix(f: KfacFactors, kernel: Float32Array, bias: Float32Array | null, layer = "layer"): Float64Array {
  const kin = f.inDim - (f.hasBias ? 1 : 0);
  if (kernel.length !== kin * f.outDim) throw new Error(`${layer}: kernel of ${kernel.length} values, K-FAC factors of ${kin} inputs × ${f.outDim} outputs`);
  const w = new Float64Array(f.outDim * f.inDim);
  for (let j = 0; j < kin; j++) for (let i = 0; i < f.outDim; i++) w[i * f.inDim + j] = kernel[j * f.outDim + i];
  if (f.hasBias && bias) for (let i = 0; i < f.outDim; i++) w[i * f.inDim + kin] = bias[i];
  return w;
}

/** W-layout values (m × n) back in the kernel's [..., in, out] layout, added to `base` where given. */
function toKernel(w: Float64Array, m: number, n: number, base: Float32Array | null, length: number): Float32Array {
  const out = new Float32Array(length);
  for (let k = 0; k < length; k++) out[k] = (base ? base[k] : 0) + w[(k % m) * n + Math.floor(k / m)];
  return out;
}

/** W's bias column (its last), added to `base` where given. */
function toBias(w: Float64Array, m: number, n: number, base: Float32Array | null): Float32Array {
  const out = new Float32Array(m);
  for (let i = 0; i < m; i++) out[i] = (base ? base[i] : 0) + w[i * n + n - 1];
  return out;
}

/** ΔL of removing each weight on its own, in W's layout (see weightMatrix). */
export function weightSaliency(c: LayerCurvature, w: Float64Array): Float64Array {
  const { inDim: n, outDim: m } = c.f;
  const s = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) s[i * n + j] = (w[i * n + j] ** 2) / (2 * c.gInv[i * m + i] * c.aInv[j * n + j]);
  return s;
}

/** The sum of the single-weight OBS updates of the weights `pruned` (in W's layout): −G⁻¹·E·A⁻¹. */
export function weightUpdate(c: LayerCurvature, w: Float64Array, pruned: (i: number, j: number) => boolean): Float64Array {
  const { inDim: n, outDim: m } = c.f;
  const e = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) if (pruned(i, j)) e[i * n + j] = -w[i * n + j] / (c.gInv[i * m + i] * c.aInv[j * n + j]);
  return matMul(matMul(c.gInv, e, m, m, n), c.aInv, m, n, n);
}

/**
 * ΔL of removing the output rows `rows` of W together: ½·tr(([G⁻¹]_QQ)⁻¹·W_Q·A·W_Qᵀ). A single row's W_i·A·W_iᵀ is the
 * mean square of its output (KfacFactors.outputMeanSquare) plus the damping's π√λ·‖W_i‖², without the O(d_in²) product.
 */
export function rowSaliency(c: LayerCurvature, w: Float64Array, rows: readonly number[]): number {
  const { inDim: n, outDim: m } = c.f;
  const q = rows.length;
  if (q === 1) {
    const r = rows[0];
    let norm = 0;
    for (let j = 0; j < n; j++) norm += w[r * n + j] ** 2;
    return (c.f.outputMeanSquare[r] + c.aShift * norm) / (2 * c.gInv[r * m + r]);
  }
  const wq = new Float64Array(q * n);
  rows.forEach((r, a) => wq.set(w.subarray(r * n, (r + 1) * n), a * n));
  const waw = new Float64Array(q * q);
  const wa = matMul(wq, c.aDamped, q, n, n);
  for (let a = 0; a < q; a++) for (let b = 0; b < q; b++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += wa[a * n + j] * wq[b * n + j];
    waw[a * q + b] = s;
  }
  const inv = spdInverse(principal(c.gInv, m, rows), q, "[G⁻¹]_QQ");
  let t = 0;
  for (let a = 0; a < q; a++) for (let b = 0; b < q; b++) t += inv[a * q + b] * waw[b * q + a];
  return t / 2;
}

/** The joint OBS update for removing the rows `rows` of W: −G⁻¹[:, Q]·([G⁻¹]_QQ)⁻¹·W_Q,: (zeroes those rows exactly). */
export function rowUpdate(c: LayerCurvature, w: Float64Array, rows: readonly number[]): Float64Array {
  const { inDim: n, outDim: m } = c.f;
  const q = rows.length;
  if (q === 0) return new Float64Array(m * n);
  const inv = spdInverse(principal(c.gInv, m, rows), q, "[G⁻¹]_QQ");
  const wq = new Float64Array(q * n);
  rows.forEach((r, a) => wq.set(w.subarray(r * n, (r + 1) * n), a * n));
  const coef = matMul(inv, wq, q, q, n);
  const cols = new Float64Array(m * q);
  for (let i = 0; i < m; i++) rows.forEach((r, a) => { cols[i * q + a] = -c.gInv[i * m + r]; });
  return matMul(cols, coef, m, q, n);
}

/** Per step, the curvature `score` computed (and whether with A), for `compensate` of the same step. */
const stepCurvature = new WeakMap<ScoreContext, { full: boolean; layers: Map<string, LayerCurvature> }>();

/** The damped curvature of `layers`; `full`: with A itself (the weight mode, multi-row units), else only its trace. */
async function curvatures(ctx: ScoreContext, layers: readonly string[], params: Readonly<Record<string, HyperValue>>, full = true): Promise<Map<string, LayerCurvature>> {
  const cached = stepCurvature.get(ctx);
  if (cached && (cached.full || !full) && layers.every((l) => cached.layers.has(l))) return cached.layers;
  if (!ctx.kfacFactors) throw new Error("nap needs the engine's K-FAC factors (needs.kfacFactors)");
  const factors = await ctx.kfacFactors(
    { batches: Number(params.batches), batchSize: Number(params.batch_size), mode: "train" },
    { labels: params.labels === "sampled" ? "sampled" : "data", layers, input: full ? "full" : "trace" },
  );
  const out = new Map<string, LayerCurvature>();
  for (const layer of layers) {
    const f = factors.get(layer);
    if (!f) throw new Error(`nap: no K-FAC factors for layer ${layer} (it never ran as a conv or dense layer)`);
    out.set(layer, dampedCurvature(f, Number(params.damping), layer));
  }
  stepCurvature.set(ctx, { full, layers: out });
  return out;
}

const modelled = (kind: string) => kind === "conv" || kind === "dense";

/** Weight mode: ΔL per weight of every prunable conv / dense kernel and bias; +∞ for what K-FAC does not model. */
async function scoreWeights(ctx: ScoreContext): Promise<Map<string, Float32Array>> {
  const layers = [...new Set(ctx.tensors.filter((t) => t.role === "kernel" && modelled(t.layerKind)).map((t) => t.layer))];
  const curv = layers.length > 0 ? await curvatures(ctx, layers, ctx.params) : new Map<string, LayerCurvature>();
  const out = new Map<string, Float32Array>();
  for (const layer of layers) {
    const c = curv.get(layer)!;
    const kernel = ctx.tensors.find((t) => t.layer === layer && t.role === "kernel")!;
    const bias = ctx.tensors.find((t) => t.layer === layer && t.role === "bias") ?? null;
    const w = weightMatrix(c.f, kernel.values, bias?.values ?? null, layer);
    const s = weightSaliency(c, w);
    const { inDim: n, outDim: m } = c.f;
    out.set(kernel.name, toKernel(s, m, n, null, kernel.values.length));
    if (bias && c.f.hasBias) out.set(bias.name, toBias(s, m, n, null));
  }
  for (const t of ctx.tensors) if (!out.has(t.name)) out.set(t.name, new Float32Array(t.values.length).fill(Infinity));
  return out;
}

async function compensateWeights(ctx: ScoreContext, newMasks: ReadonlyMap<string, Float32Array>, params: Readonly<Record<string, HyperValue>>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  if (params.compensate === false) return out;
  const kernels = ctx.tensors.filter((t) => t.role === "kernel" && modelled(t.layerKind) && newMasks.has(t.name));
  if (kernels.length === 0) return out;
  const curv = await curvatures(ctx, kernels.map((t) => t.layer), params);
  for (const kernel of kernels) {
    const c = curv.get(kernel.layer)!;
    const bias = c.f.hasBias ? ctx.tensors.find((t) => t.layer === kernel.layer && t.role === "bias") ?? null : null;
    const { inDim: n, outDim: m } = c.f;
    const kin = n - (c.f.hasBias ? 1 : 0);
    const km = newMasks.get(kernel.name)!;
    const bm = bias ? newMasks.get(bias.name) ?? bias.mask : null;
    const w = weightMatrix(c.f, kernel.values, bias?.values ?? null, kernel.layer);
    const fresh = (i: number, j: number) => {
      if (j < kin) { const k = j * m + i; return km[k] === 0 && kernel.mask[k] !== 0; }
      return bias !== null && bm![i] === 0 && bias.mask[i] !== 0;
    };
    const dw = weightUpdate(c, w, fresh);
    out.set(kernel.name, toKernel(dw, m, n, kernel.values, kernel.values.length));
    if (bias) out.set(bias.name, toBias(dw, m, n, bias.values));
  }
  return out;
}

/** A producing layer of a channel group: its kernel (and bias) member and which output rows each unit covers. */
interface Producer { layer: string; kernel: ChannelGroupView["members"][number]; bias: Float32Array | null; rows: ReadonlyArray<readonly number[]> }

function producers(g: ChannelGroupView): Producer[] {
  return producingKernels(g).map((kernel) => {
    const bias = g.members.find((m) => m.side === "out" && m.layer === kernel.layer && m.role === "bias");
    if (kernel.axis !== kernel.shape.length - 1) throw new Error(`nap-channel: ${kernel.tensor} produces group ${g.name} along axis ${kernel.axis}, not its output axis`);
    return { layer: kernel.layer, kernel, bias: bias?.values ?? null, rows: kernel.indices };
  });
}

/** Channel mode: per unit, Σ over its producing layers of ΔL of removing its rows there; a step's cap as priority. */
export async function scoreChannels(ctx: ScoreContext): Promise<Map<string, Float32Array>> {
  if (!ctx.groups) throw new Error("nap-channel is a channel method: the engine gave it no channel groups");
  const groups = eligibleGroups(ctx.groups, ctx.params).map((g) => ({ g, producers: producers(g) })).filter((x) => x.producers.length > 0);
  if (groups.length === 0) return new Map();
  // A itself only where a unit spans several rows of a layer (e.g. an attention head); else its trace is enough.
  const full = groups.some((x) => x.producers.some((p) => p.rows.some((r) => r.length > 1)));
  const curv = await curvatures(ctx, [...new Set(groups.flatMap((x) => x.producers.map((p) => p.layer)))], ctx.params, full);
  const raw = groups.map(({ g, producers: ps }) => {
    const s = new Float64Array(g.size);
    for (const p of ps) {
      const c = curv.get(p.layer)!;
      const w = weightMatrix(c.f, p.kernel.values, p.bias, p.layer);
      p.rows.forEach((rows, u) => { if (g.alive[u] !== 0) s[u] += rowSaliency(c, w, rows); });
    }
    return { g, s };
  });
  return capped(raw, Number(ctx.params.cap));
}

/**
 * ΔL as scores, or, where `cap` holds some units back in this step (a group's live units beyond the lowest
 * floor(cap × live)), ranks in the order (held back, ΔL): every unit held back goes after every other.
 */
export function capped(raw: ReadonlyArray<{ g: ChannelGroupView; s: Float64Array }>, cap: number): Map<string, Float32Array> {
  const held = raw.map(({ g, s }) => {
    const live = [...s.keys()].filter((u) => g.alive[u] !== 0).sort((a, b) => s[a] - s[b] || a - b);
    const h = new Uint8Array(g.size);
    for (const u of live.slice(Math.floor(cap * live.length))) h[u] = 1;
    return h;
  });
  if (cap >= 1 || held.every((h) => h.every((x) => x === 0))) return new Map(raw.map(({ g, s }) => [g.name, Float32Array.from(s)]));
  const order: Array<{ k: number; u: number }> = [];
  raw.forEach(({ g }, k) => { for (let u = 0; u < g.size; u++) if (g.alive[u] !== 0) order.push({ k, u }); });
  order.sort((a, b) => held[a.k][a.u] - held[b.k][b.u] || raw[a.k].s[a.u] - raw[b.k].s[b.u] || a.k - b.k || a.u - b.u);
  const out = raw.map(({ g }) => new Float32Array(g.size));
  order.forEach(({ k, u }, rank) => { out[k][u] = rank + 1; });
  return new Map(raw.map(({ g }, k) => [g.name, out[k]]));
}

export async function compensateChannels(ctx: ScoreContext, newMasks: ReadonlyMap<string, Float32Array>, params: Readonly<Record<string, HyperValue>>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  if (params.compensate === false || !ctx.groups) return out;
  const all = new Map<string, Producer>();
  for (const g of eligibleGroups(ctx.groups, params)) for (const p of producers(g)) if (newMasks.has(p.kernel.tensor)) all.set(p.layer, p);
  if (all.size === 0) return out;
  // The joint update needs G⁻¹ only.
  const curv = await curvatures(ctx, [...all.keys()], params, false);
  for (const p of all.values()) {
    const c = curv.get(p.layer)!;
    const { inDim: n, outDim: m } = c.f;
    const mask = newMasks.get(p.kernel.tensor)!;
    const alive = new Uint8Array(m);
    for (let k = 0; k < mask.length; k++) if (mask[k] !== 0) alive[k % m] = 1;
    const removed = [...alive.keys()].filter((i) => alive[i] === 0);
    if (removed.length === 0 || removed.length === m) continue;
    const w = weightMatrix(c.f, p.kernel.values, p.bias, p.layer);
    const dw = rowUpdate(c, w, removed);
    out.set(p.kernel.tensor, toKernel(dw, m, n, p.kernel.values, p.kernel.values.length));
    const bias = ctx.groups.flatMap((g) => g.members).find((x) => x.side === "out" && x.layer === p.layer && x.role === "bias");
    if (bias && c.f.hasBias) out.set(bias.tensor, toBias(dw, m, n, bias.values));
  }
  return out;
}

export const nap: PruningMethod = {
  name: "nap",
  summary: "Remove the weights with the smallest OBS loss increase under K-FAC curvature, one global ranking in loss units, OBS compensation, iterative (Zeng et al. 2021)",
  paper: NAP_2021,
  params: { ...NAP_PARAMS },
  needs: { kfacFactors: true },
  distribution: () => "global",
  schedule: napSchedule,
  score: scoreWeights,
  compensate: compensateWeights,
};
