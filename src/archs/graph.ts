/**
 * The channel dependency graph of an architecture, traced by a third interpreter of `Ops` (beside ShapeOps and
 * TensorOps), so it is derived from the same `build` that runs and counts the network, never from a table per
 * architecture (Torch-Pruning's DepGraph, Fang et al. CVPR 2023; Gate Decorator's group pruning, You et al. 2019).
 *
 * Every channel of every value is a variable. A layer with its own outputs (conv, dense) creates fresh variables;
 * batch norm, ReLU, pooling, flatten, a depthwise conv, taking a token pass them through; a residual `add` unifies
 * the variables at each position of its two operands (they must be pruned together); attention unifies, per head,
 * all of q's, k's and v's columns of that head (a head is removed whole: removing single columns would change the
 * 1/√headDim scale). Each class of unified variables is one prunable unit ("channel"), and the units created by one
 * layer form a group: the unit's tensors — the producing kernels' slices, biases, BN γ/β and running statistics, the
 * consuming kernels' input slices (after a flatten, each channel's h·w rows of the dense kernel) — are removed
 * together.
 *
 * Option A's zero-padded shortcut does not unify anything: its output positions are fresh variables (joined to the
 * residual stream by the add that follows) and its channel source list maps them back to its input's units. Removing
 * a unit of the output stream sets its source to −1 (the masked model's shortcut changes too, see `maskedShortcuts`);
 * removing a unit of the input stream zeroes that channel everywhere, and the compacted map drops it.
 *
 * Protected groups are never pruned: the network's outputs (the classifier's units), any group normalised by a layer
 * norm (its statistics run over all features, so a zeroed feature is not a removed one), and a group added to the
 * network input.
 */
import type { LayerKind } from "../core/types.js";
import {
  ShapeOps, tensorNames, type ArchDef, type AttentionOptions, type ConvOptions, type DenseOptions, type DepthwiseOptions, type LayerInfo,
  type Ops, type Widths, type ZeroPadShortcutOptions,
} from "./ops.js";

/** Slot values that are not variables: a channel of the network input (never pruned), a constant zero channel. */
const FIXED = -1;
const ZERO = -2;

interface Sym {
  shape: number[];
  /** The variable of each position of the last axis (after a flatten: of every feature), or FIXED / ZERO. */
  slots: Int32Array;
}

export type TensorRole = "kernel" | "bias" | "gamma" | "beta" | "moving_mean" | "moving_var" | "embedding";

/** One tensor axis of a group: unit u covers `indices[u]` along `axis` of `tensor`. */
export interface GroupMember {
  tensor: string;
  layer: string;
  layerKind: LayerKind;
  role: TensorRole;
  axis: number;
  /**
   * "out": the tensor produces the unit's values (a filter, its bias, BN γ/β/statistics, a depthwise filter, an
   * embedding's feature); zeroing the "out" members makes the channel exactly 0. "in": the tensor reads the unit (the
   * next layer's input slice), removed with it so nothing is left to multiply a removed channel.
   */
  side: "out" | "in";
  /** Running statistics are state, not trainable parameters. */
  state: boolean;
  indices: number[][];
}

export interface ChannelGroup {
  /** The first layer producing its units (a residual stream: its first conv). */
  name: string;
  /** Layers and shortcuts whose outputs are its units, in trace order. */
  producers: string[];
  size: number;
  members: GroupMember[];
  /** Why the group must keep every unit, or null when it may be pruned. */
  protectedBy: string | null;
}

export interface ShortcutNode {
  /** The shortcut's name: the width key of its source list. */
  name: string;
  source: readonly number[];
  /** Per input channel: its group and unit, or null for a network-input channel. */
  input: Array<{ group: number; unit: number } | null>;
  /** Per output position: its group and unit. */
  output: Array<{ group: number; unit: number }>;
}

export interface ChannelGraph {
  groups: ChannelGroup[];
  shortcuts: ShortcutNode[];
  /** The architecture's layer table, as ShapeOps gives it. */
  layers: LayerInfo[];
}

interface MemberEntry { v: number; tensor: string; layer: string; layerKind: LayerKind; role: TensorRole; axis: number; side: "out" | "in"; state: boolean; index: number }

