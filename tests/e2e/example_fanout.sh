#!/usr/bin/env bash
# example_fanout.sh: examples/fanout.sh with 3 processes gives, in input order, exactly the
# records of one process (sampling at temperature 1: seeds follow the record ids).
cd "$(dirname "$0")/../.."
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
T=$(mktemp -d "${TMPDIR:-/tmp}/fanout-test.XXXXXX"); trap 'rm -rf "$T"' EXIT
for i in $(seq 10); do echo "{\"id\":\"p$i\",\"text\":\"Once upon a time $i\",\"n\":$i}"; done >"$T/in.jsonl"
PIPE="hass-tokenize -m $M | hass-verify -m $M -t 1 -s 4 -n 12 --threads 1 | hass-detok -m $M"
examples/fanout.sh -P 3 -i "$T/in.jsonl" -o "$T/fan.jsonl" -- "$PIPE" || { echo "fanout failed"; exit 1; }
bash -c "$PIPE" <"$T/in.jsonl" >"$T/one.jsonl" || { echo "single run failed"; exit 1; }
jq -c 'del(.timing)' "$T/fan.jsonl" >"$T/a"; jq -c 'del(.timing)' "$T/one.jsonl" >"$T/b"
[ "$(jq -r .id "$T/a" | tr '\n' ' ')" = "p1 p2 p3 p4 p5 p6 p7 p8 p9 p10 " ] || { echo "order:"; cat "$T/a"; exit 1; }
cmp "$T/a" "$T/b" || { diff "$T/a" "$T/b" | head; exit 1; }
[ "$(jq -r .text "$T/a" | sort -u | wc -l)" -ge 5 ] || { echo "samples do not differ across records"; exit 1; }
echo "10 records through 3 shards == one process"
