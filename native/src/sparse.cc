// Sparse (masked) training kernels; see sparse.h.
//
// Every kernel is one of two vectorised loops over a "planar" operand whose contiguous axis is the vectorised
// one (8 floats, AVX2):
//   SpMM:  out[g][r][0..8V) = sum over P's entries e of group g: w[e] * in[off[e] + r*irs + 0..8V)
//   SDDMM: acc[e][0..8)    += sum over r, v: in[off[e] + r*irs + 8v ..] * d[g][r][8v ..]   (lane sums at the end)
// A tile of R rows x V vectors of accumulators stays in registers while the group's entries stream by.
//   Dense:  the batch is the vectorised axis (xᵀ [K][B], rows of 8 images): forward groups by output column n
//           (CSC), grad-input by input row k (CSR), grad-weight dots column n of dyᵀ with row k of xᵀ.
//   Conv:   per image, the output row is the vectorised axis, read straight from the zero-padded image in planar
//           [C][Hp][Wp] layout at offset c·Hp·Wp + kh·Wp + kw (no im2col); grad-input is the same loop as a "full"
//           correlation of the planar, (KH-1, KW-1)-padded dy with the flipped kernel, grouped by input channel.
// Lanes past a row's end compute garbage that is never stored (SpMM) or is multiplied by zeros (SDDMM: d's tail
// lanes are zero); buffers carry zeroed slack so those reads stay in bounds.
#include "sparse.h"

#include "aligned.h"
#include "transpose8.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sparse {
namespace {

using i64 = int64_t;
using i32 = int32_t;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(what);
}

// Scratch reused across calls; grows only. Per thread, should several threads ever load the addon.
struct Scratch {
  std::vector<float> a, b, c, wv, acc;
  std::vector<i32> off, offW;
  std::vector<i64> dst;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}
template <typename T>
T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}
// The same, starting on a 64-byte boundary (aligned.h).
float* growAligned(std::vector<float>& v, size_t n) { return aligned::line(grow(v, n + 16)); }

// ---------------------------------------------------------------- micro-kernels

// One tile (R rows x V vectors, `in` and `out` already offset to it) for every group g < G: out is out + g·ops, or
// out + dst[g] with ADD (the sums are added there, and groups without entries are skipped).
template <int R, int V, bool ADD>
void spmmTiles(const float* __restrict__ in, i64 irs, const i32* __restrict__ ptr, const i32* __restrict__ off,
               const float* __restrict__ wv, i64 G, float* __restrict__ out, i64 ops, const i64* __restrict__ dst,
               i64 ors) {
  for (i64 g = 0; g < G; ++g) {
    const i64 e0 = ptr[g], e1 = ptr[g + 1];
    if (ADD && e0 == e1) continue;
    float* og = ADD ? out + dst[g] : out + g * ops;
    __m256 acc[R][V];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
    for (i64 e = e0; e < e1; ++e) {
      const __m256 w = _mm256_broadcast_ss(wv + e);
      const float* p = in + off[e];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + r * irs + 8 * v), acc[r][v]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) {
        float* o = og + r * ors + 8 * v;
        _mm256_storeu_ps(o, ADD ? _mm256_add_ps(_mm256_loadu_ps(o), acc[r][v]) : acc[r][v]);
      }
  }
}

