#!/usr/bin/env bash
# Builds the libtorch tensor addon behind the "torch" tfjs backend (GPU design, issue #16):
#   native/build/Release/prunebench_torch.node   (or --out FILE)
# from native/src/torch_*.cc with one plain g++ command: no node-gyp, no network, so it also builds on a GPU machine
# that has PyTorch but no Node toolchain (give it Node's headers with NODE_INCLUDE).
#
#   scripts/build-torch.sh [--torch-dir DIR|auto] [--out FILE] [--if-available] [--print-flags]
#
# --torch-dir DIR (or env PRUNEBENCH_TORCH_DIR): a PyTorch install's `torch` package directory
#   (…/site-packages/torch, with include/ and lib/); `auto` asks `${PYTHON:-python3}` where its torch is.
#   Without it: Debian's libtorch-dev (apt-get install -y libtorch-dev), CPU only.
#   A lib/ holding libtorch_cuda.so gives a CUDA build (linked --no-as-needed so its kernels register).
# --if-available: what `npm ci` runs. Builds when the machine can, otherwise says in one line why and exits 0 (the
#   "torch" backend is then unavailable; the others are unaffected). Without it every problem is an error: exit 2 for
#   missing prerequisites, 1 for a failed build (`npm run build:torch`, CI).
# --print-flags: prints the compile command it would run and exits (no compiler needed; tests use it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

optional=""
print_flags=""
torch_dir="${PRUNEBENCH_TORCH_DIR:-}"
out="native/build/Release/prunebench_torch.node"
while [ $# -gt 0 ]; do
  case "$1" in
    --if-available) optional=1 ;;
    --print-flags) print_flags=1 ;;
    --torch-dir) torch_dir="${2:?--torch-dir needs a directory or auto}"; shift ;;
    --torch-dir=*) torch_dir="${1#*=}" ;;
    --out) out="${2:?--out needs a file}"; shift ;;
    --out=*) out="${1#*=}" ;;
    *) echo "build-torch: unknown option '$1' (valid: --torch-dir DIR|auto, --out FILE, --if-available, --print-flags)" >&2; exit 2 ;;
  esac
  shift
done

HOW="apt-get install -y libtorch-dev (or --torch-dir a PyTorch install), then npm run build:torch"
# One line, then exit: 0 when optional (only the torch backend is missing), else the given code.
give_up() {
  local code="$1"; shift
  if [ -n "$optional" ]; then
    echo "prunebench: torch backend not built ($*); the other backends are unaffected. To get it: $HOW" >&2
    exit 0
  fi
  echo "build-torch: $*" >&2
  exit "$code"
}

[ "${PRUNEBENCH_TORCH:-}" = "off" ] && give_up 2 "PRUNEBENCH_TORCH=off"

# ---- where libtorch is: include dirs, lib dir, its CMake config (for the ABI flag), rpath
python="${PYTHON:-python3}"
if [ "$torch_dir" = "auto" ]; then
  command -v "$python" >/dev/null || give_up 2 "--torch-dir auto: $python not found"
  torch_dir="$("$python" -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null)" \
    || give_up 2 "--torch-dir auto: $python cannot import torch"
fi
rpath=""
if [ -n "$torch_dir" ]; then
  [ -d "$torch_dir" ] || give_up 2 "--torch-dir $torch_dir is not a directory"
  torch_dir="$(cd "$torch_dir" && pwd)"
  header_root="$torch_dir/include"
  includes=("$torch_dir/include" "$torch_dir/include/torch/csrc/api/include")
  libdir="$torch_dir/lib"
  cmake_config="$torch_dir/share/cmake/Torch/TorchConfig.cmake"
  rpath="$libdir"
else
  header_root="/usr/include"
  includes=("/usr/include/torch/csrc/api/include")
  libdir=""
  for f in /usr/lib/*/libtorch.so /usr/lib/libtorch.so /usr/local/lib/libtorch.so; do
    [ -e "$f" ] && { libdir="$(dirname "$f")"; break; }
  done
  cmake_config="${libdir:-/nonexistent}/cmake/Torch/TorchConfig.cmake"
fi

missing=()
[ -f "$header_root/ATen/ATen.h" ] || missing+=("$header_root/ATen/ATen.h")
version_h="$header_root/torch/csrc/api/include/torch/version.h"
[ -f "$version_h" ] || missing+=("$version_h")
for lib in libtorch.so libtorch_cpu.so libc10.so; do
  [ -n "$libdir" ] && [ -e "$libdir/$lib" ] || missing+=("${libdir:-<lib dir>}/$lib")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ -z "$torch_dir" ]; then
    [ -n "$optional" ] && give_up 2 "libtorch-dev is not installed"
    give_up 2 "missing ${missing[*]}; install libtorch-dev (apt-get install -y libtorch-dev) or pass --torch-dir"
  fi
  give_up 2 "$torch_dir is not a PyTorch torch directory with headers and libraries: missing ${missing[*]}"
fi

# ---- flags derived from the install
# The C++ ABI must match libtorch's: its CMake config states it; else ask the Python that owns this torch.
abi=""
if [ -f "$cmake_config" ]; then
  abi="$(sed -n 's/.*_GLIBCXX_USE_CXX11_ABI=\([01]\).*/\1/p' "$cmake_config" | head -n 1)"
