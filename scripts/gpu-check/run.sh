#!/usr/bin/env bash
# The GPU check of issue #16, in one call on a machine with one NVIDIA GPU, PyTorch with CUDA and no Node, no network:
#
#   scripts/gpu-check/run.sh [--device cuda|cpu] [--out DIR] [--quick] [--seeds S,S,...] [--budget SECONDS]
#                            [--python PY] [--torch-dir DIR|auto] [--work DIR] [--only STEP,...] [--skip STEP,...]
#
# It needs gpu-bundle/ from scripts/gpu-check/pack.sh (carried) and the repository's working tree. Each step has a
# time cap inside the overall --budget (default 540 s, under a 600 s per-command limit), writes its output
# to the log, and records its result in summary.json as soon as it ends, so a call cut short still brings back what
# finished. Files under --out (default $OUT, else ./gpu-check-out): gpu-check.log, summary.json,
# train-sSEED/compare-train.json per seed, throughput.jsonl, grid.json, profile.txt. Exit 0 when every step passed, 1 otherwise.
#
# --only STEP[,STEP] reruns some steps (env, unpack and build always run; on a machine still warm from a first call
# they find their work done in --work and take seconds). --skip leaves steps out.
#
# Steps (expected time on an H100 machine; --quick shrinks the work for a CPU run here):
#  env        nvidia-smi, the PyTorch install, the bundle's manifest against this tree's sources (a mismatch is a
#             warning: dist/ was compiled from other sources; run pack.sh again).                          ~5 s
#  unpack     node and app.tar.xz into --work (default /tmp/prunebench-gpu), with the repo's bin/, benchmarks/,
#             datasets/, native/src, scripts/ and package.json beside them: a runtime root that is not the checkout,
#             so nothing here is built into the repo (its native/build may be a link to another checkout).   ~10 s
#  build      scripts/build-torch.sh --torch-dir auto with --python (default /opt/torch/.venv/bin/python3 where
#             it exists): the torch addon against that PyTorch's libtorch (CUDA when it has libtorch_cuda).
#             Without a PyTorch that ships headers (the CPU run here): Debian's libtorch-dev.            ~1-2 min
#  ops        the torch backend's op suite (dist/test/torch-backend.test.js) and the addon's tests with
#             PRUNEBENCH_TORCH_DEVICE=cuda:0 and PRUNEBENCH_REQUIRE_TORCH=1 (a missing backend fails); in the
#             background, beside the next step (JavaScript-bound against GPU-bound).                       ~1-3 min
#  train      compare-train: ResNet-20, 300 steps of batch 64, for each of --seeds (default 0,1,2; --quick: 0), side
#             by side: torch@cuda:0 (seed 0 twice: bit-identical run to run?) against torch@cpu on its share of the
#             cores; loss curve, test top-1 and final weights against the tolerance in README's GPU section
#             (scripts/gpu-check/compare-train.ts).                                                       ~2-3 min
#  grid       benchmarks/gpu-check.yaml (8 runs: mlp and resnet20 on fashion-mnist-mini) with --backend torch
#             --gpus 0 --jobs-per-gpu 4 (or, before that option exists, -j 4 with every worker on cuda:0);
#             nvidia-smi sampled meanwhile: how many processes shared the GPU; runs done, device recorded. ~1 min
#  throughput training images/s at batch 128, ResNet-20-B and ResNet-56-B, the torch backend on cuda:0
#             (scripts/gpu-check/throughput.ts) interleaved with PyTorch's own on the same GPU
#             (scripts/peers/torch_gpu.py, same settings: deterministic cuDNN, TF32 off) over 3 rounds; the ratio's
#             median and range; PyTorch with its default settings once more for reference.               ~1-2 min
#  profile    resnet20-b trained 30 steps at batch 128 on the torch backend under node --cpu-prof; the host time
#             per part of the stack (libtorch addon calls, torch backend, tfjs engine, loop and model, GC) and the
#             functions with the most self time (scripts/gpu-check/profile-summary.ts), in profile.txt.      ~20 s
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
device="cuda"
out="${OUT:-$repo/gpu-check-out}"
quick=""
budget=540
python=""
torch_dir=""
work="${TMPDIR:-/tmp}/prunebench-gpu"
only=""
skip=""
bundle="$repo/gpu-bundle"
seeds=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="${2:?}"; shift ;;
    --out) out="${2:?}"; shift ;;
    --quick) quick=1 ;;
    --budget) budget="${2:?}"; shift ;;
    --python) python="${2:?}"; shift ;;
    --torch-dir) torch_dir="${2:?}"; shift ;;
    --work) work="${2:?}"; shift ;;
    --bundle) bundle="${2:?}"; shift ;;
    --only) only=",${2:?},"; shift ;;
    --seeds) seeds="${2:?}"; shift ;;
    --skip) skip=",${2:?},"; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed 's/^# \{0,1\}//; /^set -uo/d'; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (valid: --device cuda|cpu, --out DIR, --quick, --seeds S,S, --budget S, --python PY, --torch-dir DIR|auto, --work DIR, --bundle DIR, --only STEPS, --skip STEPS)" >&2; exit 2 ;;
  esac
  shift
