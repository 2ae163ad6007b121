// Filter layout conversions for the libtorch convolutions (addon.cc).
//
// tfjs holds a conv filter as HWIO; libtorch's oneDNN path on channels-last tensors wants the logical OIHW filter
// stored channels-last (O, H, W, I). Both are one matrix and its transpose: HWIO is [KH*KW*I, O], OHWI is
// [O, KH*KW*I]. libtorch's generic strided copy made that transpose at 16 ms per step for a 3x3x512x512 filter (its
// power-of-two strides thrash the cache), longer than the 2x2 convolution that used it; a tiled transpose takes ~2 ms.
// Pure copies: the bits of the filter and of its gradient are unchanged.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace convlayout {

// dst [C, R] = src [R, C] transposed (row-major both; dst must not alias src).
void transpose(const float* src, int64_t R, int64_t C, float* dst);

// The HWIO filter at `w` as a new logical OIHW tensor in channels-last memory.
at::Tensor filterFromHwio(const float* w, int64_t KH, int64_t KW, int64_t I, int64_t O);

// Writes the logical OIHW filter (gradient) `t` into `dw` as HWIO.
void filterToHwio(const at::Tensor& t, float* dw);

// Small images, wide layers (VGG's 4x4 and 2x2 maps of 512 channels): oneDNN's forward kernel for channels-last
// data runs there at 2/3 the speed of its kernel for plain NCHW data (measured through libtorch 1.13 at one thread:
// 64 vs 92 ms for 128 x 4x4x512 -> 512, 20 vs 30 ms at 2x2), which is what PyTorch runs on NCHW tensors. Converting
// those activations costs ~1 ms. Larger maps (8x8 and up) and narrow layers keep the channels-last kernel.
bool planarForward(int64_t OH, int64_t OW, int64_t C, int64_t O);

// The filter gradient's fixed batch shards (addon.cc: the same bits at any thread count) each end in a reorder of a
// whole filter-sized gradient out of oneDNN's blocked layout and an add of it. Where the filter outweighs the output
// gradient (VGG's 512-channel layers on 4x4 and 2x2 maps: 2.4M weights against 0.26M-1M gradient values) that is
// most of the work: 4 shards took 55 ms against 40 for one pass at 2x2 (1 thread, quiet), and ~1.5x under load. Such
// layers (wide ones only: the small networks keep their shards and bits) run the batch in one pass on one thread,
// which still gives the same bits at any thread count.
bool wholeBatchFilterGrad(int64_t N, int64_t OH, int64_t OW, int64_t KH, int64_t KW, int64_t C, int64_t O);

// The NHWC tensor at `x` as a new contiguous NCHW tensor.
at::Tensor nchwFromNhwc(const float* x, int64_t N, int64_t H, int64_t W, int64_t C);
// The HWIO filter at `w` as a new contiguous OIHW tensor.
at::Tensor oihwFromHwio(const float* w, int64_t KH, int64_t KW, int64_t I, int64_t O);
// Writes the logical NCHW tensor `y` into `out` as NHWC.
void nhwcFromNchw(const at::Tensor& y, float* out);

}  // namespace convlayout
