/**
 * When masks change, as data (jaxpruner's sparsity_schedules, in spirit): each schedule is a small value, and
 * `timeline` answers the two questions the engine asks of it: "which masks are computed, and at what density?"
 * (`events`, for pruning that happens between training phases) and "update the mask at this training step, and to
 * what density?" (`densityAtStep`, for pruning that happens while training). The engine runs any of them the same
 * way; no method is named here.
 */

export type Schedule =
  /**
   * After dense pretraining, once; then fine-tune with the mask fixed (ShrinkBench, Han et al. 2015 one-shot), or,
   * with `scratch`, train the pruned architecture from scratch instead (see ScratchRetrain).
   */
  | { kind: "one-shot"; scratch?: ScratchRetrain }
  /**
   * At initialization, before any training, in `rounds` rounds whose densities fall exponentially to the target
   * (density^(k/rounds) after round k: SynFlow's schedule, Tanaka et al. 2020; one round is SNIP's). The sparse network
   * is then trained for the pretraining and fine-tuning epochs, the same number of epochs a one-shot run gets.
   */
  | { kind: "at-init"; rounds: number }
  /**
   * While fine-tuning a pretrained model (Zhu & Gupta 2017, AGP): sparsity rises from `initialSparsity` to the target
   * along s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n·Δt))³, updated every `frequency` steps from step t0 = `start`·T to
   * t0 + n·Δt = `end`·T, with T the fine-tuning steps and `start`, `end` fractions of it; then the mask stays fixed.
   */
  | {
    kind: "gradual"; start: number; end: number; frequency: number; initialSparsity: number;
    /**
     * An add-on, absent when off (then the schedule is AGP's, value for value). Present (PLATON, Zhang et al. 2022):
     * every update ranks all prunable weights again, pruned ones included, so a pruned weight may come back (at 0);
     * with t the steps done (1-based), t_i = ⌊start·T⌋ and T − t_f = ⌊end·T⌋, updates come at every t > t_i that is
     * a multiple of `frequency`, and at t = T, to the remaining ratio
     * r(t) = r_T + (r₀ − r_T)(1 − (t − t_i)/(T − t_i − t_f))³ (r₀ = 1 − initialSparsity, r_T the target) up to T − t_f,
     * then r_T: the updates go on through the final phase (the scores keep moving there), and the last one, at T,
     * leaves the run at its target.
     */
    remask?: true;
  }
  /**
   * Dynamic sparse training (SET, Mocanu et al. 2018; RigL, Evci et al. 2020): a random mask at initialization with
   * the target density (spread by the method's distribution), then every `interval` steps a fraction of each
   * tensor's active weights is dropped by the method's score and as many inactive ones grown by its regrowth
   * criterion, so every tensor's density stays fixed. The fraction decays with a cosine to 0 at `end` (a fraction of
   * all training steps: RigL's α/2·(1 + cos(πt/T_end))) or stays constant (SET); no update from `end` on. `interval`
   * 0 means once per epoch (resolveSchedule turns it into steps).
   */
  | { kind: "dynamic"; interval: number; dropFraction: number; end: number; decay: "cosine" | "constant" }
  /**
   * Iterative pruning after dense pretraining (Han et al. 2015; the lottery-ticket line): round r removes the fraction
   * `rate` of the remaining prunable weights (density (1 − rate)^r, the last round exactly the target) and retrains
   * before the next round. What a round retrains from is `rewind`: "init" the surviving weights' initial values
   * (Frankle & Carbin 2019), "epoch" their values after `rewindEpoch` epochs of dense pretraining (Frankle et al.
   * 2020), "reinit" a fresh random draw (Frankle & Carbin's random-reinitialisation control) — each then retrained
   * like the dense model (the pretraining config; from epoch `rewindEpoch` on for "epoch"); "lr" keeps the trained
   * weights and retrains with the pretraining LR schedule from its start (Renda et al. 2020); "none" keeps them and
   * fine-tunes with the fine-tuning config (Han et al. 2015). At most `maxRounds` rounds (checkIterative).
   * Two add-ons, absent when off (so a schedule without them is the plain one, value for value):
   * `apRate` (Activating-while-Pruning, Liu et al. 2022): of each round's `rate`, `apRate` of the surviving weights
   * is removed among the negative ones that moved least over the round (see pruneStep), the rest by the method.
   * `lrPeaks` (SILO, Liu et al. 2022): the peak LR of each round's retraining follows an S-curve in the sparsity
   * instead of staying at the configured LR (roundPeakLr).
   */
  | {
    kind: "iterative"; rate: number; maxRounds: number; rewind: Rewind; rewindEpoch: number;
    apRate?: number; lrPeaks?: SiloPeaks;
    /**
     * The lottery ticket's random-reinitialisation control (Frankle & Carbin 2019, section 2): the rounds run as
     * above, and each level's result is instead that level's mask — the ticket — retrained from a fresh random draw
     * of the surviving weights (the "reinit" draw); the round's own trained weights are kept aside and the next
     * round prunes from them, so the control's masks are exactly the ticket's. Absent: the level is the round's own
     * network.
     */
    control?: "reinit";
  }
  /**
   * Pruning and splicing while fine-tuning a pretrained model with soft masks (Guo et al. 2016, Dynamic Network
   * Surgery; src/prune/surgery.ts): the masked weights keep learning, and before fine-tuning step t each layer, with
   * probability (1 + `gamma`·t)^−`power` while t < `stop`, prunes its active weights whose score is <= `lower`·m and
   * splices back its pruned ones whose score is > `upper`·m, m = max(μ + cσ, 0) of the layer's scores when the
   * surgery starts. `c`: a number (the paper's) or "target" (solved so that the first cut meets the run's target).
   * At step min(`stop`, T) the masks are cut or spliced to exactly the target; the rest of fine-tuning keeps them.
   */
  | { kind: "surgery"; c: number | "target"; lower: number; upper: number; gamma: number; power: number; stop: number }
  | TickTock;

