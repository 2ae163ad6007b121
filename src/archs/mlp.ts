import type { ArchDef } from "./ops.js";

/** LeNet-300-100 (LeCun et al. 1998), the fully connected network of Han et al. 2015 and the lottery ticket paper. */
export const mlp: ArchDef = {
  name: "mlp",
  summary: "LeNet-300-100: fully connected 784-300-100-10 with ReLU",
  citation: "LeCun, Bottou, Bengio, Haffner. Gradient-based learning applied to document recognition. Proc. IEEE 1998",
  inputShape: null,
  numClasses: null,
  build(ops, x, numClasses) {
    let h = ops.flatten(x);
    h = ops.relu(ops.dense("fc1", h, { units: 300 }));
    h = ops.relu(ops.dense("fc2", h, { units: 100 }));
    return ops.dense("fc3", h, { units: numClasses });
  },
};