class ChannelTracer implements Ops<Sym> {
  readonly shapes = new ShapeOps();
  readonly parent: number[] = [];
  /** Per variable: the producer (op index) and its position in that producer's output. */
  readonly producerOf: number[] = [];
  readonly positionOf: number[] = [];
  readonly producers: string[] = [];
  readonly entries: MemberEntry[] = [];
  readonly protect = new Map<number, string>();
  readonly shortcuts: Array<{ name: string; source: readonly number[]; input: Int32Array; output: Int32Array }> = [];

  find(v: number): number {
    while (this.parent[v] !== v) {
      this.parent[v] = this.parent[this.parent[v]];
      v = this.parent[v];
    }
    return v;
  }

  private union(a: number, b: number): void {
    const [ra, rb] = [this.find(a), this.find(b)];
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }

  private fresh(producer: string, n: number): Int32Array {
    const op = this.producers.push(producer) - 1;
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = this.parent.length;
      this.parent.push(v);
      this.producerOf.push(op);
      this.positionOf.push(i);
      out[i] = v;
    }
    return out;
  }

  private member(v: number, e: Omit<MemberEntry, "v">): void {
    if (v >= 0) this.entries.push({ v, ...e });
  }

  private kind(name: string): LayerKind {
    return this.shapes.layers.find((l) => l.name === name)!.kind;
  }

  conv(name: string, x: Sym, o: ConvOptions): Sym {
    const shape = this.shapes.conv(name, x.shape, o);
    const kernel = tensorNames.kernel(name);
    x.slots.forEach((v, i) => this.member(v, { tensor: kernel, layer: name, layerKind: "conv", role: "kernel", axis: 2, side: "in", state: false, index: i }));
    const slots = this.fresh(name, o.filters);
    slots.forEach((v, j) => {
      this.member(v, { tensor: kernel, layer: name, layerKind: "conv", role: "kernel", axis: 3, side: "out", state: false, index: j });
      if (o.bias ?? true) this.member(v, { tensor: tensorNames.bias(name), layer: name, layerKind: "conv", role: "bias", axis: 0, side: "out", state: false, index: j });
    });
    return { shape, slots };
  }

  depthwiseConv(name: string, x: Sym, o: DepthwiseOptions): Sym {
    const shape = this.shapes.depthwiseConv(name, x.shape, o);
    // One filter per channel: it produces its channel downstream, so it is an "out" member of the channel's unit.
    x.slots.forEach((v, c) => {
      this.member(v, { tensor: tensorNames.kernel(name), layer: name, layerKind: "depthwise", role: "kernel", axis: 2, side: "out", state: false, index: c });
      if (o.bias ?? true) this.member(v, { tensor: tensorNames.bias(name), layer: name, layerKind: "depthwise", role: "bias", axis: 0, side: "out", state: false, index: c });
    });
    return { shape, slots: x.slots };
  }

  dense(name: string, x: Sym, o: DenseOptions): Sym {
    const shape = this.shapes.dense(name, x.shape, o);
    const kernel = tensorNames.kernel(name);
    x.slots.forEach((v, i) => this.member(v, { tensor: kernel, layer: name, layerKind: "dense", role: "kernel", axis: 0, side: "in", state: false, index: i }));
    const slots = this.fresh(name, o.units);
    slots.forEach((v, j) => {
      this.member(v, { tensor: kernel, layer: name, layerKind: "dense", role: "kernel", axis: 1, side: "out", state: false, index: j });
      if (o.bias ?? true) this.member(v, { tensor: tensorNames.bias(name), layer: name, layerKind: "dense", role: "bias", axis: 0, side: "out", state: false, index: j });
    });
    return { shape, slots };
  }

  batchNorm(name: string, x: Sym): Sym {
    const shape = this.shapes.batchNorm(name, x.shape);
    const roles: Array<[TensorRole, string, boolean]> = [
      ["gamma", tensorNames.gamma(name), false], ["beta", tensorNames.beta(name), false],
      ["moving_mean", tensorNames.movingMean(name), true], ["moving_var", tensorNames.movingVar(name), true],
    ];
    x.slots.forEach((v, c) => {
      for (const [role, tensor, state] of roles) this.member(v, { tensor, layer: name, layerKind: "batchnorm", role, axis: 0, side: "out", state, index: c });
    });
    return { shape, slots: x.slots };
  }

  layerNorm(name: string, x: Sym): Sym {
    const shape = this.shapes.layerNorm(name, x.shape);
    x.slots.forEach((v, c) => {
      if (v >= 0) this.protect.set(v, `layer norm ${name} normalises over all its features`);
      this.member(v, { tensor: tensorNames.gamma(name), layer: name, layerKind: "layernorm", role: "gamma", axis: 0, side: "out", state: false, index: c });
      this.member(v, { tensor: tensorNames.beta(name), layer: name, layerKind: "layernorm", role: "beta", axis: 0, side: "out", state: false, index: c });
    });
    return { shape, slots: x.slots };
  }

  relu(x: Sym): Sym { return x; }
  gelu(x: Sym): Sym { return x; }

  avgPool(x: Sym, size: number, stride = size): Sym {
    return { shape: this.shapes.avgPool(x.shape, size, stride), slots: x.slots };
  }

  maxPool(x: Sym, size: number, stride = size): Sym {
    return { shape: this.shapes.maxPool(x.shape, size, stride), slots: x.slots };
  }

  globalAvgPool(x: Sym): Sym {
    return { shape: this.shapes.globalAvgPool(x.shape), slots: x.slots };
  }

  flatten(x: Sym): Sym {
    const shape = this.shapes.flatten(x.shape);
    const c = x.slots.length;
    // NHWC flattening: feature (y·w + x)·c + ch is channel ch at one position.
    const slots = new Int32Array(shape[0]);
    for (let i = 0; i < slots.length; i++) slots[i] = x.slots[i % c];
    return { shape, slots };
  }

  add(a: Sym, b: Sym): Sym {
    const shape = this.shapes.add(a.shape, b.shape);
    const slots = new Int32Array(a.slots.length);
    for (let i = 0; i < slots.length; i++) {
      const [x, y] = [a.slots[i], b.slots[i]];
      if (x >= 0 && y >= 0) this.union(x, y);
      else if ((x === FIXED && y >= 0) || (y === FIXED && x >= 0)) this.protect.set(Math.max(x, y), "added to the network input");
      slots[i] = x >= 0 ? x : y >= 0 ? y : x === FIXED || y === FIXED ? FIXED : ZERO;
    }
    return { shape, slots };
  }

  zeroPadShortcut(name: string, x: Sym, o: ZeroPadShortcutOptions): Sym {
    const shape = this.shapes.zeroPadShortcut(name, x.shape, o);
    const slots = this.fresh(name, o.source.length);
    this.shortcuts.push({ name, source: [...o.source], input: x.slots, output: slots });
    return { shape, slots };
  }

  toTokens(x: Sym): Sym { return { shape: this.shapes.toTokens(x.shape), slots: x.slots }; }

  classToken(name: string, x: Sym): Sym {
    const shape = this.shapes.classToken(name, x.shape);
    x.slots.forEach((v, c) => this.member(v, { tensor: tensorNames.embedding(name), layer: name, layerKind: "embedding", role: "embedding", axis: 1, side: "out", state: false, index: c }));
    return { shape, slots: x.slots };
  }

  positionEmbedding(name: string, x: Sym): Sym {
    const shape = this.shapes.positionEmbedding(name, x.shape);
    x.slots.forEach((v, c) => this.member(v, { tensor: tensorNames.embedding(name), layer: name, layerKind: "embedding", role: "embedding", axis: 1, side: "out", state: false, index: c }));
    return { shape, slots: x.slots };
  }

  takeToken(x: Sym, index: number): Sym { return { shape: this.shapes.takeToken(x.shape, index), slots: x.slots }; }

  attention(name: string, q: Sym, k: Sym, v: Sym, o: AttentionOptions): Sym {
    const shape = this.shapes.attention(name, q.shape, k.shape, v.shape, o);
    const headDim = q.slots.length / o.heads;
    for (let h = 0; h < o.heads; h++) {
      const vars: number[] = [];
      for (let j = h * headDim; j < (h + 1) * headDim; j++) vars.push(q.slots[j], k.slots[j], v.slots[j]);
      if (vars.some((x) => x < 0)) throw new Error(`${name}: q, k and v must come from layers of their own (head ${h})`);
      for (const x of vars) this.union(vars[0], x);
    }
    return { shape, slots: v.slots };
  }
}