// One tile of d (R rows x V vectors, resident in registers per group) for every group g < G:
// acc[e][0..8) += in[off[e] + tile] · d[g's plane, tile] lane by lane.
template <int R, int V>
void sddmmTiles(const float* __restrict__ in, i64 irs, const i32* __restrict__ ptr, const i32* __restrict__ off,
                i64 G, const float* __restrict__ d, i64 dps, i64 drs, float* __restrict__ acc) {
  for (i64 g = 0; g < G; ++g) {
    const i64 e0 = ptr[g], e1 = ptr[g + 1];
    if (e0 == e1) continue;
    const float* dg = d + g * dps;
    __m256 dv[R][V];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) dv[r][v] = _mm256_loadu_ps(dg + r * drs + 8 * v);
    for (i64 e = e0; e < e1; ++e) {
      const float* p = in + off[e];
      __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int v = 0; v < V; ++v) {
          if (((r * V + v) & 1) == 0) s0 = _mm256_fmadd_ps(dv[r][v], _mm256_loadu_ps(p + r * irs + 8 * v), s0);
          else s1 = _mm256_fmadd_ps(dv[r][v], _mm256_loadu_ps(p + r * irs + 8 * v), s1);
        }
      float* a = acc + 8 * e;
      _mm256_storeu_ps(a, _mm256_add_ps(_mm256_loadu_ps(a), _mm256_add_ps(s0, s1)));
    }
  }
}

using SpmmFn = void (*)(const float*, i64, const i32*, const i32*, const float*, i64, float*, i64, const i64*, i64);
using SddmmFn = void (*)(const float*, i64, const i32*, const i32*, i64, const float*, i64, i64, float*);

// Rows per tile for V vectors per row: at most 12 accumulators (SpMM) / 8 resident d vectors (SDDMM).
constexpr int kSpmmRows[5] = {0, 8, 6, 4, 3};
constexpr int kSddmmRows[5] = {0, 8, 4, 2, 2};

template <int V, bool ADD, int... Rs>
constexpr auto spmmRow(std::integer_sequence<int, Rs...>) {
  return std::array<SpmmFn, sizeof...(Rs)>{&spmmTiles<Rs + 1, V, ADD>...};
}
template <int V, int... Rs>
constexpr auto sddmmRow(std::integer_sequence<int, Rs...>) {
  return std::array<SddmmFn, sizeof...(Rs)>{&sddmmTiles<Rs + 1, V>...};
}

template <bool ADD>
SpmmFn spmmFn(int R, int V) {
  static const auto t1 = spmmRow<1, ADD>(std::make_integer_sequence<int, kSpmmRows[1]>{});
  static const auto t2 = spmmRow<2, ADD>(std::make_integer_sequence<int, kSpmmRows[2]>{});
  static const auto t3 = spmmRow<3, ADD>(std::make_integer_sequence<int, kSpmmRows[3]>{});
  static const auto t4 = spmmRow<4, ADD>(std::make_integer_sequence<int, kSpmmRows[4]>{});
  switch (V) {
    case 1: return t1[R - 1];
    case 2: return t2[R - 1];
    case 3: return t3[R - 1];
    default: return t4[R - 1];
  }
}
SddmmFn sddmmFn(int R, int V) {
  static const auto t1 = sddmmRow<1>(std::make_integer_sequence<int, kSddmmRows[1]>{});
  static const auto t2 = sddmmRow<2>(std::make_integer_sequence<int, kSddmmRows[2]>{});
  static const auto t3 = sddmmRow<3>(std::make_integer_sequence<int, kSddmmRows[3]>{});
  static const auto t4 = sddmmRow<4>(std::make_integer_sequence<int, kSddmmRows[4]>{});
  switch (V) {
    case 1: return t1[R - 1];
    case 2: return t2[R - 1];
    case 3: return t3[R - 1];
    default: return t4[R - 1];
  }
}

// Sums over the entries of every group g < G into the planes out[g·ops + r·ors + j] (r < rows, j < 8·nv); with
// `dst`, added into out + dst[g] instead.
void spmm(const float* in, i64 irs, const i32* ptr, const i32* off, const float* wv, i64 G, float* out, i64 ops,
          const i64* dst, i64 ors, i64 rows, i64 nv) {
  for (i64 v0 = 0; v0 < nv; v0 += 4) {
    const int V = static_cast<int>(std::min<i64>(4, nv - v0));
    const int RM = kSpmmRows[V];
    for (i64 r0 = 0; r0 < rows; r0 += RM) {
      const int R = static_cast<int>(std::min<i64>(RM, rows - r0));
      SpmmFn f = dst ? spmmFn<true>(R, V) : spmmFn<false>(R, V);
      f(in + r0 * irs + 8 * v0, irs, ptr, off, wv, G, out + r0 * ors + 8 * v0, ops, dst, ors);
    }
  }
}

