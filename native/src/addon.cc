// prunebench native kernels for the tfjs "native" backend.
//
// Plain C N-API (node_api.h, no node-addon-api). Every function receives
// JS-allocated Float32Arrays (inputs and the output buffer) plus integer
// parameters and writes the result into the output buffer; nothing native is
// ever handed to V8. Tensors are NHWC (tfjs layout); filters are HWIO.
//
// Convolutions go through libtorch (at::convolution / at::convolution_backward,
// oneDNN-backed on channels-last views); matmul through oneDNN's dnnl_sgemm;
// pooling, elementwise, reductions and batch norm are plain loops.

#include <node_api.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <malloc.h>
#include <signal.h>

#include "aligned.h"
#include "conv_layout.h"
#include "gemmconv.h"
#include "scatterconv.h"
#include "smallconv.h"
#include "sparse.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using i64 = int64_t;

// ---------------------------------------------------------------- N-API glue

struct Args {
  napi_env env;
  napi_value argv[24];
  size_t argc = 24;
  Args(napi_env e, napi_callback_info info) : env(e) {
    if (napi_get_cb_info(e, info, &argc, argv, nullptr, nullptr) != napi_ok)
      throw std::runtime_error("napi_get_cb_info failed");
  }
  napi_value at(size_t i) const {
    if (i >= argc) throw std::runtime_error("missing argument " + std::to_string(i));
    return argv[i];
  }
  float* f32(size_t i, size_t* len = nullptr) const {
    napi_typedarray_type t;
    size_t n;
    void* data;
    napi_value ab;
    size_t off;
    if (napi_get_typedarray_info(env, at(i), &t, &n, &data, &ab, &off) != napi_ok ||
        t != napi_float32_array)
      throw std::runtime_error("argument " + std::to_string(i) + " must be a Float32Array");
    if (len) *len = n;
    return static_cast<float*>(data);
  }
  i64 i(size_t k) const {
    int64_t v;
    if (napi_get_value_int64(env, at(k), &v) != napi_ok)
      throw std::runtime_error("argument " + std::to_string(k) + " must be a number");
    return v;
  }
  double d(size_t k) const {
    double v;
    if (napi_get_value_double(env, at(k), &v) != napi_ok)
      throw std::runtime_error("argument " + std::to_string(k) + " must be a number");
    return v;
  }
  std::vector<i64> ints(size_t k) const {
    uint32_t n;
    napi_value arr = at(k);
    if (napi_get_array_length(env, arr, &n) != napi_ok)
      throw std::runtime_error("argument " + std::to_string(k) + " must be an array");
    std::vector<i64> out(n);
    for (uint32_t j = 0; j < n; ++j) {
      napi_value el;
      napi_get_element(env, arr, j, &el);
      int64_t v;
      if (napi_get_value_int64(env, el, &v) != napi_ok)
        throw std::runtime_error("array argument " + std::to_string(k) + " holds a non-number");
      out[j] = v;
    }
    return out;
  }
  const int32_t* i32(size_t i, size_t* len) const {
    napi_typedarray_type t;
    size_t n;
    void* data;
    napi_value ab;
    size_t off;
    if (napi_get_typedarray_info(env, at(i), &t, &n, &data, &ab, &off) != napi_ok || t != napi_int32_array)
      throw std::runtime_error("argument " + std::to_string(i) + " must be an Int32Array");
    *len = n;
    return static_cast<const int32_t*>(data);
  }
  std::vector<float*> f32list(size_t k) const {
    uint32_t n;
    napi_value arr = at(k);
    if (napi_get_array_length(env, arr, &n) != napi_ok)
      throw std::runtime_error("argument " + std::to_string(k) + " must be an array");
    std::vector<float*> out(n);
    for (uint32_t j = 0; j < n; ++j) {
      napi_value el;
      napi_get_element(env, arr, j, &el);
      napi_typedarray_type t;
      size_t len;
      void* data;
      napi_value ab;
      size_t off;
      if (napi_get_typedarray_info(env, el, &t, &len, &data, &ab, &off) != napi_ok ||
          t != napi_float32_array)
        throw std::runtime_error("array argument must hold Float32Arrays");
      out[j] = static_cast<float*>(data);
    }
    return out;
  }
};

// Asynchronous signals wait while a kernel runs that calls into oneDNN or libtorch (matmul, the convolutions).
// oneDNN's JIT sgemm (Debian's libdnnl 2.6) keeps data below the
// stack pointer, past the red zone, so a signal handled on this thread's stack meanwhile overwrites it: with V8's
// sampling profiler (node --cpu-prof, SIGPROF) training died of heap corruption within a few steps, and a C loop
// of dnnl_sgemm calls with an empty SIGPROF handler crashes the same way (not with the handler on an alternate
// stack). Blocked signals are delivered when the call returns (two sigprocmask calls, ~1 us: around every addon
// call they cost 2 % of an MLP step, so only these kernels take them); faults the kernel itself raises (SIGSEGV,
// SIGBUS, SIGFPE, SIGILL) stay unblocked.
class SignalsDeferred {
 public:
  SignalsDeferred() {
    sigset_t all;
    sigfillset(&all);
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT}) sigdelset(&all, s);
    pthread_sigmask(SIG_BLOCK, &all, &saved_);
  }
  ~SignalsDeferred() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  SignalsDeferred(const SignalsDeferred&) = delete;
  SignalsDeferred& operator=(const SignalsDeferred&) = delete;

 private:
  sigset_t saved_;
};

template <typename F>
napi_value guarded(napi_env env, F&& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    napi_throw_error(env, nullptr, e.what_without_backtrace());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
  }
  return nullptr;
}

