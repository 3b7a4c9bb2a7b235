#!/usr/bin/env python3
"""A tiny feature shard written independently of the C writer, from the layout in
docs/TRAINING.md, for stories260K; test_train_shard reads it back (format cross-check).

    python3 tests/gen/gen_train_shard.py   # writes tests/data/train_tiny.shard

The features are synthetic but learnable: f_t = rmsnorm(E[x_t] + 0.5 E[x_{t-1}]) * g, with E the
target's embedding and g its final norm, so a draft head can predict f_{t+1} from (f_t, x_{t+1}).
Real features come from the engine (hass-train --features). The header's target fingerprint
here is our own crc32 (not the engine's hass_model_fingerprint), so hass-train refuses this shard
for training; readers that skip the check (want_fp 0) accept it.
Needs numpy and gguf (pip install gguf); tests never run this.
"""
import struct
import zlib

import numpy as np
from gguf import GGUFReader

MODEL = "../shared/data/models/stories260K/stories260K-v3-f32.gguf"


def target_fp(r):
    """crc32 of u64 ne0, u64 ne1 of token_embd, then its bytes, then output_norm's bytes."""
    t = {x.name: x for x in r.tensors}
    te, tn = t["token_embd.weight"], t["output_norm.weight"]
    ne = [int(v) for v in te.shape]
    c = zlib.crc32(struct.pack("<QQ", ne[0], ne[1]))
    c = zlib.crc32(te.data.tobytes(), c)
    c = zlib.crc32(tn.data.tobytes(), c)
    return c or 1, te.data.reshape(ne[1], ne[0]).astype(np.float64), tn.data.astype(np.float64)


def record(ids, mask, feat):
    n = len(ids)
    pay = struct.pack(f"<{n}i", *ids) + bytes(int(m) for m in mask)
    pay += b"\0" * ((-n) % 4) + feat.astype("<f2").tobytes()
    return struct.pack("<II", n, zlib.crc32(pay)) + pay


def write(path, recs, H, V, fp):
    n_tok = sum(len(r[0]) for r in recs)
    hdr = b"HASSFEAT" + struct.pack("<IIIIII", 1, 64, 1, H, V, fp) + struct.pack("<QQ", len(recs), n_tok)
    hdr += struct.pack("<III", 0, 0, 0)
    hdr += struct.pack("<I", zlib.crc32(hdr))
    assert len(hdr) == 64
    with open(path, "wb") as f:
        f.write(hdr)
        for r in recs:
            f.write(record(*r))
    print("wrote", path, len(recs), "records", n_tok, "positions")


def main():
    fp, E, g = target_fp(GGUFReader(MODEL))
    V, H = E.shape
    rng = np.random.default_rng(3)
    recs = []
    for L in [24, 31, 18, 40, 27, 35]:
        ids = rng.integers(1, V, L)
        mask = np.array([0] * 5 + [1] * (L - 5))
        prev = np.vstack([np.zeros((1, H)), E[ids[:-1]]])
        x = E[ids] + 0.5 * prev
        f = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * g
        recs.append((ids, mask, f))
    write("tests/data/train_tiny.shard", recs, H, V, fp)


if __name__ == "__main__":
    main()
