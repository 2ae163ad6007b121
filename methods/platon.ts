import type { HyperValue } from "../src/core/types.js";
import type { PruningMethod, ScoreContext, TrainingTracker } from "./types.js";

/**
 * PLATON's record of training: per weight, Ī (smoothed importance) and Ū (smoothed uncertainty), folded in once per
 * window of ΔT steps from the window's mean importance I = mean |w ⊙ ∇w|: Ī ← β₁Ī + (1 − β₁)I, then U = |I − Ī| with
 * the new Ī, Ū ← β₂Ū + (1 − β₂)U. Both start at 0 with no bias correction, as in the authors' Pruner.
 */
export class PlatonTracker implements TrainingTracker {
  readonly quantity = "abs-weight-gradient" as const;
  readonly importance = new Map<string, Float32Array>();
  readonly uncertainty = new Map<string, Float32Array>();
  windows = 0;

  constructor(readonly window: number, readonly beta1: number, readonly beta2: number) {}

  observe(means: ReadonlyMap<string, Float32Array>): void {
    const { beta1: b1, beta2: b2 } = this;
    for (const [name, I] of means) {
      const ibar = this.importance.get(name) ?? new Float32Array(I.length);
      const ubar = this.uncertainty.get(name) ?? new Float32Array(I.length);
      if (ibar.length !== I.length) throw new Error(`${name}: a window of ${I.length} values for ${ibar.length} weights`);
      for (let i = 0; i < I.length; i++) {
        ibar[i] = b1 * ibar[i] + (1 - b1) * I[i];
        ubar[i] = b2 * ubar[i] + (1 - b2) * Math.abs(I[i] - ibar[i]);
      }
      this.importance.set(name, ibar);
      this.uncertainty.set(name, ubar);
    }
    this.windows++;
  }

  /** S = Ī · Ū per weight of `name` (zeros before the first window). */
  score(name: string, size: number): Float32Array {
    const ibar = this.importance.get(name);
    const ubar = this.uncertainty.get(name);
    const out = new Float32Array(size);
    if (!ibar || !ubar) return out;
    for (let i = 0; i < size; i++) out[i] = ibar[i] * ubar[i];
    return out;
  }
}

function tracker(p: Readonly<Record<string, HyperValue>>): PlatonTracker {
  return new PlatonTracker(Number(p.delta_t), Number(p.beta1), Number(p.beta2));
}

/**
 * PLATON (Zhang, Zuo, Liang, Bukharin, He, Chen, Zhao, "PLATON: Pruning Large Transformer Models with Upper Confidence
 * Bound of Weight Importance", ICML 2022; authors' code QingruZhang/PLATON, Pruner.py). From the pretrained dense
 * model, while fine-tuning: importance I = |w ⊙ ∇w| averaged over windows of ΔT steps, smoothed Ī and uncertainty Ū
 * as in PlatonTracker, score S = Ī · Ū, one global ranking over all prunable weights (so each layer's ratio comes out
 * of the method), remaining ratio r(t) = r_T + (r₀ − r_T)(1 − (t − t_i)/(T − t_i − t_f))³ between the warm-up t_i and
 * the final phase t_f, with r₀ = 1 (the README's initial_threshold), and r_T in the final phase.
 *
 * Defaults: β₁ 0.85, β₂ 0.95, ΔT 10 (the README's). The warm-up and final phase are the README's MNLI example
 * (warmup_steps 5,400 × initial_warmup 1 and × final_warmup 5, of 8 epochs × ⌈392,702 / 32⌉ ≈ 98,200 steps) as
 * fractions of the fine-tuning steps: 0.055 and 0.275.
 *
 * Choices where this engine differs from the authors' code, stated: (1) masks are hard: a pruned weight is 0 and
 * gets no update until a mask step ranks it back in (the authors zero it at each mask step and let the optimizer move
 * it in between); every mask step ranks all weights again, so a pruned weight whose score still ranks above the
 * threshold returns, at 0 (its own I is 0 while pruned, so its Ī and Ū decay). (2) The authors mask at every step of
 * the final phase with scores that change only every ΔT steps, which is the mask of the latest ΔT step: here the
 * mask steps are every ΔT steps throughout, plus the last step, so the run ends at its target. (3) The window folded
 * at a mask step includes that step's gradient (the authors' lags by one step). (4) The authors' β₂ = 1 and β₂ = 2
 * variants (Ī alone; a running variance) are not offered: β₂ ranges over [0, 1).
 */
export const platon: PruningMethod = {
  name: "platon",
  summary: "PLATON: |w·∇w| smoothed (Ī) times its uncertainty (Ū), one global ranking, cubic schedule while fine-tuning; pruned weights may return",
  paper: {
    authors: "Zhang, Zuo, Liang, Bukharin, He, Chen, Zhao", title: "PLATON: Pruning Large Transformer Models with Upper Confidence Bound of Weight Importance",
    venue: "ICML", year: 2022, url: "https://arxiv.org/abs/2206.12562",
  },
  params: {
    beta1: { type: "number", default: 0.85, min: 0, max: 0.999, description: "β₁: smoothing of the importance Ī" },
    beta2: { type: "number", default: 0.95, min: 0, max: 0.999, description: "β₂: smoothing of the uncertainty Ū" },
    delta_t: { type: "integer", default: 10, min: 1, description: "ΔT: steps per importance window and between mask steps" },
    warmup: { type: "number", default: 0.055, min: 0, max: 0.99, description: "t_i: fine-tuning steps before the first mask step, as a fraction" },
    final: { type: "number", default: 0.275, min: 0, max: 0.99, description: "t_f: final phase at the target ratio, as a fraction of the fine-tuning steps" },
  },
  needs: {},
  distribution: () => "global",
  schedule: (p) => ({ kind: "gradual", start: Number(p.warmup), end: 1 - Number(p.final), frequency: Number(p.delta_t), initialSparsity: 0, remask: true }),
  paramsProblem: (p) => (Number(p.warmup) + Number(p.final) < 1 ? null : `warmup + final must be < 1 (the cubic ramp needs steps between them), got ${Number(p.warmup)} + ${Number(p.final)}`),
  tracker,
  score: (ctx: ScoreContext) => {
    if (!(ctx.tracker instanceof PlatonTracker)) throw new Error("platon scores from its training tracker, which only a gradual schedule's training feeds");
    const t = ctx.tracker;
    return new Map(ctx.tensors.map((x) => [x.name, t.score(x.name, x.values.length)]));
  },
};
