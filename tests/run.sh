#!/usr/bin/env bash
# tests/run.sh: runs every test of the suite; the last line is "N passed, N failed".
#   unit:  build/tests/test_* print "ok <name>", "FAIL <name>: ...", "skip: <name> (why)"
#   cli:   tests/cli/*.t, cases of command, stdin, expected stdout/stderr and exit code
#   e2e:   tests/e2e/*.sh, exit 0 pass, 77 skip (prints why), anything else fail
# Environment: BUILD (build folder, default build), HASS_DATA (default ../shared/data),
# TESTS="unit cli e2e fuzz" to pick groups, T=pattern to run only matching names.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
export HASS_DATA=${HASS_DATA:-../shared/data}
export HASS_MODELS=${HASS_MODELS:-$ROOT/models}
export PATH="$ROOT/$BUILD/bin:$PATH"
export LC_ALL=C
GROUPS_=${TESTS:-unit cli e2e fuzz}
PAT=${T:-}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hass-tests.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export TMP
# --tree auto keeps its start measurements here, not in the user's ~/.cache
export HASS_CACHE_DIR="$TMP/cache"
pass=0 fail=0 skip=0
failed_names=()

if [ -n "${SANITIZE:-}" ]; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:protect_shadow_gap=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

note_fail() { fail=$((fail + 1)); failed_names+=("$1"); }

# ---- unit tests -------------------------------------------------------------------------------
run_unit() {
  for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    [ -n "$PAT" ] && [[ "$name" != *$PAT* ]] && continue
    out="$TMP/$name.out"
    "$t" >"$out" 2>"$TMP/$name.err"
    rc=$?
    p=$(grep -c '^ok ' "$out")
    f=$(grep -c '^FAIL ' "$out")
    s=$(grep -c '^skip: ' "$out")
    grep '^skip: ' "$out"
    grep '^FAIL ' "$out" | sed "s/^/$name: /"
    pass=$((pass + p)); skip=$((skip + s))
    fail=$((fail + f))
    [ "$f" -gt 0 ] && failed_names+=("$name")
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
      echo "FAIL $name: exited $rc without a FAIL line"; tail -5 "$TMP/$name.err"
      note_fail "$name"
    fi
    if [ $rc -eq 0 ] && [ "$p" -eq 0 ] && [ "$s" -eq 0 ]; then
      echo "FAIL $name: ran no check"; note_fail "$name"
    fi
  done
}

