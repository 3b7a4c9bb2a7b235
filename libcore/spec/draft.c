// draft.c: draft head forward (fc over [E(x); f], one decoder layer without input/final norm),
// its stable + scratch KV cache, lazy catch-up and EAGLE-2 tree expansion.
#include "draft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "ops.h"
#include "quant.h"
#include "sample.h"

#define CHUNK 64 // catch-up rows per forward block

struct hass_draft {
    const hass_head *h; // borrowed
    hass_model *m;      // borrowed
    int n_ctx;          // stable capacity (positions)
    hass_tree_cfg max;  // largest tree
    int C, H, Hkv, D, F, V;
    int n_rows;         // work rows (max(CHUNK, K))
    int n_scratch;      // scratch KV entries (K * (levels - 1), at least K)
    int n_stable;       // stable KV entries (= next position)
    float *k_cache;     // (n_ctx + n_scratch, Hkv*D) rotated keys
    float *v_cache;     // (n_ctx + n_scratch, Hkv*D)
    float *pend_f;      // (n_ctx, C) pending features
    int32_t *pend_t;    // (n_ctx) pending next tokens
    int n_pend;
    int has_last;       // o_last is valid
    float *o_last;      // (C) draft output at the last stable position
    // work
    float *emb;    // (n_rows, C)
    float *cat;    // (n_rows, 2C)
    float *u;      // (n_rows, C)
    float *q;      // (n_rows, H*D)
    float *k;      // (n_rows, Hkv*D)
    float *v;      // (n_rows, Hkv*D)
    float *att;    // (n_rows, H*D)
    float *hid;    // (n_rows, C)
    float *hn;     // (n_rows, C)
    float *g;      // (n_rows, F)
    float *up;     // (n_rows, F)
    float *out;    // (n_rows, C)
    float *prev;   // (K, C) outputs of the previous expansion step
    float *feat;   // (K, C) input features of the current beam
    float *lp;     // (K, V) log-probs (no draft vocabulary)
    int32_t *tk_id; // (K, K) each row's top-k token ids, best first
    float *tk_lp;   // (K, K) their log-probs
    float *sc;     // (n_ctx + n_scratch) attention scores
    float *inv_freq; // (D/2)
    int32_t *tok;  // (n_rows)
    int32_t *pos;  // (n_rows)
    int32_t *slot; // (n_rows)
    int32_t *nvis; // (n_rows)
    hass_wmat w_fc, w_q, w_k, w_v, w_o, w_gate, w_up, w_down;
    // draft vocabulary (h->dvocab): its rows of the target's LM head, gathered once
    hass_wmat w_dv;   // (n_dvocab, C) in the LM head's own type
    void *dv_rows;    // owner of w_dv's data
    void *dv_pk;      // owner of w_dv's packed copy (NULL when the LM head has none)
    float *dv_lp;     // (K, n_dvocab) log-probs over the draft vocabulary
    void *dv_q;       // hass_matmul scratch for K rows
    uint16_t *bf;     // the layer's weights as bf16 when all are bf16 values (else NULL)
    uint8_t *q8;      // the layer's weights as Q8_0 blocks (hass_draft_quantize), else NULL
    void *q8_pk[8];   // their packed copies (AVX-512), else NULL
    void *lq;         // hass_matmul scratch for n_rows rows of the widest input (Q8_0 layer)
};

// A row-major f32 matrix (n_out, n_in) as a weight view for hass_matmul.
static hass_wmat wmat_f32(const float *w, int n_out, int n_in) {
    hass_wmat x = {HASS_GGML_F32, n_in, n_out, sizeof(float) * (size_t)n_in, w, NULL};
    return x;
}

