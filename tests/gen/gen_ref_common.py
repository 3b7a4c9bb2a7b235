"""Shared helpers for the reference-fixture generators (tests/gen/gen_ref_*.py).

Writes the HASSREF binary fixture format read by tests/unit/ref.h and documented in
tests/data/README.md: a gzip stream of little-endian records (no Python at test time).
"""
import gzip
import struct

import numpy as np

MAGIC = b"HASSREF\0"
VERSION = 1
LOGITS_F32 = 0
LOGITS_F16 = 1
TOP_K = 16


def top_k(logits, k=TOP_K):
    """Top-k (ids, logits) of one logits row, by descending logit, ties to the smaller id."""
    logits = np.asarray(logits, dtype=np.float32)
    order = np.argsort(-logits, kind="stable")[:k]
    return order.astype(np.int32), logits[order]


def margin(logits):
    """Top-1 minus top-2 logit of one row."""
    ids, vals = top_k(logits, 2)
    return float(vals[0] - vals[1])


class Entry:
    """One prompt of a fixture: tokens, per-position top-k, last logits, greedy path."""

    def __init__(self, name, text, tokens):
        self.name = name
        self.text = text
        self.tokens = [int(t) for t in tokens]
        self.pos_rows = []      # per prompt position: logits row (float32, n_vocab)
        self.last = None        # full last-position logits (float32, n_vocab) or None
        self.gen = []           # greedy ids
        self.gen_rows = []      # logits row that produced each greedy id
        self.eos_at = -1
        self.gen_text = b""

    def summary(self):
        """Per-position argmax and margin of the prompt rows (for printing/JSON)."""
        return [(int(top_k(r, 1)[0][0]), margin(r)) for r in self.pos_rows]


def _str(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return struct.pack("<I", len(b)) + b


def _rows(rows, k):
    out = []
    for r in rows:
        ids, vals = top_k(r, k)
        out.append(struct.pack("<if", int(ids[0]), float(vals[0] - vals[1])))
        out.append(ids.astype("<i4").tobytes())
        out.append(vals.astype("<f4").tobytes())
    return b"".join(out)


def write_fixture(path, model, source, n_vocab, entries, logits_type=LOGITS_F32, k=TOP_K):
    """Write entries as a HASSREF v1 gzip file (mtime 0, so reruns are byte-identical)."""
    parts = [MAGIC, struct.pack("<IIIII", VERSION, n_vocab, len(entries), k, logits_type),
             _str(model), _str(source)]
    for e in entries:
        parts.append(_str(e.name))
        parts.append(_str(e.text))
        parts.append(struct.pack("<I", len(e.tokens)) + np.asarray(e.tokens, "<i4").tobytes())
        parts.append(struct.pack("<I", len(e.pos_rows)) + _rows(e.pos_rows, k))
        if e.last is None:
            parts.append(struct.pack("<I", 0))
        else:
            dt = "<f2" if logits_type == LOGITS_F16 else "<f4"
            parts.append(struct.pack("<I", len(e.last)) + np.asarray(e.last).astype(dt).tobytes())
        assert len(e.gen) == len(e.gen_rows)
        parts.append(struct.pack("<I", len(e.gen)) + np.asarray(e.gen, "<i4").tobytes())
        parts.append(_rows(e.gen_rows, k))
        parts.append(struct.pack("<i", e.eos_at))
        parts.append(_str(e.gen_text))
    data = b"".join(parts)
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as g:
            g.write(data)
    return len(data)


def read_fixture(path):
    """Read a HASSREF file back: (header dict, list of prompt dicts); rows are
    (argmax, margin, top_ids, top_logits)."""
    b = gzip.open(path).read()
    o = [0]

    def u(fmt):
        v = struct.unpack_from("<" + fmt, b, o[0])
        o[0] += struct.calcsize("<" + fmt)
        return v

    def s():
        n, = u("I")
        v = b[o[0]:o[0] + n]
        o[0] += n
        return v

    assert b[:8] == MAGIC, path
    o[0] = 8
    ver, nv, npr, k, lt = u("5I")
    hdr = {"version": ver, "n_vocab": nv, "top_k": k, "logits_type": lt, "model": s(),
           "source": s()}

    def rows(n):
        out = []
        for _ in range(n):
            am, mg = u("if")
            out.append((am, mg, u("%di" % k), u("%df" % k)))
        return out

    prompts = []
    for _ in range(npr):
        p = {"name": s().decode(), "text": s()}
        n, = u("I")
        p["tok"] = list(u("%di" % n))
        n, = u("I")
        p["pos"] = rows(n)
        n, = u("I")
        dt = "<f2" if lt == LOGITS_F16 else "<f4"
        p["last"] = np.frombuffer(b, dt, n, o[0]).astype(np.float32)
        o[0] += n * np.dtype(dt).itemsize
        n, = u("I")
        p["gen"] = list(u("%di" % n))
        p["gen_row"] = rows(n)
        p["eos_at"], = u("i")
        p["gen_text"] = s()
        prompts.append(p)
    assert o[0] == len(b), path
    return hdr, prompts
