// Convolution gradients from an output gradient that is mostly zeros: a conv whose ReLU output feeds a 2x2 max
// pool gets a gradient at one position of each pooling window at most (and none where the ReLU was off), so at
// most a quarter of dy is nonzero (LeNet-5-Caffe's conv2: 15-22 %). The dense kernels (oneDNN, sgemm + col2im)
// and the sparse ones (sparse.h) visit every output position; these visit the nonzero entries of dy alone, each
// adding one filter-sized block: for dx, g * W[:, :, :, o] into the input window; for dw, g * the input window into
// W[:, :, :, o]. In NHWC / HWIO a window row is KW*C contiguous floats, so each block is KH vector axpys.
//
// Callers pick these kernels by cost (addon.cc): nonzeros(dy) * KH*KW*C against the work of the kernel they replace.
// Single-threaded, one fixed summation order (output positions in order), so the bits do not depend on the thread
// count. They differ from the dense kernels' in summation order only.
#pragma once

#include <cstdint>

namespace scatterconv {

// Stride 1, dilation 1, no padding: dy [N, OH, OW, O], x [N, H, W, C], w [KH, KW, C, O] (HWIO).
struct Geom {
  int64_t N, H, W, C, OH, OW, O, KH, KW;
};

// Whether the kernels take this geometry: valid output size and a filter row of at least 16 floats (KW*C; shorter
// rows, such as a first conv's 5x5 on one channel, leave the axpys too short to pay).
bool applies(const Geom& g);

// The nonzero entries of v[0..n) (what the kernels would visit).
int64_t nonzeros(const float* v, int64_t n);

// dx (fully written) = the conv's input gradient from dy.
void gradInput(const float* dy, const float* w, const Geom& g, float* dx);

// dw (fully written) = the conv's filter gradient from dy; with `keep` (K*O bytes, HWIO order), 0 where keep is 0.
void gradFilter(const float* x, const float* dy, const Geom& g, float* dw, const uint8_t* keep);

}  // namespace scatterconv
