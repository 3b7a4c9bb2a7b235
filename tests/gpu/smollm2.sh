#!/usr/bin/env bash
# tests/gpu/smollm2.sh: the SmolLM2 part of a device run, after tests/gpu/run.sh built the tree
# on the same warm machine. SmolLM2 (94 MB) exceeds one call's 64 MiB carry, so it travels in two
# parts: run.sh's call stashes the first (MODEL_A), this call carries the second (MODEL_B).
#   MODEL_A=/tmp/smol.a MODEL_B=.dev2/smol.b OUT=$OUT bash tests/gpu/smollm2.sh
# Steps (each with a timeout; logs and summary.txt under $OUT):
#  1. greedy 64 tokens, GPU stack vs CPU engine (tests/gpu/greedy_gpu_cpu.c)
#  2. speculative decoding on the GPU with the shipped head: AR, the paper's tree, --tree auto on
#     MT-bench first turns; output identical to AR at T = 0; tau and tokens/s (hass-stats)
#  3. optional (SD_PROMPTS=file of {"id","messages"} records, SD_SECONDS): self-distillation,
#     the target's own answers for hass-train, GPU pipelines side by side for SD_SECONDS;
#     answers come back gzipped in $OUT/sd.jsonl.gz (the lead turns them into training records).
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-/tmp/hass-gpu-out}
mkdir -p "$OUT"
SUM=$OUT/summary2.txt
: >"$SUM"
T0=$(date +%s)
say() { echo "$*" | tee -a "$SUM"; }
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
[ -d /tmp/hass-shim ] && export PATH=/tmp/hass-shim:$PATH
export PATH=$ROOT/build/bin:$PATH
M=${MODEL:-/tmp/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ ! -s "$M" ]; then
  cat "${MODEL_A:?}" "${MODEL_B:?}" >"$M" || { say "model parts missing"; exit 1; }
fi
say "model $(sha256sum "$M" | cut -c1-16) $(stat -c %s "$M") bytes"
[ -x build/bin/hass-verify ] || { say "build/bin missing"; exit 1; }
HEAD=heads/smollm2-135m-instruct
DATA=${HASS_DATA:-.dev/data}

# 1. greedy GPU vs CPU
if [ -z "${SKIP_SPEC:-}" ] && [ -x build/greedy_gpu_cpu ]; then
  timeout 120 build/greedy_gpu_cpu "$M" "Once upon a time" 64 >"$OUT/greedy-smol.log" 2>&1
  say "greedy SmolLM2 GPU vs CPU: exit $?"
  grep -E '^(gpu:|greedy|cpu [0-9]|first)' "$OUT/greedy-smol.log" | cut -c1-200 | sed 's/^/  /' | tee -a "$SUM"
fi

# 2. speculative on the GPU: MT-bench first turns (SKIP_SPEC=1: only step 3)
NQ=${NQ:-20} MAXNEW=${MAXNEW:-128}
[ -n "${SKIP_SPEC:-}" ] && NQ=0
python3 - "$DATA/mt_bench/question.jsonl" "$NQ" >/tmp/mtb.jsonl <<'PY'
import json, sys
for i, l in enumerate(open(sys.argv[1])):
    if i >= int(sys.argv[2]): break
    q = json.loads(l)
    print(json.dumps({"id": q["question_id"], "messages": [{"role": "user", "content": q["turns"][0]}]}))
