#!/usr/bin/env python3
"""Make tests/data/tok_smollm2.jsonl.gz: SmolLM2-135M-Instruct token ids of real texts, from an
independent implementation (llama.cpp through llama-cpp-python 0.3.x, vocab only, no BOS, no
special-token parsing). Run once from the repo root:

    python3 tests/gen/gen_tok_smollm2.py [models/SmolLM2-135M-Instruct.Q4_1.gguf] [data dir]

Texts: MT-bench turns (question.jsonl), HumanEval prompts (HumanEval.jsonl.gz), ShareGPT
(original_example.json all messages, ShareGPT_V3_filtered_500.json first turns,
dummy_conversation.json first 100 conversations). One line per text:
{"src": "...", "text": "...", "tokens": [...]}.
"""
import gzip
import json
import os
import sys

import llama_cpp
from llama_cpp import Llama

model = sys.argv[1] if len(sys.argv) > 1 else 'models/SmolLM2-135M-Instruct.Q4_1.gguf'
data = sys.argv[2] if len(sys.argv) > 2 else os.environ.get('HASS_DATA', '../shared/data')
llm = Llama(model_path=model, vocab_only=True, verbose=False)

texts = []
for line in open(f'{data}/mt_bench/question.jsonl', encoding='utf-8'):
    q = json.loads(line)
    for k, t in enumerate(q['turns']):
        texts.append((f"mt_bench/{q['question_id']}/{k}", t))
for line in gzip.open(f'{data}/humaneval/HumanEval.jsonl.gz', 'rt', encoding='utf-8'):
    p = json.loads(line)
    texts.append((p['task_id'], p['prompt']))
for name, limit in (('original_example.json', None), ('ShareGPT_V3_filtered_500.json', None),
                    ('dummy_conversation.json', 100)):
    convs = json.load(open(f'{data}/sharegpt/{name}', encoding='utf-8'))
    for c in convs[:limit]:
        for k, m in enumerate(c['conversations']):
            texts.append((f"sharegpt/{c['id']}/{k}", m['value']))

# second opinion: HF tokenizers built from the GGUF vocab and merges with SmolLM2's pre-tokenizer
# (Digits(individual) + ByteLevel); the fixture is written only if both implementations agree.
from gguf import GGUFReader
from tokenizers import Tokenizer, models, pre_tokenizers
r = GGUFReader(model)
f = r.fields['tokenizer.ggml.tokens']
toks = [bytes(f.parts[i]).decode() for i in f.data]
f = r.fields['tokenizer.ggml.merges']
merges = [tuple(bytes(f.parts[i]).decode().split(' ', 1)) for i in f.data]
hf = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(toks)}, merges=merges))
hf.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])

with gzip.open('tests/data/tok_smollm2.jsonl.gz', 'wt', encoding='utf-8', compresslevel=9) as out:
    for src, t in texts:
        ids = llm.tokenize(t.encode('utf-8'), add_bos=False, special=False)
        assert ids == hf.encode(t, add_special_tokens=False).ids, src
        out.write(json.dumps({'src': src, 'text': t, 'tokens': ids}, ensure_ascii=False) + '\n')
print(f'{len(texts)} texts, llama-cpp-python {llama_cpp.__version__}', file=sys.stderr)
