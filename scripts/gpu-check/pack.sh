#!/usr/bin/env bash
# Packs what the GPU check (scripts/gpu-check/run.sh) needs on a GPU machine that has PyTorch but no Node and no
# network, into gpu-bundle/ (git-ignored; name it in the device call's `carry`):
#   gpu-bundle/node.xz        this machine's node binary, xz -9 (99 MB -> about 24 MB; zstd -19 gave 27 MB)
#   gpu-bundle/app.tar.xz     dist/ (tsc output, no source maps), the node_modules the CLI and the check load at run
#                             time (found by tracing the packed CLI's file opens; pruned to the files Node loads),
#                             and node/include/node (the N-API headers scripts/build-torch.sh compiles against)
#   gpu-bundle/manifest.json  node version, the commit and a hash of the sources dist/ was compiled from (run.sh warns
#                             when the tree it runs in differs), sizes
# The repository's own files (bin/, benchmarks/, datasets/data, native/src, scripts/) travel as the working tree and
# are not packed. The node binary and better_sqlite3.node need only glibc (>= 2.34), libstdc++, libgcc_s and libm,
# which a CUDA image has (printed below from ldd/objdump); better-sqlite3's prebuilt .node matches this node's ABI,
# and the same node binary travels with it.
#
#   scripts/gpu-check/pack.sh [--out DIR] [--no-tsc]
#
# --no-tsc: pack dist/ as it is (default: compile first, so dist/ matches the sources). The node binary is
# compressed again only when it changed (about a minute on 2 busy cores).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="gpu-bundle"
tsc=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift ;;
    --no-tsc) tsc="" ;;
    *) echo "pack: unknown option '$1' (valid: --out DIR, --no-tsc)" >&2; exit 2 ;;
  esac
  shift
done

node_bin="$(node -p 'process.execPath')"
node_include="${NODE_INCLUDE:-$(node -p 'require("path").resolve(process.execPath, "../../include/node")')}"
[ -f "$node_include/node_api.h" ] || { echo "pack: Node's headers not found in $node_include (set NODE_INCLUDE)" >&2; exit 2; }
[ -d node_modules/@tensorflow/tfjs-core ] || { echo "pack: node_modules is not installed (npm ci)" >&2; exit 2; }

if [ -n "$tsc" ]; then
  echo "pack: compiling (tsc)" >&2
  npx tsc -p tsconfig.json
fi
[ -f dist/src/cli/main.js ] || { echo "pack: dist/ is not built (run without --no-tsc)" >&2; exit 2; }

mkdir -p "$out"
# ---- the node binary, compressed once per binary
node_sha="$(sha256sum "$node_bin" | cut -d' ' -f1)"
if [ -f "$out/node.xz" ] && [ "$(cat "$out/node.sha256" 2>/dev/null)" = "$node_sha" ]; then
  echo "pack: $out/node.xz is up to date" >&2
else
  echo "pack: compressing $node_bin ($(node --version)) with xz -9 (about a minute)" >&2
  xz -9 -T1 -c "$node_bin" >"$out/node.xz.tmp"
  mv "$out/node.xz.tmp" "$out/node.xz"
  echo "$node_sha" >"$out/node.sha256"
fi