// acc[e][0..8) += dot products of in at off[e] with d's plane of e's group (tail lanes of d must be zero).
void sddmm(const float* in, i64 irs, const i32* ptr, const i32* off, i64 G, const float* d, i64 dps, i64 drs,
           i64 rows, i64 nv, float* acc) {
  for (i64 v0 = 0; v0 < nv; v0 += 4) {
    const int V = static_cast<int>(std::min<i64>(4, nv - v0));
    const int RM = kSddmmRows[V];
    for (i64 r0 = 0; r0 < rows; r0 += RM) {
      const int R = static_cast<int>(std::min<i64>(RM, rows - r0));
      sddmmFn(R, V)(in + r0 * irs + 8 * v0, irs, ptr, off, G, d + r0 * drs + 8 * v0, dps, drs, acc);
    }
  }
}

inline float hsum(const float* a) {
  __m128 s = _mm_add_ps(_mm_loadu_ps(a), _mm_loadu_ps(a + 4));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

using simd::transpose;

inline i64 roundUp8(i64 n) { return (n + 7) & ~i64(7); }

// Conv entries of group o (CSC of the flattened HWIO kernel): offset into the planar padded image and weight.
void packConvByOut(const Pattern& p, const Conv& g, i64 planeStride, i64 rowStride, const float* w, i32* off,
                   float* wv) {
  for (i64 o = 0; o < g.O; ++o) {
    for (i64 e = p.colPtr[o]; e < p.colPtr[o + 1]; ++e) {
      const i64 k = p.colRow[e];
      const i64 c = k % g.C, kw = (k / g.C) % g.KW, kh = k / (g.C * g.KW);
      off[e] = static_cast<i32>(c * planeStride + kh * rowStride + kw);
      if (wv) wv[e] = w[k * g.O + o];
    }
  }
}

// Copies image b of NHWC x into the planar buffer xp [C][Hp][Wp] at (pt, pl); padding stays as it was (zero).
void toPlanar(const float* xb, const Conv& g, i64 Hp, i64 Wp, float* xp) {
  for (i64 h = 0; h < g.H; ++h)
    transpose(xb + h * g.W * g.C, g.W, g.C, g.C, xp + (h + g.pt) * Wp + g.pl, Hp * Wp);
}

}  // namespace

Pattern parse(const int32_t* q, int64_t len, int64_t K, int64_t N) {
  check(K >= 0 && N >= 0 && len >= N + 1 + K + 1, "sparse pattern: too short");
  Pattern p;
  p.K = K;
  p.N = N;
  p.colPtr = q;
  p.nnz = q[N];
  check(p.nnz >= 0 && p.nnz <= K * N && len == N + 1 + p.nnz + K + 1 + p.nnz, "sparse pattern: length mismatch");
  p.colRow = q + N + 1;
  p.rowPtr = p.colRow + p.nnz;
  p.rowCol = p.rowPtr + K + 1;
  check(p.colPtr[0] == 0 && p.rowPtr[0] == 0 && p.rowPtr[K] == p.nnz, "sparse pattern: bad pointers");
  for (i64 n = 0; n < N; ++n) check(p.colPtr[n] <= p.colPtr[n + 1], "sparse pattern: column pointers decrease");
  for (i64 k = 0; k < K; ++k) check(p.rowPtr[k] <= p.rowPtr[k + 1], "sparse pattern: row pointers decrease");
  for (i64 e = 0; e < p.nnz; ++e)
    check(p.colRow[e] >= 0 && p.colRow[e] < K && p.rowCol[e] >= 0 && p.rowCol[e] < N, "sparse pattern: index out of range");
  return p;
}

