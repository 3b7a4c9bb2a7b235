#!/usr/bin/env python3
"""gen_seeds.py: writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Small, valid inputs of every format (a few KB each) built here with the standard library, plus a
few slices of tests/data. Run from the repository root; the output is committed (a few hundred KB).
"""
import json, os, struct, zlib

OUT = "tests/fuzz/corpus"


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def split(a, b):
    """The two-part input of fuzz.h: u16 length of a, a, b."""
    return struct.pack("<H", len(a)) + a + b


# ---- GGUF -------------------------------------------------------------------------------------
def gstr(s, v=3):
    b = s.encode()
    return (struct.pack("<I", len(b)) if v == 1 else struct.pack("<Q", len(b))) + b


def gkv(key, t, val, v=3):
    out = gstr(key, v) + struct.pack("<I", t)
    if t == 8:
        return out + gstr(val, v)
    if t == 9:
        at, items = val
        out += struct.pack("<I", at) + (struct.pack("<I", len(items)) if v == 1 else struct.pack("<Q", len(items)))
        for x in items:
            out += gstr(x, v) if at == 8 else struct.pack({4: "<I", 5: "<i", 6: "<f", 0: "<B"}[at], x)
        return out
    return out + struct.pack({4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q"}[t], val)


def gguf(kvs, tensors, v=3, align=32):
    cnt = (lambda n: struct.pack("<I", n)) if v == 1 else (lambda n: struct.pack("<Q", n))
    body = b"GGUF" + struct.pack("<I", v) + cnt(len(tensors)) + cnt(len(kvs))
    for k in kvs:
        body += gkv(*k, v=v)
    data, off = b"", 0
    for name, dims, typ, raw in tensors:
        body += gstr(name, v) + struct.pack("<I", len(dims)) + b"".join(cnt(d) for d in dims)
        body += struct.pack("<I", typ) + struct.pack("<Q", off)
        pad = (-len(raw)) % align
        data += raw + b"\0" * pad
        off += len(raw) + pad
    body += b"\0" * ((-len(body)) % align)
    return body + data


def spm_vocab():
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % i for i in range(256)] + ["\u2581", "\u2581H", "ello", "\u2581w", "orld", "!", "1", "2"]
    types = [2, 3, 3] + [6] * 256 + [1] * 8
    scores = [0.0] * 259 + [-1.0 * i for i in range(8)]
    return toks, types, scores


def gpt2_bytes():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def gen_gguf():
    toks, types, scores = spm_vocab()
    f32 = struct.pack("<8f", *range(8))
    kv = [("general.architecture", 8, "llama"), ("general.alignment", 4, 32),
          ("tokenizer.ggml.model", 8, "llama"), ("tokenizer.ggml.tokens", 9, (8, toks)),
          ("tokenizer.ggml.scores", 9, (6, scores)), ("tokenizer.ggml.token_type", 9, (5, types)),
          ("tokenizer.ggml.bos_token_id", 4, 1), ("tokenizer.ggml.eos_token_id", 4, 2),
          ("llama.rope.freq_base", 6, 10000.0)]
    put("gguf", "spm_v3", gguf(kv, [("t.weight", [8], 0, f32), ("q", [32], 2, b"\1" * 18)]))
    put("gguf", "spm_v1", gguf(kv[:1] + kv[2:], [("t.weight", [2, 4], 0, f32)], v=1))
    bt = gpt2_bytes()
    merges = ["\u0120 w", "o r", "\u0120w or", "l d", "H e"]
    vocab = bt + ["\u0120w", "or", "\u0120wor", "ld", "He", "<|endoftext|>"]
    kv2 = [("general.architecture", 8, "llama"), ("tokenizer.ggml.model", 8, "gpt2"),
           ("tokenizer.ggml.pre", 8, "llama-bpe"), ("tokenizer.ggml.tokens", 9, (8, vocab)),
           ("tokenizer.ggml.token_type", 9, (5, [1] * (len(vocab) - 1) + [3])),
           ("tokenizer.ggml.merges", 9, (8, merges)), ("tokenizer.ggml.eos_token_id", 4, len(vocab) - 1),
           ("tokenizer.ggml.add_bos_token", 7, 0)]
    put("gguf", "bpe_v3", gguf(kv2, [("e", [4, 2], 1, b"\0" * 16)]))
    put("gguf", "empty_v2", gguf([], [], v=2))


# ---- safetensors + head -----------------------------------------------------------------------
def safetensors(tensors, meta=None, odd=False):
    hdr, data = {}, b""
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8 + (1 if odd else 0))
    return struct.pack("<Q", len(h)) + h + data


def gen_head():
    C, F, H, KV, D, V = 8, 16, 2, 1, 4, 32
    cfg = {"hidden_size": C, "intermediate_size": F, "num_attention_heads": H, "num_key_value_heads": KV,
           "head_dim": D, "vocab_size": V, "num_hidden_layers": 1, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "bias": True}
    shapes = [("fc.weight", [C, 2 * C]), ("fc.bias", [C]),
              ("layers.0.self_attn.q_proj.weight", [H * D, C]), ("layers.0.self_attn.k_proj.weight", [KV * D, C]),
              ("layers.0.self_attn.v_proj.weight", [KV * D, C]), ("layers.0.self_attn.o_proj.weight", [C, H * D]),
              ("layers.0.mlp.gate_proj.weight", [F, C]), ("layers.0.mlp.up_proj.weight", [F, C]),
              ("layers.0.mlp.down_proj.weight", [C, F]), ("layers.0.post_attention_layernorm.weight", [C])]

    def n(s):
        k = 1
        for x in s:
            k *= x
        return k
    for dt, size in (("F32", 4), ("BF16", 2), ("F16", 2)):
        ts = [(nm, dt, s, bytes((i * 7 + 1) % 64 for i in range(n(s) * size))) for nm, s in shapes]
        ts.append(("draft_vocab", "I32", [4], struct.pack("<4i", 1, 5, 9, 30)))
        meta = {"format": "pt", "hass.target_fingerprint": "1234abcd", "hass.n_ctx_train": "512"}
        put("safetensors", "head_" + dt.lower(), split(json.dumps(cfg).encode(), safetensors(ts, meta, odd=dt == "BF16")))
    put("safetensors", "no_config", split(b"", safetensors([("x", "U8", [3], b"abc")])))


