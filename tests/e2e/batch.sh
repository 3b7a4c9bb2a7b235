#!/usr/bin/env bash
# batch.sh: hass-verify --batch N gives, record by record, exactly the output of --batch 1 on
# stories260K (N = 2, 3, 8; whole JSONL compared, "timing" removed): greedy and seeded sampling
# with top-p and stop strings, --stream (each record's deltas), --margins, --metrics; bad records
# in the middle (their error records, in place) and records of very different lengths, more
# than N of them (continuous batching); --finish-order writes a short record before a long one
# started earlier; a slow producer's first record is answered before its second is sent;
# --draft --batch N (a random head, a fixed tree) == --draft --batch 1 greedy, seeded with stops
# and --stream, and greedy == plain decoding; --tree auto --batch greedy == plain decoding.
cd "$(dirname "$0")/../.."
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
[ -f "$M" ] || { echo "stories260K not present"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/batch-test.XXXXXX"); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 24 records: prompts of 1 to 40 tokens, max_new from 1 to 60, and bad ones in the middle
for i in $(seq 24); do
  n=$(( (i * 7) % 40 + 1 )); toks=1
  for j in $(seq 2 $n); do toks="$toks,$(( (i * 31 + j * 17) % 500 + 3 ))"; done
  case $i in
    5) echo '{"id":5,"tokens":[1,99999]}' ;;              # an id outside the vocabulary
    9) echo 'not json' ;;                                 # a malformed line
    12) echo '{"id":12,"tokens":[]}' ;;                   # an empty prompt
    15) echo '{"id":15,"error":"failed upstream"}' ;;     # an upstream error record
    17) echo '{"id":17,"tokens":[1],"max_new":-1}' ;;     # a bad per-record key
    20) echo "{\"id\":20,\"tokens\":[$(seq -s, 1 70)]}" ;; # longer than --ctx 64
    *) echo "{\"id\":$i,\"tokens\":[$toks],\"max_new\":$(( (i * 13) % 60 + 1 ))}" ;;
  esac
done >"$T/in.jsonl"

# run NAME N ARGS...: hass-verify --batch N over the input, "timing" dropped, exit code kept
run() {
  local name=$1 n=$2; shift 2
  hass-verify -m "$M" --ctx 64 --threads 2 --batch "$n" "$@" "$T/in.jsonl" >"$T/raw.$name.$n" 2>"$T/err.$name.$n"
  echo $? >"$T/rc.$name.$n"
  jq -c 'del(.timing)' "$T/raw.$name.$n" >"$T/out.$name.$n" || fail "$name --batch $n: output is not JSONL"
}
MODES=(greedy sampled stream margins)
args_of() {
  case $1 in
    greedy) echo "-n 40" ;;
    sampled) echo "-t 1.2 --top-p 0.9 -s 7 -n 40 --stop Lily --stop was" ;;
    stream) echo "-t 0.9 -s 3 -n 40 --stream" ;;
    margins) echo "-n 20 --margins" ;;
  esac
}
for mode in "${MODES[@]}"; do
  for n in 1 2 3 8; do run "$mode" $n $(args_of $mode); done
  [ "$(cat "$T/rc.$mode.1")" = 3 ] || fail "$mode: exit $(cat "$T/rc.$mode.1") with bad records, not 3"
  for n in 2 3 8; do
    [ "$(cat "$T/rc.$mode.$n")" = 3 ] || fail "$mode --batch $n: exit $(cat "$T/rc.$mode.$n")"
    if [ $mode = stream ]; then # deltas of records in flight interleave: compare per record
      jq -c 'select(.type != "delta")' "$T/out.$mode.1" >"$T/a"
      jq -c 'select(.type != "delta")' "$T/out.$mode.$n" >"$T/b"
      cmp -s "$T/a" "$T/b" || { diff "$T/a" "$T/b" | head; fail "$mode --batch $n: records differ"; }
      for f in 1 $n; do jq -sc 'map(select(.type == "delta")) | group_by(.id) | map([.[0].id, map(.tokens[])])' "$T/out.$mode.$f" >"$T/d.$f"; done
      cmp -s "$T/d.1" "$T/d.$n" || fail "$mode --batch $n: deltas differ"
    else
      cmp -s "$T/out.$mode.1" "$T/out.$mode.$n" || { diff "$T/out.$mode.1" "$T/out.$mode.$n" | head; fail "$mode --batch $n differs from --batch 1"; }
    fi
  done
