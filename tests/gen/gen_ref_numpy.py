#!/usr/bin/env python3
"""Exact reference forward in numpy (weights dequantized to f32 by gguf, arithmetic in f64).

An f32-activation engine should match these logits to ~1e-3; llama.cpp does not, because its
CPU path quantizes activations to Q8 blocks before Q4_1/Q8_0 dot products and keeps the KV
cache in f16.  This script also measures that gap against llama.cpp on the same prompts and
checks which RoPE layout each file needs (adjacent pairs, llama.cpp mode 0, vs NeoX halves).

Writes tests/data/ref_smollm2_f32.bin.gz and tests/data/ref_stories260k_f32.bin.gz (HASSREF,
see tests/data/README.md) and prints the comparison table used in that README.
Run from the repository root after gen_ref_llamacpp.py:  python3 tests/gen/gen_ref_numpy.py
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_ref_common as rc  # noqa: E402
import gen_ref_llamacpp as lc  # noqa: E402

import gguf  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

# SmolLM2 prompts whose full last-position logits are stored (f32); the others keep only the
# per-position top-16 rows and the greedy path.
SMOL_FULL = ["raw_capital", "raw_code", "chat_system"]


class Model:
    """A llama-architecture GGUF dequantized to f64 numpy arrays."""

    def __init__(self, path, rope="norm"):
        r = gguf.GGUFReader(path)
        f = {k: v.contents() for k, v in r.fields.items()
             if k.startswith("llama.") and not isinstance(v.contents(), list)}
        self.n_layer = f["llama.block_count"]
        self.n_embd = f["llama.embedding_length"]
        self.n_head = f["llama.attention.head_count"]
        self.n_kv = f.get("llama.attention.head_count_kv", self.n_head)
        self.eps = f.get("llama.attention.layer_norm_rms_epsilon", 1e-5)
        self.theta = f.get("llama.rope.freq_base", 10000.0)
        self.hd = self.n_embd // self.n_head
        self.n_rot = f.get("llama.rope.dimension_count", self.hd)
        self.rope = rope
        self.aq = None   # optional activation quantizer applied to every matmul input
        self.w = {}
        for t in r.tensors:
            a = dequantize(t.data, t.tensor_type).astype(np.float32)
            shape = [int(x) for x in reversed(t.shape)]
            self.w[t.name] = a.reshape(shape).astype(np.float64)
        self.out = self.w.get("output.weight", self.w["token_embd.weight"])
        self.n_vocab = self.out.shape[0]

    def rmsnorm(self, x, w):
        """RMSNorm over the last axis."""
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope_apply(self, x, pos):
        """RoPE on (n_tok, n_heads, hd): adjacent pairs ('norm', mode 0) or halves ('neox')."""
        d = self.n_rot
        inv = self.theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)   # (d/2)
        ang = np.asarray(pos, dtype=np.float64)[:, None] * inv[None, :]    # (n_tok, d/2)
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        y = x.copy()
        if self.rope == "norm":
            a, b = x[..., 0:d:2], x[..., 1:d:2]
            y[..., 0:d:2] = a * c - b * s
            y[..., 1:d:2] = a * s + b * c
        else:
            a, b = x[..., :d // 2], x[..., d // 2:d]
            y[..., :d // 2] = a * c - b * s
            y[..., d // 2:d] = a * s + b * c
        return y

    def forward(self, toks, cache):
        """Logits (n_tok, n_vocab) for toks appended after the cached positions."""
        w = self.w
        p0 = cache["n"]
        pos = np.arange(p0, p0 + len(toks))
        x = w["token_embd.weight"][np.asarray(toks)]                       # (n_tok, n_embd)
        grp = self.n_head // self.n_kv
        for l in range(self.n_layer):
            b = "blk.%d." % l
            h = self.q(self.rmsnorm(x, w[b + "attn_norm.weight"]))
            q = (h @ w[b + "attn_q.weight"].T).reshape(len(toks), self.n_head, self.hd)
            k = (h @ w[b + "attn_k.weight"].T).reshape(len(toks), self.n_kv, self.hd)
            v = (h @ w[b + "attn_v.weight"].T).reshape(len(toks), self.n_kv, self.hd)
            q, k = self.rope_apply(q, pos), self.rope_apply(k, pos)
            K = np.concatenate([cache["k"][l], k]) if p0 else k             # (n_ctx, n_kv, hd)
            V = np.concatenate([cache["v"][l], v]) if p0 else v
            cache["k"][l], cache["v"][l] = K, V
            att = np.empty((len(toks), self.n_head, self.hd))
            mask = pos[:, None] >= np.arange(len(K))[None, :]               # (n_tok, n_ctx)
            for hh in range(self.n_head):
                s = q[:, hh, :] @ K[:, hh // grp, :].T / np.sqrt(self.hd)
                s = np.where(mask, s, -np.inf)
                s = np.exp(s - s.max(axis=1, keepdims=True))
                s /= s.sum(axis=1, keepdims=True)
                att[:, hh, :] = s @ V[:, hh // grp, :]
            x = x + self.q(att.reshape(len(toks), -1)) @ w[b + "attn_output.weight"].T
            h = self.q(self.rmsnorm(x, w[b + "ffn_norm.weight"]))
            g = h @ w[b + "ffn_gate.weight"].T
            u = h @ w[b + "ffn_up.weight"].T
            x = x + self.q(g / (1.0 + np.exp(-g)) * u) @ w[b + "ffn_down.weight"].T
        cache["n"] = p0 + len(toks)
        return self.q(self.rmsnorm(x, w["output_norm.weight"])) @ self.out.T

    def q(self, x):
        """A matmul input, through the activation quantizer when one is set."""
        return x if self.aq is None else self.aq(x)

    def new_cache(self):
        """Empty KV cache."""
        return {"n": 0, "k": [None] * self.n_layer, "v": [None] * self.n_layer}


def greedy(m, toks, n_gen):
    """Prompt logits (f64) and n_gen greedy steps with their rows."""
    cache = m.new_cache()
    lg = m.forward(toks, cache)
    rows, gen, row = [], [], lg[-1]
    for i in range(n_gen):
        t = int(np.argmax(row))
        gen.append(t)
        rows.append(row)
        if i + 1 < n_gen:
            row = m.forward([t], cache)[-1]
    return lg, gen, rows


def first_diff(a, b):
    """First index where two id lists differ, or -1."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return -1


