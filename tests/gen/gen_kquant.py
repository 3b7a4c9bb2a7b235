#!/usr/bin/env python3
"""Generate tests/data/kquant_ref.bin: random blocks of Q5_0, Q5_1 and Q2_K..Q6_K with gguf-py's
dequantize of each (the reference libcore/engine/kquant.c must match bit for bit).

Needs numpy and gguf (pip install gguf); tests never run this. Run once:
  python3 tests/gen/gen_kquant.py > tests/data/kquant_ref.bin
Layout: b"HKQ1", u32 entries; per entry u32 ggml type, u32 blocks, the raw blocks, then the
dequantized values as little-endian f32. The f16 scale fields are set to random finite values
(with a sign) so that no value is NaN or infinite; every other byte is random.
"""
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T, quants

rng = np.random.default_rng(20261206)
# type -> (block bytes, offsets of its f16 fields, blocks)
TYPES = {
    T.Q5_0: (22, [0], 16),
    T.Q5_1: (24, [0, 2], 16),
    T.Q2_K: (84, [80, 82], 6),
    T.Q3_K: (110, [108], 6),
    T.Q4_K: (144, [0, 2], 6),
    T.Q5_K: (176, [0, 2], 6),
    T.Q6_K: (210, [208], 6),
}
out = [b"HKQ1", struct.pack("<I", len(TYPES))]
for t, (bb, f16s, nb) in TYPES.items():
    raw = rng.integers(0, 256, size=(nb, bb), dtype=np.uint8)
    for off in f16s:
        v = (rng.uniform(1e-3, 4.0, size=nb) * rng.choice([-1.0, 1.0], size=nb)).astype(np.float16)
        raw[:, off:off + 2] = v.view(np.uint8).reshape(nb, 2)
    vals = quants.dequantize(raw.reshape(-1), t).astype("<f4")
    assert np.isfinite(vals).all()
    out += [struct.pack("<II", int(t), nb), raw.tobytes(), vals.tobytes()]
sys.stdout.buffer.write(b"".join(out))
