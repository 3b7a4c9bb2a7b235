#!/usr/bin/env bash
# tests/gpu/run.sh: everything that needs a GPU, in one call on a lent machine: build, kernel
# tests (every CUDA kernel against its CPU twin), the backend table's GPU checks (test_backend:
# end-to-end speculative == plain GPU greedy), the whole test suite, the LLaMA-2-7B-shape
# benchmark, and a compact summary. Each step has a timeout; a failed step is reported and the
# next one still runs. Logs and summary.txt go to $OUT (default /tmp/hass-gpu-out).
#
#   bash tests/gpu/run.sh                 # on the device machine (run tool: carry [".dev"])
#   QUICK=1 bash tests/gpu/run.sh         # 4 layers instead of 32 in the benchmark
# Real models for the GPU-vs-CPU greedy check: stories260K from $HASS_DATA (or shared/data,
# ../shared/data, .dev/data) and SmolLM2 from models/ or .dev/ when present.
#
# Needs nvcc and, when the machine lacks libjansson-dev/zlib1g-dev, the static libraries under
# .dev/sysroot: run tests/gpu/prepare.sh on the development machine first (it also copies the
# test data to .dev/data), then carry .dev.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-/tmp/hass-gpu-out}
mkdir -p "$OUT"
SUM=$OUT/summary.txt
: >"$SUM"
T0=$(date +%s)
say() { echo "$*" | tee -a "$SUM"; }

# run_step NAME LIMIT_S CMD...: run with a timeout, log to $OUT/NAME.log, record status.
run_step() {
  local name=$1 limit=$2; shift 2
  local t=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  local why=ok
  [ $rc -ne 0 ] && why="FAILED (exit $rc)"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && why="TIMED OUT after ${limit}s"
  say "step $name: $why in $(( $(date +%s) - t ))s"
  return $rc
}

# test data: $HASS_DATA, else ../shared/data, else shared/data in the checkout, else .dev/data
# (filled by tests/gpu/prepare.sh)
if [ -z "${HASS_DATA:-}" ] && [ ! -d ../shared/data ]; then
  if [ -d shared/data ]; then export HASS_DATA=$ROOT/shared/data
  elif [ -d .dev/data ]; then export HASS_DATA=$ROOT/.dev/data
  fi
fi
say "test data: ${HASS_DATA:-../shared/data}"
say "hass GPU run $(date -u +%FT%TZ) rev $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
run_step nvidia-smi 30 nvidia-smi
head -15 "$OUT/nvidia-smi.log"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader \
  2>/dev/null | sed 's/^/gpu: /' | tee -a "$SUM"
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
say "nvcc: $(nvcc --version 2>/dev/null | tail -2 | head -1 || echo missing)"

# jansson/zlib: the system's, else a pkg-config shim over the static libraries in .dev/sysroot
if ! pkg-config --exists jansson zlib 2>/dev/null; then
  SR=$ROOT/.dev/sysroot
  if [ -e "$SR/usr/lib/x86_64-linux-gnu/libjansson.a" ]; then
    mkdir -p /tmp/hass-shim
    cat >/tmp/hass-shim/pkg-config <<SHIM
#!/bin/sh
case "\$*" in
  *--exists*) exit 0 ;;
  *--modversion*jansson*) echo 2.14 ;;
  *--modversion*) echo 1.2.13 ;;
  *--cflags*) echo "-I$SR/usr/include" ;;
  *--libs*) l="-L$SR/usr/lib/x86_64-linux-gnu"
            case "\$*" in *jansson*) l="\$l -ljansson" ;; esac
            case "\$*" in *zlib*) l="\$l -lz" ;; esac
            echo "\$l" ;;
esac
SHIM
    chmod +x /tmp/hass-shim/pkg-config
    export PATH=/tmp/hass-shim:$PATH
    say "deps: jansson/zlib from .dev/sysroot (static)"
  else
    say "deps: jansson/zlib missing and no .dev/sysroot: the build will fail"
  fi
fi

NJ=$(nproc 2>/dev/null || echo 8)
[ "$NJ" -gt 16 ] && NJ=16
run_step build 300 make -j"$NJ" CUDA_ARCH=90
grep -E 'warning|error' "$OUT/build.log" | grep -v '^make' | head -20 | sed 's/^/  build: /' | tee -a "$SUM"
grep -E '^(✓|✗)' "$OUT/build.log" | sed 's/^/  /' | tee -a "$SUM"

if [ -x build/tests/test_kernels ]; then
  run_step kernels 180 build/tests/test_kernels
  say "  kernel checks: $(grep -c '^ok ' "$OUT/kernels.log") ok, $(grep -c '^FAIL ' "$OUT/kernels.log") FAIL, $(grep -c '^skip' "$OUT/kernels.log") skip"
  grep -E '^(FAIL|skip)' "$OUT/kernels.log" | head -40 | sed 's/^/  /' | tee -a "$SUM"
  tail -3 "$OUT/kernels.log" | grep -v '^ok ' | sed 's/^/  kernels: /' | tee -a "$SUM"
else
  say "step kernels: SKIPPED (no build/tests/test_kernels)"
