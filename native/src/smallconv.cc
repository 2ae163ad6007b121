// Direct small-filter convolutions and 2x2 max pooling; see smallconv.h.
//
// Layout trick: in NHWC the outputs of P consecutive pixels of a row are P*O contiguous floats. With P = 8 / gcd(O, 8)
// they are V = P*O/8 whole AVX2 vectors, and every vector's lanes belong to at most two pixels (for the widths
// instantiated below), so a vector of inputs is a blend of two broadcasts and a vector of weights is a fixed
// per-(k, v) row of a small table. Forward: R runs of V accumulators stay in registers while the filter rows stream
// by. Filter gradient: the same vectors, with dy loaded in place of the weights, accumulated per filter row.
#include "smallconv.h"

#include "aligned.h"
#include "transpose8.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

namespace smallconv {
namespace {

using i64 = int64_t;

constexpr int gcd8(int o) { return o % 8 == 0 ? 8 : o % 4 == 0 ? 4 : o % 2 == 0 ? 2 : 1; }

template <int O>
struct Plan {
  static constexpr int P = 8 / gcd8(O);
  static constexpr int V = P * O / 8;
  static constexpr int pa(int v) { return (8 * v) / O; }
  static constexpr int pb(int v) { return (8 * v + 7) / O; }
  // Lanes of vector v that belong to pixel pb(v) (blend immediate).
  static constexpr int mask(int v) {
    int m = 0;
    for (int l = 0; l < 8; ++l)
      if ((8 * v + l) / O != pa(v)) m |= 1 << l;
    return m;
  }
  static constexpr bool ok() {
    for (int v = 0; v < V; ++v)
      if (pb(v) - pa(v) > 1) return false;
    return true;
  }
};

// Inputs of vector v for one run: lanes of pixel pa(v) get xb[pa], the others xb[pb].
template <int O, int v>
inline __m256 lanes(const __m256* xb) {
  using L = Plan<O>;
  if constexpr (L::pa(v) == L::pb(v)) return xb[L::pa(v)];
  else return _mm256_blend_ps(xb[L::pa(v)], xb[L::pb(v)], L::mask(v));
}

template <int O, int... vs>
inline void fmaRun(const __m256* xb, const float* __restrict__ wk, __m256* acc, std::integer_sequence<int, vs...>) {
  ((acc[vs] = _mm256_fmadd_ps(_mm256_loadu_ps(wk + 8 * vs), lanes<O, vs>(xb), acc[vs])), ...);
}

template <int O, int... vs>
inline void fmaGrad(const __m256* xb, const float* __restrict__ dz, __m256* acc, std::integer_sequence<int, vs...>) {
  ((acc[vs] = _mm256_fmadd_ps(lanes<O, vs>(xb), _mm256_loadu_ps(dz + 8 * vs), acc[vs])), ...);
}

// Weight (or bias) table: t[k][v][l] = src[k*O + channel of lane l of vector v].
template <int O>
void table(const float* src, i64 K, float* t) {
  using L = Plan<O>;
  for (i64 k = 0; k < K; ++k)
    for (int v = 0; v < L::V; ++v)
      for (int l = 0; l < 8; ++l) t[(k * L::V + v) * 8 + l] = src[k * O + (8 * v + l) % O];
}

template <int O, int R>
inline void forwardRuns(const float* __restrict__ xs, i64 C, const i64* __restrict__ xoff, const int32_t* rows,
                        i64 nrows, const float* __restrict__ wt, const float* __restrict__ bt, bool relu,
                        float* __restrict__ ys) {
  using L = Plan<O>;
  constexpr int P = L::P, V = L::V;
  __m256 acc[R][V];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  for (i64 i = 0; i < nrows; ++i) {
    const i64 k = rows[i];
    const float* xk = xs + xoff[k];
    const float* wk = wt + k * V * 8;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      __m256 xb[P];
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) xb[p] = _mm256_broadcast_ss(xk + (r * P + p) * C);
      fmaRun<O>(xb, wk, acc[r], std::make_integer_sequence<int, V>{});
    }
  }
  const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      __m256 t = acc[r][v];
      if (bt) t = _mm256_add_ps(t, _mm256_loadu_ps(bt + 8 * v));
      // max(0, t) is `t < 0 ? 0 : t` lane by lane: NaN and -0 pass through as they do there.
      if (relu) t = _mm256_max_ps(zero, t);
      _mm256_storeu_ps(ys + (r * P * O) + 8 * v, t);
    }
}

// One output pixel the vector runs leave over (OW not a multiple of P), scalar with the same operation order.
inline void forwardPixel(const float* xs, const i64* xoff, const int32_t* rows, i64 nrows, const float* w, i64 O,
                         const float* bias, bool relu, float* ys) {
  for (i64 o = 0; o < O; ++o) {
    float acc = 0.f;
    for (i64 i = 0; i < nrows; ++i) acc = std::fma(w[rows[i] * O + o], xs[xoff[rows[i]]], acc);
    if (bias) acc += bias[o];
    ys[o] = relu && acc < 0.f ? 0.f : acc;
  }
}