done
# the cases are not empty: 18 answers, 6 error records in place, lengths that differ, samples
# that differ from greedy, a stop string that matched, deltas that add up to each record
o=$T/out.greedy.1
[ "$(jq -c 'select(.generated)' "$o" | wc -l)" = 18 ] || fail "answers: $(jq -c 'select(.generated)' "$o" | wc -l)"
[ "$(jq -r 'select(.error) | .id // .line' "$o" | tr '\n' ' ')" = "5 9 12 15 17 20 " ] || fail "error records: $(jq -r 'select(.error) | .id // .line' "$o" | tr '\n' ' ')"
[ "$(jq -r '.id // .line' "$o" | tr '\n' ' ')" = "$(seq -s ' ' 24) " ] || fail "order: $(jq -r '.id // .line' "$o" | tr '\n' ' ')"
[ "$(jq -r 'select(.generated) | .generated | length' "$o" | sort -un | wc -l)" -ge 8 ] || fail "lengths do not vary"
cmp -s <(jq -c .generated "$o") <(jq -c .generated "$T/out.sampled.1") && fail "sampling gave the greedy output"
grep -q '"stop":"' "$T/out.sampled.1" || fail "no stop string matched"
[ "$(jq -c 'select(.margins) | (.margins | length) == (.generated | length)' "$T/out.margins.1" | sort -u)" = true ] || fail "margins"
jq -sc 'map(select(.type == "delta")) | group_by(.id) | map([.[0].id, map(.tokens[])])' "$T/out.stream.1" >"$T/dd"
jq -sc 'map(select(.generated and (.generated | length) > 0)) | sort_by(.id) | map([.id, .generated])' "$T/out.stream.1" >"$T/gg"
cmp -s "$T/dd" "$T/gg" || fail "deltas do not add up to the records"

# --metrics: one request record per answer, the same counts as --batch 1
for n in 1 3; do
  hass-verify -m "$M" --ctx 64 --batch $n -n 10 --metrics "$T/m.$n" "$T/in.jsonl" >/dev/null 2>&1
  jq -c 'select(.type == "request") | [.id, .generated]' "$T/m.$n" | sort >"$T/ms.$n"
done
[ "$(wc -l <"$T/ms.1")" = 18 ] && cmp -s "$T/ms.1" "$T/ms.3" || fail "metrics differ: $(diff "$T/ms.1" "$T/ms.3" | head -3)"

# --finish-order: a long record started first ends after the short ones behind it; in input
# order the long one comes first; the records themselves are the same
printf '{"id":"long","tokens":[1],"max_new":50}\n{"id":"s1","tokens":[1,403],"max_new":2}\n{"id":"s2","tokens":[1,407],"max_new":3}\n' >"$T/fo.jsonl"
ord=$(hass-verify -m "$M" -n 50 --batch 3 --finish-order "$T/fo.jsonl" 2>/dev/null | jq -r .id | tr '\n' ' ')
[ "$ord" = "s1 s2 long " ] || fail "--finish-order wrote $ord"
ord=$(hass-verify -m "$M" -n 50 --batch 3 "$T/fo.jsonl" 2>/dev/null | jq -r .id | tr '\n' ' ')
[ "$ord" = "long s1 s2 " ] || fail "input order wrote $ord"

# more records than the reorder buffer behind one long record: all in order, as one at a time
{ echo '{"id":0,"tokens":[1],"max_new":60}'; for i in $(seq 30); do echo "{\"id\":$i,\"tokens\":[1,$((300 + i))],\"max_new\":2}"; done; } >"$T/many.jsonl"
hass-verify -m "$M" -n 60 --batch 2 "$T/many.jsonl" 2>/dev/null | jq -c 'del(.timing)' >"$T/many.2"
hass-verify -m "$M" -n 60 "$T/many.jsonl" 2>/dev/null | jq -c 'del(.timing)' >"$T/many.1"
cmp -s "$T/many.1" "$T/many.2" || fail "a long record ahead of 30 short ones: output differs"

