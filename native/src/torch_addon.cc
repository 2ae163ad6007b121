// prunebench_torch: libtorch tensors behind opaque JS handles, for the "torch" tfjs backend
// (src/backend/torch/). Interface: src/backend/torch/addon.ts (the GPU contract of issue #16).
//
// Kept to APIs present in both Debian's libtorch 1.13 and PyTorch 2.x wheels: everything CUDA goes through
// at::detail::getCUDAHooks() (registered by libtorch_cuda when it is linked), and device names come from the CUDA
// driver API loaded with dlopen, so neither CUDA headers nor a CUDA build are needed to compile this file.
//
// Plain N-API (node_api.h). Every handle is a JS object napi_wrap'd around a Handle that owns one at::Tensor; the
// JS side frees it with release(), the wrap's finalizer only catches handles JS forgot.

#include <node_api.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>

#include <dlfcn.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
#include <type_traits>
#include <utility>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// ------------------------------------------------------------------ errors

// A JS-facing failure: thrown inside a binding, turned into a JS Error at its boundary.
struct JsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define NAPI_OK(call)                                                       \
  do {                                                                      \
    if ((call) != napi_ok) throw JsError(std::string("N-API call failed: ") + #call); \
  } while (0)

// Runs a binding body; any C++ or libtorch exception becomes a thrown JS Error.
template <typename F>
napi_value guarded(napi_env env, F&& body) {
  try {
    return body();
  } catch (const c10::Error& e) {
    napi_throw_error(env, nullptr, e.what_without_backtrace());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
  }
  return nullptr;
}

// ------------------------------------------------------------------ handles

// The environment a GC-time finalizer gets: only "basic" N-API calls may be made with it. Node versions without
// basic finalizers hand a plain napi_env and run finalizers on a later turn of the event loop instead.
#ifdef NODE_API_EXPERIMENTAL_HAS_POST_FINALIZER
using BasicEnv = node_api_nogc_env;
#else
using BasicEnv = napi_env;
#endif

// Per-device bookkeeping of live handles: slot 0 is the CPU, slot 1 + i is cuda:i. Per thread, as handles are: a
// worker_thread has its own N-API environment, and finalizers run on the thread that made the handle.
struct Live {
  int64_t count = 0;
  int64_t bytes = 0;
};
thread_local std::vector<Live> g_live(1);

// What V8 is told a handle costs beyond its data (TensorImpl + StorageImpl + allocator headers), so that a program
// that drops millions of tiny handles without release() still triggers the GCs that run their finalizers.
constexpr int64_t kHandleOverhead = 512;

size_t deviceSlot(const c10::Device& d) {
  return d.is_cuda() ? 1 + static_cast<size_t>(std::max<int>(0, d.index())) : 0;
}

constexpr uint64_t kHandleMagic = 0x70627472636831ULL;  // "pbtrch1"

struct Handle {
  uint64_t magic = kHandleMagic;  // refuses objects some other addon wrapped (cheaper than a napi type tag)
  at::Tensor t;
  int64_t bytes = 0;     // counted in g_live at creation
  int64_t external = 0;  // reported to V8 through napi_adjust_external_memory
  size_t slot = 0;
  bool released = false;
};

// Frees the tensor now and undoes its accounting; the Handle itself lives on until its JS object is collected.
// Only "basic" N-API calls here: it also runs inside the garbage collector (below).
void freeTensor(BasicEnv env, Handle* h) {
  if (h->released) return;
  h->released = true;
  h->t = at::Tensor();
  Live& l = g_live[h->slot];
  l.count--;
  l.bytes -= h->bytes;
  int64_t ignored;
  if (h->external != 0) napi_adjust_external_memory(env, -h->external, &ignored);
}

// A basic (pure) finalizer: with NAPI_EXPERIMENTAL, Node runs it inside the GC that collected the handle rather than
// on a later turn of the event loop, so handles dropped without release() inside one long synchronous loop (a
// training step) are still freed by the GCs that loop triggers.
void finalizeHandle(BasicEnv env, void* data, void*) {
  auto* h = static_cast<Handle*>(data);
  freeTensor(env, h);
  h->magic = 0;
  delete h;
}

napi_value wrapTensor(napi_env env, at::Tensor t) {
  napi_value obj;
  NAPI_OK(napi_create_object(env, &obj));
  auto h = std::make_unique<Handle>();
  h->bytes = static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
  h->slot = deviceSlot(t.device());
  h->external = kHandleOverhead + (t.device().is_cpu() ? h->bytes : 0);
  h->t = std::move(t);
  NAPI_OK(napi_wrap(env, obj, h.get(), finalizeHandle, nullptr, nullptr));
  Handle* raw = h.release();
  if (g_live.size() <= raw->slot) g_live.resize(raw->slot + 1);
  g_live[raw->slot].count++;
  g_live[raw->slot].bytes += raw->bytes;
  int64_t ignored;
  napi_adjust_external_memory(env, raw->external, &ignored);
  return obj;
}

// The Handle behind a JS value, or null when the value is not one of our handles.
Handle* handleOf(napi_env env, napi_value v) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_object) return nullptr;
  void* data = nullptr;
  if (napi_unwrap(env, v, &data) != napi_ok || data == nullptr) return nullptr;
  auto* h = static_cast<Handle*>(data);
  return h->magic == kHandleMagic ? h : nullptr;
}

