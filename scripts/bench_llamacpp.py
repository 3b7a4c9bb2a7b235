#!/usr/bin/env python3
"""The peer for `make bench`: llama.cpp (llama-cpp-python) on the same GGUF, same threads.

Prints the same JSONL lines as hass-bench: prefill of P random tokens (logits of the last row),
decode of G tokens one at a time (logits of each), and one forward of N tokens after a committed
context of C tokens with logits for all N rows (the verify cost). Medians over --reps.
A benchmark helper, never a test and never part of the product.
"""
import argparse
import json
import os
import random
import statistics
import time

import llama_cpp
from llama_cpp import Llama
from llama_cpp import llama_cpp as llama_lib


def has_amx():
    """Whether this CPU has AMX tiles (Intel Sapphire Rapids and later)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(ln.startswith("flags") and " amx_tile" in ln for ln in f)
    except OSError:
        return False


def without_extra_bufts():
    """Load models without ggml's extra buffer types (AMX, repacked weights): on an Intel host
    with AMX, llama.cpp 0.3.36's AMX matmul segfaults at its first ldtilecfg. The peer then runs
    ggml's plain CPU kernels (its AVX-512/AVX2 vec_dot), which the config line says."""
    default = llama_lib.llama_model_default_params

    def params():
        p = default()
        p.use_extra_bufts = False
        return p
    llama_lib.llama_model_default_params = params


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count())
    ap.add_argument("-p", "--prompt", type=int, default=512)
    ap.add_argument("-g", "--gen", type=int, default=128)
    ap.add_argument("-c", "--context", type=int, default=128)
    ap.add_argument("--curve", default="1,2,4,8,16,32,64")
    ap.add_argument("-r", "--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--extra-bufts", choices=["auto", "on", "off"], default="auto",
                    help="ggml's repacked/AMX weight buffers (auto: off on an AMX host)")
    a = ap.parse_args()
    extra = a.extra_bufts == "on" or (a.extra_bufts == "auto" and not has_amx())
    if not extra:
        without_extra_bufts()
    sizes = [] if a.curve == "none" else [int(x) for x in a.curve.split(",")]
    n_ctx = max([a.prompt + a.gen + 1, a.context + max(sizes or [0]) + 1, 64])
    kw = dict(model_path=a.model, n_ctx=n_ctx, n_batch=max(a.prompt, max(sizes or [1]), 1),
              n_ubatch=max(a.prompt, max(sizes or [1]), 1), n_threads=a.threads,
              n_threads_batch=a.threads, seed=0, verbose=False)
    llm = Llama(**kw)
    V = llm.n_vocab()
    rnd = random.Random(a.seed)
    toks = [rnd.randrange(V) for _ in range(max(a.prompt, a.context, max(sizes or [1])))]
    name = os.path.basename(a.model)
    print(json.dumps({"bench": "config", "model": name, "threads": a.threads,
                      "peer": "llama.cpp via llama-cpp-python " + llama_cpp.__version__,
                      "reps": a.reps, "extra_bufts": extra}), flush=True)
    llm.reset()
    llm.eval(toks[:1])  # warm-up
    if a.prompt > 0:
        t, tc = [], []
        for _ in range(a.reps):
            llm.reset()
            t0, c0 = time.perf_counter(), time.process_time()
            llm.eval(toks[:a.prompt])
            t.append(time.perf_counter() - t0)
            tc.append(time.process_time() - c0)
        md, mc = statistics.median(t), statistics.median(tc)
        print(json.dumps({"bench": "prefill", "n": a.prompt, "ms": round(md * 1e3, 3),
                          "tok_s": round(a.prompt / md, 2), "cpu_ms": round(mc * 1e3, 3)}), flush=True)
    if a.gen > 0:
        t, tc = [], []
        for _ in range(a.reps):
            llm.reset()
            cur = toks[0]
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(a.gen):
                llm.eval([cur])
                cur = toks[(i + 1) % len(toks)]
            t.append(time.perf_counter() - t0)
            tc.append(time.process_time() - c0)
        md, mc = statistics.median(t), statistics.median(tc)
        print(json.dumps({"bench": "decode", "n": a.gen, "ms_per_token": round(md * 1e3 / a.gen, 3),
                          "tok_s": round(a.gen / md, 2),
                          "cpu_ms_per_token": round(mc * 1e3 / a.gen, 3)}), flush=True)
    if sizes:
        del llm
        llm = Llama(logits_all=True, **kw)  # verification needs the logits of every block row
        llm.reset()
        if a.context:
            llm.eval(toks[:a.context])
        for n in sizes:
            t, tc = [], []
            for _ in range(a.reps):
                llm.n_tokens = a.context
                t0, c0 = time.perf_counter(), time.process_time()
                llm.eval(toks[:n])
                t.append(time.perf_counter() - t0)
                tc.append(time.process_time() - c0)
            md, mc = statistics.median(t), statistics.median(tc)
            print(json.dumps({"bench": "forward", "n": n, "context": a.context,
                              "ms": round(md * 1e3, 3), "tok_s": round(n / md, 2),
                              "cpu_ms": round(mc * 1e3, 3)}), flush=True)


if __name__ == "__main__":
    main()
