#!/usr/bin/env bash
# example_tasks.sh: examples/gsm8k.sh and examples/humaneval.sh on 2 items each: one output
# record per item with the keys the scripts promise, and the summaries on stderr.
cd "$(dirname "$0")/../.."
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/tasks-test.XXXXXX"); trap 'rm -rf "$T"' EXIT
M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
HASS_TOKENIZE_ARGS="--template chatml" examples/gsm8k.sh -m "$M" -n 4 -l 2 -o "$T" 2>"$T/err" ||
  { echo "gsm8k.sh failed"; cat "$T/err"; exit 1; }
jq -e -s 'length == 2 and (map(.reference) == ["18", "3"]) and
          all(.[]; (.correct | type) == "boolean" and (.generated | length) == 4)' \
  "$T/gsm8k.jsonl" >/dev/null || { echo "bad gsm8k output"; cat "$T/gsm8k.jsonl"; exit 1; }
grep -q '^accuracy: [0-9]* of 2$' "$T/err" || { echo "no accuracy line"; cat "$T/err"; exit 1; }
examples/humaneval.sh -m "$M" -n 4 -l 2 -o "$T" 2>"$T/err" || { echo "humaneval.sh failed"; cat "$T/err"; exit 1; }
jq -e -s 'length == 2 and map(.task_id) == ["HumanEval/0", "HumanEval/1"] and
          all(.[]; (.completion | type) == "string" and (.finish == "length" or .finish == "stop"))' \
  "$T/humaneval.jsonl" >/dev/null || { echo "bad humaneval output"; cat "$T/humaneval.jsonl"; exit 1; }
grep -q '^speed: {"records":2,"failed":0' "$T/err" || { echo "no speed line"; cat "$T/err"; exit 1; }
echo "gsm8k and humaneval examples ok"