// A first conv on grey images (C = 1) vectorises better along the output row than along the channels: a tile of NV
// vectors of 8 pixels x 4 channels keeps 4*NV accumulators while the filter rows stream by, each row feeding 4*NV
// FMAs from NV input loads and 4 weight broadcasts (the channel-vectorised runs feed 10 FMAs from 4 broadcasts and 5
// table loads, and are bound by the loads). Every output is the same sum in the same order (acc = 0, then fma over
// the rows ascending, + bias, max(0, .)), so the bits are forwardT's. The tile goes out as NHWC, 4 channels of each
// pixel per 128-bit store.
// Not inlined: in its own function the 12 accumulators, 3 input vectors and the broadcast fit the 16 registers
// (inlined into the loops around it, constants hoisted from them push an accumulator onto the stack).
template <int NV>
__attribute__((noinline)) void rowTile(const float* __restrict__ xs, const i64* __restrict__ xoff,
                                       const i64* __restrict__ woff, i64 nrows, const float* __restrict__ w,
                                       const float* bias, bool relu, i64 O, float* __restrict__ ys) {
  __m256 acc[4][NV];
#pragma GCC unroll 16
  for (int c = 0; c < 4; ++c)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[c][v] = _mm256_setzero_ps();
  for (i64 i = 0; i < nrows; ++i) {
    const float* xk = xs + xoff[i];
    const float* wk = w + woff[i];
    __m256 xv[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) xv[v] = _mm256_loadu_ps(xk + 8 * v);
#pragma GCC unroll 16
    for (int c = 0; c < 4; ++c) {
      const __m256 wb = _mm256_broadcast_ss(wk + c);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[c][v] = _mm256_fmadd_ps(wb, xv[v], acc[c][v]);
    }
  }
  const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 16
  for (int c = 0; c < 4; ++c)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      if (bias) acc[c][v] = _mm256_add_ps(acc[c][v], _mm256_set1_ps(bias[c]));
      // max(0, t) is `t < 0 ? 0 : t` lane by lane, as in forwardRuns.
      if (relu) acc[c][v] = _mm256_max_ps(zero, acc[c][v]);
    }
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    // 4 channels x 8 pixels to 8 pixels x 4 channels: u_j holds pixel j in its low half and pixel j + 4 in its high.
    const __m256 t0 = _mm256_unpacklo_ps(acc[0][v], acc[1][v]), t1 = _mm256_unpackhi_ps(acc[0][v], acc[1][v]);
    const __m256 t2 = _mm256_unpacklo_ps(acc[2][v], acc[3][v]), t3 = _mm256_unpackhi_ps(acc[2][v], acc[3][v]);
    const __m256 u[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                         _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
    float* y = ys + 8 * v * O;
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      _mm_storeu_ps(y + j * O, _mm256_castps256_ps128(u[j]));
      _mm_storeu_ps(y + (j + 4) * O, _mm256_extractf128_ps(u[j], 1));
    }
  }
}

// Each visited filter row's input offset (from an output pixel's input position), in visiting order.
std::vector<i64> visitOffsets(const i64* xoff, const int32_t* rows, i64 nrows) {
  std::vector<i64> xo(nrows);
  for (i64 i = 0; i < nrows; ++i) xo[i] = xoff[rows[i]];
  return xo;
}

// forwardT for C = 1, O a multiple of 4 and OW of 8 (the callers check): rowTile over each output row.
void forwardGrey(const float* x, const float* w, const float* bias, bool relu, const Geom& g, float* y,
                 const int32_t* rows, i64 nrows, const i64* xoff) {
  const i64 O = g.O, nv = g.OW / 8;
  // Each visited row's input offset and weight row, in visiting order.
  const std::vector<i64> xo = visitOffsets(xoff, rows, nrows);
  std::vector<i64> wo(nrows);
  for (i64 i = 0; i < nrows; ++i) wo[i] = rows[i] * O;
  for (i64 b = 0; b < g.N; ++b)
    for (i64 oy = 0; oy < g.OH; ++oy) {
      const float* xrow = x + (b * g.H + oy) * g.W;
      float* yrow = y + (b * g.OH + oy) * g.OW * O;
      for (i64 o0 = 0; o0 < O; o0 += 4) {
        const float* bo = bias ? bias + o0 : nullptr;
        i64 v = 0;
        for (; v + 3 <= nv; v += 3) rowTile<3>(xrow + 8 * v, xo.data(), wo.data(), nrows, w + o0, bo, relu, O, yrow + 8 * v * O + o0);
        if (nv - v == 2) rowTile<2>(xrow + 8 * v, xo.data(), wo.data(), nrows, w + o0, bo, relu, O, yrow + 8 * v * O + o0);
        if (nv - v == 1) rowTile<1>(xrow + 8 * v, xo.data(), wo.data(), nrows, w + o0, bo, relu, O, yrow + 8 * v * O + o0);
      }
    }
}
bool greyApplies(const Geom& g) { return g.C == 1 && g.O % 4 == 0 && g.OW % 8 == 0; }