const at::Tensor& tensorOf(napi_env env, napi_value v, const char* what) {
  Handle* h = handleOf(env, v);
  if (!h) throw JsError(std::string(what) + ": expected a TorchTensor handle");
  if (h->released) throw JsError(std::string(what) + ": tensor already released");
  return h->t;
}

// ------------------------------------------------------------------ small N-API helpers

struct Args {
  napi_value argv[4];
  size_t argc = 4;
  Args(napi_env env, napi_callback_info info) { NAPI_OK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr)); }
  napi_value operator[](size_t i) const { return i < argc ? argv[i] : nullptr; }
};

napi_valuetype typeOf(napi_env env, napi_value v) {
  if (v == nullptr) return napi_undefined;
  napi_valuetype t;
  NAPI_OK(napi_typeof(env, v, &t));
  return t;
}

std::string str(napi_env env, napi_value v, const char* what) {
  if (typeOf(env, v) != napi_string) throw JsError(std::string(what) + ": expected a string");
  char buf[256];
  size_t len = 0;
  NAPI_OK(napi_get_value_string_utf8(env, v, buf, sizeof buf, &len));
  if (len < sizeof buf - 1) return std::string(buf, len);
  NAPI_OK(napi_get_value_string_utf8(env, v, nullptr, 0, &len));
  std::string s(len, '\0');
  NAPI_OK(napi_get_value_string_utf8(env, v, &s[0], len + 1, &len));
  return s;
}

napi_value num(napi_env env, double x) {
  napi_value v;
  NAPI_OK(napi_create_double(env, x, &v));
  return v;
}

napi_value jsStr(napi_env env, const std::string& s) {
  napi_value v;
  NAPI_OK(napi_create_string_utf8(env, s.data(), s.size(), &v));
  return v;
}

napi_value jsBool(napi_env env, bool b) {
  napi_value v;
  NAPI_OK(napi_get_boolean(env, b, &v));
  return v;
}

napi_value jsNull(napi_env env) {
  napi_value v;
  NAPI_OK(napi_get_null(env, &v));
  return v;
}

void setProp(napi_env env, napi_value obj, const char* key, napi_value v) {
  NAPI_OK(napi_set_named_property(env, obj, key, v));
}

napi_value getProp(napi_env env, napi_value obj, const char* key) {
  bool has = false;
  NAPI_OK(napi_has_named_property(env, obj, key, &has));
  if (!has) return nullptr;
  napi_value v;
  NAPI_OK(napi_get_named_property(env, obj, key, &v));
  return v;
}

std::vector<int64_t> intArray(napi_env env, napi_value v, const std::string& what) {
  bool isArray = false;
  NAPI_OK(napi_is_array(env, v, &isArray));
  if (!isArray) throw JsError(what + ": expected an array of integers");
  uint32_t n;
  NAPI_OK(napi_get_array_length(env, v, &n));
  std::vector<int64_t> out(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    NAPI_OK(napi_get_element(env, v, i, &e));
    double d;
    if (napi_get_value_double(env, e, &d) != napi_ok || std::floor(d) != d)
      throw JsError(what + ": element " + std::to_string(i) + " is not an integer");
    out[i] = static_cast<int64_t>(d);
  }
  return out;
}

// ------------------------------------------------------------------ dtypes and devices

bool parseScalarType(const std::string& s, at::ScalarType* out) {
  static const std::unordered_map<std::string, at::ScalarType> names = {
      {"float32", at::kFloat}, {"float", at::kFloat},     {"int32", at::kInt},     {"int", at::kInt},
      {"int64", at::kLong},    {"long", at::kLong},       {"bool", at::kBool},     {"float64", at::kDouble},
      {"double", at::kDouble}, {"float16", at::kHalf},    {"half", at::kHalf},     {"bfloat16", at::kBFloat16},
      {"uint8", at::kByte},    {"int8", at::kChar},       {"int16", at::kShort},
  };
  auto it = names.find(s);
  if (it == names.end()) return false;
  *out = it->second;
  return true;
}

// tfjs' names for the three dtypes it has; libtorch's other dtypes by their torch name ("int64", "float64", ...).
std::string dtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kInt: return "int32";
    case at::kBool: return "bool";
    case at::kLong: return "int64";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kByte: return "uint8";
    case at::kChar: return "int8";
    case at::kShort: return "int16";
    default: return c10::toString(t);
  }
}