// The layer's weights as bf16 when every value is one (a head packed in bf16, as shipped): the
// kernels widen bf16 to f32 exactly, so the products are the same, and a draft level streams
// half the bytes (the weights do not stay in cache beside the target's).
static hass_err layer_bf16(hass_draft *d) {
    hass_wmat *w[] = {&d->w_fc, &d->w_q, &d->w_k, &d->w_v, &d->w_o, &d->w_gate, &d->w_up, &d->w_down};
    enum { NW = sizeof w / sizeof *w };
    size_t n = 0;
    for (int i = 0; i < NW; i++) {
        const float *f = w[i]->data;
        size_t m = (size_t)w[i]->n_out * w[i]->n_in;
        for (size_t j = 0; j < m; j++) {
            uint32_t b;
            memcpy(&b, &f[j], 4);
            if (b & 0xffffu) return HASS_OK; // not all bf16: keep f32
        }
        n += m;
    }
    if (!(d->bf = malloc(sizeof(uint16_t) * n))) return hass_seterr(HASS_ENOMEM, "draft: out of memory");
    uint16_t *o = d->bf;
    for (int i = 0; i < NW; i++) {
        const float *f = w[i]->data;
        size_t m = (size_t)w[i]->n_out * w[i]->n_in;
        for (size_t j = 0; j < m; j++) o[j] = hass_f32_to_bf16(f[j]);
        w[i]->type = HASS_GGML_BF16;
        w[i]->row_bytes = sizeof(uint16_t) * (size_t)w[i]->n_in;
        w[i]->data = o;
        o += m;
    }
    return HASS_OK;
}

// Q8_0 blocks of n values x (n a multiple of 32) into dst: per 32 values d = max|x| / 127,
// q = round(x / d), d stored in fp16 (ggml's reference quantizer).
static void q8_0_row(const float *x, int n, uint8_t *dst) {
    for (int b = 0; b < n / 32; b++, x += 32, dst += 34) {
        float amax = 0.f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        float dl = amax / 127.f, id = dl ? 1.f / dl : 0.f;
        uint16_t h = hass_f32_to_f16(dl);
        memcpy(dst, &h, 2);
        for (int i = 0; i < 32; i++) dst[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
    }
}

// The layer's weights as Q8_0 (see draft.h), packed for the AVX-512 kernel where the model's are.
hass_err hass_draft_quantize(hass_draft *d) {
    hass_wmat *w[] = {&d->w_fc, &d->w_q, &d->w_k, &d->w_v, &d->w_o, &d->w_gate, &d->w_up, &d->w_down};
    enum { NW = sizeof w / sizeof *w };
    if (d->q8) return HASS_OK;
    size_t n = 0, widest = 0;
    for (int i = 0; i < NW; i++) {
        if (w[i]->n_in % 32)
            return hass_seterr(HASS_EUNSUP, "draft: a layer of width %d cannot be Q8_0 (32-value blocks)",
                               w[i]->n_in);
        n += (size_t)w[i]->n_out * (w[i]->n_in / 32) * 34;
        if ((size_t)w[i]->n_in > widest) widest = w[i]->n_in;
    }
    float *row = malloc(sizeof(float) * widest);
    d->q8 = malloc(n);
    d->lq = malloc(hass_matmul_scratch_bytes((int)widest, d->n_rows));
    if (!row || !d->q8 || !d->lq) {
        free(row), free(d->q8), free(d->lq), d->q8 = NULL, d->lq = NULL;
        return hass_seterr(HASS_ENOMEM, "draft: out of memory");
    }
    uint8_t *o = d->q8;
    for (int i = 0; i < NW; i++) {
        size_t rb = (size_t)(w[i]->n_in / 32) * 34;
        for (int r = 0; r < w[i]->n_out; r++) {
            hass_quant_row(w[i], r, row); // f32 or bf16 as loaded
            q8_0_row(row, w[i]->n_in, o + rb * r);
        }
        w[i]->type = HASS_GGML_Q8_0;
        w[i]->row_bytes = rb;
        w[i]->data = o;
        // the packed copy is a speed-up only: without memory for it the kernels read the blocks
        w[i]->pk = d->q8_pk[i] = hass_kernel_level() == 2 ? hass_quant_pack(w[i]) : NULL;
        o += rb * w[i]->n_out;
    }
    free(row);
    free(d->bf); // the bf16 copy, if any, is no longer referenced
    d->bf = NULL;
    return HASS_OK;
}

// Head target description of a loaded model.
void hass_head_target_of(const hass_model *m, uint32_t tok_fp, hass_head_target *tg) {
    const hass_model_cfg *c = hass_model_config(m);
    memset(tg, 0, sizeof(*tg));
    tg->n_embd = c->n_embd;
    tg->n_vocab = c->n_vocab;
    tg->n_head = c->n_head;
    tg->n_head_kv = c->n_head_kv;
    tg->head_dim = c->head_dim;
    tg->n_ff = c->n_ff;
    tg->rope_theta = c->rope_theta;
    tg->norm_eps = c->norm_eps;
    tg->n_ctx_train = c->n_ctx_train;
    tg->fingerprint = hass_model_fingerprint(m);
    tg->tok_fingerprint = tok_fp;
}

// Free a drafter.
void hass_draft_free(hass_draft *d) {
    if (!d) return;
    float *fs[] = {d->k_cache, d->v_cache, d->pend_f, d->o_last, d->emb, d->cat, d->u, d->q, d->k,
                   d->v, d->att, d->hid, d->hn, d->g, d->up, d->out, d->prev, d->feat, d->lp,
                   d->tk_lp, d->sc, d->inv_freq, d->dv_lp};
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++) free(fs[i]);
    free(d->pend_t); free(d->tk_id); free(d->bf); free(d->q8); free(d->lq);
    for (int i = 0; i < 8; i++) free(d->q8_pk[i]);
    free(d->tok); free(d->pos); free(d->slot); free(d->nvis);
    free(d->dv_rows);
    free(d->dv_pk);
    free(d->dv_q);
    free(d);
}