/**
 * Tick-Tock (You et al. 2019, Gate Decorator), for channel methods, from the pretrained model: every channel group
 * gets gates (src/train/gates.ts: on its batch norms, else on its producing layers' outputs). A tock trains
 * everything (gates included, under the method's "tock" loss terms) for `tockEpochs` epochs with an LR rising
 * linearly from `tockLr[0]` to `tockLr[1]` over the first half and back (triangular); a tick trains the gates,
 * batch-norm shifts and every non-conv layer, conv layers frozen, for one epoch of `tickImages` training images (a
 * fresh seeded subset each tick; 0: the whole split) at the constant LR `tickLr`, while the engine accumulates the
 * gate statistic the method scores with (ScoreContext.gateSaliency), then removes the `fraction` of the remaining
 * prunable channels with the lowest scores, globally, within each group's floor, stopping as soon as the compacted
 * model reaches the run's target. A tock comes before the first tick and after every `tockEvery` ticks; then the run
 * fine-tunes with its fine-tuning config (the gates folded into the network). The other training settings
 * (optimizer, batch, momentum, weight decay) are the fine-tuning config's.
 */
export interface TickTock {
  kind: "tick-tock";
  fraction: number;
  tickImages: number;
  tickLr: number;
  tockEvery: number;
  tockEpochs: number;
  tockLr: [number, number];
}

/**
 * SILO's peak LR per round (Liu, Ghosh, Tan, Motani, arXiv 2212.06144; code Martin1937/SILO): rounds k <= `delay`
 * keep the configured LR; later ones use α·ρ^β / (ρ^β + (1 − ρ)^β) + offset with ρ = 1 − (1 − rate)^(k − delay).
 */
export interface SiloPeaks { kind: "silo"; alpha: number; beta: number; offset: number; delay: number }

/**
 * One-shot's alternative to fine-tuning (Liu, Sun, Zhou, Huang, Darrell, "Rethinking the Value of Network Pruning",
 * ICLR 2019): keep only the mask, re-draw every weight from the initial distribution (the survivors and everything
 * unpruned) and train like the dense model, with the pretraining config. Budget "epochs": as many epochs as the dense
 * training (Scratch-E). Budget "macs": the dense training's compute (Scratch-B): its epochs times dense MACs ÷ the
 * pruned model's effective MACs, at most `cap` times, rounded down (budgetEpochs in src/run/train-budget.ts).
 */
export type ScratchRetrain = { budget: "epochs" } | { budget: "macs"; cap: number };

/** What an iterative round retrains from (see the iterative schedule). */
export type Rewind = "init" | "epoch" | "lr" | "none" | "reinit";

/**
 * What is wrong with a schedule, in words a grid's author can act on, or null: checked when a grid is read, so a
 * schedule that cannot run is refused before any run starts (not when the run reaches it).
 */
