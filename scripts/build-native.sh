#!/usr/bin/env bash
# Builds the N-API addon behind the "native" tfjs backend:
#   native/build/Release/prunebench_native.node
# Needs g++/make/python3, Node's headers, libtorch (PyTorch C++) and oneDNN:
#   apt-get install -y libtorch-dev libdnnl-dev
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

missing=()
[ -f /usr/include/ATen/ATen.h ] || missing+=("libtorch headers (/usr/include/ATen/ATen.h)")
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || missing+=("oneDNN headers (/usr/include/oneapi/dnnl/dnnl.h)")
for lib in libtorch.so libtorch_cpu.so libc10.so libdnnl.so; do
  found=""
  for f in /usr/lib/*/"$lib" /usr/lib/"$lib" /usr/local/lib/"$lib"; do [ -e "$f" ] && found=1; done
  [ -n "$found" ] || missing+=("$lib")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-native: missing ${missing[*]}" >&2
  echo "build-native: install them with: apt-get install -y libtorch-dev libdnnl-dev" >&2
  exit 2
fi
for tool in g++ make python3; do
  command -v "$tool" >/dev/null || { echo "build-native: $tool not found (apt-get install -y g++ make python3)" >&2; exit 2; }
done

# node-gyp: npm's bundled copy (no download), else npx.
npm_root="$(dirname "$(readlink -f "$(command -v npm)")")/.."
gyp_js="$npm_root/node_modules/node-gyp/bin/node-gyp.js"
if [ -f "$gyp_js" ]; then gyp=(node "$gyp_js"); else gyp=(npx --yes node-gyp); fi

# Build against the headers of the running node when they are installed (no network).
node_prefix="$(node -p 'require("path").resolve(process.execPath, "../..")')"
nodedir=()
if [ -f "$node_prefix/include/node/node_api.h" ] && [ -f "$node_prefix/include/node/common.gypi" ]; then
  nodedir=(--nodedir="$node_prefix")
fi

echo "build-native: ${gyp[*]} rebuild ${nodedir[*]:-}" >&2
"${gyp[@]}" rebuild -C native "${nodedir[@]}" --loglevel=warn
out="native/build/Release/prunebench_native.node"
[ -f "$out" ] || { echo "build-native: $out was not produced" >&2; exit 1; }
node -e 'const m = require(process.argv[1]); if (typeof m.conv2d !== "function") process.exit(1)' "$root/$out" \
  || { echo "build-native: $out does not load" >&2; exit 1; }
echo "build-native: built $out" >&2
