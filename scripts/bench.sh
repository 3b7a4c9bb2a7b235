#!/usr/bin/env bash
# scripts/bench.sh: `make bench`. The CPU engine (hass-bench) beside llama.cpp (llama-cpp-python,
# when importable) on the same GGUF with the same thread count, in the same run, interleaved
# (ours, peer, ours, peer) so that machine noise hits both; medians over REPS repetitions.
# Prints a markdown table (stdout) for docs/PERF.md, after the machine's roofline as measured
# first (hass-bench --roofline: read bandwidth, vpdpbusd throughput); raw JSONL is kept in $OUT.
# Environment: BUILD (build), MODEL (models/SmolLM2-135M-Instruct.Q4_1.gguf), THREADS (all
# cores), REPS (5), PROMPT (512), GEN (128), CONTEXT (128), CURVE (1,2,4,8,16,32,64),
# LONG_CONTEXT (1024) and LONG_CURVE (1,2,4,8,16: the same forwards after a longer context,
# where attention weighs; LONG_CURVE=none skips them),
# ROUNDS (2: each side runs twice, the better median of each is reported), OUT (a temp dir),
# PEER (llamacpp; f32: the peer column is hass-bench --f32, the f32-activation mode; or the path
# of another hass-bench binary, e.g. a build of an older commit, for before/after tables).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-5}
PROMPT=${PROMPT:-512}
GEN=${GEN:-128}
CONTEXT=${CONTEXT:-128}
CURVE=${CURVE:-1,2,4,8,16,32,64}
LONG_CONTEXT=${LONG_CONTEXT:-1024}
LONG_CURVE=${LONG_CURVE:-1,2,4,8,16}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/hass-bench.XXXXXX")}
mkdir -p "$OUT"
if [ ! -e "$MODEL" ]; then
  echo "bench: $MODEL not found (make models)" >&2
  exit 1
fi
PEER=${PEER:-llamacpp}
peer=0
if [ "$PEER" = f32 ]; then peer=1; peer_cmd=("$BUILD/bin/hass-bench" -q --f32); peer_name="hass --f32"
elif [ -x "$PEER" ] && [ -f "$PEER" ]; then peer=1; peer_cmd=("$PEER" -q); peer_name="$PEER"
elif python3 -c 'import llama_cpp' 2>/dev/null; then
  peer=1; peer_cmd=(python3 scripts/bench_llamacpp.py); peer_name=llama.cpp
else
  echo "bench: llama_cpp (llama-cpp-python) not importable: no peer column" >&2
fi
echo "bench: roofline: hass-bench --roofline" >&2
"$BUILD/bin/hass-bench" --roofline -t "$THREADS" > "$OUT/roofline.jsonl"
args=(-m "$MODEL" -t "$THREADS" -p "$PROMPT" -g "$GEN" -c "$CONTEXT" --curve "$CURVE" -r "$REPS")
long=(-m "$MODEL" -t "$THREADS" -p 0 -g 0 -c "$LONG_CONTEXT" --curve "$LONG_CURVE" -r "$REPS")
for r in $(seq 1 "$ROUNDS"); do
  echo "bench: round $r/$ROUNDS: hass-bench" >&2
  "$BUILD/bin/hass-bench" -q "${args[@]}" > "$OUT/hass.$r.jsonl"
  if [ "$LONG_CURVE" != none ]; then "$BUILD/bin/hass-bench" -q "${long[@]}" >> "$OUT/hass.$r.jsonl"; fi
  if [ $peer = 1 ]; then
    echo "bench: round $r/$ROUNDS: $peer_name" >&2
    "${peer_cmd[@]}" "${args[@]}" > "$OUT/peer.$r.jsonl"
    if [ "$LONG_CURVE" != none ]; then "${peer_cmd[@]}" "${long[@]}" >> "$OUT/peer.$r.jsonl"; fi
  fi
done
python3 - "$OUT" "$ROUNDS" "$peer" "${peer_name:-llama.cpp}" <<'PY'
import json, sys, os, platform
out, rounds, peer, pn = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
def load(side):
    best = {}
    for r in range(1, rounds + 1):
        for l in open(os.path.join(out, "%s.%d.jsonl" % (side, r))):
            j = json.loads(l)
            k = (j["bench"], j.get("n"), j.get("context"))
            if j["bench"] == "config":
                best.setdefault(k, j)
                continue
            if k not in best or j["tok_s"] > best[k]["tok_s"]: best[k] = j
    return best
h = load("hass"); p = load("peer") if peer else {}
cfg = h[("config", None, None)]
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
print("Machine: %s, %d logical CPUs; threads %d; kernels %s; %d reps per median, best of %d rounds"
      % (cpu[0] if cpu else platform.processor(), os.cpu_count(), cfg["threads"], cfg["kernels"],
         cfg["reps"], rounds))
