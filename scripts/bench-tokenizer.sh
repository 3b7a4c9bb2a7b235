#!/usr/bin/env bash
# bench-tokenizer.sh: encoding throughput (tokens/s) of hass-tokenize beside llama.cpp
# (llama-cpp-python, vocab only) and Hugging Face tokenizers on the same SmolLM2 vocabulary and
# the same texts, in one run. A benchmark, not a test: numbers depend on the machine and its load.
#
#   scripts/bench-tokenizer.sh [MODEL.gguf] [REPEAT]
#
# Corpus: every ShareGPT text in $HASS_DATA/sharegpt (original_example, ShareGPT_V3_filtered_500,
# dummy_conversation), concatenated REPEAT times (default 14, about 3.9 MB), one JSONL record per
# message. hass-tokenize is timed end to end (JSON parsing and writing included) and its ids are
# checked against llama.cpp's. Each timing is the median of 3 runs. Peers run single-threaded
# (tokenizers' encode, not encode_batch) so the comparison is per core.
set -eu
cd "$(dirname "$0")/.."
MODEL=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
REPEAT=${2:-14}
HASS_DATA=${HASS_DATA:-../shared/data}
BIN=${BUILD:-build}/bin
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
[ -x "$BIN/hass-tokenize" ] || { echo "build first (make)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "$MODEL missing (make models)" >&2; exit 1; }

python3 - "$HASS_DATA" "$REPEAT" >"$TMPD/corpus.jsonl" <<'PY'
import json, sys
data, rep = sys.argv[1], int(sys.argv[2])
texts = []
for name in ('original_example.json', 'ShareGPT_V3_filtered_500.json', 'dummy_conversation.json'):
    for c in json.load(open(f'{data}/sharegpt/{name}', encoding='utf-8')):
        texts += [m['value'] for m in c['conversations']]
for r in range(rep):
    for t in texts:
        print(json.dumps({'text': t}, ensure_ascii=False))
PY
BYTES=$(python3 -c "import json,sys; print(sum(len(json.loads(l)['text'].encode()) for l in open(sys.argv[1])))" "$TMPD/corpus.jsonl")
echo "corpus: $(wc -l <"$TMPD/corpus.jsonl") texts, $BYTES bytes of text (ShareGPT x$REPEAT)"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

times=()
for i in 1 2 3; do
  t0=$(date +%s.%N)
  "$BIN/hass-tokenize" -m "$MODEL" --no-bos --buffered <"$TMPD/corpus.jsonl" >"$TMPD/hass.jsonl"
  t1=$(date +%s.%N)
  times+=("$(echo "$t1 - $t0" | bc)")
done
HASS_S=$(printf '%s\n' "${times[@]}" | sort -g | sed -n 2p)

python3 - "$MODEL" "$TMPD/corpus.jsonl" "$TMPD/hass.jsonl" "$HASS_S" <<'PY'
import json, sys, time, statistics
from llama_cpp import Llama
from gguf import GGUFReader
from tokenizers import Tokenizer, models, pre_tokenizers
model, corpus, hass_out, hass_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
texts = [json.loads(l)['text'] for l in open(corpus, encoding='utf-8')]
hass_ids = [json.loads(l)['tokens'] for l in open(hass_out, encoding='utf-8')]
n_tok = sum(len(x) for x in hass_ids)
llm = Llama(model_path=model, vocab_only=True, verbose=False)
r = GGUFReader(model)
f = r.fields['tokenizer.ggml.tokens']; toks = [bytes(f.parts[i]).decode() for i in f.data]
f = r.fields['tokenizer.ggml.merges']; merges = [tuple(bytes(f.parts[i]).decode().split(' ', 1)) for i in f.data]
hf = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(toks)}, merges=merges))
hf.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
enc = [t.encode('utf-8') for t in texts]

def bench(fn):
    ts = []
    for _ in range(3):
        t0 = time.perf_counter(); out = fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out

l_s, l_ids = bench(lambda: [llm.tokenize(b, add_bos=False, special=False) for b in enc])
h_s, h_ids = bench(lambda: [hf.encode(t, add_special_tokens=False).ids for t in texts])
same = sum(a == b for a, b in zip(hass_ids, l_ids))
print(f"ids identical to llama.cpp: {same}/{len(texts)} texts; to tokenizers: {sum(a == b for a, b in zip(hass_ids, h_ids))}/{len(texts)}")
print(f"{'implementation':44s} {'seconds':>8s} {'tokens/s':>12s}")
for name, s in (('hass-tokenize (JSONL in/out, 1 thread)', hass_s),
                ('llama.cpp via llama-cpp-python 0.3 (1 thread)', l_s),
                ('HF tokenizers encode (1 thread)', h_s)):
    print(f"{name:44s} {s:8.3f} {n_tok / s:12.0f}")
PY