done
case "$device" in cuda|cpu) ;; *) echo "run.sh: --device is cuda or cpu, got '$device'" >&2; exit 2 ;; esac
[ -n "$seeds" ] || { [ -n "$quick" ] && seeds=0 || seeds=0,1,2; }
[[ "$seeds" =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "run.sh: --seeds is a comma-separated list of integers, got '$seeds'" >&2; exit 2; }
# The first Python that imports torch: the GPU image's venv, then python3 on PATH, then Debian's (python3-torch).
if [ -z "$python" ]; then
  for p in /opt/torch/.venv/bin/python3 python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null; then python="$p"; break; fi
  done
  python="${python:-python3}"
fi
# --work is emptied first: never a folder that holds anything else.
case "$(cd "$work" 2>/dev/null && pwd || echo "$work")" in
  /|"$repo"|"$repo"/*|"$HOME"|/tmp|/usr*|/opt*) echo "run.sh: --work $work would be emptied; give a folder of its own (default /tmp/prunebench-gpu)" >&2; exit 2 ;;
esac
tdev="cpu"; [ "$device" = cuda ] && tdev="cuda:0"
mkdir -p "$out"
log="$out/gpu-check.log"
summary="$out/summary.json"
: >"$log"
start=$(date +%s)

say() { echo "[gpu-check $(( $(date +%s) - start ))s] $*" | tee -a "$log"; }
left() { echo $(( budget - ($(date +%s) - start) )); }
# env, unpack and build run with any --only (every other step needs them; unpack and build are cached in --work).
wanted() { { [ -z "$only" ] || [[ "$only" == *",$1,"* ]] || [[ ",env,unpack,build," == *",$1,"* ]]; } && [[ "$skip" != *",$1,"* ]]; }
# summary.json is rewritten after every step from one record per step (under the runtime root: $OUT takes 8 files):
# a call stopped at its limit still returns the steps that ended. A step run in the background records the same way.
records="$work.steps"
rm -rf "$records"; mkdir -p "$records"
write_summary() {
  local steps="" f
  for f in "$records"/*.json; do [ -f "$f" ] && steps="${steps:+$steps, }$(cat "$f")"; done
  printf '{"device": "%s", "quick": %s, "elapsed_s": %s, "bundle": %s, "steps": {%s}}\n' "$device" "$([ -n "$quick" ] && echo true || echo false)" \
    "$(( $(date +%s) - start ))" "$(tr -d '\n' <"$bundle/manifest.json" 2>/dev/null || echo null)" "$steps" >"$summary"
}
# record ORDER STEP STATUS SECONDS [JSON-DETAIL]
record() {
  printf '"%s": {"status": "%s", "seconds": %s, "detail": %s}' "$2" "$3" "$4" "${5:-null}" >"$records/$1-$2.json"
  write_summary
}
# run_step ORDER NAME CAP_SECONDS FUNCTION: runs FUNCTION under min(CAP, budget left - 10 s), records pass/fail/timeout.
run_step() {
  local order="$1" name="$2" cap="$3" fn="$4" t0 rc status limit
  if ! wanted "$name"; then record "$order" "$name" skipped 0 '"not asked for"'; return 0; fi
  limit=$(( $(left) - 10 ))
  [ "$limit" -gt "$cap" ] && limit="$cap"
  if [ "$limit" -lt 15 ]; then
    say "$name: skipped, $(left) s of the budget left"
    record "$order" "$name" "no-time" 0; return 0
  fi
  say "== $name (at most ${limit}s)"
  t0=$(date +%s)
  STEP_DETAIL="null"
  STEP_LIMIT="$limit"
  "$fn"
  rc=$?
  status=pass
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status=timeout; elif [ "$rc" != 0 ]; then status=fail; fi
  say "$name: $status ($(( $(date +%s) - t0 )) s)"
  record "$order" "$name" "$status" $(( $(date +%s) - t0 )) "$STEP_DETAIL"
}
# Runs a command in the runtime root with the step's time limit, its output into the log.
in_work() { (cd "$work" && timeout --kill-after=5 "$STEP_LIMIT" "$@") >>"$log" 2>&1; }
node_() { "$work/node/bin/node" "$@"; }

step_env() {
  {
    echo "device: $device ($tdev), quick: ${quick:-no}, budget: ${budget}s, work: $work"
    uname -a; nproc; free -g 2>/dev/null | head -2
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
    "$python" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1
    cat "$bundle/manifest.json" 2>&1
  } >>"$log" 2>&1
  local here want
  here="$(bash "$repo/scripts/gpu-check/source-hash.sh")"
  want="$(sed -n 's/.*"source_sha256": "\([0-9a-f]*\)".*/\1/p' "$bundle/manifest.json" 2>/dev/null)"
  if [ "$here" != "$want" ]; then
    say "WARNING: gpu-bundle/ was packed from other sources (bundle ${want:-none}, tree $here): its dist/ may not match; run scripts/gpu-check/pack.sh"
    STEP_DETAIL="{\"sources_match\": false}"
  else
    STEP_DETAIL="{\"sources_match\": true}"
  fi
  [ -f "$bundle/node.xz" ] && [ -f "$bundle/app.tar.xz" ] || { say "no bundle in $bundle: run scripts/gpu-check/pack.sh and carry gpu-bundle"; return 1; }
  if [ "$device" = cuda ]; then
    "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || { say "--device cuda but $python sees no GPU"; return 1; }
  fi
}

