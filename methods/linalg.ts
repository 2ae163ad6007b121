/**
 * Small dense linear algebra for the curvature methods, on the host in float64: matrices are row-major Float64Arrays.
 * Sizes here are a layer's fan-in or fan-out (hundreds to a few thousand), where O(n³) on the host is seconds at most.
 */

/** The lower Cholesky factor L of a symmetric positive-definite n × n matrix, m = L·Lᵀ (throws, naming `what`, if it is not SPD). */
export function cholesky(m: Float64Array, n: number, what = "matrix"): Float64Array {
  if (m.length !== n * n) throw new Error(`${what}: ${m.length} entries for ${n}×${n}`);
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = m[j * n + j];
    for (let k = 0; k < j; k++) d -= l[j * n + k] * l[j * n + k];
    if (!(d > 0)) throw new Error(`${what} is not positive definite (pivot ${j} of ${n} is ${d}); more damping would make it so`);
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = m[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s / ljj;
    }
  }
  return l;
}

/** Solves m·x = b for a symmetric positive-definite n × n m, by Cholesky (throws, naming `what`, if it is not SPD). */
export function spdSolve(m: Float64Array, n: number, b: ArrayLike<number>, what = "matrix"): Float64Array {
  const l = cholesky(m, n, what);
  const y = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    let s = y[i];
    for (let p = 0; p < i; p++) s -= l[i * n + p] * y[p];
    y[i] = s / l[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let p = i + 1; p < n; p++) s -= l[p * n + i] * y[p];
    y[i] = s / l[i * n + i];
  }
  return y;
}

/** The inverse of a symmetric positive-definite n × n matrix, by Cholesky (throws, naming `what`, if it is not SPD). */
export function spdInverse(m: Float64Array, n: number, what = "matrix"): Float64Array {
  const l = cholesky(m, n, what);
  // Row j of t is column j of L⁻¹ (forward substitution of L·x = e_j), so that m⁻¹ = L⁻ᵀ·L⁻¹ has entry (i, j) =
  // Σ_k t[i][k]·t[j][k]: every inner loop runs along rows (column-wise access was ~10× slower at n = 1153).
  const t = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const x = j * n;
    t[x + j] = 1 / l[j * n + j];
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      const row = i * n;
      for (let k = j; k < i; k++) s += l[row + k] * t[x + k];
      t[x + i] = -s / l[row + i];
    }
  }
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      const a = i * n, b = j * n;
      for (let k = i; k < n; k++) s += t[a + k] * t[b + k];
      inv[i * n + j] = s;
      inv[j * n + i] = s;
    }
  }
  return inv;
}

/** a (r × k) times b (k × c). */
export function matMul(a: Float64Array, b: Float64Array, r: number, k: number, c: number): Float64Array {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) {
    for (let p = 0; p < k; p++) {
      const v = a[i * k + p];
      if (v === 0) continue;
      const row = p * c;
      const o = i * c;
      for (let j = 0; j < c; j++) out[o + j] += v * b[row + j];
    }
  }
  return out;
}

/** The square submatrix of the n × n matrix m on the rows and columns `idx`. */
export function principal(m: Float64Array, n: number, idx: readonly number[]): Float64Array {
  const q = idx.length;
  const out = new Float64Array(q * q);
  for (let a = 0; a < q; a++) for (let b = 0; b < q; b++) out[a * q + b] = m[idx[a] * n + idx[b]];
  return out;
}

/** trace(m) / n of an n × n matrix: the mean of its diagonal. */
export function meanDiagonal(m: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += m[i * n + i];
  return s / n;
}
