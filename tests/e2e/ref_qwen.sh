#!/usr/bin/env bash
# ref_qwen.sh: the command-line pipeline on the Qwen2.5-Coder K-quant GGUFs against llama.cpp
# (tests/data/ref_qwen{05,15}_prompts.jsonl, made by tests/gen/gen_ref_qwen.py; the logits at
# every prompt position and along the greedy paths are tests/unit/test_forward_qwen.c's job).
#  1. hass-tokenize gives llama.cpp's ids for every prompt: raw "text", and "messages" with an
#     explicit system turn through the GGUF's chat template (so the template's default system
#     message does not matter); hass-detok turns llama.cpp's greedy ids into llama.cpp's text.
#  2. hass-verify --temp 0 (plain decoding) against llama.cpp's greedy ids (tests/ref-greedy.sh
#     ids mode): every divergence must be a near tie (llama.cpp's top1-top2 margin < 0.5, both
#     margins printed). By default one chat prompt of the 0.5B for 8 steps (chat_git, which
#     parts from llama.cpp at step 6, llama.cpp's margin 0.0115, ours 0.0463); with
#     HASS_REF_QWEN_FULL=1 all 9 prompts x 64 steps on both models, at least 6 of 9 (66%)
#     identical (measured: tests/data/README.md section 7; minutes per model on a loaded
#     machine). Exit 77 when the 0.5B file is absent.
cd "$(dirname "$0")/../.."
D=${HASS_MODELS:-models}
M05=$D/Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf
M15=$D/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf
[ -e "$M05" ] || { echo "no $M05 (make models MODEL=qwen2.5-coder-0.5b)"; exit 77; }
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/hass-qwen.XXXXXX")
trap 'rm -rf "$T"' EXIT
FULL=${HASS_REF_QWEN_FULL:-0}
[ "$FULL" = 0 ] && FULL=

# tokens and text of one model against its fixture
check_text() {
  local m=$1 fix=$2 n bad
  n=$(grep -c . "$fix")
  jq -c '{id, text, messages, ref_tokens} | with_entries(select(.value != null))' "$fix" |
    hass-tokenize -m "$m" >"$T/tok" || { echo "hass-tokenize failed on $fix"; return 1; }
  bad=$(jq -r 'select(.tokens != .ref_tokens) | .id' "$T/tok")
  [ "$(grep -c . "$T/tok")" = "$n" ] && [ -z "$bad" ] ||
    { echo "hass-tokenize differs from llama.cpp on: ${bad:-(record count)}"; return 1; }
  echo "tokens    $n of $n prompts equal llama.cpp's ($(basename "$m"))"
  # ref_greedy_text is the text up to end of generation; llama.cpp's ids go on after it
  jq -c '{id, ref_greedy_text, generated: (if .ref_eos_at >= 0
           then .ref_greedy_tokens[:.ref_eos_at] else .ref_greedy_tokens end)}' "$fix" |
    hass-detok -m "$m" >"$T/detok" ||
    { echo "hass-detok failed on $fix"; return 1; }
  bad=$(jq -r 'select(.text != .ref_greedy_text) | .id' "$T/detok")
  [ -z "$bad" ] || { echo "hass-detok differs from llama.cpp on: $bad"; return 1; }
  echo "detok     $n of $n greedy texts equal llama.cpp's"
}

check_text "$M05" tests/data/ref_qwen05_prompts.jsonl || exit 1
if [ -z "$FULL" ]; then
  jq -c 'select(.id == "chat_git") | .ref_greedy_tokens |= .[:8] | .ref_greedy_margins |= .[:8]' \
    tests/data/ref_qwen05_prompts.jsonl >"$T/quick.jsonl"
  bash tests/ref-greedy.sh "$M05" "$T/quick.jsonl" ids 0
  exit $?
fi
bash tests/ref-greedy.sh "$M05" tests/data/ref_qwen05_prompts.jsonl ids 66 || exit $?
[ -e "$M15" ] || { echo "no $M15 (make models MODEL=qwen2.5-coder-1.5b): 1.5B not checked"; exit 0; }
check_text "$M15" tests/data/ref_qwen15_prompts.jsonl || exit 1
bash tests/ref-greedy.sh "$M15" tests/data/ref_qwen15_prompts.jsonl ids 66
