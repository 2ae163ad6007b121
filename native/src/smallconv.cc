// Direct small-filter convolutions and 2x2 max pooling; see smallconv.h.
//
// Layout trick: in NHWC the outputs of P consecutive pixels of a row are P*O contiguous floats. With P = 8 / gcd(O, 8)
// they are V = P*O/8 whole AVX2 vectors, and every vector's lanes belong to at most two pixels (for the widths
// instantiated below), so a vector of inputs is a blend of two broadcasts and a vector of weights is a fixed
// per-(k, v) row of a small table. Forward: R runs of V accumulators stay in registers while the filter rows stream
// by. Filter gradient: the same vectors, with dy loaded in place of the weights, accumulated per filter row.
#include "smallconv.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
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

template <int O>
void forwardT(const float* x, const float* w, const float* bias, bool relu, const Geom& g, float* y,
              const int32_t* rows, i64 nrows, const i64* xoff) {
  using L = Plan<O>;
  constexpr int P = L::P, V = L::V, R = V >= 10 ? 1 : 10 / V;
  const i64 K = g.KH * g.KW * g.C;
  std::vector<float> wt(K * V * 8), bt(bias ? V * 8 : 0);
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

template <int O>
void gradFilterT(const float* x, const float* dy, const Geom& g, float* dw, const int32_t* rows, i64 nrows,
                 const uint8_t* keep, const i64* xoff, const float* y, bool relu, float* db) {
  using L = Plan<O>;
  constexpr int P = L::P, V = L::V, KB = V >= 10 ? 1 : 10 / V;
  const i64 K = g.KH * g.KW * g.C;
  // Per image, a row block's sums stay in registers over the whole image; images are added in batch order.
  std::vector<float> macc(K * V * 8, 0.f);
  std::vector<double> tail(g.OW % P ? K * O : 0, 0.0);
  // With db: the image's dz is made here, in a buffer that stays in cache, and never written out.
  std::vector<float> dzimg(db && relu ? g.OH * g.OW * O : 0);
  std::vector<double> dbacc(db ? O : 0, 0.0);
  const i64 runs = g.OW / P;
  for (i64 b = 0; b < g.N; ++b) {
    const float* ximg = x + b * g.H * g.W * g.C;
    const float* dyimg = dy + b * g.OH * g.OW * O;
    if (db) dyimg = imageDz<O>(dyimg, y + b * g.OH * g.OW * O, relu, g.OH * g.OW, dzimg.data(), dbacc.data());
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
  dispatch(g.O, [&](auto o) { forwardT<decltype(o)::value>(x, w, bias, relu, g, y, r.rows, r.n, off.data()); });
}

void gradFilter(const float* x, const float* dy, const Geom& g, float* dw, const int32_t* rows, int64_t nrows,
                const uint8_t* keep, const float* y, bool relu, float* db) {
  const Rows r(g, rows, nrows);
  const std::vector<i64> off = offsets(g);
  dispatch(g.O, [&](auto o) { gradFilterT<decltype(o)::value>(x, dy, g, dw, r.rows, r.n, keep, off.data(), y, relu, db); });
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

}  // namespace smallconv
