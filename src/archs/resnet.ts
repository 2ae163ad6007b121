import { defineArch, identityThenZeros, type ArchDef, type Ops, type WidthReader, type Widths } from "./ops.js";

type Shortcut = "A" | "B";

/**
 * CIFAR ResNet (He et al. 2016, section 4.2): a 3x3 conv, then 3 stages of n basic blocks (16, 32, 64 channels),
 * global average pooling and the classifier; 6n+2 layers. Convs have no bias (batch norm follows each).
 *
 * Option A (the paper's CIFAR choice, and Li et al. 2017's, HRank's and Gate Decorator's ResNet-56): where a stage
 * halves the resolution and doubles the channels, the shortcut subsamples x[::2, ::2] and appends zero channels, with
 * no parameters (fb.resnet.torch's shortcutType A: identity channels first, zeros after). Its stride-2 conv pads 1 on
 * every side, as Torch and PyTorch do, so the conv's window centres fall on the pixels the shortcut keeps.
 * ResNet-20: 269,722 params, 40,551,040 MACs (He et al. Table 6: 0.27M; 40.55M in the pruning literature);
 * ResNet-56: 853,018 params, 125,485,696 MACs (0.85M, 125.49M: Li et al. 2017 Table 1's 1.25E8, HRank's 125.49M).
 *
 * Option B (`-b`): a 1x1 conv + BN projection on those shortcuts, and TF 'same' padding on the stride-2 conv: the
 * network prunebench called resnet20/resnet56 before option A, kept under its own name so older results keep it.
 *
 * Widths: `stage1..3` (the residual stream's channels, shared by conv0, every block's conv2 and the shortcuts), each
 * block's inner `sXbY/conv1`, and for option A optionally `s2b1/shortcut`, `s3b1/shortcut` (source channel per output
 * channel, −1 for zeros; default: identity then zeros).
 */
function cifarResNet(depth: number, shortcut: Shortcut): ArchDef {
  const n = (depth - 2) / 6;
  const stages = [16, 32, 64];
  const widths: Widths = Object.fromEntries([
    ...stages.map((c, s) => [`stage${s + 1}`, c]),
    ...stages.flatMap((c, s) => Array.from({ length: n }, (_, i) => [`s${s + 1}b${i + 1}/conv1`, c])),
  ]);
  const label = shortcut === "A" ? "zero-padded identity shortcuts (option A)" : "1x1 conv projection shortcuts (option B)";
  return defineArch({
    name: shortcut === "A" ? `resnet${depth}` : `resnet${depth}-b`,
    summary: `CIFAR ResNet-${depth}: ${6 * n + 2} layers, basic blocks 16/32/64, BN, ${label}`,
    citation: "He, Zhang, Ren, Sun. Deep residual learning for image recognition. CVPR 2016 (section 4.2)",
    inputShape: null,
    numClasses: null,
    widths,
    optionalWidths: (key) => shortcut === "A" && /^s[23]b1\/shortcut$/.test(key),
    build<V>(ops: Ops<V>, x: V, numClasses: number, w: WidthReader): V {
      let h = ops.relu(ops.batchNorm("bn0", ops.conv("conv0", x, { filters: w.n("stage1"), kernel: 3, padding: "same", bias: false })));
      stages.forEach((_, stage) => {
        const cout = w.n(`stage${stage + 1}`);
        for (let i = 0; i < n; i++) {
          // Structure from the published design, never from the widths: a compacted model keeps its shortcuts.
          const down = stage > 0 && i === 0;
          const stride = down ? 2 : 1;
          const p = `s${stage + 1}b${i + 1}`;
          const padding = down && shortcut === "A" ? 1 : "same";
          let y = ops.relu(ops.batchNorm(`${p}/bn1`, ops.conv(`${p}/conv1`, h, { filters: w.n(`${p}/conv1`), kernel: 3, stride, padding, bias: false })));
          y = ops.batchNorm(`${p}/bn2`, ops.conv(`${p}/conv2`, y, { filters: cout, kernel: 3, padding: "same", bias: false }));
          let sc = h;
          if (down && shortcut === "B") {
            sc = ops.batchNorm(`${p}/bnsc`, ops.conv(`${p}/convsc`, h, { filters: cout, kernel: 1, stride, padding: "valid", bias: false }));
          } else if (down) {
            sc = ops.zeroPadShortcut(`${p}/shortcut`, h, { stride, source: w.list(`${p}/shortcut`) ?? identityThenZeros(w.n(`stage${stage}`), cout) });
          }
          h = ops.relu(ops.add(y, sc));
        }
      });
      return ops.dense("fc", ops.globalAvgPool(h), { units: numClasses });
    },
  });
}

export const resnet20 = cifarResNet(20, "A");
export const resnet32 = cifarResNet(32, "A");
export const resnet56 = cifarResNet(56, "A");
export const resnet110 = cifarResNet(110, "A");
export const resnet20b = cifarResNet(20, "B");
export const resnet56b = cifarResNet(56, "B");
