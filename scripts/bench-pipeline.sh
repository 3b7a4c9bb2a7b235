#!/usr/bin/env bash
# scripts/bench-pipeline.sh: decode throughput of the pipeline
#   hass-tokenize | hass-verify | hass-detok
# beside the engine's own decode benchmark (hass-bench), same model, same threads, same prompt
# length and decode length, interleaved (engine, pipeline, engine, pipeline, ...) so that machine
# noise hits both; medians over REPS runs. The pipeline's number is hass-verify's "timing.tok_s"
# (one-token decode steps per second, the quantity hass-bench reports); the end-to-end wall time
# of the whole pipeline (process start, model load, tokenize, prefill, decode, detok) is shown
# beside it, and so is CPU time per decode token (process CPU time, all threads: hass-bench's
# cpu_ms_per_token and hass-verify's timing.decode_cpu_ms per step), the steadier measure on a
# shared machine.
# Environment: BUILD (build), MODEL (models/SmolLM2-135M-Instruct.Q4_1.gguf), THREADS (1),
# REPS (5), GEN (128), PROMPT (text of the prompt; default a short story opening).
# Output: a markdown table on stdout; raw numbers on stderr.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${THREADS:-1}
REPS=${REPS:-5}
GEN=${GEN:-128}
PROMPT=${PROMPT:-Once upon a time in a small village by the sea, there lived an old fisherman who}
export PATH="$PWD/$BUILD/bin:$PATH"
[ -e "$MODEL" ] || { echo "bench-pipeline: $MODEL not found (make models)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench-pipeline: needs jq" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-pipe.XXXXXX"); trap 'rm -rf "$T"' EXIT

jq -nc --arg t "$PROMPT" '{id: "bench", text: $t}' >"$T/prompt.jsonl"
N_PROMPT=$(hass-tokenize -m "$MODEL" "$T/prompt.jsonl" | jq '.tokens | length')
: >"$T/engine" ; : >"$T/pipe" ; : >"$T/wall" ; : >"$T/ecpu" ; : >"$T/pcpu"
for r in $(seq "$REPS"); do
  hass-bench -q -m "$MODEL" -t "$THREADS" -p "$N_PROMPT" -g "$GEN" --curve none -r 1 |
    jq -r 'select(.bench == "decode") | "\(.tok_s) \(.cpu_ms_per_token)"' >"$T/e1"
  cut -d' ' -f1 "$T/e1" >>"$T/engine"; cut -d' ' -f2 "$T/e1" >>"$T/ecpu"
  t0=$(date +%s.%N)
  hass-tokenize -m "$MODEL" "$T/prompt.jsonl" |
    hass-verify -m "$MODEL" --threads "$THREADS" -n "$GEN" --ignore-eos |
    hass-detok -m "$MODEL" >"$T/out.jsonl"
  t1=$(date +%s.%N)
  jq -r '.timing.tok_s' "$T/out.jsonl" >>"$T/pipe"
  jq -r '.timing | .decode_cpu_ms / (.tok_s * .decode_ms / 1000)' "$T/out.jsonl" >>"$T/pcpu"
  echo "$t0 $t1" | awk -v g="$GEN" '{ printf "%.3f\n", g / ($2 - $1) }' >>"$T/wall"
  echo "bench-pipeline: run $r: engine $(tail -1 "$T/engine") tok/s ($(tail -1 "$T/ecpu") CPU ms/token), pipeline $(tail -1 "$T/pipe") tok/s decode ($(tail -1 "$T/pcpu") CPU ms/token), $(tail -1 "$T/wall") tok/s end to end" >&2
done
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
E=$(median "$T/engine") P=$(median "$T/pipe") W=$(median "$T/wall")
EC=$(median "$T/ecpu") PC=$(median "$T/pcpu")
echo "| model | threads | prompt | gen | engine decode tok/s (hass-bench) | pipeline decode tok/s (hass-verify) | pipeline / engine | engine CPU ms/token | pipeline CPU ms/token | CPU ratio | pipeline end to end tok/s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
awk -v m="$(basename "$MODEL")" -v t="$THREADS" -v p="$N_PROMPT" -v g="$GEN" -v e="$E" -v q="$P" -v w="$W" \
  -v ec="$EC" -v pc="$PC" \
  'BEGIN { printf "| %s | %s | %s | %s | %.2f | %.2f | %.3f | %.3f | %.3f | %.3f | %.2f |\n", m, t, p, g, e, q, q / e, ec, pc, pc / ec, w }'
echo "(medians of $REPS interleaved runs; load average $(cut -d' ' -f1-3 /proc/loadavg))"
