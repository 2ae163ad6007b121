/**
 * Channel gates as extra trainable parameters (You et al. 2019's Gate Decorator): a gate φ per output channel of a
 * layer multiplies that channel's output, and training updates φ beside the other parameters. Two placements:
 * - "norm", a batch norm's output (their GatedBatchNorm2d): y = φ·(x̂·1 + b), the norm's own scale fixed to 1 and its
 *   shift b trained under the gate. Taken from a trained γ, β as their `extract_from_bn` does: φ = γ, b = clamp(β/γ,
 *   −10, 10) (b = 0 where γ = 0), so the output is unchanged except where the clamp bites.
 * - "output", a conv or dense layer's output where no batch norm follows (their appendix B, gated convolution):
 *   y = φ·(W'∗x + b'), φ = 1 and W' = W, b' = b to start with.
 *
 * The model keeps holding an ordinary network: after every step its γ, β (or kernel, bias) are set to the gated
 * product, φ·1 and φ·b (φ·W', φ·b') — their `melt` — so everything that reads the model between steps (validation,
 * scoring, the prune step, measurements) needs no knowledge of gates, and the forward pass of a gated phase is
 * computed from the gate variables through the same products (`view`), so ∂L/∂φ is autodiff's, exact. A gate set
 * lives across several training phases (the gates persist, as their GBN modules do between ticks and tocks); masks
 * changed between phases are taken up by `begin`.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LayerKind } from "../core/types.js";
import { tensorNames } from "../archs/ops.js";
import type { MaskSet } from "./masks.js";
import type { Model } from "./model.js";

export interface GatePlacement {
  layer: string;
  at: "norm" | "output";
}

/** The name under which a gate's variable is trained, penalised (loss term role "gate") and reported. */
export const gateTensor = (layer: string) => `${layer}/gate`;

/** Shift b of a batch norm under its gate: the authors clamp β/γ to ±10 so that a near-zero γ cannot blow it up. */
const BIAS_CLAMP = 10;

interface Gate {
  placement: GatePlacement;
  phi: tf.Variable;
  /** Model tensor name → the variable trained in its place (b for β; W', b' for a gated layer's kernel and bias). */
  scaled: Map<string, tf.Variable>;
  /**
   * "norm": the fixed scale of x̂, 1 per channel, 0 where γ is masked (so a pruned channel stays 0 whatever φ does);
   * always a product, never φ itself, so the model's γ never shares memory with the gate (updates are in place).
   */
  unit: tf.Tensor | null;
}

export class GateSet {
  private readonly gates: Gate[] = [];

  constructor(private readonly model: Model, placements: readonly GatePlacement[]) {
    const kinds = new Map(model.layers.map((l) => [l.name, l.kind]));
    // A copy of the values, never the tensor: a variable made from another shares its memory, which the fused
    // optimizer updates in place.
    const id = ++gateSets;
    const variable = (t: tf.Tensor, name: string) => {
      const copy = tf.tensor(t.dataSync().slice(), t.shape);
      const v = tf.variable(copy, true, `gate${id}:${name}`);
      copy.dispose();
      return v;
    };
    for (const placement of placements) {
      const { layer, at } = placement;
      const kind = kinds.get(layer);
      const param = (name: string) => {
        const v = model.params.get(name);
        if (!v) throw new Error(`gate on ${layer}: the model has no tensor ${name}`);
        return v;
      };
      let gate: Gate;
      if (at === "norm") {
        if (kind !== "batchnorm") throw new Error(`a norm gate needs a batch norm, and ${layer} is ${kind ?? "not a layer"}`);
        const gamma = param(tensorNames.gamma(layer));
        const beta = param(tensorNames.beta(layer));
        const b = tf.tidy(() => {
          const zero = tf.equal(gamma, 0);
          return tf.where(zero, tf.zerosLike(beta), tf.clipByValue(tf.div(beta, tf.where(zero, tf.onesLike(gamma), gamma)), -BIAS_CLAMP, BIAS_CLAMP));
        });
        gate = { placement, phi: variable(gamma, gateTensor(layer)), scaled: new Map([[tensorNames.beta(layer), variable(b, tensorNames.beta(layer))]]), unit: tf.onesLike(gamma) };
        b.dispose();
      } else {
        if (kind !== "conv" && kind !== "dense") throw new Error(`an output gate needs a conv or dense layer, and ${layer} is ${kind ?? "not a layer"}`);
        const kernel = param(tensorNames.kernel(layer));
        const scaled = new Map([[tensorNames.kernel(layer), variable(kernel, tensorNames.kernel(layer))]]);
        const bias = model.params.get(tensorNames.bias(layer));
        if (bias) scaled.set(tensorNames.bias(layer), variable(bias, tensorNames.bias(layer)));
        const ones = tf.ones([kernel.shape[kernel.shape.length - 1]]);
        gate = { placement, phi: variable(ones, gateTensor(layer)), scaled, unit: null };
        ones.dispose();
      }
      this.gates.push(gate);
    }
    this.sync();
  }

