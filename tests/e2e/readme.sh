#!/usr/bin/env bash
# readme.sh: the README's commands work as written (the set-up + main job line and the
# two-process line), run against the binaries of this build; `make models all` is taken as done.
# The main line's speculative text must equal plain decoding's (the same line without --draft).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ] || { echo "needs models/SmolLM2-135M-Instruct.Q4_1.gguf (make models)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
main=$(grep -m1 '^make models all && ' README.md)
spec=$(grep -m1 'build/bin/hass-draft -m $M -d ' README.md)
[ -n "$main" ] && [ -n "$spec" ] || { echo "README commands not found"; exit 1; }
run() { # run CMD: the README line with this build's binaries and a private head folder
  local c=${1//build\/bin\//$BUILD/bin/}
  c=${c//\/tmp\/head/$tmp/head}
  c=${c/make models all && /}
  (export M=models/SmolLM2-135M-Instruct.Q4_1.gguf; bash -c "$c")
}
out=$(run "$main") || { echo "main command failed"; exit 1; }
echo "$out"
echo "$out" | grep -q '"finish":"eos"\|"finish":"length"' || { echo "no finished record"; exit 1; }
echo "$out" | grep -q '"text":"' || { echo "no text"; exit 1; }
plain=$(run "${main/--draft heads\/smollm2-135m-instruct --tree auto /}") || { echo "plain command failed"; exit 1; }
[ "$(echo "$out" | jq -r .text)" = "$(echo "$plain" | jq -r .text)" ] || { echo "speculative text differs from plain decoding"; exit 1; }
out2=$(run "M=models/SmolLM2-135M-Instruct.Q4_1.gguf; $spec") || { echo "two-process command failed"; exit 1; }
echo "$out2"
echo "$out2" | grep -q '"text":"' || { echo "no text from the speculative line"; exit 1; }