#define NATIVE_FN(name)                                              \
  void name##_impl(const Args& a);                                   \
  napi_value name(napi_env env, napi_callback_info info) {           \
    return guarded(env, [&] { Args a(env, info); name##_impl(a); }); \
  }                                                                  \
  void name##_impl(const Args& a)

// ---------------------------------------------------------------- tensors

const at::TensorOptions kF32 = at::TensorOptions().dtype(at::kFloat);

// NHWC buffer viewed as a logical NCHW tensor in channels-last layout.
at::Tensor nhwc(float* p, i64 n, i64 h, i64 w, i64 c) {
  return at::from_blob(p, {n, c, h, w}, {h * w * c, 1, w * c, c}, kF32);
}
at::Tensor emptyCL(i64 n, i64 c, i64 h, i64 w) {
  return at::empty({n, c, h, w}, kF32.memory_format(at::MemoryFormat::ChannelsLast));
}

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(what);
}

// ---------------------------------------------------------------- threads

NATIVE_FN(setNumThreads) { at::set_num_threads(static_cast<int>(a.i(0))); }

napi_value getNumThreads(napi_env env, napi_callback_info) {
  napi_value v;
  napi_create_int32(env, at::get_num_threads(), &v);
  return v;
}

// ---------------------------------------------------------------- conv2d
// conv geometry array g = [N, H, W, C, OH, OW, O, KH, KW, sh, sw, pt, pb, pl, pr, dh, dw]
struct ConvGeom {
  i64 N, H, W, C, OH, OW, O, KH, KW, sh, sw, pt, pb, pl, pr, dh, dw;
  explicit ConvGeom(const std::vector<i64>& g) {
    check(g.size() == 17, "conv geometry needs 17 integers");
    N = g[0]; H = g[1]; W = g[2]; C = g[3]; OH = g[4]; OW = g[5]; O = g[6];
    KH = g[7]; KW = g[8]; sh = g[9]; sw = g[10]; pt = g[11]; pb = g[12];
    pl = g[13]; pr = g[14]; dh = g[15]; dw = g[16];
  }
  bool even() const { return pt == pb && pl == pr; }
  // The direct kernels' geometry (smallconv.h), when this conv is one they take (unstrided, undilated, unpadded).
  bool small(smallconv::Geom* s) const {
    if (sh != 1 || sw != 1 || dh != 1 || dw != 1 || pt || pb || pl || pr) return false;
    *s = smallconv::Geom{N, H, W, C, OH, OW, O, KH, KW};
    return smallconv::applies(*s);
  }
  // The scatter kernels' geometry (scatterconv.h), for unpadded stride-1 convs.
  bool scatter(scatterconv::Geom* s) const {
    if (sh != 1 || sw != 1 || dh != 1 || dw != 1 || pt || pb || pl || pr) return false;
    *s = scatterconv::Geom{N, H, W, C, OH, OW, O, KH, KW};
    return scatterconv::applies(*s);
  }
  // The sgemm + col2im input gradient's geometry (gemmconv.h), for unpadded stride-1 convs.
  bool gemm(gemmconv::Geom* s) const {
    if (sh != 1 || sw != 1 || dh != 1 || dw != 1 || pt || pb || pl || pr) return false;
    *s = gemmconv::Geom{N, H, W, C, OH, OW, O, KH, KW};
    return gemmconv::applies(*s);
  }
};
bool planarForward(const ConvGeom& g);

// An optional Float32Array argument of exactly n elements: nullptr when absent, null or undefined.
const float* optionalArray(const Args& a, size_t k, i64 n, const char* what) {
  if (k >= a.argc) return nullptr;
  napi_valuetype t;
  napi_typeof(a.env, a.argv[k], &t);
  if (t == napi_null || t == napi_undefined) return nullptr;
  size_t len;
  const float* p = a.f32(k, &len);
  check(static_cast<i64>(len) == n, what);
  return p;
}
bool optionalFlag(const Args& a, size_t k) { return k < a.argc && a.i(k) != 0; }

// conv2d(x, w, out, geom[, bias, relu]): with bias (length O) and/or relu, out = act(conv + bias), the epilogue fused
// into the copy out of libtorch's result (sparse::biasAct: the bits of a separate Add and Relu).
NATIVE_FN(conv2d) {
  SignalsDeferred deferred;
  ConvGeom g(a.ints(3));
  const float* bias = optionalArray(a, 4, g.O, "conv2d: bias size");
  const bool relu = optionalFlag(a, 5);
  smallconv::Geom sg;
  if (g.small(&sg)) {
    smallconv::forward(a.f32(0), a.f32(1), bias, relu, sg, a.f32(2));
    return;
  }
  if (planarForward(g)) {
    at::Tensor y = at::convolution(convlayout::nchwFromNhwc(a.f32(0), g.N, g.H, g.W, g.C),
                                   convlayout::oihwFromHwio(a.f32(1), g.KH, g.KW, g.C, g.O), c10::nullopt,
                                   {g.sh, g.sw}, {g.pt, g.pl}, {g.dh, g.dw}, false, {0, 0}, 1);
    check(y.size(2) == g.OH && y.size(3) == g.OW, "conv2d: output shape mismatch");
    float* o = a.f32(2);
    convlayout::nhwcFromNchw(y, o);
    if (bias || relu) sparse::biasAct(o, bias, o, g.N * g.OH * g.OW, g.O, relu);
    return;
  }
  at::Tensor x = nhwc(a.f32(0), g.N, g.H, g.W, g.C);
  at::Tensor w = convlayout::filterFromHwio(a.f32(1), g.KH, g.KW, g.C, g.O);
  at::Tensor out = nhwc(a.f32(2), g.N, g.OH, g.OW, g.O);
  at::Tensor y;
  if (g.even()) {
    y = at::convolution(x, w, c10::nullopt, {g.sh, g.sw}, {g.pt, g.pl}, {g.dh, g.dw}, false, {0, 0}, 1);
  } else {
    at::Tensor xp = at::constant_pad_nd(x, {g.pl, g.pr, g.pt, g.pb}, 0.0)
                        .contiguous(at::MemoryFormat::ChannelsLast);
    y = at::convolution(xp, w, c10::nullopt, {g.sh, g.sw}, {0, 0}, {g.dh, g.dw}, false, {0, 0}, 1);
  }
  check(y.size(2) == g.OH && y.size(3) == g.OW, "conv2d: output shape mismatch");
  if (!bias && !relu) {
    out.copy_(y);
  } else if (y.is_contiguous(at::MemoryFormat::ChannelsLast) && y.scalar_type() == at::kFloat) {
    sparse::biasAct(y.data_ptr<float>(), bias, out.data_ptr<float>(), g.N * g.OH * g.OW, g.O, relu);
  } else {
    out.copy_(y);
    sparse::biasAct(out.data_ptr<float>(), bias, out.data_ptr<float>(), g.N * g.OH * g.OW, g.O, relu);
  }
}

// When the scatter kernels (scatterconv.h) beat the kernel they would replace: a visited entry of dy costs KH*KW*C
// multiply-adds as axpys; `work` is the replaced kernel's multiply-adds, weighted by how much cheaper each one is.
// Measured on LeNet-5-Caffe's conv2 (5x5, 20 -> 50, 12x12, batch 128, one thread): oneDNN's filter gradient and
// the sgemm + col2im input gradient do a multiply-add in ~0.33-0.41 of the scatter kernels' time (DENSE_EDGE, set a
// little under). The sparse kernels, since their loads no longer straddle cache lines (aligned.h): their
// input gradient in ~0.45 of the scatter kernel's time, their filter gradient in ~0.36 (dy as after ReLU and a 2x2
// max pool, 20 % nonzero; pattern density 0.47, where both are near the edge). PRUNEBENCH_SCATTER=0 turns the
// scatter kernels off (for A/B measurements).
constexpr double DENSE_EDGE = 0.35, SPARSE_EDGE_DX = 0.43, SPARSE_EDGE_DW = 0.33;
bool scatterEnabled() {
  static const bool on = [] {
    const char* e = std::getenv("PRUNEBENCH_SCATTER");
    return !(e && std::string(e) == "0");
  }();
  return on;
}
// The rule, for `visits` nonzero entries of dy (each costs a filter-sized block).
bool scatterPaysFor(double visits, const scatterconv::Geom& g, double work) {
  return scatterEnabled() && visits * static_cast<double>(g.KH * g.KW * g.C) < work;
}
bool scatterPays(const float* dy, const scatterconv::Geom& g, double work) {
  return scatterEnabled() && scatterPaysFor(static_cast<double>(scatterconv::nonzeros(dy, g.N * g.OH * g.OW * g.O)), g, work);
}
double denseWork(const scatterconv::Geom& g) {
  return DENSE_EDGE * static_cast<double>(g.N * g.OH * g.OW * g.O) * static_cast<double>(g.KH * g.KW * g.C);
}

// conv2dBackpropInput(dy, w, dx(out), geom)
NATIVE_FN(conv2dBackpropInput) {
  SignalsDeferred deferred;
  ConvGeom g(a.ints(3));
  scatterconv::Geom sc;
  if (g.scatter(&sc) && scatterPays(a.f32(0), sc, denseWork(sc))) {
    scatterconv::gradInput(a.f32(0), a.f32(1), sc, a.f32(2));
    return;
  }
  gemmconv::Geom gg;
  if (g.gemm(&gg)) {
    gemmconv::gradInput(a.f32(0), a.f32(1), gg, a.f32(2));
    return;
  }
  at::Tensor dy = nhwc(a.f32(0), g.N, g.OH, g.OW, g.O);
  at::Tensor w = convlayout::filterFromHwio(a.f32(1), g.KH, g.KW, g.C, g.O);
  at::Tensor dx = nhwc(a.f32(2), g.N, g.H, g.W, g.C);
  if (g.even()) {
    at::Tensor xshape = emptyCL(g.N, g.C, g.H, g.W);
    auto r = at::convolution_backward(dy, xshape, w, c10::nullopt, {g.sh, g.sw}, {g.pt, g.pl},
                                      {g.dh, g.dw}, false, {0, 0}, 1, {true, false, false});
    dx.copy_(std::get<0>(r));
  } else {
    i64 Hp = g.H + g.pt + g.pb, Wp = g.W + g.pl + g.pr;
    at::Tensor xshape = emptyCL(g.N, g.C, Hp, Wp);
    auto r = at::convolution_backward(dy, xshape, w, c10::nullopt, {g.sh, g.sw}, {0, 0},
                                      {g.dh, g.dw}, false, {0, 0}, 1, {true, false, false});
    dx.copy_(std::get<0>(r).narrow(2, g.pt, g.H).narrow(3, g.pl, g.W));
  }
}

// The filter gradient sums over the batch and the image. Given more than one thread, oneDNN splits that sum across
// threads itself, and its float rounding then depends on the thread count (up to 3e-4 apart on ResNet-20's shapes at 2
// threads), while the forward conv, the input gradient and sgemm come out bit-identical. So the batch is cut into
// shards whose bounds depend on the batch size alone; each shard's partial gradient is computed on one thread, and
// the partials are added in shard order. Any thread count, 1 included, then gives the same bits, and threads still
// help: they take whole shards. Shards of at least 16 images keep libtorch on the oneDNN kernel for every shape (it
// picks another for unstrided 1x1 filters on smaller batches at 1 thread).
constexpr i64 kFilterGradShards = 4;
constexpr i64 kFilterGradMinShard = 16;

i64 filterGradShards(const ConvGeom& g) {
  if (convlayout::wholeBatchFilterGrad(g.N, g.OH, g.OW, g.KH, g.KW, g.C, g.O)) return 1;
  return std::max<i64>(1, std::min(kFilterGradShards, g.N / kFilterGradMinShard));
}
bool planarForward(const ConvGeom& g) { return g.even() && convlayout::planarForward(g.OH, g.OW, g.C, g.O); }

// Holds libtorch and oneDNN to one thread in scope (restored after): for a call that must not split its work.
struct OneThread {
  int prev = at::get_num_threads();
  OneThread() { if (prev > 1) at::set_num_threads(1); }
  ~OneThread() { if (prev > 1) at::set_num_threads(prev); }
};

// One shard's filter gradient (x already padded when the padding is uneven; pad = the symmetric padding left).
at::Tensor filterGradShard(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& wshape, const ConvGeom& g,
                           i64 padH, i64 padW) {
  return std::get<1>(at::convolution_backward(dy, x, wshape, c10::nullopt, {g.sh, g.sw}, {padH, padW},
                                              {g.dh, g.dw}, false, {0, 0}, 1, {false, true, false}));
}

// conv2dBackpropFilter(x, dy, dw(out), geom)
NATIVE_FN(conv2dBackpropFilter) {
  SignalsDeferred deferred;
  ConvGeom g(a.ints(3));
  scatterconv::Geom sc;
  if (g.scatter(&sc) && scatterPays(a.f32(1), sc, denseWork(sc))) {
    scatterconv::gradFilter(a.f32(0), a.f32(1), sc, a.f32(2), nullptr);
    return;
  }
  smallconv::Geom sg;
  if (g.small(&sg)) {
    smallconv::gradFilter(a.f32(0), a.f32(1), sg, a.f32(2));
    return;
  }
  at::Tensor x = nhwc(a.f32(0), g.N, g.H, g.W, g.C);
  at::Tensor dy = nhwc(a.f32(1), g.N, g.OH, g.OW, g.O);
  float* dw = a.f32(2);
  at::Tensor wshape = emptyCL(g.O, g.C, g.KH, g.KW);
  i64 padH = g.pt, padW = g.pl;
  if (!g.even()) {
    x = at::constant_pad_nd(x, {g.pl, g.pr, g.pt, g.pb}, 0.0).contiguous(at::MemoryFormat::ChannelsLast);
    padH = padW = 0;
  }
  const i64 shards = filterGradShards(g);
  if (shards == 1) {
    OneThread one;
    convlayout::filterToHwio(filterGradShard(dy, x, wshape, g, padH, padW), dw);
    return;
  }
  std::vector<at::Tensor> part(shards);
  // Each thread of the region sets its own OpenMP thread count to 1 while it computes its shards, so that libtorch
  // and oneDNN plan every shard as they do at 1 thread: they read it when choosing the kernel and how to split the
  // work, and a split that assumes 2 threads rounds differently even when it runs on one. It is set back after: on
  // the calling thread (a member of the region) the setting would otherwise outlive the region, and every later
  // kernel of the process would run on one thread.
  at::parallel_for(0, shards, 1, [&](i64 begin, i64 end) {
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    try {
      for (i64 s = begin; s < end; ++s) {
        const i64 lo = g.N * s / shards, hi = g.N * (s + 1) / shards;
        part[s] = filterGradShard(dy.narrow(0, lo, hi - lo), x.narrow(0, lo, hi - lo), wshape, g, padH, padW);
      }
    } catch (...) {
      omp_set_num_threads(threads);
      throw;
    }
    omp_set_num_threads(threads);
  });
  at::Tensor sum = part[0].add(part[1]);
  for (i64 s = 2; s < shards; ++s) sum.add_(part[s]);
  convlayout::filterToHwio(sum, dw);
}

// convPlan(geom) -> [1 when the forward conv runs on planar NCHW copies (else channels-last), filter-gradient
// shards]: which paths a geometry takes, for the tests.
napi_value convPlan(napi_env env, napi_callback_info info) {
  napi_value result = nullptr;
  guarded(env, [&] {
    Args a(env, info);
    ConvGeom g(a.ints(0));
    napi_value arr, v0, v1;
    napi_create_array_with_length(env, 2, &arr);
    napi_create_int32(env, planarForward(g) ? 1 : 0, &v0);
    napi_create_int32(env, static_cast<int32_t>(filterGradShards(g)), &v1);
    napi_set_element(env, arr, 0, v0);
    napi_set_element(env, arr, 1, v1);
    result = arr;
  });
  return result;
}

// ---------------------------------------------------------------- matmul
// matmul(a, b, out, batchA, batchB, M, K, N, transA, transB)
// a: [batchA, M, K] (or [batchA, K, M] when transA), b: [batchB, K, N] (or [.., N, K]).
// Batches broadcast when one side has batch 1. out: [max(batchA,batchB), M, N].
NATIVE_FN(matmul) {
  SignalsDeferred deferred;
  const float* A = a.f32(0);
  const float* B = a.f32(1);
  float* C = a.f32(2);
  i64 ba = a.i(3), bb = a.i(4), M = a.i(5), K = a.i(6), N = a.i(7);
  bool ta = a.i(8) != 0, tb = a.i(9) != 0;
  check(ba == bb || ba == 1 || bb == 1, "matmul: batch dims do not broadcast");
  i64 batch = std::max(ba, bb);
  i64 lda = ta ? M : K, ldb = tb ? K : N;
  for (i64 i = 0; i < batch; ++i) {
    const float* Ai = A + (ba == 1 ? 0 : i) * M * K;
    const float* Bi = B + (bb == 1 ? 0 : i) * K * N;
    float* Ci = C + i * M * N;
    if (K == 0) {
      std::fill(Ci, Ci + M * N, 0.f);
      continue;
    }
    dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.f, Ai, lda, Bi, ldb,
                                  0.f, Ci, N);
    check(st == dnnl_success, "dnnl_sgemm failed");
  }
}

// ---------------------------------------------------------------- pooling
// pool geometry p = [N, H, W, C, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw]
struct PoolGeom {
  i64 N, H, W, C, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw;
  explicit PoolGeom(const std::vector<i64>& p) {
    check(p.size() == 14, "pool geometry needs 14 integers");
    N = p[0]; H = p[1]; W = p[2]; C = p[3]; OH = p[4]; OW = p[5]; KH = p[6]; KW = p[7];
    sh = p[8]; sw = p[9]; pt = p[10]; pl = p[11]; dh = p[12]; dw = p[13];
  }
};

// maxPool(x, out, geom): first strict maximum wins (tfjs semantics), -inf for empty windows.
NATIVE_FN(maxPool) {
  PoolGeom g(a.ints(2));
  const float* x = a.f32(0);
  float* y = a.f32(1);
  if (g.KH == 2 && g.KW == 2 && g.sh == 2 && g.sw == 2 && g.pt == 0 && g.pl == 0 && g.dh == 1 && g.dw == 1 &&
      smallconv::maxPool2x2(x, g.N, g.H, g.W, g.C, g.OH, g.OW, y))
    return;
  const float ninf = -std::numeric_limits<float>::infinity();
  for (i64 b = 0; b < g.N; ++b) {
    const float* xb = x + b * g.H * g.W * g.C;
    for (i64 oy = 0; oy < g.OH; ++oy) {
      for (i64 ox = 0; ox < g.OW; ++ox) {
        float* yo = y + ((b * g.OH + oy) * g.OW + ox) * g.C;
        for (i64 c = 0; c < g.C; ++c) yo[c] = ninf;
        for (i64 ky = 0; ky < g.KH; ++ky) {
          i64 iy = oy * g.sh - g.pt + ky * g.dh;
          if (iy < 0 || iy >= g.H) continue;
          for (i64 kx = 0; kx < g.KW; ++kx) {
            i64 ix = ox * g.sw - g.pl + kx * g.dw;
            if (ix < 0 || ix >= g.W) continue;
            const float* xi = xb + (iy * g.W + ix) * g.C;
            for (i64 c = 0; c < g.C; ++c) yo[c] = xi[c] > yo[c] ? xi[c] : yo[c];
          }
        }
      }
    }
  }
}

