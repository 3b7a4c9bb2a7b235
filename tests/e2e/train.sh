#!/usr/bin/env bash
# hass-train end to end on stories260K with the synthetic shard tests/data/train_tiny.shard:
# a run that lowers the held-out loss and writes head/config/state/log/plot, exact resume
# (stop + resume twice == one run, byte for byte), stage 2 from the stage-1 head, and the bad
# inputs: NaN features, a corrupt shard, another target's shard, a full disk at checkpoint time.
set -u
MODEL=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
OTHER=$HASS_DATA/models/llama-2-tiny-random/llama-2-tiny-random.gguf
SHARD=tests/data/train_tiny.shard
[ -e "$MODEL" ] || { echo "needs $MODEL"; exit 77; }
W=$(mktemp -d "${TMP:-/tmp}/train-e2e.XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
T() { hass-train -m "$MODEL" -e 4 -b 2 --test-frac 0.34 --lr 3e-3 --ckpt-every 1 --no-progress "$@"; }

# 1. a plain run
T -o "$W/a" "$SHARD" 2>"$W/a.err" || { cat "$W/a.err"; fail "run exited $?"; }
for f in model.safetensors config.json state.safetensors log.jsonl curves.gp; do
  [ -s "$W/a/$f" ] || fail "missing $f"
done
grep -q '^hass-train: data: 3 training records (73 positions), 3 held out (102 positions)' "$W/a.err" ||
  fail "sizes not printed: $(head -2 "$W/a.err")"
[ "$(grep -c '"type":"train"' "$W/a/log.jsonl")" = 8 ] || fail "expected 8 train lines"
first=$(grep '"type":"eval"' "$W/a/log.jsonl" | head -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
last=$(grep '"type":"eval"' "$W/a/log.jsonl" | tail -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "held-out loss did not drop: $first -> $last"
grep -q '"hidden_size": 64' "$W/a/config.json" || fail "config.json lacks hidden_size 64"
grep -q 'hass.attn_mask' "$W/a/model.safetensors" || fail "head metadata lacks hass.attn_mask"
if command -v gnuplot >/dev/null; then [ -s "$W/a/curves.png" ] || fail "no curves.png"; fi

# 2. exact resume: 3 steps, then 2, then the rest == the uninterrupted run
T -o "$W/b" --stop-after 3 "$SHARD" 2>/dev/null || fail "stop-after run"
T -o "$W/b" --resume --stop-after 2 "$SHARD" 2>/dev/null || fail "first resume"
T -o "$W/b" --resume "$SHARD" 2>"$W/b.err" || { cat "$W/b.err"; fail "second resume"; }
for f in model.safetensors state.safetensors log.jsonl; do
  cmp -s "$W/a/$f" "$W/b/$f" || fail "resumed $f differs from the uninterrupted run"
done
# a resume with another recipe is refused
T -o "$W/b" --resume --batch 3 "$SHARD" 2>"$W/r.err"; rc=$?
[ $rc = 2 ] && grep -q 'another recipe' "$W/r.err" || fail "recipe change on resume: exit $rc"

# 3. stage 2 from the stage-1 head: fresh optimiser, top-K weight 1, lr 1e-5
hass-train -m "$MODEL" -o "$W/s2" --stage 2 --init "$W/a/model.safetensors" -e 1 -b 2 --test-frac 0.34 \
  --no-progress "$SHARD" 2>"$W/s2.err" || { cat "$W/s2.err"; fail "stage 2"; }
grep -q 'lr 1e-05, top-K weight 1' "$W/s2.err" || fail "stage 2 plan: $(grep plan "$W/s2.err")"

# 4. NaN features (record 2; with seed 0 and batch 1 it comes at step 2): stop with an error,
#    the last good checkpoint (step 1) kept
T -o "$W/n" -b 1 -s 0 tests/data/train_nan.shard 2>"$W/n.err"; rc=$?
[ $rc = 1 ] && grep -q 'loss is nan' "$W/n.err" && grep -q 'last good checkpoint' "$W/n.err" ||
  { cat "$W/n.err"; fail "NaN: exit $rc"; }
grep -q '"hass.step":"1"' "$W/n/state.safetensors" || fail "NaN: checkpoint is not the step-1 one"

# 5. a corrupt record: exit 3 naming the record
cp "$SHARD" "$W/bad.shard"
printf '\x55' | dd of="$W/bad.shard" bs=1 seek=3000 conv=notrunc 2>/dev/null
T -o "$W/c" "$W/bad.shard" 2>"$W/c.err"; rc=$?
[ $rc = 3 ] && grep -q 'CRC mismatch' "$W/c.err" || { cat "$W/c.err"; fail "corrupt shard: exit $rc"; }

# 6. a shard made for another target: exit 3
if [ -e "$OTHER" ]; then
  hass-train -m "$OTHER" -o "$W/o" "$SHARD" 2>"$W/o.err"; rc=$?
  [ $rc = 3 ] && grep -q 'made for target' "$W/o.err" || { cat "$W/o.err"; fail "other target: exit $rc"; }
fi

# 7. disk full while checkpointing (a file-size limit): exit 1, old checkpoint intact, no temp files
T -o "$W/d" --stop-after 1 "$SHARD" 2>/dev/null || fail "run before the disk-full case"
cp "$W/d/state.safetensors" "$W/state.before"
(ulimit -f 300; T -o "$W/d" --resume --stop-after 1 "$SHARD") 2>"$W/f.err"; rc=$?
[ $rc = 1 ] && grep -q 'previous checkpoint is intact' "$W/f.err" || { cat "$W/f.err"; fail "disk full: exit $rc"; }
cmp -s "$W/d/state.safetensors" "$W/state.before" || fail "checkpoint changed by a failed write"
ls "$W/d" | grep -q '\.tmp\.' && fail "temporary file left behind"
echo "ok"