// ---------------------------------------------------------------- dense layers

void matmul(const float* x, const float* w, const Pattern& p, int64_t B, float* y) {
  Scratch& s = scratch();
  const i64 K = p.K, N = p.N, Bp = roundUp8(B);
  float* xT = growAligned(s.a, K * Bp);
  float* yT = growAligned(s.b, N * Bp);
  i32* off = grow(s.off, p.nnz);
  float* wv = grow(s.wv, p.nnz);
  if (Bp != B) std::memset(xT, 0, sizeof(float) * K * Bp);
  transpose(x, B, K, K, xT, Bp);
  for (i64 e = 0; e < p.nnz; ++e) off[e] = static_cast<i32>(p.colRow[e] * Bp);
  for (i64 n = 0; n < N; ++n)
    for (i64 e = p.colPtr[n]; e < p.colPtr[n + 1]; ++e) wv[e] = w[p.colRow[e] * N + n];
  spmm(xT, 8, p.colPtr, off, wv, N, yT, Bp, nullptr, 8, Bp / 8, 1);
  transpose(yT, N, B, Bp, y, N);
}

void matmulGradInput(const float* dy, const float* w, const Pattern& p, int64_t B, float* dx) {
  Scratch& s = scratch();
  const i64 K = p.K, N = p.N, Bp = roundUp8(B);
  float* dyT = growAligned(s.a, N * Bp);
  float* dxT = growAligned(s.b, K * Bp);
  i32* off = grow(s.off, p.nnz);
  float* wv = grow(s.wv, p.nnz);
  if (Bp != B) std::memset(dyT, 0, sizeof(float) * N * Bp);
  transpose(dy, B, N, N, dyT, Bp);
  for (i64 k = 0; k < K; ++k)
    for (i64 e = p.rowPtr[k]; e < p.rowPtr[k + 1]; ++e) {
      off[e] = static_cast<i32>(p.rowCol[e] * Bp);
      wv[e] = w[k * N + p.rowCol[e]];
    }
  spmm(dyT, 8, p.rowPtr, off, wv, K, dxT, Bp, nullptr, 8, Bp / 8, 1);
  transpose(dxT, K, B, Bp, dx, K);
}

void matmulGradWeight(const float* x, const float* dy, const Pattern& p, int64_t B, float* dw) {
  Scratch& s = scratch();
  const i64 K = p.K, N = p.N, Bp = roundUp8(B);
  float* xT = growAligned(s.a, K * Bp);
  float* dyT = growAligned(s.b, N * Bp);
  i32* off = grow(s.off, p.nnz);
  float* acc = growAligned(s.acc, 8 * p.nnz);
  if (Bp != B) {
    std::memset(xT, 0, sizeof(float) * K * Bp);
    std::memset(dyT, 0, sizeof(float) * N * Bp);
  }
  transpose(x, B, K, K, xT, Bp);
  transpose(dy, B, N, N, dyT, Bp);
  for (i64 e = 0; e < p.nnz; ++e) off[e] = static_cast<i32>(p.colRow[e] * Bp);
  std::memset(acc, 0, sizeof(float) * 8 * p.nnz);
  sddmm(xT, 8, p.colPtr, off, N, dyT, Bp, 8, Bp / 8, 1, acc);
  std::memset(dw, 0, sizeof(float) * K * N);
  for (i64 n = 0; n < N; ++n)
    for (i64 e = p.colPtr[n]; e < p.colPtr[n + 1]; ++e) dw[p.colRow[e] * N + n] = hsum(acc + 8 * e);
}

// ---------------------------------------------------------------- convolutions

namespace {
void checkConv(const Pattern& p, const Conv& g) {
  check(p.K == g.KH * g.KW * g.C && p.N == g.O, "sparse conv: pattern does not fit the filter");
  check(g.OH == g.H + g.pt + g.pb - g.KH + 1 && g.OW == g.W + g.pl + g.pr - g.KW + 1,
        "sparse conv: output size is not that of a stride-1 convolution");
  check(g.OH > 0 && g.OW > 0 && g.pt >= 0 && g.pb >= 0 && g.pl >= 0 && g.pr >= 0, "sparse conv: bad geometry");
}
}  // namespace

