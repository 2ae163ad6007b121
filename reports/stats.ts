/**
 * The statistics every report, table and command uses, written once: Student t and normal distributions, a
 * metric's summary over seeds (mean, sample std, t interval), the Wilson interval of one run's test accuracy, the
 * paired t-test of two methods over shared seeds, a two-proportion test for single runs on one test set, and how many
 * seeds would separate two methods. Pure functions; tested against scipy / published table values in
 * test/stats.test.ts.
 */

/** Two-sided significance level of every interval and test in the reports (95 % intervals). */
export const ALPHA = 0.05;

/** Summary of one metric over a group's runs (usually one run per seed). */
export interface Stat {
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1 denominator); null when n < 2. */
  std: number | null;
  min: number;
  max: number;
  /** Two-sided 95% confidence interval of the mean (Student t, n - 1 degrees of freedom); null when n < 2. */
  ci95: [number, number] | null;
}

/** Natural log of the gamma function (Lanczos approximation, g = 7, 9 terms), accurate to ~1e-13 for x > 0. */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let a = c[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let f = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    f *= d * c;
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const step = d * c;
    f *= step;
    if (Math.abs(step - 1) < 1e-15) break;
  }
  return f;
}

/** Regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  const front = Math.exp(lnFront);
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** CDF of Student's t distribution with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

const quantileCache = new Map<string, number>();

/** Quantile of Student's t distribution: the t with P(T <= t) = p. */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) throw new RangeError(`studentTQuantile: need 0 < p < 1 and df > 0 (got p=${p}, df=${df})`);
  const key = `${p}:${df}`;
  const hit = quantileCache.get(key);
  if (hit !== undefined) return hit;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  const q = (lo + hi) / 2;
  quantileCache.set(key, q);
  return q;
}

/** Summarize the finite values of a list; null when there are none. */
export function summarize(values: ReadonlyArray<number | null | undefined>): Stat | null {
  let n = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    n++;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (n === 0) return null;
  const mean = sum / n;
  if (n < 2) return { n, mean, std: null, min, max, ci95: null };
  let ss = 0;
  for (const v of values) {
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    ss += (v - mean) * (v - mean);
  }
  const std = Math.sqrt(ss / (n - 1));
  const half = studentTQuantile(0.975, n - 1) * (std / Math.sqrt(n));
  return { n, mean, std, min, max, ci95: [mean - half, mean + half] };
}

// ---------------------------------------------------------------------------------------------------------------
// Normal distribution

/** Regularized upper incomplete gamma Q(a, x) (series below a + 1, continued fraction above; Numerical Recipes 6.2). */
function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lnFront = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return 1 - sum * Math.exp(lnFront);
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const step = d * c;
    h *= step;
    if (Math.abs(step - 1) < 1e-16) break;
  }
  return Math.exp(lnFront) * h;
}

/** CDF of the standard normal distribution: Phi(x) = erfc(-x / sqrt 2) / 2, with erfc(y) = Q(1/2, y^2). */
export function normalCdf(x: number): number {
  const tail = 0.5 * gammaQ(0.5, (x * x) / 2);
  return x >= 0 ? 1 - tail : tail;
}

/** Upper tail of the standard normal, 1 - Phi(x), without the cancellation of 1 - normalCdf(x) for large x. */
export function normalSf(x: number): number {
  return normalCdf(-x);
}

const normalQuantileCache = new Map<number, number>();

/** Quantile of the standard normal distribution (bisection on normalCdf, to ~1e-14). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: need 0 < p < 1 (got ${p})`);
  const hit = normalQuantileCache.get(p);
  if (hit !== undefined) return hit;
  if (p < 0.5) return -normalQuantile(1 - p);
  let lo = 0;
  let hi = 1;
  while (normalCdf(hi) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-14 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  const q = (lo + hi) / 2;
  normalQuantileCache.set(p, q);
  return q;
}

// ---------------------------------------------------------------------------------------------------------------
// One run's test accuracy

/**
 * Wilson score interval of a proportion `p` observed on `n` trials (Wilson 1927): the binomial uncertainty of one
 * run's accuracy on its n test images. Unlike the normal (Wald) interval it stays inside [0, 1] and does not shrink
 * to a point at p = 0 or 1.
 */