unxz_() { if command -v xz >/dev/null; then xz -dc "$1"; else "$python" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }
step_unpack() {
  # A second call on a machine still warm finds this bundle unpacked already: only the repo's files are copied again.
  if [ -x "$work/node/bin/node" ] && cmp -s "$bundle/manifest.json" "$work/manifest.json"; then
    say "unpack: $work holds this bundle already"
    (cd "$repo" && tar -cf - bin package.json benchmarks datasets native/src native/binding.gyp scripts) | tar -C "$work" -xf - || return 1
    return 0
  fi
  rm -rf "$work" && mkdir -p "$work/node/bin" || return 1
  unxz_ "$bundle/node.xz" >"$work/node/bin/node" && chmod +x "$work/node/bin/node" || return 1
  unxz_ "$bundle/app.tar.xz" | tar -C "$work" -xf - || return 1
  (cd "$repo" && tar -cf - bin package.json benchmarks datasets native/src native/binding.gyp scripts) | tar -C "$work" -xf - || return 1
  node_ --version >>"$log" 2>&1 || return 1
  (cd "$work" && timeout 60 "$work/node/bin/node" bin/bench.js --version) >>"$log" 2>&1 || return 1
  cp "$bundle/manifest.json" "$work/manifest.json"
}

step_build() {
  local args=() stamp
  # Built already in this --work from the same sources and torch (a second call on a warm machine): not again.
  stamp="$(cat "$work"/native/src/torch_*.cc "$work/scripts/build-torch.sh" | sha256sum | cut -d' ' -f1) $python $torch_dir"
  if [ -f "$work/native/build/Release/prunebench_torch.node" ] && [ "$(cat "$work/build.stamp" 2>/dev/null)" = "$stamp" ]; then
    say "build: the addon in $work is built from these sources already"
    return 0
  fi
  if [ -n "$torch_dir" ]; then args=(--torch-dir "$torch_dir")
  elif "$python" -c 'import torch, os, sys; sys.exit(0 if os.path.isfile(os.path.join(os.path.dirname(torch.__file__), "include", "ATen", "ATen.h")) else 1)' 2>/dev/null; then args=(--torch-dir auto)
  fi
  say "build-torch.sh ${args[*]:-(Debian libtorch-dev)} with PYTHON=$python"
  PATH="$work/node/bin:$PATH" PYTHON="$python" NODE_INCLUDE="$work/node/include/node" in_work bash scripts/build-torch.sh "${args[@]}" || return $?
  PATH="$work/node/bin:$PATH" in_work node -e 'const a = require("./native/build/Release/prunebench_torch.node"); console.log(JSON.stringify(a.info()))' || return $?
  echo "$stamp" >"$work/build.stamp"
}

