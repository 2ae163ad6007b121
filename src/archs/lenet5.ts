import { convThenMaxPool, defineArch } from "./ops.js";

/** Classic LeNet-5 with a padded first conv so 28x28 inputs keep the 32x32 geometry (61,706 params on MNIST). */
export const lenet5 = defineArch({
  name: "lenet5",
  summary: "LeNet-5: conv 6@5x5 (pad 2), maxpool, conv 16@5x5, maxpool, dense 120, 84, classes",
  citation: "LeCun, Bottou, Bengio, Haffner. Gradient-based learning applied to document recognition. Proc. IEEE 1998",
  inputShape: null,
  numClasses: null,
  widths: { conv1: 6, conv2: 16, fc1: 120, fc2: 84 },
  build(ops, x, numClasses, w) {
    let h = convThenMaxPool(ops, "conv1", x, { filters: w.n("conv1"), kernel: 5, padding: 2, activation: "relu" }, 2);
    h = convThenMaxPool(ops, "conv2", h, { filters: w.n("conv2"), kernel: 5, padding: "valid", activation: "relu" }, 2);
    h = ops.flatten(h);
    h = ops.dense("fc1", h, { units: w.n("fc1"), activation: "relu" });
    h = ops.dense("fc2", h, { units: w.n("fc2"), activation: "relu" });
    return ops.dense("fc3", h, { units: numClasses });
  },
});
