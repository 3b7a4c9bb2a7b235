#!/usr/bin/env bash
# train-smollm2.sh: the HASS two-stage recipe for SmolLM2-135M-Instruct, resumable.
# Run it again after an interruption: finished steps are skipped, a stopped stage resumes from
# its state file (bit-identical to an uninterrupted run). See docs/TRAINING.md for the budget.
#
# Environment (defaults give the CPU-sized run of docs/TRAINING.md section 4):
#   MODEL   target GGUF (models/SmolLM2-135M-Instruct.Q4_1.gguf)
#   DATA    conversation files, ShareGPT JSON or JSONL (the ShareGPT samples in $HASS_DATA)
#   OUT     run folder (runs/smollm2)
#   LIMIT   conversations to use (200); MAXLEN positions per conversation (256)
#   E1, E2  passes of stage 1 and 2 (3, 1; the paper recipe is 41 and 11)
#   BATCH   sequences per optimiser step (16); THREADS (all cores); TEMPLATE (auto)
set -eu
cd "$(dirname "$0")/.."
HASS_DATA=${HASS_DATA:-../shared/data}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-"$HASS_DATA/sharegpt/original_example.json $HASS_DATA/sharegpt/dummy_conversation.json"}
OUT=${OUT:-runs/smollm2}
LIMIT=${LIMIT:-200}
MAXLEN=${MAXLEN:-256}
E1=${E1:-3}
E2=${E2:-1}
BATCH=${BATCH:-16}
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
if [ ! -e "$SHARD" ]; then
  # shellcheck disable=SC2086
  "$BIN" -m "$MODEL" --features "$SHARD" --template "$TEMPLATE" --limit "$LIMIT" --max-len "$MAXLEN" --progress "${thr[@]}" $DATA
fi

# 2. a stage: fresh, or resumed from its state file (a finished stage resumes to nothing)
stage() { # stage N DIR EPOCHS [extra args]
  local n=$1 dir=$2 ep=$3
  shift 3
  local res=()
  [ -e "$dir/state.safetensors" ] && res=(--resume)
  "$BIN" -m "$MODEL" -o "$dir" --stage "$n" -e "$ep" -b "$BATCH" --max-len "$MAXLEN" --progress \
    "${thr[@]}" "${res[@]}" "$@" "$SHARD"
}
stage 1 "$OUT/stage1" "$E1"
[ -e "$OUT/stage2/state.safetensors" ] && init=() || init=(--init "$OUT/stage1")
stage 2 "$OUT/stage2" "$E2" "${init[@]}"
echo "head: $OUT/stage2 (model.safetensors + config.json); curves: $OUT/stage*/curves.png" >&2