c10::Device parseDevice(const std::string& s) {
  try {
    return c10::Device(s);
  } catch (const c10::Error&) {
    throw JsError("bad device '" + s + "' (expected \"cpu\" or \"cuda:N\")");
  }
}

bool cudaBuilt() {
  try {
    return at::detail::getCUDAHooks().hasCUDART();
  } catch (const c10::Error&) {
    return false;
  }
}

// How many CUDA devices this process can use (0 on a CPU build), asked once.
int cudaDevices() {
  static const int n = cudaBuilt() && at::detail::getCUDAHooks().hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0;
  return n;
}

// A device that data can be put on here, or a clear error (rather than libtorch's page about missing CUDA kernels).
c10::Device usableDevice(const std::string& s, const char* what) {
  c10::Device d = parseDevice(s);
  if (d.is_cpu()) return d;
  if (!d.is_cuda()) throw JsError(std::string(what) + ": device '" + s + "' is not supported (cpu or cuda:N)");
  int n = cudaDevices();
  if (n == 0)
    throw JsError(std::string(what) + ": device '" + s + "' is not available: " +
                  (cudaBuilt() ? "no CUDA GPU is visible to this process" : "this libtorch is a CPU-only build (build the addon against a CUDA PyTorch: scripts/build-torch.sh --torch-dir)"));
  if (d.has_index() && d.index() >= n)
    throw JsError(std::string(what) + ": device '" + s + "' is not available: this process sees " + std::to_string(n) + " CUDA device(s)");
  return d;
}

// ------------------------------------------------------------------ upload / download / handle facts

napi_value Upload(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info);
    bool isTyped = false;
    NAPI_OK(napi_is_typedarray(env, a[0], &isTyped));
    if (!isTyped) throw JsError("upload: values must be a Float32Array, Int32Array or Uint8Array");
    napi_typedarray_type ttype;
    size_t length;
    void* data;
    napi_value ab;
    size_t offset;
    NAPI_OK(napi_get_typedarray_info(env, a[0], &ttype, &length, &data, &ab, &offset));
    std::vector<int64_t> shape = intArray(env, a[1], "upload: shape");
    std::string dtype = str(env, a[2], "upload: dtype");
    std::string device = str(env, a[3], "upload: device");
    at::ScalarType st;
    napi_typedarray_type want;
    if (dtype == "float32") st = at::kFloat, want = napi_float32_array;
    else if (dtype == "int32") st = at::kInt, want = napi_int32_array;
    else if (dtype == "bool") st = at::kBool, want = napi_uint8_array;
    else throw JsError("upload: dtype '" + dtype + "' is not one of float32, int32, bool");
    if (ttype != want && !(want == napi_uint8_array && ttype == napi_uint8_clamped_array))
      throw JsError("upload: dtype " + dtype + " takes a " +
                    (want == napi_float32_array ? "Float32Array" : want == napi_int32_array ? "Int32Array" : "Uint8Array"));
    int64_t n = 1;
    for (int64_t d : shape) {
      if (d < 0) throw JsError("upload: negative dimension in shape");
      n *= d;
    }
    if (n != static_cast<int64_t>(length))
      throw JsError("upload: shape holds " + std::to_string(n) + " elements but values has " + std::to_string(length));
    c10::Device dev = usableDevice(device, "upload");
    c10::InferenceMode inference;
    // For a GPU the values go through page-locked memory and the copy is queued (non_blocking): a copy from pageable
    // memory makes libtorch wait for the stream to drain, so every upload (a batch's indices, a step's learning rate)
    // would stop the host from running ahead of the GPU. The pinned block is freed with `cpu` but not reused before
    // the copy is done (libtorch's host allocator records the copy's event on it).
    at::Tensor cpu = at::empty(shape, at::TensorOptions().dtype(st).pinned_memory(dev.is_cuda()));
    if (n > 0) std::memcpy(cpu.data_ptr(), data, static_cast<size_t>(n) * cpu.element_size());
    if (st == at::kBool && n > 0) {
      // A bool tensor must hold 0/1 bytes; JS may hand any byte value.
      auto* p = static_cast<uint8_t*>(cpu.data_ptr());
      for (int64_t i = 0; i < n; i++) p[i] = p[i] != 0;
    }
    return wrapTensor(env, dev.is_cpu() ? cpu : cpu.to(dev, st, /*non_blocking=*/true, /*copy=*/false));
  });
}

napi_value Download(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info);
    const at::Tensor& t = tensorOf(env, a[0], "download");
    c10::InferenceMode inference;
    // tfjs knows float32/int32/bool: other floating dtypes come back as float32, other integers as int32.
    at::ScalarType out = t.scalar_type() == at::kBool ? at::kBool
                         : at::isFloatingType(t.scalar_type()) ? at::kFloat
                                                               : at::kInt;
    at::Tensor h = t.to(at::kCPU, out).contiguous();
    size_t n = static_cast<size_t>(h.numel());
    size_t bytes = n * h.element_size();
    napi_value ab, arr;
    void* dst = nullptr;
    NAPI_OK(napi_create_arraybuffer(env, bytes, &dst, &ab));
    if (bytes > 0) std::memcpy(dst, h.data_ptr(), bytes);
    napi_typedarray_type type = out == at::kFloat ? napi_float32_array : out == at::kInt ? napi_int32_array : napi_uint8_array;
    NAPI_OK(napi_create_typedarray(env, type, n, ab, 0, &arr));
    return arr;
  });
}