inline uint32_t fbits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bitsf(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline float fsel(uint32_t mask, float a, float b) { return bitsf((fbits(a) & mask) | (fbits(b) & ~mask)); }

// Non-overlapping, fully in-bounds 2x2 / stride 2 windows (see maxPoolGrad); CC > 0 fixes the channel count.
template <int CC>
void maxPoolGrad2x2(const float* __restrict__ dy, const float* __restrict__ x, float* __restrict__ dx,
                    const PoolGeom& g) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const i64 C = CC > 0 ? CC : g.C, rs = g.W * C;
  for (i64 b = 0; b < g.N; ++b) {
    for (i64 oy = 0; oy < g.OH; ++oy) {
      const float* __restrict__ x0 = x + (b * g.H + 2 * oy) * rs;
      const float* __restrict__ x1 = x0 + rs;
      float* __restrict__ d0 = dx + (b * g.H + 2 * oy) * rs;
      float* __restrict__ d1 = d0 + rs;
      const float* __restrict__ dyr = dy + (b * g.OH + oy) * g.OW * C;
      for (i64 ox = 0; ox < g.OW; ++ox) {
        const i64 o = 2 * ox * C;
        const float* __restrict__ dyo = dyr + ox * C;
        for (i64 c = 0; c < C; ++c) {
          const float a0 = x0[o + c], a1 = x0[o + C + c], a2 = x1[o + c], a3 = x1[o + C + c];
          // first strict maximum in scan order, starting from -inf (NaN never wins); all selections are
          // bit masks so the loop has no data-dependent branches (random maxima mispredict badly)
          const uint32_t m0 = 0u - static_cast<uint32_t>(a0 > ninf);
          const float b0 = fsel(m0, a0, ninf);
          const uint32_t m1 = 0u - static_cast<uint32_t>(a1 > b0);
          const float b1 = fsel(m1, a1, b0);
          const uint32_t m2 = 0u - static_cast<uint32_t>(a2 > b1);
          const float b2 = fsel(m2, a2, b1);
          const uint32_t m3 = 0u - static_cast<uint32_t>(a3 > b2);
          const uint32_t w3 = m3, w2 = m2 & ~m3, w1 = m1 & ~m2 & ~m3, w0 = m0 & ~m1 & ~m2 & ~m3;
          const uint32_t v = fbits(0.f + dyo[c]);
          d0[o + c] = bitsf(v & w0);
          d0[o + C + c] = bitsf(v & w1);
          d1[o + c] = bitsf(v & w2);
          d1[o + C + c] = bitsf(v & w3);
        }
      }
    }
  }
}

// maxPoolGrad(dy, x, dx(out), geom): routes dy to the first strict maximum of each window.
NATIVE_FN(maxPoolGrad) {
  PoolGeom g(a.ints(3));
  const float* dy = a.f32(0);
  const float* x = a.f32(1);
  size_t dxLen;
  float* dx = a.f32(2, &dxLen);
  const float ninf = -std::numeric_limits<float>::infinity();
  check(static_cast<i64>(dxLen) == g.N * g.H * g.W * g.C, "maxPoolGrad: dx size mismatch");
  if (g.KH == 2 && g.KW == 2 && g.sh == 2 && g.sw == 2 && g.pt == 0 && g.pl == 0 && g.dh == 1 && g.dw == 1 &&
      2 * g.OH <= g.H && 2 * g.OW <= g.W) {
    // Non-overlapping, fully in-bounds 2x2 windows (LeNet-5's pools): each input position belongs to at
    // most one window, so every window writes its four dx values directly (no zero fill of covered
    // positions, no scatter-add, no per-window state). Same rule as below: the first strict maximum in
    // scan order (row-major within the window) starting from -inf gets 0 + dy; NaN / all -inf: nothing.
    if (2 * g.OH != g.H || 2 * g.OW != g.W) std::memset(dx, 0, dxLen * sizeof(float));
    switch (g.C) {
      case 6: maxPoolGrad2x2<6>(dy, x, dx, g); break;
      case 16: maxPoolGrad2x2<16>(dy, x, dx, g); break;
      case 20: maxPoolGrad2x2<20>(dy, x, dx, g); break;  // LeNet-5-Caffe
      case 50: maxPoolGrad2x2<50>(dy, x, dx, g); break;
      default: maxPoolGrad2x2<0>(dy, x, dx, g); break;
    }
    return;
  }
  std::memset(dx, 0, dxLen * sizeof(float));
  std::vector<float> best(g.C);
  std::vector<i64> where(g.C);
  for (i64 b = 0; b < g.N; ++b) {
    const float* xb = x + b * g.H * g.W * g.C;
    float* dxb = dx + b * g.H * g.W * g.C;
    for (i64 oy = 0; oy < g.OH; ++oy) {
      for (i64 ox = 0; ox < g.OW; ++ox) {
        const float* dyo = dy + ((b * g.OH + oy) * g.OW + ox) * g.C;
        for (i64 c = 0; c < g.C; ++c) { best[c] = ninf; where[c] = -1; }
        for (i64 ky = 0; ky < g.KH; ++ky) {
          i64 iy = oy * g.sh - g.pt + ky * g.dh;
          if (iy < 0 || iy >= g.H) continue;
          for (i64 kx = 0; kx < g.KW; ++kx) {
            i64 ix = ox * g.sw - g.pl + kx * g.dw;
            if (ix < 0 || ix >= g.W) continue;
            i64 base = (iy * g.W + ix) * g.C;
            const float* xi = xb + base;
            for (i64 c = 0; c < g.C; ++c) {
              bool gt = xi[c] > best[c];
              best[c] = gt ? xi[c] : best[c];
              where[c] = gt ? base + c : where[c];
            }
          }
        }
        for (i64 c = 0; c < g.C; ++c)
          if (where[c] >= 0) dxb[where[c]] += dyo[c];
      }
    }
  }
}

// avgPool(x, out, geom): tfjs divides by the number of in-bounds taps.
NATIVE_FN(avgPool) {
  PoolGeom g(a.ints(2));
  const float* x = a.f32(0);
  float* y = a.f32(1);
  std::vector<double> acc(g.C);
  for (i64 b = 0; b < g.N; ++b) {
    const float* xb = x + b * g.H * g.W * g.C;
    for (i64 oy = 0; oy < g.OH; ++oy) {
      for (i64 ox = 0; ox < g.OW; ++ox) {
        float* yo = y + ((b * g.OH + oy) * g.OW + ox) * g.C;
        std::fill(acc.begin(), acc.end(), 0.0);
        i64 count = 0;
        for (i64 ky = 0; ky < g.KH; ++ky) {
          i64 iy = oy * g.sh - g.pt + ky * g.dh;
          if (iy < 0 || iy >= g.H) continue;
          for (i64 kx = 0; kx < g.KW; ++kx) {
            i64 ix = ox * g.sw - g.pl + kx * g.dw;
            if (ix < 0 || ix >= g.W) continue;
            const float* xi = xb + (iy * g.W + ix) * g.C;
            for (i64 c = 0; c < g.C; ++c) acc[c] += xi[c];
            ++count;
          }
        }
        for (i64 c = 0; c < g.C; ++c) yo[c] = static_cast<float>(acc[c] / count);
      }
    }
  }
}

// ---------------------------------------------------------------- elementwise

enum BinOp { ADD = 0, SUB, MUL, DIV, SQDIFF, MAXIMUM, MINIMUM, RELUGRAD, POW, MUL2 };

template <int OP>
inline float bin(float x, float y) {
  if constexpr (OP == ADD) return x + y;
  if constexpr (OP == SUB) return x - y;
  if constexpr (OP == MUL) return x * y;
  if constexpr (OP == DIV) return x / y;
  if constexpr (OP == SQDIFF) { float d = x - y; return d * d; }
  if constexpr (OP == MAXIMUM) return (x != x || y != y) ? NAN : (x > y ? x : y);
  if constexpr (OP == MINIMUM) return (x != x || y != y) ? NAN : (x < y ? x : y);
  // reluGrad(dy, x): dy where x > 0, 0 elsewhere (NaN x propagates like dy*step(x)).
  if constexpr (OP == RELUGRAD) return y > 0.f ? x : (y != y ? y : 0.f);
  if constexpr (OP == POW) return std::pow(x, y);
  // square gradient: dy * (2 * x)
  if constexpr (OP == MUL2) return x * (y * 2.f);
  return 0.f;
}

// Merged broadcast description: dims (outer..inner), strides of a and b in elements.
struct Bcast {
  std::vector<i64> dims, sa, sb;
};

Bcast makeBcast(const std::vector<i64>& as, const std::vector<i64>& bs, const std::vector<i64>& os) {
  size_t r = os.size();
  std::vector<i64> A(r, 1), B(r, 1);
  for (size_t k = 0; k < as.size(); ++k) A[r - as.size() + k] = as[k];
  for (size_t k = 0; k < bs.size(); ++k) B[r - bs.size() + k] = bs[k];
  std::vector<i64> sa(r), sb(r);
  i64 ta = 1, tb = 1;
  for (size_t k = r; k-- > 0;) {
    sa[k] = A[k] == 1 ? 0 : ta;
    sb[k] = B[k] == 1 ? 0 : tb;
    check(A[k] == os[k] || A[k] == 1, "broadcast: a does not match output");
    check(B[k] == os[k] || B[k] == 1, "broadcast: b does not match output");
    ta *= A[k];
    tb *= B[k];
  }
  Bcast m;
  for (size_t k = 0; k < r; ++k) {
    if (os[k] == 1) continue;
    if (!m.dims.empty()) {
      i64 d = m.dims.back();
      // merge with previous dim if both strides stay consistent
      if (m.sa.back() == sa[k] * os[k] && m.sb.back() == sb[k] * os[k]) {
        m.dims.back() = d * os[k];
        m.sa.back() = sa[k];
        m.sb.back() = sb[k];
        continue;
      }
    }
    m.dims.push_back(os[k]);
    m.sa.push_back(sa[k]);
    m.sb.push_back(sb[k]);
  }
  if (m.dims.empty()) { m.dims.push_back(1); m.sa.push_back(0); m.sb.push_back(0); }
  return m;
}

template <int OP>
void binaryLoop(const float* x, const float* y, float* o, const Bcast& m) {
  size_t r = m.dims.size();
  i64 inner = m.dims[r - 1], ia = m.sa[r - 1], ib = m.sb[r - 1];
  i64 outer = 1;
  for (size_t k = 0; k + 1 < r; ++k) outer *= m.dims[k];
  std::vector<i64> idx(r, 0);
  i64 offA = 0, offB = 0;
  for (i64 t = 0; t < outer; ++t) {
    const float* xp = x + offA;
    const float* yp = y + offB;
    float* op = o + t * inner;
    if (ia == 1 && ib == 1) {
      for (i64 j = 0; j < inner; ++j) op[j] = bin<OP>(xp[j], yp[j]);
    } else if (ia == 1 && ib == 0) {
      float v = yp[0];
      for (i64 j = 0; j < inner; ++j) op[j] = bin<OP>(xp[j], v);
    } else if (ia == 0 && ib == 1) {
      float v = xp[0];
      for (i64 j = 0; j < inner; ++j) op[j] = bin<OP>(v, yp[j]);
    } else {
      for (i64 j = 0; j < inner; ++j) op[j] = bin<OP>(xp[j * ia], yp[j * ib]);
    }
    // advance the outer multi-index
    for (size_t k = r - 1; k-- > 0;) {
      offA += m.sa[k];
      offB += m.sb[k];
      if (++idx[k] < m.dims[k]) break;
      offA -= m.sa[k] * m.dims[k];
      offB -= m.sb[k] * m.dims[k];
      idx[k] = 0;
    }
  }
}

// binary(op, a, aShape, b, bShape, out, outShape)
NATIVE_FN(binary) {
  int op = static_cast<int>(a.i(0));
  const float* x = a.f32(1);
  const float* y = a.f32(3);
  float* o = a.f32(5);
  Bcast m = makeBcast(a.ints(2), a.ints(4), a.ints(6));
  switch (op) {
    case ADD: binaryLoop<ADD>(x, y, o, m); break;
    case SUB: binaryLoop<SUB>(x, y, o, m); break;
    case MUL: binaryLoop<MUL>(x, y, o, m); break;
    case DIV: binaryLoop<DIV>(x, y, o, m); break;
    case SQDIFF: binaryLoop<SQDIFF>(x, y, o, m); break;
    case MAXIMUM: binaryLoop<MAXIMUM>(x, y, o, m); break;
    case MINIMUM: binaryLoop<MINIMUM>(x, y, o, m); break;
    case RELUGRAD: binaryLoop<RELUGRAD>(x, y, o, m); break;
    case POW: binaryLoop<POW>(x, y, o, m); break;
    case MUL2: binaryLoop<MUL2>(x, y, o, m); break;
    default: throw std::runtime_error("binary: unknown op");
  }
}

enum UnOp { RELU = 0, NEG, EXP, LOG, SQRT, RSQRT, SQUARE, SIGMOID, TANH, ABS, RELU6, STEP };