export function wilsonInterval(p: number, n: number, alpha = ALPHA): [number, number] {
  if (!(n > 0) || !(p >= 0 && p <= 1)) throw new RangeError(`wilsonInterval: need n > 0 and 0 <= p <= 1 (got p=${p}, n=${n})`);
  const z = normalQuantile(1 - alpha / 2);
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z / (1 + z2n)) * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** A difference of two means (A − B) with its interval and test. */
export interface DiffTest {
  /** Observed difference A − B. */
  diff: number;
  /** Two-sided (1 − alpha) interval of the difference. */
  ci: [number, number];
  /** Two-sided p-value of "no difference". */
  p: number;
  /** p < alpha; the interval then excludes 0 (both come from the same statistic). */
  significant: boolean;
}

/**
 * Two accuracies pA on nA and pB on nB test images, one run each: the Agresti–Caffo interval of pA − pB (a Wald
 * interval after adding one success and one failure to each sample; Agresti & Caffo 2000) and the z test of the same
 * statistic, so the interval excludes 0 exactly when p < alpha. The two runs are evaluated on the same test images,
 * which makes their accuracies positively correlated: treating them as independent overstates the variance of the
 * difference, so the test errs towards "tie". McNemar's test would use the pairing but needs per-image predictions,
 * which runs do not store.
 */
export function twoProportionTest(pA: number, nA: number, pB: number, nB: number, alpha = ALPHA): DiffTest {
  const kA = pA * nA;
  const kB = pB * nB;
  const a = (kA + 1) / (nA + 2);
  const b = (kB + 1) / (nB + 2);
  const se = Math.sqrt((a * (1 - a)) / (nA + 2) + (b * (1 - b)) / (nB + 2));
  const z = normalQuantile(1 - alpha / 2);
  const d = a - b;
  const p = 2 * normalSf(Math.abs(d) / se);
  return { diff: pA - pB, ci: [d - z * se, d + z * se], p, significant: p < alpha };
}

// ---------------------------------------------------------------------------------------------------------------
// Paired comparison over seeds

export interface PairedTest extends DiffTest {
  /** Pairs (seeds). */
  n: number;
  /** Sample std of the per-pair differences. */
  std: number;
  t: number;
  df: number;
}

/**
 * Paired t-test of per-pair differences d_i = A_i − B_i (pairs share seed and dense model): mean, Student t
 * interval mean ± t(1 − alpha/2, n − 1) · s / sqrt(n), and the two-sided p of t = mean / (s / sqrt n), as scipy's
 * ttest_rel. Needs n >= 2. Differences all equal (s = 0) give p = 0 when they are not 0, else p = 1.
 */
export function pairedTTest(diffs: readonly number[], alpha = ALPHA): PairedTest {
  const n = diffs.length;
  if (n < 2) throw new RangeError(`pairedTTest: need at least 2 pairs (got ${n})`);
  const mean = diffs.reduce((s, d) => s + d, 0) / n;
  const std = Math.sqrt(diffs.reduce((s, d) => s + (d - mean) * (d - mean), 0) / (n - 1));
  const df = n - 1;
  const se = std / Math.sqrt(n);
  const half = studentTQuantile(1 - alpha / 2, df) * se;
  const t = se > 0 ? mean / se : mean === 0 ? 0 : Math.sign(mean) * Infinity;
  const p = se > 0 ? 2 * studentTCdf(-Math.abs(t), df) : mean === 0 ? 1 : 0;
  return { n, diff: mean, std, t, df, ci: [mean - half, mean + half], p, significant: p < alpha };
}

/**
 * How many seeds would separate two methods if the per-seed differences kept the observed mean and std: the
 * smallest n >= 2 with |mean| · sqrt(n) / std >= t(1 − alpha/2, n − 1), i.e. where the paired t-test would reach
 * p < alpha. Roughly (z · std / mean)^2 for large n. Infinity when the mean is 0; 2 when std is 0.
 */
export function seedsToSeparate(mean: number, std: number, alpha = ALPHA): number {
  if (mean === 0 || !Number.isFinite(mean)) return Infinity;
  if (std === 0) return 2;
  const ratio = Math.abs(mean) / std;
  // t quantiles exceed z, so the normal approximation is a lower bound to start from.
  let n = Math.max(2, Math.ceil((normalQuantile(1 - alpha / 2) / ratio) ** 2));
  if (n > 1e9) return n;
  // ratio·√n >= t(1 − α/2, n − 1)  ⟺  CDF_{n−1}(ratio·√n) >= 1 − α/2: one CDF per step instead of a quantile search.
  while (studentTCdf(ratio * Math.sqrt(n), n - 1) < 1 - alpha / 2) n++;
  return n;
}
