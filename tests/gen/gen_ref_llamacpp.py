#!/usr/bin/env python3
"""Reference logits and greedy continuations from llama.cpp (via llama-cpp-python).

Writes, for SmolLM2-135M-Instruct (Q4_1) and stories260K (F32):
  tests/data/ref_<model>_llamacpp.bin.gz   HASSREF fixture (tests/unit/ref.h reads it)
  tests/data/ref_<model>_prompts.jsonl     the prompts with llama.cpp's ids and greedy text
Run from the repository root:  python3 tests/gen/gen_ref_llamacpp.py
Generation only; tests never run Python.  See tests/data/README.md for the format.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_ref_common as rc  # noqa: E402

import llama_cpp  # noqa: E402
from llama_cpp import Llama  # noqa: E402

N_THREADS = 2
N_GEN = 64
N_STORY = 200
HASS_DATA = os.environ.get("HASS_DATA", "../shared/data")
SMOL = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
# All-F32 copy of SmolLM2 (same weight values; ~540 MB, never committed).
SMOL_F32 = os.environ.get("HASS_SMOL_F32", "/tmp/smollm2-f32.gguf")
STORIES = os.path.join(HASS_DATA, "models/stories260K/stories260K-v3-f32.gguf")

# MT-bench first turns used as chat prompts (question_id, category).
MT_BENCH_IDS = [81, 108, 120, 126, 141, 159]


def smol_prompts():
    """The SmolLM2 prompt list: (name, kind, payload); kind is 'text' or 'chat'."""
    out = [
        ("raw_capital", "text", "The capital of France is"),
        ("raw_prose", "text", "Once upon a time in a small village by the sea, there lived an "
                              "old fisherman who"),
        ("raw_code", "text", 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'),
        ("raw_math", "text", "Question: A train travels at 60 miles per hour for 3 hours. "
                             "How far does it travel?\nAnswer:"),
        ("raw_unicode", "text", "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～ Führer"),
    ]
    import gzip
    with gzip.open(os.path.join(HASS_DATA, "humaneval/HumanEval.jsonl.gz"), "rt") as f:
        he = [json.loads(l) for l in f]
    out.append(("humaneval_2", "text", he[2]["prompt"]))
    with open(os.path.join(HASS_DATA, "gsm8k/test.jsonl")) as f:
        g = json.loads(f.readline())
    out.append(("gsm8k_0", "text", "Question: " + g["question"] + "\nAnswer:"))
    qs = {}
    with open(os.path.join(HASS_DATA, "mt_bench/question.jsonl")) as f:
        for l in f:
            q = json.loads(l)
            qs[q["question_id"]] = q
    for qid in MT_BENCH_IDS:
        q = qs[qid]
        out.append(("mtbench_%d_%s" % (qid, q["category"]), "chat",
                    [{"role": "user", "content": q["turns"][0]}]))
    out.append(("chat_system", "chat",
                [{"role": "system", "content": "You are a concise assistant."},
                 {"role": "user", "content": "What is a hash table? Answer in two sentences."}]))
    return out


def stories_prompts():
    """The stories260K prompt list: BOS alone plus story starts (BOS added by the tokenizer)."""
    starts = ["Once upon a time", "One day, a little girl named Lily", "Tom and his dog",
              "The sun was shining", "Once upon a time, there was a big bear", "Sara wanted to",
              "The little bird", "Ben had a red ball", "It was a rainy day", "Mom said,"]
    out = [("bos", "text", "")]
    out += [("story_%d" % i, "text", s) for i, s in enumerate(starts)]
    return out


def render_chat(template, messages):
    """Render messages with the GGUF's own jinja2 chat template (add_generation_prompt)."""
    import jinja2
    env = jinja2.Environment(trim_blocks=False, lstrip_blocks=False)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True,
                                             bos_token="<|im_start|>", eos_token="<|im_end|>")


def chat_template(path):
    """tokenizer.chat_template of a GGUF file."""
    import gguf
    r = gguf.GGUFReader(path)
    f = r.fields.get("tokenizer.chat_template")
    return f.contents() if f is not None else None


def open_model(path, n_ctx, kv_f32=False):
    """llama.cpp context with every-position logits, 2 threads, one batch per prompt; KV cache
    f16 (llama.cpp's default) or f32."""
    kv = {"type_k": 0, "type_v": 0} if kv_f32 else {}
    return Llama(model_path=path, logits_all=True, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
                 n_threads=N_THREADS, n_threads_batch=N_THREADS, seed=0, verbose=False, **kv)


def f32_copy():
    """Path of the all-F32 copy of the SmolLM2 GGUF (made by gen_ref_f32gguf.py if missing)."""
    if not os.path.exists(SMOL_F32):
        import subprocess
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.check_call([sys.executable, os.path.join(here, "gen_ref_f32gguf.py"), SMOL,
                               SMOL_F32])
    return SMOL_F32


def is_eog(llm, t):
    """Whether t is an end-of-generation token of the model's vocab."""
    try:
        return bool(llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llm.model), t))
    except AttributeError:
        return t == llm.token_eos()


