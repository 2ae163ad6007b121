/**
 * Optimizers and learning-rate schedules, written out so the LR can change every step and masks apply cleanly.
 * Each update is one fused kernel per parameter tensor (src/backend/fused-ops.ts): the active backend runs it
 * natively where it can, in place in the variables' own memory, or as tfjs ops.
 */
import * as tf from "@tensorflow/tfjs-core";
import { adamUpdate, sgdUpdate } from "../backend/fused-ops.js";
import type { TrainConfig } from "../core/types.js";
import type { MaskSet } from "./masks.js";

/**
 * Learning rate at a fractional epoch position (epoch + step/stepsPerEpoch): the schedule's value, times a linear
 * warmup factor min(1, position / warmupEpochs) when warmup is on (as open_lth multiplies its warmup into the
 * schedule), so the first step of a warmed-up phase has LR 0 and epoch k of N starts at lr·k/N.
 */
export function learningRate(config: TrainConfig, epochPosition: number): number {
  const scheduled = scheduledRate(config, epochPosition);
  return config.warmupEpochs > 0 && epochPosition < config.warmupEpochs ? scheduled * (epochPosition / config.warmupEpochs) : scheduled;
}

function scheduledRate(config: TrainConfig, epochPosition: number): number {
  switch (config.schedule) {
    case "constant":
      return config.lr;
    case "step":
      return config.lr * Math.pow(config.gamma, Math.floor(epochPosition / config.stepEpochs));
    case "cosine":
      return config.epochs === 0 ? config.lr : 0.5 * config.lr * (1 + Math.cos(Math.PI * Math.min(1, epochPosition / config.epochs)));
  }
}

export interface Optimizer {
  /**
   * Update `params` in place with `grads` at learning rate `lr`. With `masks`, the gradients of masked tensors
   * are masked first (so optimizer state never grows at pruned weights) and the new weights are multiplied by
   * their mask (pruned weights exactly zero after the step). Disposes nothing it did not create.
   */
  step(params: Map<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number, masks?: MaskSet): void;
  /** Copies of a tensor's optimizer state (SGD: [velocity]; Adam: [m, v]); empty before its first step. */
  state(name: string): Float32Array[];
  /** Zero the state of tensor `name` where `where` is 1 (weights that are regrown or rewound start fresh). */
  resetState(name: string, where: tf.Tensor): void;
  dispose(): void;
  /** Present on SGD: its settings and state, for a step that updates every tensor in one kernel (fused-step.ts). */
  fusedSgd?: FusedSgd;
}

export interface FusedSgd {
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  /** The velocity of tensor `name` (created at zero as `step` creates it), or null without momentum. */
  velocity(name: string, w: tf.Variable): tf.Variable | null;
}

function zeroWhere(state: tf.Variable, where: tf.Tensor): void {
  tf.tidy(() => state.assign(tf.mul(state, tf.sub(1, where))));
}

/** Optimizer state for `w`, starting at zero, outside any tidy scope's reach. */
function zeros(w: tf.Variable): tf.Variable {
  return tf.tidy(() => tf.variable(tf.zerosLike(w), false));
}

const copy = (t: tf.Tensor) => Float32Array.from(t.dataSync());

/** SGD with (PyTorch-style) momentum, optionally Nesterov's, and L2 weight decay added to the gradient. */
export function sgd(momentum: number, weightDecay: number, nesterov = false): Optimizer {
  const velocity = new Map<string, tf.Variable>();
  const velocityOf = (name: string, w: tf.Variable): tf.Variable | null => {
    if (momentum <= 0) return null;
    let v = velocity.get(name);
    if (!v) velocity.set(name, (v = zeros(w)));
    return v;
  };
  return {
    step(params, grads, lr, masks) {
      for (const [name, w] of params) {
        const g = grads[name];
        if (!g) continue;
        sgdUpdate(w, g, velocityOf(name, w), masks?.get(name), { lr, momentum, weightDecay, nesterov });
      }
    },
    fusedSgd: { momentum, weightDecay, nesterov, velocity: velocityOf },
    state(name) {
      const v = velocity.get(name);
      return v ? [copy(v)] : [];
    },
    resetState(name, where) {
      const v = velocity.get(name);
      if (v) zeroWhere(v, where);
    },
    dispose() { for (const v of velocity.values()) v.dispose(); velocity.clear(); },
  };
}

/** Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient (not AdamW). */
export function adam(weightDecay: number, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8): Optimizer {
  const moments = new Map<string, [tf.Variable, tf.Variable]>();
  let t = 0;
  return {
    step(params, grads, lr, masks) {
      t++;
      const correction = Math.sqrt(1 - Math.pow(beta2, t)) / (1 - Math.pow(beta1, t));
      for (const [name, w] of params) {
        const g = grads[name];
        if (!g) continue;
        let mv = moments.get(name);
        if (!mv) moments.set(name, (mv = [zeros(w), zeros(w)]));
        adamUpdate(w, g, mv[0], mv[1], masks?.get(name), { lr: lr * correction, beta1, beta2, epsilon, weightDecay });
      }
    },
    state(name) {
      const mv = moments.get(name);
      return mv ? mv.map(copy) : [];
    },
    resetState(name, where) {
      for (const s of moments.get(name) ?? []) zeroWhere(s, where);
    },
    dispose() { for (const x of moments.values()) x.forEach((v) => v.dispose()); moments.clear(); },
  };
}

export function makeOptimizer(config: TrainConfig): Optimizer {
  if (config.optimizer === "adam") {
    // The grid refuses this; a config built elsewhere must not have it silently ignored.
    if (config.nesterov) throw new Error("nesterov is an SGD setting; it cannot be used with adam");
    return adam(config.weightDecay);
  }
  if (config.nesterov && config.momentum === 0) throw new Error("nesterov needs momentum > 0");
  return sgd(config.momentum, config.weightDecay, config.nesterov);
}