napi_value Shape(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info);
    const at::Tensor& t = tensorOf(env, a[0], "shape");
    napi_value arr;
    NAPI_OK(napi_create_array_with_length(env, t.dim(), &arr));
    for (int64_t i = 0; i < t.dim(); i++) NAPI_OK(napi_set_element(env, arr, i, num(env, t.size(i))));
    return arr;
  });
}

napi_value Dtype(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info);
    return jsStr(env, dtypeName(tensorOf(env, a[0], "dtype").scalar_type()));
  });
}

napi_value DeviceOf(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info);
    return jsStr(env, tensorOf(env, a[0], "device").device().str());
  });
}

napi_value Release(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info);
    auto one = [&](napi_value v) {
      Handle* h = handleOf(env, v);
      if (!h) throw JsError("release: expected a TorchTensor handle or an array of them");
      if (h->released) throw JsError("release: tensor already released");
      freeTensor(env, h);
    };
    bool isArray = false;
    NAPI_OK(napi_is_array(env, a[0], &isArray));
    if (!isArray) {
      one(a[0]);
      return nullptr;
    }
    // A kernel's intermediates in one call (a ResNet-20 step releases ~1,200 tensors).
    uint32_t n = 0;
    NAPI_OK(napi_get_array_length(env, a[0], &n));
    for (uint32_t i = 0; i < n; i++) {
      napi_value v;
      NAPI_OK(napi_get_element(env, a[0], i, &v));
      one(v);
    }
    return nullptr;
  });
}

napi_value LiveTensors(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info);
    int64_t count = 0, bytes = 0;
    if (typeOf(env, a[0]) == napi_string) {
      size_t slot = deviceSlot(parseDevice(str(env, a[0], "liveTensors: device")));
      if (slot < g_live.size()) count = g_live[slot].count, bytes = g_live[slot].bytes;
    } else {
      for (const Live& l : g_live) count += l.count, bytes += l.bytes;
    }
    napi_value o;
    NAPI_OK(napi_create_object(env, &o));
    setProp(env, o, "count", num(env, static_cast<double>(count)));
    setProp(env, o, "bytes", num(env, static_cast<double>(bytes)));
    return o;
  });
}

// ------------------------------------------------------------------ call: boxed operator calls

struct OpEntry {
  c10::OperatorHandle op;
  const c10::FunctionSchema* schema;
  std::string name;  // "aten::add.Tensor", for messages
};

thread_local std::unordered_map<std::string, std::unique_ptr<OpEntry>> g_ops;

std::string schemaText(const OpEntry& e) {
  std::ostringstream s;
  s << *e.schema;
  return s.str();
}

OpEntry& findOp(const std::string& full) {
  auto it = g_ops.find(full);
  if (it != g_ops.end()) return *it->second;
  size_t dot = full.find('.', full.rfind(':') == std::string::npos ? 0 : full.rfind(':'));
  std::string name = dot == std::string::npos ? full : full.substr(0, dot);
  std::string overload = dot == std::string::npos ? "" : full.substr(dot + 1);
  auto found = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!found.has_value()) {
    std::string hint;
    if (name.find("::") == std::string::npos) hint = " (names carry a namespace, e.g. \"aten::" + name + "\")";
    throw JsError("call: unknown operator '" + full + "'" + hint);
  }
  auto e = std::make_unique<OpEntry>(OpEntry{*found, nullptr, full});
  e->schema = &e->op.schema();
  OpEntry& ref = *e;
  g_ops.emplace(full, std::move(e));
  return ref;
}

// libtorch's optional: c10's own class in 1.13, std::optional in 2.x; named through the API so both compile.
using OptTensor = decltype(std::declval<c10::IValue>().toOptional<at::Tensor>());
using ArgN = std::decay_t<decltype(std::declval<const c10::Argument&>().N())>;

// Thrown while converting one argument; call() adds the op, the argument and the schema.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An argument passed as undefined: call() treats it as not given (the schema's default, if it has one).
struct NotGiven {};

double numberOf(napi_env env, napi_value v, napi_valuetype t) {
  if (t != napi_number) throw ArgError("expected a number");
  double d;
  NAPI_OK(napi_get_value_double(env, v, &d));
  return d;
}

int64_t intOf(napi_env env, napi_value v, napi_valuetype t) {
  double d = numberOf(env, v, t);
  if (std::floor(d) != d || !std::isfinite(d)) {
    std::ostringstream m;
    m << "expected an integer, got " << d;
    throw ArgError(m.str());
  }
  return static_cast<int64_t>(d);
}

