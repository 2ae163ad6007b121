// Gradients that tfjs composes from several kernels, as one ATen operator on the torch backend (other backends keep
// the gradient registered before: each override checks the active backend and hands over otherwise).
import * as tf from "@tensorflow/tfjs-core";
import type { TorchKernel } from "./index.js";

/** Inputs dy, x; output dy where x > 0, else 0 (ReLU's gradient; tfjs: dy · cast(step(x))). */
export const TorchReluGrad = "PrunebenchTorchReluGrad";

export const torchGradientKernels: Record<string, TorchKernel> = {
  [TorchReluGrad]: ({ inputs, backend: b }) =>
    b.out(b.call("aten::threshold_backward", [b.t(inputs.dy), b.t(inputs.x), 0]), "float32", inputs.dy.shape),
};

let done = false;

/** Wraps the registered gradients (call after they are registered: ensureGradients). Idempotent. */
export function registerTorchGradients(): void {
  if (done) return;
  const reluGrad = tf.getGradient(tf.Relu);
  if (!reluGrad) return;
  done = true;
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== "torch" || Array.isArray(dy) || dy.dtype !== "float32") return reluGrad.gradFunc(dy, saved, attrs);
      const [x] = saved;
      return { x: () => tf.engine().runKernel(TorchReluGrad, { dy, x }) as tf.Tensor };
    },
  });
}
