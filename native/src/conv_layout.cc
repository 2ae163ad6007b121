#include "conv_layout.h"
#include "transpose8.h"

#include <immintrin.h>

#include <algorithm>

namespace convlayout {

void transpose(const float* src, int64_t R, int64_t C, float* dst) {
  // 32x32 tiles keep a tile's source rows and destination rows in L1 whatever the (power-of-two) strides.
  constexpr int64_t T = 32;
  for (int64_t r0 = 0; r0 < R; r0 += T) {
    const int64_t r1 = std::min(R, r0 + T);
    for (int64_t c0 = 0; c0 < C; c0 += T) {
      const int64_t c1 = std::min(C, c0 + T);
      int64_t r = r0;
      for (; r + 8 <= r1; r += 8) {
        int64_t c = c0;
        for (; c + 8 <= c1; c += 8) simd::transpose8x8(src + r * C + c, C, dst + c * R + r, R);
        for (; c < c1; ++c)
          for (int64_t i = r; i < r + 8; ++i) dst[c * R + i] = src[i * C + c];
      }
      for (; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) dst[c * R + r] = src[r * C + c];
    }
  }
}

at::Tensor filterFromHwio(const float* w, int64_t KH, int64_t KW, int64_t I, int64_t O) {
  at::Tensor t = at::empty({O, I, KH, KW}, at::TensorOptions().dtype(at::kFloat).memory_format(at::MemoryFormat::ChannelsLast));
  transpose(w, KH * KW * I, O, t.data_ptr<float>());
  return t;
}

void filterToHwio(const at::Tensor& t, float* dw) {
  const int64_t O = t.size(0), I = t.size(1), KH = t.size(2), KW = t.size(3);
  at::Tensor c = t.scalar_type() == at::kFloat ? t.contiguous(at::MemoryFormat::ChannelsLast)
                                               : t.to(at::kFloat).contiguous(at::MemoryFormat::ChannelsLast);
  transpose(c.data_ptr<float>(), O, KH * KW * I, dw);
}

bool planarForward(int64_t OH, int64_t OW, int64_t C, int64_t O) {
  return OH * OW <= 16 && C >= 256 && O >= 256;
}

bool wholeBatchFilterGrad(int64_t N, int64_t OH, int64_t OW, int64_t KH, int64_t KW, int64_t C, int64_t O) {
  return C >= 256 && O >= 256 && KH * KW * C > N * OH * OW;
}

at::Tensor nchwFromNhwc(const float* x, int64_t N, int64_t H, int64_t W, int64_t C) {
  at::Tensor t = at::empty({N, C, H, W}, at::TensorOptions().dtype(at::kFloat));
  float* d = t.data_ptr<float>();
  const int64_t img = H * W * C;
  for (int64_t n = 0; n < N; ++n) transpose(x + n * img, H * W, C, d + n * img);
  return t;
}

at::Tensor oihwFromHwio(const float* w, int64_t KH, int64_t KW, int64_t I, int64_t O) {
  const int64_t K = KH * KW;
  at::Tensor ohwi = at::empty({O, K * I}, at::TensorOptions().dtype(at::kFloat));
  transpose(w, K * I, O, ohwi.data_ptr<float>());
  at::Tensor t = at::empty({O, I, KH, KW}, at::TensorOptions().dtype(at::kFloat));
  const float* s = ohwi.data_ptr<float>();
  float* d = t.data_ptr<float>();
  for (int64_t o = 0; o < O; ++o) transpose(s + o * K * I, K, I, d + o * K * I);
  return t;
}

void nhwcFromNchw(const at::Tensor& y, float* out) {
  at::Tensor c = y.scalar_type() == at::kFloat ? y.contiguous() : y.to(at::kFloat).contiguous();
  const int64_t N = c.size(0), C = c.size(1), HW = c.size(2) * c.size(3);
  const float* s = c.data_ptr<float>();
  for (int64_t n = 0; n < N; ++n) transpose(s + n * C * HW, C, HW, out + n * C * HW);
}

}  // namespace convlayout