# a slow producer: the first record is answered before the second is sent (the records in
# flight decode on while the input has nothing new; they do not wait for N records)
mkfifo "$T/fifo"
hass-verify -m "$M" -n 20 --batch 4 <"$T/fifo" >"$T/slow.out" 2>/dev/null &
exec 3>"$T/fifo"
echo '{"id":"a","tokens":[1,403]}' >&3
for i in $(seq 600); do [ -s "$T/slow.out" ] && break; sleep 0.1; done
got=$(wc -l <"$T/slow.out")
echo '{"id":"b","tokens":[1,407]}' >&3
exec 3>&-
wait
[ "$got" = 1 ] || fail "--batch 4 with a slow producer: $got records out before the second came in"
[ "$(jq -r .id "$T/slow.out" | tr '\n' ' ')" = "a b " ] || fail "slow producer: $(cat "$T/slow.out")"

# --draft with --batch (a random head, a fixed tree): record by record the output of --draft
# --batch 1, greedy (also plain decoding's), seeded with top-p and stop strings, --stream; the
# bad records' error records in place; the head's drafts were accepted at times (a cycle that
# accepts nothing would pass through a broken tree unseen)
hass-draft -m "$M" --init-random "$T/h" -s 5 >/dev/null || fail "hass-draft --init-random"
D="--draft $T/h --tree-total 12 --tree-depth 3 --tree-topk 3"
for mode in greedy sampled stream; do
  for n in 1 3 8; do run "spec-$mode" $n $D $(args_of $mode); done
  for n in 1 3 8; do [ "$(cat "$T/rc.spec-$mode.$n")" = 3 ] || fail "--draft $mode --batch $n: exit $(cat "$T/rc.spec-$mode.$n")"; done
  for n in 3 8; do
    a=$T/out.spec-$mode.1 b=$T/out.spec-$mode.$n
    if [ $mode = stream ]; then
      cmp -s <(jq -c 'select(.type != "delta")' "$a") <(jq -c 'select(.type != "delta")' "$b") || fail "--draft stream --batch $n: records differ"
      for f in "$a" "$b"; do jq -sc 'map(select(.type == "delta")) | group_by(.id) | map([.[0].id, map(.tokens[])])' "$f"; done | uniq | wc -l | grep -qx 1 || fail "--draft stream --batch $n: deltas differ"
    else
      cmp -s "$a" "$b" || { diff "$a" "$b" | head -4; fail "--draft $mode --batch $n differs from --draft --batch 1"; }
    fi
  done
done
cmp -s "$T/out.spec-greedy.1" "$T/out.greedy.1" || fail "--draft greedy differs from plain greedy"
cmp -s "$T/out.spec-sampled.1" "$T/out.sampled.1" && fail "--draft sampled: the plain draws (the tree should change them)"
grep -q '"stop":"' "$T/out.spec-sampled.1" || fail "--draft: no stop string matched"
[ "$(jq -c 'select(.generated)' "$T/out.spec-sampled.1" | wc -l)" = 18 ] || fail "--draft: not 18 answers"
hass-verify -m "$M" --ctx 64 --batch 3 $D $(args_of sampled) --metrics "$T/sm" "$T/in.jsonl" >/dev/null 2>&1
[ "$(jq -s 'map(select(.type == "cycle") | .accepted) | add' "$T/sm")" -gt 0 ] || fail "--draft --batch: no draft token accepted"
[ "$(jq -c 'select(.type == "request")' "$T/sm" | wc -l)" = 18 ] || fail "--draft --batch --metrics: request records"
# --tree auto with --batch: trees follow the timings, so only greedy compares (with plain)
run spec-auto 4 --draft "$T/h" --tree auto $(args_of greedy)
cmp -s "$T/out.spec-auto.4" "$T/out.greedy.1" || fail "--tree auto --batch 4 differs from plain greedy"
# --margins stays plain only
hass-verify -m "$M" --batch 2 --draft "$T/h" --margins "$T/fo.jsonl" >/dev/null 2>"$T/e"
[ $? = 2 ] && grep -q -- "--margins: plain decoding only" "$T/e" || fail "--draft --batch --margins: $(cat "$T/e")"
echo "--batch 2, 3, 8 == --batch 1 in 4 modes over 24 records (6 bad), finish order, metrics;"
echo "--draft --batch 3, 8 == --draft --batch 1 in 3 modes, --tree auto greedy == plain"
