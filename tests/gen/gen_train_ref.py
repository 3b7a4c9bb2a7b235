#!/usr/bin/env python3
"""Reference for one full HASS draft-head training step, computed independently of the C code.

Builds a tiny draft head (H 16, 2 heads / 1 KV head, I 24, V 40), a batch of two sequences
(L 7 and 5, right-padded like the reference loader), and runs, in float64 with HIPS autograd:
the reference data loader (ids shifted left, targets f_{t+1}, last mask slot 0), the seeded
uniform noise (the same counter-based stream as libcore/train/train.c), S = 3 alignment steps with
the n = s+1 attention masks built as in the official cnets_hass.py (mask 0 = lower triangle
shifted down by s rows, mask j = identity shifted down by s-j rows), detached copies, the step
losses (SmoothL1 mean over H, soft CE against softmax(W_head f_{t+1}), top-K K=10 without
renormalisation, normalised by sum(m) + 1e-5), gradients summed over the steps, clipping by
value and two AdamW steps (PyTorch formulation) with the linear schedule.

    python3 tests/gen/gen_train_ref.py            # writes tests/data/train_step_ref.bin
    python3 tests/gen/gen_train_ref.py --leaky    # writes tests/data/train_step_ref_leaky.bin

Needs numpy and autograd (pip install autograd); tests never run this.
File layout (little-endian): "HTRF", u32 version 1, u32 n_entries, then per entry: u16
name_len, name, u8 dtype (0 f64, 1 i64), u8 ndim, u32 dims[ndim], data.
"""
import struct
import sys

import autograd.numpy as anp
import numpy as np
from autograd import grad

LEAKY = "--leaky" in sys.argv
OUT = "tests/data/train_step_ref_leaky.bin" if LEAKY else "tests/data/train_step_ref.bin"

H, NH, NKV, I, V = 16, 2, 1, 24, 40
D = H // NH
S, K = 3, 10
THETA, EPS_NORM = 10000.0, 1e-5
V_W, P_W, TOPK_W = 1.0, 0.1, 1.0
NOISE_STD = 0.02  # amplitude std*512/L: +-0.73 at L 7
LR, B1, B2, ADAM_EPS, WD, CLIP = 1e-2, 0.9, 0.95, 1e-8, 0.01, 0.5
WARMUP, TOTAL = 0, 4
SEED = 1234
LENS = [7, 5]
M64 = (1 << 64) - 1

rng = np.random.default_rng(7)


