#!/usr/bin/env bash
# train-smollm2.sh: an EAGLE baseline (S=1, w=0) and a HASS head (S=3, stage 1 with w=0, then
# stage 2 with w=1 at a third of the rate) for SmolLM2-135M-Instruct on the same features,
# resumable. Run it again after an interruption: finished steps are skipped, a stopped stage
# resumes from its state file (bit-identical to an uninterrupted run). docs/TRAINING.md has the
# budget and the results.
#
# Environment (defaults give the CPU-sized run of docs/TRAINING.md section 4):
#   MODEL   target GGUF (models/SmolLM2-135M-Instruct.Q4_1.gguf)
#   DATA    conversation files, ShareGPT JSON or JSONL (runs/sd/convos.jsonl from
#           scripts/selfdistill.sh when it exists, else the ShareGPT samples in $HASS_DATA)
#   OUT     run folder (runs/smollm2)
#   LIMIT   conversations to use (all); MAXLEN positions per conversation (512)
#   E1, E2  passes of stage 1 and 2 (4, 1; the paper recipe is 41 and 11); the EAGLE baseline
#           makes E1 + E2 passes at the stage-1 rate
#   LR      stage-1 peak rate (1e-3: the paper's 3e-5 is for ~170k steps; this run has a few
#           hundred); stage 2 uses LR/3 (the paper's 3e-5 -> 1e-5 ratio)
#   WARMUP  warmup share of the optimiser steps (0.05)
#   BATCH   sequences per optimiser step (4); THREADS (all cores); TEMPLATE (auto)
#   HEADS   which heads to train ("eagle hass"; run "eagle" and "hass" as two processes with
#           THREADS=1 each on a shared 2-core machine: two 2-thread jobs stall on each other)
#   SHARDS  feature shards to train on (default OUT/features.shard, made from DATA if missing)
set -eu
cd "$(dirname "$0")/.."
HASS_DATA=${HASS_DATA:-../shared/data}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ -s runs/sd/convos.jsonl ]; then
  DATA=${DATA:-runs/sd/convos.jsonl}
else
  DATA=${DATA:-"$HASS_DATA/sharegpt/original_example.json $HASS_DATA/sharegpt/dummy_conversation.json"}
fi
OUT=${OUT:-runs/smollm2}
LIMIT=${LIMIT:-0}
MAXLEN=${MAXLEN:-512}
E1=${E1:-4}
E2=${E2:-1}
LR=${LR:-1e-3}
BATCH=${BATCH:-4}
WARMUP=${WARMUP:-0.05}
HEADS=${HEADS:-eagle hass}
THREADS=${THREADS:-0}
TEMPLATE=${TEMPLATE:-auto}
BIN=${BIN:-build/bin/hass-train}
[ -x "$BIN" ] || make -j2 >/dev/null
[ -e "$MODEL" ] || { echo "no $MODEL: run 'make models' first" >&2; exit 1; }
mkdir -p "$OUT"
thr=()
[ "$THREADS" != 0 ] && thr=(--threads "$THREADS")

# 1. features (written atomically: a shard that exists is complete)
SHARD=$OUT/features.shard
if [ -z "${SHARDS:-}" ] && [ ! -e "$SHARD" ]; then
  # shellcheck disable=SC2086
  lim=()
  [ "$LIMIT" != 0 ] && lim=(--limit "$LIMIT")
  "$BIN" -m "$MODEL" --features "$SHARD" --template "$TEMPLATE" "${lim[@]}" --max-len "$MAXLEN" --progress "${thr[@]}" $DATA
fi

# 2. a stage: fresh, or resumed from its state file (a finished stage resumes to nothing)
stage() { # stage N DIR EPOCHS [extra args]
  local n=$1 dir=$2 ep=$3
  shift 3
  local res=()
  [ -e "$dir/state.safetensors" ] && res=(--resume)
  "$BIN" -m "$MODEL" -o "$dir" --stage "$n" -e "$ep" -b "$BATCH" --max-len "$MAXLEN" --warmup-frac "$WARMUP" --progress \
    "${thr[@]}" "${res[@]}" "$@" ${SHARDS:-$SHARD}
}
lr2=$(awk -v x="$LR" 'BEGIN { printf "%g", x / 3 }')
for h in $HEADS; do
  case $h in
    eagle) stage 1 "$OUT/eagle" $((E1 + E2)) --align-steps 1 --lr "$LR"
           echo "EAGLE baseline: $OUT/eagle" >&2 ;;
    hass)  stage 1 "$OUT/hass1" "$E1" --lr "$LR"
           [ -e "$OUT/hass2/state.safetensors" ] && init=() || init=(--init "$OUT/hass1")
           stage 2 "$OUT/hass2" "$E2" --lr "$lr2" "${init[@]}"
           echo "HASS head: $OUT/hass2" >&2 ;;
    *) echo "train-smollm2: unknown head '$h' (eagle, hass)" >&2; exit 2 ;;
  esac
done
echo "heads: model.safetensors + config.json in each folder; curves: $OUT/*/curves.png" >&2