// The draft vocabulary's rows of the LM head (copied, in its own type) and their log-prob rows.
static hass_err gather_dvocab(hass_draft *d, int K) {
    const hass_wmat *w = hass_model_lm_head_w(d->m);
    int n = d->h->n_dvocab;
    d->dv_rows = malloc(w->row_bytes * (size_t)n);
    d->dv_lp = malloc(sizeof(float) * (size_t)K * n);
    d->dv_q = malloc(hass_matmul_scratch_bytes(d->C, K));
    if (!d->dv_rows || !d->dv_lp || !d->dv_q) return hass_seterr(HASS_ENOMEM, "draft: out of memory");
    for (int i = 0; i < n; i++)
        memcpy((char *)d->dv_rows + w->row_bytes * (size_t)i,
               (const char *)w->data + w->row_bytes * (size_t)d->h->dvocab[i], w->row_bytes);
    d->w_dv = *w;
    d->w_dv.n_out = n;
    d->w_dv.data = d->dv_rows;
    d->w_dv.pk = NULL;
    if (w->pk && !(d->w_dv.pk = d->dv_pk = hass_quant_pack(&d->w_dv)))
        return hass_seterr(HASS_ENOMEM, "draft: out of memory");
    return HASS_OK;
}

// Allocate a drafter.
hass_draft *hass_draft_new(const hass_head *h, hass_model *m, int n_ctx, const hass_tree_cfg *cfg,
                           hass_err *err) {
    const hass_model_cfg *mc = hass_model_config(m);
    hass_err e = hass_tree_cfg_check(cfg);
    if (e) goto fail0;
    if (h->n_embd != mc->n_embd || h->n_vocab != mc->n_vocab) {
        e = hass_seterr(HASS_EVOCAB, "draft: head (C %d, V %d) does not fit the target (C %d, V %d)",
                        h->n_embd, h->n_vocab, mc->n_embd, mc->n_vocab);
        goto fail0;
    }
    if (n_ctx <= 0) n_ctx = mc->n_ctx_train > 0 ? mc->n_ctx_train : 2048;
    hass_draft *d = calloc(1, sizeof(*d));
    if (!d) {
        e = hass_seterr(HASS_ENOMEM, "draft: out of memory");
        goto fail0;
    }
    d->h = h; d->m = m; d->n_ctx = n_ctx; d->max = *cfg;
    d->C = h->n_embd; d->H = h->n_head; d->Hkv = h->n_head_kv; d->D = h->head_dim;
    d->F = h->n_ff; d->V = h->n_vocab;
    int K = cfg->top_k, C = d->C, QD = d->H * d->D, KD = d->Hkv * d->D;
    d->n_rows = K > CHUNK ? K : CHUNK;
    d->n_scratch = K * (cfg->levels > 1 ? cfg->levels - 1 : 1);
    size_t R = (size_t)d->n_rows, NT = (size_t)n_ctx + d->n_scratch;
    d->k_cache = malloc(sizeof(float) * NT * KD);
    d->v_cache = malloc(sizeof(float) * NT * KD);
    d->pend_f = malloc(sizeof(float) * (size_t)n_ctx * C);
    d->pend_t = malloc(sizeof(int32_t) * (size_t)n_ctx);
    d->o_last = malloc(sizeof(float) * C);
    d->emb = malloc(sizeof(float) * R * C);
    d->cat = malloc(sizeof(float) * R * 2 * C);
    d->u = malloc(sizeof(float) * R * C);
    d->q = malloc(sizeof(float) * R * QD);
    d->k = malloc(sizeof(float) * R * KD);
    d->v = malloc(sizeof(float) * R * KD);
    d->att = malloc(sizeof(float) * R * QD);
    d->hid = malloc(sizeof(float) * R * C);
    d->hn = malloc(sizeof(float) * R * C);
    d->g = malloc(sizeof(float) * R * d->F);
    d->up = malloc(sizeof(float) * R * d->F);
    d->out = malloc(sizeof(float) * R * C);
    d->prev = malloc(sizeof(float) * K * C);
    d->feat = malloc(sizeof(float) * K * C);
    d->lp = h->dvocab ? NULL : malloc(sizeof(float) * (size_t)K * d->V); // whole rows: no draft vocabulary
    d->tk_id = malloc(sizeof(int32_t) * K * K);
    d->tk_lp = malloc(sizeof(float) * K * K);
    d->sc = malloc(sizeof(float) * NT);
    d->inv_freq = malloc(sizeof(float) * (d->D / 2));
    d->tok = malloc(sizeof(int32_t) * R);
    d->pos = malloc(sizeof(int32_t) * R);
    d->slot = malloc(sizeof(int32_t) * R);
    d->nvis = malloc(sizeof(int32_t) * R);
    if (!d->k_cache || !d->v_cache || !d->pend_f || !d->pend_t || !d->o_last || !d->emb ||
        !d->cat || !d->u || !d->q || !d->k || !d->v || !d->att || !d->hid || !d->hn || !d->g ||
        !d->up || !d->out || !d->prev || !d->feat || (!h->dvocab && !d->lp) || !d->tk_id || !d->tk_lp || !d->sc || !d->inv_freq ||
        !d->tok || !d->pos || !d->slot || !d->nvis) {
        hass_draft_free(d);
        e = hass_seterr(HASS_ENOMEM, "draft: out of memory for a context of %d", n_ctx);
        goto fail0;
    }
    for (int i = 0; i < d->D / 2; i++)
        d->inv_freq[i] = (float)(1.0 / pow((double)h->rope_theta, (2.0 * i) / d->D));
    d->w_fc = wmat_f32(h->fc_w, C, 2 * C);
    d->w_q = wmat_f32(h->wq, QD, C);
    d->w_k = wmat_f32(h->wk, KD, C);
    d->w_v = wmat_f32(h->wv, KD, C);
    d->w_o = wmat_f32(h->wo, C, QD);
    d->w_gate = wmat_f32(h->w_gate, d->F, C);
    d->w_up = wmat_f32(h->w_up, d->F, C);
    d->w_down = wmat_f32(h->w_down, C, d->F);
    if ((e = layer_bf16(d)) || (h->dvocab && (e = gather_dvocab(d, K)))) {
        hass_draft_free(d);
        goto fail0;
    }
    return d;
fail0:
    if (err) *err = e;
    return NULL;
}