print("Load average at the end: %s" % open("/proc/loadavg").read().split()[:3])
roof = [json.loads(l) for l in open(os.path.join(out, "roofline.jsonl"))]
rd = [j for j in roof if j["bench"] == "roofline_read"]
vn = [j for j in roof if j["bench"] == "roofline_vpdpbusd"]
print("Roofline: streaming read %s over %d MiB" % (", ".join("%.1f GB/s (%d thread%s)" % (j["gb_s"], j["threads"], "s" * (j["threads"] > 1))
      for j in rd), rd[0]["mib"]))
if vn and "skipped" in vn[0]:
    print("Roofline: vpdpbusd zmm: skipped, %s" % vn[0]["skipped"])
else:
    print("Roofline: vpdpbusd zmm %s" % ", ".join("%.1f G multiply-adds/s (%d thread%s)" % (j["gmac_s"], j["threads"], "s" * (j["threads"] > 1))
          for j in vn))
pc = p.get(("config", None, None), {})
if pc.get("extra_bufts") is False:
    print("Peer: %s without ggml's extra buffer types (AMX and repacked weights; its AMX matmul "
          "crashes on this host), i.e. ggml's plain AVX-512/AVX2 dot kernels" % pc.get("peer", pn))
# the roofline of each measurement: the weights read once from memory at the measured
# bandwidth, or their multiply-adds at the measured vpdpbusd peak, whichever takes longer
# (attention and the other small work left out, so no row can reach 100%)
th = cfg["threads"]
bw = max((j["gb_s"] for j in rd if j["threads"] <= th), default=rd[0]["gb_s"])
peak = max((j["gmac_s"] for j in vn if "gmac_s" in j and j["threads"] <= th), default=0)
wb, wm, lmm = cfg.get("weight_bytes", 0), cfg.get("weight_macs", 0), cfg.get("lm_head_macs", 0)
def floor_ms(kind, n):
    if not wb: return 0
    mem = wb / (bw * 1e9) * 1e3
    macs = {"prefill": n * (wm - lmm) + lmm, "decode": wm, "forward": n * wm}[kind]
    return max(mem, macs / (peak * 1e9) * 1e3 if peak else 0)
if wb:
    print("Roofline of a step: %.1f MB of weights (%.1f ms at %.1f GB/s), %.1f M multiply-adds a token"
          % (wb / 1e6, wb / (bw * 1e9) * 1e3, bw, wm / 1e6))
print()
print("| measurement | hass tok/s | %s tok/s | ratio | hass ms | %s ms | hass %% of roofline | %s %% of roofline | hass CPU ms | %s CPU ms |" % (pn, pn, pn, pn))
print("|---|---|---|---|---|---|---|---|---|---|")
for key in sorted(h, key=lambda k: ({"prefill": 0, "decode": 1, "forward": 2}.get(k[0], 9), k[2] or 0, k[1] or 0)):
    if key[0] == "config": continue
    a = h[key]; b = p.get(key)
    name = {"prefill": "prefill %d tokens" % key[1], "decode": "decode %d tokens" % key[1],
            "forward": "forward N=%d (after %d)" % (key[1], a.get("context", 0))}[key[0]]
    ms = lambda j: j.get("ms", j.get("ms_per_token"))
    cpu = lambda j: "%.2f" % j.get("cpu_ms", j.get("cpu_ms_per_token")) if j else "-"
    fl = floor_ms(key[0], key[1])
    pct = lambda j: "%.0f%%" % (100 * fl / ms(j)) if j and fl else "-"
    print("| %s | %.1f | %s | %s | %.2f | %s | %s | %s | %s | %s |" % (name, a["tok_s"], "%.1f" % b["tok_s"] if b else "-",
          "%.2f" % (a["tok_s"] / b["tok_s"]) if b else "-", ms(a), "%.2f" % ms(b) if b else "-", pct(a), pct(b),
          cpu(a), cpu(b)))
print()
for side, d, nm in [("hass", h, "hass")] + ([("peer", p, pn)] if peer else []):
    for c in sorted({k[2] for k in d if k[0] == "forward"}):
        one = d.get(("forward", 1, c))
        if one:
            print("%s forward N / forward 1 after %d: %s" % (nm, c, ", ".join("N=%d %.2fx" % (k[1], d[k]["ms"] / one["ms"])
                  for k in sorted(d) if k[0] == "forward" and k[2] == c and k[1] > 1)))
print()
print("(decode ms is per token; forward ms is one call over N tokens with logits for all N rows;")
print("% of roofline: the step's weight bytes at the measured read bandwidth, or its weight")
print("multiply-adds at the measured vpdpbusd peak, whichever is longer, over the time taken;")
print("CPU ms is process CPU time over all threads, steadier than wall time on a shared machine)")
PY
echo "bench: raw results in $OUT" >&2