def run_prompt(llm, name, text, n_gen):
    """Evaluate one prompt in one batch, then n_gen greedy steps one token at a time."""
    toks = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
    e = rc.Entry(name, text, toks)
    llm.reset()
    llm.eval(toks)
    sc = np.array(llm.scores[:len(toks)], dtype=np.float32)
    e.pos_rows = list(sc)
    e.last = sc[-1].copy()
    for step in range(n_gen):
        row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        t = int(np.argmax(row))
        e.gen.append(t)
        e.gen_rows.append(row)
        if e.eos_at < 0 and is_eog(llm, t):
            e.eos_at = step
        if step + 1 < n_gen:
            llm.eval([t])
    # Cross-check with llama.cpp's own sampler at temperature 0 (top_k=1, no penalties).
    # llm.reset() first: generate() would otherwise reuse the cached prompt KV and re-evaluate
    # the last prompt token alone, which is not bit-identical to the batched prompt pass.
    llm.reset()
    ref = []
    for t in llm.generate(toks, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0,
                          reset=True):
        ref.append(int(t))
        if len(ref) == n_gen:
            break
    assert ref == e.gen, "%s: manual argmax loop %s != llama.cpp sampler %s" % (name, e.gen, ref)
    upto = e.gen if e.eos_at < 0 else e.gen[:e.eos_at]
    e.gen_text = llm.detokenize(upto, prev_tokens=toks, special=False)
    e.full_text = llm.detokenize(toks + upto, special=False)
    return e


def prompt_record(name, kind, payload, text, e):
    """The JSONL record of one prompt (hass-tokenize input plus llama.cpp's results, ref_*);
    prints a summary line."""
    gm = [rc.margin(r) for r in e.gen_rows]
    rec = {"id": name}
    if kind == "chat":
        rec["messages"] = payload
        rec["rendered"] = text
    else:
        rec["text"] = text
    rec.update({"ref_tokens": e.tokens, "ref_greedy_tokens": e.gen,
                "ref_eos_at": e.eos_at,
                "ref_greedy_text": e.gen_text.decode("utf-8", errors="replace"),
                "ref_full_text": e.full_text.decode("utf-8", errors="replace"),
                "ref_greedy_margins": [round(x, 4) for x in gm],
                "ref_min_margin": round(min(gm), 5),
                "ref_min_margin_step": int(np.argmin(gm))})
    print("%-26s n_tok %4d  eos_at %3d  min margin %.4f at step %d  %r" %
          (name, len(e.tokens), e.eos_at, min(gm), int(np.argmin(gm)),
           e.gen_text[:60].decode("utf-8", "replace")), file=sys.stderr)
    return rec


def build(model_key, out_dir):
    """Generate the fixture and prompt list of one model; returns the entries."""
    kv_f32, keep_last = False, True
    if model_key == "smollm2":
        path, prompts, ltype = SMOL, smol_prompts(), rc.LOGITS_F16
        tmpl = chat_template(path)
    elif model_key == "smollm2_f32w":
        # llama.cpp on the same weights without its Q8 activation quantization: F32 matrices
        # and an f32 KV cache, i.e. plain f32 arithmetic (README: why).  Rows and greedy paths
        # only; the numpy fixture carries full logits.
        path, prompts, ltype = f32_copy(), smol_prompts(), rc.LOGITS_F32
        tmpl, kv_f32, keep_last = chat_template(SMOL), True, False
    else:
        path, prompts, ltype = STORIES, stories_prompts(), rc.LOGITS_F32
        tmpl = None
    llm = open_model(path, 512 if model_key == "stories260k" else 1024, kv_f32)
    n_vocab = llm.n_vocab()
    entries, jrecs = [], []
    for name, kind, payload in prompts:
        if kind == "chat":
            text = render_chat(tmpl, payload)
        else:
            text = payload
        n_gen = N_STORY if (model_key == "stories260k" and name == "bos") else N_GEN
        e = run_prompt(llm, name, text, n_gen)
        if not keep_last:
            e.last = None
        entries.append(e)
        jrecs.append(prompt_record(name, kind, payload, text, e))
    cp = llm.context_params
    source = ("llama.cpp via llama-cpp-python %s; %s; n_threads=%d n_batch=%d n_ubatch=%d "
              "n_ctx=%d type_k=%d type_v=%d flash_attn=%s logits_all=1; prompt in one batch, "
              "greedy one token per eval" %
              (llama_cpp.__version__, llama_cpp.llama_print_system_info().decode().strip(),
               N_THREADS, cp.n_batch, cp.n_ubatch, cp.n_ctx, cp.type_k, cp.type_v,
               getattr(cp, "flash_attn_type", getattr(cp, "flash_attn", "?"))))
    base = os.path.join(out_dir, "ref_%s" % model_key)
    model = os.path.basename(SMOL if model_key == "smollm2_f32w" else path)
    if model_key == "smollm2_f32w":
        source += "; weights: every tensor of %s dequantized to F32 (gen_ref_f32gguf.py)" % model
    raw = rc.write_fixture(base + "_llamacpp.bin.gz", model, source, n_vocab,
                           entries, logits_type=ltype)
    with open(base + "_prompts.jsonl", "w") as f:
        for r in jrecs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print("%s: %d prompts, %d bytes raw, %d bytes gz; %s" %
          (base, len(entries), raw, os.path.getsize(base + "_llamacpp.bin.gz"), source),
          file=sys.stderr)
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["smollm2", "smollm2_f32w", "stories260k", "all"],
                    default="all")
    ap.add_argument("--out", default="tests/data")
    a = ap.parse_args()
    for m in (["stories260k", "smollm2", "smollm2_f32w"] if a.model == "all" else [a.model]):
        build(m, a.out)


if __name__ == "__main__":
    main()