// Start a new sequence.
void hass_draft_reset(hass_draft *d) {
    d->n_stable = 0;
    d->n_pend = 0;
    d->has_last = 0;
}

int hass_draft_n_pending(const hass_draft *d) { return d->n_pend; }
int hass_draft_n_embd(const hass_draft *d) { return d->C; }
int hass_draft_n_stable(const hass_draft *d) { return d->n_stable; }
const float *hass_draft_last(const hass_draft *d) { return d->has_last ? d->o_last : NULL; }

// Queue committed pairs.
hass_err hass_draft_push(hass_draft *d, const float *feats, const int32_t *next_tok, int m) {
    if (m < 0 || d->n_stable + d->n_pend + m > d->n_ctx)
        return hass_seterr(HASS_ERANGE, "draft: context of %d positions exceeded", d->n_ctx);
    for (int i = 0; i < m; i++)
        if (next_tok[i] < 0 || next_tok[i] >= d->V)
            return hass_seterr(HASS_ERANGE, "draft: token %d outside the vocabulary", next_tok[i]);
    memcpy(d->pend_f + (size_t)d->n_pend * d->C, feats, sizeof(float) * (size_t)m * d->C);
    memcpy(d->pend_t + d->n_pend, next_tok, sizeof(int32_t) * (size_t)m);
    d->n_pend += m;
    return HASS_OK;
}

