#!/usr/bin/env bash
# selfdistill.sh: training conversations whose assistant turns are the target's own answers,
# made with our own pipeline (hass-tokenize | hass-verify | hass-detok). A small target like
# SmolLM2 writes very differently from the ChatGPT replies in ShareGPT; a draft head trained on
# the target's own text sees at training time what it will see when drafting (docs/TRAINING.md).
#
#   scripts/selfdistill.sh OUT.jsonl            (resumable: prompts already in OUT are skipped)
#
# Environment:
#   MODEL    target GGUF (models/SmolLM2-135M-Instruct.Q4_1.gguf)
#   PROMPTS  ShareGPT JSON whose first human turns are the prompts
#            ($HASS_DATA/sharegpt/ShareGPT_V3_filtered_500.json)
#   LIMIT    prompts to use (320); MAXCHARS longest prompt in characters (1500)
#   MAXNEW   tokens per answer (192); TEMPS temperatures, used in turn by prompt (0 1)
#   SEED     sampling seed (1); THREADS (all cores)
# Output: one {"id", "messages": [{"role":"user",...}, {"role":"assistant",...}], "temp",
# "finish"} per prompt, the format hass-train reads.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTF=${1:?usage: scripts/selfdistill.sh OUT.jsonl}
HASS_DATA=${HASS_DATA:-../shared/data}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
PROMPTS=${PROMPTS:-$HASS_DATA/sharegpt/ShareGPT_V3_filtered_500.json}
LIMIT=${LIMIT:-320} MAXCHARS=${MAXCHARS:-1500} MAXNEW=${MAXNEW:-192} SEED=${SEED:-1}
read -r -a TEMPS <<<"${TEMPS:-0 1}"
BIN=${BIN:-build/bin}
thr=()
[ -n "${THREADS:-}" ] && thr=(--threads "$THREADS")
touch "$OUTF"

# The prompts as chat records, numbered; those already answered in OUT are left out.
prompts() {
  jq -c --argjson max "$MAXCHARS" --argjson lim "$LIMIT" '
    [.[] | select(.conversations[0].from == "human")
         | select((.conversations[0].value | length) <= $max)
         | {id, messages: [{role: "user", content: .conversations[0].value}]}][:$lim]
    | to_entries[] | .value + {n: .key}' "$PROMPTS" |
    jq -c --slurpfile done <(jq -c '.id' "$OUTF") 'select(.id as $i | $done | index($i) | not)'
}

i=0
for t in "${TEMPS[@]}"; do
  # prompt n goes to temperature TEMPS[n mod count]
  prompts | jq -c --argjson k "${#TEMPS[@]}" --argjson i "$i" 'select(.n % $k == $i)' |
    "$BIN/hass-tokenize" -m "$MODEL" |
    "$BIN/hass-verify" -m "$MODEL" -n "$MAXNEW" -t "$t" -s "$SEED" "${thr[@]}" --progress |
    "$BIN/hass-detok" -m "$MODEL" |
    jq -c --argjson t "$t" 'select(.text) | {id, messages: (.messages + [{role: "assistant", content: .text}]),
                           temp: $t, finish}' >>"$OUTF"
  i=$((i + 1))
done
echo "selfdistill: $(wc -l <"$OUTF") conversations in $OUTF" >&2
