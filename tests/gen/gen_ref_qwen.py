#!/usr/bin/env python3
"""llama.cpp reference logits and greedy paths for the two Qwen2.5-Coder K-quant GGUFs (issue 23).

Writes, for Qwen2.5-Coder-0.5B-Instruct-Q4_K_M (key qwen05) and -1.5B- (key qwen15):
  tests/data/ref_<key>_llamacpp.bin.gz   HASSREF fixture (tests/unit/ref.h): prompt ids, top-16
                                         rows at every prompt position, 64 greedy ids with
                                         their top-16 rows; no full logits (151936 per row)
  tests/data/ref_<key>_prompts.jsonl     the prompts (text, or messages + rendered) with
                                         llama.cpp's ids, greedy ids, text and margins
Chat prompts carry an explicit system turn, so the comparison does not depend on the
template's default system message; they are rendered by jinja2 from the GGUF's own
tokenizer.chat_template (gen_ref_llamacpp.render_chat, as for SmolLM2).

--compare DUMP: read hass's full logits at every prompt position (written by
tests/gen/qwen_dump_logits.c from the same fixture) and print, per prompt, the full-vocabulary
comparison with llama.cpp: max |diff|, normalised error sum (a-b)^2 / sum b^2, max |diff| over
the logit standard deviation, argmax agreement. Needs llama.cpp's full rows, so it reruns
the prompts (nothing is written).

Run from the repository root:  python3 tests/gen/gen_ref_qwen.py [--model qwen05|qwen15|all]
Generation only; tests never run Python.  See tests/data/README.md section 7.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_ref_common as rc  # noqa: E402
import gen_ref_llamacpp as lc  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
# without ggml's extra buffer types: on an Intel host with AMX, llama.cpp 0.3.36's AMX matmul
# segfaults at its first ldtilecfg (SmolLM2 too), and the plain path is the one that reproduces
# the committed SmolLM2 fixture bit for bit (top-16 rows identical) on both the AMD host that
# made it and this Intel one
from bench_llamacpp import without_extra_bufts as plain_ggml  # noqa: E402

import llama_cpp  # noqa: E402

MODELS = {
    "qwen05": "models/Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf",
    "qwen15": "models/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf",
}
N_GEN = 64
# One thread: ggml's OpenMP team spin-waits, which crawls on a loaded 2-core machine; every
# dot product is computed by one thread, so the logits do not depend on the count.
lc.N_THREADS = 1
SYSTEM = "You are a helpful assistant."


def chat(user):
    """Messages of one chat prompt: the fixed system turn and one user turn."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def prompts():
    """The Qwen prompt list: (name, kind, payload); our own prompts (no benchmark items)."""
    return [
        ("raw_colors", "text", "The three primary colors of light are"),
        ("raw_py_merge", "text", 'def merge_sorted(a, b):\n    """Merge two sorted lists into '
                                 'one sorted list."""\n'),
        ("raw_c_fib", "text", "#include <stdio.h>\n\n/* Print the first n Fibonacci numbers. */\n"
                              "void print_fib(int n) {\n"),
        ("chat_prime", "chat", chat("Write a Python function that checks whether a number is "
                                    "prime.")),
        ("chat_js_words", "chat", chat("Write a JavaScript function that reverses the order of "
                                       "the words in a sentence.")),
        ("chat_sql", "chat", chat("Write an SQL query that returns the ten customers with the "
                                  "highest total order amount from tables customers and orders.")),
        ("chat_git", "chat", chat("Explain the difference between git merge and git rebase in "
                                  "three sentences.")),
        ("chat_c_bug", "chat", chat("Find the bug in this C function:\n\nint sum(int *a, int n) "
                                    "{\n    int s;\n    for (int i = 0; i <= n; i++) s += a[i];\n"
                                    "    return s;\n}")),
        ("chat_bash", "chat", chat("Give a bash command that counts the lines of all .c files "
                                   "under the current directory.")),
    ]


def texts(path):
    """(name, kind, payload, text) of every prompt, chat prompts rendered."""
    tmpl = lc.chat_template(path)
    return [(n, k, p, lc.render_chat(tmpl, p) if k == "chat" else p) for n, k, p in prompts()]


