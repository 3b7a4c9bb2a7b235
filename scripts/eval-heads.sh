#!/usr/bin/env bash
# eval-heads.sh: tau and per-depth acceptance of draft heads on MT-bench first turns (not in the
# training data), through the speculative pipeline (hass-tokenize | hass-verify --draft), at each
# temperature, with the paper's tree (60 tokens, depth 6, top-k 10). Also runs plain decoding
# (AR) once per temperature and checks that T = 0 speculative output equals it token for token.
#   usage: scripts/eval-heads.sh NAME=HEAD_DIR [NAME=HEAD_DIR ...]
# Environment: NQ questions (20: every 4th of the 80, so all 8 categories appear; OFFSET shifts
# the pick, e.g. NQ=10 OFFSET=4 takes the ten that NQ=10 leaves out), MAXNEW (128),
# TEMPS ("0 1"), SEED (1), THREADS (all cores), TREE (hass-verify tree flags, default the
# paper's), OUT (runs/eval). Prints a Markdown table; metrics stay in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin}
M=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${HASS_DATA:-../shared/data}
NQ=${NQ:-20} OFFSET=${OFFSET:-0} MAXNEW=${MAXNEW:-128} SEED=${SEED:-1} OUT=${OUT:-runs/eval}
read -r -a TEMPS <<<"${TEMPS:-0 1}"
read -r -a TREE <<<"${TREE:---tree-total 60 --tree-depth 6 --tree-topk 10}"
thr=()
[ -n "${THREADS:-}" ] && thr=(--threads "$THREADS")
[ $# -gt 0 ] || { sed -n '2,/^set/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
mkdir -p "$OUT"
step=$((80 / NQ))
jq -c --argjson s "$step" --argjson o "$OFFSET" 'select((.question_id - 81 - $o) % $s == 0) |
       {id: .question_id, messages: [{role: "user", content: .turns[0]}]}' \
  "$DATA/mt_bench/question.jsonl" | head -n "$NQ" | "$BIN/hass-tokenize" -m "$M" >"$OUT/prompts.jsonl"

# run NAME TEMP [hass-verify flags]: generated ids of every record to OUT/NAME-tT.out
run() {
  local name=$1 t=$2
  shift 2
  "$BIN/hass-verify" -m "$M" -n "$MAXNEW" -t "$t" -s "$SEED" "${thr[@]}" \
    --metrics "$OUT/$name-t$t.metrics" "$@" "$OUT/prompts.jsonl" |
    jq -c '[.id, .generated]' >"$OUT/$name-t$t.out"
}

echo "| head | T | tau | accept@1..6 | tree | draft ms | verify ms | tok/s | AR tok/s | T=0 output = AR |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for t in "${TEMPS[@]}"; do
  run ar "$t"
  ar_tps=$("$BIN/hass-stats" --json "$OUT/ar-t$t.metrics" | jq '.tok_s * 10 | round / 10')
  for spec in "$@"; do
    name=${spec%%=*} dir=${spec#*=}
    run "$name" "$t" --draft "$dir" "${TREE[@]}"
    same=-
    if [ "$t" = 0 ]; then
      cmp -s "$OUT/ar-t0.out" "$OUT/$name-t0.out" && same=yes || same=NO
    fi
    "$BIN/hass-stats" --json "$OUT/$name-t$t.metrics" |
      jq -r --arg n "$name" --arg t "$t" --arg ar "$ar_tps" --arg same "$same" '
        "| \($n) | \($t) | \(.tau * 1000 | round / 1000) | \(.accept_by_depth | map(. * 100 | round / 100) | join(" ")) | \(.mean_tree) | \(.draft_ms * 10 | round / 10) | \(.verify_ms * 10 | round / 10) | \(.tok_s * 10 | round / 10) | \($ar) | \($same) |"'
  done
done