// Rotate-half RoPE of one head vector x (D) at position p.
static void rope_half(float *x, int D, int p, const float *inv_freq) {
    int h = D / 2;
    for (int i = 0; i < h; i++) {
        float a = (float)p * inv_freq[i];
        float c = cosf(a), s = sinf(a);
        float x0 = x[i], x1 = x[i + h];
        x[i] = x0 * c - x1 * s;
        x[i + h] = x1 * c + x0 * s;
    }
}

// One draft-layer forward over n rows: features feat (n, C), tokens d->tok, positions d->pos,
// KV written at d->slot. Row r attends to stable entries [0, d->nvis[r]) and, when smask is not
// NULL, to scratch entries e < n_sm with smask[r*sm_w + e]. Output rows in d->out.
static hass_err layer_forward(hass_draft *d, const float *feat, int n, const uint8_t *smask,
                              int sm_w, int n_sm) {
    const hass_head *h = d->h;
    int C = d->C, D = d->D, H = d->H, Hkv = d->Hkv, QD = H * D, KD = Hkv * D, F = d->F;
    hass_err e;
    if ((e = hass_model_embed(d->m, d->tok, n, d->emb))) return e;
    for (int r = 0; r < n; r++) {
        memcpy(d->cat + (size_t)r * 2 * C, d->emb + (size_t)r * C, sizeof(float) * C);
        memcpy(d->cat + (size_t)r * 2 * C + C, feat + (size_t)r * C, sizeof(float) * C);
    }
    if ((e = hass_matmul(d->m, d->u, d->cat, n, &d->w_fc, d->lq))) return e;
    if (h->fc_b)
        for (int r = 0; r < n; r++)
            for (int i = 0; i < C; i++) d->u[(size_t)r * C + i] += h->fc_b[i];
    float *qkv_y[3] = {d->q, d->k, d->v};
    const hass_wmat *qkv_w[3] = {&d->w_q, &d->w_k, &d->w_v};
    if ((e = hass_matmul_shared(d->m, qkv_y, d->u, n, qkv_w, 3, d->lq))) return e;
    for (int r = 0; r < n; r++) {
        for (int hh = 0; hh < H; hh++) rope_half(d->q + (size_t)r * QD + hh * D, D, d->pos[r], d->inv_freq);
        for (int hh = 0; hh < Hkv; hh++) rope_half(d->k + (size_t)r * KD + hh * D, D, d->pos[r], d->inv_freq);
        memcpy(d->k_cache + (size_t)d->slot[r] * KD, d->k + (size_t)r * KD, sizeof(float) * KD);
        memcpy(d->v_cache + (size_t)d->slot[r] * KD, d->v + (size_t)r * KD, sizeof(float) * KD);
    }
    float scale = 1.0f / sqrtf((float)D);
    int grp = H / Hkv;
    size_t sbase = (size_t)d->n_ctx;
    for (int r = 0; r < n; r++) {
        for (int hh = 0; hh < H; hh++) {
            const float *qv = d->q + (size_t)r * QD + hh * D;
            int kh = hh / grp;
            int nk = 0;
            float mx = -INFINITY;
            // scores over visible entries: stable first, then scratch in entry order
            for (int j = 0; j < d->nvis[r]; j++) {
                const float *kv = d->k_cache + (size_t)j * KD + kh * D;
                float s = 0.f;
                for (int i = 0; i < D; i++) s += qv[i] * kv[i];
                s *= scale;
                d->sc[nk++] = s;
                if (s > mx) mx = s;
            }
            if (smask)
                for (int j = 0; j < n_sm; j++) {
                    if (!smask[(size_t)r * sm_w + j]) continue;
                    const float *kv = d->k_cache + (sbase + j) * KD + kh * D;
                    float s = 0.f;
                    for (int i = 0; i < D; i++) s += qv[i] * kv[i];
                    s *= scale;
                    d->sc[nk++] = s;
                    if (s > mx) mx = s;
                }
            float sum = 0.f;
            for (int j = 0; j < nk; j++) {
                d->sc[j] = expf(d->sc[j] - mx);
                sum += d->sc[j];
            }
            float *o = d->att + (size_t)r * QD + hh * D;
            for (int i = 0; i < D; i++) o[i] = 0.f;
            int t = 0;
            for (int j = 0; j < d->nvis[r]; j++, t++) {
                const float *vv = d->v_cache + (size_t)j * KD + kh * D;
                float w = d->sc[t] / sum;
                for (int i = 0; i < D; i++) o[i] += w * vv[i];
            }
            if (smask)
                for (int j = 0; j < n_sm; j++) {
                    if (!smask[(size_t)r * sm_w + j]) continue;
                    const float *vv = d->v_cache + (sbase + j) * KD + kh * D;
                    float w = d->sc[t++] / sum;
                    for (int i = 0; i < D; i++) o[i] += w * vv[i];
                }
        }
    }
    if ((e = hass_matmul(d->m, d->hid, d->att, n, &d->w_o, d->lq))) return e;
    for (size_t i = 0; i < (size_t)n * C; i++) d->hid[i] += d->u[i];
    hass_cpu_rmsnorm(d->hn, d->hid, h->post_norm, n, C, h->norm_eps);
    float *gu_y[2] = {d->g, d->up};
    const hass_wmat *gu_w[2] = {&d->w_gate, &d->w_up};
    if ((e = hass_matmul_shared(d->m, gu_y, d->hn, n, gu_w, 2, d->lq))) return e;
    for (size_t i = 0; i < (size_t)n * F; i++) {
        float x = d->g[i];
        d->g[i] = x / (1.f + expf(-x)) * d->up[i];
    }
    if ((e = hass_matmul(d->m, d->out, d->g, n, &d->w_down, d->lq))) return e;
    for (size_t i = 0; i < (size_t)n * C; i++) d->out[i] += d->hid[i];
    return HASS_OK;
}