template <int OP>
void unaryLoop(const float* x, float* o, size_t n, float alpha) {
  for (size_t j = 0; j < n; ++j) {
    float v = x[j];
    if constexpr (OP == RELU) o[j] = v < 0.f ? 0.f : v;
    if constexpr (OP == NEG) o[j] = -v;
    if constexpr (OP == EXP) o[j] = std::exp(v);
    if constexpr (OP == LOG) o[j] = std::log(v);
    if constexpr (OP == SQRT) o[j] = std::sqrt(v);
    if constexpr (OP == RSQRT) o[j] = 1.f / std::sqrt(v);
    if constexpr (OP == SQUARE) o[j] = v * v;
    if constexpr (OP == SIGMOID) o[j] = 1.f / (1.f + std::exp(-v));
    if constexpr (OP == TANH) o[j] = std::tanh(v);
    if constexpr (OP == ABS) o[j] = std::fabs(v);
    if constexpr (OP == RELU6) o[j] = v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    if constexpr (OP == STEP) o[j] = v > 0.f ? 1.f : (v != v ? v : alpha);
  }
}

// unary(op, x, out, alpha)
NATIVE_FN(unary) {
  int op = static_cast<int>(a.i(0));
  size_t n;
  const float* x = a.f32(1, &n);
  float* o = a.f32(2);
  float alpha = a.argc > 3 ? static_cast<float>(a.d(3)) : 0.f;
  switch (op) {
    case RELU: unaryLoop<RELU>(x, o, n, alpha); break;
    case NEG: unaryLoop<NEG>(x, o, n, alpha); break;
    case EXP: unaryLoop<EXP>(x, o, n, alpha); break;
    case LOG: unaryLoop<LOG>(x, o, n, alpha); break;
    case SQRT: unaryLoop<SQRT>(x, o, n, alpha); break;
    case RSQRT: unaryLoop<RSQRT>(x, o, n, alpha); break;
    case SQUARE: unaryLoop<SQUARE>(x, o, n, alpha); break;
    case SIGMOID: unaryLoop<SIGMOID>(x, o, n, alpha); break;
    case TANH: unaryLoop<TANH>(x, o, n, alpha); break;
    case ABS: unaryLoop<ABS>(x, o, n, alpha); break;
    case RELU6: unaryLoop<RELU6>(x, o, n, alpha); break;
    case STEP: unaryLoop<STEP>(x, o, n, alpha); break;
    default: throw std::runtime_error("unary: unknown op");
  }
}

// addN(list, out)
NATIVE_FN(addN) {
  std::vector<float*> xs = a.f32list(0);
  size_t n;
  float* o = a.f32(1, &n);
  check(!xs.empty(), "addN: no inputs");
  std::memcpy(o, xs[0], n * sizeof(float));
  for (size_t k = 1; k < xs.size(); ++k) {
    const float* x = xs[k];
    for (size_t j = 0; j < n; ++j) o[j] += x[j];
  }
}

// ---------------------------------------------------------------- reductions
// reduce(op, x, shape, reduceMask(array of 0/1), out); op 0 = sum, 1 = mean, 2 = max, 3 = min
// acc[c] += x[0][c] + x[1][c] + ... + x[rows-1][c] in double, one row after another (the order of a scalar loop over
// the rows), for rows of C floats: the channels are the vector lanes, so each channel's sum is the scalar loop's,
// and its accumulators stay in registers instead of a store-to-load chain per element.
template <int NV>
void columnSums4(const float* __restrict__ x, i64 rows, i64 stride, double* __restrict__ acc) {
  __m256d s[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) s[v] = _mm256_loadu_pd(acc + 4 * v);
  for (i64 r = 0; r < rows; ++r) {
    const float* xr = x + r * stride;
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) s[v] = _mm256_add_pd(s[v], _mm256_cvtps_pd(_mm_loadu_ps(xr + 4 * v)));
  }
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) _mm256_storeu_pd(acc + 4 * v, s[v]);
}

void columnSums(const float* x, i64 rows, i64 C, double* acc) {
  using Fn = void (*)(const float*, i64, i64, double*);
  static const Fn fns[13] = {nullptr, columnSums4<1>, columnSums4<2>, columnSums4<3>, columnSums4<4>, columnSums4<5>,
                             columnSums4<6>, columnSums4<7>, columnSums4<8>, columnSums4<9>, columnSums4<10>,
                             columnSums4<11>, columnSums4<12>};
  i64 c0 = 0;
  for (; c0 + 48 <= C; c0 += 48) fns[12](x + c0, rows, C, acc + c0);
  const i64 nv = (C - c0) / 4;
  if (nv > 0) fns[nv](x + c0, rows, C, acc + c0);
  for (c0 += 4 * nv; c0 < C; ++c0) {
    double s = acc[c0];
    for (i64 r = 0; r < rows; ++r) s += x[r * C + c0];
    acc[c0] = s;
  }
}

NATIVE_FN(reduce) {
  int op = static_cast<int>(a.i(0));
  const float* x = a.f32(1);
  std::vector<i64> shape = a.ints(2), mask = a.ints(3);
  size_t outLen;
  float* o = a.f32(4, &outLen);
  check(shape.size() == mask.size(), "reduce: mask rank mismatch");
  // merge dims into alternating (kept / reduced) blocks
  std::vector<i64> dims;
  std::vector<bool> red;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 1) continue;
    bool r = mask[k] != 0;
    if (!dims.empty() && red.back() == r) dims.back() *= shape[k];
    else { dims.push_back(shape[k]); red.push_back(r); }
  }
  i64 total = 1, rcount = 1;
  for (size_t k = 0; k < dims.size(); ++k) { total *= dims[k]; if (red[k]) rcount *= dims[k]; }
  const bool isMax = op == 2, isMin = op == 3;
  if (total == 0) {
    for (size_t j = 0; j < outLen; ++j) o[j] = isMax ? -INFINITY : (isMin ? INFINITY : (op == 1 ? NAN : 0.f));
    return;
  }
  i64 kept = total / rcount;
  check(static_cast<i64>(outLen) == kept, "reduce: output size mismatch");
  if (isMax || isMin) {
    std::vector<float> acc(kept, isMax ? -INFINITY : INFINITY);
    std::vector<bool> nan(kept, false);
    // generic walk
    size_t r = dims.size();
    std::vector<i64> idx(r, 0), ostride(r, 0);
    i64 s = 1;
    for (size_t k = r; k-- > 0;) { if (!red[k]) { ostride[k] = s; s *= dims[k]; } }
    i64 oi = 0;
    for (i64 t = 0; t < total; ++t) {
      float v = x[t];
      if (v != v) nan[oi] = true;
      else if (isMax ? v > acc[oi] : v < acc[oi]) acc[oi] = v;
      for (size_t k = r; k-- > 0;) {
        oi += ostride[k];
        if (++idx[k] < dims[k]) break;
        oi -= ostride[k] * dims[k];
        idx[k] = 0;
      }
    }
    for (i64 j = 0; j < kept; ++j) o[j] = nan[j] ? NAN : acc[j];
    return;
  }
  // sum / mean accumulate in double (tfjs accumulates in JS numbers)
  std::vector<double> acc(kept, 0.0);
  size_t r = dims.size();
  if (r == 0) {
    acc[0] = x[0];
  } else if (r == 2 && red[0] && !red[1]) {
    // [rows, C] summed over the rows (a bias gradient): the same sums, channels as vector lanes
    columnSums(x, dims[0], dims[1], acc.data());
  } else if (!red[r - 1]) {
    // innermost block is kept: accumulate rows into acc
    i64 inner = dims[r - 1];
    i64 rows = total / inner;
    std::vector<i64> idx(r - 1, 0), ostride(r - 1, 0);
    i64 s = inner;
    for (size_t k = r - 1; k-- > 0;) { if (!red[k]) { ostride[k] = s; s *= dims[k]; } }
    i64 oi = 0;
    for (i64 t = 0; t < rows; ++t) {
      const float* xp = x + t * inner;
      double* ap = acc.data() + oi;
      for (i64 j = 0; j < inner; ++j) ap[j] += xp[j];
      for (size_t k = r - 1; k-- > 0;) {
        oi += ostride[k];
        if (++idx[k] < dims[k]) break;
        oi -= ostride[k] * dims[k];
        idx[k] = 0;
      }
    }
  } else {
    // innermost block is reduced: dot-reduce contiguous runs
    i64 inner = dims[r - 1];
    i64 rows = total / inner;
    std::vector<i64> idx(r - 1, 0), ostride(r - 1, 0);
    i64 s = 1;
    for (size_t k = r - 1; k-- > 0;) { if (!red[k]) { ostride[k] = s; s *= dims[k]; } }
    i64 oi = 0;
    for (i64 t = 0; t < rows; ++t) {
      const float* xp = x + t * inner;
      double sum = 0.0;
      for (i64 j = 0; j < inner; ++j) sum += xp[j];
      acc[oi] += sum;
      for (size_t k = r - 1; k-- > 0;) {
        oi += ostride[k];
        if (++idx[k] < dims[k]) break;
        oi -= ostride[k] * dims[k];
        idx[k] = 0;
      }
    }
  }
  if (op == 1) for (i64 j = 0; j < kept; ++j) o[j] = static_cast<float>(acc[j] / rcount);
  else for (i64 j = 0; j < kept; ++j) o[j] = static_cast<float>(acc[j]);
}

// ---------------------------------------------------------------- softmax
// softmax(logits, out, rows, cols) over the last axis.
NATIVE_FN(softmax) {
  const float* x = a.f32(0);
  float* o = a.f32(1);
  i64 rows = a.i(2), cols = a.i(3);
  for (i64 r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* orow = o + r * cols;
    float m = -INFINITY;
    for (i64 j = 0; j < cols; ++j) m = xr[j] > m ? xr[j] : m;
    double s = 0;
    for (i64 j = 0; j < cols; ++j) { orow[j] = std::exp(xr[j] - m); s += orow[j]; }
    float inv = static_cast<float>(s);
    for (i64 j = 0; j < cols; ++j) orow[j] = orow[j] / inv;
  }
}

// ---------------------------------------------------------------- batch norm
// Parameters of size C (last axis) or 1 (broadcast scalar) or absent (null -> default).
struct ChanParam {
  const float* p = nullptr;
  i64 n = 0;
  float def;
  explicit ChanParam(float d) : def(d) {}
  float at(i64 c) const { return p == nullptr ? def : (n == 1 ? p[0] : p[c]); }
};

ChanParam chanParam(const Args& a, size_t k, float def, i64 C) {
  ChanParam cp(def);
  napi_valuetype t;
  napi_typeof(a.env, a.at(k), &t);
  if (t == napi_null || t == napi_undefined) return cp;
  size_t n;
  cp.p = a.f32(k, &n);
  cp.n = static_cast<i64>(n);
  check(cp.n == 1 || cp.n == C, "batchNorm: parameter must have size 1 or C");
  return cp;
}

// batchNorm(x, mean, variance, offset|null, scale|null, out, C, eps)
NATIVE_FN(batchNorm) {
  size_t n;
  const float* x = a.f32(0, &n);
  i64 C = a.i(6);
  ChanParam mean = chanParam(a, 1, 0.f, C), var = chanParam(a, 2, 1.f, C);
  ChanParam off = chanParam(a, 3, 0.f, C), sc = chanParam(a, 4, 1.f, C);
  float* o = a.f32(5);
  float eps = static_cast<float>(a.d(7));
  std::vector<float> mul(C), add(C);
  for (i64 c = 0; c < C; ++c) {
    mul[c] = static_cast<float>(sc.at(c) / std::sqrt(static_cast<double>(var.at(c)) + eps));
    add[c] = off.at(c) - mean.at(c) * mul[c];
  }
  i64 rows = static_cast<i64>(n) / C;
  for (i64 r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* orow = o + r * C;
    for (i64 c = 0; c < C; ++c) orow[c] = xr[c] * mul[c] + add[c];
  }
}

// batchNormGrad(dy, x, mean, variance, scale|null, C, eps, dx, dmean, dvar, dscale, doffset)
// Gradients of y = (x - mean) * rsqrt(var + eps) * scale + offset, treating mean and
// variance as independent inputs (as tfjs' FusedBatchNorm gradient does).
NATIVE_FN(batchNormGrad) {
  size_t n;
  const float* dy = a.f32(0, &n);
  const float* x = a.f32(1);
  i64 C = a.i(5);
  ChanParam mean = chanParam(a, 2, 0.f, C), var = chanParam(a, 3, 1.f, C), sc = chanParam(a, 4, 1.f, C);
  float eps = static_cast<float>(a.d(6));
  float* dx = a.f32(7);
  float* dmean = a.f32(8);
  float* dvar = a.f32(9);
  float* dscale = a.f32(10);
  float* doffset = a.f32(11);
  std::vector<float> rs(C), m(C), k(C);
  for (i64 c = 0; c < C; ++c) {
    rs[c] = 1.f / std::sqrt(var.at(c) + eps);
    m[c] = mean.at(c);
    k[c] = rs[c] * sc.at(c);
  }
  std::vector<double> sdy(C, 0.0), sdyxm(C, 0.0);
  i64 rows = static_cast<i64>(n) / C;
  std::vector<float> rowDy(C), rowDyXm(C);
  for (i64 r = 0; r < rows; ++r) {
    const float* dyr = dy + r * C;
    const float* xr = x + r * C;
    float* dxr = dx + r * C;
    for (i64 c = 0; c < C; ++c) {
      float g = dyr[c];
      dxr[c] = g * k[c];
      sdy[c] += g;
      sdyxm[c] += static_cast<double>(g) * (xr[c] - m[c]);
    }
  }
  for (i64 c = 0; c < C; ++c) {
    float s = sc.at(c);
    doffset[c] = static_cast<float>(sdy[c]);
    dscale[c] = static_cast<float>(sdyxm[c] * rs[c]);
    dmean[c] = static_cast<float>(-sdy[c] * rs[c] * s);
    dvar[c] = static_cast<float>(-0.5 * sdyxm[c] * rs[c] * rs[c] * rs[c] * s);
  }
}