void biasAct(const float* y, const float* bias, float* out, int64_t rows, int64_t C, bool relu) {
  for (i64 r = 0; r < rows; ++r) {
    const float* yr = y + r * C;
    float* o = out + r * C;
    if (bias && relu) {
      for (i64 c = 0; c < C; ++c) { const float v = yr[c] + bias[c]; o[c] = v < 0.f ? 0.f : v; }
    } else if (bias) {
      for (i64 c = 0; c < C; ++c) o[c] = yr[c] + bias[c];
    } else if (relu) {
      for (i64 c = 0; c < C; ++c) { const float v = yr[c]; o[c] = v < 0.f ? 0.f : v; }
    } else if (o != yr) {
      std::memcpy(o, yr, sizeof(float) * C);
    }
  }
}

void conv2dEach(const float* x, const float* w, const Pattern& p, const Conv& g, const float* bias, bool relu,
                const std::function<float*(int64_t)>& out, const std::function<void(int64_t, float*)>& done) {
  checkConv(p, g);
  Scratch& s = scratch();
  const i64 Hp = g.H + g.pt + g.pb, Wp = aligned::row(g.W + g.pl + g.pr);
  const i64 nv = (g.OW + 7) / 8, ors = 8 * nv, ops = g.OH * ors;
  const i64 xpLen = g.C * Hp * Wp + g.KW + ors + 8;
  float* xp = growAligned(s.a, xpLen);
  float* yT = growAligned(s.b, g.O * ops);
  i32* off = grow(s.off, p.nnz);
  float* wv = grow(s.wv, p.nnz);
  std::memset(xp, 0, sizeof(float) * xpLen);
  packConvByOut(p, g, Hp * Wp, Wp, w, off, wv);
  for (i64 b = 0; b < g.N; ++b) {
    toPlanar(x + b * g.H * g.W * g.C, g, Hp, Wp, xp);
    spmm(xp, Wp, p.colPtr, off, wv, g.O, yT, ops, nullptr, ors, g.OH, nv);
    float* yb = out(b);
    for (i64 oy = 0; oy < g.OH; ++oy) transpose(yT + oy * ors, g.O, g.OW, ops, yb + oy * g.OW * g.O, g.O);
    // While the image's output is still in cache: one pass instead of an Add and a Relu over the whole batch.
    if (bias || relu) biasAct(yb, bias, yb, g.OH * g.OW, g.O, relu);
    if (done) done(b, yb);
  }
}

void conv2d(const float* x, const float* w, const Pattern& p, const Conv& g, float* y, const float* bias, bool relu) {
  const i64 image = g.OH * g.OW * g.O;
  conv2dEach(x, w, p, g, bias, relu, [&](i64 b) { return y + b * image; }, nullptr);
}

