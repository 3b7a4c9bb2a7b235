#!/usr/bin/env bash
# examples/mt-bench.sh: MT-bench (80 questions, 2 turns) as a two-turn pipeline.
#   usage: examples/mt-bench.sh -m MODEL [-n MAX_NEW] [-l LIMIT] [-o DIR] [-- HASS-VERIFY ARGS]
# Turn 1 sends each question's first turn as a chat; turn 2 sends the conversation so far:
# the first question, the model's OWN turn-1 answer (fed back from turn 1's output), then the
# second question. The second question rides through turn 1 as an unknown key ("turn2"),
# which every tool passes through. Writes DIR/turn1.jsonl and DIR/turn2.jsonl (every input
# key kept, plus "generated", "text", "finish", "timing") and prints a tokens/s summary of
# both turns to stderr.
. "$(dirname "$0")/common.sh"
Q=$HASS_DATA/mt_bench/question.jsonl

# Turn 1: {"id":"81","category":..,"turn2":..,"messages":[user q1]}
take <"$Q" |
  jq -c '{id: (.question_id | tostring), category, turn2: .turns[1],
          messages: [{role: "user", content: .turns[0]}]}' |
  decode >"$OUT/turn1.jsonl" || echo "$0: turn 1: some records failed" >&2

# Turn 2: the model's own answer goes back into the conversation.
jq -c 'select(.text) | {id, category,
        messages: (.messages + [{role: "assistant", content: .text},
                                {role: "user", content: .turn2}])}' "$OUT/turn1.jsonl" |
  decode >"$OUT/turn2.jsonl" || echo "$0: turn 2: some records failed" >&2

for t in 1 2; do
  echo "turn $t: $(jq -sc -f "$HERE/tok_s.jq" "$OUT/turn$t.jsonl")" >&2
done
