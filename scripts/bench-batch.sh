#!/usr/bin/env bash
# scripts/bench-batch.sh: throughput of hass-verify --batch N (N = 1, 2, 4, 8, 16) beside
# examples/fanout.sh -P 2 (two processes, THREADS/2 threads each), same records, same total
# threads, interleaved rounds (every configuration once per round, ROUNDS rounds) so that
# machine noise hits all of them; medians. tokens/s = tokens generated / wall seconds of the
# whole command (model load included: fan-out loads the model once per process). Every
# configuration's output is checked to be the output of --batch 1 (timing removed).
# Models: SmolLM2-135M and, when present, Qwen2.5-Coder-1.5B. Speculative rows (--draft HEAD
# --tree auto, as the README runs it on a CPU; when the head is present): --batch N for the same
# N (each record its own tree, one forward over all of them) and fan-out -P 2; greedy, so their
# output is checked against speculative --batch 1 too.
# Environment: BUILD (build), MODELS_DIR (models), THREADS (2), RECORDS (16), GEN (64),
# ROUNDS (3), BATCHES ("1 2 4 8 16"), HEAD (heads/smollm2-135m-instruct; "" for none),
# QWEN (1: include the 1.5B when present).
# Output: a markdown table on stdout; one line per run on stderr.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MD=${MODELS_DIR:-models}
THREADS=${THREADS:-2}
RECORDS=${RECORDS:-16}
GEN=${GEN:-64}
ROUNDS=${ROUNDS:-3}
BATCHES=${BATCHES:-1 2 4 8 16}
HEAD=${HEAD-heads/smollm2-135m-instruct}
QWEN=${QWEN:-1}
export PATH="$PWD/$BUILD/bin:$PATH"
command -v jq >/dev/null || { echo "bench-batch: needs jq" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-batch.XXXXXX"); trap 'rm -rf "$T"' EXIT
HALF=$(( THREADS / 2 > 0 ? THREADS / 2 : 1 ))

MODELS=("$MD/SmolLM2-135M-Instruct.Q4_1.gguf")
[ "$QWEN" = 1 ] && [ -e "$MD/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf" ] && MODELS+=("$MD/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf")
[ -e "${MODELS[0]}" ] || { echo "bench-batch: ${MODELS[0]} not found (make models)" >&2; exit 1; }

# RECORDS chat prompts of different lengths
TOPICS=(cats rivers "the moon" bread trains music gardens snow "old maps" bees clocks islands
        bicycles lanterns owls tea)
for i in $(seq 0 $((RECORDS - 1))); do
  jq -cn --arg t "${TOPICS[$((i % ${#TOPICS[@]}))]}" --argjson i "$i" \
    '{id: $i, messages: [{role: "user", content: ("Write a few sentences about " + $t + ".")}]}'
done >"$T/prompts.jsonl"

# configs of a model: "name|command" (the command reads $T/in.jsonl, writes $T/out.jsonl)
configs() {
  local m=$1 spec=$2 d="" v
  [ -n "$spec" ] && d="--draft $HEAD --tree auto"
  v="hass-verify -m $m -n $GEN --ignore-eos $d"
  for n in $BATCHES; do echo "batch $n|$v --threads $THREADS --batch $n <$T/in.jsonl >$T/out.jsonl"; done
  echo "fanout -P 2|examples/fanout.sh -P 2 -i $T/in.jsonl -o $T/out.jsonl -- '$v --threads $HALF'"
}

# run MODEL MODE: ROUNDS interleaved rounds of every config; rows of the table on stdout
bench_model() {
  local m=$1 spec=$2 mode=plain name cmd r t0 t1 n
  [ -n "$spec" ] && mode="spec"
  hass-tokenize -m "$m" "$T/prompts.jsonl" >"$T/in.jsonl" 2>/dev/null || { echo "bench-batch: tokenize failed" >&2; return 1; }
  mapfile -t CFG < <(configs "$m" "$spec")
  : >"$T/times"
  for r in $(seq "$ROUNDS"); do
    for c in "${CFG[@]}"; do
      name=${c%%|*}; cmd=${c#*|}
      t0=$(date +%s.%N)
      bash -c "$cmd" 2>>"$T/log" || { echo "bench-batch: $name failed (see below)" >&2; tail -3 "$T/log" >&2; return 1; }
      t1=$(date +%s.%N)
      n=$(jq -s 'map(.generated // [] | length) | add' "$T/out.jsonl")
      jq -c 'del(.timing)' "$T/out.jsonl" >"$T/cmp.$mode.$(echo "$name" | tr -c 'a-z0-9\n' _)"
      echo "$name|$(echo "$t1 - $t0" | bc -l)|$n" >>"$T/times"
      echo "$(basename "$m") $mode round $r: $name: $n tokens in $(echo "$t1 - $t0" | bc -l | cut -c1-6) s" >&2
    done
  done
  local ref="$T/cmp.$mode.batch_1"
  for f in "$T"/cmp."$mode".*; do cmp -s "$f" "$ref" || echo "bench-batch: $(basename "$f") differs from batch 1" >&2; done
  local base=""
  for c in "${CFG[@]}"; do
    name=${c%%|*}
    local med tok tps
    med=$(grep "^$name|" "$T/times" | cut -d'|' -f2 | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    tok=$(grep "^$name|" "$T/times" | head -1 | cut -d'|' -f3)
    tps=$(echo "$tok / $med" | bc -l)
    [ -z "$base" ] && base=$tps
    printf '| %s | %s | %s | %d | %.2f | %.1f | %.2fx |\n' "$(basename "$m" .gguf)" "$mode" "$name" "$tok" "$med" "$tps" "$(echo "$tps / $base" | bc -l)"
  done
}

echo "RECORDS=$RECORDS GEN=$GEN THREADS=$THREADS ROUNDS=$ROUNDS (medians; wall time includes model load)"
echo
echo "| model | mode | config | tokens | s | tok/s | vs batch 1 |"
echo "|---|---|---|---:|---:|---:|---:|"
for m in "${MODELS[@]}"; do
  bench_model "$m" "" || exit 1
  if [ -n "$HEAD" ] && [ -e "$HEAD/config.json" ] && [[ $(basename "$m") == SmolLM2* ]]; then
    bench_model "$m" spec || exit 1
  fi
done
