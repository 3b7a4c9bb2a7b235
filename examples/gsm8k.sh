#!/usr/bin/env bash
# examples/gsm8k.sh: GSM8K test questions (1319) as chats; prints accuracy and tokens/s.
#   usage: examples/gsm8k.sh -m MODEL [-n MAX_NEW] [-l LIMIT] [-o DIR] [-- HASS-VERIFY ARGS]
# The reference answer is the number after "####"; a generation counts as correct when the
# last number in its text equals it. Writes DIR/gsm8k.jsonl (with "reference" and "correct").
. "$(dirname "$0")/common.sh"
take <"$HASS_DATA/gsm8k/test.jsonl" |
  jq -c '{id: ("gsm8k_" + (input_line_number | tostring)),
          reference: (.answer | split("####")[1] | gsub("[ ,]"; "")),
          messages: [{role: "user", content: (.question + "\nLet'"'"'s think step by step.")}]}' |
  decode |
  jq -c '.reference as $r
         | ((.text // "") | [scan("-?[0-9][0-9,]*\\.?[0-9]*")] | last // ""
            | gsub(","; "") | sub("\\.$"; "")) as $last
         | . + {answer: $last, correct: ($last == $r)}' >"$OUT/gsm8k.jsonl"
rc=$?
echo "accuracy: $(jq -s 'map(select(.correct)) | length' "$OUT/gsm8k.jsonl") of $(grep -c . "$OUT/gsm8k.jsonl")" >&2
echo "speed: $(jq -sc -f "$HERE/tok_s.jq" "$OUT/gsm8k.jsonl")" >&2
exit $rc
