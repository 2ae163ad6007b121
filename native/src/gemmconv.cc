// sgemm + col2im input gradient; see gemmconv.h.
#include "gemmconv.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace gemmconv {
namespace {

using i64 = int64_t;

// Images per chunk: the chunk's column gradient (rows * K floats) within ~512 KiB, so it is still in L2 when col2im
// reads it (conv2: 4 images, 256 rows; 64 to 2048 rows were tried, 256 was fastest).
i64 chunkImages(const Geom& g) {
  const i64 K = g.KH * g.KW * g.C, pix = g.OH * g.OW;
  const i64 budget = (512 * 1024 / 4) / K;  // rows
  return std::max<i64>(1, std::min<i64>(g.N, budget / std::max<i64>(1, pix)));
}

// dx[n, oy + ky, ox + kx, c] += dcols[row][(ky, kx, c)], rows in order (a fixed summation order).
void col2imAdd(const float* dcols, const Geom& g, i64 n0, i64 nb, float* dx) {
  const i64 run = g.KW * g.C, K = g.KH * run;
  const float* r = dcols;
  for (i64 n = n0; n < n0 + nb; ++n) {
    float* dxn = dx + n * g.H * g.W * g.C;
    for (i64 oy = 0; oy < g.OH; ++oy)
      for (i64 ox = 0; ox < g.OW; ++ox, r += K)
        for (i64 ky = 0; ky < g.KH; ++ky) {
          float* __restrict__ d = dxn + ((oy + ky) * g.W + ox) * g.C;
          const float* __restrict__ s = r + ky * run;
          for (i64 j = 0; j < run; ++j) d[j] += s[j];
        }
  }
}

void sgemm(char ta, char tb, i64 M, i64 N, i64 K, const float* A, i64 lda, const float* B, i64 ldb, float beta,
           float* C, i64 ldc) {
  if (dnnl_sgemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc) != dnnl_success)
    throw std::runtime_error("gemmconv: dnnl_sgemm failed");
}

// One scratch buffer per thread, grown as needed (the kernels run on the caller's thread).
float* scratch(i64 n) {
  thread_local std::vector<float> buf;
  if (static_cast<i64>(buf.size()) < n) buf.resize(n);
  return buf.data();
}

}  // namespace

bool applies(const Geom& g) {
  const i64 K = g.KH * g.KW * g.C;
  return g.N > 0 && g.KH * g.KW > 1 && K > 32 && K <= 2048 && g.O > 0 && g.O <= 512 && g.OH == g.H - g.KH + 1 &&
         g.OW == g.W - g.KW + 1 && g.OH > 0 && g.OW > 0;
}

void gradInput(const float* dy, const float* w, const Geom& g, float* dx) {
  const i64 K = g.KH * g.KW * g.C, pix = g.OH * g.OW, cb = chunkImages(g);
  float* dcols = scratch(cb * pix * K);
  std::fill(dx, dx + g.N * g.H * g.W * g.C, 0.f);
  for (i64 n0 = 0; n0 < g.N; n0 += cb) {
    const i64 nb = std::min(cb, g.N - n0), rows = nb * pix;
    sgemm('N', 'T', rows, K, g.O, dy + n0 * pix * g.O, g.O, w, g.O, 0.f, dcols, K);
    col2imAdd(dcols, g, n0, nb, dx);
  }
}

}  // namespace gemmconv
