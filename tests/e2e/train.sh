#!/usr/bin/env bash
# hass-train end to end on stories260K: features from ShareGPT conversations (ChatML forced, the
# engine's post-norm features), a training run that lowers the held-out loss and writes a head
# that head.h loads against the target, exact resume (stop + resume twice == one run, byte for
# byte), stage 2 from the stage-1 head, and the bad inputs: NaN features, a corrupt shard,
# another target's shard, a full disk at checkpoint time.
set -u
MODEL=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
OTHER=$HASS_DATA/models/llama-2-tiny-random/llama-2-tiny-random.gguf
CONV=$HASS_DATA/sharegpt/dummy_conversation.json
HELPER=${BUILD:-build}/tests/test_train_shard
[ -e "$MODEL" ] && [ -e "$CONV" ] || { echo "needs $MODEL and $CONV"; exit 77; }
W=$(mktemp -d "${TMP:-/tmp}/train-e2e.XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
SHARD=$W/conv.shard
T() { hass-train -m "$MODEL" -e 3 -b 2 --test-frac 0.25 --lr 3e-3 --ckpt-every 1 --no-progress "$@"; }

# 0. features: 8 conversations, truncated to 96 positions
hass-train -m "$MODEL" --features "$SHARD" --template chatml --limit 8 --max-len 96 "$CONV" 2>"$W/f0.err" ||
  { cat "$W/f0.err"; fail "features exited $?"; }
grep -q 'features: 8 conversations (0 skipped, 8 truncated to 96), 768 positions' "$W/f0.err" ||
  fail "feature sizes not printed: $(cat "$W/f0.err")"
hass-train -m "$MODEL" --features "$W/x.shard" "$CONV" 2>"$W/f1.err"; rc=$?
[ $rc = 3 ] && grep -q 'no chat template recognised' "$W/f1.err" || fail "a model without a chat template: exit $rc"

# 1. a plain run
T -o "$W/a" "$SHARD" 2>"$W/a.err" || { cat "$W/a.err"; fail "run exited $?"; }
for f in model.safetensors config.json state.safetensors log.jsonl curves.gp; do
  [ -s "$W/a/$f" ] || fail "missing $f"
done
grep -q '^hass-train: data: 6 training records (576 positions), 2 held out (192 positions)' "$W/a.err" ||
  fail "sizes not printed: $(head -2 "$W/a.err")"
[ "$(grep -c '"type":"train"' "$W/a/log.jsonl")" = 9 ] || fail "expected 9 train lines"
first=$(grep '"type":"eval"' "$W/a/log.jsonl" | head -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
last=$(grep '"type":"eval"' "$W/a/log.jsonl" | tail -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "held-out loss did not drop: $first -> $last"
"$HELPER" head-check "$W/a" "$MODEL" >"$W/h.out" 2>&1 || { cat "$W/h.out"; fail "head.h refuses the head"; }
grep -q 'attn_mask correct' "$W/h.out" || fail "head metadata: $(cat "$W/h.out")"
if command -v gnuplot >/dev/null; then [ -s "$W/a/curves.png" ] || fail "no curves.png"; fi

# 2. exact resume: 4 steps, then 2, then the rest == the uninterrupted run
T -o "$W/b" --stop-after 4 "$SHARD" 2>/dev/null || fail "stop-after run"
T -o "$W/b" --resume --stop-after 2 "$SHARD" 2>/dev/null || fail "first resume"
T -o "$W/b" --resume "$SHARD" 2>"$W/b.err" || { cat "$W/b.err"; fail "second resume"; }
for f in model.safetensors state.safetensors log.jsonl; do
  cmp -s "$W/a/$f" "$W/b/$f" || fail "resumed $f differs from the uninterrupted run"
done
T -o "$W/b" --resume --batch 3 "$SHARD" 2>"$W/r.err"; rc=$?
[ $rc = 2 ] && grep -q 'another recipe' "$W/r.err" || fail "recipe change on resume: exit $rc"

# 3. stage 2 from the stage-1 head: fresh optimiser, top-K weight 1, lr 1e-5
hass-train -m "$MODEL" -o "$W/s2" --stage 2 --init "$W/a" -e 1 -b 2 --test-frac 0.25 --no-progress \
  "$SHARD" 2>"$W/s2.err" || { cat "$W/s2.err"; fail "stage 2"; }
grep -q 'lr 1e-05, top-K weight 1' "$W/s2.err" || fail "stage 2 plan: $(grep plan "$W/s2.err")"

# 4. NaN features in record 2 (seed 2, batch 1: it comes at the fourth step): stop with an error,
#    the last good checkpoint kept
"$HELPER" nan-shard "$SHARD" "$W/nan.shard" || fail "cannot make the NaN shard"
T -o "$W/n" -b 1 -s 2 "$W/nan.shard" 2>"$W/n.err"; rc=$?
[ $rc = 1 ] && grep -q 'loss is nan' "$W/n.err" && grep -q 'last good checkpoint' "$W/n.err" ||
  { cat "$W/n.err"; fail "NaN: exit $rc"; }
[ -s "$W/n/state.safetensors" ] || fail "NaN: no checkpoint kept"

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
