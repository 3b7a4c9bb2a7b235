#!/usr/bin/env bash
# tests/gpu/run.sh: everything that needs a GPU, in one call on a lent machine: build, kernel
# tests (every CUDA kernel against its CPU twin), the whole test suite, the LLaMA-2-7B-shape
# benchmark, and a compact summary. Each step has a timeout; a failed step is reported and the
# next one still runs. Logs and summary.txt go to $OUT (default /tmp/hass-gpu-out).
#
#   bash tests/gpu/run.sh                 # on the device machine (run tool: carry [".dev"])
#   QUICK=1 bash tests/gpu/run.sh         # 4 layers instead of 32 in the benchmark
#
# Needs nvcc and, when the machine lacks libjansson-dev/zlib1g-dev, the static libraries under
# .dev/sysroot (Debian's libjansson-dev and zlib1g-dev unpacked with dpkg -x; see docs/GPU.md).
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
  *--libs*jansson*) echo "-L$SR/usr/lib/x86_64-linux-gnu -ljansson" ;;
  *--libs*) echo "-L$SR/usr/lib/x86_64-linux-gnu -lz" ;;
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

run_step suite 200 bash tests/run.sh
say "  suite: $(tail -1 "$OUT/suite.log")"
grep -E '^FAIL' "$OUT/suite.log" | head -10 | sed 's/^/  /' | tee -a "$SUM"

# the benchmark links against the library just built
if [ -e build/libhass.a ]; then
  CUDA_HOME=$(dirname "$(dirname "$(command -v nvcc)")")
  run_step bench-build 120 gcc -std=c11 -O2 -Wall -Wextra -D_GNU_SOURCE -DHASS_WITH_CUDA -Ilibcore \
    tests/gpu/bench_llama.c -o build/bench_llama build/libhass.a -fopenmp -pthread \
    $(pkg-config --libs jansson zlib) -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" \
    -lcublas -lcudart -lstdc++ -lm
  LAYERS=32
  [ -n "${QUICK:-}" ] && LAYERS=4
  if [ -x build/bench_llama ]; then
    run_step bench 240 build/bench_llama --layers "$LAYERS" --past 512 --reps 15
    grep -vE '^matmul' "$OUT/bench.log" | sed 's/^/  /' | tee -a "$SUM"
    grep -E '^matmul .* n 1 ' "$OUT/bench.log" | sed 's/^/  /' | tee -a "$SUM"
  fi
fi

# SmolLM2 on the GPU vs the CPU: needs a --device cuda path in hass-verify (not there yet)
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -e "$MODEL" ] || MODEL=.dev/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -x tests/gpu/smollm2.sh ] && [ -e "$MODEL" ]; then
  run_step smollm2 120 bash tests/gpu/smollm2.sh "$MODEL"
  tail -5 "$OUT/smollm2.log" | sed 's/^/  /' | tee -a "$SUM"
else
  say "step smollm2: SKIPPED (needs tests/gpu/smollm2.sh and the model; no --device cuda path yet)"
fi

say "total $(( $(date +%s) - T0 ))s; logs in $OUT"