PY
[ "$NQ" -gt 0 ] && { hass-tokenize -m "$M" /tmp/mtb.jsonl >/tmp/mtb.tok || say "tokenize failed"; }
spec() { # name, flags...
  local name=$1; shift
  timeout 120 hass-verify -m "$M" --device ${DEV:-cuda} -n "$MAXNEW" --no-progress --metrics "$OUT/$name.metrics" "$@" \
    /tmp/mtb.tok >/tmp/$name.out 2>"$OUT/$name.err"
  local rc=$?
  python3 -c "import json,sys; [print(json.dumps([r.get('id'), r.get('generated')])) for r in map(json.loads, open(sys.argv[1]))]" /tmp/$name.out >/tmp/$name.ids 2>/dev/null
  say "spec $name: exit $rc, $(wc -l </tmp/$name.ids) records"
}
[ "$NQ" -gt 0 ] && {
spec ar
spec ar2
HASS_CUDA_GRAPH=1 spec argraph # plain decoding through the captured decode graph: the best baseline
spec fixed --draft "$HEAD" --tree-total 60 --tree-depth 6 --tree-topk 10
spec auto --draft "$HEAD" --tree auto -v
spec chain4 --draft "$HEAD" --tree-total 5 --tree-depth 4 --tree-topk 1
spec chain2 --draft "$HEAD" --tree-total 3 --tree-depth 2 --tree-topk 1
spec tree8 --draft "$HEAD" --tree-total 8 --tree-depth 3 --tree-topk 3
V2=""
if [ -n "${HEAD2:-}" ] && [ -e "$HEAD2/model.safetensors" ]; then # a second head to compare
  spec auto-h2 --draft "$HEAD2" --tree auto -v
  spec fixed-h2 --draft "$HEAD2" --tree-total 60 --tree-depth 6 --tree-topk 10
  V2="auto-h2 fixed-h2"
fi
for v in ar2 argraph fixed auto chain4 chain2 tree8 $V2; do
  if cmp -s /tmp/ar.ids /tmp/$v.ids; then say "  $v: output identical to AR"
  else say "  $v: OUTPUT DIFFERS FROM AR ($(diff /tmp/ar.ids /tmp/$v.ids | grep -c '^<') records)"; fi
done
for v in ar ar2 argraph fixed auto chain4 chain2 tree8 $V2; do
  [ -s "$OUT/$v.metrics" ] || continue
  say "  $v: $(hass-stats --json --ar "$OUT/ar.metrics" "$OUT/$v.metrics" 2>&1 | head -c 600)"
  # the drafter's cost per cycle and per tree level (budget[1] levels drafted)
  say "    $(python3 -c "import json,sys
c=[r for r in map(json.loads, open(sys.argv[1])) if r.get('type')=='cycle' and r['tree']>1]
n=len(c); d=sum(r['draft_ms'] for r in c); lv=sum(r['budget'][1] for r in c); v=sum(r['verify_ms'] for r in c)
print('drafted cycles %d: draft %.3f ms/cycle %.3f ms/level, verify %.3f ms/cycle' % (n, d/n, d/lv, v/n) if n else 'no drafted cycles')" "$OUT/$v.metrics" 2>&1)"
done
grep -h "tree auto" "$OUT/auto.err" | tail -3 | sed 's/^/  /' | tee -a "$SUM"
tail -2 "$OUT"/fixed.err | sed 's/^/  fixed.err: /' | tee -a "$SUM"
}

# 3. self-distillation: K GPU pipelines plus SD_CPU_PIPES one-thread CPU pipelines over slices of
#    the prompts for SD_SECONDS
if [ -n "${SD_PROMPTS:-}" ] && [ -s "$SD_PROMPTS" ]; then
  K=${SD_PIPES:-12} KC=${SD_CPU_PIPES:-0} S=${SD_SECONDS:-150}
  rm -rf /tmp/sd && mkdir -p /tmp/sd
  split -n l/$((K + KC)) -d -a 3 "$SD_PROMPTS" /tmp/sd/p.
  t=$(date +%s)
  i=0
  for f in /tmp/sd/p.???; do
    temp=$((i % 2)) dev=${DEV:-cuda} thr=
    [ $i -ge "$K" ] && dev=cpu thr="--threads 1"
    ( timeout "$S" bash -c "hass-tokenize -m $M $f | hass-verify -m $M --device $dev $thr -n ${SD_MAXNEW:-256} -t $temp -s 1 --no-progress | hass-detok -m $M" \
        >"$f.out" 2>"$f.err" ) &
    i=$((i + 1))
  done
  wait
  cat /tmp/sd/p.*.out | gzip -c >"$OUT/sd.jsonl.gz"
  n=$(cat /tmp/sd/p.*.out | wc -l)
  toks=$(cat /tmp/sd/p.*.out | python3 -c "import json,sys
n=0
for l in sys.stdin:
    try: n += len(json.loads(l).get('generated') or [])
    except Exception: pass
print(n)")
  say "self-distillation: $n answers, $toks tokens in $(( $(date +%s) - t ))s with $K GPU and $KC CPU pipelines"
  tail -q -n 2 /tmp/sd/p.000.err | sed 's/^/  sd err: /' | tee -a "$SUM"
fi
say "total $(( $(date +%s) - T0 ))s"
# the device tool returns at most 8 files: the logs and metrics travel as one archive
(cd "$OUT" && tar czf smollm2-logs.tgz --remove-files ./*.err ./*.metrics ./*.log 2>/dev/null)
