#!/usr/bin/env bash
# scripts/bench-spec.sh: benchmark (not a test) of speculative decoding on MT-bench first turns
# at T = 0 with SmolLM2-135M-Instruct: plain decoding (AR), the paper's fixed tree (60 tokens,
# depth 6, top-k 10) and --tree auto, all in one session on the same machine, each the same
# engine. Prints tau, tokens/s and the speedup over AR (hass-stats conventions).
#   usage: scripts/bench-spec.sh [HEAD] [N_QUESTIONS] [MAX_NEW] [THREADS]
# HEAD defaults to a random head made on the fly (tau ~1: it measures the machinery's cost,
# not a trained head's acceptance). Run it on a quiet machine; numbers from a loaded one are
# not comparable.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
PATH="$BUILD/bin:$PATH"
DATA=${HASS_DATA:-../shared/data}
M=${HASS_MODELS:-models}/SmolLM2-135M-Instruct.Q4_1.gguf
HEAD=${1:-}
NQ=${2:-10}
MAXNEW=${3:-128}
THREADS=${4:-0}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/hass-bench-spec.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
[ -e "$M" ] || { echo "bench-spec: $M missing (make models)" >&2; exit 1; }
if [ -z "$HEAD" ]; then
  HEAD=$OUT/random-head
  hass-draft -m "$M" --init-random "$HEAD" -s 1
fi
head -n "$NQ" "$DATA/mt_bench/question.jsonl" |
  jq -c '{id: .question_id, messages: [{role: "user", content: .turns[0]}]}' |
  hass-tokenize -m "$M" > "$OUT/prompts.jsonl"
run() { # name, extra flags...
  local name=$1; shift
  hass-verify -m "$M" -n "$MAXNEW" --threads "$THREADS" --metrics "$OUT/$name.metrics" "$@" \
    "$OUT/prompts.jsonl" | jq -c '[.id, .generated]' > "$OUT/$name.out"
}
run ar
run fixed --draft "$HEAD" --tree-total 60 --tree-depth 6 --tree-topk 10
run auto --draft "$HEAD" --tree auto -v 2> "$OUT/auto.log"
for v in fixed auto; do
  if cmp -s "$OUT/ar.out" "$OUT/$v.out"; then echo "$v: output identical to AR (lossless)"
  else echo "$v: OUTPUT DIFFERS FROM AR" >&2; fi
done
printf '%-6s %-7s %-9s %s\n' mode tau tok/s speedup
for v in ar fixed auto; do
  hass-stats --json --ar "$OUT/ar.metrics" "$OUT/$v.metrics" |
    jq -r --arg v "$v" '"\($v)\t\(.tau*1000|round/1000)\t\(.tok_s*100|round/100)\t\(.speedup*1000|round/1000)"'
done
grep "tree auto" "$OUT/auto.log" | tail -5 >&2 || true
