import { defineArch, type ArchDef, type Widths } from "./ops.js";

const M = "M" as const;
type Cfg = ReadonlyArray<number | typeof M>;

const VGG16: Cfg = [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512];
const VGG19: Cfg = [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512];

/**
 * CIFAR VGG with batch norm: 3x3 'same' convs without bias, each followed by BN and ReLU, 2x2 max-pooling at the
 * configuration's M's; 32x32 inputs reach 2x2 after the last conv. Dropout, which some of the authors' code has, is
 * not part of it (prunebench's networks have none).
 */
function vgg(name: string, cfg: Cfg, head: "li" | "slimming", summary: string, citation: string): ArchDef {
  const convs = cfg.filter((c): c is number => c !== M);
  const widths: Widths = Object.fromEntries([...convs.map((c, i) => [`conv${i + 1}`, c]), ...(head === "li" ? [["fc1", 512]] : [])]);
  return defineArch({
    name, summary, citation,
    // Four poolings and a fifth 2x2 reduction: the classifier's 512 inputs assume 32x32 images.
    inputShape: [32, 32, 3],
    numClasses: null,
    widths,
    build(ops, x, numClasses, w) {
      let h = x;
      let i = 0;
      for (const c of cfg) {
        if (c === M) { h = ops.maxPool(h, 2); continue; }
        i++;
        h = ops.relu(ops.batchNorm(`bn${i}`, ops.conv(`conv${i}`, h, { filters: w.n(`conv${i}`), kernel: 3, padding: "same", bias: false })));
      }
      if (head === "slimming") return ops.dense("fc", ops.globalAvgPool(h), { units: numClasses });
      h = ops.flatten(ops.maxPool(h, 2));
      h = ops.relu(ops.batchNorm("bn_fc1", ops.dense("fc1", h, { units: w.n("fc1") })));
      return ops.dense("fc2", h, { units: numClasses });
    },
  });
}

/**
 * VGG-16 as Li et al. 2017 prune it on CIFAR-10 (section 4.1, Table 2; Zagoruyko's CIFAR VGG with BN): the 13 convs,
 * a final max-pool to 1x1x512, then dense 512 + BN + ReLU and the classifier. 14,987,722 params (Li et al.: 1.5E7)
 * and 313,463,808 MACs (Li et al.: 3.13E8; the convs alone are 313,196,544).
 */
export const vgg16bn = vgg("vgg16-bn", VGG16, "li",
  "VGG-16-BN (CIFAR, Li et al. 2017): 13 conv3x3+BN+ReLU 64..512, max-pools, dense 512+BN+ReLU, classes",
  "Li, Kadav, Durdanovic, Samet, Graf. Pruning Filters for Efficient ConvNets. ICLR 2017 (Table 2; after Zagoruyko 2015)");

/**
 * VGG-19 as network slimming prunes it (Liu et al. 2017, models/vgg.py of their code): the 16 convs, average pooling
 * of the last 2x2 map, and one dense classifier. 20,035,018 params (Liu et al. Table 1: 20.04M) and 398,136,320 MACs
 * (their 7.97E8 FLOPs count a multiply and an add, ≈2x).
 */
export const vgg19bn = vgg("vgg19-bn", VGG19, "slimming",
  "VGG-19-BN (CIFAR, network slimming): 16 conv3x3+BN+ReLU 64..512, max-pools, global average pool, classes",
  "Liu, Li, Shen, Huang, Yan, Zhang. Learning Efficient Convolutional Networks through Network Slimming. ICCV 2017 (Table 1)");