export function scheduleProblem(schedule: Schedule): string | null {
  const integer = (x: number, min: number) => Number.isInteger(x) && x >= min;
  switch (schedule.kind) {
    case "one-shot":
      return schedule.scratch ? scratchProblem(schedule.scratch) : null;
    case "at-init":
      return integer(schedule.rounds, 1) ? null : `rounds must be an integer >= 1, got ${schedule.rounds}`;
    case "gradual": {
      const { start, end, frequency, initialSparsity } = schedule;
      if (!(start >= 0 && start < end && end <= 1)) return `needs 0 <= start < end <= 1, got start ${start}, end ${end}`;
      if (!integer(frequency, 1)) return `frequency must be an integer number of steps >= 1, got ${frequency}`;
      return initialSparsity >= 0 && initialSparsity < 1 ? null : `initial sparsity must be in [0, 1), got ${initialSparsity}`;
    }
    case "dynamic": {
      const { interval, dropFraction, end } = schedule;
      if (!integer(interval, 0)) return `interval must be an integer number of steps >= 1 (or 0: once per epoch), got ${interval}`;
      if (!(dropFraction > 0 && dropFraction <= 1)) return `drop fraction must be in (0, 1], got ${dropFraction}`;
      return end > 0 && end <= 1 ? null : `end must be in (0, 1], got ${end}`;
    }
    case "iterative": {
      // Whether the rounds reach a target depends on the target: checked per run when the sweep is planned.
      const { rate, maxRounds } = schedule;
      if (!(rate > 0 && rate < 1)) return `rate must be in (0, 1), got ${rate}`;
      if (!integer(maxRounds, 1)) return `max rounds must be an integer >= 1, got ${maxRounds}`;
      const ap = schedule.apRate ?? 0;
      // AP's share is part of the round's rate, so it must leave the method a share of its own.
      if (!(ap >= 0 && ap < rate)) return `ap_rate must be in [0, rate ${rate}), got ${ap}`;
      const peaks = schedule.lrPeaks;
      if (peaks && !(peaks.alpha >= 0 && peaks.beta > 0 && peaks.offset >= 0 && integer(peaks.delay, 0))) {
        return `silo needs alpha >= 0, beta > 0, offset >= 0 and an integer delay >= 0, got alpha ${peaks.alpha}, beta ${peaks.beta}, offset ${peaks.offset}, delay ${peaks.delay}`;
      }
      return null;
    }
    case "surgery": {
      const { c, lower, upper, gamma, power, stop } = schedule;
      if (c !== "target" && !Number.isFinite(c)) return `c must be a finite number or "target", got ${c}`;
      if (!(lower > 0 && upper >= lower && Number.isFinite(upper))) return `the band needs 0 < lower <= upper, got lower ${lower}, upper ${upper}`;
      if (!(gamma >= 0 && Number.isFinite(gamma))) return `gamma must be a finite number >= 0, got ${gamma}`;
      if (!(power >= 0 && Number.isFinite(power))) return `power must be a finite number >= 0, got ${power}`;
      return integer(stop, 1) ? null : `iter_stop must be an integer number of steps >= 1, got ${stop}`;
    }
    case "tick-tock": {
      const { fraction, tickImages, tickLr, tockEvery, tockEpochs, tockLr } = schedule;
      if (!(fraction > 0 && fraction < 1)) return `the fraction pruned per tick must be in (0, 1), got ${fraction}`;
      if (!integer(tickImages, 0)) return `tick images must be an integer >= 0 (0: the whole training split), got ${tickImages}`;
      if (!integer(tockEvery, 1)) return `tock_every must be an integer number of ticks >= 1, got ${tockEvery}`;
      if (!integer(tockEpochs, 0)) return `tock epochs must be an integer >= 0, got ${tockEpochs}`;
      return [tickLr, ...tockLr].every((lr) => lr > 0 && Number.isFinite(lr)) ? null : `learning rates must be finite and > 0, got tick ${tickLr}, tock ${tockLr.join(" to ")}`;
    }
  }
}

function scratchProblem(scratch: ScratchRetrain): string | null {
  const budget = (scratch as { budget: string }).budget;
  if (budget === "epochs") return null;
  if (budget !== "macs") return `scratch budget must be "epochs" (Scratch-E) or "macs" (Scratch-B), got ${JSON.stringify(budget)}`;
  const { cap } = scratch as { cap: number };
  // Sparse MACs never exceed dense MACs, so the multiplier is >= 1: a cap below 1 would train less than Scratch-E.
  return Number.isFinite(cap) && cap >= 1 ? null : `scratch cap (the most Scratch-B multiplies the epochs by) must be a number >= 1, got ${cap}`;
}

