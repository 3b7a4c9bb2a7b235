#!/usr/bin/env python3
"""Make tests/data/chat_renderings.jsonl and tests/data/chat_templates.json: reference renderings
of the four chat templates with the real Jinja templates (jinja2, as transformers renders them:
trim_blocks/lstrip_blocks, raise_exception), over a handful of conversations. Run once from the
repo root: python3 tests/gen/gen_chat.py [SmolLM2.gguf] [data dir].

Where each template string comes from:
  chatml       SmolLM2-135M-Instruct GGUF, key tokenizer.chat_template
  llama-3      $HASS_DATA/tokenizer/hf/Meta-Llama-3-8B-Instruct/tokenizer_config.json
  llama-2-chat the chat_template of meta-llama/Llama-2-7b-chat-hf's tokenizer_config.json (the
               well-known string, written out below)
  vicuna       written for this project after FastChat's vicuna_v1.1 conversation template
               (system, sep " ", sep2 "</s>", roles USER/ASSISTANT), which HASS uses for Vicuna
"""
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

LLAMA2 = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
          "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
          "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
          "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
          "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
          "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
          "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
          "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
          "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
          "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
VICUNA = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
          "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
          "{% set system_message = 'A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user\\'s questions.' %}{% endif %}"
          "{{ system_message + ' ' }}{% for message in loop_messages %}{% if message['role'] == 'user' %}"
          "{{ 'USER: ' + message['content'] + ' ' }}{% elif message['role'] == 'assistant' %}"
          "{{ 'ASSISTANT: ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
          "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")


def smollm2_template(model):
    from gguf import GGUFReader
    f = GGUFReader(model).fields['tokenizer.chat_template']
    return bytes(f.parts[f.data[0]]).decode()


def llama3_template(data):
    cfg = json.load(open(f'{data}/tokenizer/hf/Meta-Llama-3-8B-Instruct/tokenizer_config.json'))
    return cfg['chat_template']



U, A, S = 'user', 'assistant', 'system'
CONVS = [
    [(U, 'Hello!')],
    [(S, 'You are a pirate.'), (U, 'Where is the treasure?')],
    [(U, 'What is 2+2?'), (A, '4.'), (U, 'And 3+3?')],
    [(S, 'Be brief.'), (U, 'Name a color.'), (A, 'Blue.'), (U, 'Another one?')],
    [(U, '  padded question \n\n'), (A, '\n answer with spaces  '), (U, '\tlast\t')],
    [(S, ' Système: réponds en français. '), (U, 'Füße, 🦙 et 你好 ? Привет!')],
    [(U, '')],
    [(U, 'Write a haiku.'), (A, 'Old pond\nfrog jumps in\nsplash')],
    [(U, 'line one\nline two\r\n<b>tags</b> & "quotes" \\ backslash')],
    [(U, 'first'), (U, 'second without an answer between')],
]


def render(tmpl, bos, eos, msgs, gen):
    """Render as transformers' apply_chat_template does: its Jinja settings, helpers and variables
    (tools and documents None)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])

    def raise_exception(m):
        raise jinja2.exceptions.TemplateError(m)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals['raise_exception'] = raise_exception
    env.filters['tojson'] = tojson
    return env.from_string(tmpl).render(messages=msgs, bos_token=bos, eos_token=eos, tools=None, documents=None,
                                        add_generation_prompt=gen)


def record(key, name, tmpl, bos, eos, conv, gen):
    """One fixture line: a conversation of (role, content) pairs rendered, or the template's error."""
    msgs = [{'role': r, 'content': c} for r, c in conv]
    rec = {key: name, 'add_generation_prompt': gen, 'messages': msgs}
    try:
        rec['text'] = render(tmpl, bos, eos, msgs, gen)
    except jinja2.exceptions.TemplateError as e:
        rec['error'] = str(e)
    return json.dumps(rec, ensure_ascii=False) + '\n'


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else 'models/SmolLM2-135M-Instruct.Q4_1.gguf'
    data = sys.argv[2] if len(sys.argv) > 2 else os.environ.get('HASS_DATA', '../shared/data')
    templates = {
        'chatml': (smollm2_template(model), '<|im_start|>', '<|im_end|>'),
        'llama-3': (llama3_template(data), '<|begin_of_text|>', '<|end_of_text|>'),
        'llama-2-chat': (LLAMA2, '<s>', '</s>'),
        'vicuna': (VICUNA, '<s>', '</s>'),
    }
    os.makedirs('tests/data', exist_ok=True)
    with open('tests/data/chat_templates.json', 'w', encoding='utf-8') as f:
        json.dump({k: v[0] for k, v in templates.items()}, f, ensure_ascii=False, indent=1)
        f.write('\n')
    n = 0
    with open('tests/data/chat_renderings.jsonl', 'w', encoding='utf-8') as out:
        for name, (tmpl, bos, eos) in templates.items():
            for conv in CONVS:
                for gen in (True, False):
                    out.write(record('template', name, tmpl, bos, eos, conv, gen))
                    n += 1
    print(f'{n} renderings, jinja2 {jinja2.__version__}', file=sys.stderr)


if __name__ == '__main__':
    main()