template <int O>
void forwardT(const float* x, const float* w, const float* bias, bool relu, const Geom& g, float* y,
              const int32_t* rows, i64 nrows, const i64* xoff) {
  using L = Plan<O>;
  constexpr int P = L::P, V = L::V, R = V >= 10 ? 1 : 10 / V;
  const i64 K = g.KH * g.KW * g.C;
  aligned::Floats wt(K * V * 8), bt(bias ? V * 8 : 0);
  table<O>(w, K, wt.data());
  if (bias) table<O>(bias, 1, bt.data());
  const float* btp = bias ? bt.data() : nullptr;
  const i64 runs = g.OW / P;
  for (i64 b = 0; b < g.N; ++b) {
    for (i64 oy = 0; oy < g.OH; ++oy) {
      const float* xrow = x + (b * g.H + oy) * g.W * g.C;
      float* yrow = y + (b * g.OH + oy) * g.OW * O;
      i64 run = 0;
      for (; run + R <= runs; run += R)
        forwardRuns<O, R>(xrow + run * P * g.C, g.C, xoff, rows, nrows, wt.data(), btp, relu, yrow + run * P * O);
      for (; run < runs; ++run)
        forwardRuns<O, 1>(xrow + run * P * g.C, g.C, xoff, rows, nrows, wt.data(), btp, relu, yrow + run * P * O);
      for (i64 ox = runs * P; ox < g.OW; ++ox)
        forwardPixel(xrow + ox * g.C, xoff, rows, nrows, w, O, bias, relu, yrow + ox * O);
    }
  }
}

template <int O, int KB>
inline void gradRows(const float* __restrict__ ximg, const float* __restrict__ dyimg, const Geom& g,
                     const i64* __restrict__ xoff, const int32_t* rows, float* __restrict__ macc) {
  using L = Plan<O>;
  constexpr int P = L::P, V = L::V;
  const i64 runs = g.OW / P;
  __m256 acc[KB][V];
#pragma GCC unroll 16
  for (int j = 0; j < KB; ++j)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[j][v] = _mm256_setzero_ps();
  for (i64 oy = 0; oy < g.OH; ++oy) {
    const float* xrow = ximg + oy * g.W * g.C;
    const float* dyrow = dyimg + oy * g.OW * O;
    for (i64 run = 0; run < runs; ++run) {
      const float* xs = xrow + run * P * g.C;
      const float* dz = dyrow + run * P * O;
#pragma GCC unroll 16
      for (int j = 0; j < KB; ++j) {
        const float* xk = xs + xoff[rows[j]];
        __m256 xb[P];
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) xb[p] = _mm256_broadcast_ss(xk + p * g.C);
        fmaGrad<O>(xb, dz, acc[j], std::make_integer_sequence<int, V>{});
      }
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < KB; ++j) {
    float* m = macc + rows[j] * V * 8;
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(m + 8 * v, _mm256_add_ps(_mm256_loadu_ps(m + 8 * v), acc[j][v]));
  }
}

// dz of one image as BiasActGrad computes it (relu: the RELUGRAD expression `y > 0 ? dy : (y is NaN ? y : 0)`, else
// dy), and its rows added to the bias gradient's double sums in row order, as biasActGrad's column sums add them.
template <int O>
const float* imageDz(const float* __restrict__ dy, const float* __restrict__ y, bool relu, i64 rows,
                     float* __restrict__ dz, double* __restrict__ dbacc) {
  const float* src = dy;
  if (relu) {
    for (i64 j = 0; j < rows * O; ++j) {
      const float v = y[j];
      dz[j] = v > 0.f ? dy[j] : (v != v ? v : 0.f);
    }
    src = dz;
  }
  for (i64 r = 0; r < rows; ++r)
    for (int o = 0; o < O; ++o) dbacc[o] += src[r * O + o];
  return src;
}

// Image b's gradient of the conv's output as gradFilter takes it: dy's own, or with `db` its dz made in `buf` (in cache,
// never written out) from y (imageDz) or routed from a pool's gradient by its codes (routePooled), the bias sums in
// `dbacc`.
template <int O>
const float* imageGrad(const float* dy, const Geom& g, i64 b, const float* y, bool relu, double* dbacc, const int32_t* code,
                       float* buf) {
  const i64 plane = g.OH * g.OW;
  if (code) {
    const i64 pooled = (g.OH / 2) * (g.OW / 2) * O;
    routePooled(dy + b * pooled, code + b * pooled, 1, g.OH / 2, g.OW / 2, O, buf, dbacc);
    return buf;
  }
  if (dbacc) return imageDz<O>(dy + b * plane * O, y + b * plane * O, relu, plane, buf, dbacc);
  return dy + b * plane * O;
}