c10::IValue convertArg(napi_env env, napi_value v, const c10::TypePtr& type, const c10::TypePtr& real,
                       ArgN N);

c10::IValue convertList(napi_env env, napi_value v, napi_valuetype t, const c10::TypePtr& elem,
                        ArgN N) {
  c10::TypeKind k = elem->kind();
  bool intLike = k == c10::TypeKind::IntType || k == c10::TypeKind::SymIntType;
  // As in PyTorch's Python API, one integer stands for a fixed-size int list of copies of it ("int[2] stride=1").
  if (t == napi_number && (intLike || k == c10::TypeKind::FloatType)) {
    size_t n = N.has_value() ? static_cast<size_t>(*N) : 1;
    if (intLike) return c10::IValue(std::vector<int64_t>(n, intOf(env, v, t)));
    return c10::IValue(std::vector<double>(n, numberOf(env, v, t)));
  }
  bool isArray = false;
  NAPI_OK(napi_is_array(env, v, &isArray));
  if (!isArray) throw ArgError("expected an array");
  uint32_t n;
  NAPI_OK(napi_get_array_length(env, v, &n));
  std::vector<napi_value> items(n);
  std::vector<napi_valuetype> types(n);
  for (uint32_t i = 0; i < n; i++) {
    NAPI_OK(napi_get_element(env, v, i, &items[i]));
    types[i] = typeOf(env, items[i]);
  }
  // Converts element i, naming it in any error.
  auto each = [&](auto&& convert) {
    for (uint32_t i = 0; i < n; i++) {
      try {
        convert(i);
      } catch (const ArgError& e) {
        throw ArgError("element " + std::to_string(i) + ": " + e.what());
      }
    }
  };
  auto handle = [&](uint32_t i) -> const at::Tensor& {
    Handle* h = handleOf(env, items[i]);
    if (!h) throw ArgError("expected a TorchTensor handle");
    if (h->released) throw ArgError("tensor already released");
    return h->t;
  };
  if (intLike) {
    std::vector<int64_t> out(n);
    each([&](uint32_t i) { out[i] = intOf(env, items[i], types[i]); });
    return c10::IValue(out);
  }
  if (k == c10::TypeKind::FloatType) {
    std::vector<double> out(n);
    each([&](uint32_t i) { out[i] = numberOf(env, items[i], types[i]); });
    return c10::IValue(out);
  }
  if (k == c10::TypeKind::BoolType) {
    c10::List<bool> out;
    each([&](uint32_t i) {
      if (types[i] != napi_boolean) throw ArgError("expected a boolean");
      bool b;
      NAPI_OK(napi_get_value_bool(env, items[i], &b));
      out.push_back(b);
    });
    return c10::IValue(out);
  }
  if (k == c10::TypeKind::TensorType) {
    c10::List<at::Tensor> out;
    out.reserve(n);
    each([&](uint32_t i) { out.push_back(handle(i)); });
    return c10::IValue(out);
  }
  if (k == c10::TypeKind::OptionalType &&
      elem->castRaw<c10::OptionalType>()->getElementType()->kind() == c10::TypeKind::TensorType) {
    c10::List<OptTensor> out;
    out.reserve(n);
    each([&](uint32_t i) {
      if (types[i] == napi_null || types[i] == napi_undefined) out.push_back(OptTensor());
      else out.push_back(handle(i));
    });
    return c10::IValue(out);
  }
  throw ArgError("lists of " + elem->str() + " are not supported by prunebench_torch");
}

