#!/usr/bin/env bash
# deps.sh: install the Debian packages hass needs to build and test (`make deps`): pkg-config,
# libjansson-dev, zlib1g-dev, jq, and python3-pip where pip is missing (only to fetch models).
# As root it runs apt-get; otherwise through sudo when sudo works without a prompt or on a
# terminal; otherwise it prints the one apt-get line to run and exits 1. Quiet when all is there.
set -u
need=()
have_pc() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1" 2>/dev/null; }
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
have_pc jansson || need+=(libjansson-dev)
have_pc zlib || need+=(zlib1g-dev)
command -v jq >/dev/null 2>&1 || need+=(jq)
PY=${PYTHON:-python3}
"$PY" -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
[ ${#need[@]} -eq 0 ] && { echo "deps: all present (pkg-config, jansson, zlib, jq, pip)" >&2; exit 0; }
line="apt-get install -y ${need[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: missing ${need[*]}, and this is not a Debian or Ubuntu system (no apt-get): install them with your package manager" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
  run=(sudo)
else
  echo "deps: missing ${need[*]}; not root and no sudo: run as root: $line" >&2
  exit 1
fi
echo "deps: installing ${need[*]} (${run[*]:+${run[*]} }$line)" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp "${TMPDIR:-/tmp}/hass-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
# the package lists may be missing (a fresh image) or stale: update once, then install
if ! "${run[@]}" apt-get update -qq >"$log" 2>&1; then
  echo "deps: apt-get update failed (no route to Debian's package archive?: $(grep -m1 -iE 'err|fail|could not' "$log" || tail -n1 "$log")); fix the network or apt sources, then run: ${run[*]:+${run[*]} }$line" >&2
  exit 1
fi
if ! "${run[@]}" apt-get install -y -qq "${need[@]}" >"$log" 2>&1; then
  echo "deps: apt-get install failed ($(grep -m1 -E '^E:' "$log" || tail -n1 "$log")); fix that, then run: ${run[*]:+${run[*]} }$line" >&2
  exit 1
fi
echo "deps: installed ${need[*]}" >&2
