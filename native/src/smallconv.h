// Direct kernels for convolutions with a short filter row (KH*KW*C small, e.g. LeNet's first conv, 5x5 on one channel)
// and for 2x2 max pooling. Why: at K = 25, im2col + GEMM (libtorch/oneDNN) or the sparse kernels' planar transposes
// spend most of their time moving LeNet-5-Caffe's [128, 24, 24, 20] activations rather than multiplying; these read
// NHWC and write NHWC directly, one pass each.
//
// Single-threaded (a worker is one stream), so the bits do not depend on the thread count.
#pragma once

#include <cstdint>

namespace smallconv {

// Stride 1, dilation 1, no padding: y [N, OH, OW, O] from x [N, H, W, C] and w [KH, KW, C, O] (HWIO).
struct Geom {
  int64_t N, H, W, C, OH, OW, O, KH, KW;
};

// Whether the direct kernels take this geometry (K = KH*KW*C up to kMaxK, an output width they vectorize, valid
// stride-1 output size). Callers check stride, dilation and padding themselves.
constexpr int64_t kMaxK = 32;
bool applies(const Geom& g);

// y = act(conv(x, w) + bias): per output, acc = 0 then acc = fma(w[k], x[k], acc) for k ascending over the filter
// rows in `rows` (nullptr: every row; a row left out must be zero in w), then act(acc + bias) with act(v) = v < 0 ? 0
// : v (sparse::biasAct's expression). Over a sparse pattern's rows this is the sparse kernel's sum (its entries in k
// order; the extra zero weights add +-0), so its bits up to the sign of a zero.
void forward(const float* x, const float* w, const float* bias, bool relu, const Geom& g, float* y,
             const int32_t* rows = nullptr, int64_t nrows = -1);

// dw[k][o] = sum over the batch and the image of x[.. k ..] * dy[.. o], for the rows in `rows` (others written 0);
// `keep` (nullptr: all) a [K*O] 0/1 map of the positions to write, the rest set to 0 (a pattern's support).
// With `db`, dy is the gradient of the fused layer's output y = act(conv + bias) instead (layer-ops' Conv2DBiasAct):
// dz = BiasActGrad's (ReLU's gradient from y when `relu`), db its sums over every row, and dw that of dz, with the bits
// of BiasActGrad followed by gradFilter, without writing dz out (each image's dz stays in cache).
// With `poolCode` (and `db`), dy is instead the gradient of a 2x2 / stride-2 max pool over that ReLU's output,
// [N, OH/2, OW/2, O], and poolCode its winners (maxPoolCode2x2): each image's dz is routed from them in cache
// (routePooled), the bits of MaxPoolGrad, BiasActGrad and gradFilter with neither gradient written out.
void gradFilter(const float* x, const float* dy, const Geom& g, float* dw, const int32_t* rows = nullptr,
                int64_t nrows = -1, const uint8_t* keep = nullptr, const float* y = nullptr, bool relu = false,
                float* db = nullptr, const int32_t* poolCode = nullptr);

// 2x2 / stride-2 max pooling over fully in-bounds windows, NHWC: y = max in scan order from -inf, each step
// `xi > m ? xi : m` (tfjs' rule; the generic loop's bits). Returns false (nothing written) for geometries it does not
// take.
bool maxPool2x2(const float* x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t OH, int64_t OW, float* y);

// A conv layer's ReLU output y [N, H, W, C] (H, W even) through a 2x2 / stride-2 max pool, keeping what its gradient
// needs instead of y: p [N, H/2, W/2, C] with maxPool2x2's bits, and per pooled value an int32 code. Bits 0-2: the
// window position (0-3, row-major) the gradient reaches, or 4 for none. MaxPoolGrad routes dp to the first strict
// maximum from -inf, and ReLU's gradient then passes it only where y > 0, i.e. where that maximum p > 0. Bit 3 + k:
// position k holds a NaN (ReLU's gradient passes y's NaN). Returns how many elements of y are == 0 when
// `countZeros` (ReLU's dead units, as countZeros counts them), else 0.
int64_t maxPoolCode2x2(const float* y, int64_t N, int64_t H, int64_t W, int64_t C, float* p, int32_t* code,
                       bool countZeros);

// forward (ReLU) then maxPoolCode2x2 (OH, OW even), a few images at a time so that each chunk's y stays in cache
// between the conv that writes it and the pool that reads it: the bits of the two calls. Returns y's zeros when
// `countZeros`, else 0.
int64_t forwardPooled(const float* x, const float* w, const float* bias, const Geom& g, float* p, int32_t* code,
                      bool countZeros, const int32_t* rows = nullptr, int64_t nrows = -1);

// dz [N, 2*PH, 2*PW, C] from the pooled gradient dp [N, PH, PW, C] and maxPoolCode2x2's codes: 0 + dp at a window's
// winner, a NaN where y held one, +0 elsewhere (the bits of MaxPoolGrad then BiasActGrad, NaN payloads aside). With
// `dbacc`, dz's rows are added to it in row order (BiasActGrad's bias gradient, in double).
void routePooled(const float* dp, const int32_t* code, int64_t N, int64_t PH, int64_t PW, int64_t C, float* dz,
                 double* dbacc);

}  // namespace smallconv