c10::IValue convertArg(napi_env env, napi_value v, const c10::TypePtr& type, const c10::TypePtr& real,
                       ArgN N) {
  napi_valuetype t = typeOf(env, v);
  c10::TypeKind k = type->kind();
  if (t == napi_undefined && k != c10::TypeKind::OptionalType) throw NotGiven();
  if (k == c10::TypeKind::OptionalType) {
    if (t == napi_null || t == napi_undefined) return c10::IValue();
    const c10::TypePtr& elem = type->castRaw<c10::OptionalType>()->getElementType();
    const c10::TypePtr& realElem =
        real->kind() == c10::TypeKind::OptionalType ? real->castRaw<c10::OptionalType>()->getElementType() : elem;
    return convertArg(env, v, elem, realElem, N);
  }
  // Enums carried as integers in the schema (ScalarType, Layout, MemoryFormat) are given by name.
  switch (real->kind()) {
    case c10::TypeKind::ScalarTypeType: {
      if (t != napi_string) throw ArgError("expected a dtype name such as \"float32\", \"int32\", \"int64\", \"bool\"");
      std::string s = str(env, v, "dtype");
      at::ScalarType st;
      if (!parseScalarType(s, &st))
        throw ArgError("unknown dtype '" + s + "' (float32, int32, int64, bool, float64, float16, bfloat16, uint8, int8, int16)");
      return c10::IValue(static_cast<int64_t>(st));
    }
    case c10::TypeKind::MemoryFormatType: {
      if (t != napi_string) throw ArgError("expected \"contiguous\", \"channels_last\" or \"preserve\"");
      std::string s = str(env, v, "memory_format");
      if (s == "contiguous") return c10::IValue(static_cast<int64_t>(at::MemoryFormat::Contiguous));
      if (s == "channels_last") return c10::IValue(static_cast<int64_t>(at::MemoryFormat::ChannelsLast));
      if (s == "preserve") return c10::IValue(static_cast<int64_t>(at::MemoryFormat::Preserve));
      throw ArgError("unknown memory format '" + s + "'");
    }
    case c10::TypeKind::LayoutType: {
      if (t != napi_string || str(env, v, "layout") != "strided") throw ArgError("expected \"strided\"");
      return c10::IValue(static_cast<int64_t>(at::kStrided));
    }
    default: break;
  }
  switch (k) {
    case c10::TypeKind::TensorType: {
      Handle* h = handleOf(env, v);
      if (!h) throw ArgError("expected a TorchTensor handle");
      if (h->released) throw ArgError("tensor already released");
      return c10::IValue(h->t);
    }
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
      return c10::IValue(intOf(env, v, t));
    case c10::TypeKind::FloatType:
      return c10::IValue(numberOf(env, v, t));
    case c10::TypeKind::BoolType: {
      if (t != napi_boolean) throw ArgError("expected a boolean");
      bool b;
      NAPI_OK(napi_get_value_bool(env, v, &b));
      return c10::IValue(b);
    }
    case c10::TypeKind::NumberType: {
      // A Scalar: integral JS numbers become integer Scalars (so int tensors stay int, as in PyTorch with a
      // Python int), others double Scalars; booleans bool Scalars.
      if (t == napi_boolean) {
        bool b;
        NAPI_OK(napi_get_value_bool(env, v, &b));
        return c10::IValue(b);
      }
      double d = numberOf(env, v, t);
      if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9007199254740992.0)
        return c10::IValue(static_cast<int64_t>(d));
      return c10::IValue(d);
    }
    case c10::TypeKind::StringType:
      if (t != napi_string) throw ArgError("expected a string");
      return c10::IValue(str(env, v, "string"));
    case c10::TypeKind::DeviceObjType:
      if (t != napi_string) throw ArgError("expected a device string such as \"cpu\" or \"cuda:0\"");
      return c10::IValue(parseDevice(str(env, v, "device")));
    case c10::TypeKind::ListType:
      return convertList(env, v, t, type->castRaw<c10::ListType>()->getElementType(), N);
    default:
      throw ArgError("arguments of type " + type->str() + " are not supported by prunebench_torch");
  }
}

napi_value fromIValue(napi_env env, const c10::IValue& v);

napi_value arrayOf(napi_env env, size_t n, const std::function<napi_value(size_t)>& item) {
  napi_value arr;
  NAPI_OK(napi_create_array_with_length(env, n, &arr));
  for (size_t i = 0; i < n; i++) NAPI_OK(napi_set_element(env, arr, static_cast<uint32_t>(i), item(i)));
  return arr;
}

napi_value fromIValue(napi_env env, const c10::IValue& v) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    return t.defined() ? wrapTensor(env, t) : jsNull(env);
  }
  if (v.isNone()) return jsNull(env);
  if (v.isInt()) return num(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return num(env, v.toDouble());
  if (v.isBool()) return jsBool(env, v.toBool());
  if (v.isString()) return jsStr(env, v.toStringRef());
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    return arrayOf(env, list.size(), [&](size_t i) {
      at::Tensor t = list.get(i);
      return t.defined() ? wrapTensor(env, t) : jsNull(env);
    });
  }
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    return arrayOf(env, elems.size(), [&](size_t i) { return fromIValue(env, elems[i]); });
  }
  if (v.isList()) {
    auto list = v.toListRef();
    return arrayOf(env, list.size(), [&](size_t i) { return fromIValue(env, list[i]); });
  }
  throw JsError(std::string("call: cannot return a value of type ") + v.tagKind());
}

