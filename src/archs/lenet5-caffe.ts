import { convThenMaxPool, defineArch } from "./ops.js";

/**
 * LeNet-5-Caffe, the small CNN of Caffe's MNIST example and ShrinkBench's `MnistNet` (models/mnistnet.py): two
 * unpadded 5x5 convs (20 and 50 filters), each followed by ReLU and 2x2 max-pooling, then dense 500 and the
 * classifier. Han et al. 2015 and SNIP (Lee et al. 2019) prune this network as "LeNet-5". On 28x28x1: 431,080
 * params and 2,293,000 MACs counted at the real output sizes (24x24 and 8x8); ShrinkBench's FLOP counter treats
 * the unpadded convs as padded and reports 4,397,000.
 */
export const lenet5Caffe = defineArch({
  name: "lenet5-caffe",
  summary: "LeNet-5-Caffe (ShrinkBench MnistNet): conv 20@5x5, maxpool, conv 50@5x5, maxpool, dense 500, classes",
  citation: "Jia et al. Caffe: Convolutional Architecture for Fast Feature Embedding. ACM MM 2014 (examples/mnist/lenet.prototxt)",
  // The 800 inputs of fc1 (4x4x50) assume 28x28 images, as the original does; other sizes would change the network.
  inputShape: [28, 28, 1],
  numClasses: null,
  widths: { conv1: 20, conv2: 50, fc1: 500 },
  build(ops, x, numClasses, w) {
    let h = convThenMaxPool(ops, "conv1", x, { filters: w.n("conv1"), kernel: 5, padding: "valid", activation: "relu" }, 2);
    h = convThenMaxPool(ops, "conv2", h, { filters: w.n("conv2"), kernel: 5, padding: "valid", activation: "relu" }, 2);
    h = ops.flatten(h);
    h = ops.dense("fc1", h, { units: w.n("fc1"), activation: "relu" });
    return ops.dense("fc2", h, { units: numClasses });
  },
});
