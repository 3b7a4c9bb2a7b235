#!/usr/bin/env bash
# tests/man-lint.sh: `make check`: lint every man page with mandoc -Tlint (warnings and worse;
# style notes such as long source lines are ignored), else groff -man -ww -z, else skip.
cd "$(dirname "$0")/.."
pages=(man/*.[1-9])
[ -e "${pages[0]}" ] || { echo "man-lint: no man pages"; exit 0; }
if command -v mandoc >/dev/null; then
  out=$(mandoc -Tlint -W warning "${pages[@]}" 2>&1)
elif command -v groff >/dev/null; then
  out=$(for p in "${pages[@]}"; do groff -man -ww -z "$p" 2>&1 | sed "s|^|$p: |"; done)
else
  echo "man-lint: neither mandoc nor groff installed: skipped"; exit 0
fi
if [ -n "$out" ]; then echo "$out"; echo "man-lint: ${#pages[@]} pages, problems above"; exit 1; fi
echo "man-lint: ${#pages[@]} pages clean"