  /** Before a training phase: the current masks zero the trained stand-ins of masked tensors (and a norm's fixed scale). */
  begin(masks: MaskSet): void {
    for (const g of this.gates) {
      for (const [name, v] of g.scaled) {
        const mask = masks.get(name);
        if (mask) tf.tidy(() => v.assign(tf.mul(v, mask)));
      }
      if (g.placement.at === "norm") {
        g.unit?.dispose();
        const mask = masks.get(tensorNames.gamma(g.placement.layer));
        g.unit = tf.keep(mask ? mask.clone() : tf.ones(g.phi.shape));
      }
    }
    this.sync();
  }

  /**
   * What the training step updates, by name: every gate φ (`gateTensor`), the stand-ins of the gated tensors under
   * those tensors' names (so their masks apply), and the model's other parameters; a layer of a `frozen` kind
   * contributes nothing, gated or not (its gate still trains).
   */
  variables(frozen: readonly LayerKind[] = []): Map<string, tf.Variable> {
    const kinds = new Map(this.model.layers.map((l) => [l.name, l.kind]));
    const isFrozen = (name: string) => frozen.includes(kinds.get(name.slice(0, name.lastIndexOf("/")))!);
    const replaced = new Set(this.gates.flatMap((g) => [...g.scaled.keys(), ...(g.placement.at === "norm" ? [tensorNames.gamma(g.placement.layer)] : [])]));
    const out = new Map<string, tf.Variable>();
    for (const [name, v] of this.model.params) if (!replaced.has(name) && !isFrozen(name)) out.set(name, v);
    for (const g of this.gates) {
      out.set(gateTensor(g.placement.layer), g.phi);
      for (const [name, v] of g.scaled) if (!isFrozen(name)) out.set(name, v);
    }
    return out;
  }

  /**
   * The model's parameters as the gated network computes them, differentiable in the gate variables: call it inside
   * the gradient's scope. Also holds every gate under `gateTensor(layer)`, for a penalty on the gates.
   */
  view(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>(this.model.params);
    for (const g of this.gates) {
      for (const [name, t] of this.products(g)) out.set(name, t);
      out.set(gateTensor(g.placement.layer), g.phi);
    }
    return out;
  }

  /** The model's tensors set to the gated products (their `melt`): after every step, and when a gate set starts. */
  sync(): void {
    tf.tidy(() => {
      for (const g of this.gates) for (const [name, t] of this.products(g)) this.model.params.get(name)!.assign(t);
    });
  }

  /** The current gate values per gated layer. */
  values(): Map<string, Float32Array> {
    return new Map(this.gates.map((g) => [g.placement.layer, g.phi.dataSync() as Float32Array]));
  }

  dispose(): void {
    for (const g of this.gates) {
      g.phi.dispose();
      g.unit?.dispose();
      for (const v of g.scaled.values()) v.dispose();
    }
    this.gates.length = 0;
  }

  private products(g: Gate): Array<[string, tf.Tensor]> {
    // The gate scales the last axis: a kernel's output channels, a bias's or norm's channels.
    const out: Array<[string, tf.Tensor]> = [...g.scaled].map(([name, v]) => [name, tf.mul(v, g.phi)]);
    if (g.unit) out.push([tensorNames.gamma(g.placement.layer), tf.mul(g.phi, g.unit)]);
    return out;
  }
}

let gateSets = 0;
