#!/usr/bin/env python3
"""Make small Hugging Face tokenizer.json fixtures and their reference ids (HF tokenizers):
  tests/data/tok_json/stories260k/tokenizer.json  the stories260K SentencePiece vocabulary in
      LLaMA's HF layout (BPE with byte_fallback, Prepend/Replace normalizer, merges extracted
      from the vocabulary as transformers' LlamaConverter does)
  tests/data/tok_json/bytelevel/tokenizer.json (+ tokenizer_config.json)  a 600-token
      byte-level BPE trained here on MT-bench questions (GPT-2 pre-tokenizer, ByteLevel decoder,
      special token <|endoftext|>, a ChatML chat template in the config)
  tests/data/tok_json_ids.jsonl  {"tok": name, "text": ..., "tokens": [...]} from HF tokenizers
Run once from the repo root: python3 tests/gen/gen_tok_json.py [data dir]
"""
import json
import os
import sys

from gguf import GGUFReader
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers, AddedToken

data = sys.argv[1] if len(sys.argv) > 1 else os.environ.get('HASS_DATA', '../shared/data')
out = 'tests/data/tok_json'

# --- stories260K as an HF LLaMA tokenizer.json
r = GGUFReader(f'{data}/models/stories260K/stories260K-v3-f32.gguf')
f = r.fields['tokenizer.ggml.tokens']
toks = [bytes(f.parts[i]).decode() for i in f.data]
vocab = {t: i for i, t in enumerate(toks)}
merges = []
for a in toks[3:]:
    for b in toks[3:]:
        m = a + b
        if m in vocab and vocab[m] >= 259:
            merges.append((vocab[m], vocab[a], vocab[b], a, b))
merges.sort()
spm = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for _, _, _, a, b in merges], byte_fallback=True,
                           fuse_unk=True, unk_token='<unk>'))
spm.normalizer = normalizers.Sequence([normalizers.Prepend('\u2581'), normalizers.Replace(' ', '\u2581')])
spm.decoder = decoders.Sequence([decoders.Replace('\u2581', ' '), decoders.ByteFallback(), decoders.Fuse(),
                                 decoders.Strip(' ', 1, 0)])
spm.add_special_tokens([AddedToken('<unk>', special=True, normalized=False),
                        AddedToken('<s>', special=True, normalized=False),
                        AddedToken('</s>', special=True, normalized=False)])
os.makedirs(f'{out}/stories260k', exist_ok=True)
spm.save(f'{out}/stories260k/tokenizer.json')

# --- a small byte-level BPE trained on MT-bench questions
texts = []
for line in open(f'{data}/mt_bench/question.jsonl', encoding='utf-8'):
    texts += json.loads(line)['turns']
bl = Tokenizer(models.BPE())
bl.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
bl.decoder = decoders.ByteLevel()
tr = trainers.BpeTrainer(vocab_size=600, special_tokens=['<|endoftext|>'],
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
bl.train_from_iterator(texts, tr)
os.makedirs(f'{out}/bytelevel', exist_ok=True)
bl.save(f'{out}/bytelevel/tokenizer.json')
with open(f'{out}/bytelevel/tokenizer_config.json', 'w') as fo:
    json.dump({'bos_token': None, 'eos_token': '<|endoftext|>', 'add_bos_token': False,
               'chat_template': "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}"},
              fo, indent=1)

samples = ['Hello world', ' Hello world', '', ' ', '\n\n', 'Once upon a time, there was a little girl.',
           'Füße 🦙 你好 ... 3.14159 and 1234567', "I'm here, you're there; we'll see.  Double  spaces\t tabs",
           '<s>not special</s>', 'Lily wanted to play with the big red ball.']
samples += texts[:40]
with open('tests/data/tok_json_ids.jsonl', 'w', encoding='utf-8') as fo:
    for name, tk in (('stories260k', spm), ('bytelevel', bl)):
        for t in samples:
            fo.write(json.dumps({'tok': name, 'text': t, 'tokens': tk.encode(t, add_special_tokens=False).ids},
                                ensure_ascii=False) + '\n')
print('ok', file=sys.stderr)
