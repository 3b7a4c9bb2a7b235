#!/usr/bin/env bash
# examples/humaneval.sh: HumanEval (164 problems) as raw code completion of each prompt.
#   usage: examples/humaneval.sh -m MODEL [-n MAX_NEW] [-l LIMIT] [-o DIR] [-- HASS-VERIFY ARGS]
# Stops at the start of the next top-level definition (--stop strings). Writes
# DIR/humaneval.jsonl with "task_id" and "completion" (the keys of OpenAI's human-eval
# evaluator, which runs the code; nothing is executed here).
. "$(dirname "$0")/common.sh"
gzip -dc "$HASS_DATA/humaneval/HumanEval.jsonl.gz" | take |
  jq -c '{id: .task_id, text: .prompt}' |
  hass-tokenize -m "$MODEL" "${TOKENIZE_ARGS[@]}" |
  hass-verify -m "$MODEL" -n "$MAX_NEW" --stop $'\ndef ' --stop $'\nclass ' --stop $'\nif __name__' \
    --stop $'\nprint(' "${VERIFY_ARGS[@]}" |
  hass-detok -m "$MODEL" |
  jq -c '{task_id: .id, completion: ((.text // "") | sub("\n(def |class |if __name__|print\\().*$"; "")),
          finish, generated, timing} + (if .error then {error} else {} end)' >"$OUT/humaneval.jsonl"
rc=$?
echo "speed: $(jq -sc -f "$HERE/tok_s.jq" "$OUT/humaneval.jsonl")" >&2
exit $rc
