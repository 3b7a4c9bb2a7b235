#!/usr/bin/env bash
# examples/fanout.sh: shard a JSONL file across P processes and merge the results in input order.
#   usage: examples/fanout.sh -P PROCS -i INPUT.jsonl -o OUTPUT.jsonl -- COMMAND...
# Each record gets a sequence number ("_seq"), the file is split into P shards by line, every
# shard runs through COMMAND (a pipeline string run by bash, reading stdin and writing stdout)
# in parallel with xargs -P (or GNU parallel when installed and FANOUT_PARALLEL=1), and the
# outputs are merged by "_seq" and the key removed. hass-verify seeds each record from its "id",
# so the merged output equals one process's output. Example:
#   examples/fanout.sh -P 2 -i prompts.jsonl -o out.jsonl -- \
#     'hass-tokenize -m M | hass-verify -m M --threads 1 | hass-detok -m M'
# When to use which: on one machine, prefer one process with hass-verify --batch N (N records
# per forward, one copy of the weights read once per step for all of them: more tokens/s than P
# processes that each hold and stream their own copy; same output). Use -P to spread over
# machines, sockets or GPUs, and both (-P 2 with --batch N in COMMAND) when one process cannot
# keep the cores busy. --batch N also takes --draft HEAD (in process: each record its own tree,
# one forward for all); the two-process hass-draft pipeline decodes one record at a time.
# Memory: each hass-verify holds the weights once and, with --batch N, N caches of its context
# (with --draft, also N drafter states).

set -o pipefail
P=2 IN="" OUTF=""
while [ $# -gt 0 ]; do
  case $1 in
    -P) P=$2; shift 2 ;;
    -i) IN=$2; shift 2 ;;
    -o) OUTF=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
CMD=$*
[ -n "$IN" ] && [ -n "$OUTF" ] && [ -n "$CMD" ] || { echo "$0: -i, -o and a command are required" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/fanout.XXXXXX")
trap 'rm -rf "$W"' EXIT
jq -c '{_seq: input_line_number} + .' "$IN" | split -n "r/$P" -d - "$W/shard." || exit 1
export CMD
run_shard='bash -c "$CMD" <"$1" >"$1.out"'
if [ "${FANOUT_PARALLEL:-0}" = 1 ] && command -v parallel >/dev/null; then
  ls "$W"/shard.?? | parallel -j "$P" bash -c "'$run_shard'" _ {}
else
  ls "$W"/shard.?? | xargs -P "$P" -I{} bash -c "$run_shard" _ {}
fi
rc=$?
cat "$W"/shard.??.out | jq -sc 'sort_by(._seq)[] | del(._seq)' >"$OUTF" || exit 1
[ $rc -eq 0 ] || echo "$0: some shard failed (exit $rc)" >&2
exit $rc