def compare(model_key, gguf_path, full_names, n_gen, out_path, jsonl_path):
    """Numpy forward of every prompt in a llama.cpp fixture; write the fixture and report."""
    from llama_cpp import Llama
    refs = [json.loads(l) for l in open(jsonl_path)]
    m = Model(gguf_path, "norm")
    entries = []
    # llama.cpp with an f32 KV cache, to separate the KV-cache rounding from the rest.
    llm32 = Llama(model_path=gguf_path, logits_all=True, n_ctx=512, n_batch=512, n_ubatch=512,
                  n_threads=lc.N_THREADS, n_threads_batch=lc.N_THREADS, type_k=0, type_v=0,
                  verbose=False)
    llm16 = lc.open_model(gguf_path, 512 if model_key == "stories260k" else 1024)
    print("\n%s: numpy f64 (dequantized f32 weights) vs llama.cpp, all prompt positions" %
          model_key)
    print("| prompt | n_tok | max abs diff vs llama.cpp (f16 KV, default) | vs llama.cpp f32 KV"
          " | max abs logit | argmax agree | greedy path vs llama.cpp |")
    print("|---|---|---|---|---|---|---|")
    stats = []
    for r in refs:
        name = r["id"]
        toks = r["ref_tokens"]
        text = r.get("text", r.get("rendered"))
        lg, gen, rows = greedy(m, toks, n_gen if name != "bos" else lc.N_STORY)
        llm16.reset(); llm16.eval(toks)
        l16 = np.array(llm16.scores[:len(toks)], dtype=np.float64)
        llm32.reset(); llm32.eval(toks)
        l32 = np.array(llm32.scores[:len(toks)], dtype=np.float64)
        d16 = float(np.abs(lg - l16).max())
        d32 = float(np.abs(lg - l32).max())
        agree = int((lg.argmax(1) == l16.argmax(1)).sum())
        ref_gen = r["ref_greedy_tokens"]
        fd = first_diff(gen, ref_gen)
        if fd < 0:
            gd = "identical (%d)" % len(gen)
        else:
            # margin of llama.cpp's row at the divergence, from the llama.cpp fixture
            gd = "step %d: numpy %d vs llama.cpp %d (margin numpy %.4f, llama.cpp %.4f)" % (
                fd, gen[fd], ref_gen[fd], rc.margin(rows[fd]), r["ref_greedy_margins"][fd])
        stats.append((name, d16, d32, fd))
        print("| %s | %d | %.2e | %.2e | %.1f | %d/%d | %s |" %
              (name, len(toks), d16, d32, np.abs(lg).max(), agree, len(toks), gd))
        e = rc.Entry(name, text, toks)
        e.pos_rows = [x.astype(np.float32) for x in lg]
        if name in full_names:
            e.last = lg[-1].astype(np.float32)
        e.gen = gen
        e.gen_rows = [x.astype(np.float32) for x in rows]
        e.eos_at = next((i for i, t in enumerate(gen) if t == 2), -1)
        upto = gen if e.eos_at < 0 else gen[:e.eos_at]
        e.gen_text = llm16.detokenize(upto, prev_tokens=toks, special=False)
        entries.append(e)
    source = ("numpy %s forward, f64 arithmetic, weights dequantized to f32 by gguf %s "
              "(gguf.quants.dequantize); RoPE adjacent pairs (llama.cpp mode 0), theta %g; "
              "prompt in one pass, greedy one token per step with a KV cache" %
              (np.__version__, getattr(gguf, "__version__", "0.19.0"), m.theta))
    raw = rc.write_fixture(out_path, os.path.basename(gguf_path), source, m.n_vocab, entries,
                           logits_type=rc.LOGITS_F32)
    print("%s: %d prompts, %d raw bytes, %d gz" % (out_path, len(entries), raw,
                                                  os.path.getsize(out_path)), file=sys.stderr)
    return m, stats