/** Traces `arch` on an input of this shape: its channel groups, shortcut maps and layer table. */
export function channelGraph(arch: ArchDef, inputShape: readonly number[], numClasses: number): ChannelGraph {
  const t = new ChannelTracer();
  const out = arch.build(t, { shape: [...inputShape], slots: new Int32Array(inputShape[inputShape.length - 1]).fill(FIXED) }, numClasses);
  out.slots.forEach((v) => { if (v >= 0) t.protect.set(v, "the network's outputs"); });

  // Groups: classes of unified variables (units), joined when one producer created them.
  const classOf = (v: number) => t.find(v);
  const groupParent = new Map<number, number>();
  const gfind = (c: number): number => {
    let r = c;
    while (groupParent.get(r)! !== r) r = groupParent.get(r)!;
    groupParent.set(c, r);
    return r;
  };
  for (let v = 0; v < t.parent.length; v++) if (!groupParent.has(classOf(v))) groupParent.set(classOf(v), classOf(v));
  const firstClassOfProducer = new Map<number, number>();
  for (let v = 0; v < t.parent.length; v++) {
    const op = t.producerOf[v];
    const c = classOf(v);
    const first = firstClassOfProducer.get(op);
    if (first === undefined) firstClassOfProducer.set(op, c);
    else {
      const [ra, rb] = [gfind(first), gfind(c)];
      if (ra !== rb) groupParent.set(Math.max(ra, rb), Math.min(ra, rb));
    }
  }

  // Group ids in trace order of their first producer; units ordered by position in that producer's output.
  const groupIdOf = new Map<number, number>();
  const groupVars: number[][] = [];
  for (let v = 0; v < t.parent.length; v++) {
    const g = gfind(classOf(v));
    if (!groupIdOf.has(g)) { groupIdOf.set(g, groupVars.length); groupVars.push([]); }
    groupVars[groupIdOf.get(g)!].push(v);
  }
  const unitOf = new Map<number, { group: number; unit: number }>();
  const groups: ChannelGroup[] = groupVars.map((vars, gi) => {
    const firstOp = t.producerOf[vars[0]];
    const classes: number[] = [];
    for (const v of vars) if (t.producerOf[v] === firstOp && !classes.includes(classOf(v))) classes.push(classOf(v));
    const all = new Set(vars.map(classOf));
    if (classes.length !== all.size) throw new Error(`channel graph: a unit of group ${t.producers[firstOp]} has no channel in that layer's output`);
    classes.forEach((c, u) => unitOf.set(c, { group: gi, unit: u }));
    const producers = [...new Set(vars.map((v) => t.producers[t.producerOf[v]]))];
    const protectedBy = vars.map((v) => t.protect.get(v)).find((r) => r !== undefined) ?? null;
    return { name: t.producers[firstOp], producers, size: classes.length, members: [], protectedBy };
  });

  // Members: each (tensor, axis, side) of a group, with the indices of every unit.
  const memberIndex = new Map<string, GroupMember>();
  for (const e of t.entries) {
    const { group, unit } = unitOf.get(classOf(e.v))!;
    const key = `${group}|${e.tensor}|${e.axis}`;
    let m = memberIndex.get(key);
    if (!m) {
      m = { tensor: e.tensor, layer: e.layer, layerKind: e.layerKind, role: e.role, axis: e.axis, side: e.side, state: e.state, indices: Array.from({ length: groups[group].size }, () => []) };
      memberIndex.set(key, m);
      groups[group].members.push(m);
    }
    m.indices[unit].push(e.index);
  }

  const shortcuts: ShortcutNode[] = t.shortcuts.map((s) => ({
    name: s.name, source: s.source,
    input: [...s.input].map((v) => (v >= 0 ? unitOf.get(classOf(v))! : null)),
    output: [...s.output].map((v) => unitOf.get(classOf(v))!),
  }));
  return { groups, shortcuts, layers: t.shapes.layers };
}