napi_value Call(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info);
    // No autograd here (tfjs does its own): inference mode skips libtorch's autograd and version-counter work.
    c10::InferenceMode inference;
    OpEntry& e = findOp(str(env, a[0], "call: op"));
    const auto& params = e.schema->arguments();
    auto fail = [&](const std::string& arg, const std::string& msg) -> JsError {
      return JsError("call " + e.name + ": argument '" + arg + "': " + msg + " (schema: " + schemaText(e) + ")");
    };

    uint32_t npos = 0;
    napi_valuetype argsType = typeOf(env, a[1]);
    if (argsType != napi_undefined && argsType != napi_null) {
      bool isArray = false;
      NAPI_OK(napi_is_array(env, a[1], &isArray));
      if (!isArray) throw JsError("call " + e.name + ": args must be an array");
      NAPI_OK(napi_get_array_length(env, a[1], &npos));
    }
    size_t maxPos = 0;
    while (maxPos < params.size() && !params[maxPos].kwarg_only()) maxPos++;
    if (npos > maxPos)
      throw JsError("call " + e.name + ": " + std::to_string(npos) + " positional arguments given, at most " +
                    std::to_string(maxPos) + " taken (schema: " + schemaText(e) + ")");

    // Named arguments, matched to the schema once; an unknown name is an error rather than silently ignored.
    // Arguments by schema position; a fixed array because this runs on every call.
    constexpr size_t kMaxArgs = 64;
    if (params.size() > kMaxArgs) throw JsError("call " + e.name + ": more than 64 arguments in its schema");
    napi_value given[kMaxArgs] = {nullptr};
    for (uint32_t i = 0; i < npos; i++) NAPI_OK(napi_get_element(env, a[1], i, &given[i]));
    napi_valuetype namedType = typeOf(env, a[2]);
    if (namedType == napi_object) {
      napi_value keys;
      NAPI_OK(napi_get_property_names(env, a[2], &keys));
      uint32_t nk;
      NAPI_OK(napi_get_array_length(env, keys, &nk));
      for (uint32_t i = 0; i < nk; i++) {
        napi_value key;
        NAPI_OK(napi_get_element(env, keys, i, &key));
        std::string k = str(env, key, "call: named argument");
        size_t j = 0;
        while (j < params.size() && params[j].name() != k) j++;
        if (j == params.size()) throw fail(k, "no such argument");
        if (given[j] != nullptr) throw fail(k, "given both by position and by name");
        NAPI_OK(napi_get_property(env, a[2], key, &given[j]));
      }
    } else if (namedType != napi_undefined && namedType != napi_null) {
      throw JsError("call " + e.name + ": named arguments must be an object");
    }

    torch::jit::Stack stack;
    stack.reserve(std::max(params.size(), e.schema->returns().size()));
    for (size_t i = 0; i < params.size(); i++) {
      const c10::Argument& p = params[i];
      if (given[i] != nullptr) {
        try {
          stack.push_back(convertArg(env, given[i], p.type(), p.real_type(), p.N()));
          continue;
        } catch (const ArgError& err) {
          throw fail(p.name(), std::string(err.what()) + ", for type " + p.type()->str());
        } catch (const NotGiven&) {
          // falls through to the default
        }
      }
      if (!p.default_value().has_value()) throw fail(p.name(), "missing (it has no default)");
      stack.push_back(*p.default_value());
    }

    try {
      e.op.callBoxed(&stack);
    } catch (const c10::Error& err) {
      throw JsError("call " + e.name + ": " + err.what_without_backtrace());
    }
    if (stack.empty()) return nullptr;
    if (stack.size() == 1) return fromIValue(env, stack[0]);
    return arrayOf(env, stack.size(), [&](size_t i) { return fromIValue(env, stack[i]); });
  });
}

// ------------------------------------------------------------------ CUDA facts, configuration

// Device names and memory from the CUDA driver API, opened at run time: the libtorch hooks give counts and versions
// but no names, and CUDA's own headers are not part of a PyTorch wheel.
struct Driver {
  using Init = int (*)(unsigned);
  using Get = int (*)(int*, int);
  using Name = int (*)(char*, int, int);
  using TotalMem = int (*)(size_t*, int);
  using Attr = int (*)(int*, int, int);
  Init init = nullptr;
  Get get = nullptr;
  Name name = nullptr;
  TotalMem totalMem = nullptr;
  Attr attr = nullptr;
  bool ok = false;
  Driver() {
    void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!lib) return;
    init = reinterpret_cast<Init>(dlsym(lib, "cuInit"));
    get = reinterpret_cast<Get>(dlsym(lib, "cuDeviceGet"));
    name = reinterpret_cast<Name>(dlsym(lib, "cuDeviceGetName"));
    totalMem = reinterpret_cast<TotalMem>(dlsym(lib, "cuDeviceTotalMem_v2"));
    attr = reinterpret_cast<Attr>(dlsym(lib, "cuDeviceGetAttribute"));
    ok = init && get && name && totalMem && attr && init(0) == 0;
  }
};