/** The schedule with everything counted in steps: a dynamic interval of 0 ("once per epoch") becomes `stepsPerEpoch`. */
export function resolveSchedule(schedule: Schedule, stepsPerEpoch: number): Schedule {
  return schedule.kind === "dynamic" && schedule.interval === 0 ? { ...schedule, interval: stepsPerEpoch } : schedule;
}

/** The densities (fraction of prunable weights kept) of the masks computed between phases, in order. */
export function pruningEvents(schedule: Schedule, targetDensity: number): number[] {
  checkDensity(targetDensity);
  switch (schedule.kind) {
    case "one-shot":
      return [targetDensity];
    case "at-init":
      if (!Number.isInteger(schedule.rounds) || schedule.rounds < 1) throw new Error(`at-init rounds must be an integer >= 1, got ${schedule.rounds}`);
      return Array.from({ length: schedule.rounds }, (_, k) => targetDensity ** ((k + 1) / schedule.rounds));
    case "gradual":
    case "surgery":
    case "tick-tock":
      return [];
    case "dynamic":
      return [targetDensity];
    case "iterative": {
      const n = iterativeRounds(schedule, targetDensity);
      // Computed as (1 − rate)^r, not by repeated multiplication, so round r is exactly the density it promises.
      return Array.from({ length: n }, (_, k) => (k === n - 1 ? targetDensity : (1 - schedule.rate) ** (k + 1)));
    }
  }
}

/**
 * The peak LR of iterative round `round` (1-based: the round after `round` prunes) under SILO, or `configured` when
 * the schedule has no SILO peaks or the round is within the delay. The authors' loop index is the number of prunes
 * made (0 = the dense training), which is this `round`; their check values (ResNet-20: α 0.04, β 5, offset 0.03,
 * rate 0.2, delay 1) are round 2 → 0.03004, …, 6 → 0.06893.
 */
export function roundPeakLr(schedule: Schedule, round: number, configured: number): number {
  if (schedule.kind !== "iterative" || !schedule.lrPeaks || round <= schedule.lrPeaks.delay) return configured;
  const { alpha, beta, offset, delay } = schedule.lrPeaks;
  const rho = 1 - (1 - schedule.rate) ** (round - delay);
  return (alpha * rho ** beta) / (rho ** beta + (1 - rho) ** beta) + offset;
}

/**
 * Rounds an iterative schedule needs to reach `targetDensity`: ceil(log d / log(1 − rate)), at least 1. A density
 * that (1 − rate)^r reaches up to float rounding (0.25 with rate 0.5) takes r rounds, not r + 1.
 */
export function iterativeRounds(schedule: Extract<Schedule, { kind: "iterative" }>, targetDensity: number): number {
  checkDensity(targetDensity);
  if (!(schedule.rate > 0 && schedule.rate < 1)) throw new Error(`iterative rate must be in (0, 1), got ${schedule.rate}`);
  if (targetDensity >= 1) return 1;
  if (targetDensity <= 0) return Infinity;
  const exact = Math.log(targetDensity) / Math.log(1 - schedule.rate);
  return Math.max(1, Math.ceil(exact - 1e-9));
}

/**
 * Why an iterative schedule cannot run to `targetDensity`, or null when it can (a pure check, made when a sweep is
 * planned, so that an unreachable target is a bad input rather than a run that fails after its dense model):
 * more rounds than `maxRounds`, or a rewind epoch the pretraining does not have. Other schedules: always null.
 */
export function checkIterative(schedule: Schedule, targetDensity: number, pretrainEpochs: number): string | null {
  if (schedule.kind !== "iterative") return null;
  const { rate, maxRounds, rewind, rewindEpoch } = schedule;
  if (!(rate > 0 && rate < 1)) return `rate ${rate} must be in (0, 1)`;
  if (!Number.isInteger(maxRounds) || maxRounds < 1) return `max_rounds ${maxRounds} must be an integer >= 1`;
  const rounds = iterativeRounds(schedule, targetDensity);
  if (rounds > maxRounds) {
    const lowest = (1 - rate) ** maxRounds;
    const pct = (x: number) => `${+(100 * x).toPrecision(4)}%`;
    return `density ${pct(targetDensity)} needs ${Number.isFinite(rounds) ? rounds : "infinitely many"} rounds of ${pct(rate)}, more than max_rounds ${maxRounds}: ` +
      `reachable densities are ${pct(lowest)} to 100% (sparsity up to ${pct(1 - lowest)}); raise max_rounds or rate, or lower the target`;
  }
  if (rewind === "epoch" && !(Number.isInteger(rewindEpoch) && rewindEpoch >= 1 && rewindEpoch < pretrainEpochs)) {
    return `rewind_epoch ${rewindEpoch} must be an integer in [1, ${pretrainEpochs - 1}] (the pretraining has ${pretrainEpochs} epochs)`;
  }
  return null;
}

