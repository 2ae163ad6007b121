import { defineArch } from "./ops.js";

/** LeNet-300-100 (LeCun et al. 1998), the fully connected network of Han et al. 2015 and the lottery ticket paper. */
export const mlp = defineArch({
  name: "mlp",
  summary: "LeNet-300-100: fully connected 784-300-100-10 with ReLU",
  citation: "LeCun, Bottou, Bengio, Haffner. Gradient-based learning applied to document recognition. Proc. IEEE 1998",
  inputShape: null,
  numClasses: null,
  widths: { fc1: 300, fc2: 100 },
  build(ops, x, numClasses, w) {
    let h = ops.flatten(x);
    h = ops.dense("fc1", h, { units: w.n("fc1"), activation: "relu" });
    h = ops.dense("fc2", h, { units: w.n("fc2"), activation: "relu" });
    return ops.dense("fc3", h, { units: numClasses });
  },
});
