import { convThenMaxPool, defineArch, type ArchDef, type Widths } from "./ops.js";

/**
 * Conv-2, Conv-4 and Conv-6 of the lottery ticket paper (Frankle & Carbin 2019, Figure 2; VGG-like CIFAR-10 nets):
 * pairs of 3x3 'same' convs (64, 64 / 128, 128 / 256, 256), each pair followed by 2x2 max-pooling, then dense 256,
 * 256 and the classifier, ReLU throughout, no batch norm. On 32x32x3 the weights (biases excluded, as the paper
 * counts) are 4,300,992 / 2,425,024 / 2,261,184. Figure 2 gives 4.3M, 2.4M and 1.7M: the first two agree, while
 * 1.7M cannot come from the listed layers (the dense layer after 4x4x256 alone has 1,048,576 weights, the convs
 * 1,144,512); reimplementations of these layers all count 2.26M, and so does this one.
 */
function convNet(pairs: number): ArchDef {
  const stages = [64, 128, 256].slice(0, pairs);
  const convs = stages.flatMap((f) => [f, f]);
  const widths: Widths = Object.fromEntries([...convs.map((f, i) => [`conv${i + 1}`, f]), ["fc1", 256], ["fc2", 256]]);
  return defineArch({
    name: `conv${2 * pairs}`,
    summary: `Conv-${2 * pairs} (lottery ticket): ${stages.map((f) => `conv ${f}, ${f}@3x3, maxpool`).join(", ")}, dense 256, 256, classes`,
    citation: "Frankle, Carbin. The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks. ICLR 2019 (Figure 2)",
    // The first dense layer's inputs (16x16x64, 8x8x128, 4x4x256) assume CIFAR's 32x32x3, as the paper does.
    inputShape: [32, 32, 3],
    numClasses: null,
    widths,
    build(ops, x, numClasses, w) {
      let h = x;
      convs.forEach((_, i) => {
        const conv = { filters: w.n(`conv${i + 1}`), kernel: 3, padding: "same", activation: "relu" } as const;
        h = i % 2 === 1 ? convThenMaxPool(ops, `conv${i + 1}`, h, conv, 2) : ops.conv(`conv${i + 1}`, h, conv);
      });
      h = ops.flatten(h);
      h = ops.dense("fc1", h, { units: w.n("fc1"), activation: "relu" });
      h = ops.dense("fc2", h, { units: w.n("fc2"), activation: "relu" });
      return ops.dense("fc3", h, { units: numClasses });
    },
  });
}

export const conv2 = convNet(1);
export const conv4 = convNet(2);
export const conv6 = convNet(3);
