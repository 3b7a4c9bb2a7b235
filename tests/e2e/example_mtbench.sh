#!/usr/bin/env bash
# example_mtbench.sh: examples/mt-bench.sh on 2 questions runs both turns, and turn 2's prompt
# holds turn 1's question, the model's own turn-1 answer and the second question.
# stories260K has no chat template, so the ChatML template is named; SmolLM2 when fetched.
cd "$(dirname "$0")/../.."
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mt-test.XXXXXX"); trap 'rm -rf "$T"' EXIT
M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
HASS_TOKENIZE_ARGS="--template chatml" examples/mt-bench.sh -m "$M" -n 6 -l 2 -o "$T" 2>"$T/err" ||
  { echo "mt-bench.sh failed"; cat "$T/err"; exit 1; }
[ "$(grep -c . "$T/turn1.jsonl") $(grep -c . "$T/turn2.jsonl")" = "2 2" ] || { echo "want 2+2 records"; exit 1; }
jq -e -s --slurpfile t1 "$T/turn1.jsonl" '
  [range(0; 2) as $i | .[$i] as $b | $t1[$i] as $a
   | ($b.messages | length) == 3 and $b.messages[1].role == "assistant"
     and $b.messages[1].content == $a.text and $b.messages[0] == $a.messages[0]
     and ($b.tokens | length) > ($a.tokens | length) + ($a.generated | length)
     and ($b.generated | length) == 6 and $b.id == $a.id] | all' "$T/turn2.jsonl" >/dev/null ||
  { echo "turn 2 does not carry turn 1"; head -c 600 "$T/turn2.jsonl"; exit 1; }
grep -q '^turn 2: {"records":2,"failed":0,"tokens":12' "$T/err" || { echo "no summary"; cat "$T/err"; exit 1; }
echo "two turns, turn 2 built from turn 1's answer"