# ---- tokenizers -------------------------------------------------------------------------------
def gen_tokenizers():
    for d in ("stories260k", "bytelevel"):
        with open("tests/data/tok_json/%s/tokenizer.json" % d, "rb") as f:
            tok = f.read()
        cfgp = "tests/data/tok_json/%s/tokenizer_config.json" % d
        cfg = open(cfgp, "rb").read() if os.path.exists(cfgp) else b""
        put("tokenizer_json", d, split(cfg, tok))
    bt = gpt2_bytes()
    enc = {c: i for i, c in enumerate(bt)}
    for i, t in enumerate(["\u0120w", "or", "\u0120wor", "ld", "He", "<|endoftext|>"]):
        enc[t] = 256 + i
    bpe = "#version: 0.2\n\u0120 w\no r\n\u0120w or\nl d\nH e\n"
    put("encoder_json", "tiny", split(json.dumps(enc).encode(), bpe.encode()))


# ---- records, streams, shards, back channel ---------------------------------------------------
def frame(t, seq, p):
    h = struct.pack("<III", t, seq, len(p))
    return h + p + struct.pack("<I", zlib.crc32(h + p))


def record_payload(obj, arrays):
    js = json.dumps(dict(obj, **{k: 0 for k in arrays}), separators=(",", ":")).encode()
    out = struct.pack("<I", len(js)) + js + struct.pack("<I", len(arrays))
    for k, v in arrays.items():
        out += struct.pack("<I", len(k)) + k.encode() + struct.pack("<I", len(v)) + struct.pack("<%di" % len(v), *v)
    return out


def gen_records():
    for name in ("ref_stories260k_prompts.jsonl", "tok_json_ids.jsonl", "chat_renderings.jsonl"):
        with open("tests/data/" + name, "rb") as f:
            lines = f.read().split(b"\n")[:3]
        put("jsonl", name, b"\n".join(lines) + b"\n")
        put("stream", name, b"\n".join(lines) + b"\n")
    put("jsonl", "mixed", b'{"a":1}\n\n  {"b":[1,2,{"c":null}]}\r\n[1]\n{"x":"\\u00e9\\ud83e\\udd99"}\n{bad\n')
    hdr = b"HASS" + struct.pack("<HHII", 1, 16, 0x1234abcd, 0)
    recs = [record_payload({"id": "a", "text": "hi"}, {"tokens": [1, 2, -3]}), record_payload({"id": 7}, {})]
    body = hdr + b"".join(frame(1, i, p) for i, p in enumerate(recs)) + frame(77, 2, b"\x01\xff")
    put("stream", "bin", body + frame(2, 3, struct.pack("<I", 3)))
    put("stream", "bin_two", body + frame(2, 3, struct.pack("<I", 3)) + hdr + frame(2, 0, struct.pack("<I", 0)))
    put("stream", "bin_long_header", b"HASS" + struct.pack("<HHII", 1, 20, 0, 0) + b"xxxx" + frame(2, 0, struct.pack("<I", 0)))


def gen_shard():
    with open("tests/data/train_tiny.shard", "rb") as f:
        put("shard", "train_tiny", f.read())
    n_embd, lens = 4, [3, 1, 5]
    recs = b""
    for r, n in enumerate(lens):
        p = struct.pack("<%di" % n, *[(r + i) % 10 for i in range(n)]) + bytes(i % 2 for i in range(n))
        p += b"\0" * ((-n) % 4) + b"\x00\x3c" * (n * n_embd)
        recs += struct.pack("<II", n, zlib.crc32(p)) + p
    h = b"HASSFEAT" + struct.pack("<IIIIIIQQI", 1, 64, 1, n_embd, 10, 0xabcd, len(lens), sum(lens), 0) + b"\0" * 8
    put("shard", "tiny_f16", h + struct.pack("<I", zlib.crc32(h)) + recs)


def gen_remote():
    def f(t, p):
        return struct.pack("<III", 0x43445348, t, len(p)) + p + struct.pack("<I", zlib.crc32(p))
    C = 8
    push = struct.pack("<i", 2) + struct.pack("<%df" % (2 * C), *range(2 * C)) + struct.pack("<2i", 5, 6)
    put("remote", "session", f(1, b"") + f(2, push) + f(3, struct.pack("<4i", 5, 4, 2, 2)) + f(3, struct.pack("<4i", 5, 999, 2, 2)))
    put("remote", "bad_type", f(9, b"xyz"))
    # the drafter's answers, read by the verifier (fuzz_remote_client): trees of root 1, an error
    ok = f(4, struct.pack("<i", 3) + struct.pack("<3i", 1, 40, 41) + struct.pack("<3i", -1, 0, 0))
    put("remote_client", "answers", ok + f(4, struct.pack("<i", 1) + struct.pack("<2i", 1, -1)) + f(5, b"no tree"))
    put("remote_client", "bad_id", f(4, struct.pack("<i", 2) + struct.pack("<2i", 1, 999999) + struct.pack("<2i", -1, 0)))


if __name__ == "__main__":
    gen_gguf()
    gen_head()
    gen_tokenizers()
    gen_records()
    gen_shard()
    gen_remote()
