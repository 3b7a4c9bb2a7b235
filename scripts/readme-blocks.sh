#!/usr/bin/env bash
# readme-blocks.sh [N] [FILE]: print the Nth ```sh block of the README (default FILE README.md),
# byte for byte; with no N, the number of such blocks. .ci/run and tests/e2e/readme.sh run the
# README's commands through this, so what they run is what a user pastes.
set -eu
n=${1:-} f=${2:-README.md}
awk -v want="$n" '
  /^```sh[[:space:]]*$/ { inb = 1; k++; next }
  /^```[[:space:]]*$/ && inb { inb = 0; next }
  inb && want != "" && k == want { print }
  END { if (want == "") print k }' "$f"
