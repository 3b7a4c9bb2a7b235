#!/usr/bin/env bash
# device_cuda.sh: the binaries with --device cuda on stories260K (skips without a CUDA device or
# in a CPU-only build): plain GPU greedy == CPU greedy, speculative decoding on the GPU (the
# draft head on the GPU too, a random head) == plain GPU greedy, stochastic speculative decoding
# runs, and hass-draft --device cuda serves the same trees over the back channel. A difference
# passes only at a near tie: the reference's top1 - top2 margin there below 0.1 (--margins).
cd "$(dirname "$0")/../.."
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
[ -e "$M" ] || { echo "stories260K missing"; exit 77; }
hass-verify -V | grep -q cuda || { echo "CPU-only build"; exit 77; }
echo '{"tokens":[1]}' | hass-verify -m "$M" --device cuda -n 1 >/dev/null 2>&1
[ $? = 4 ] && { echo "no CUDA device"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/device-test.XXXXXX"); trap 'rm -rf "$T"' EXIT
printf '{"id":1,"tokens":[1,403,407,261,378]}\n{"id":2,"tokens":[1,300,301,302]}\n' >"$T/p.jsonl"
fail=0
# same REF GOT WHAT: generated ids equal, or the first difference at a near tie of REF
same() {
  paste -d' ' <(jq -c '[.generated, .margins]' "$1") <(jq -c .generated "$2") | while read -r a b; do
    jq -n --argjson a "$a" --argjson b "$b" '
      ($a[0]) as $r | ($a[1]) as $m |
      ([range(0; [($r|length), ($b|length)] | min)] | map(select($r[.] != $b[.])) | first) as $i |
      if $i == null and ($r|length) == ($b|length) then "same"
      elif $i != null and $m[$i] < 0.1 then "near tie at \($i) (margin \($m[$i]))"
      else "DIFFERENT at \($i // ($r|length)) (margin \(if $i then $m[$i] else null end))" end'
  done | tee "$T/why" | sed "s/^/$3: /"
  ! grep -q DIFFERENT "$T/why"
}
hass-verify -m "$M" --device cpu --ignore-eos -n 64 --margins "$T/p.jsonl" >"$T/cpu" || fail=1
hass-verify -m "$M" --device cuda -v --ignore-eos -n 64 --margins "$T/p.jsonl" >"$T/gpu" 2>"$T/err" || { cat "$T/err"; fail=1; }
grep -q 'device: cuda' "$T/err" || { echo "no 'device: cuda' line with -v"; fail=1; }
same "$T/cpu" "$T/gpu" "gpu greedy vs cpu greedy" || fail=1
hass-draft -m "$M" --init-random "$T/h" -s 5 || exit 1
hass-verify -m "$M" --device cuda -d "$T/h" --ignore-eos -n 64 "$T/p.jsonl" >"$T/spec" || fail=1
same "$T/gpu" "$T/spec" "gpu speculative (gpu drafter) vs gpu greedy" || fail=1
hass-draft -m "$M" -d "$T/h" --device cuda "$T/p.jsonl" | hass-verify -m "$M" --device cuda --ignore-eos -n 64 >"$T/two" || fail=1
same "$T/gpu" "$T/two" "two processes on the gpu vs gpu greedy" || fail=1
n=$(hass-verify -m "$M" --device cuda -d "$T/h" -t 0.8 --top-p 0.9 -s 3 --ignore-eos -n 40 "$T/p.jsonl" | jq '.generated | length' | tr '\n' ' ')
[ "$n" = "40 40 " ] || { echo "stochastic speculative on the gpu: lengths '$n'"; fail=1; }
exit $fail