napi_value Info(napi_env env, napi_callback_info) {
  return guarded(env, [&]() -> napi_value {
    napi_value o;
    NAPI_OK(napi_create_object(env, &o));
    setProp(env, o, "torchVersion", jsStr(env, TORCH_VERSION));
    const auto& hooks = at::detail::getCUDAHooks();
    bool built = cudaBuilt();
    napi_value cudaVersion = jsNull(env), cudnnVersion = jsNull(env);
    if (built) {
      long v = hooks.versionCUDART();  // e.g. 13000 for 13.0
      cudaVersion = jsStr(env, std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10));
      if (hooks.compiledWithCuDNN()) cudnnVersion = num(env, static_cast<double>(hooks.versionCuDNN()));
    }
    setProp(env, o, "cudaVersion", cudaVersion);
    setProp(env, o, "cudnnVersion", cudnnVersion);
    bool available = built && hooks.hasCUDA();
    setProp(env, o, "cudaAvailable", jsBool(env, available));
    int n = available ? hooks.getNumGPUs() : 0;
    static Driver driver;
    napi_value devices;
    NAPI_OK(napi_create_array_with_length(env, n, &devices));
    for (int i = 0; i < n; i++) {
      napi_value d;
      NAPI_OK(napi_create_object(env, &d));
      setProp(env, d, "index", num(env, i));
      std::string name = "cuda:" + std::to_string(i);
      double total = 0;
      int dev = 0;
      if (driver.ok && driver.get(&dev, i) == 0) {
        char buf[256] = {0};
        if (driver.name(buf, sizeof buf - 1, dev) == 0) name = buf;
        size_t bytes = 0;
        if (driver.totalMem(&bytes, dev) == 0) total = static_cast<double>(bytes);
        int major = 0, minor = 0;
        // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR
        if (driver.attr(&major, 75, dev) == 0 && driver.attr(&minor, 76, dev) == 0)
          setProp(env, d, "capability", jsStr(env, std::to_string(major) + "." + std::to_string(minor)));
      }
      setProp(env, d, "name", jsStr(env, name));
      setProp(env, d, "totalMemoryBytes", num(env, total));
      NAPI_OK(napi_set_element(env, devices, i, d));
    }
    setProp(env, o, "devices", devices);
    return o;
  });
}

napi_value Configure(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info);
    napi_valuetype t = typeOf(env, a[0]);
    if (t != napi_object && t != napi_undefined) throw JsError("configure: expected an options object");
    auto flag = [&](const char* key, bool* out) {
      napi_value v = t == napi_object ? getProp(env, a[0], key) : nullptr;
      napi_valuetype vt = typeOf(env, v);
      if (vt == napi_undefined) return false;
      if (vt != napi_boolean) throw JsError(std::string("configure: ") + key + " must be a boolean");
      NAPI_OK(napi_get_value_bool(env, v, out));
      return true;
    };
    auto& ctx = at::globalContext();
    bool deterministic = false;
    if (flag("deterministic", &deterministic)) {
      if (deterministic) {
        // cuBLAS reads this when its first handle is created: it must be set before any CUDA work.
        setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);
        ctx.setDeterministicCuDNN(true);
        ctx.setBenchmarkCuDNN(false);
        // warn_only: an op without a deterministic kernel warns instead of failing the run.
        ctx.setDeterministicAlgorithms(true, true);
      } else {
        ctx.setDeterministicCuDNN(false);
        ctx.setDeterministicAlgorithms(false, false);
      }
    }
    bool tf32 = false;
    flag("allowTF32", &tf32);
    // The legacy setters exist from 1.13 to 2.x (newer versions map them onto their fp32-precision settings).
    ctx.setAllowTF32CuBLAS(tf32);
    ctx.setAllowTF32CuDNN(tf32);
    napi_value threads = t == napi_object ? getProp(env, a[0], "threads") : nullptr;
    napi_valuetype tt = typeOf(env, threads);
    if (tt != napi_undefined) {
      if (tt != napi_number) throw JsError("configure: threads must be a positive integer");
      double n;
      NAPI_OK(napi_get_value_double(env, threads, &n));
      if (n < 1 || std::floor(n) != n) throw JsError("configure: threads must be a positive integer");
      at::set_num_threads(static_cast<int>(n));
    }
    return nullptr;
  });
}

napi_value Synchronize(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info);
    c10::Device d = usableDevice(str(env, a[0], "synchronize: device"), "synchronize");
    if (d.is_cuda()) at::detail::getCUDAHooks().deviceSynchronize(d.has_index() ? d.index() : 0);
    return nullptr;
  });
}

napi_value Init(napi_env env, napi_value exports) {
#ifdef PRUNEBENCH_TORCH_CUDA
  // Built against a libtorch with libtorch_cuda: if its hooks did not register, every cuda tensor would fail later
  // with a page of text; refuse to load now with the cause instead.
  if (!cudaBuilt()) {
    napi_throw_error(env, nullptr,
                     "prunebench_torch was built against a CUDA libtorch but libtorch_cuda did not register (it must be "
                     "linked with -Wl,--no-as-needed; rebuild with scripts/build-torch.sh)");
    return nullptr;
  }
#endif
  napi_property_descriptor props[] = {
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"configure", nullptr, Configure, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"upload", nullptr, Upload, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"download", nullptr, Download, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"call", nullptr, Call, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"shape", nullptr, Shape, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"dtype", nullptr, Dtype, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"device", nullptr, DeviceOf, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"release", nullptr, Release, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"synchronize", nullptr, Synchronize, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"liveTensors", nullptr, LiveTensors, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
