// See scatterconv.h.
#include "scatterconv.h"

#include "aligned.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace scatterconv {
namespace {

using i64 = int64_t;

// Lanes [0, r) of a vector, r in 0..7.
inline __m256i tailMask(i64 r) {
  alignas(32) static const int32_t ramp[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ramp + 8 - r));
}

}  // namespace

bool applies(const Geom& g) {
  return g.KW * g.C >= 16 && g.OH == g.H - g.KH + 1 && g.OW == g.W - g.KW + 1 && g.OH > 0 && g.OW > 0 && g.O > 0;
}

int64_t nonzeros(const float* v, int64_t n) {
  i64 count = 0, i = 0;
  const __m256 zero = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8)
    count += 8 - __builtin_popcount(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + i), zero, _CMP_EQ_OQ)));
  for (; i < n; ++i) count += v[i] != 0.f;
  return count;
}

namespace {

// One output position's nonzero gradient entries, compacted: (channel, value) pairs, in channel order.
i64 compact(const float* d, i64 O, int32_t* ch, float* val) {
  i64 m = 0;
  for (i64 o = 0; o < O; ++o) {
    ch[m] = static_cast<int32_t>(o);
    val[m] = d[o];
    m += d[o] != 0.f;  // branch-free: the slot is overwritten unless the value is kept
  }
  return m;
}

// Up to 12 vectors of one row (+ a masked tail vector when TAIL), in registers: acc = a[...], then
// acc += v_e * src_e[...] over the entries e, then a[...] = acc. Every term costs one load and one FMA.
template <int NV, bool TAIL>
void rowBlock(float* a, const float* const* src, const float* vs, i64 count, __m256i tail) {
  constexpr int T = NV + (TAIL ? 1 : 0);
  __m256 acc[T > 0 ? T : 1];
#pragma GCC unroll 16
  for (int i = 0; i < NV; ++i) acc[i] = _mm256_loadu_ps(a + 8 * i);
  if constexpr (TAIL) acc[NV] = _mm256_maskload_ps(a + 8 * NV, tail);
  for (i64 e = 0; e < count; ++e) {
    const __m256 v = _mm256_set1_ps(vs[e]);
    const float* f = src[e];
#pragma GCC unroll 16
    for (int i = 0; i < NV; ++i) acc[i] = _mm256_fmadd_ps(v, _mm256_loadu_ps(f + 8 * i), acc[i]);
    if constexpr (TAIL) acc[NV] = _mm256_fmadd_ps(v, _mm256_maskload_ps(f + 8 * NV, tail), acc[NV]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < NV; ++i) _mm256_storeu_ps(a + 8 * i, acc[i]);
  if constexpr (TAIL) _mm256_maskstore_ps(a + 8 * NV, tail, acc[NV]);
}

// rowBlock over a whole row of `row` floats, in blocks of 12 vectors; src[e] is moved along the row with it.
void rowAdd(float* a, i64 row, const float** src, const float* vs, i64 count, __m256i tail) {
  for (i64 b = 0; b < row; b += 96) {
    const i64 len = row - b < 96 ? row - b : 96;
    const int nv = static_cast<int>(len / 8);
    const bool t = len % 8 != 0;
    switch (nv * 2 + (t ? 1 : 0)) {
#define PB_CASE(k) \
  case 2 * k: rowBlock<k, false>(a + b, src, vs, count, tail); break; \
  case 2 * k + 1: rowBlock<k, true>(a + b, src, vs, count, tail); break;
      PB_CASE(0) PB_CASE(1) PB_CASE(2) PB_CASE(3) PB_CASE(4) PB_CASE(5) PB_CASE(6)
      PB_CASE(7) PB_CASE(8) PB_CASE(9) PB_CASE(10) PB_CASE(11) PB_CASE(12)
#undef PB_CASE
    }
    if (len == 96)
      for (i64 e = 0; e < count; ++e) src[e] += 96;
  }
}

}  // namespace

void gradInput(const float* dy, const float* w, const Geom& g, float* dx) {
  const i64 row = g.KW * g.C;
  // wt[o][kh][kw*C + c] = w[kh][kw][c][o]: filter o's rows contiguous, each starting on a 64-byte boundary (rows of
  // a multiple of 16 floats from an aligned start), so that no load of 8 floats along a row straddles two cache lines.
  const i64 rowStride = aligned::row(row), K = g.KH * rowStride;
  aligned::Floats wbuf(g.O * K);
  float* wt = wbuf.data();
  for (i64 kh = 0; kh < g.KH; ++kh)
    for (i64 j = 0; j < row; ++j)
      for (i64 o = 0; o < g.O; ++o) wt[o * K + kh * rowStride + j] = w[(kh * row + j) * g.O + o];
  std::memset(dx, 0, sizeof(float) * g.N * g.H * g.W * g.C);
  const __m256i tail = tailMask(row % 8);
  std::vector<int32_t> ch(g.O + 1);
  std::vector<float> val(g.O + 1);
  std::vector<const float*> src(g.O + 1);
  for (i64 n = 0; n < g.N; ++n)
    for (i64 oy = 0; oy < g.OH; ++oy)
      for (i64 ox = 0; ox < g.OW; ++ox) {
        const i64 m = compact(dy + ((n * g.OH + oy) * g.OW + ox) * g.O, g.O, ch.data(), val.data());
        if (m == 0) continue;
        float* base = dx + ((n * g.H + oy) * g.W + ox) * g.C;
        // Each window row is loaded and stored once, every visited channel's filter row added into it in
        // registers, in channel order.
        for (i64 kh = 0; kh < g.KH; ++kh) {
          for (i64 e = 0; e < m; ++e) src[e] = wt + ch[e] * K + kh * rowStride;
          rowAdd(base + kh * g.W * g.C, row, src.data(), val.data(), m, tail);
        }
      }
}

void gradFilter(const float* x, const float* dy, const Geom& g, float* dw, const uint8_t* keep) {
  const i64 row = g.KW * g.C, K = g.KH * row, PI = g.OH * g.OW;
  std::vector<float> acc(g.O * K, 0.f);  // acc[o][kh][kw*C + c]
  const __m256i tail = tailMask(row % 8);
  // Image by image (its input stays in cache), the visits grouped by channel, positions in order within each: then
  // each channel's gradient rows take the sum over its visits in registers, one window row load per term.
  std::vector<int32_t> start(g.O + 1), fill(g.O);
  std::vector<int32_t> pos(PI * g.O);
  std::vector<float> vs(PI * g.O);
  std::vector<const float*> src(PI);
  for (i64 n = 0; n < g.N; ++n) {
    const float* d = dy + n * PI * g.O;
    std::fill(start.begin(), start.end(), 0);
    for (i64 p = 0; p < PI; ++p)
      for (i64 o = 0; o < g.O; ++o) start[o + 1] += d[p * g.O + o] != 0.f;
    for (i64 o = 0; o < g.O; ++o) start[o + 1] += start[o];
    for (i64 o = 0; o < g.O; ++o) fill[o] = start[o];
    for (i64 p = 0; p < PI; ++p) {
      // The window's offset in the image (stored instead of the position: no division per visit and row below).
      const int32_t off = static_cast<int32_t>(((p / g.OW) * g.W + p % g.OW) * g.C);
      for (i64 o = 0; o < g.O; ++o) {
        const float v = d[p * g.O + o];
        if (v == 0.f) continue;
        pos[fill[o]] = off;
        vs[fill[o]++] = v;
      }
    }
    const float* ximg = x + n * g.H * g.W * g.C;
    for (i64 o = 0; o < g.O; ++o) {
      const i64 count = start[o + 1] - start[o];
      if (count == 0) continue;
      const int32_t* po = pos.data() + start[o];
      for (i64 kh = 0; kh < g.KH; ++kh) {
        for (i64 e = 0; e < count; ++e) src[e] = ximg + po[e] + kh * g.W * g.C;
        rowAdd(acc.data() + o * K + kh * row, row, src.data(), vs.data() + start[o], count, tail);
      }
    }
  }
  for (i64 k = 0; k < K; ++k)
    for (i64 o = 0; o < g.O; ++o) dw[k * g.O + o] = !keep || keep[k * g.O + o] ? acc[o * K + k] : 0.f;
}

}  // namespace scatterconv