# ---- CLI tests --------------------------------------------------------------------------------
# A .t file holds cases separated by blank lines. Lines of a case:
#   # name: text      the case's name (first line); other '#' lines are comments
#   $ command         bash command run in the repo root (one line; may use $HASS_DATA, $TMP)
#   < line            a line of standard input (none: stdin is empty)
#   > line            expected stdout line; all '>' lines together must equal stdout exactly
#   ~ regex           stdout must contain a line matching the extended regex
#   ! regex           stderr must contain a line matching the extended regex
#   = N               expected exit code (default 0)
#   @needs PATH       skip the case unless PATH exists (e.g. $HASS_MODELS/...)
run_case() {
  local file=$1; shift
  local name="" cmd="" code=0 needs=() have_out=0
  local -a stdin=() out=() outre=() errre=()
  local line
  for line in "$@"; do
    case "$line" in
      "# name: "*) name=${line#\# name: } ;;
      "#"*) ;;
      "\$ "*) cmd=${line#\$ } ;;
      "<"*) stdin+=("${line#< }") ;;
      ">"*) out+=("${line#> }"); have_out=1; [ "$line" = ">" ] && out[-1]="" ;;
      "~ "*) outre+=("${line#\~ }") ;;
      "! "*) errre+=("${line#! }") ;;
      "= "*) code=${line#= } ;;
      "@needs "*) needs+=("${line#@needs }") ;;
    esac
  done
  [ -z "$cmd" ] && return
  [ -z "$name" ] && name=$cmd
  name="$(basename "$file" .t): $name"
  [ -n "$PAT" ] && [[ "$name" != *$PAT* ]] && return
  for n in "${needs[@]+"${needs[@]}"}"; do
    n=$(eval echo "$n")
    if [ ! -e "$n" ]; then echo "skip: $name (needs $n)"; skip=$((skip + 1)); return; fi
  done
  if [ ${#stdin[@]} -gt 0 ]; then printf '%s\n' "${stdin[@]}" >"$TMP/in"; else : >"$TMP/in"; fi
  (cd "$ROOT" && bash -c "$cmd") <"$TMP/in" >"$TMP/out" 2>"$TMP/err"
  local rc=$? why=""
  [ "$rc" != "$code" ] && why="exit $rc, expected $code"
  if [ -z "$why" ] && [ $have_out = 1 ]; then
    printf '%s\n' "${out[@]}" >"$TMP/want"
    if ! cmp -s "$TMP/want" "$TMP/out"; then why="stdout differs:
$(diff "$TMP/want" "$TMP/out" | head -20)"; fi
  fi
  for re in "${outre[@]+"${outre[@]}"}"; do
    [ -z "$why" ] && ! grep -Eq -- "$re" "$TMP/out" && why="stdout has no line matching /$re/"
  done
  for re in "${errre[@]+"${errre[@]}"}"; do
    [ -z "$why" ] && ! grep -Eq -- "$re" "$TMP/err" && why="stderr has no line matching /$re/"
  done
  if [ -z "$why" ]; then
    pass=$((pass + 1))
  else
    echo "FAIL $name: $why"
    echo "  \$ $cmd"; sed 's/^/  stderr: /' "$TMP/err" | head -5
    note_fail "$name"
  fi
}

run_cli() {
  for f in tests/cli/*.t; do
    [ -e "$f" ] || continue
    local -a case_lines=()
    while IFS= read -r line || [ -n "$line" ]; do
      if [ -z "$line" ]; then
        [ ${#case_lines[@]} -gt 0 ] && run_case "$f" "${case_lines[@]}"
        case_lines=()
      else
        case_lines+=("$line")
      fi
    done <"$f"
    [ ${#case_lines[@]} -gt 0 ] && run_case "$f" "${case_lines[@]}"
  done
}

# ---- end-to-end tests -------------------------------------------------------------------------
run_e2e() {
  for t in tests/e2e/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    [ -n "$PAT" ] && [[ "$name" != *$PAT* ]] && continue
    BUILD=$BUILD bash "$t" >"$TMP/e2e.out" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then pass=$((pass + 1))
    elif [ $rc -eq 77 ]; then echo "skip: e2e $name ($(tail -1 "$TMP/e2e.out"))"; skip=$((skip + 1))
    else echo "FAIL e2e $name (exit $rc):"; tail -15 "$TMP/e2e.out" | sed 's/^/  /'; note_fail "e2e $name"
    fi
  done
}

# ---- fuzz targets: regression inputs, then a few seconds each (tests/fuzz/run.sh) -------------
run_fuzz() {
  if [ -n "$PAT" ]; then # build the fuzz targets only when T= names one of them
    local f any=0
    for f in tests/fuzz/fuzz_*.c; do f=$(basename "$f" .c); [[ "$f" == *$PAT* ]] && any=1; done
    [ $any = 1 ] || return 0
  fi
  BUILD=$BUILD PAT=$PAT bash tests/fuzz/run.sh short >"$TMP/fuzz.out" 2>&1
  grep -E '^(skip: |FAIL )' "$TMP/fuzz.out"; grep -A8 '^FAIL ' "$TMP/fuzz.out" | grep -v '^FAIL '
  pass=$((pass + $(grep -c '^ok ' "$TMP/fuzz.out"))); skip=$((skip + $(grep -c '^skip: ' "$TMP/fuzz.out")))
  while read -r _ n _; do note_fail "${n%:}"; done < <(grep '^FAIL ' "$TMP/fuzz.out")
}

t0=$(date +%s)
for g in $GROUPS_; do
  case $g in
    unit) run_unit ;;
    cli) run_cli ;;
    e2e) run_e2e ;;
    fuzz) run_fuzz ;;
  esac
done
echo "($((($(date +%s) - t0)))s; $skip skipped${failed_names[*]:+; failed: ${failed_names[*]}})"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
