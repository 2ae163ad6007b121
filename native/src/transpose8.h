// The float transposes in AVX registers that the sparse kernels, the direct kernels and the conv layout conversions
// share: an 8x8 block, and whole matrices by 8x8 and 4x4 blocks.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace simd {

// 8x8 block: dst[j][i] = src[i][j], rows `ss` and `ds` floats apart.
inline void transpose8x8(const float* s, int64_t ss, float* d, int64_t ds) {
  __m256 r0 = _mm256_loadu_ps(s + 0 * ss), r1 = _mm256_loadu_ps(s + 1 * ss);
  __m256 r2 = _mm256_loadu_ps(s + 2 * ss), r3 = _mm256_loadu_ps(s + 3 * ss);
  __m256 r4 = _mm256_loadu_ps(s + 4 * ss), r5 = _mm256_loadu_ps(s + 5 * ss);
  __m256 r6 = _mm256_loadu_ps(s + 6 * ss), r7 = _mm256_loadu_ps(s + 7 * ss);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(d + 0 * ds, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + 1 * ds, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// One 4x4 block of transpose (below): the tails of shapes whose sides are 4 mod 8 (LeNet-5-Caffe's conv2 has 12-wide
// rows of 20 channels) would otherwise go element by element, about half of such an image.
inline void transpose4(const float* __restrict__ s, int64_t ss, float* __restrict__ d, int64_t ds) {
  __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + ss), r2 = _mm_loadu_ps(s + 2 * ss), r3 = _mm_loadu_ps(s + 3 * ss);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(d, r0);
  _mm_storeu_ps(d + ds, r1);
  _mm_storeu_ps(d + 2 * ds, r2);
  _mm_storeu_ps(d + 3 * ds, r3);
}

// dst[c·dstStride + r] = src[r·srcStride + c] for r < rows, c < cols.
inline void transpose(const float* __restrict__ src, int64_t rows, int64_t cols, int64_t srcStride,
                      float* __restrict__ dst, int64_t dstStride) {
  constexpr int64_t T = 8;
  int64_t r0 = 0;
  for (; r0 + T <= rows; r0 += T) {
    int64_t c0 = 0;
    for (; c0 + T <= cols; c0 += T) {
      const float* s = src + r0 * srcStride + c0;
      transpose8x8(s, srcStride, dst + c0 * dstStride + r0, dstStride);
    }
    for (; c0 + 4 <= cols; c0 += 4) {
      transpose4(src + r0 * srcStride + c0, srcStride, dst + c0 * dstStride + r0, dstStride);
      transpose4(src + (r0 + 4) * srcStride + c0, srcStride, dst + c0 * dstStride + r0 + 4, dstStride);
    }
    for (; c0 < cols; ++c0)
      for (int64_t r = r0; r < r0 + T; ++r) dst[c0 * dstStride + r] = src[r * srcStride + c0];
  }
  if (r0 + 4 <= rows) {
    int64_t c0 = 0;
    for (; c0 + 4 <= cols; c0 += 4)
      transpose4(src + r0 * srcStride + c0, srcStride, dst + c0 * dstStride + r0, dstStride);
    for (; c0 < cols; ++c0)
      for (int64_t r = r0; r < r0 + 4; ++r) dst[c0 * dstStride + r] = src[r * srcStride + c0];
    r0 += 4;
  }
  for (; r0 < rows; ++r0)
    for (int64_t c = 0; c < cols; ++c) dst[c * dstStride + r0] = src[r0 * srcStride + c];
}

}  // namespace simd