// One tile of the grey filter gradient (below): KB filter rows x 4 channels of 8-lane sums over one image's pixels,
// each row of 8 pixels feeding 4*KB FMAs from KB input loads and 4 loads of planar dz; added into m after the image.
template <int KB>
__attribute__((noinline)) void gradTile(const float* __restrict__ ximg, i64 W, const i64* __restrict__ xo,
                                        const float* __restrict__ dz, i64 plane, i64 OH, i64 nv, i64 O,
                                        float* __restrict__ m) {
  __m256 acc[KB][4];
#pragma GCC unroll 16
  for (int j = 0; j < KB; ++j)
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) acc[j][c] = _mm256_setzero_ps();
  for (i64 oy = 0; oy < OH; ++oy) {
    const float* xr = ximg + oy * W;
    const float* dr = dz + oy * nv * 8;
    for (i64 v = 0; v < nv; ++v) {
      __m256 xv[KB];
#pragma GCC unroll 16
      for (int j = 0; j < KB; ++j) xv[j] = _mm256_loadu_ps(xr + xo[j] + 8 * v);
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        const __m256 d = _mm256_loadu_ps(dr + c * plane + 8 * v);
#pragma GCC unroll 16
        for (int j = 0; j < KB; ++j) acc[j][c] = _mm256_fmadd_ps(xv[j], d, acc[j][c]);
      }
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < KB; ++j)
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      float* mm = m + (j * O + c) * 8;
      _mm256_storeu_ps(mm, _mm256_add_ps(_mm256_loadu_ps(mm), acc[j][c]));
    }
}

// gradFilterT for a grey first conv (greyApplies), vectorised along the output row as forwardGrey is: per image, dz
// transposed in cache to planar [O][OH*OW], then gradTile over tiles of 3 filter rows x 4 channels (dz's 4 planes
// stay in L1 across the row tiles). Each (row, channel) sum is 8 lanes, each over the image's pixels in order and
// added up image by image, the lanes added in order at the end.
template <int O>
void gradFilterGrey(const float* x, const float* dy, const Geom& g, float* dw, const int32_t* rows, i64 nrows,
                    const uint8_t* keep, const i64* xoff, const float* y, bool relu, float* db, const int32_t* code) {
  const i64 plane = g.OH * g.OW, nv = g.OW / 8;
  aligned::Floats macc(nrows * O * 8), dzT(O * plane);
  aligned::Floats dzimg(db && (relu || code) ? plane * O : 0);
  std::vector<double> dbacc(db ? O : 0, 0.0);
  const std::vector<i64> xo = visitOffsets(xoff, rows, nrows);
  for (i64 b = 0; b < g.N; ++b) {
    const float* ximg = x + b * g.H * g.W;
    const float* d = imageGrad<O>(dy, g, b, y, relu, db ? dbacc.data() : nullptr, code, dzimg.data());
    simd::transpose(d, plane, O, O, dzT.data(), plane);
    for (i64 o0 = 0; o0 < O; o0 += 4) {
      const float* dz = dzT.data() + o0 * plane;
      i64 i = 0;
      for (; i + 3 <= nrows; i += 3) gradTile<3>(ximg, g.W, xo.data() + i, dz, plane, g.OH, nv, O, macc.data() + (i * O + o0) * 8);
      if (nrows - i == 2) gradTile<2>(ximg, g.W, xo.data() + i, dz, plane, g.OH, nv, O, macc.data() + (i * O + o0) * 8);
      if (nrows - i == 1) gradTile<1>(ximg, g.W, xo.data() + i, dz, plane, g.OH, nv, O, macc.data() + (i * O + o0) * 8);
    }
  }
  if (db)
    for (int o = 0; o < O; ++o) db[o] = static_cast<float>(dbacc[o]);
  std::memset(dw, 0, sizeof(float) * g.KH * g.KW * O);
  for (i64 i = 0; i < nrows; ++i) {
    const i64 k = rows[i];
    for (i64 o = 0; o < O; ++o) {
      const float* m = macc.data() + (i * O + o) * 8;
      float s = 0.f;
      for (int l = 0; l < 8; ++l) s += m[l];
      dw[k * O + o] = !keep || keep[k * O + o] ? s : 0.f;
    }
  }
}

