/** Optimizers and learning-rate schedules, written out so the LR can change every step and masks apply cleanly. */
import * as tf from "@tensorflow/tfjs-core";
import type { TrainConfig } from "../grid/types.js";

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
  /** Update `params` in place with `grads` at learning rate `lr`. Disposes nothing it did not create. */
  step(params: Map<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number): void;
  dispose(): void;
}

/** SGD with (PyTorch-style) momentum and L2 weight decay added to the gradient. */
export function sgd(momentum: number, weightDecay: number): Optimizer {
  const velocity = new Map<string, tf.Variable>();
  return {
    step(params, grads, lr) {
      tf.tidy(() => {
        for (const [name, w] of params) {
          let g = grads[name];
          if (!g) continue;
          if (weightDecay > 0) g = tf.add(g, tf.mul(w, weightDecay));
          if (momentum > 0) {
            let v = velocity.get(name);
            if (!v) { v = tf.variable(tf.zerosLike(w), false); velocity.set(name, v); }
            v.assign(tf.add(tf.mul(v, momentum), g));
            g = v;
          }
          w.assign(tf.sub(w, tf.mul(g, lr)));
        }
      });
    },
    dispose() { for (const v of velocity.values()) v.dispose(); velocity.clear(); },
  };
}

/** Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient (not AdamW). */
export function adam(weightDecay: number, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8): Optimizer {
  const m = new Map<string, tf.Variable>();
  const v = new Map<string, tf.Variable>();
  let t = 0;
  return {
    step(params, grads, lr) {
      t++;
      const correction = Math.sqrt(1 - Math.pow(beta2, t)) / (1 - Math.pow(beta1, t));
      tf.tidy(() => {
        for (const [name, w] of params) {
          let g = grads[name];
          if (!g) continue;
          if (weightDecay > 0) g = tf.add(g, tf.mul(w, weightDecay));
          if (!m.has(name)) { m.set(name, tf.variable(tf.zerosLike(w), false)); v.set(name, tf.variable(tf.zerosLike(w), false)); }
          const mv = m.get(name)!, vv = v.get(name)!;
          mv.assign(tf.add(tf.mul(mv, beta1), tf.mul(g, 1 - beta1)));
          vv.assign(tf.add(tf.mul(vv, beta2), tf.mul(tf.square(g), 1 - beta2)));
          w.assign(tf.sub(w, tf.div(tf.mul(mv, lr * correction), tf.add(tf.sqrt(vv), epsilon))));
        }
      });
    },
    dispose() { for (const x of [...m.values(), ...v.values()]) x.dispose(); m.clear(); v.clear(); },
  };
}

export function makeOptimizer(config: TrainConfig): Optimizer {
  return config.optimizer === "adam" ? adam(config.weightDecay) : sgd(config.momentum, config.weightDecay);
}
