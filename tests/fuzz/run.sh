#!/usr/bin/env bash
# tests/fuzz/run.sh: runs the libFuzzer targets of tests/fuzz/ (built by `make fuzz-build` into
# $FUZZ_BUILD, default build-fuzz).
#   run.sh short [names]   what `make test` runs: every regression input of tests/fuzz/regress/<name>/
#                          once, then FUZZ_SECONDS (default 3) of fuzzing from the seeds; prints
#                          "ok", "FAIL" and "skip:" lines like the unit tests. Builds the targets
#                          first; skips cleanly where clang's libFuzzer is missing.
#   run.sh long [names]    what `make fuzz` runs: FUZZ_SECONDS (default 60) each, the corpus kept
#                          in $FUZZ_BUILD/corpus/<name>/, crashes in $FUZZ_BUILD/crashes/.
# names: targets without fuzz_ (gguf, stream, ...); default all. PAT (as in tests/run.sh) filters.
set -u
cd "$(dirname "$0")/../.."
MODE=${1:-short}
shift
FB=${FUZZ_BUILD:-build-fuzz}
if [ "$MODE" = long ]; then SECS=${FUZZ_SECONDS:-60}; else SECS=${FUZZ_SECONDS:-3}; fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do n=${f#tests/fuzz/fuzz_}; names+=("${n%.c}"); done
fi

if [ "$MODE" = short ]; then
  probe=$(mktemp -d "${TMPDIR:-/tmp}/hass-fuzz-probe.XXXXXX")
  echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' >"$probe/p.c"
  if ! ${FUZZ_CC:-clang} -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>/dev/null; then
    rm -rf "$probe"
    echo "skip: fuzz (no clang with libFuzzer: ${FUZZ_CC:-clang} -fsanitize=fuzzer failed)"
    exit 0
  fi
  rm -rf "$probe"
  mkdir -p "$FB"
  if ! nice make -s --no-print-directory fuzz-build FUZZ_BUILD="$FB" >"$FB/build.log" 2>&1; then
    echo "FAIL fuzz build: make fuzz-build failed"; tail -5 "$FB/build.log"; exit 1
  fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hass-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for n in "${names[@]}"; do
  [ -n "${PAT:-}" ] && [[ "fuzz_$n" != *$PAT* ]] && continue
  bin=$FB/fuzz_$n
  if [ ! -x "$bin" ]; then echo "FAIL fuzz_$n: $bin not built"; continue; fi
  reg=(tests/fuzz/regress/$n/*)
  if [ -e "${reg[0]}" ]; then
    if "$bin" -timeout=20 -rss_limit_mb=2048 "${reg[@]}" >"$tmp/$n.reg" 2>&1; then
      echo "ok fuzz_$n: ${#reg[@]} regression inputs"
    else
      echo "FAIL fuzz_$n: a regression input fails again"; grep -E 'ERROR|runtime error|Running' "$tmp/$n.reg" | tail -4
    fi
  fi
  if [ "$MODE" = long ]; then
    work=$FB/corpus/$n; mkdir -p "$work" "$FB/crashes"; art=$FB/crashes/$n-
  else
    work=$tmp/corpus-$n; mkdir -p "$work"; art=$tmp/$n-
  fi
  # short (make test): a fixed seed, so every run explores a prefix of the same inputs and the suite
  # cannot fail at random on a machine where it passed here; long (make fuzz): a fresh seed each run
  seed=()
  [ "$MODE" = long ] || seed=(-seed=1)
  "$bin" "${seed[@]}" -max_total_time="$SECS" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$art" "$work" "tests/fuzz/corpus/$n" >"$tmp/$n.log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$n.log")
  if [ $rc -eq 0 ]; then
    echo "ok fuzz_$n: ${runs:-?} executions in ${SECS}s"
  else
    echo "FAIL fuzz_$n: crash after ${runs:-?} executions (input kept as $art*)"
    grep -E 'ERROR|runtime error|#[0-9]+ 0x' "$tmp/$n.log" | head -8
    [ "$MODE" = short ] && mkdir -p "$FB/crashes" && cp "$art"* "$FB/crashes/" 2>/dev/null
  fi
done