// dx as im2col's adjoint: per image, the column block of every kernel row k = (kh, kw, c) is the SpMM of row k of W
// (CSR) with dyᵀ in planar [O][OH][8·nv] layout, added straight into the planar padded dx at (c, kh, kw) (col2im).
// Only real products are computed, unlike a "full" correlation over a zero-padded dy.
// dw as SDDMM: per image, each entry's 8 lane sums of the planar padded x at its offset times dyᵀ of its output
// channel, summed over the batch in image order, the lanes added at the end.
// Both from one planar copy of each image's dy.
void conv2dGrads(const float* x, const float* w, const Pattern& p, const Conv& g,
                 const std::function<const float*(int64_t)>& dyOf, float* dx, float* dw) {
  checkConv(p, g);
  Scratch& s = scratch();
  const i64 Hp = g.H + g.pt + g.pb, Wp = aligned::row(g.W + g.pl + g.pr);
  const i64 nv = (g.OW + 7) / 8, ors = 8 * nv, ops = g.OH * ors;
  const i64 plane = Hp * Wp;
  float* dT = growAligned(s.a, g.O * ops);
  std::memset(dT, 0, sizeof(float) * g.O * ops);  // tail lanes stay zero: they add 0 past the row ends
  // The input gradient's CSR entries and col2im destinations.
  const i64 dxLen = g.C * plane + ors + 8;
  float* dxp = nullptr;
  i32* offIn = nullptr;
  float* wv = nullptr;
  i64* dst = nullptr;
  if (dx) {
    dxp = growAligned(s.b, dxLen);
    offIn = grow(s.off, p.nnz);
    wv = grow(s.wv, p.nnz);
    dst = grow(s.dst, p.K);
    for (i64 k = 0; k < p.K; ++k) {
      const i64 c = k % g.C, kw = (k / g.C) % g.KW, kh = k / (g.C * g.KW);
      dst[k] = c * plane + kh * Wp + kw;
      for (i64 e = p.rowPtr[k]; e < p.rowPtr[k + 1]; ++e) {
        offIn[e] = static_cast<i32>(p.rowCol[e] * ops);
        wv[e] = w[k * g.O + p.rowCol[e]];
      }
    }
  }
  // The filter gradient's CSC entries into the planar x, and their lane sums.
  const i64 xpLen = g.C * plane + g.KW + ors + 8;
  float* xp = nullptr;
  i32* offW = nullptr;
  float* acc = nullptr;
  if (dw) {
    xp = growAligned(s.c, xpLen);
    offW = grow(s.offW, p.nnz);
    acc = growAligned(s.acc, 8 * p.nnz);
    std::memset(xp, 0, sizeof(float) * xpLen);
    std::memset(acc, 0, sizeof(float) * 8 * p.nnz);
    packConvByOut(p, g, plane, Wp, nullptr, offW, nullptr);
  }
  for (i64 b = 0; b < g.N; ++b) {
    const float* dyb = dyOf(b);
    for (i64 oy = 0; oy < g.OH; ++oy) transpose(dyb + oy * g.OW * g.O, g.OW, g.O, g.O, dT + oy * ors, ops);
    if (dx) {
      std::memset(dxp, 0, sizeof(float) * dxLen);
      spmm(dT, ors, p.rowPtr, offIn, wv, p.K, dxp, 0, dst, Wp, g.OH, nv);
      float* dxb = dx + b * g.H * g.W * g.C;
      for (i64 h = 0; h < g.H; ++h)
        transpose(dxp + (h + g.pt) * Wp + g.pl, g.C, g.W, plane, dxb + h * g.W * g.C, g.C);
    }
    if (dw) {
      toPlanar(x + b * g.H * g.W * g.C, g, Hp, Wp, xp);
      sddmm(xp, Wp, p.colPtr, offW, g.O, dT, ops, ors, g.OH, nv, acc);
    }
  }
  if (!dw) return;
  std::memset(dw, 0, sizeof(float) * p.K * p.N);
  for (i64 o = 0; o < g.O; ++o)
    for (i64 e = p.colPtr[o]; e < p.colPtr[o + 1]; ++e) dw[p.colRow[e] * g.O + o] = hsum(acc + 8 * e);
}

void conv2dGradInput(const float* dy, const float* w, const Pattern& p, const Conv& g, float* dx) {
  const i64 image = g.OH * g.OW * g.O;
  conv2dGrads(nullptr, w, p, g, [&](i64 b) { return dy + b * image; }, dx, nullptr);
}

void conv2dGradFilter(const float* x, const float* dy, const Pattern& p, const Conv& g, float* dw) {
  const i64 image = g.OH * g.OW * g.O;
  conv2dGrads(x, nullptr, p, g, [&](i64 b) { return dy + b * image; }, nullptr, dw);
}

}  // namespace sparse