template <int O>
void gradFilterT(const float* x, const float* dy, const Geom& g, float* dw, const int32_t* rows, i64 nrows,
                 const uint8_t* keep, const i64* xoff, const float* y, bool relu, float* db, const int32_t* code) {
  if (greyApplies(g)) return gradFilterGrey<O>(x, dy, g, dw, rows, nrows, keep, xoff, y, relu, db, code);
  using L = Plan<O>;
  constexpr int P = L::P, V = L::V, KB = V >= 10 ? 1 : 10 / V;
  const i64 K = g.KH * g.KW * g.C;
  // Per image, a row block's sums stay in registers over the whole image; images are added in batch order.
  aligned::Floats macc(K * V * 8);
  std::vector<double> tail(g.OW % P ? K * O : 0, 0.0);
  // With db: the image's dz is made here, in a buffer that stays in cache, and never written out.
  aligned::Floats dzimg(db && (relu || code) ? g.OH * g.OW * O : 0);
  std::vector<double> dbacc(db ? O : 0, 0.0);
  const i64 runs = g.OW / P;
  for (i64 b = 0; b < g.N; ++b) {
    const float* ximg = x + b * g.H * g.W * g.C;
    const float* dyimg = imageGrad<O>(dy, g, b, y, relu, db ? dbacc.data() : nullptr, code, dzimg.data());
    i64 i = 0;
    for (; i + KB <= nrows; i += KB) gradRows<O, KB>(ximg, dyimg, g, xoff, rows + i, macc.data());
    for (; i < nrows; ++i) gradRows<O, 1>(ximg, dyimg, g, xoff, rows + i, macc.data());
    if (!tail.empty()) {
      for (i64 oy = 0; oy < g.OH; ++oy)
        for (i64 ox = runs * P; ox < g.OW; ++ox) {
          const float* xs = ximg + (oy * g.W + ox) * g.C;
          const float* d = dyimg + (oy * g.OW + ox) * O;
          for (i64 r = 0; r < nrows; ++r)
            for (i64 o = 0; o < O; ++o) tail[rows[r] * O + o] += static_cast<double>(xs[xoff[rows[r]]]) * d[o];
        }
    }
  }
  if (db)
    for (int o = 0; o < O; ++o) db[o] = static_cast<float>(dbacc[o]);
  std::memset(dw, 0, sizeof(float) * K * O);
  for (i64 r = 0; r < nrows; ++r) {
    const i64 k = rows[r];
    // Lanes in a fixed order: vector by vector, lane by lane.
    float s[O] = {};
    const float* m = macc.data() + k * V * 8;
    for (int v = 0; v < V; ++v)
      for (int l = 0; l < 8; ++l) s[(8 * v + l) % O] += m[8 * v + l];
    for (i64 o = 0; o < O; ++o) {
      const float t = tail.empty() ? s[o] : static_cast<float>(s[o] + tail[k * O + o]);
      dw[k * O + o] = !keep || keep[k * O + o] ? t : 0.f;
    }
  }
}

// Offsets of filter row k = (kh, kw, c) from an output pixel's input position.
std::vector<i64> offsets(const Geom& g) {
  std::vector<i64> off(g.KH * g.KW * g.C);
  for (i64 kh = 0; kh < g.KH; ++kh)
    for (i64 kw = 0; kw < g.KW; ++kw)
      for (i64 c = 0; c < g.C; ++c) off[(kh * g.KW + kw) * g.C + c] = (kh * g.W + kw) * g.C + c;
  return off;
}

// The filter rows a kernel visits: the given ones (a mask's surviving rows), or every row of the filter.
struct Rows {
  std::vector<int32_t> all;
  const int32_t* rows;
  i64 n;
  Rows(const Geom& g, const int32_t* given, i64 ngiven) : rows(given), n(ngiven) {
    if (given) return;
    all.resize(g.KH * g.KW * g.C);
    for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int32_t>(k);
    rows = all.data();
    n = static_cast<i64>(all.size());
  }
};

template <typename F>
bool dispatch(i64 O, F&& f) {
  switch (O) {
    case 6: f(std::integral_constant<int, 6>{}); return true;    // LeNet-5
    case 8: f(std::integral_constant<int, 8>{}); return true;
    case 16: f(std::integral_constant<int, 16>{}); return true;
    case 20: f(std::integral_constant<int, 20>{}); return true;  // LeNet-5-Caffe
    case 32: f(std::integral_constant<int, 32>{}); return true;
    case 64: f(std::integral_constant<int, 64>{}); return true;
    default: return false;
  }
}

static_assert(Plan<6>::ok() && Plan<20>::ok() && Plan<8>::ok() && Plan<16>::ok() && Plan<32>::ok() && Plan<64>::ok(),
              "an instantiated width has a vector spanning three pixels");

}  // namespace