// Run the pending pairs through the layer in chunks, appending stable KV.
hass_err hass_draft_catchup(hass_draft *d) {
    int done = 0;
    while (done < d->n_pend) {
        int n = d->n_pend - done;
        if (n > CHUNK) n = CHUNK;
        for (int r = 0; r < n; r++) {
            int p = d->n_stable + r;
            d->tok[r] = d->pend_t[done + r];
            d->pos[r] = p;
            d->slot[r] = p;
            d->nvis[r] = p + 1;
        }
        hass_err e = layer_forward(d, d->pend_f + (size_t)done * d->C, n, NULL, 0, 0);
        if (e) return e;
        d->n_stable += n;
        done += n;
        memcpy(d->o_last, d->out + (size_t)(n - 1) * d->C, sizeof(float) * d->C);
        d->has_last = 1;
    }
    d->n_pend = 0;
    return HASS_OK;
}

// Draft log-probs of n output rows x (n, C), kept as each row's top k (ids best first, ties
// by lower id) in d->tk_id / d->tk_lp, row r at r * max top-k; with a draft vocabulary, over
// its ids only (normalised over them; ascending ids, so its ties rank as the token ids').
static hass_err draft_topk(hass_draft *d, const float *x, int n, int k) {
    int K = d->max.top_k;
    if (!d->dv_rows) {
        hass_err e = hass_model_lm_head(d->m, x, n, d->lp);
        if (e) return e;
        for (int r = 0; r < n; r++) {
            float *row = d->lp + (size_t)r * d->V;
            hass_log_softmax(row, d->V);
            hass_topk(row, d->V, k, d->tk_id + r * K, d->tk_lp + r * K);
        }
        return HASS_OK;
    }
    int N = d->h->n_dvocab;
    hass_err e = hass_matmul(d->m, d->dv_lp, x, n, &d->w_dv, d->dv_q);
    if (e) return e;
    for (int r = 0; r < n; r++) {
        float *src = d->dv_lp + (size_t)r * N;
        int32_t *id = d->tk_id + r * K;
        hass_log_softmax(src, N);
        hass_topk(src, N, k, id, d->tk_lp + r * K);
        for (int j = 0; j < k; j++) id[j] = d->h->dvocab[id[j]];
    }
    return HASS_OK;
}