def rope_check(m, toks, llm_rows):
    """Max |diff| vs llama.cpp with the other RoPE layout, to show which one the file needs."""
    m.rope = "neox"
    lg = m.forward(toks, m.new_cache())
    m.rope = "norm"
    return float(np.abs(lg - llm_rows).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["smollm2", "stories260k", "all"], default="all")
    ap.add_argument("--out", default="tests/data")
    ap.add_argument("--report", action="store_true", help="only print the greedy-path tables")
    ap.add_argument("--f32-check", action="store_true",
                    help="only compare numpy with llama.cpp on the all-F32 copy of SmolLM2")
    ap.add_argument("--q8-check", action="store_true",
                    help="only measure the effect of Q8 activation quantization in numpy")
    a = ap.parse_args()
    if a.q8_check:
        q8_check(a.out)
        return
    if a.report:
        report(a.out)
        return
    if a.f32_check:
        f32_check(a.out)
        return
    from llama_cpp import Llama
    for key in (["stories260k", "smollm2"] if a.model == "all" else [a.model]):
        path = lc.SMOL if key == "smollm2" else lc.STORIES
        full = SMOL_FULL if key == "smollm2" else None
        names = full if full is not None else [r["id"] for r in map(json.loads, open(
            os.path.join(a.out, "ref_%s_prompts.jsonl" % key)))]
        m, stats = compare(key, path, names, lc.N_GEN,
                           os.path.join(a.out, "ref_%s_f32.bin.gz" % key),
                           os.path.join(a.out, "ref_%s_prompts.jsonl" % key))
        r0 = json.loads(open(os.path.join(a.out, "ref_%s_prompts.jsonl" % key)).readlines()[1])
        llm = Llama(model_path=path, logits_all=True, n_ctx=512, n_batch=512, n_threads=2,
                    type_k=0, type_v=0, verbose=False)
        llm.eval(r0["ref_tokens"])
        rows = np.array(llm.scores[:len(r0["ref_tokens"])], dtype=np.float64)
        norm = float(np.abs(m.forward(r0["ref_tokens"], m.new_cache()) - rows).max())
        print("RoPE check on %s (%s): max|diff| vs llama.cpp f32 KV: adjacent pairs (mode 0) "
              "%.5f, NeoX halves %.5f" % (key, r0["id"], norm, rope_check(m, r0["ref_tokens"],
                                                                        rows)))