def build(key, out_dir):
    """Generate the fixture and prompt list of one model."""
    path = MODELS[key]
    llm = lc.open_model(path, 1024)
    entries, jrecs = [], []
    for name, kind, payload, text in texts(path):
        e = lc.run_prompt(llm, name, text, N_GEN)
        e.last = None  # 151936 logits per row: too large to commit
        entries.append(e)
        jrecs.append(lc.prompt_record(name, kind, payload, text, e))
    cp = llm.context_params
    source = ("llama.cpp via llama-cpp-python %s; %s; n_threads=%d n_batch=%d n_ubatch=%d "
              "n_ctx=%d type_k=%d type_v=%d use_extra_bufts=0 logits_all=1; prompt in one "
              "batch, greedy one token per eval" %
              (llama_cpp.__version__, llama_cpp.llama_print_system_info().decode().strip(),
               lc.N_THREADS, cp.n_batch, cp.n_ubatch, cp.n_ctx, cp.type_k, cp.type_v))
    base = os.path.join(out_dir, "ref_%s" % key)
    raw = rc.write_fixture(base + "_llamacpp.bin.gz", os.path.basename(path), source,
                           llm.n_vocab(), entries, logits_type=rc.LOGITS_F32)
    with open(base + "_prompts.jsonl", "w") as f:
        for r in jrecs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print("%s: %d prompts, %d bytes raw, %d bytes gz" %
          (base, len(entries), raw, os.path.getsize(base + "_llamacpp.bin.gz")), file=sys.stderr)


def read_dump(path):
    """hass's logits written by qwen_dump_logits.c: {name: (n_tok, V) float32 array}."""
    out = {}
    with open(path, "rb") as f:
        while True:
            h = f.read(4)
            if not h:
                return out
            n, = struct.unpack("<I", h)
            name = f.read(n).decode()
            t, v = struct.unpack("<II", f.read(8))
            out[name] = np.frombuffer(f.read(4 * t * v), "<f4").reshape(t, v)


def compare(key, dump, f32_gguf=None):
    """Full-vocabulary comparison of hass's prompt logits with llama.cpp's, per prompt; with
    f32_gguf, llama.cpp runs that all-F32 copy of the model with an f32 KV cache (compare
    hass's --f32 dump with it)."""
    ours = read_dump(dump)
    path = MODELS[key]
    llm = lc.open_model(f32_gguf or path, 1024, kv_f32=f32_gguf is not None)
    print("%-14s %4s %9s %9s %9s %9s %9s %8s %9s %7s %s" %
          ("prompt", "n", "maxdiff", "max pos>0", "meandiff", "nmse", "nmse pos>0", "max/std",
           "minmargin", "top1", "top-1 disagreements (pos: margin llama.cpp/hass)"))
    tot = [0, 0]
    for name, kind, payload, text in texts(path):
        if name not in ours:
            continue
        toks = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        llm.reset()
        llm.eval(toks)
        ref = np.array(llm.scores[:len(toks)], dtype=np.float64)
        a = ours[name].astype(np.float64)
        assert a.shape == ref.shape, (name, a.shape, ref.shape)
        d = np.abs(a - ref)
        nmse = ((a - ref) ** 2).sum() / (ref ** 2).sum()
        nmse1 = ((a - ref)[1:] ** 2).sum() / max((ref[1:] ** 2).sum(), 1e-30)
        rel = (d.max(axis=1) / ref.std(axis=1)).max()
        am_r, am_o = ref.argmax(axis=1), a.argmax(axis=1)
        srt_r, srt_o = np.sort(ref, axis=1), np.sort(a, axis=1)
        mr, mo = srt_r[:, -1] - srt_r[:, -2], srt_o[:, -1] - srt_o[:, -2]
        dis = ["%d: %.3f/%.3f" % (i, mr[i], mo[i]) for i in np.nonzero(am_r != am_o)[0]]
        tot[0] += int((am_r == am_o).sum())
        tot[1] += len(toks)
        print("%-14s %4d %9.3g %9.3g %9.3g %9.2e %9.2e %8.3g %9.4f %3d/%-3d %s" %
              (name, len(toks), d.max(), d[1:].max(), d.mean(), nmse, nmse1, rel, mr.min(),
               int((am_r == am_o).sum()), len(toks), " ".join(dis)))
    print("top-1 agreement over all prompt positions: %d of %d" % (tot[0], tot[1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["qwen05", "qwen15", "all"], default="all")
    ap.add_argument("--out", default="tests/data")
    ap.add_argument("--compare", metavar="DUMP", help="compare hass's logits dump (one model)")
    ap.add_argument("--f32-gguf", metavar="PATH", help="with --compare: llama.cpp on this all-F32 "
                    "copy (gen_ref_f32gguf.py), f32 KV cache")
    a = ap.parse_args()
    plain_ggml()
    keys = ["qwen05", "qwen15"] if a.model == "all" else [a.model]
    for k in keys:
        if a.compare:
            compare(k, a.compare, a.f32_gguf)
        else:
            build(k, a.out)


if __name__ == "__main__":
    main()
