#!/usr/bin/env bash
# tests/man-examples.sh: runs the EXAMPLES of the man pages (every .EX/.EE block) as tests.
#   usage: tests/man-examples.sh [man/PAGE ...]     (default: every page in man/)
# In a block, a line "$ command" is run with bash in a scratch folder; the lines after it, up to
# the next "$ " line or the end of the block, are its expected stdout (compared exactly; a line
# "..." ends the comparison, "[exit N]" gives the expected exit status, default 0). Blocks
# without "$ " lines (layouts, tables) are not run. Roff escapes are undone first (\e \- \(aq
# \(dq \&). A comment line `.\" needs FILE` before a block skips it unless FILE exists in the
# scratch folder; `.\" no-run` skips the next block.
# The scratch folder holds: stories260K.gguf, SmolLM2-135M-Instruct.Q4_1.gguf (when fetched),
# data/ (the shared data folder) and examples/ (the repo's examples).
# Prints "ok man <page>:<line>", "FAIL man <page>:<line>: ..." or "skip: man <page>:<line> (why)";
# exits 1 when something failed.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
export PATH="$ROOT/$BUILD/bin:$PATH"
export LC_ALL=C
HASS_DATA=${HASS_DATA:-../shared/data}
HASS_DATA=$(cd "$HASS_DATA" 2>/dev/null && pwd || echo "$HASS_DATA")
export HASS_DATA
HASS_MODELS=${HASS_MODELS:-$ROOT/models}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hass-man.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
n_ok=0 n_fail=0 n_skip=0

# Undo the roff escapes used in examples.
unroff() {
  sed -e 's/\\(aq/'"'"'/g' -e 's/\\(dq/"/g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\(ti/~/g' \
      -e 's/\\e/\\/g'
}

# Fresh scratch folder with the fixture files.
scratch() {
  rm -rf "$WORK/s"; mkdir -p "$WORK/s"
  ln -s "$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf" "$WORK/s/stories260K.gguf"
  [ -e "$HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf" ] &&
    ln -s "$HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf" "$WORK/s/SmolLM2-135M-Instruct.Q4_1.gguf"
  ln -s "$HASS_DATA" "$WORK/s/data"
  ln -s "$ROOT/examples" "$WORK/s/examples"
}

# Run one command and compare its stdout with the expected lines in $WORK/want.
run_cmd() {
  local page=$1 line=$2 cmd=$3 code=$4 partial=$5
  local where="man $(basename "$page"):$line"
  (cd "$WORK/s" && bash -c "$cmd") >"$WORK/out" 2>"$WORK/err" </dev/null
  local rc=$?
  if grep -q "not built yet" "$WORK/err"; then
    echo "skip: $where (a tool it needs is not built yet)"; n_skip=$((n_skip + 1)); return
  fi
  local why=""
  [ "$rc" != "$code" ] && why="exit $rc, expected $code"
  if [ -z "$why" ] && [ -s "$WORK/want" ]; then
    local n; n=$(wc -l <"$WORK/want")
    if [ "$partial" = 1 ]; then head -n "$n" "$WORK/out" >"$WORK/got"; else cp "$WORK/out" "$WORK/got"; fi
    cmp -s "$WORK/want" "$WORK/got" || why="stdout differs:
$(diff "$WORK/want" "$WORK/got" | head -10)"
  fi
  if [ -z "$why" ]; then
    echo "ok $where"; n_ok=$((n_ok + 1))
  else
    echo "FAIL $where: $why"; echo "  \$ $cmd"; sed 's/^/  stderr: /' "$WORK/err" | head -5
    n_fail=$((n_fail + 1))
  fi
}

# Run the examples of one page.
run_page() {
  local page=$1 ln=0 in_ex=0 need="" norun=0 cmd="" cmd_line=0 code=0 partial=0 raw line
  scratch
  while IFS= read -r raw || [ -n "$raw" ]; do
    ln=$((ln + 1))
    if [ $in_ex = 0 ]; then
      case "$raw" in
        '.\" needs '*) need=${raw#.\\\" needs } ;;
        '.\" no-run'*) norun=1 ;;
        .EX*) in_ex=1; cmd="" ;;
      esac
      continue
    fi
    if [[ "$raw" == .EE* ]]; then
      [ -n "$cmd" ] && run_cmd "$page" "$cmd_line" "$cmd" "$code" "$partial"
      in_ex=0; need=""; norun=0; cmd=""
      continue
    fi
    line=$(printf '%s\n' "$raw" | unroff)
    if [[ "$line" == '$ '* ]]; then
      [ -n "$cmd" ] && run_cmd "$page" "$cmd_line" "$cmd" "$code" "$partial"
      cmd=${line#\$ }; cmd_line=$ln; code=0; partial=0; : >"$WORK/want"
      if [ $norun = 1 ]; then
        echo "skip: man $(basename "$page"):$ln (no-run)"; n_skip=$((n_skip + 1)); cmd=""
      elif [ -n "$need" ] && [ ! -e "$WORK/s/$need" ]; then
        echo "skip: man $(basename "$page"):$ln (needs $need)"; n_skip=$((n_skip + 1)); cmd=""
      fi
      continue
    fi
    [ -z "$cmd" ] && continue
    if [[ "$line" =~ ^\[exit\ ([0-9]+)\]$ ]]; then code=${BASH_REMATCH[1]}
    elif [ "$line" = "..." ]; then partial=1
    elif [ $partial = 0 ]; then printf '%s\n' "$line" >>"$WORK/want"
    fi
  done <"$page"
}

pages=("$@")
[ ${#pages[@]} -eq 0 ] && pages=(man/*.[1-9])
for p in "${pages[@]}"; do
  [ -e "$p" ] && run_page "$p"
done
echo "man examples: $n_ok ok, $n_fail failed, $n_skip skipped"
[ $n_fail -eq 0 ]
