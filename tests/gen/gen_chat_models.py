#!/usr/bin/env python3
"""Make tests/data/chat_models.json and tests/data/chat_model_renderings.jsonl: the chat templates
of real GGUF files (key tokenizer.chat_template, with the BOS/EOS token texts of the same file)
and what jinja2 renders from them, the way transformers' apply_chat_template does (gen_chat.py's
render). test_tokenizer_chat renders the same conversations with hass's auto template, from the
stored template strings, so the test needs none of the GGUF files.

Run from the repo root: python3 tests/gen/gen_chat_models.py [GGUF ...]
(default: the GGUFs scripts fetch into models/ and every GGUF under $HASS_DATA, ../shared/data;
files without a template are listed on stderr and left out). Needs gguf and jinja2.
"""
import glob
import json
import os
import sys

import jinja2
from gguf import GGUFReader

from gen_chat import CONVS, record

U, A, S = 'user', 'assistant', 'system'
# besides gen_chat's: an empty system message, an assistant first, a system turn later on
EXTRA = [
    [(S, ''), (U, 'Hi')],
    [(A, 'Hello, how can I help?'), (U, 'Tell me a joke.')],
    [(U, 'a'), (A, 'b'), (S, 'late system'), (U, 'c')],
]


# ChatML templates written for this project, to test how hass finds a template's default system
# turn: behind "if tools" / elif, with escapes and joined literals, beside a macro and a comment
# that mention one, and under loop.index0 == 0 in the loop (bos/eos as SmolLM2's)
LOOP = ("{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
        "'<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
SYNTHETIC = {
    'synthetic/tools-elif': (
        "{%- if tools is not none %}{{- '<|im_start|>system\\nYou call tools.<|im_end|>\\n' }}"
        "{%- elif messages[0].role != 'system' %}"
        "{{- '<|im_start|>system\\nDefault: it\\'s \"quoted\" \\\\ here.<|im_end|>\\n' }}{%- endif %}" + LOOP),
    'synthetic/macro-joined': (
        "{#- <|im_start|>system\\nnot this comment<|im_end|> -#}"
        "{%- macro sys(t) %}{{ '<|im_start|>system\\n' + t + '<|im_end|>\\n' }}{%- endmacro %}"
        "{%- if not (messages[0]['role'] == \"system\") and (tools is none or false) %}"
        "{{- \"<|im_start|>system\\n\" + 'Joined ' ~ \"parts.<|im_end|>\\n\" }}{%- endif %}" + LOOP),
    'synthetic/first-pass': (
        "{%- for message in messages %}{%- if loop.index0 == 0 and messages[0]['role'] != 'system' %}"
        "{{- '<|im_start|>system\\nFirst pass.<|im_end|>\\n' }}{%- endif %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"),
}


def ggufs():
    data = os.environ.get('HASS_DATA', '../shared/data')
    return sorted(glob.glob('models/*.gguf')) + sorted(glob.glob(f'{data}/**/*.gguf', recursive=True))


def field_str(r, key, i=0):
    f = r.fields.get(key)
    return bytes(f.parts[f.data[i]]).decode() if f else None


def token_text(r, key):
    f = r.fields.get(key)
    return field_str(r, 'tokenizer.ggml.tokens', int(f.parts[f.data[0]][0])) if f else None


def model_entry(path):
    """{template, bos_token, eos_token} of a GGUF, None without a template (or unreadable: v1)."""
    try:
        r = GGUFReader(path)
    except ValueError as e:
        print(f'{path}: skipped ({e})', file=sys.stderr)
        return None
    tmpl = field_str(r, 'tokenizer.chat_template')
    if tmpl is None:
        print(f'{path}: no chat template', file=sys.stderr)
        return None
    return {'template': tmpl, 'bos_token': token_text(r, 'tokenizer.ggml.bos_token_id') or '',
            'eos_token': token_text(r, 'tokenizer.ggml.eos_token_id') or ''}


def main():
    models = {}
    for path in sys.argv[1:] or ggufs():
        e = model_entry(path)
        if e:
            models[os.path.basename(path)] = e
    for name, tmpl in SYNTHETIC.items():
        models[name] = {'template': tmpl, 'bos_token': '<|im_start|>', 'eos_token': '<|im_end|>'}
    with open('tests/data/chat_models.json', 'w', encoding='utf-8') as f:
        json.dump(models, f, ensure_ascii=False, indent=1)
        f.write('\n')
    n = 0
    with open('tests/data/chat_model_renderings.jsonl', 'w', encoding='utf-8') as out:
        for name, m in models.items():
            for conv in CONVS + EXTRA:
                for gen in (True, False):
                    out.write(record('model', name, m['template'], m['bos_token'], m['eos_token'], conv, gen))
                    n += 1
    print(f'{len(models)} templates, {n} renderings, jinja2 {jinja2.__version__}', file=sys.stderr)


if __name__ == '__main__':
    main()