// ---------------------------------------------------------------- training batch norm (fused)
// Training-mode batch norm over NHWC data with per-channel statistics over all other axes (rows = N*H*W).
// Forward: one call for the batch mean, the biased batch variance and y; backward: one call for dx, dscale,
// doffset, with the gradient flowing through the batch statistics:
//   xhat = (x - mean) * rstd,  dscale = sum(dy * xhat),  doffset = sum(dy),
//   dx = scale * rstd / N * (N * dy - sum(dy) - xhat * sum(dy * xhat)).
// Per-channel sums accumulate in double; the statistics are rounded like tfjs' moments (mean in double ->
// float; variance = mean of float (x - mean)^2) and y like the batchNorm kernel above.

template <int CC>
void channelSums(const float* x, i64 rows, i64 C, double* s) {
  const i64 c = CC > 0 ? CC : C;
  for (i64 r = 0; r < rows; ++r) {
    const float* xr = x + r * c;
    for (i64 j = 0; j < c; ++j) s[j] += xr[j];
  }
}

template <int CC>
void channelSqDiff(const float* x, const float* m, i64 rows, i64 C, double* s) {
  const i64 c = CC > 0 ? CC : C;
  for (i64 r = 0; r < rows; ++r) {
    const float* xr = x + r * c;
    for (i64 j = 0; j < c; ++j) {
      float d = xr[j] - m[j];
      s[j] += static_cast<double>(d * d);
    }
  }
}

template <int CC>
void channelAffine(const float* x, const float* mul, const float* add, i64 rows, i64 C, float* y) {
  const i64 c = CC > 0 ? CC : C;
  for (i64 r = 0; r < rows; ++r) {
    const float* xr = x + r * c;
    float* yr = y + r * c;
    for (i64 j = 0; j < c; ++j) yr[j] = xr[j] * mul[j] + add[j];
  }
}

template <int CC>
void channelGradSums(const float* dy, const float* x, const float* m, i64 rows, i64 C, double* sdy, double* sdyxm) {
  const i64 c = CC > 0 ? CC : C;
  for (i64 r = 0; r < rows; ++r) {
    const float* dyr = dy + r * c;
    const float* xr = x + r * c;
    for (i64 j = 0; j < c; ++j) {
      float g = dyr[j];
      sdy[j] += g;
      sdyxm[j] += static_cast<double>(g * (xr[j] - m[j]));
    }
  }
}

template <int CC>
void channelGradDx(const float* dy, const float* x, const float* m, const float* ka, const float* kb,
                   const float* kc, i64 rows, i64 C, float* dx) {
  const i64 c = CC > 0 ? CC : C;
  for (i64 r = 0; r < rows; ++r) {
    const float* dyr = dy + r * c;
    const float* xr = x + r * c;
    float* dxr = dx + r * c;
    for (i64 j = 0; j < c; ++j) dxr[j] = ka[j] * dyr[j] + kb[j] * (xr[j] - m[j]) + kc[j];
  }
}

// Dispatch on the channel count so the common widths get fixed-length inner loops.
#define BN_DISPATCH(FN, C, ...)                        \
  switch (C) {                                         \
    case 16: FN<16>(__VA_ARGS__); break;               \
    case 32: FN<32>(__VA_ARGS__); break;               \
    case 64: FN<64>(__VA_ARGS__); break;               \
    default: FN<0>(__VA_ARGS__); break;                \
  }

// batchNormTrain(x, scale, offset, C, eps, y(out), mean(out), variance(out))
NATIVE_FN(batchNormTrain) {
  size_t n, ns, no, ny, nm, nv;
  const float* x = a.f32(0, &n);
  const float* sc = a.f32(1, &ns);
  const float* off = a.f32(2, &no);
  i64 C = a.i(3);
  float eps = static_cast<float>(a.d(4));
  float* y = a.f32(5, &ny);
  float* mean = a.f32(6, &nm);
  float* var = a.f32(7, &nv);
  check(C > 0 && n % C == 0 && n > 0, "batchNormTrain: size is not a positive multiple of the channel count");
  check(static_cast<i64>(ns) == C && static_cast<i64>(no) == C && static_cast<i64>(nm) == C &&
            static_cast<i64>(nv) == C && ny == n,
        "batchNormTrain: buffer sizes do not match");
  i64 rows = static_cast<i64>(n) / C;
  std::vector<double> s(C, 0.0);
  BN_DISPATCH(channelSums, C, x, rows, C, s.data());
  for (i64 c = 0; c < C; ++c) mean[c] = static_cast<float>(s[c] / rows);
  std::fill(s.begin(), s.end(), 0.0);
  BN_DISPATCH(channelSqDiff, C, x, mean, rows, C, s.data());
  std::vector<float> mul(C), add(C);
  for (i64 c = 0; c < C; ++c) {
    var[c] = static_cast<float>(s[c] / rows);
    mul[c] = static_cast<float>(sc[c] / std::sqrt(static_cast<double>(var[c]) + eps));
    add[c] = off[c] - mean[c] * mul[c];
  }
  BN_DISPATCH(channelAffine, C, x, mul.data(), add.data(), rows, C, y);
}

// batchNormTrainGrad(dy, x, mean, variance, scale, C, eps, dx(out), dscale(out), doffset(out))
NATIVE_FN(batchNormTrainGrad) {
  size_t n, nx, nm, nv, ns, ndx, nds, ndo;
  const float* dy = a.f32(0, &n);
  const float* x = a.f32(1, &nx);
  const float* mean = a.f32(2, &nm);
  const float* var = a.f32(3, &nv);
  const float* sc = a.f32(4, &ns);
  i64 C = a.i(5);
  float eps = static_cast<float>(a.d(6));
  float* dx = a.f32(7, &ndx);
  float* dscale = a.f32(8, &nds);
  float* doffset = a.f32(9, &ndo);
  check(C > 0 && n % C == 0 && n > 0, "batchNormTrainGrad: size is not a positive multiple of the channel count");
  check(nx == n && ndx == n && static_cast<i64>(nm) == C && static_cast<i64>(nv) == C &&
            static_cast<i64>(ns) == C && static_cast<i64>(nds) == C && static_cast<i64>(ndo) == C,
        "batchNormTrainGrad: buffer sizes do not match");
  i64 rows = static_cast<i64>(n) / C;
  std::vector<double> sdy(C, 0.0), sdyxm(C, 0.0);
  BN_DISPATCH(channelGradSums, C, dy, x, mean, rows, C, sdy.data(), sdyxm.data());
  std::vector<float> ka(C), kb(C), kc(C);
  const double N = static_cast<double>(rows);
  for (i64 c = 0; c < C; ++c) {
    double rstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    double g = sc[c];
    doffset[c] = static_cast<float>(sdy[c]);
    dscale[c] = static_cast<float>(sdyxm[c] * rstd);
    ka[c] = static_cast<float>(g * rstd);
    kb[c] = static_cast<float>(-g * rstd * rstd * rstd * sdyxm[c] / N);
    kc[c] = static_cast<float>(-g * rstd * sdy[c] / N);
  }
  BN_DISPATCH(channelGradDx, C, dy, x, mean, ka.data(), kb.data(), kc.data(), rows, C, dx);
}

#undef BN_DISPATCH

// ---------------------------------------------------------------- optimizer updates
// One pass per parameter tensor, mirroring the tf-op optimizers of src/train/optim.ts operation by
// operation (same float32 roundings; no FMA contraction), with the pruning mask folded in:
//   g' = g * mask + w * wd ;  (the mask product and the decay term are skipped when absent / wd == 0)
// SGD:  v = v * mom + g' ; w = (w - v * lr) * mask        (no momentum: w = (w - g' * lr) * mask)
// Adam: m = m * b1 + g' * (1 - b1) ; v = v * b2 + g'^2 * (1 - b2) ;
//       w = (w - (m * lrc) / (sqrt(v) + eps)) * mask
// `out` may be `w` itself (in-place update). All constants arrive as float32-rounded numbers.

inline float* optionalF32(const Args& a, size_t k, size_t n) {
  napi_valuetype t;
  napi_typeof(a.env, a.at(k), &t);
  if (t == napi_null || t == napi_undefined) return nullptr;
  size_t len;
  float* p = a.f32(k, &len);
  check(len == n, "optimizer update: tensor sizes differ");
  return p;
}

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

// One SGD step per element, plain (v = mom·v + g', w -= lr·v) or Nesterov (w -= lr·(g' + mom·v)), with
// g' = g·mask + w·wd. A loop per combination of the optional parts, so each is branch-free and vectorizes: the one
// loop with the branches inside ran scalar (~0.25 ms for LeNet-300-100's 235k weights, a tenth of its step).
// `o` may be `w` and `v` is updated in place, always at the element being read: no dependence between iterations
// (ivdep), and each element's float32 operations and their order are those of the scalar loop.
template <bool Nesterov, bool Mask, bool Decay, bool Mom>
void sgdLoop(const float* w, const float* g, float* v, const float* mask, float* o, size_t n, float lr, float mom,
             float wd) {
#pragma GCC ivdep
  for (size_t i = 0; i < n; ++i) {
    const float wi = w[i];
    float gi = g[i];
    if (Mask) gi = gi * mask[i];
    if (Decay) gi = gi + wi * wd;
    if (Mom) {
      const float vi = v[i] * mom + gi;
      v[i] = vi;
      gi = Nesterov ? gi + vi * mom : vi;
    }
    float r = wi - gi * lr;
    if (Mask) r = r * mask[i];
    o[i] = r;
  }
}

template <bool Nesterov>
void sgdDispatch(const float* w, const float* g, float* v, const float* mask, float* o, size_t n, float lr,
                 float mom, float wd) {
  const bool decay = wd > 0.f;
  const int which = (mask ? 4 : 0) | (decay ? 2 : 0) | (v ? 1 : 0);
  switch (which) {
    case 0: return sgdLoop<Nesterov, false, false, false>(w, g, v, mask, o, n, lr, mom, wd);
    case 1: return sgdLoop<Nesterov, false, false, true>(w, g, v, mask, o, n, lr, mom, wd);
    case 2: return sgdLoop<Nesterov, false, true, false>(w, g, v, mask, o, n, lr, mom, wd);
    case 3: return sgdLoop<Nesterov, false, true, true>(w, g, v, mask, o, n, lr, mom, wd);
    case 4: return sgdLoop<Nesterov, true, false, false>(w, g, v, mask, o, n, lr, mom, wd);
    case 5: return sgdLoop<Nesterov, true, false, true>(w, g, v, mask, o, n, lr, mom, wd);
    case 6: return sgdLoop<Nesterov, true, true, false>(w, g, v, mask, o, n, lr, mom, wd);
    default: return sgdLoop<Nesterov, true, true, true>(w, g, v, mask, o, n, lr, mom, wd);
  }
}

// sgdUpdate(w, g, v|null, mask|null, out, lr, momentum, weightDecay)
NATIVE_FN(sgdUpdate) {
  size_t n, gn, on;
  const float* w = a.f32(0, &n);
  const float* g = a.f32(1, &gn);
  check(gn == n, "sgdUpdate: gradient size differs");
  float* v = optionalF32(a, 2, n);
  const float* mask = optionalF32(a, 3, n);
  float* o = a.f32(4, &on);
  check(on == n, "sgdUpdate: output size differs");
  const float lr = static_cast<float>(a.d(5)), mom = static_cast<float>(a.d(6)), wd = static_cast<float>(a.d(7));
  sgdDispatch<false>(w, g, v, mask, o, n, lr, mom, wd);
}