/**
 * The layers (and shortcuts) whose outputs the groups are made of, in the layer table's order, shortcuts after: the
 * names a method's layer-list hyperparameter (`skip`) may use.
 */
export function channelLayerNames(graph: ChannelGraph): string[] {
  const order = new Map(graph.layers.map((l, i) => [l.name, i]));
  const names = [...new Set(graph.groups.flatMap((g) => g.producers))];
  return names.sort((a, b) => (order.get(a) ?? Infinity) - (order.get(b) ?? Infinity) || names.indexOf(a) - names.indexOf(b));
}

/** Per group, which units are kept (true) or removed (false). */
export type UnitKeep = ReadonlyArray<ReadonlyArray<boolean>>;

/**
 * The shortcut maps of the masked model: an output position whose unit is removed reads −1 (zeros), so the removed
 * channel of the residual stream is exactly 0 even where the shortcut would carry a kept input channel into it.
 */
export function maskedShortcuts(graph: ChannelGraph, keep: UnitKeep): Widths {
  return Object.fromEntries(graph.shortcuts.map((s) => [s.name, s.source.map((src, j) => {
    const o = s.output[j];
    return keep[o.group][o.unit] ? src : -1;
  })]));
}

/** Which width sizes which group, and the shortcut maps to rewrite: probed once per architecture and graph. */
export interface WidthPlan {
  arch: ArchDef;
  graph: ChannelGraph;
  /** Width key -> the group whose unit count it is. */
  sizes: Map<string, number>;
}