tenv() { env PATH="$work/node/bin:$PATH" PRUNEBENCH_TORCH_DEVICE="$tdev" PRUNEBENCH_REQUIRE_TORCH=1 "$@"; }
step_ops() {
  local tests=(dist/test/torch-backend.test.js dist/test/torch-addon.test.js) have=() t filter=()
  for t in "${tests[@]}"; do [ -f "$work/$t" ] && have+=("$t"); done
  [ ${#have[@]} -gt 0 ] || { say "no op suite in the bundle (${tests[*]})"; return 1; }
  # --quick (a CPU run here, to prove the bundle): a few tests of each file; CI runs the whole suite on CPU.
  [ -n "$quick" ] && filter=(--test-name-pattern 'registers|loads|round trip|elementwise|3x3 same stride 1')
  local tap="$work/ops.tap" rc
  (cd "$work" && tenv timeout --kill-after=5 "$STEP_LIMIT" node --test --test-reporter=tap "${filter[@]}" "${have[@]}") >"$tap" 2>&1
  rc=$?
  cat "$tap" >>"$log"
  grep -E '^not ok' "$tap" | head -20 | tee -a "$log"
  # Counted from the test lines (the totals at the end are missing when the step hit its limit).
  local pass fail skipped
  pass=$(grep -c -E '^ok [0-9]+ - ' "$tap"); fail=$(grep -c -E '^not ok [0-9]+ - ' "$tap")
  skipped=$(grep -c -E '^ok [0-9]+ - .*# SKIP' "$tap")
  say "op suite on $tdev: $pass ok ($skipped of them skipped), $fail failed"
  STEP_DETAIL="{\"pass\": $pass, \"fail\": $fail, \"skipped\": $skipped, \"files\": \"${have[*]}\"}"
  return $rc
}

step_train() {
  local a b args seed pids=() rc=0
  # Several seeds, trained side by side: one seed's test top-1 after 300 steps on 640 images is a noisy figure (the
  # first GPU check saw 4.0 points on seed 0, where two CPU implementations differ by 0.2-0.4 points on seeds 0-2), so
  # the check reports each seed and their spread. Seed 0 also trains side A twice (run-to-run determinism).
  # On a GPU machine each CPU side trains while the GPU sides do, on its share of the cores (the op suite keeps a few).
  # libtorch's OpenMP threads on oversubscribed cores crawl (here, 2 threads on 2 busy cores: 9x slower than 1), so
  # never more threads than cores left free.
  local par=() threads=1 nseeds
  IFS=, read -r -a seed_list <<<"$seeds"
  nseeds=${#seed_list[@]}
  if [ "$device" = cuda ]; then
    a="torch@cuda:0"; b="torch@cpu"; par=(--parallel)
    threads=$(( ($(nproc) - 4) / nseeds )); [ "$threads" -ge 1 ] || threads=1
  else a="torch@cpu"; b="wasm"; fi
  if [ -n "$quick" ]; then args=(--steps 6 --chunk 2 --batch 16 --test-images 100); else args=(--steps 300 --chunk 10 --batch 64); fi
  for seed in "${seed_list[@]}"; do
    local repeat=(); [ "$seed" = "${seed_list[0]}" ] && repeat=(--repeat-a)
    mkdir -p "$out/train-s$seed"
    (cd "$work" && PATH="$work/node/bin:$PATH" timeout --kill-after=5 "$STEP_LIMIT" node dist/scripts/gpu-check/compare-train.js \
      --a "$a" --b "$b" --arch resnet20 --seed "$seed" --threads "$threads" "${repeat[@]}" "${par[@]}" --out "$out/train-s$seed" "${args[@]}") \
      >"$work/train-s$seed.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; local r=$?
    [ "$r" != 0 ] && { [ "$rc" = 0 ] || [ "$r" = 124 ]; } && rc=$r
    cat "$work/train-s${seed_list[$i]}.log" >>"$log"
    grep -v '^{' "$work/train-s${seed_list[$i]}.log" | grep -E 'compare-train|top-1|bit-identical|OUT' | tail -8
  done
  STEP_DETAIL="$(node_ -e '
    const fs = require("fs");
    const seeds = process.argv.slice(1).map((d) => { try { return JSON.parse(fs.readFileSync(d + "/compare-train.json", "utf8")); } catch { return null; } });
    const done = seeds.filter(Boolean);
    // Each seed is judged by compare-train; their top-1 differences also by their mean (TOLERANCE.meanTop1Points).
    const meanTop1Points = done.length ? done.reduce((t, s) => t + s.figures.top1Points, 0) / done.length : null;
    const bound = done.length ? done[0].tolerance.meanTop1Points : null;
    console.log(JSON.stringify({ meanTop1Points, meanTop1Bound: bound, meanTop1Ok: meanTop1Points !== null && bound != null && meanTop1Points <= bound,
      seeds: done.map((s) => ({ seed: s.seed, pass: s.pass, figures: s.figures, repeatIdenticalA: s.repeatIdenticalA, seconds: s.sides.map((x) => x.seconds), top1: s.sides.map((x) => x.top1) })) }));
  ' $(for s in "${seed_list[@]}"; do echo "$out/train-s$s"; done) 2>>"$log" || echo null)"
  say "train: mean |top-1 difference| over seeds $seeds: $(node_ -e 'const d = JSON.parse(process.argv[1]); console.log(d && d.meanTop1Points != null ? d.meanTop1Points.toFixed(2) + " points (<= " + d.meanTop1Bound + ") " + (d.meanTop1Ok ? "ok" : "OUT") : "none")' "$STEP_DETAIL")"
  node_ -e 'const d = JSON.parse(process.argv[1]); process.exit(d && d.meanTop1Ok ? 0 : 1)' "$STEP_DETAIL" || { [ "$rc" = 0 ] && rc=1; }
  return "$rc"
}

step_grid() {
  local db="$work/grid.db" mode args sampler=""
  rm -f "$db"
  if (cd "$work" && node_ bin/bench.js sweep --help 2>/dev/null | grep -q -- '--jobs-per-gpu') && [ "$device" = cuda ]; then
    mode="--gpus 0 --jobs-per-gpu 4"; args=(--gpus 0 --jobs-per-gpu 4)
  else
    # Before gpusched's options (or on the CPU): every worker inherits the device; 4 workers share it all the same.
    mode="-j 4, PRUNEBENCH_TORCH_DEVICE=$tdev"; args=(-j 4)
  fi
  local grid=benchmarks/gpu-check.yaml
  if [ -n "$quick" ]; then
    sed -e 's/archs: \[mlp, resnet20\]/archs: [mlp, lenet5]/' -e 's/train_subset: 1000/train_subset: 500/' "$work/$grid" >"$work/gpu-check-quick.yaml"
    grid=gpu-check-quick.yaml
  fi
  say "bench sweep $grid --backend torch $mode"
  if command -v nvidia-smi >/dev/null; then
    (while sleep 2; do nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader 2>/dev/null | wc -l; done) >"$work/gpu-procs.txt" &
    sampler=$!
  fi
  (cd "$work" && PATH="$work/node/bin:$PATH" PRUNEBENCH_TORCH_DEVICE="$tdev" timeout --kill-after=5 "$STEP_LIMIT" node bin/bench.js sweep "$grid" --db "$db" --backend torch "${args[@]}") >>"$log" 2>&1
  local rc=$?
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  local maxprocs="null"
  [ -s "$work/gpu-procs.txt" ] && maxprocs=$(sort -n "$work/gpu-procs.txt" | tail -1)
  (cd "$work" && node_ bin/bench.js ls --db "$db" --json) >"$out/grid.json" 2>>"$log"
  STEP_DETAIL="$(node_ -e '
    const rows = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8") || "[]");
    const list = Array.isArray(rows) ? rows : rows.runs ?? [];
    const by = {}; for (const r of list) by[r.status] = (by[r.status] ?? 0) + 1;
    const devices = [...new Set(list.map((r) => r.device ?? r.backendDevice ?? (r.backend && r.backend.device)).filter(Boolean))];
    console.log(JSON.stringify({ mode: process.argv[2], runs: list.length, byStatus: by, devices, maxGpuProcesses: JSON.parse(process.argv[3]) }));
  ' "$out/grid.json" "$mode" "$maxprocs" 2>>"$log" || echo null)"
  say "grid: $STEP_DETAIL"
  return $rc
}

step_throughput() {
  local rounds=3 steps=50 psteps=50 archs=(resnet20-b resnet56-b) r a
  [ -n "$quick" ] && { rounds=1; steps=2; psteps=2; archs=(resnet20-b); }
  local jl="$out/throughput.jsonl"
  : >"$jl"
  local batch=128; [ -n "$quick" ] && batch=16
  for ((r = 0; r < rounds; r++)); do
    for a in "${archs[@]}"; do
      # PyTorch first, then ours, each in a fresh process, alternating: drift hits both sides alike.
      (cd "$work" && timeout --kill-after=5 "$STEP_LIMIT" "$python" scripts/peers/torch_gpu.py --device "$tdev" --arch "$a" --batch "$batch" --steps "$psteps" --settings matched) 2>>"$log" | sed "s/}\$/, \"round\": $r}/" | tee -a "$jl" "$log"
      (cd "$work" && PATH="$work/node/bin:$PATH" PRUNEBENCH_TORCH_DEVICE="$tdev" timeout --kill-after=5 "$STEP_LIMIT" node dist/scripts/gpu-check/throughput.js --backend torch --arch "$a" --batch "$batch" --steps "$steps") 2>>"$log" | sed "s/}\$/, \"round\": $r}/" | tee -a "$jl" "$log"
      [ "$(left)" -lt 20 ] && { say "throughput: budget nearly spent after round $r"; break 2; }
    done
  done
  [ -z "$quick" ] && (cd "$work" && timeout "$STEP_LIMIT" "$python" scripts/peers/torch_gpu.py --device "$tdev" --arch "$(IFS=,; echo "${archs[*]}")" --batch "$batch" --steps "$psteps" --settings default) 2>>"$log" | tee -a "$jl" "$log"
  STEP_DETAIL="$(node_ "$work/dist/scripts/gpu-check/ratio.js" "$jl" 2>>"$log" || echo null)"
  node_ "$work/dist/scripts/gpu-check/ratio.js" --table "$jl" 2>&1 | tee -a "$log"
  node_ -e 'const d = JSON.parse(process.argv[1]); process.exit(d && d.archs && d.archs.every((a) => a.ratio != null) ? 0 : 1)' "$STEP_DETAIL"
}

step_profile() {
  # One process's host time per part of the stack (scripts/gpu-check/profile-summary.ts) while it trains resnet20-b:
  # on a GPU the step is bound by the host, and this says by what.
  local steps=30 batch=128 f
  [ -n "$quick" ] && { steps=3; batch=16; }
  rm -rf "$work/prof" && mkdir -p "$work/prof" || return 1
  (cd "$work" && PATH="$work/node/bin:$PATH" PRUNEBENCH_TORCH_DEVICE="$tdev" timeout --kill-after=5 "$STEP_LIMIT" node --cpu-prof \
    --cpu-prof-dir="$work/prof" dist/scripts/gpu-check/throughput.js --backend torch --arch resnet20-b --batch "$batch" --steps "$steps") >>"$log" 2>&1 || return $?
  f="$(ls "$work"/prof/*.cpuprofile 2>/dev/null | head -n 1)"
  [ -n "$f" ] || { say "profile: node wrote no .cpuprofile"; return 1; }
  node_ "$work/dist/scripts/gpu-check/profile-summary.js" "$f" --top 20 >"$out/profile.txt" 2>>"$log" || return 1
  cat "$out/profile.txt" >>"$log"
  head -n 8 "$out/profile.txt"
  STEP_DETAIL="$(node_ "$work/dist/scripts/gpu-check/profile-summary.js" "$f" --top 5 --json 2>>"$log" || echo null)"
}

say "prunebench GPU check: --device $device${quick:+ --quick}, out $out"
write_summary
run_step 1 env 30 step_env
run_step 2 unpack 90 step_unpack
run_step 3 build 300 step_build
# The op suite is mostly JavaScript on the CPU (the reference backend) and the training comparison mostly the GPU: they
# run side by side. Nothing timed for the report runs meanwhile (the throughput step runs alone, last).
run_step 4 ops 240 step_ops &
ops_pid=$!
run_step 5 train 240 step_train
wait "$ops_pid"
run_step 6 grid 150 step_grid
run_step 7 throughput 200 step_throughput
run_step 8 profile 60 step_profile
write_summary
failures=0
for f in "$records"/*.json; do grep -q -E '"status": "(pass|skipped)"' "$f" || failures=$((failures + 1)); done
say "done: $failures step(s) not passed; summary in $summary"
cat "$summary"
[ "$failures" = 0 ]