// sgdNesterovUpdate(w, g, v|null, mask|null, out, lr, momentum, weightDecay): the composed Nesterov step of
// src/backend/fused-ops.ts op for op (same float32 roundings, no FMA contraction), in one pass:
//   g' = g * mask + w * wd ; v = v * mom + g' ; w = (w - (g' + v * mom) * lr) * mask
NATIVE_FN(sgdNesterovUpdate) {
  size_t n, gn, on;
  const float* w = a.f32(0, &n);
  const float* g = a.f32(1, &gn);
  check(gn == n, "sgdNesterovUpdate: gradient size differs");
  float* v = optionalF32(a, 2, n);
  const float* mask = optionalF32(a, 3, n);
  float* o = a.f32(4, &on);
  check(on == n, "sgdNesterovUpdate: output size differs");
  const float lr = static_cast<float>(a.d(5)), mom = static_cast<float>(a.d(6)), wd = static_cast<float>(a.d(7));
  sgdDispatch<true>(w, g, v, mask, o, n, lr, mom, wd);
}

// adamUpdate(w, g, m, v, mask|null, out, lrc, beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps, weightDecay)
NATIVE_FN(adamUpdate) {
  size_t n, gn, on, mn, vn;
  const float* w = a.f32(0, &n);
  const float* g = a.f32(1, &gn);
  float* m = a.f32(2, &mn);
  float* v = a.f32(3, &vn);
  check(gn == n && mn == n && vn == n, "adamUpdate: tensor sizes differ");
  const float* mask = optionalF32(a, 4, n);
  float* o = a.f32(5, &on);
  check(on == n, "adamUpdate: output size differs");
  const float lrc = static_cast<float>(a.d(6)), b1 = static_cast<float>(a.d(7)), b2 = static_cast<float>(a.d(8));
  const float c1 = static_cast<float>(a.d(9)), c2 = static_cast<float>(a.d(10));
  const float eps = static_cast<float>(a.d(11)), wd = static_cast<float>(a.d(12));
  const bool decay = wd > 0.f;
  for (size_t i = 0; i < n; ++i) {
    const float wi = w[i];
    float gi = g[i];
    if (mask) gi = gi * mask[i];
    if (decay) gi = gi + wi * wd;
    const float mi = m[i] * b1 + gi * c1;
    const float gg = gi * gi;
    const float vi = v[i] * b2 + gg * c2;
    m[i] = mi;
    v[i] = vi;
    float r = wi - (mi * lrc) / (std::sqrt(vi) + eps);
    if (mask) r = r * mask[i];
    o[i] = r;
  }
}

#pragma GCC pop_options

// ---------------------------------------------------------------- sparse (masked) layers
// The weight's nonzeros are confined to a pattern (Int32Array [colPtr | colRow | rowPtr | rowCol], see
// sparse.h); the kernels read W only there and write grad-weight only there (zero elsewhere).

float* f32n(const Args& a, size_t k, i64 n, const char* what) {
  size_t len;
  float* p = a.f32(k, &len);
  check(static_cast<i64>(len) == n, what);
  return p;
}

sparse::Pattern patternArg(const Args& a, size_t k, i64 K, i64 N) {
  size_t len;
  const int32_t* p = a.i32(k, &len);
  return sparse::parse(p, static_cast<i64>(len), K, N);
}

// conv geometry for the sparse kernels: [N, H, W, C, OH, OW, O, KH, KW, pt, pb, pl, pr] (stride 1, dilation 1)
sparse::Conv sparseConvGeom(const Args& a, size_t k) {
  std::vector<i64> v = a.ints(k);
  check(v.size() == 13, "sparse conv geometry needs 13 integers");
  return sparse::Conv{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
}

// A sparse conv the direct kernels take (smallconv.h): unpadded, with a short filter row.
bool smallSparse(const sparse::Conv& g, smallconv::Geom* s) {
  if (g.pt || g.pb || g.pl || g.pr) return false;
  *s = smallconv::Geom{g.N, g.H, g.W, g.C, g.OH, g.OW, g.O, g.KH, g.KW};
  return smallconv::applies(*s);
}

// The filter rows k that hold any of the pattern's entries, ascending.
// The pattern's support as one byte per weight of W [K, O] (1 where the pattern holds the weight).
std::vector<uint8_t> patternKeep(const sparse::Pattern& p) {
  std::vector<uint8_t> keep(p.K * p.N, 0);
  for (i64 k = 0; k < p.K; ++k)
    for (i64 e = p.rowPtr[k]; e < p.rowPtr[k + 1]; ++e) keep[k * p.N + p.rowCol[e]] = 1;
  return keep;
}

std::vector<int32_t> patternRows(const sparse::Pattern& p) {
  std::vector<int32_t> rows;
  for (i64 k = 0; k < p.K; ++k)
    if (p.rowPtr[k + 1] > p.rowPtr[k]) rows.push_back(static_cast<int32_t>(k));
  return rows;
}

// sparseConv2d(x, w, pattern, y(out), geom[, bias, relu])
NATIVE_FN(sparseConv2d) {
  sparse::Conv g = sparseConvGeom(a, 4);
  const i64 K = g.KH * g.KW * g.C;
  sparse::Pattern p = patternArg(a, 2, K, g.O);
  smallconv::Geom sg;
  if (smallSparse(g, &sg)) {
    // W as the sparse kernel reads it: its pattern's entries, zero elsewhere, over the rows that hold any.
    const float* w = f32n(a, 1, K * g.O, "sparseConv2d: w size");
    std::vector<float> wp(K * g.O, 0.f);
    for (i64 k = 0; k < K; ++k)
      for (i64 e = p.rowPtr[k]; e < p.rowPtr[k + 1]; ++e) wp[k * g.O + p.rowCol[e]] = w[k * g.O + p.rowCol[e]];
    const std::vector<int32_t> rows = patternRows(p);
    smallconv::forward(f32n(a, 0, g.N * g.H * g.W * g.C, "sparseConv2d: x size"), wp.data(),
                       optionalArray(a, 5, g.O, "sparseConv2d: bias size"), optionalFlag(a, 6), sg,
                       f32n(a, 3, g.N * g.OH * g.OW * g.O, "sparseConv2d: y size"), rows.data(),
                       static_cast<i64>(rows.size()));
    return;
  }
  sparse::conv2d(f32n(a, 0, g.N * g.H * g.W * g.C, "sparseConv2d: x size"), f32n(a, 1, K * g.O, "sparseConv2d: w size"),
                 p, g, f32n(a, 3, g.N * g.OH * g.OW * g.O, "sparseConv2d: y size"),
                 optionalArray(a, 5, g.O, "sparseConv2d: bias size"), optionalFlag(a, 6));
}

// sparseConv2dGradInput(dy, w, pattern, dx(out), geom)
// The scatter kernels' geometry for a sparse conv (always stride 1), when unpadded; and the sparse kernel's work.
bool sparseScatter(const sparse::Conv& g, scatterconv::Geom* s) {
  if (g.pt || g.pb || g.pl || g.pr) return false;
  *s = scatterconv::Geom{g.N, g.H, g.W, g.C, g.OH, g.OW, g.O, g.KH, g.KW};
  return scatterconv::applies(*s);
}
double sparseWork(const sparse::Conv& g, const sparse::Pattern& p, double edge) {
  return edge * static_cast<double>(g.N * g.OH * g.OW) * static_cast<double>(p.nnz);
}

NATIVE_FN(sparseConv2dGradInput) {
  sparse::Conv g = sparseConvGeom(a, 4);
  const i64 K = g.KH * g.KW * g.C;
  sparse::Pattern p = patternArg(a, 2, K, g.O);
  scatterconv::Geom sc;
  // W is 0 outside the pattern (the sparse kernels' contract), so the dense scatter gives the same dx.
  if (sparseScatter(g, &sc) && scatterPays(f32n(a, 0, g.N * g.OH * g.OW * g.O, "sparseConv2dGradInput: dy size"), sc, sparseWork(g, p, SPARSE_EDGE_DX))) {
    scatterconv::gradInput(a.f32(0), f32n(a, 1, K * g.O, "sparseConv2dGradInput: w size"), sc,
                           f32n(a, 3, g.N * g.H * g.W * g.C, "sparseConv2dGradInput: dx size"));
    return;
  }
  sparse::conv2dGradInput(f32n(a, 0, g.N * g.OH * g.OW * g.O, "sparseConv2dGradInput: dy size"),
                          f32n(a, 1, K * g.O, "sparseConv2dGradInput: w size"), p, g,
                          f32n(a, 3, g.N * g.H * g.W * g.C, "sparseConv2dGradInput: dx size"));
}

// sparseConv2dGradFilter(x, dy, pattern, dw(out), geom)
NATIVE_FN(sparseConv2dGradFilter) {
  sparse::Conv g = sparseConvGeom(a, 4);
  const i64 K = g.KH * g.KW * g.C;
  sparse::Pattern p = patternArg(a, 2, K, g.O);
  scatterconv::Geom sc;
  if (sparseScatter(g, &sc) && scatterPays(f32n(a, 1, g.N * g.OH * g.OW * g.O, "sparseConv2dGradFilter: dy size"), sc, sparseWork(g, p, SPARSE_EDGE_DW))) {
    const std::vector<uint8_t> keep = patternKeep(p);
    scatterconv::gradFilter(f32n(a, 0, g.N * g.H * g.W * g.C, "sparseConv2dGradFilter: x size"), a.f32(1), sc,
                            f32n(a, 3, K * g.O, "sparseConv2dGradFilter: dw size"), keep.data());
    return;
  }
  smallconv::Geom sg;
  if (smallSparse(g, &sg)) {
    const std::vector<uint8_t> keep = patternKeep(p);
    const std::vector<int32_t> rows = patternRows(p);
    smallconv::gradFilter(f32n(a, 0, g.N * g.H * g.W * g.C, "sparseConv2dGradFilter: x size"),
                          f32n(a, 1, g.N * g.OH * g.OW * g.O, "sparseConv2dGradFilter: dy size"), sg,
                          f32n(a, 3, K * g.O, "sparseConv2dGradFilter: dw size"), rows.data(),
                          static_cast<i64>(rows.size()), keep.data());
    return;
  }
  sparse::conv2dGradFilter(f32n(a, 0, g.N * g.H * g.W * g.C, "sparseConv2dGradFilter: x size"),
                           f32n(a, 1, g.N * g.OH * g.OW * g.O, "sparseConv2dGradFilter: dy size"), p, g,
                           f32n(a, 3, K * g.O, "sparseConv2dGradFilter: dw size"));
}

// f (which says whether it took the call) under guarded(): a JS boolean, or what guarded() returns when f threw.
template <typename F>
napi_value guardedBool(napi_env env, F&& f) {
  bool done = false;
  napi_value r = guarded(env, [&] { done = f(); });
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return r;
  napi_value v;
  napi_get_boolean(env, done, &v);
  return v;
}

// The direct filter-and-bias gradient (smallconv::gradFilter with db) behind convBiasActGradFilter and
// convPoolGradFilter: arguments x, dy, (y or code), dw(out), db(out), geom (the sparse kernels' 13 integers),
// [relu,] [pattern]. Returns false (nothing written) for convs the direct kernels do not take.
napi_value directGradFilter(napi_env env, napi_callback_info info, bool pooled) {
  return guardedBool(env, [&] {
    Args a(env, info);
    sparse::Conv g = sparseConvGeom(a, 5);
    smallconv::Geom sg;
    if (!smallSparse(g, &sg)) return false;
    if (pooled && (g.OH % 2 || g.OW % 2)) return false;
    const size_t patternAt = pooled ? 6 : 7;
    const i64 K = g.KH * g.KW * g.C;
    std::vector<int32_t> rows;
    std::vector<uint8_t> keep;
    napi_valuetype t = napi_undefined;
    if (a.argc > patternAt) napi_typeof(env, a.argv[patternAt], &t);
    if (t != napi_null && t != napi_undefined && a.argc > patternAt) {
      sparse::Pattern p = patternArg(a, patternAt, K, g.O);
      keep = patternKeep(p);
      rows = patternRows(p);
    } else {
      for (i64 k = 0; k < K; ++k) rows.push_back(static_cast<int32_t>(k));
    }
    const i64 ny = g.N * g.OH * g.OW * g.O, np = ny / 4;
    const float* x = f32n(a, 0, g.N * g.H * g.W * g.C, "directGradFilter: x size");
    const float* dy = f32n(a, 1, pooled ? np : ny, "directGradFilter: dy size");
    float* dw = f32n(a, 3, K * g.O, "directGradFilter: dw size");
    float* db = f32n(a, 4, g.O, "directGradFilter: db size");
    const uint8_t* k = keep.empty() ? nullptr : keep.data();
    if (pooled) {
      size_t nc;
      const int32_t* code = a.i32(2, &nc);
      check(static_cast<i64>(nc) == np, "convPoolGradFilter: code size");
      smallconv::gradFilter(x, dy, sg, dw, rows.data(), static_cast<i64>(rows.size()), k, nullptr, true, db, code);
    } else {
      smallconv::gradFilter(x, dy, sg, dw, rows.data(), static_cast<i64>(rows.size()), k,
                            f32n(a, 2, ny, "convBiasActGradFilter: y size"), a.i(6) != 0, db);
    }
    return true;
  });
}

// convBiasActGradFilter(x, dy, y, dw(out), db(out), geom (the sparse kernels' 13 integers), relu[, pattern]) -> bool:
// the filter and bias gradients of the fused layer y = act(conv(x, w) + bias) from dy in one pass (smallconv.h), for
// the convs the direct kernels take; false (nothing written) for others, which compose BiasActGrad and the filter
// gradient instead. With a pattern, dw is written on its support only (0 elsewhere), as the sparse kernel writes it.
napi_value convBiasActGradFilter(napi_env env, napi_callback_info info) { return directGradFilter(env, info, false); }

// convPoolGradFilter(x, dp, code, dw(out), db(out), geom[, pattern]) -> bool: the same for the layer followed by its
// ReLU and a 2x2 / stride-2 max pool (layer-ops' Conv2DBiasActPool), from the pooled gradient dp and maxPoolCode's
// codes: each image's dz is routed in cache, never written out.
napi_value convPoolGradFilter(napi_env env, napi_callback_info info) { return directGradFilter(env, info, true); }

// maxPoolCode(y, p(out), code(out, Int32Array), N, H, W, C[, zeros(out)[1]]): smallconv::maxPoolCode2x2 (H, W even);
// with `zeros`, y's elements == 0 counted into it as countZeros writes them.
NATIVE_FN(maxPoolCode) {
  const i64 N = a.i(3), H = a.i(4), W = a.i(5), C = a.i(6);
  check(H % 2 == 0 && W % 2 == 0, "maxPoolCode: H and W must be even");
  const i64 np = N * (H / 2) * (W / 2) * C;
  size_t nc;
  int32_t* code = const_cast<int32_t*>(a.i32(2, &nc));
  check(static_cast<i64>(nc) == np, "maxPoolCode: code size");
  napi_valuetype t = napi_undefined;
  if (a.argc > 7) napi_typeof(a.env, a.argv[7], &t);
  float* zeros = t != napi_null && t != napi_undefined && a.argc > 7 ? f32n(a, 7, 1, "maxPoolCode: zeros size") : nullptr;
  const i64 z = smallconv::maxPoolCode2x2(f32n(a, 0, N * H * W * C, "maxPoolCode: y size"), N, H, W, C,
                                          f32n(a, 1, np, "maxPoolCode: p size"), code, zeros != nullptr);
  if (zeros) zeros[0] = static_cast<float>(static_cast<double>(z));
}

// convPoolSmall(x, w, bias, p(out), code(out), geom (the sparse kernels' 13 integers), zeros(out)[1] | null[, pattern])
// -> bool: relu(conv(x, w) + bias) pooled as maxPoolCode pools it, for convs the direct kernels take (over a pattern:
// its rows, as sparseConv2d runs them), in chunks of images (smallconv::forwardPooled); false (nothing written) else.
napi_value convPoolSmall(napi_env env, napi_callback_info info) {
  return guardedBool(env, [&] {
    Args a(env, info);
    sparse::Conv g = sparseConvGeom(a, 5);
    smallconv::Geom sg;
    if (!smallSparse(g, &sg) || g.OH % 2 || g.OW % 2) return false;
    const i64 K = g.KH * g.KW * g.C, np = g.N * (g.OH / 2) * (g.OW / 2) * g.O;
    const float* x = f32n(a, 0, g.N * g.H * g.W * g.C, "convPoolSmall: x size");
    const float* w = f32n(a, 1, K * g.O, "convPoolSmall: w size");
    const float* bias = f32n(a, 2, g.O, "convPoolSmall: bias size");
    float* p = f32n(a, 3, np, "convPoolSmall: p size");
    size_t nc;
    int32_t* code = const_cast<int32_t*>(a.i32(4, &nc));
    check(static_cast<i64>(nc) == np, "convPoolSmall: code size");
    napi_valuetype t = napi_undefined;
    napi_typeof(env, a.at(6), &t);
    float* zeros = t != napi_null && t != napi_undefined ? f32n(a, 6, 1, "convPoolSmall: zeros size") : nullptr;
    napi_valuetype tp = napi_undefined;
    if (a.argc > 7) napi_typeof(env, a.argv[7], &tp);
    i64 z;
    if (tp != napi_null && tp != napi_undefined && a.argc > 7) {
      // As sparseConv2d: the pattern's entries of W, zero elsewhere, over the rows that hold any.
      sparse::Pattern pat = patternArg(a, 7, K, g.O);
      std::vector<float> wp(K * g.O, 0.f);
      for (i64 k = 0; k < K; ++k)
        for (i64 e = pat.rowPtr[k]; e < pat.rowPtr[k + 1]; ++e) wp[k * g.O + pat.rowCol[e]] = w[k * g.O + pat.rowCol[e]];
      const std::vector<int32_t> rows = patternRows(pat);
      z = smallconv::forwardPooled(x, wp.data(), bias, sg, p, code, zeros != nullptr, rows.data(), static_cast<i64>(rows.size()));
    } else {
      z = smallconv::forwardPooled(x, w, bias, sg, p, code, zeros != nullptr);
    }
    if (zeros) zeros[0] = static_cast<float>(static_cast<double>(z));
    return true;
  });
}

// The nonzero entries routePooled would write into dz from dp and its codes (what scatterPays counts over dz): per
// pooled value, its winner's 0 + dp where that is nonzero (a NaN included), and a NaN at each position flagged.
i64 pooledNonzeros(const float* dp, const int32_t* code, i64 n) {
  i64 count = 0, i = 0;
  const __m256i four = _mm256_set1_epi32(4), seven = _mm256_set1_epi32(7);
  const __m256 zero = _mm256_setzero_ps();
  bool flags = false;  // a NaN flag somewhere (bits 3-6: a diverging run)
  for (; i + 8 <= n; i += 8) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i));
    const __m256i reaches = _mm256_cmpgt_epi32(four, _mm256_and_si256(v, seven));
    const __m256 nonzero = _mm256_cmp_ps(_mm256_loadu_ps(dp + i), zero, _CMP_NEQ_UQ);
    count += __builtin_popcount(_mm256_movemask_ps(_mm256_and_ps(_mm256_castsi256_ps(reaches), nonzero)));
    flags |= _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(v, seven))) != 0;
  }
  for (; i < n; ++i) {
    count += (code[i] & 7) < 4 && dp[i] != 0.f;
    flags |= code[i] > 7;
  }
  if (flags)
    for (i64 j = 0; j < n; ++j) count += __builtin_popcount(static_cast<uint32_t>(code[j]) >> 3);
  return count;
}

