/**
 * When a training step may run as one kernel (src/backend/dense-step.ts) instead of through the gradient tape: a plain
 * dense stack trained by SGD with nothing that needs the taped step's intermediate values. The kernel leaves the same
 * weights, velocities, loss and hits as the taped step, bit for bit (test/dense-step.test.ts); it only skips the
 * engine's per-operation work, ~20 % of an MLP step.
 *
 * Whether it applies is decided from what the step needs, never from which method or architecture runs: the phase
 * must have no gradient hook, penalty, gates, soft masks, frozen layers or augmentation (set for the whole phase), and
 * each step must not hand its gradients to a hook. Each layer runs on the sparse kernels exactly
 * when the taped step would (sparseApplies, from the masks of that step: a schedule may change them between steps).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { DenseOptions, Ops } from "../archs/ops.js";
import { tensorNames } from "../archs/ops.js";
import { denseStackSgdStep, denseStepAvailable, type DenseStepLayer } from "../backend/dense-step.js";
import { fusedApplies } from "../backend/layer-ops.js";
import { sparseApplies } from "../backend/sparse-ops.js";
import type { MaskSet } from "./masks.js";
import type { Model } from "./model.js";
import type { FusedSgd } from "./optim.js";

/** Off: every step runs through the tape (for tests and benchmarks that compare the two). */
export const fusedStepSettings = { enabled: true };

/** A dense stack's layers in order: name and whether a ReLU follows; null when the architecture is anything else. */
export function denseStack(model: Model): Array<{ name: string; relu: boolean }> | null {
  // The build runs on an interpreter whose values are positions in the chain: 0 the input, i + 1 layer i's output.
  const layers: Array<{ name: string; relu: boolean }> = [];
  let plain = true;
  let flattened = false;
  const chain = {
    flatten(x: number): number {
      if (x !== 0 || flattened) plain = false;
      flattened = true;
      return 0;
    },
    dense(name: string, x: number, o: DenseOptions): number {
      if (!flattened || x !== layers.length || (o.bias ?? true) !== true || (o.activation !== undefined && o.activation !== "relu")) plain = false;
      layers.push({ name, relu: o.activation === "relu" });
      return layers.length;
    },
  };
  // Every other operation (and one added to Ops later) makes the network something else.
  const ops = new Proxy(chain, {
    get(target, prop) {
      if (prop === "flatten" || prop === "dense") return target[prop].bind(target);
      if (prop === "then") return undefined;
      return () => { plain = false; return -1; };
    },
  }) as unknown as Ops<number>;
  let out: number;
  try {
    out = model.arch.build(ops, 0, model.numClasses);
  } catch {
    return null;
  }
  if (!plain || layers.length === 0 || out !== layers.length || layers[layers.length - 1].relu) return null;
  // The model's trainable tensors are exactly the layers' kernels and biases, and it keeps no state.
  const names = new Set(layers.flatMap((l) => [tensorNames.kernel(l.name), tensorNames.bias(l.name)]));
  if (model.state.size > 0 || model.params.size !== names.size || ![...model.params.keys()].every((n) => names.has(n))) return null;
  return layers;
}

export interface FusedStep {
  /** Whether this step may run fused (per step: the sparse kernels' choice follows the current masks). */
  applies(wantsGradients: boolean): boolean;
  /** The ReLU units of a batch of `batch` (what the taped forward reports as reluUnits). */
  reluUnits(batch: number): number;
  /**
   * One step on `rows` of the split: tensors updated in place, and the epoch's running sums of batch size × loss, of
   * top-1 hits and (when given: a step that counts dead units) of ReLU zeros returned with this batch's added (new
   * tensors; `sums` stay the caller's).
   */
  run(x: tf.Tensor, y: tf.Tensor, rows: Int32Array, lr: number, sums: { loss: tf.Tensor; hits: tf.Tensor; zeros?: tf.Tensor }): { loss: tf.Scalar; hits: tf.Scalar; zeros?: tf.Scalar };
}

export interface FusedStepPhase {
  model: Model;
  masks: MaskSet;
  optimizer: { fusedSgd?: FusedSgd };
  /** Everything of the phase that needs the taped step when present. */
  needsTape: boolean;
}

/** The phase's one-kernel step, or null when its steps must run through the tape. */
export function fusedStep(p: FusedStepPhase): FusedStep | null {
  const sgd = p.optimizer.fusedSgd;
  if (!fusedStepSettings.enabled || p.needsTape || !sgd || !denseStepAvailable() || !fusedApplies()) return null;
  const stack = denseStack(p.model);
  if (!stack) return null;
  const kernels = stack.map((l) => tensorNames.kernel(l.name));
  const biases = stack.map((l) => tensorNames.bias(l.name));
  const relu = stack.map((l) => (l.relu ? 1 : 0));
  return {
    applies(wantsGradients) {
      return !wantsGradients;
    },
    reluUnits(batch) {
      return stack.reduce((n, l) => n + (l.relu ? batch * p.model.params.get(tensorNames.bias(l.name))!.size : 0), 0);
    },
    run(x, y, rows, lr, sums) {
      const layers: DenseStepLayer[] = stack.map((_, i) => {
        const kernel = p.model.params.get(kernels[i])!;
        const bias = p.model.params.get(biases[i])!;
        const pattern = p.masks.pattern(kernels[i]);
        return {
          kernel, bias, vKernel: sgd.velocity(kernels[i], kernel), vBias: sgd.velocity(biases[i], bias),
          maskKernel: p.masks.get(kernels[i]), maskBias: p.masks.get(biases[i]),
          ...(sparseApplies(pattern, "dense") ? { pattern: pattern.tensor() } : {}),
        };
      });
      return denseStackSgdStep(x, y, sums, layers, { rows, relu, lr, momentum: sgd.momentum, weightDecay: sgd.weightDecay, nesterov: sgd.nesterov });
    },
  };
}
