import { defineArch, type Widths } from "./ops.js";

const DEPTH = 12;
const PATCH = 4;

function defaultWidths(): Widths {
  const out: Record<string, number> = { dim: 192 };
  for (let i = 1; i <= DEPTH; i++) Object.assign(out, { [`block${i}/heads`]: 3, [`block${i}/head_dim`]: 64, [`block${i}/mlp`]: 768 });
  return out;
}

/**
 * A small vision transformer for CIFAR/MNIST-size images: ViT-Ti's dimensions (Touvron et al. 2021, DeiT-Ti: width
 * 192, 12 blocks, 3 heads of 64, MLP 768) on 4x4 patches (8x8 = 64 tokens on 32x32, 7x7 = 49 on 28x28) instead of
 * ImageNet's 16x16. Patch embedding (a 4x4 stride-4 conv with bias), a class token, a learned position table,
 * then pre-norm blocks x + Attn(LN(x)), x + MLP(LN(x)) (separate q, k, v projections with bias, scaled dot-product
 * attention, output projection; MLP dense, GELU, dense), a final LayerNorm and the classifier on the class token.
 * No dropout. timm's layout with q/k/v split out of its fused qkv layer (the same parameters: head h is columns
 * [64h, 64h+64) of each). On 32x32x3 with 10 classes: 5,362,762 params; MACs count every dense layer per token and
 * attention's q·kᵀ and weights·v (2·T²·192 per block, T = 65).
 *
 * Widths: `dim` (the residual stream), and per block `blockN/heads`, `blockN/head_dim`, `blockN/mlp`: the structures
 * structured pruning removes (heads, MLP neurons).
 */
export const vitTiny = defineArch({
  name: "vit-tiny",
  summary: "ViT-Tiny/4: 4x4 patches, width 192, 12 pre-LN blocks of 3-head self-attention + GELU MLP 768, class token",
  citation: "Dosovitskiy et al. An Image is Worth 16x16 Words. ICLR 2021; dimensions of DeiT-Ti (Touvron et al. ICML 2021)",
  inputShape: null,
  numClasses: null,
  widths: defaultWidths(),
  build(ops, x, numClasses, w) {
    const dim = w.n("dim");
    let h = ops.toTokens(ops.conv("patch_embed", x, { filters: dim, kernel: PATCH, stride: PATCH, padding: "valid" }));
    h = ops.positionEmbedding("pos_embed", ops.classToken("cls_token", h));
    for (let i = 1; i <= DEPTH; i++) {
      const p = `block${i}`;
      const heads = w.n(`${p}/heads`);
      const width = heads * w.n(`${p}/head_dim`);
      const a = ops.layerNorm(`${p}/norm1`, h);
      const q = ops.dense(`${p}/attn/q`, a, { units: width });
      const k = ops.dense(`${p}/attn/k`, a, { units: width });
      const v = ops.dense(`${p}/attn/v`, a, { units: width });
      h = ops.add(h, ops.dense(`${p}/attn/proj`, ops.attention(`${p}/attn`, q, k, v, { heads }), { units: dim }));
      const m = ops.gelu(ops.dense(`${p}/mlp/fc1`, ops.layerNorm(`${p}/norm2`, h), { units: w.n(`${p}/mlp`) }));
      h = ops.add(h, ops.dense(`${p}/mlp/fc2`, m, { units: dim }));
    }
    return ops.dense("head", ops.takeToken(ops.layerNorm("norm", h), 0), { units: numClasses });
  },
});