fi

# the backend table on the GPU: GPU vs CPU forward, commit, greedy GPU == CPU, speculative at
# T=0 == plain GPU greedy (stories260K; SmolLM2 too when models/ or .dev/ has it)
if [ -x build/tests/test_backend ]; then
  HM=${HASS_MODELS:-models}
  [ -e "$HM/SmolLM2-135M-Instruct.Q4_1.gguf" ] || [ ! -e .dev/SmolLM2-135M-Instruct.Q4_1.gguf ] || HM=.dev
  # then the binaries end to end (tests/e2e/device_cuda.sh: --device cuda on stories260K)
  run_step backend 300 env HASS_MODELS="$HM" HASS_DATA="${HASS_DATA:-../shared/data}" \
    PATH="$ROOT/build/bin:$PATH" bash -c 'build/tests/test_backend; r=$?; echo "e2e device_cuda:"; bash tests/e2e/device_cuda.sh; e=$?; echo "e2e device_cuda exit $e"; [ $r = 0 ] && { [ $e = 0 ] || [ $e = 77 ]; }'
  say "  backend checks: $(grep -c '^ok ' "$OUT/backend.log") ok, $(grep -c '^FAIL ' "$OUT/backend.log") FAIL, $(grep -c '^skip' "$OUT/backend.log") skip"
  grep -E '^(FAIL|skip|  |e2e|gpu |two )' "$OUT/backend.log" | head -40 | cut -c1-200 | sed 's/^/  /' | tee -a "$SUM"
else
  say "step backend: SKIPPED (no build/tests/test_backend)"
fi

if [ -z "${NO_SUITE:-}" ]; then # NO_SUITE=1: the CPU suite is covered elsewhere; save device time
  run_step suite 200 bash tests/run.sh
  say "  suite: $(tail -1 "$OUT/suite.log")"
  grep -E '^FAIL' "$OUT/suite.log" | head -10 | sed 's/^/  /' | tee -a "$SUM"
fi

# test programs link against the library just built
CUDA_HOME=$(dirname "$(dirname "$(command -v nvcc)")")
build_prog() { # build_prog NAME: tests/gpu/NAME.c -> build/NAME
  rm -f "build/$1"
  run_step "$1-build" 120 gcc -std=c11 -O2 -Wall -Wextra -D_GNU_SOURCE -DHASS_WITH_CUDA $(for d in libcore/*/; do printf -- "-I%s " "${d%/}"; done) \
    $(pkg-config --cflags jansson zlib) "tests/gpu/$1.c" -o "build/$1" build/libhass.a -fopenmp -pthread \
    $(pkg-config --libs jansson zlib) -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" \
    -lcublas -lcudart -lstdc++ -lm && rm -f "$OUT/$1-build.log" # keep $OUT under 8 files
}

if [ -e build/libhass.a ]; then
  build_prog bench_llama
  LAYERS=32
  [ -n "${QUICK:-}" ] && LAYERS=4
  if [ -x build/bench_llama ]; then
    run_step bench 240 build/bench_llama --layers "$LAYERS" --past 512 --reps 15
    grep -vE '^matmul' "$OUT/bench.log" | sed 's/^/  /' | tee -a "$SUM"
    grep -E '^matmul .* n (1|64) ' "$OUT/bench.log" | sed 's/^/  /' | tee -a "$SUM"
  fi

  # real models: greedy tokens on the GPU stack vs the CPU engine
  build_prog greedy_gpu_cpu
  : >"$OUT/greedy.log"
  found=0
  for m in "${HASS_DATA:-/nonexistent}/models/stories260K/stories260K-v3-f32.gguf" \
           shared/data/models/stories260K/stories260K-v3-f32.gguf \
           ../shared/data/models/stories260K/stories260K-v3-f32.gguf \
           .dev/data/models/stories260K/stories260K-v3-f32.gguf \
           models/SmolLM2-135M-Instruct.Q4_1.gguf .dev/SmolLM2-135M-Instruct.Q4_1.gguf; do
    [ -e "$m" ] && [ -x build/greedy_gpu_cpu ] || continue
    case "$m" in *stories*) [ $((found & 1)) = 1 ] && continue; found=$((found | 1)) ;;
                 *) [ $((found & 2)) = 2 ] && continue; found=$((found | 2)) ;; esac
    name=greedy-$(basename "$m" .gguf | cut -c1-12)
    run_step "$name" 120 build/greedy_gpu_cpu "$m" "Once upon a time" 64
    cat "$OUT/$name.log" >>"$OUT/greedy.log"; rm -f "$OUT/$name.log"
    grep -E '^(gpu:|greedy|cpu [0-9])' "$OUT/greedy.log" | tail -3 | cut -c1-160 | sed 's/^/  /' | tee -a "$SUM"
  done
  [ $found = 0 ] && say "step greedy: SKIPPED (no stories260K or SmolLM2 GGUF found)"
  [ $((found & 2)) = 0 ] && say "  (SmolLM2 not found: its 98 MB exceed the device tool's 64 MiB carry limit)"
fi

say "total $(( $(date +%s) - T0 ))s; logs in $OUT"