bool applies(const Geom& g) {
  const i64 K = g.KH * g.KW * g.C;
  if (K < 1 || K > kMaxK || g.N < 1 || g.OH < 1 || g.OW < 1) return false;
  if (g.OH != g.H - g.KH + 1 || g.OW != g.W - g.KW + 1) return false;
  return dispatch(g.O, [](auto) {});
}

void forward(const float* x, const float* w, const float* bias, bool relu, const Geom& g, float* y,
             const int32_t* rows, int64_t nrows) {
  const Rows r(g, rows, nrows);
  const std::vector<i64> off = offsets(g);
  if (greyApplies(g)) return forwardGrey(x, w, bias, relu, g, y, r.rows, r.n, off.data());
  dispatch(g.O, [&](auto o) { forwardT<decltype(o)::value>(x, w, bias, relu, g, y, r.rows, r.n, off.data()); });
}

void gradFilter(const float* x, const float* dy, const Geom& g, float* dw, const int32_t* rows, int64_t nrows,
                const uint8_t* keep, const float* y, bool relu, float* db, const int32_t* poolCode) {
  const Rows r(g, rows, nrows);
  const std::vector<i64> off = offsets(g);
  dispatch(g.O, [&](auto o) {
    gradFilterT<decltype(o)::value>(x, dy, g, dw, r.rows, r.n, keep, off.data(), y, relu, db, poolCode);
  });
}

namespace {
template <int C>
void maxPool2x2T(const float* __restrict__ x, i64 N, i64 H, i64 W, i64 Cr, i64 OH, i64 OW, float* __restrict__ y) {
  const i64 Ch = C > 0 ? C : Cr, rs = W * Ch;
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (i64 b = 0; b < N; ++b)
    for (i64 oy = 0; oy < OH; ++oy) {
      const float* x0 = x + (b * H + 2 * oy) * rs;
      const float* x1 = x0 + rs;
      float* yo = y + (b * OH + oy) * OW * Ch;
      for (i64 ox = 0; ox < OW; ++ox, yo += Ch) {
        const i64 o = 2 * ox * Ch;
        i64 c = 0;
        // _mm256_max_ps(a, m) is `a > m ? a : m` lane by lane: the scalar rule, NaN included.
        for (; c + 8 <= Ch; c += 8) {
          __m256 m = _mm256_max_ps(_mm256_loadu_ps(x0 + o + c), ninf);
          m = _mm256_max_ps(_mm256_loadu_ps(x0 + o + Ch + c), m);
          m = _mm256_max_ps(_mm256_loadu_ps(x1 + o + c), m);
          m = _mm256_max_ps(_mm256_loadu_ps(x1 + o + Ch + c), m);
          _mm256_storeu_ps(yo + c, m);
        }
        for (; c < Ch; ++c) {
          float m = -std::numeric_limits<float>::infinity();
          for (float a : {x0[o + c], x0[o + Ch + c], x1[o + c], x1[o + Ch + c]}) m = a > m ? a : m;
          yo[c] = m;
        }
      }
    }
}
}  // namespace

bool maxPool2x2(const float* x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t OH, int64_t OW, float* y) {
  if (2 * OH > H || 2 * OW > W || C < 1) return false;
  switch (C) {
    case 20: maxPool2x2T<20>(x, N, H, W, C, OH, OW, y); break;
    case 50: maxPool2x2T<50>(x, N, H, W, C, OH, OW, y); break;
    default: maxPool2x2T<0>(x, N, H, W, C, OH, OW, y); break;
  }
  return true;
}

namespace {
// One pooled value's code and max from its window (a0..a3 in scan order), the scalar form of the vector loop below.
inline float poolOne(float a0, float a1, float a2, float a3, int32_t* code) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const float m0 = a0 > ninf ? a0 : ninf;
  const int32_t w0 = a0 > ninf ? 0 : 4;
  const float m1 = a1 > m0 ? a1 : m0;
  const int32_t w1 = a1 > m0 ? 1 : w0;
  const float m2 = a2 > m1 ? a2 : m1;
  const int32_t w2 = a2 > m1 ? 2 : w1;
  const float m3 = a3 > m2 ? a3 : m2;
  const int32_t w3 = a3 > m2 ? 3 : w2;
  *code = (m3 > 0.f ? w3 : 4) | (a0 != a0) << 3 | (a1 != a1) << 4 | (a2 != a2) << 5 | (a3 != a3) << 6;
  return m3;
}
}  // namespace

