// The input gradient of small unpadded stride-1 convs as one sgemm + col2im per chunk of images (LeNet-5-Caffe's
// conv2: 5x5, 20 -> 50 on 12x12 maps, K = 500). Why: libtorch's backward-data path for that shape ran at ~6.5 ms
// per batch of 128 (CPU, one thread), this at ~5.1-5.4 (same machine, interleaved): the column gradient of 4 images
// (256 x 500 floats) stays in L2 between the sgemm that writes it and the col2im that adds it into dx, where each
// filter row of an NHWC image is KW*C contiguous floats. The forward conv and the filter gradient went the same way
// (im2col + sgemm) at no gain over libtorch (both ~5.9 ms, compute-bound near this core's sgemm rate for N = 50),
// so they stay on libtorch.
//
// Single-threaded (a worker is one stream; the chunks depend on the geometry alone), so the bits do not depend on
// the thread count.
#pragma once

#include <cstdint>

namespace gemmconv {

// Stride 1, dilation 1, no padding: dy [N, OH, OW, O], x [N, H, W, C], w [KH, KW, C, O] (HWIO).
struct Geom {
  int64_t N, H, W, C, OH, OW, O, KH, KW;
};

// Whether gradInput takes this geometry: a spatial filter (1x1 convs stay on libtorch), K = KH*KW*C in (32, 2048],
// at most 512 outputs, valid stride-1 output size. Callers check stride, dilation and padding themselves.
bool applies(const Geom& g);

// dx (fully written) = conv's input gradient from dy: per chunk, dcols [rows, K] = dy [rows, O] · wᵀ, then each
// row's K values added into dx in row order (a fixed summation order).
void gradInput(const float* dy, const float* w, const Geom& g, float* dx);

}  // namespace gemmconv