def q8_blocks(ties_even):
    """Q8 activation quantizer (blocks of 32, d = amax/127 kept as f16, int8 values): ties to
    even with x*(127/amax) (as ggml's x86 code reads to us) or half away from zero with x/d."""
    def quant(x):
        b = x.reshape(-1, 32).astype(np.float32)
        amax = np.abs(b).max(axis=1, keepdims=True)
        d = amax / np.float32(127)
        safe = np.where(amax > 0, amax, 1).astype(np.float32)
        if ties_even:
            q = np.rint(b * np.where(amax > 0, np.float32(127) / safe, 0))
        else:
            v = b * np.where(amax > 0, np.float32(1) / np.where(d > 0, d, 1), 0)
            q = np.sign(v) * np.floor(np.abs(v) + 0.5)
        dh = d.astype(np.float16).astype(np.float64)
        return (q.astype(np.float64) * dh).reshape(x.shape)
    return quant


def q8_check(out_dir, n_prompts=3):
    """How much Q8 activation quantization moves SmolLM2's logits, and how chaotic it is: f32
    activations vs two Q8 emulations that differ only in rounding details."""
    m = Model(lc.SMOL)
    print("| prompt | Q8 (ties even) vs f32 | Q8 ties even vs Q8 half away | mean of the latter |")
    print("|---|---|---|---|")
    for line in list(open(os.path.join(out_dir, "ref_smollm2_prompts.jsonl")))[:n_prompts]:
        r = json.loads(line)
        t = r["ref_tokens"]
        out = []
        for aq in (None, q8_blocks(True), q8_blocks(False)):
            m.aq = aq
            out.append(m.forward(t, m.new_cache()))
        m.aq = None
        a, b = np.abs(out[1] - out[0]), np.abs(out[1] - out[2])
        print("| %s | %.3f | %.3f | %.3f |" % (r["id"], a.max(), b.max(), b.mean()))


def f32_check(out_dir):
    """numpy vs llama.cpp on the all-F32 copy of SmolLM2 (no activation quantization), f32 and
    f16 KV cache, every prompt position: validates the numpy forward itself."""
    from llama_cpp import Llama
    path = lc.f32_copy()
    m = Model(lc.SMOL)
    kw = dict(model_path=path, logits_all=True, n_ctx=1024, n_batch=1024, n_ubatch=1024,
              n_threads=lc.N_THREADS, n_threads_batch=lc.N_THREADS, verbose=False)
    l32, l16 = Llama(type_k=0, type_v=0, **kw), Llama(**kw)
    print("| prompt | n_tok | numpy vs llama.cpp F32 weights, f32 KV | same, f16 KV |")
    print("|---|---|---|---|")
    for line in open(os.path.join(out_dir, "ref_smollm2_prompts.jsonl")):
        r = json.loads(line)
        t = r["ref_tokens"]
        lg = m.forward(t, m.new_cache())
        d = []
        for llm in (l32, l16):
            llm.reset()
            llm.eval(t)
            d.append(float(np.abs(lg - np.array(llm.scores[:len(t)], np.float64)).max()))
        print("| %s | %d | %.2e | %.4f |" % (r["id"], len(t), d[0], d[1]))


def report(out_dir):
    """Greedy-path tables of tests/data/README.md section 6, from the committed fixtures."""
    _, npy = rc.read_fixture(os.path.join(out_dir, "ref_smollm2_f32.bin.gz"))
    for tag in ("llamacpp", "f32w_llamacpp"):
        path = os.path.join(out_dir, "ref_smollm2_%s.bin.gz" % tag)
        if not os.path.exists(path):
            continue
        _, ref = rc.read_fixture(path)
        same = 0
        print("\nnumpy f64 vs %s greedy paths:" % tag)
        print("| prompt | first divergence | ids numpy / llama.cpp | margin numpy | "
              "margin llama.cpp |")
        print("|---|---|---|---|---|")
        for a, b in zip(npy, ref):
            fd = first_diff(a["gen"], b["gen"])
            if fd < 0:
                same += 1
                print("| %s | identical | | %.4f (min) | %.4f (min) |" % (
                    a["name"], min(r[1] for r in a["gen_row"]),
                    min(r[1] for r in b["gen_row"])))
                continue
            print("| %s | step %d | %d / %d | %.4f | %.4f |" % (
                a["name"], fd, a["gen"][fd], b["gen"][fd], a["gen_row"][fd][1],
                b["gen_row"][fd][1]))
        print("identical: %d of %d" % (same, len(npy)))


if __name__ == "__main__":
    main()