fi
if [ -z "$abi" ] && [ -n "$torch_dir" ]; then
  # The interpreter of the environment this torch lives in (…/lib/pythonX.Y/site-packages/torch -> …/bin/python3)
  # rather than whatever python3 is first on PATH.
  owner="$python"
  [ -z "${PYTHON:-}" ] && [ -x "$torch_dir/../../../../bin/python3" ] && owner="$torch_dir/../../../../bin/python3"
  if command -v "$owner" >/dev/null; then
    abi="$(cd "$(dirname "$torch_dir")" && "$owner" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null || true)"
  fi
fi
# Neither said: the compiler's default (the new ABI), which is what every PyTorch wheel since 2.7 uses.
# The version's defines: torch/version.h up to 2.x, which newer releases (2.11) reduce to an include of
# torch/headeronly/version.h.
major="" minor=""
for v in "$version_h" "$header_root/torch/headeronly/version.h"; do
  [ -f "$v" ] || continue
  major="$(sed -n 's/^#define TORCH_VERSION_MAJOR \([0-9]*\).*/\1/p' "$v")"
  minor="$(sed -n 's/^#define TORCH_VERSION_MINOR \([0-9]*\).*/\1/p' "$v")"
  [ -n "$major" ] && break
done
# C++17 builds against 1.13 (Debian) and 2.11 (PyTorch 2.11.0+cu130 on an H100 machine, 2026-11-27); later headers are
# written for C++20.
std="c++17"
if [ "${major:-0}" -gt 2 ] || { [ "${major:-0}" -eq 2 ] && [ "${minor:-0}" -ge 12 ]; }; then std="c++20"; fi
cuda=""
[ -e "$libdir/libtorch_cuda.so" ] && cuda=1

node_include="${NODE_INCLUDE:-}"
if [ -z "$node_include" ] && command -v node >/dev/null; then
  node_include="$(node -p 'require("path").resolve(process.execPath, "../../include/node")')"
fi

cxx="${CXX:-g++}"
cmd=("$cxx" "-std=$std" -O2 -fPIC -shared -fvisibility=hidden -fexceptions -frtti
  -Wno-deprecated-declarations -Wno-unused-parameter
  -DNAPI_EXPERIMENTAL -DNODE_GYP_MODULE_NAME=prunebench_torch)
[ -n "$abi" ] && cmd+=("-D_GLIBCXX_USE_CXX11_ABI=$abi")
[ -n "$cuda" ] && cmd+=(-DPRUNEBENCH_TORCH_CUDA=1)
cmd+=("-I${node_include:-<node include dir>}")
for inc in "${includes[@]}"; do cmd+=("-I$inc"); done
cmd+=(native/src/torch_*.cc -o "$out.tmp" "-L$libdir")
# --no-as-needed: libtorch_cuda registers its kernels and CUDA hooks from static initializers; the addon calls
# nothing in it directly, so a default (as-needed) link would drop it and every cuda tensor would fail.
cmd+=(-Wl,--no-as-needed -ltorch -ltorch_cpu -lc10)
[ -n "$cuda" ] && cmd+=(-ltorch_cuda -lc10_cuda)
cmd+=(-Wl,--as-needed)
[ -n "$rpath" ] && cmd+=("-Wl,-rpath,$rpath")

if [ -n "$print_flags" ]; then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi

command -v "$cxx" >/dev/null || give_up 2 "$cxx not found (apt-get install -y g++)"
[ -n "$node_include" ] && [ -f "$node_include/node_api.h" ] \
  || give_up 2 "Node's headers not found (${node_include:-no node on PATH}); set NODE_INCLUDE to a folder holding node_api.h"

mkdir -p "$(dirname "$out")"
log="$(dirname "$out")/build-torch.log"
echo "build-torch: building $out against libtorch ${major}.${minor}${cuda:+ with CUDA} (${torch_dir:-Debian libtorch-dev}; about a minute)" >&2
if ! "${cmd[@]}" >"$log" 2>&1; then
  [ -n "$optional" ] || tail -n 40 "$log" >&2
  rm -f "$out.tmp"
  give_up 1 "the build failed; its log is $log"
fi
mv -f "$out.tmp" "$out"
if command -v node >/dev/null; then
  node -e 'const m = require(process.argv[1]); if (typeof m.call !== "function") process.exit(1)' "$(cd "$(dirname "$out")" && pwd)/$(basename "$out")" \
    || give_up 1 "$out does not load (log: $log)"
fi
echo "build-torch: built $out" >&2