def f32(a):
    """Round to float32 and back, so C gets exactly the same inputs."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def mix64(z):
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & M64
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & M64
    return z ^ (z >> 31)


def noise_key(seed, epoch, idx):
    return mix64(seed ^ mix64(((epoch << 32) ^ idx ^ 0x6861737300000000) & M64))


def noise(x, key):
    """x + (u - 0.5) * std * 512 / L with u from the counter-based stream; rounded to f32."""
    L = x.shape[0]
    n = x.size
    us = np.empty(n)
    for e in range(n):
        us[e] = (mix64((key + (e + 1) * 0x9E3779B97F4A7C15) & M64) >> 40) / 16777216.0
    amp = float(np.float32(NOISE_STD)) * 512.0 / L  # C holds std as a float
    return f32(x.reshape(-1) + (us - 0.5) * amp).reshape(x.shape)


def init_params():
    def u(shape, fan_in):
        b = 1.0 / np.sqrt(fan_in)
        return f32(rng.uniform(-b, b, shape))
    return {
        "fc.weight": u((H, 2 * H), 2 * H),
        "fc.bias": u((H,), 2 * H),
        "layers.0.self_attn.q_proj.weight": u((NH * D, H), H) * 2,
        "layers.0.self_attn.k_proj.weight": u((NKV * D, H), H) * 2,
        "layers.0.self_attn.v_proj.weight": u((NKV * D, H), H),
        "layers.0.self_attn.o_proj.weight": u((H, NH * D), NH * D),
        "layers.0.mlp.gate_proj.weight": u((I, H), H),
        "layers.0.mlp.up_proj.weight": u((I, H), H),
        "layers.0.mlp.down_proj.weight": u((H, I), I),
        "layers.0.post_attention_layernorm.weight": f32(rng.uniform(0.8, 1.2, (H,))),
    }


NAMES = ["fc.weight", "fc.bias", "layers.0.self_attn.q_proj.weight",
         "layers.0.self_attn.k_proj.weight", "layers.0.self_attn.v_proj.weight",
         "layers.0.self_attn.o_proj.weight", "layers.0.mlp.gate_proj.weight",
         "layers.0.mlp.up_proj.weight", "layers.0.mlp.down_proj.weight",
         "layers.0.post_attention_layernorm.weight"]


def rope(x, L):
    """HF rotate_half RoPE on (B, L, heads, D)."""
    inv = 1.0 / (THETA ** (np.arange(0, D, 2) / D))
    fr = np.outer(np.arange(L), inv)
    emb = np.concatenate([fr, fr], axis=1)
    cos, sin = np.cos(emb)[None, :, None, :], np.sin(emb)[None, :, None, :]
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    rot = anp.concatenate([-x2, x1], axis=-1)
    return x * cos + rot * sin


def masks(s, L):
    """The n = s+1 masks of cnets_hass.py for step s."""
    ms = [np.tril(np.ones((L, L)), k=-s)]
    for j in range(1, s + 1):
        ms.append(np.eye(L, k=-(s - j)))
    return ms


def fc(p, emb, c):
    return anp.dot(anp.concatenate([emb, c], axis=-1), p["fc.weight"].T) + p["fc.bias"]


def layer(p, emb, copies, s):
    """Step-s forward of the draft layer over the padded batch."""
    B, L, _ = emb.shape
    us = [fc(p, emb, c) for c in copies[: s + 1]]
    q = rope(anp.dot(us[s], p["layers.0.self_attn.q_proj.weight"].T).reshape(B, L, NH, D), L)
    ks = [rope(anp.dot(u, p["layers.0.self_attn.k_proj.weight"].T).reshape(B, L, NKV, D), L) for u in us]
    vs = [anp.dot(u, p["layers.0.self_attn.v_proj.weight"].T).reshape(B, L, NKV, D) for u in us]
    ms = masks(s, L)
    allowed = sum(ms)
    heads = []
    for h in range(NH):
        g = h // (NH // NKV)
        qh = q[:, :, h, :]
        logits = 0
        for j in range(s + 1):
            a = anp.einsum("bid,bkd->bik", qh, ks[j][:, :, g, :]) / np.sqrt(D)
            logits = logits + a * ms[j]
        if LEAKY:  # masked logits stay 0, softmax over all L, then re-masked, no renormalisation
            w = anp.exp(logits - anp.max(logits, axis=-1, keepdims=True))
            w = w / anp.sum(w, axis=-1, keepdims=True) * allowed
        else:
            big = anp.where(allowed > 0, logits, -1e30)
            w = anp.exp(big - anp.max(big, axis=-1, keepdims=True)) * allowed
            w = w / anp.sum(w, axis=-1, keepdims=True)
        o = 0
        for j in range(s + 1):
            o = o + anp.einsum("bik,bkd->bid", w * ms[j], vs[j][:, :, g, :])
        heads.append(o)
    att = anp.concatenate(heads, axis=-1)
    hres = us[s] + anp.dot(att, p["layers.0.self_attn.o_proj.weight"].T)
    var = anp.mean(hres * hres, axis=-1, keepdims=True)
    hn = hres / anp.sqrt(var + EPS_NORM) * p["layers.0.post_attention_layernorm.weight"]
    gt = anp.dot(hn, p["layers.0.mlp.gate_proj.weight"].T)
    up = anp.dot(hn, p["layers.0.mlp.up_proj.weight"].T)
    mlp = anp.dot(gt / (1 + anp.exp(-gt)) * up, p["layers.0.mlp.down_proj.weight"].T)
    return hres + mlp


def log_softmax(x):
    m = anp.max(x, axis=-1, keepdims=True)
    return x - m - anp.log(anp.sum(anp.exp(x - m), axis=-1, keepdims=True))


def step_loss(p, batch, copies, s):
    emb, target, m, head = batch["emb"], batch["target"], batch["mask"], batch["head"]
    out = layer(p, emb, copies, s)
    z = out - target
    az = anp.abs(z)
    sl1 = anp.where(az < 1, 0.5 * z * z, az - 0.5)
    norm = np.sum(m) + 1e-5
    vloss = anp.sum(anp.mean(m[:, :, None] * sl1, axis=2)) / norm
    tl = np.dot(target, head.T)
    tp = np.exp(tl - tl.max(-1, keepdims=True))
    tp /= tp.sum(-1, keepdims=True)
    logq = log_softmax(anp.dot(out, head.T))
    ploss = -anp.sum(m[:, :, None] * tp * logq) / norm
    topm = np.zeros_like(tp)
    idx = np.argsort(-tp, axis=-1, kind="stable")[..., :K]
    np.put_along_axis(topm, idx, 1.0, axis=-1)
    kloss = -anp.sum(m[:, :, None] * tp * logq * topm) / norm
    return V_W * vloss + P_W * ploss + TOPK_W * kloss, (vloss, ploss, kloss, out, tl)


def make_batch(seqs, epoch, E, head):
    """Reference loader + collate: shift, targets, last mask 0, right-pad with zeros."""
    Lp = max(len(s["ids"]) for s in seqs)
    B = len(seqs)
    emb = np.zeros((B, Lp, H)); target = np.zeros((B, Lp, H)); hid = np.zeros((B, Lp, H))
    mask = np.zeros((B, Lp))
    for b, sq in enumerate(seqs):
        L = len(sq["ids"])
        ids = np.concatenate([sq["ids"][1:], [0]])
        emb[b, :L] = E[ids]
        emb[b, L:] = E[0]
        target[b, : L - 1] = sq["feat"][1:]
        mk = sq["mask"].astype(np.float64).copy()
        mk[-1] = 0
        mask[b, :L] = mk
        hid[b, :L] = noise(sq["feat"], noise_key(SEED, epoch, b))
    return {"emb": emb, "target": target, "mask": mask, "head": head, "hid": hid}


def batch_grads(p, batch):
    copies = [batch["hid"]]
    stats = []
    g = {k: np.zeros_like(v) for k, v in p.items()}
    for s in range(S):
        gs = grad(lambda pp: step_loss(pp, batch, copies, s)[0])(p)
        for k in g:
            g[k] += gs[k]
        _, (vl, pl, kl, out, tl) = step_loss(p, batch, copies, s)
        ql = np.dot(out, batch["head"].T)
        tgt = np.argmax(tl, -1)
        top3 = np.argsort(-ql, axis=-1, kind="stable")[..., :3]
        m = batch["mask"] > 0
        t1 = int(np.sum((top3[..., 0] == tgt) & m))
        t3 = int(np.sum((top3 == tgt[..., None]).any(-1) & m))
        stats.append([vl, pl, kl, t1, t3])
        nxt = np.concatenate([copies[s][:, :1], out[:, :-1]], axis=1)  # detached copy
        copies.append(nxt)
    return g, stats


def adamw(p, g, mom, vel, step):
    lr = LR * (step / max(1, WARMUP) if step < WARMUP else
               max(0.0, (TOTAL - step) / max(1, TOTAL - WARMUP)))
    t = step + 1
    bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
    newp = {}
    for k in p:
        gk = np.clip(g[k], -CLIP, CLIP)
        pk = p[k] * (1 - lr * WD)
        mom[k] = B1 * mom[k] + (1 - B1) * gk
        vel[k] = B2 * vel[k] + (1 - B2) * gk * gk
        newp[k] = pk - lr / bc1 * mom[k] / (np.sqrt(vel[k]) / np.sqrt(bc2) + ADAM_EPS)
    return newp, lr


def main():
    p = init_params()
    E = f32(rng.normal(0, 1, (V, H)))
    head = f32(rng.normal(0, 1, (V, H)))
    seqs = []
    for L in LENS:
        seqs.append({
            "ids": rng.integers(0, V, L),
            "feat": f32(rng.normal(0, 1, (L, H))),
            "mask": np.array([0, 0] + [1] * (L - 2)),
        })
    seqs[1]["mask"][3] = 0
    out = []

    def put(name, arr, dtype=0):
        out.append((name, np.asarray(arr), dtype))

    put("cfg", [H, NH, NKV, I, V, S, K, len(LENS), WARMUP, TOTAL, SEED, int(LEAKY)], 1)
    put("hyper", [THETA, EPS_NORM, V_W, P_W, TOPK_W, NOISE_STD, LR, B1, B2, ADAM_EPS, WD, CLIP])
    put("embed", E)
    put("head", head)
    for b, sq in enumerate(seqs):
        put(f"seq{b}.ids", sq["ids"], 1)
        put(f"seq{b}.feat", sq["feat"])
        put(f"seq{b}.mask", sq["mask"], 1)
    for k in NAMES:
        put("init." + k, p[k])
    mom = {k: np.zeros_like(v) for k, v in p.items()}
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    for step in range(2):
        batch = make_batch(seqs, step, E, head)
        g, stats = batch_grads(p, batch)
        put(f"step{step}.noisy0", batch["hid"][0, :LENS[0]])
        put(f"step{step}.stats", [x for st in stats for x in st])
        for k in NAMES:
            put(f"step{step}.grad." + k, g[k])
        p, lr = adamw(p, g, mom, vel, step)
        for k in NAMES:
            put(f"step{step}.param." + k, p[k])
        n_clip = sum(int(np.sum(np.abs(v) > CLIP)) for v in g.values())
        n_all = sum(v.size for v in g.values())
        print(f"step {step}: lr {lr:g}, losses {[[round(float(x), 5) for x in st[:3]] for st in stats]}, "
              f"clipped {n_clip}/{n_all}", file=sys.stderr)
    with open(OUT, "wb") as f:
        f.write(b"HTRF" + struct.pack("<II", 1, len(out)))
        for name, arr, dt in out:
            nb = name.encode()
            f.write(struct.pack("<H", len(nb)) + nb + struct.pack("<BB", dt, arr.ndim))
            f.write(struct.pack(f"<{arr.ndim}I", *arr.shape))
            f.write(arr.astype("<f8" if dt == 0 else "<i8").tobytes())
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