// The geometry (the sparse kernels' 13 integers at argument `at`) of a pooled sparse conv that the image-by-image
// kernels below take: not one the direct kernels take (convPoolSmall, convPoolGradFilter), even output sides.
struct PooledSparse {
  sparse::Conv g;
  i64 K, PH, PW, pooled, np;  // filter rows; pooled height, width, values per image and per batch
};
bool pooledSparse(const Args& a, size_t at, PooledSparse* s) {
  s->g = sparseConvGeom(a, at);
  const sparse::Conv& g = s->g;
  smallconv::Geom sg;
  if (smallSparse(g, &sg) || g.OH % 2 || g.OW % 2) return false;
  s->K = g.KH * g.KW * g.C;
  s->PH = g.OH / 2;
  s->PW = g.OW / 2;
  s->pooled = s->PH * s->PW * g.O;
  s->np = g.N * s->pooled;
  return true;
}
// The pool's codes (an Int32Array of n) at argument k.
int32_t* codeArg(const Args& a, size_t k, i64 n, const char* what) {
  size_t nc;
  int32_t* code = const_cast<int32_t*>(a.i32(k, &nc));
  check(static_cast<i64>(nc) == n, what);
  return code;
}

// sparseConvPool(x, w, bias, p(out), code(out), geom (13 integers), zeros(out)[1] | null, pattern) -> bool: the sparse
// conv with ReLU, pooled as maxPoolCode pools it, image by image (sparse::conv2dEach), so that the conv's output is
// never written out for the batch: the bits of sparseConv2d then maxPoolCode. False (nothing written) for convs
// convPoolSmall takes and for odd output sides.
napi_value sparseConvPool(napi_env env, napi_callback_info info) {
  return guardedBool(env, [&] {
    Args a(env, info);
    PooledSparse ps;
    if (!pooledSparse(a, 5, &ps)) return false;
    const sparse::Conv& g = ps.g;
    const i64 pooled = ps.pooled;
    sparse::Pattern pat = patternArg(a, 7, ps.K, g.O);
    const float* x = f32n(a, 0, g.N * g.H * g.W * g.C, "sparseConvPool: x size");
    const float* w = f32n(a, 1, ps.K * g.O, "sparseConvPool: w size");
    const float* bias = f32n(a, 2, g.O, "sparseConvPool: bias size");
    float* p = f32n(a, 3, ps.np, "sparseConvPool: p size");
    int32_t* code = codeArg(a, 4, ps.np, "sparseConvPool: code size");
    napi_valuetype t = napi_undefined;
    napi_typeof(env, a.at(6), &t);
    float* zeros = t != napi_null && t != napi_undefined ? f32n(a, 6, 1, "sparseConvPool: zeros size") : nullptr;
    aligned::Floats y(g.OH * g.OW * g.O);
    i64 z = 0;
    sparse::conv2dEach(x, w, pat, g, bias, true, [&](i64) { return y.data(); }, [&](i64 b, float* yb) {
      z += smallconv::maxPoolCode2x2(yb, 1, g.OH, g.OW, g.O, p + b * pooled, code + b * pooled, zeros != nullptr);
    });
    if (zeros) zeros[0] = static_cast<float>(static_cast<double>(z));
    return true;
  });
}

// sparseConvPoolGrads(x, w, dp, code, pattern, dx(out), dw(out), db(out), geom (13 integers)) -> bool: the pooled
// sparse layer's three gradients from the pooled gradient dp and sparseConvPool's codes, each image's dz routed in
// cache (routePooled) and read once for both dx and dw (sparse::conv2dGrads): the bits of maxPoolRoute,
// sparseConv2dGradInput and sparseConv2dGradFilter. False (nothing written) where those would not both run the
// sparse kernels (the scatter kernels pay, or the direct kernels take the conv): the caller runs them separately.
napi_value sparseConvPoolGrads(napi_env env, napi_callback_info info) {
  return guardedBool(env, [&] {
    Args a(env, info);
    PooledSparse ps;
    if (!pooledSparse(a, 8, &ps)) return false;
    const sparse::Conv& g = ps.g;
    const i64 K = ps.K, PH = ps.PH, PW = ps.PW, pooled = ps.pooled, np = ps.np;
    sparse::Pattern pat = patternArg(a, 4, K, g.O);
    const float* dp = f32n(a, 2, np, "sparseConvPoolGrads: dp size");
    const int32_t* code = codeArg(a, 3, np, "sparseConvPoolGrads: code size");
    scatterconv::Geom sc;
    if (sparseScatter(g, &sc) && scatterEnabled()) {
      const double visits = static_cast<double>(pooledNonzeros(dp, code, np));
      if (scatterPaysFor(visits, sc, sparseWork(g, pat, SPARSE_EDGE_DX)) || scatterPaysFor(visits, sc, sparseWork(g, pat, SPARSE_EDGE_DW))) return false;
    }
    float* db = f32n(a, 7, g.O, "sparseConvPoolGrads: db size");
    std::vector<double> dbacc(g.O, 0.0);
    aligned::Floats dz(g.OH * g.OW * g.O);
    sparse::conv2dGrads(f32n(a, 0, g.N * g.H * g.W * g.C, "sparseConvPoolGrads: x size"),
                        f32n(a, 1, K * g.O, "sparseConvPoolGrads: w size"), pat, g, [&](i64 b) {
                          smallconv::routePooled(dp + b * pooled, code + b * pooled, 1, PH, PW, g.O, dz.data(), dbacc.data());
                          return static_cast<const float*>(dz.data());
                        },
                        f32n(a, 5, g.N * g.H * g.W * g.C, "sparseConvPoolGrads: dx size"),
                        f32n(a, 6, K * g.O, "sparseConvPoolGrads: dw size"));
    for (i64 c = 0; c < g.O; ++c) db[c] = static_cast<float>(dbacc[c]);
    return true;
  });
}

