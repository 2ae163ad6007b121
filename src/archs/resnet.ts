import type { ArchDef, Ops } from "./ops.js";

/**
 * CIFAR ResNet (He et al. 2016, section 4.2): 3 stages of n basic blocks (16, 32, 64 channels), 6n+2 layers.
 * Shortcuts on a shape change are 1x1 conv + BN (option B), as in the PyTorch peer used for speed comparisons.
 */
function cifarResNet(depth: number): ArchDef {
  const n = (depth - 2) / 6;
  return {
    name: `resnet${depth}`,
    summary: `CIFAR ResNet-${depth}: ${6 * n + 2} layers, basic blocks 16/32/64, BN, 1x1 projection shortcuts`,
    citation: "He, Zhang, Ren, Sun. Deep residual learning for image recognition. CVPR 2016",
    inputShape: null,
    numClasses: null,
    build<V>(ops: Ops<V>, x: V, numClasses: number): V {
      let h = ops.relu(ops.batchNorm("bn0", ops.conv("conv0", x, { filters: 16, kernel: 3, padding: "same", bias: false })));
      let cin = 16;
      [16, 32, 64].forEach((cout, stage) => {
        for (let i = 0; i < n; i++) {
          const stride = stage > 0 && i === 0 ? 2 : 1;
          const p = `s${stage + 1}b${i + 1}`;
          let y = ops.relu(ops.batchNorm(`${p}/bn1`, ops.conv(`${p}/conv1`, h, { filters: cout, kernel: 3, stride, padding: "same", bias: false })));
          y = ops.batchNorm(`${p}/bn2`, ops.conv(`${p}/conv2`, y, { filters: cout, kernel: 3, padding: "same", bias: false }));
          const shortcut = stride !== 1 || cin !== cout
            ? ops.batchNorm(`${p}/bnsc`, ops.conv(`${p}/convsc`, h, { filters: cout, kernel: 1, stride, padding: "valid", bias: false }))
            : h;
          h = ops.relu(ops.add(y, shortcut));
          cin = cout;
        }
      });
      return ops.dense("fc", ops.globalAvgPool(h), { units: numClasses });
    },
  };
}

export const resnet20 = cifarResNet(20);
export const resnet56 = cifarResNet(56);