# ---- node_modules: the packages the CLI, the torch backend, the check scripts and the op suite load at run time.
# Found by tracing the file opens of `bench sweep`, `bench report`, `bench doctor` and compare-train (strace -e
# openat) from an unpacked copy; bullmq (queues), playwright, typescript and the report's dev tools stay behind.
# (debug is ioredis's own nested copy, packed with it.) fast-check: property-based op tests may use it. A package missing here makes run.sh --device cpu fail, here.
packages=(
  @tensorflow/tfjs-core @tensorflow/tfjs-backend-cpu @tensorflow/tfjs-backend-wasm @tensorflow/tfjs-layers
  seedrandom better-sqlite3 bindings file-uri-to-path commander p-limit yocto-queue yaml csv-stringify
  proper-lockfile retry graceful-fs signal-exit tar-stream streamx text-decoder fast-fifo events-universal b4a
  ioredis @ioredis/commands standard-as-callback redis-errors ms supports-color has-flag
  cluster-key-slot denque vega vega-lite vega-embed fast-check pure-rand
)
stage="$(mktemp -d "${TMPDIR:-/tmp}/pb-pack.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/node_modules" "$stage/node/include/node"
for p in "${packages[@]}"; do
  src="node_modules/$p"
  [ -d "$src" ] || { echo "pack: warning: $src is not installed; skipped" >&2; continue; }
  dst="$stage/node_modules/$p"
  mkdir -p "$dst"
  case "$p" in
    @tensorflow/*)
      # Node loads the package's CommonJS bundle (main: dist/*.node.js) and the wasm binaries beside it; the ESM
      # tree, the browser bundles and the sources are 90 % of the package.
      mkdir -p "$dst/dist"
      cp "$src/package.json" "$dst/"
      cp "$src"/dist/package.json "$src"/dist/*.node.js "$dst/dist/" 2>/dev/null || true
      cp "$src"/dist/*.wasm "$dst/dist/" 2>/dev/null || true
      [ -f "$src/LICENSE" ] && cp "$src/LICENSE" "$dst/" ;;
    better-sqlite3)
      cp -r "$src/package.json" "$src/lib" "$dst/"
      mkdir -p "$dst/build/Release"
      cp "$src/build/Release/better_sqlite3.node" "$dst/build/Release/"
      [ -f "$src/LICENSE" ] && cp "$src/LICENSE" "$dst/" ;;
    vega|vega-lite|vega-embed)
      # The report inlines the minified builds only.
      mkdir -p "$dst/build"
      cp "$src/package.json" "$dst/"
      cp "$src"/build/*.min.js "$dst/build/" ;;
    *)
      tar -C "$src" --exclude='*.map' --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' --exclude='*.md' \
        --exclude='./src' --exclude='./test' --exclude='./docs' -cf - . | tar -C "$dst" -xf - ;;
  esac
done
# N-API's C headers: node_api.h and what it includes (scripts/build-torch.sh compiles the torch addon against them).
for h in node_api.h node_api_types.h js_native_api.h js_native_api_types.h node_version.h; do
  cp "$node_include/$h" "$stage/node/include/node/"
done
mkdir -p "$stage/dist"
tar -C dist --exclude='*.map' -cf - . | tar -C "$stage/dist" -xf -

src_sha="$(bash scripts/gpu-check/source-hash.sh)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "pack: writing $out/app.tar.xz" >&2
tar -C "$stage" -cf - dist node_modules node | xz -9 -T1 >"$out/app.tar.xz.tmp"
mv "$out/app.tar.xz.tmp" "$out/app.tar.xz"

node_xz=$(stat -c %s "$out/node.xz")
app_xz=$(stat -c %s "$out/app.tar.xz")
app_raw=$(du -sb "$stage" | cut -f1)
tree=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
cat >"$out/manifest.json" <<EOF
{"node": "$(node --version)", "node_sha256": "$node_sha", "commit": "$commit", "source_sha256": "$src_sha",
 "node_xz_bytes": $node_xz, "app_tar_xz_bytes": $app_xz, "app_unpacked_bytes": $app_raw, "created": "$(date -u +%FT%TZ)"}
EOF

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "pack: node.xz $(mib "$node_xz"), app.tar.xz $(mib "$app_xz") ($(mib "$app_raw") unpacked)"
echo "pack: bundle $(mib $((node_xz + app_xz))) + tracked files $(mib "$tree") = $(mib $((node_xz + app_xz + tree))) of the 64 MiB a device call carries"
# What the carried binaries need from the GPU machine's system.
for f in "$node_bin" node_modules/better-sqlite3/build/Release/better_sqlite3.node; do
  libs=$(ldd "$f" | awk '{print $1}' | grep -v -E '^(linux-vdso|/lib64/ld-linux)' | tr '\n' ' ')
  glibc=$(objdump -T "$f" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -n 1)
  echo "pack: $(basename "$f") needs: $libs(max $glibc)"
done