// maxPoolRoute(dp, code, dz(out), db(out), N, PH, PW, C): smallconv::routePooled over the batch, db = dz's column
// sums in row order in double, rounded once (BiasActGrad's).
NATIVE_FN(maxPoolRoute) {
  const i64 N = a.i(4), PH = a.i(5), PW = a.i(6), C = a.i(7);
  const i64 np = N * PH * PW * C;
  size_t nc;
  const int32_t* code = a.i32(1, &nc);
  check(static_cast<i64>(nc) == np, "maxPoolRoute: code size");
  float* db = f32n(a, 3, C, "maxPoolRoute: db size");
  std::vector<double> acc(C, 0.0);
  smallconv::routePooled(f32n(a, 0, np, "maxPoolRoute: dp size"), code, N, PH, PW, C,
                         f32n(a, 2, 4 * np, "maxPoolRoute: dz size"), acc.data());
  for (i64 c = 0; c < C; ++c) db[c] = static_cast<float>(acc[c]);
}

// sparseMatMul(x [B,K], w [K,N], pattern, y(out) [B,N], B, K, N)
NATIVE_FN(sparseMatMul) {
  const i64 B = a.i(4), K = a.i(5), N = a.i(6);
  sparse::Pattern p = patternArg(a, 2, K, N);
  sparse::matmul(f32n(a, 0, B * K, "sparseMatMul: x size"), f32n(a, 1, K * N, "sparseMatMul: w size"), p, B,
                 f32n(a, 3, B * N, "sparseMatMul: y size"));
}

// sparseMatMulGradInput(dy [B,N], w [K,N], pattern, dx(out) [B,K], B, K, N)
NATIVE_FN(sparseMatMulGradInput) {
  const i64 B = a.i(4), K = a.i(5), N = a.i(6);
  sparse::Pattern p = patternArg(a, 2, K, N);
  sparse::matmulGradInput(f32n(a, 0, B * N, "sparseMatMulGradInput: dy size"),
                          f32n(a, 1, K * N, "sparseMatMulGradInput: w size"), p, B,
                          f32n(a, 3, B * K, "sparseMatMulGradInput: dx size"));
}

// sparseMatMulGradWeight(x [B,K], dy [B,N], pattern, dw(out) [K,N], B, K, N)
NATIVE_FN(sparseMatMulGradWeight) {
  const i64 B = a.i(4), K = a.i(5), N = a.i(6);
  sparse::Pattern p = patternArg(a, 2, K, N);
  sparse::matmulGradWeight(f32n(a, 0, B * K, "sparseMatMulGradWeight: x size"),
                           f32n(a, 1, B * N, "sparseMatMulGradWeight: dy size"), p, B,
                           f32n(a, 3, K * N, "sparseMatMulGradWeight: dw size"));
}

// ---------------------------------------------------------------- layer epilogues
// biasAct(y, bias|null, out, rows, C, relu): out = act(y + bias) row by row (out may be y).
NATIVE_FN(biasAct) {
  const i64 rows = a.i(3), C = a.i(4);
  sparse::biasAct(f32n(a, 0, rows * C, "biasAct: y size"), optionalArray(a, 1, C, "biasAct: bias size"),
                  f32n(a, 2, rows * C, "biasAct: out size"), rows, C, a.i(5) != 0);
}

// biasActGrad(dy, y, dz(out), db(out), rows, C, relu): the gradient of act(z + bias) from its output y:
// dz = relu ? reluGrad(dy, y) : dy (reluGrad: the RELUGRAD expression; y > 0 exactly where z + bias > 0, and a NaN
// y is the NaN z + bias was), db[c] = sum over rows of dz[r][c], accumulated in double in row order and rounded once,
// as `reduce` sums (the bits of a separate ReluGrad and the bias's Sum).
NATIVE_FN(biasActGrad) {
  const i64 rows = a.i(4), C = a.i(5);
  const bool relu = a.i(6) != 0;
  const float* dy = f32n(a, 0, rows * C, "biasActGrad: dy size");
  const float* y = f32n(a, 1, rows * C, "biasActGrad: y size");
  float* dz = f32n(a, 2, rows * C, "biasActGrad: dz size");
  float* db = f32n(a, 3, C, "biasActGrad: db size");
  std::vector<double> acc(C, 0.0);
  // Blocks of rows small enough to stay in L1 between writing dz and summing it.
  const i64 block = std::max<i64>(1, 4096 / std::max<i64>(C, 1));
  for (i64 r0 = 0; r0 < rows; r0 += block) {
    const i64 n = std::min(block, rows - r0);
    const float* __restrict__ dyr = dy + r0 * C;
    const float* __restrict__ yr = y + r0 * C;
    float* __restrict__ dzr = dz + r0 * C;
    if (relu) {
      for (i64 j = 0; j < n * C; ++j) dzr[j] = bin<RELUGRAD>(dyr[j], yr[j]);
    } else {
      std::memcpy(dzr, dyr, sizeof(float) * n * C);
    }
    columnSums(dzr, n, C, acc.data());
  }
  for (i64 c = 0; c < C; ++c) db[c] = static_cast<float>(acc[c]);
}

// countZeros(x, out[1]): how many elements are == 0 (-0 included, NaN not), rounded to float32 once: the value of
// tfjs' sum(cast(equal(x, 0), "float32")) on this backend (its Sum accumulates in double).
NATIVE_FN(countZeros) {
  size_t n;
  const float* x = a.f32(0, &n);
  float* out = f32n(a, 1, 1, "countZeros: out size");
  i64 zeros = 0;
  for (size_t j = 0; j < n; ++j) zeros += x[j] == 0.f;
  out[0] = static_cast<float>(static_cast<double>(zeros));
}

// ---------------------------------------------------------------- gather
// gatherRows(x, idx Int32, rowLen, out): out row j = x row idx[j] (indices checked by the caller). A training batch is
// 128 rows of a 188 MB split in random order: DRAM-latency bound; the next rows' lines are prefetched while one copies.
NATIVE_FN(gatherRows) {
  size_t n, ni, no;
  const float* x = a.f32(0, &n);
  const int32_t* idx = a.i32(1, &ni);
  const i64 row = a.i(2);
  float* out = a.f32(3, &no);
  check(row > 0 && static_cast<i64>(no) == static_cast<i64>(ni) * row, "gatherRows: out size");
  const i64 rows = static_cast<i64>(n) / row;
  for (size_t j = 0; j < ni; ++j) check(idx[j] >= 0 && idx[j] < rows, "gatherRows: index out of range");
  constexpr size_t ahead = 2;
  for (size_t j = 0; j < ni; ++j) {
    if (j + ahead < ni) {
      const char* p = reinterpret_cast<const char*>(x + static_cast<i64>(idx[j + ahead]) * row);
      for (i64 b = 0; b < row * 4; b += 64) __builtin_prefetch(p + b);
    }
    std::memcpy(out + j * row, x + static_cast<i64>(idx[j]) * row, sizeof(float) * row);
  }
}

// ---------------------------------------------------------------- softmax cross-entropy
// The training loss and its gradient (src/backend/fused-ops.ts) as the JS loops in src/backend/native/kernels.ts
// computed them, operation for operation: float32 differences, exp and log in double of float32 arguments rounded
// to float32 once (Math.fround(Math.exp(Math.fround(...)))), the row and batch sums in double. In JS the ~2,600
// Math.exp calls of a 128 x 10 batch cost ~90 µs per step (4 % of an MLP step); here they cost a few.
// Results may differ from the JS loops where glibc's and V8's double exp/log round differently (then by one float
// ulp at most, as the composed tfjs ops may).
static float logSumExpRow(const float* x, i64 C) {
  float m = -std::numeric_limits<float>::infinity();
  for (i64 j = 0; j < C; ++j) {
    const float v = x[j];
    if (v > m || v != v) m = v;
  }
  double sum = 0;
  for (i64 j = 0; j < C; ++j) sum += static_cast<float>(std::exp(static_cast<double>(x[j] - m)));
  return static_cast<float>(static_cast<double>(m) + static_cast<float>(std::log(static_cast<double>(static_cast<float>(sum)))));
}

// softmaxCrossEntropy(logits [B*C], labels Int32 [B], B, C, out [2]): out[0] the mean loss, out[1] the top-1 hits
// (the first strict maximum, as ArgMax). A label outside [0, C) is an all-zero one-hot row: it adds 0 to the loss.
NATIVE_FN(softmaxCrossEntropy) {
  const i64 B = a.i(2), C = a.i(3);
  const float* x = f32n(a, 0, B * C, "softmaxCrossEntropy: logits size");
  size_t ny;
  const int32_t* y = a.i32(1, &ny);
  check(static_cast<i64>(ny) == B, "softmaxCrossEntropy: labels size");
  float* out = f32n(a, 4, 2, "softmaxCrossEntropy: out size");
  double total = 0;
  i64 hits = 0;
  for (i64 r = 0; r < B; ++r) {
    const float* xr = x + r * C;
    const i64 label = y[r];
    float best = xr[0];
    i64 arg = 0;
    for (i64 j = 1; j < C; ++j) if (xr[j] > best) { best = xr[j]; arg = j; }
    if (arg == label) ++hits;
    if (label >= 0 && label < C) total += -static_cast<double>(xr[label] - logSumExpRow(xr, C));
  }
  out[0] = static_cast<float>(static_cast<double>(static_cast<float>(total)) / static_cast<double>(B));
  out[1] = static_cast<float>(hits);
}

// softmaxCrossEntropyGrad(logits [B*C], labels Int32 [B], dy, B, C, out [B*C]):
// out = float(dy / B) * (softmax(logits) - onehot), softmax as exp(x - logSumExp).
NATIVE_FN(softmaxCrossEntropyGrad) {
  const i64 B = a.i(3), C = a.i(4);
  const float* x = f32n(a, 0, B * C, "softmaxCrossEntropyGrad: logits size");
  size_t ny;
  const int32_t* y = a.i32(1, &ny);
  check(static_cast<i64>(ny) == B, "softmaxCrossEntropyGrad: labels size");
  const float g = static_cast<float>(static_cast<double>(static_cast<float>(a.d(2))) / static_cast<double>(B));
  float* o = f32n(a, 5, B * C, "softmaxCrossEntropyGrad: out size");
  for (i64 r = 0; r < B; ++r) {
    const float* xr = x + r * C;
    float* orow = o + r * C;
    const i64 label = y[r];
    const float lse = logSumExpRow(xr, C);
    for (i64 j = 0; j < C; ++j) {
      const float p = static_cast<float>(std::exp(static_cast<double>(xr[j] - lse)));
      orow[j] = g * (p - (j == label ? 1.f : 0.f));
    }
  }
}

// ---------------------------------------------------------------- module

napi_value Init(napi_env env, napi_value exports) {
  at::set_num_threads(1);
  // libtorch allocates its multi-megabyte intermediates with malloc; by default glibc
  // serves those with fresh mmaps (page faults on every call). Keep them in the heap.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  struct Def { const char* name; napi_callback cb; };
  const Def defs[] = {
      {"setNumThreads", setNumThreads},
      {"getNumThreads", getNumThreads},
      {"conv2d", conv2d},
      {"conv2dBackpropInput", conv2dBackpropInput},
      {"conv2dBackpropFilter", conv2dBackpropFilter},
      {"convPlan", convPlan},
      {"matmul", matmul},
      {"maxPool", maxPool},
      {"maxPoolGrad", maxPoolGrad},
      {"avgPool", avgPool},
      {"binary", binary},
      {"unary", unary},
      {"addN", addN},
      {"reduce", reduce},
      {"softmax", softmax},
      {"batchNorm", batchNorm},
      {"batchNormGrad", batchNormGrad},
      {"batchNormTrain", batchNormTrain},
      {"batchNormTrainGrad", batchNormTrainGrad},
      {"sgdUpdate", sgdUpdate},
      {"adamUpdate", adamUpdate},
      {"sgdNesterovUpdate", sgdNesterovUpdate},
      {"sparseConv2d", sparseConv2d},
      {"sparseConv2dGradInput", sparseConv2dGradInput},
      {"sparseConv2dGradFilter", sparseConv2dGradFilter},
      {"convBiasActGradFilter", convBiasActGradFilter},
      {"convPoolGradFilter", convPoolGradFilter},
      {"maxPoolCode", maxPoolCode},
      {"convPoolSmall", convPoolSmall},
      {"maxPoolRoute", maxPoolRoute},
      {"sparseConvPool", sparseConvPool},
      {"sparseConvPoolGrads", sparseConvPoolGrads},
      {"sparseMatMul", sparseMatMul},
      {"sparseMatMulGradInput", sparseMatMulGradInput},
      {"sparseMatMulGradWeight", sparseMatMulGradWeight},
      {"biasAct", biasAct},
      {"biasActGrad", biasActGrad},
      {"countZeros", countZeros},
      {"gatherRows", gatherRows},
      {"softmaxCrossEntropy", softmaxCrossEntropy},
      {"softmaxCrossEntropyGrad", softmaxCrossEntropyGrad},
  };
  for (const Def& d : defs) {
    napi_value fn;
    napi_create_function(env, d.name, NAPI_AUTO_LENGTH, d.cb, nullptr, &fn);
    napi_set_named_property(env, exports, d.name, fn);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
