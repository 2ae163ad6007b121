import { defineArch, type Widths } from "./ops.js";

/** (expansion, output channels, blocks, stride of the first block), kuangliu's CIFAR table. */
const CFG: ReadonlyArray<readonly [number, number, number, number]> = [
  [1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
];

const blocks = CFG.flatMap(([t, c, n, s], stage) => Array.from({ length: n }, (_, i) => ({ t, c, stage: stage + 1, stride: i === 0 ? s : 1, first: i === 0 })));

function defaultWidths(): Widths {
  const out: Record<string, number> = { conv1: 32 };
  let cin = 32;
  blocks.forEach((b, j) => {
    out[`b${j + 1}/conv1`] = b.t * cin;
    cin = b.c;
  });
  CFG.forEach(([, c], s) => { out[`stage${s + 1}`] = c; });
  out.conv2 = 1280;
  return out;
}

/**
 * MobileNetV2 for CIFAR as in kuangliu/pytorch-cifar (models/mobilenetv2.py), the variant most CIFAR pruning code
 * uses: the stem conv and the second stage have stride 1 instead of 2, so 32x32 inputs end at 4x4. Each block:
 * 1x1 expansion conv (t x input channels; kept even where t = 1, as that code does), BN, ReLU; 3x3 depthwise conv,
 * BN, ReLU; 1x1 projection, BN; plus a shortcut where the stride is 1: the identity, or a 1x1 conv + BN where the
 * channels change (that code's choice; the paper has no shortcut there). ReLU, not ReLU6, as that code has it.
 * Then 1x1 conv to 1280, BN, ReLU, global average pooling (the 4x4 average of that code's avg_pool2d(out, 4)) and
 * the classifier. On 32x32x3 with 10 classes: 2,296,922 params, 91,154,944 MACs, counted from the reference code's
 * layers (the repository publishes no count). The "2.24M" often quoted is torchvision's layout (no t = 1 expansion
 * conv, no projection shortcuts) with a 10-class head: 3,504,872 − 1,281,000 + 12,810 = 2,236,682, exactly this
 * network minus those five layers (test/archs.test.ts).
 *
 * Widths: `conv1` (stem), `stageN` (each stage's output channels, shared by its blocks' projections and
 * shortcuts), `bJ/conv1` (block J's expanded channels = its depthwise channels), `conv2` (1280).
 */
export const mobilenetv2 = defineArch({
  name: "mobilenetv2",
  summary: "MobileNetV2 (CIFAR, kuangliu/pytorch-cifar): stride-1 stem, 17 inverted residual blocks with depthwise 3x3, 1280, classes",
  citation: "Sandler, Howard, Zhu, Zhmoginov, Chen. MobileNetV2: Inverted Residuals and Linear Bottlenecks. CVPR 2018 (CIFAR variant of kuangliu/pytorch-cifar)",
  inputShape: null,
  numClasses: null,
  widths: defaultWidths(),
  build(ops, x, numClasses, w) {
    let h = ops.relu(ops.batchNorm("bn1", ops.conv("conv1", x, { filters: w.n("conv1"), kernel: 3, padding: "same", bias: false })));
    blocks.forEach((b, j) => {
      const p = `b${j + 1}`;
      const cout = w.n(`stage${b.stage}`);
      const planes = w.n(`${p}/conv1`);
      let y = ops.relu(ops.batchNorm(`${p}/bn1`, ops.conv(`${p}/conv1`, h, { filters: planes, kernel: 1, padding: "valid", bias: false })));
      // PyTorch's padding=1: with stride 2 it centres windows on even pixels, where TF's 'same' would not.
      y = ops.relu(ops.batchNorm(`${p}/bn2`, ops.depthwiseConv(`${p}/conv2`, y, { kernel: 3, stride: b.stride, padding: b.stride === 1 ? "same" : 1, bias: false })));
      y = ops.batchNorm(`${p}/bn3`, ops.conv(`${p}/conv3`, y, { filters: cout, kernel: 1, padding: "valid", bias: false }));
      if (b.stride === 1) {
        // Structure from the published table (first block of a stage changes the channels), never from the widths.
        const sc = b.first ? ops.batchNorm(`${p}/bnsc`, ops.conv(`${p}/convsc`, h, { filters: cout, kernel: 1, padding: "valid", bias: false })) : h;
        y = ops.add(y, sc);
      }
      h = y;
    });
    h = ops.relu(ops.batchNorm("bn2", ops.conv("conv2", h, { filters: w.n("conv2"), kernel: 1, padding: "valid", bias: false })));
    return ops.dense("fc", ops.globalAvgPool(h), { units: numClasses });
  },
});