/**
 * For dynamic schedules: the fraction of each tensor's active weights to drop and regrow after `step` (counted over
 * all training of the sparse network, `totalSteps` steps), or null when the mask does not change then.
 */
export function updateFractionAtStep(schedule: Schedule, step: number, totalSteps: number): number | null {
  if (schedule.kind !== "dynamic") return null;
  const { interval, dropFraction, end, decay } = schedule;
  if (!Number.isInteger(interval) || interval < 1) throw new Error(`dynamic interval must be an integer number of steps >= 1, got ${interval}`);
  if (!(dropFraction > 0 && dropFraction <= 1)) throw new Error(`dynamic drop fraction must be in (0, 1], got ${dropFraction}`);
  if (!(end > 0 && end <= 1)) throw new Error(`dynamic end must be in (0, 1], got ${end}`);
  const last = end * totalSteps;
  if (step === 0 || step % interval !== 0 || step >= last) return null;
  return decay === "constant" ? dropFraction : (dropFraction / 2) * (1 + Math.cos((Math.PI * step) / last));
}

/**
 * For schedules that prune during fine-tuning: the density to prune to after `step` (0-based, counted over the
 * fine-tuning phase of `totalSteps` steps), or null when the mask is not updated at that step.
 */
export function densityAtStep(schedule: Schedule, targetDensity: number, step: number, totalSteps: number): number | null {
  if (schedule.kind !== "gradual") return null;
  if (schedule.remask) return remaskDensityAtStep(schedule, targetDensity, step, totalSteps);
  const { t0, n, dt } = gradualSteps(schedule, totalSteps);
  if (step < t0 || (step - t0) % dt !== 0 || (step - t0) / dt > n) return null;
  const sf = 1 - targetDensity;
  const si = schedule.initialSparsity;
  const progress = n === 0 ? 1 : (step - t0) / (n * dt);
  return 1 - (sf + (si - sf) * (1 - progress) ** 3);
}

/** A remasking gradual schedule's density after 0-based step `step` (see the `remask` add-on), or null. */
function remaskDensityAtStep(schedule: Extract<Schedule, { kind: "gradual" }>, targetDensity: number, step: number, totalSteps: number): number | null {
  const { start, end, frequency, initialSparsity } = schedule;
  gradualSteps(schedule, totalSteps); // the same checks as AGP's
  const t = step + 1;
  const ti = Math.floor(start * totalSteps);
  const tEnd = Math.floor(end * totalSteps);
  if (t <= ti || t > totalSteps || (t % frequency !== 0 && t !== totalSteps)) return null;
  if (t > tEnd || tEnd <= ti) return targetDensity;
  const r0 = 1 - initialSparsity;
  return targetDensity + (r0 - targetDensity) * (1 - (t - ti) / (tEnd - ti)) ** 3;
}

/** The gradual schedule in steps: first update t0, number of intervals n, interval Δt (n·Δt ≤ end·T − t0). */
export function gradualSteps(schedule: Extract<Schedule, { kind: "gradual" }>, totalSteps: number): { t0: number; n: number; dt: number } {
  const { start, end, frequency, initialSparsity } = schedule;
  if (!(start >= 0 && start < end && end <= 1)) throw new Error(`gradual schedule needs 0 <= start < end <= 1, got start ${start}, end ${end}`);
  if (!Number.isInteger(frequency) || frequency < 1) throw new Error(`gradual frequency must be an integer number of steps >= 1, got ${frequency}`);
  if (!(initialSparsity >= 0 && initialSparsity < 1)) throw new Error(`gradual initial sparsity must be in [0, 1), got ${initialSparsity}`);
  const t0 = Math.floor(start * totalSteps);
  const last = Math.max(t0, Math.floor(end * totalSteps) - 1);
  return { t0, n: Math.floor((last - t0) / frequency), dt: frequency };
}

function checkDensity(d: number): void {
  if (!(d >= 0 && d <= 1)) throw new Error(`target density ${d} outside [0, 1]`);
}