namespace {
// Lanes 0 .. n-1 of a vector (n < 8) as a load / store mask.
inline __m256i tailMask(i64 n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline __m256 load(const float* p, bool part, __m256i lane) {
  return part ? _mm256_maskload_ps(p, lane) : _mm256_loadu_ps(p);
}

template <bool kCountZeros>
void maxPoolCodeT(const float* __restrict__ y, i64 N, i64 H, i64 W, i64 C, float* __restrict__ p,
                  int32_t* __restrict__ code, i64* zerosOut, bool* sawNan) {
  const i64 PH = H / 2, PW = W / 2, rs = W * C;
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity()), zero = _mm256_setzero_ps();
  const __m256i none = _mm256_set1_epi32(4);
  const __m256i pos[4] = {_mm256_set1_epi32(0), _mm256_set1_epi32(1), _mm256_set1_epi32(2), _mm256_set1_epi32(3)};
  __m256i zacc = _mm256_setzero_si256();
  __m256 nanAcc = _mm256_setzero_ps();
  const __m256i allLanes = _mm256_set1_epi32(-1);
  i64 zeros = 0;
  for (i64 b = 0; b < N; ++b)
    for (i64 py = 0; py < PH; ++py) {
      const float* r0 = y + (b * H + 2 * py) * rs;
      const float* r1 = r0 + rs;
      float* po = p + (b * PH + py) * PW * C;
      int32_t* co = code + (b * PH + py) * PW * C;
      for (i64 px = 0; px < PW; ++px, po += C, co += C) {
        const float* s0 = r0 + 2 * px * C;
        const float* s1 = s0 + C;
        const float* s2 = r1 + 2 * px * C;
        const float* s3 = s2 + C;
        for (i64 c = 0; c < C; c += 8) {
          // The last, partial vector of a row: masked loads (0 in the other lanes) and stores.
          const bool part = c + 8 > C;
          const __m256i lane = part ? tailMask(C - c) : allLanes;
          const __m256 a0 = load(s0 + c, part, lane), a1 = load(s1 + c, part, lane);
          const __m256 a2 = load(s2 + c, part, lane), a3 = load(s3 + c, part, lane);
          // _mm256_max_ps(a, m) is `a > m ? a : m` lane by lane (NaN never wins): maxPool2x2's bits.
          const __m256 m = _mm256_max_ps(a3, _mm256_max_ps(a2, _mm256_max_ps(a1, _mm256_max_ps(a0, ninf))));
          // The first strict maximum is the first position equal to m; selections only (maxima fall at random).
          __m256i w = _mm256_blendv_epi8(none, pos[3], _mm256_castps_si256(_mm256_cmp_ps(a3, m, _CMP_EQ_OQ)));
          w = _mm256_blendv_epi8(w, pos[2], _mm256_castps_si256(_mm256_cmp_ps(a2, m, _CMP_EQ_OQ)));
          w = _mm256_blendv_epi8(w, pos[1], _mm256_castps_si256(_mm256_cmp_ps(a1, m, _CMP_EQ_OQ)));
          w = _mm256_blendv_epi8(w, pos[0], _mm256_castps_si256(_mm256_cmp_ps(a0, m, _CMP_EQ_OQ)));
          w = _mm256_blendv_epi8(none, w, _mm256_castps_si256(_mm256_cmp_ps(m, zero, _CMP_GT_OQ)));
          if (part) {
            _mm256_maskstore_ps(po + c, lane, m);
            _mm256_maskstore_epi32(co + c, lane, w);
          } else {
            _mm256_storeu_ps(po + c, m);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(co + c), w);
          }
          nanAcc = _mm256_or_ps(nanAcc, _mm256_or_ps(_mm256_cmp_ps(a0, a1, _CMP_UNORD_Q), _mm256_cmp_ps(a2, a3, _CMP_UNORD_Q)));
          if (kCountZeros) {
            const __m256 in = _mm256_castsi256_ps(lane);
            for (const __m256 a : {a0, a1, a2, a3})
              zacc = _mm256_sub_epi32(zacc, _mm256_castps_si256(_mm256_and_ps(in, _mm256_cmp_ps(a, zero, _CMP_EQ_OQ))));
          }
        }
      }
    }
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), zacc);
  for (int l = 0; l < 8; ++l) zeros += lanes[l];
  *zerosOut = zeros;
  *sawNan = _mm256_movemask_ps(nanAcc) != 0;
}
}  // namespace

int64_t maxPoolCode2x2(const float* __restrict__ y, int64_t N, int64_t H, int64_t W, int64_t C, float* __restrict__ p,
                       int32_t* __restrict__ code, bool countZeros) {
  i64 zeros = 0;
  bool sawNan = false;
  if (countZeros) maxPoolCodeT<true>(y, N, H, W, C, p, code, &zeros, &sawNan);
  else maxPoolCodeT<false>(y, N, H, W, C, p, code, &zeros, &sawNan);
  if (sawNan) {
    // A NaN somewhere (a diverging run): every code again with the positions of its window's NaNs (poolOne).
    const i64 PH = H / 2, PW = W / 2;
    for (i64 b = 0; b < N; ++b)
      for (i64 py = 0; py < PH; ++py)
        for (i64 px = 0; px < PW; ++px) {
          const float* s0 = y + ((b * H + 2 * py) * W + 2 * px) * C;
          const float* s2 = s0 + W * C;
          const i64 o = ((b * PH + py) * PW + px) * C;
          for (i64 c = 0; c < C; ++c) p[o + c] = poolOne(s0[c], s0[C + c], s2[c], s2[C + c], code + o + c);
        }
  }
  return countZeros ? zeros : 0;
}

