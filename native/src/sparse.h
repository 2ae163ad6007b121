// Sparse (masked) training kernels: a weight matrix W [K, N] (a dense kernel [in, out], or a conv kernel HWIO
// flattened to [KH*KW*C, O]) whose nonzeros are confined to a fixed pattern P, the pruning mask's support.
// Forward and grad-input are SpMM over P, grad-weight is an SDDMM that writes only P's positions (zero elsewhere).
// P is given twice, as CSC (per output column n: its rows k, ascending) and CSR (per row k: its columns n).
//
// Single-threaded (a worker is one stream); scratch buffers are reused across calls.
#pragma once

#include <cstdint>
#include <functional>

namespace sparse {

struct Pattern {
  int64_t K, N, nnz;
  const int32_t* colPtr;  // [N + 1]
  const int32_t* colRow;  // [nnz]: k of each entry, column by column
  const int32_t* rowPtr;  // [K + 1]
  const int32_t* rowCol;  // [nnz]: n of each entry, row by row
};

// Validates a packed pattern [colPtr | colRow | rowPtr | rowCol] of `len` ints for W [K, N]; throws on mismatch.
Pattern parse(const int32_t* p, int64_t len, int64_t K, int64_t N);

// Conv geometry (NHWC input, HWIO filter), stride 1, dilation 1, explicit padding.
struct Conv {
  int64_t N, H, W, C, OH, OW, O, KH, KW, pt, pb, pl, pr;
};

// y = conv(x, W) with W zero outside P; with `bias` (length O) and/or `relu`, y = act(conv + bias) (see biasAct).
void conv2d(const float* x, const float* w, const Pattern& p, const Conv& g, float* y, const float* bias = nullptr,
            bool relu = false);
// conv2d image by image, for a caller that consumes each image's output while it is in cache: image b's output
// [OH][OW][O] is written to out(b), then done(b, that output) runs (if given). conv2d is this into the batch's slices.
void conv2dEach(const float* x, const float* w, const Pattern& p, const Conv& g, const float* bias, bool relu,
                const std::function<float*(int64_t)>& out, const std::function<void(int64_t, float*)>& done);
// dx = conv2d's gradient for the input.
void conv2dGradInput(const float* dy, const float* w, const Pattern& p, const Conv& g, float* dx);
// dw = conv2d's gradient for the filter at P's positions, 0 elsewhere.
void conv2dGradFilter(const float* x, const float* dy, const Pattern& p, const Conv& g, float* dw);
// Both (either may be null, and then x or w is not read) in one pass over the batch, from one planar copy of each
// image's dy, which dyOf(b) gives ([OH][OW][O]; a caller may make it there, in cache, e.g. routed from a pool's
// gradient): the bits of the two functions above.
void conv2dGrads(const float* x, const float* w, const Pattern& p, const Conv& g,
                 const std::function<const float*(int64_t)>& dyOf, float* dx, float* dw);

// y [B, N] = x [B, K] · W.
void matmul(const float* x, const float* w, const Pattern& p, int64_t B, float* y);
// dx [B, K] = dy [B, N] · Wᵀ.
void matmulGradInput(const float* dy, const float* w, const Pattern& p, int64_t B, float* dx);
// dw [K, N] = xᵀ · dy at P's positions, 0 elsewhere.
void matmulGradWeight(const float* x, const float* dy, const Pattern& p, int64_t B, float* dw);

// Layer epilogue on rows of C channels: out[r][c] = act(y[r][c] + bias[c]) (no bias: + 0 skipped), act the identity
// or ReLU (v < 0 ? 0 : v, the native Relu kernel's expression). `out` may be `y`. The same float32 operations as a
// separate Add and Relu, so the same bits.
void biasAct(const float* y, const float* bias, float* out, int64_t rows, int64_t C, bool relu);

}  // namespace sparse