/**
 * Which width sizes which group. Found by probing the published architecture, one width + 1 at a time: the layers
 * whose outputs grow are the ones it sizes, and the width sizes their group when its current value is the group's
 * unit count (a ViT block's `heads` sizes its heads group; its `head_dim`, the width of each head, does not). So
 * nothing here knows an architecture.
 */
export function widthPlan(arch: ArchDef, graph: ChannelGraph, inputShape: readonly number[], numClasses: number): WidthPlan {
  const base = arch.published();
  const table = (a: ArchDef) => {
    const ops = new ShapeOps();
    a.build(ops, [...inputShape], numClasses);
    return new Map(ops.layers.map((l) => [l.name, outputSignature(l)]));
  };
  const before = table(base);
  const groupOfProducer = new Map<string, number>();
  graph.groups.forEach((g, i) => g.producers.forEach((p) => groupOfProducer.set(p, i)));
  const sizes = new Map<string, number>();
  for (const [key, value] of Object.entries(base.widths)) {
    if (typeof value !== "number") continue;
    let after: Map<string, string>;
    try {
      after = table(base.withWidths({ [key]: value + 1 }));
    } catch {
      continue; // a width that cannot grow alone (it must match another) sizes no group by itself
    }
    const touched = new Set<number>();
    for (const [layer, sig] of after) {
      if (sig === before.get(layer)) continue;
      const g = groupOfProducer.get(layer);
      if (g !== undefined) touched.add(g);
    }
    if (touched.size !== 1) continue;
    const g = [...touched][0];
    if (arch.widths[key] === graph.groups[g].size) sizes.set(key, g);
  }
  return { arch, graph, sizes };
}

/** Groups whose units no width sizes: they can be masked but not compacted, so they are not offered for pruning. */
export function unsizedGroups(plan: WidthPlan): Set<number> {
  const sized = new Set(plan.sizes.values());
  return new Set(plan.graph.groups.map((_, i) => i).filter((i) => !sized.has(i)));
}

/**
 * The widths of the compacted architecture: every width that sizes a group becomes its number of kept units, and
 * every shortcut's source list maps the kept output positions to the kept input channels (−1 where the source
 * channel was removed: it was exactly 0 in the masked model).
 */
export function compactWidths(plan: WidthPlan, keep: UnitKeep): Widths {
  const { graph } = plan;
  const changes: Record<string, number | readonly number[]> = {};
  const sized = new Set<number>();
  for (const [key, g] of plan.sizes) {
    sized.add(g);
    if (keep[g].some((k) => !k)) changes[key] = keep[g].filter(Boolean).length;
  }
  graph.groups.forEach((g, i) => {
    if (keep[i].some((k) => !k) && !sized.has(i)) throw new Error(`${plan.arch.name}: no width of the architecture sizes the units of group ${g.name}, so they cannot be removed`);
  });
  const newIndex = (group: number, unit: number) => keep[group].slice(0, unit).filter(Boolean).length;
  for (const s of graph.shortcuts) {
    changes[s.name] = s.source.flatMap((src, j) => {
      const o = s.output[j];
      if (!keep[o.group][o.unit]) return [];
      if (src < 0) return [-1];
      const from = s.input[src];
      if (from === null) return [src];
      return [keep[from.group][from.unit] ? newIndex(from.group, from.unit) : -1];
    });
  }
  return changes;
}

/** What a width can change about a layer's outputs (not its inputs, which follow from the layer before). */
function outputSignature(l: LayerInfo): string {
  switch (l.kind) {
    case "conv": return String(l.weightShape[3]);
    case "dense": return String(l.weightShape[1]);
    case "attention": return l.weightShape.join("x");
    default: return "";
  }
}