int64_t forwardPooled(const float* x, const float* w, const float* bias, const Geom& g, float* p, int32_t* code,
                      bool countZeros, const int32_t* rows, int64_t nrows) {
  // 4 images of LeNet-5-Caffe's conv1 output are 184 KB: L2-resident.
  const i64 chunk = std::max<i64>(1, (256 * 1024) / std::max<i64>(1, g.OH * g.OW * g.O * 4));
  aligned::Floats y(std::min(chunk, g.N) * g.OH * g.OW * g.O);
  const i64 pooled = (g.OH / 2) * (g.OW / 2) * g.O;
  int64_t zeros = 0;
  for (i64 b = 0; b < g.N; b += chunk) {
    Geom part = g;
    part.N = std::min(chunk, g.N - b);
    forward(x + b * g.H * g.W * g.C, w, bias, true, part, y.data(), rows, nrows);
    zeros += maxPoolCode2x2(y.data(), part.N, g.OH, g.OW, g.O, p + b * pooled, code + b * pooled, countZeros);
  }
  return zeros;
}

void routePooled(const float* __restrict__ dp, const int32_t* __restrict__ code, int64_t N, int64_t PH, int64_t PW,
                 int64_t C, float* __restrict__ dz, double* __restrict__ dbacc) {
  const __m256 vnan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()), zero = _mm256_setzero_ps();
  const __m256i seven = _mm256_set1_epi32(7), allLanes = _mm256_set1_epi32(-1);
  const i64 W = 2 * PW;
  for (i64 b = 0; b < N; ++b)
    for (i64 py = 0; py < PH; ++py)
      for (int32_t di = 0; di < 2; ++di) {
        // Output row 2py + di holds window positions k0 = 2di (even columns) and k0 + 1 (odd columns).
        const int32_t k0 = 2 * di;
        const __m256i kv0 = _mm256_set1_epi32(k0), kv1 = _mm256_set1_epi32(k0 + 1);
        const __m256i nb0 = _mm256_set1_epi32(1 << (3 + k0)), nb1 = _mm256_set1_epi32(1 << (4 + k0));
        const float* gRow = dp + (b * PH + py) * PW * C;
        const int32_t* cRow = code + (b * PH + py) * PW * C;
        float* out = dz + (b * 2 * PH + 2 * py + di) * W * C;
        for (i64 c = 0; c < C; c += 8) {
          const bool part = c + 8 > C;
          const __m256i lane = part ? tailMask(C - c) : allLanes;
          // The bias gradient's double sums of these 8 columns, carried along the row in registers: the same
          // additions in the same order as BiasActGrad's. At most one of a window's two values is nonzero, so their
          // float sum is exact and adding it adds what the two would.
          alignas(32) double s[8] = {};
          for (i64 l = 0; dbacc && l < 8 && c + l < C; ++l) s[l] = dbacc[c + l];
          __m256d acc0 = _mm256_load_pd(s), acc1 = _mm256_load_pd(s + 4);
          for (i64 pj = 0; pj < PW; ++pj) {
            const i64 at = pj * C + c;
            const __m256i v = part ? _mm256_maskload_epi32(cRow + at, lane) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cRow + at));
            // 0 + dp where the gradient reaches a position (MaxPoolGrad's sum), +0 elsewhere, a NaN where y held one.
            const __m256 g = _mm256_add_ps(zero, load(gRow + at, part, lane));
            const __m256i k = _mm256_and_si256(v, seven);
            const __m256 o0 = _mm256_blendv_ps(_mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(k, kv0)), g), vnan,
                                               _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(v, nb0), nb0)));
            const __m256 o1 = _mm256_blendv_ps(_mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(k, kv1)), g), vnan,
                                               _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(v, nb1), nb1)));
            float* o = out + 2 * pj * C + c;
            if (part) {
              _mm256_maskstore_ps(o, lane, o0);
              _mm256_maskstore_ps(o + C, lane, o1);
            } else {
              _mm256_storeu_ps(o, o0);
              _mm256_storeu_ps(o + C, o1);
            }
            if (dbacc) {
              const __m256 both = _mm256_add_ps(o0, o1);
              acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(both)));
              acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(both, 1)));
            }
          }
          if (!dbacc) continue;
          _mm256_store_pd(s, acc0);
          _mm256_store_pd(s + 4, acc1);
          for (i64 l = 0; l < 8 && c + l < C; ++l) dbacc[c + l] = s[l];
        }
      }
}

}  // namespace smallconv
