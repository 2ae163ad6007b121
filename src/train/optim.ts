/**
 * Optimizers and learning-rate schedules, written out so the LR can change every step and masks apply cleanly.
 *
 * Two implementations of each update, numerically the same (float32, operation for operation):
 * - fused, on the native backend: one native pass per parameter tensor computes the masked gradient, weight decay,
 *   the state update and the masked new weights, in place in the variable's own buffer when nothing else can see
 *   that buffer (else copy-on-write, else a plain assign); optimizer state lives in plain Float32Arrays;
 * - tf ops, on every other backend (and as the fallback).
 */
import * as tf from "@tensorflow/tfjs-core";
import { activeNativeBackend, getNativeAddon, type NativeBackend } from "../backend/native/index.js";
import type { NativeAddon } from "../backend/native/addon.js";
import type { TrainConfig } from "../grid/types.js";
import type { MaskSet } from "./masks.js";

/** Learning rate at a fractional epoch position (epoch + step/stepsPerEpoch). */
export function learningRate(config: TrainConfig, epochPosition: number): number {
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
  dispose(): void;
}

export interface OptimizerOptions {
  /** Use the fused native update when the native backend is active (default true). */
  fused?: boolean;
}

interface NativeCtx { backend: NativeBackend; addon: NativeAddon }

function nativeCtx(fused: boolean): NativeCtx | null {
  if (!fused) return null;
  const backend = activeNativeBackend();
  const addon = getNativeAddon();
  return backend && addon?.sgdUpdate && addon.adamUpdate ? { backend, addon } : null;
}

/**
 * Runs `update(out)` for a variable: `out` is the variable's own array when safe, else a fresh one that is then
 * installed under the variable's data (copy on write), else (data shared with another tensor) assigned as a new
 * tensor. Returns false when the variable's or gradient's values are not float32 arrays of the native backend.
 */
function fusedWrite(ctx: NativeCtx, w: tf.Variable, update: (w: Float32Array, out: Float32Array) => void): boolean {
  const wv = ctx.backend.peek(w.dataId);
  if (!wv) return false;
  const target = ctx.backend.updatable(w.dataId);
  if (target) {
    update(wv, target);
    ctx.backend.commitValues(w.dataId, target);
  } else {
    const out = ctx.backend.alloc(wv.length);
    update(wv, out);
    tf.tidy(() => w.assign(tf.tensor(out, w.shape, "float32")));
  }
  return true;
}

/** The float32 arrays (gradient, mask) a fused update reads, or null to take the tf-op path. */
function fusedInputs(ctx: NativeCtx, w: tf.Variable, g: tf.Tensor, mask: tf.Tensor | undefined) {
  if (w.dtype !== "float32" || g.dtype !== "float32" || g.size !== w.size) return null;
  const gv = ctx.backend.peek(g.dataId);
  const mv = mask ? ctx.backend.peek(mask.dataId) : null;
  if (!gv || (mask && (!mv || mv.length !== w.size))) return null;
  return { gv, mv };
}

/** SGD with (PyTorch-style) momentum and L2 weight decay added to the gradient. */
export function sgd(momentum: number, weightDecay: number, opts: OptimizerOptions = {}): Optimizer {
  const velocity = new Map<string, tf.Variable>();
  const nativeVelocity = new Map<string, Float32Array>();
  return {
    step(params, grads, lr, masks) {
      const ctx = nativeCtx(opts.fused ?? true);
      const slow: string[] = [];
      for (const [name, w] of params) {
        const g = grads[name];
        if (!g) continue;
        const mask = masks?.get(name);
        const inputs = ctx && !velocity.has(name) ? fusedInputs(ctx, w, g, mask) : null;
        if (ctx && inputs) {
          let v: Float32Array | null = null;
          if (momentum > 0) {
            v = nativeVelocity.get(name) ?? null;
            if (!v) nativeVelocity.set(name, (v = new Float32Array(w.size)));
          }
          const ok = fusedWrite(ctx, w, (wv, out) =>
            ctx.addon.sgdUpdate!(wv, inputs.gv, v, inputs.mv, out, lr, momentum, weightDecay > 0 ? weightDecay : 0));
          if (ok) continue;
        }
        slow.push(name);
      }
      if (slow.length === 0) return;
      tf.tidy(() => {
        for (const name of slow) {
          const w = params.get(name)!;
          const mask = masks?.get(name);
          let g = grads[name];
          if (mask) g = tf.mul(g, mask);
          if (weightDecay > 0) g = tf.add(g, tf.mul(w, weightDecay));
          if (momentum > 0) {
            let v = velocity.get(name);
            if (!v) {
              const prior = nativeVelocity.get(name);
              v = tf.variable(prior ? tf.tensor(prior, w.shape) : tf.zerosLike(w), false);
              nativeVelocity.delete(name);
              velocity.set(name, v);
            }
            v.assign(tf.add(tf.mul(v, momentum), g));
            g = v;
          }
          const next = tf.sub(w, tf.mul(g, lr));
          w.assign(mask ? tf.mul(next, mask) : next);
        }
      });
    },
    state(name) {
      const nv = nativeVelocity.get(name);
      if (nv) return [nv.slice()];
      const v = velocity.get(name);
      return v ? [Float32Array.from(v.dataSync())] : [];
    },
    dispose() { for (const v of velocity.values()) v.dispose(); velocity.clear(); nativeVelocity.clear(); },
  };
}

/** Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient (not AdamW). */
export function adam(weightDecay: number, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8, opts: OptimizerOptions = {}): Optimizer {
  const m = new Map<string, tf.Variable>();
  const v = new Map<string, tf.Variable>();
  const nativeState = new Map<string, [Float32Array, Float32Array]>();
  let t = 0;
  return {
    step(params, grads, lr, masks) {
      t++;
      const correction = Math.sqrt(1 - Math.pow(beta2, t)) / (1 - Math.pow(beta1, t));
      const ctx = nativeCtx(opts.fused ?? true);
      const slow: string[] = [];
      for (const [name, w] of params) {
        const g = grads[name];
        if (!g) continue;
        const mask = masks?.get(name);
        const inputs = ctx && !m.has(name) ? fusedInputs(ctx, w, g, mask) : null;
        if (ctx && inputs) {
          let st = nativeState.get(name);
          if (!st) nativeState.set(name, (st = [new Float32Array(w.size), new Float32Array(w.size)]));
          const [ms, vs] = st;
          const ok = fusedWrite(ctx, w, (wv, out) =>
            ctx.addon.adamUpdate!(wv, inputs.gv, ms, vs, inputs.mv, out, lr * correction, beta1, beta2, 1 - beta1, 1 - beta2,
              epsilon, weightDecay > 0 ? weightDecay : 0));
          if (ok) continue;
        }
        slow.push(name);
      }
      if (slow.length === 0) return;
      tf.tidy(() => {
        for (const name of slow) {
          const w = params.get(name)!;
          const mask = masks?.get(name);
          let g = grads[name];
          if (mask) g = tf.mul(g, mask);
          if (weightDecay > 0) g = tf.add(g, tf.mul(w, weightDecay));
          if (!m.has(name)) {
            const prior = nativeState.get(name);
            m.set(name, tf.variable(prior ? tf.tensor(prior[0], w.shape) : tf.zerosLike(w), false));
            v.set(name, tf.variable(prior ? tf.tensor(prior[1], w.shape) : tf.zerosLike(w), false));
            nativeState.delete(name);
          }
          const mv = m.get(name)!, vv = v.get(name)!;
          mv.assign(tf.add(tf.mul(mv, beta1), tf.mul(g, 1 - beta1)));
          vv.assign(tf.add(tf.mul(vv, beta2), tf.mul(tf.square(g), 1 - beta2)));
          const next = tf.sub(w, tf.div(tf.mul(mv, lr * correction), tf.add(tf.sqrt(vv), epsilon)));
          w.assign(mask ? tf.mul(next, mask) : next);
        }
      });
    },
    state(name) {
      const ns = nativeState.get(name);
      if (ns) return ns.map((a) => a.slice());
      const a = m.get(name), b = v.get(name);
      return a && b ? [Float32Array.from(a.dataSync()), Float32Array.from(b.dataSync())] : [];
    },
    dispose() { for (const x of [...m.values(), ...v.values()]) x.dispose(); m.clear(); v.clear(); nativeState.clear(); },
  };
}

export function makeOptimizer(config: TrainConfig, opts: OptimizerOptions = {}): Optimizer {
  return config.optimizer === "adam" ? adam(config.weightDecay, 0.9, 0.999, 1e-8, opts) : sgd(config.momentum, config.weightDecay, opts);
}
