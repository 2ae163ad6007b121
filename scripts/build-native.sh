#!/usr/bin/env bash
# Builds the N-API addon behind the "native" tfjs backend:
#   native/build/Release/prunebench_native.node
# Needs g++/make/python3, Node's headers, libtorch (PyTorch C++) and oneDNN:
#   apt-get install -y libtorch-dev libdnnl-dev
# Never touches the network: npm's bundled node-gyp (or one on PATH) against the running Node's installed headers.
#
# --if-available: what `npm ci` runs (package.json's "install" script). Builds when the machine can, and otherwise
# says in one line why and how to get the fast path, and exits 0 (prunebench then runs on wasm): a missing package,
# a CPU without AVX2/FMA, PRUNEBENCH_NATIVE=off, or a failed build (its log is kept). Without it every problem is an
# error (exit 2 for missing prerequisites, 1 for a failed build): `npm run build:native` and CI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

optional=""
[ "${1:-}" = "--if-available" ] && optional=1
HOW="apt-get install -y libtorch-dev libdnnl-dev, then npm run build:native"
# One line, then exit: 0 when optional (wasm is the fallback), else the given code.
give_up() {
  local code="$1"; shift
  if [ -n "$optional" ]; then
    echo "prunebench: native backend not built ($*); running on wasm, 5-10x slower. Fast path: $HOW" >&2
    exit 0
  fi
  echo "build-native: $*" >&2
  exit "$code"
}

[ "${PRUNEBENCH_NATIVE:-}" = "off" ] && give_up 2 "PRUNEBENCH_NATIVE=off"
# The kernels are written with AVX2/FMA intrinsics and built for x86-64-v3 (binding.gyp), not for the build machine.
[ "$(uname -m)" = "x86_64" ] || give_up 2 "this is $(uname -m); the native kernels need x86-64 with AVX2 and FMA"
if [ -r /proc/cpuinfo ]; then
  for flag in avx2 fma; do
    grep -qw "$flag" /proc/cpuinfo || give_up 2 "this CPU lacks $flag; the native kernels need AVX2 and FMA"
  done
fi

missing=()
[ -f /usr/include/ATen/ATen.h ] || missing+=("libtorch headers (/usr/include/ATen/ATen.h)")
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || missing+=("oneDNN headers (/usr/include/oneapi/dnnl/dnnl.h)")
for lib in libtorch.so libtorch_cpu.so libc10.so libdnnl.so; do
  found=""
  for f in /usr/lib/*/"$lib" /usr/lib/"$lib" /usr/local/lib/"$lib"; do [ -e "$f" ] && found=1; done
  [ -n "$found" ] || missing+=("$lib")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ -n "$optional" ] && give_up 2 "libtorch-dev and libdnnl-dev are not installed"
  give_up 2 "missing ${missing[*]}; install them with: apt-get install -y libtorch-dev libdnnl-dev"
fi
for tool in g++ make python3; do
  command -v "$tool" >/dev/null || give_up 2 "$tool not found (apt-get install -y g++ make python3)"
done

# node-gyp: npm's bundled copy, else one on PATH; never `npx --yes`, which would download it.
npm_root="$(dirname "$(readlink -f "$(command -v npm)")")/.."
gyp_js="$npm_root/node_modules/node-gyp/bin/node-gyp.js"
if [ -f "$gyp_js" ]; then gyp=(node "$gyp_js")
elif command -v node-gyp >/dev/null; then gyp=(node-gyp)
else give_up 2 "node-gyp not found (it ships with npm; apt-get install -y node-gyp)"; fi

# Build against the headers of the running node when they are installed (no network).
node_prefix="$(node -p 'require("path").resolve(process.execPath, "../..")')"
nodedir=()
if [ -f "$node_prefix/include/node/node_api.h" ] && [ -f "$node_prefix/include/node/common.gypi" ]; then
  nodedir=(--nodedir="$node_prefix")
elif [ -n "$optional" ]; then
  # Without installed headers node-gyp would download them: not during an install.
  give_up 2 "Node's headers are not installed under $node_prefix/include/node"
fi

log="native/build-native.log"
# node-gyp rebuild empties native/build: keep the torch addon (scripts/build-torch.sh) that lives beside ours.
torch_addon="native/build/Release/prunebench_torch.node"
kept=""
if [ -f "$torch_addon" ]; then kept="$(mktemp)"; cp -p "$torch_addon" "$kept"; fi
restore_torch() { if [ -n "$kept" ]; then mkdir -p "$(dirname "$torch_addon")"; mv -f "$kept" "$torch_addon"; kept=""; fi; }
trap restore_torch EXIT
echo "build-native: building the native backend (about a minute; ${gyp[*]} rebuild ${nodedir[*]:-})" >&2
if ! "${gyp[@]}" rebuild -C native "${nodedir[@]}" --loglevel=warn >"$log" 2>&1; then
  [ -n "$optional" ] || tail -n 40 "$log" >&2
  give_up 1 "the build failed; its log is $root/$log"
fi
out="native/build/Release/prunebench_native.node"
[ -f "$out" ] || give_up 1 "$out was not produced (log: $root/$log)"
node -e 'const m = require(process.argv[1]); if (typeof m.conv2d !== "function") process.exit(1)' "$root/$out" \
  || give_up 1 "$out does not load"
echo "build-native: built $out (the native backend is the default from now on)" >&2
