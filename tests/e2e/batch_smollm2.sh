#!/usr/bin/env bash
# batch_smollm2.sh: on SmolLM2-135M (a quantized model, chat prompts of different lengths),
# hass-verify --batch 3 and --batch 8 give exactly the records of --batch 1, greedy and
# seeded at temperature 0.8 with a stop string (whole JSONL compared, "timing" removed), plainly
# and speculatively with the shipped head (a fixed tree; --tree auto greedy against plain).
cd "$(dirname "$0")/../.."
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
M=${HASS_MODELS:-models}/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f "$M" ] || { echo "SmolLM2 not present ($M)"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/batch-smol.XXXXXX"); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
Q=("Hi." "Name three colours." "Write a haiku about the sea and the wind at night."
   "What is 2 + 2?" "Tell me a short story about a cat who learns to fly over the city."
   "Why is the sky blue? Answer in one sentence." "List the days of the week."
   "Translate 'good morning' into French." "Give me a tip for sleeping well." "Count to five.")
for i in "${!Q[@]}"; do
  jq -cn --arg q "${Q[$i]}" --argjson i "$i" '{id: $i, messages: [{role: "user", content: $q}], max_new: (4 + 3 * $i)}'
done | hass-tokenize -m "$M" >"$T/in.jsonl" || fail "hass-tokenize"
for mode in greedy sampled; do
  args="-n 40"; [ $mode = sampled ] && args="-n 40 -t 0.8 -s 11 --stop ."
  for n in 1 3 8; do
    hass-verify -m "$M" --threads 2 --batch $n $args "$T/in.jsonl" 2>"$T/err" | jq -c 'del(.timing)' >"$T/$mode.$n" ||
      fail "$mode --batch $n: $(tail -2 "$T/err")"
  done
  [ "$(jq -c 'select(.generated)' "$T/$mode.1" | wc -l)" = 10 ] || fail "$mode: $(wc -l <"$T/$mode.1") records"
  for n in 3 8; do
    cmp -s "$T/$mode.1" "$T/$mode.$n" || { diff "$T/$mode.1" "$T/$mode.$n" | head -4; fail "$mode --batch $n differs"; }
  done
done
cmp -s "$T/greedy.1" "$T/sampled.1" && fail "sampling gave the greedy output"
# speculative with the shipped head and a fixed tree: --batch 3 and 8 == --batch 1, greedy
# (== plain) and sampled with the stop string; the head's drafts are accepted (in the metrics)
H=heads/smollm2-135m-instruct
D="--draft $H --tree-total 16 --tree-depth 4 --tree-topk 4"
for mode in greedy sampled; do
  args="-n 40"; [ $mode = sampled ] && args="-n 40 -t 0.8 -s 11 --stop ."
  for n in 1 3 8; do
    hass-verify -m "$M" --threads 2 --batch $n $D $args --metrics "$T/m.$mode.$n" "$T/in.jsonl" 2>"$T/err" |
      jq -c 'del(.timing)' >"$T/spec-$mode.$n" || fail "--draft $mode --batch $n: $(tail -2 "$T/err")"
  done
  for n in 3 8; do
    cmp -s "$T/spec-$mode.1" "$T/spec-$mode.$n" || { diff "$T/spec-$mode.1" "$T/spec-$mode.$n" | head -4; fail "--draft $mode --batch $n differs"; }
  done
  [ "$(jq -s 'map(select(.type == "cycle") | .accepted) | add' "$T/m.$mode.8")" -gt 10 ] || fail "--draft $mode --batch 8: drafts not accepted"
done
cmp -s "$T/spec-greedy.1" "$T/greedy.1" || fail "--draft greedy differs from plain greedy"
grep -q '"stop":"' "$T/spec-sampled.1" || fail "--draft sampled: no stop string matched"
# --tree auto --batch 4, greedy: plain decoding's records
hass-verify -m "$M" --threads 2 --batch 4 --draft $H --tree auto -n 40 "$T/in.jsonl" 2>"$T/err" |
  jq -c 'del(.timing)' | cmp -s - "$T/greedy.1" || fail "--tree auto --batch 4 differs from plain greedy"
echo "SmolLM2: --batch 3 and 8 == --batch 1, greedy and sampled, plain and --draft, 10 chat prompts"