// Catch-up, level 1, expansions, rerank (see draft.h).
hass_err hass_draft_tree(hass_draft *d, int32_t root, hass_tree *t) {
    const hass_tree_cfg *c = &t->cfg;
    if (c->top_k > d->max.top_k || c->levels > d->max.levels)
        return hass_seterr(HASS_EINVAL, "draft: tree (depth %d, top-k %d) beyond the drafter's (%d, %d)",
                           c->levels, c->top_k, d->max.levels, d->max.top_k);
    if (d->n_pend > 0 && d->pend_t[d->n_pend - 1] != root)
        return hass_seterr(HASS_EINVAL, "draft: last pushed token %d is not the root %d",
                           d->pend_t[d->n_pend - 1], root);
    hass_err e = hass_draft_catchup(d);
    if (e) return e;
    if (!d->has_last) return hass_seterr(HASS_EINVAL, "draft: no committed pair to draft from");
    int K = c->top_k, W = d->dv_rows ? d->h->n_dvocab : d->V, k = K < W ? K : W;
    if ((e = draft_topk(d, d->o_last, 1, k))) return e;
    hass_tree_begin_k(t, root, d->tk_id, d->tk_lp, k);
    while (hass_tree_want_expand(t)) {
        int i = t->step, n = t->n_beam;
        for (int r = 0; r < n; r++) {
            const float *src = t->beam_src[r] < 0 ? d->o_last : d->prev + (size_t)t->beam_src[r] * d->C;
            memcpy(d->feat + (size_t)r * d->C, src, sizeof(float) * d->C);
            d->tok[r] = t->beam_tok[r];
            d->pos[r] = d->n_stable + i;
            d->slot[r] = d->n_ctx + i * K + r;
            d->nvis[r] = d->n_stable;
        }
        e = layer_forward(d, d->feat, n, t->beam_mask, t->mask_w, (i + 1) * K);
        if (e) return e;
        memcpy(d->prev, d->out, sizeof(float) * (size_t)n * d->C);
        if ((e = draft_topk(d, d->prev, n, k))) return e;
        hass_tree_expand_k(t, d->tk_id, d->tk_lp, d->max.top_k, k);
    }
    hass_tree_finish(t);
    return HASS_OK;
}
