// llama.cu: a LLaMA layer stack on the GPU built from the kernels of this folder: bf16 weights
// in one device arena, f32 activations and KV cache, cuBLAS/GEMV matmuls with the residual
// added by the GEMM (beta = 1), K/V stored into the cache by strided copies. One forward covers
// n tokens (decode: n = 1; verify: a tree with its block mask) and can be captured as a graph.
#include "common.cuh"
#include "ops.h"

extern "C" {
#include "gpu.h"
}

// Round a byte count up to 256 (alignment of every tensor in the arena).
static size_t al(size_t n) { return (n + 255) & ~(size_t)255; }

// Bytes of weights in the arena (embedding, LM head unless tied, norms, layers).
static size_t weights_bytes(const hass_cuda_llama_cfg *c, size_t *per_layer) {
    size_t hd = (size_t)c->n_embd / c->n_head, q = hd * c->n_head, kv = hd * c->n_kv_head;
    size_t E = (size_t)c->n_embd;
    size_t layer = al(E * 4) * 2 + al((q + 2 * kv) * E * 2) + al(E * q * 2) +
                   al(2 * (size_t)c->n_ff * E * 2) + al(E * c->n_ff * 2);
    if (per_layer) *per_layer = layer;
    size_t embd = al((size_t)c->n_vocab * E * 2);
    return embd * (c->tied ? 1 : 2) + al(E * 4) + layer * c->n_layer;
}

// Decode attention splits for a cache of n_ctx entries: about 256 keys each, 1..64.
static int dec_splits(int n_ctx) {
    int s = CEIL_DIV(n_ctx, 256);
    return s < 1 ? 1 : s > 64 ? 64 : s;
}

// Bytes of KV cache and scratch.
static size_t state_bytes(const hass_cuda_llama_cfg *c) {
    size_t hd = (size_t)c->n_embd / c->n_head, q = hd * c->n_head, kv = hd * c->n_kv_head;
    size_t T = (size_t)c->max_tok, E = (size_t)c->n_embd, F = (size_t)c->n_ff;
    size_t xbw = E > q ? E : q;
    xbw = xbw > F ? xbw : F;
    return 2 * al((size_t)c->n_layer * c->n_ctx * kv * 4) + 2 * al(T * E * 4) +
           al(T * (q + 2 * kv) * 4) + al(T * q * 4) + al(T * 2 * F * 4) + al(T * F * 4) +
           al(T * xbw * 2) + al(T * c->n_vocab * 4) + 2 * al(T * 4) + al(T * T) + al(4) +
           al(hass_cuda_attention_rows_part(dec_splits(c->n_ctx), c->max_tok, c->n_head, (int)hd) * 4);
}

// Device bytes a stack of this shape needs.
extern "C" size_t hass_cuda_llama_bytes(const hass_cuda_llama_cfg *cfg) {
    return weights_bytes(cfg, NULL) + state_bytes(cfg);
}

// Carve n bytes from a bump pointer.
static void *carve(char **p, size_t n) {
    void *r = *p;
    *p += al(n);
    return r;
}

// Check a stack's shapes (HASS_EINVAL naming them all).
static hass_err check_shape(const hass_cuda_llama_cfg *c) {
    if (c->n_layer <= 0 || c->n_embd <= 0 || c->n_head <= 0 || c->n_kv_head <= 0 ||
        c->n_embd % c->n_head || c->n_head % c->n_kv_head || (c->n_embd / c->n_head) % 2 ||
        c->n_ff <= 0 || c->n_vocab <= 0 || c->n_ctx <= 0 || c->max_tok <= 0 ||
        c->max_tok > c->n_ctx)
        return hass_seterr(HASS_EINVAL, "cuda llama: bad shape (layers %d, embd %d, heads %d/%d, "
                                        "ff %d, vocab %d, ctx %d, max_tok %d)",
                           c->n_layer, c->n_embd, c->n_head, c->n_kv_head, c->n_ff, c->n_vocab,
                           c->n_ctx, c->max_tok);
    return HASS_OK;
}

// Check that a device exists and that `need` bytes (what: "the model", "the KV cache") fit in its
// free memory with a margin: HASS_ENODEV / HASS_ENOMEM naming both sizes.
static hass_err check_fit(size_t need, const char *what) {
    if (hass_cuda_device_count() == 0) return hass_seterr(HASS_ENODEV, "cuda llama: no CUDA device");
    size_t fr = 0, tot = 0;
    need += (size_t)32 << 20; // the cuBLAS workspace
    cudaError_t ce = cudaMemGetInfo(&fr, &tot);
    if (ce != cudaSuccess) {
        cudaGetLastError();
        return hass_seterr(HASS_ENODEV, "cuda llama: cudaMemGetInfo: %s", cudaGetErrorString(ce));
    }
    if (need + ((size_t)256 << 20) > fr)
        return hass_seterr(HASS_ENOMEM,
                           "cuda llama: %s needs %.2f GiB of device memory, the device has "
                           "%.2f GiB free of %.2f GiB",
                           what, (double)need / (1 << 30), (double)fr / (1 << 30),
                           (double)tot / (1 << 30));
    return HASS_OK;
}

// Set the derived widths of a stack from its cfg.
static void set_dims(hass_cuda_llama *m, const hass_cuda_llama_cfg *c) {
    m->cfg = *c;
    m->head_dim = c->n_embd / c->n_head;
    m->q_dim = m->head_dim * c->n_head;
    m->kv_dim = m->head_dim * c->n_kv_head;
    m->qkv_dim = m->q_dim + 2 * m->kv_dim;
}

// Carve the KV cache and the scratch of a stack (state_bytes of them) from *p.
static void carve_state(hass_cuda_llama *m, char **p) {
    const hass_cuda_llama_cfg *c = &m->cfg;
    size_t E = (size_t)c->n_embd, F = (size_t)c->n_ff, V = (size_t)c->n_vocab, T = (size_t)c->max_tok;
    size_t kvb = (size_t)c->n_layer * c->n_ctx * m->kv_dim * 4;
    m->k_cache = (float *)carve(p, kvb);
    m->v_cache = (float *)carve(p, kvb);
    m->x = (float *)carve(p, T * E * 4);
    m->h = (float *)carve(p, T * E * 4);
    m->qkv = (float *)carve(p, T * m->qkv_dim * 4);
    m->att = (float *)carve(p, T * m->q_dim * 4);
    m->gu = (float *)carve(p, T * 2 * F * 4);
    m->ff = (float *)carve(p, T * F * 4);
    size_t xbw = E > (size_t)m->q_dim ? E : (size_t)m->q_dim;
    m->xb = (uint16_t *)carve(p, T * (xbw > F ? xbw : F) * 2);
    m->logits = (float *)carve(p, T * V * 4);
    m->tok = (int32_t *)carve(p, T * 4);
    m->pos = (int32_t *)carve(p, T * 4);
    m->mask = (uint8_t *)carve(p, T * T);
    m->n_past = (int32_t *)carve(p, 4);
    m->dec_split = dec_splits(c->n_ctx);
    m->dec_part = (float *)carve(p, hass_cuda_attention_rows_part(m->dec_split, c->max_tok, c->n_head, m->head_dim) * 4);
}

// Allocate a stack after checking the shapes and the free device memory.
extern "C" hass_cuda_llama *hass_cuda_llama_new(const hass_cuda_llama_cfg *cfg, hass_err *err) {
    const hass_cuda_llama_cfg *c = cfg;
    if ((*err = check_shape(c)) || (*err = check_fit(hass_cuda_llama_bytes(c), "the model")))
        return NULL;
    hass_cuda_llama *m = (hass_cuda_llama *)calloc(1, sizeof *m);
    if (!m || !(m->layers = (hass_cuda_layer *)calloc((size_t)c->n_layer, sizeof *m->layers))) {
        free(m);
        *err = hass_seterr(HASS_ENOMEM, "cuda llama: out of host memory");
        return NULL;
    }
    set_dims(m, c);
    if ((*err = hass_cuda_cublas_create(&m->cublas)) ||
        (*err = hass_cuda_malloc(&m->arena, hass_cuda_llama_bytes(c)))) {
        hass_errprefix("cuda llama");
        hass_cuda_llama_free(m);
        return NULL;
    }
    char *p = (char *)m->arena;
    size_t E = (size_t)c->n_embd, F = (size_t)c->n_ff, V = (size_t)c->n_vocab;
    m->tok_embd = (uint16_t *)carve(&p, V * E * 2);
    m->lm_head = c->tied ? m->tok_embd : (uint16_t *)carve(&p, V * E * 2);
    m->out_norm = (float *)carve(&p, E * 4);
    for (int l = 0; l < c->n_layer; l++) {
        hass_cuda_layer *L = &m->layers[l];
        L->attn_norm = (float *)carve(&p, E * 4);
        L->ffn_norm = (float *)carve(&p, E * 4);
        L->wqkv = (uint16_t *)carve(&p, (size_t)m->qkv_dim * E * 2);
        L->wo = (uint16_t *)carve(&p, E * m->q_dim * 2);
        L->w_gu = (uint16_t *)carve(&p, 2 * F * E * 2);
        L->w_down = (uint16_t *)carve(&p, E * F * 2);
    }
    m->weight_bytes = (size_t)(p - (char *)m->arena) - al(V * E * 2) * (c->tied ? 0 : 1);
    carve_state(m, &p);
    HASS_ASSERT((size_t)(p - (char *)m->arena) <= hass_cuda_llama_bytes(c));
    return m;
}

// A stack over src's weights (shared, never freed by it) with its own KV cache and scratch.
extern "C" hass_cuda_llama *hass_cuda_llama_fork(const hass_cuda_llama *src, int n_ctx,
                                                 int max_tok, hass_err *err) {
    hass_cuda_llama_cfg c = src->cfg;
    c.n_ctx = n_ctx;
    c.max_tok = max_tok;
    if ((*err = check_shape(&c)) || (*err = check_fit(state_bytes(&c), "the KV cache and scratch")))
        return NULL;
    hass_cuda_llama *m = (hass_cuda_llama *)calloc(1, sizeof *m);
    if (!m || !(m->layers = (hass_cuda_layer *)calloc((size_t)c.n_layer, sizeof *m->layers))) {
        free(m);
        *err = hass_seterr(HASS_ENOMEM, "cuda llama: out of host memory");
        return NULL;
    }
    set_dims(m, &c);
    m->shares_weights = 1;
    memcpy(m->layers, src->layers, sizeof *m->layers * (size_t)c.n_layer);
    m->tok_embd = src->tok_embd;
    m->lm_head = src->lm_head;
    m->out_norm = src->out_norm;
    m->weight_bytes = src->weight_bytes;
    if ((*err = hass_cuda_cublas_create(&m->cublas)) ||
        (*err = hass_cuda_malloc(&m->arena, state_bytes(&c)))) {
        hass_errprefix("cuda llama fork");
        hass_cuda_llama_free(m);
        return NULL;
    }
    char *p = (char *)m->arena;
    carve_state(m, &p);
    HASS_ASSERT((size_t)(p - (char *)m->arena) <= state_bytes(&c));
    return m;
}

// Fill all weights with deterministic noise: matrices uniform * 1/sqrt(in), norms 1 +- 0.1,
// embedding uniform; the KV cache with small noise so attention over n_past is realistic.
extern "C" hass_err hass_cuda_llama_randomize(hass_cuda_llama *m, uint32_t seed) {
    const hass_cuda_llama_cfg *c = &m->cfg;
    size_t E = (size_t)c->n_embd, F = (size_t)c->n_ff, V = (size_t)c->n_vocab;
    hass_err e = hass_cuda_fill_bf16(m->tok_embd, V * E, seed++, 1.0f, 0.f);
    if (!e && !c->tied) e = hass_cuda_fill_bf16(m->lm_head, V * E, seed++, 1.0f / sqrtf((float)E), 0.f);
    if (!e) e = hass_cuda_fill_f32(m->out_norm, E, seed++, 0.1f, 1.f);
    for (int l = 0; l < c->n_layer && !e; l++) {
        hass_cuda_layer *L = &m->layers[l];
        float se = 1.0f / sqrtf((float)E);
        e = hass_cuda_fill_f32(L->attn_norm, E, seed++, 0.1f, 1.f);
        if (!e) e = hass_cuda_fill_f32(L->ffn_norm, E, seed++, 0.1f, 1.f);
        if (!e) e = hass_cuda_fill_bf16(L->wqkv, (size_t)m->qkv_dim * E, seed++, se, 0.f);
        if (!e) e = hass_cuda_fill_bf16(L->wo, E * m->q_dim, seed++, 1.0f / sqrtf((float)m->q_dim), 0.f);
        if (!e) e = hass_cuda_fill_bf16(L->w_gu, 2 * F * E, seed++, se, 0.f);
        if (!e) e = hass_cuda_fill_bf16(L->w_down, E * F, seed++, 1.0f / sqrtf((float)F), 0.f);
    }
    size_t kvn = (size_t)c->n_layer * c->n_ctx * m->kv_dim;
    if (!e) e = hass_cuda_fill_f32(m->k_cache, kvn, seed++, 1.0f, 0.f);
    if (!e) e = hass_cuda_fill_f32(m->v_cache, kvn, seed++, 1.0f, 0.f);
    if (!e) e = hass_cuda_stream_sync();
    return e;
}

// Copy the next forward's inputs to the device.
extern "C" hass_err hass_cuda_llama_set_input(hass_cuda_llama *m, const int32_t *tok,
                                              const int32_t *pos, const uint8_t *mask, int n) {
    if (n <= 0 || n > m->cfg.max_tok)
        return hass_seterr(HASS_ERANGE, "cuda llama: %d tokens, at most %d", n, m->cfg.max_tok);
    hass_err e = hass_cuda_h2d(m->tok, tok, (size_t)n * 4);
    if (!e) e = hass_cuda_h2d(m->pos, pos, (size_t)n * 4);
    if (!e && mask) e = hass_cuda_h2d(m->mask, mask, (size_t)n * n);
    return e;
}

// Queue one forward of n tokens after n_past committed entries.
extern "C" hass_err hass_cuda_llama_forward(hass_cuda_llama *m, int n_past, int n, int use_mask) {
    const hass_cuda_llama_cfg *c = &m->cfg;
    if (n <= 0 || n > c->max_tok || n_past < 0 || n_past + n > c->n_ctx)
        return hass_seterr(HASS_ERANGE, "cuda llama: forward of %d after %d: max %d tokens, "
                                        "context %d", n, n_past, c->max_tok, c->n_ctx);
    int E = c->n_embd, F = c->n_ff, hd = m->head_dim;
    size_t lstride = (size_t)c->n_ctx * m->kv_dim;
    hass_err e = hass_cuda_embed(m->x, m->tok_embd, m->tok, n, c->n_vocab, E);
    for (int l = 0; l < c->n_layer && !e; l++) {
        hass_cuda_layer *L = &m->layers[l];
        float *kc = m->k_cache + l * lstride, *vc = m->v_cache + l * lstride;
        e = hass_cuda_rmsnorm_bf16(NULL, m->xb, m->x, L->attn_norm, n, E, c->norm_eps);
        if (!e) e = hass_cuda_matmul_bf16(m->cublas, m->qkv, m->xb, L->wqkv, n, E, m->qkv_dim, 0.f, 0);
        // Q and K heads are adjacent in a qkv row: one RoPE call over n_head + n_kv_head heads
        if (!e) e = hass_cuda_rope(m->qkv, m->pos, n, m->qkv_dim, c->n_head + c->n_kv_head, hd, c->rope_theta, c->rope_layout);
        if (e) break;
        size_t row = (size_t)m->kv_dim * 4, src = (size_t)m->qkv_dim * 4;
        HASS_CUDA_CHECK(cudaMemcpy2DAsync(kc + (size_t)n_past * m->kv_dim, row, m->qkv + m->q_dim,
                                          src, row, n, cudaMemcpyDeviceToDevice, hass_cuda_stream));
        HASS_CUDA_CHECK(cudaMemcpy2DAsync(vc + (size_t)n_past * m->kv_dim, row,
                                          m->qkv + m->q_dim + m->kv_dim, src, row, n,
                                          cudaMemcpyDeviceToDevice, hass_cuda_stream));
        if (hass_cuda_batch_invariant()) // the decode step's arithmetic for every row
            e = hass_cuda_attention_rows(m->att, m->qkv, kc, vc, use_mask ? m->mask : NULL, n_past,
                                         n, m->qkv_dim, c->n_ctx, c->n_head, c->n_kv_head, hd,
                                         m->dec_part, m->dec_split);
        else
            e = hass_cuda_attention(m->att, m->qkv, kc, vc, use_mask ? m->mask : NULL, n_past, n,
                                    m->qkv_dim, c->n_head, c->n_kv_head, hd);
        if (!e) e = hass_cuda_matmul(m->cublas, m->x, m->att, L->wo, m->xb, n, m->q_dim, E, 1.f);
        if (!e) e = hass_cuda_rmsnorm_bf16(NULL, m->xb, m->x, L->ffn_norm, n, E, c->norm_eps);
        if (!e) e = hass_cuda_matmul_bf16(m->cublas, m->gu, m->xb, L->w_gu, n, E, 2 * F, 0.f, 0);
        if (!e) e = hass_cuda_swiglu_bf16(m->xb, m->gu, n, F);
        if (!e) e = hass_cuda_matmul_bf16(m->cublas, m->x, m->xb, L->w_down, n, F, E, 1.f, 0);
    }
    if (!e) e = hass_cuda_rmsnorm_bf16(m->h, m->xb, m->x, m->out_norm, n, E, c->norm_eps);
    if (!e) e = hass_cuda_matmul_bf16(m->cublas, m->logits, m->xb, m->lm_head, n, E, c->n_vocab, 0.f, 0);
    return e;
}

// Set the position hass_cuda_llama_decode reads.
extern "C" hass_err hass_cuda_llama_set_past(hass_cuda_llama *m, int n_past) {
    if (n_past < 0 || n_past + 1 > m->cfg.n_ctx)
        return hass_seterr(HASS_ERANGE, "cuda llama: decode after %d entries, context %d", n_past,
                           m->cfg.n_ctx);
    int32_t v = n_past;
    return hass_cuda_h2d(m->n_past, &v, 4);
}

// One token after *m->n_past entries (device): capturable once, replays at any position.
extern "C" hass_err hass_cuda_llama_decode(hass_cuda_llama *m) {
    const hass_cuda_llama_cfg *c = &m->cfg;
    int E = c->n_embd, F = c->n_ff, hd = m->head_dim;
    size_t lstride = (size_t)c->n_ctx * m->kv_dim;
    hass_err e = hass_cuda_embed(m->x, m->tok_embd, m->tok, 1, c->n_vocab, E);
    for (int l = 0; l < c->n_layer && !e; l++) {
        hass_cuda_layer *L = &m->layers[l];
        float *kc = m->k_cache + l * lstride, *vc = m->v_cache + l * lstride;
        e = hass_cuda_rmsnorm_bf16(NULL, m->xb, m->x, L->attn_norm, 1, E, c->norm_eps);
        if (!e) e = hass_cuda_matmul_bf16(m->cublas, m->qkv, m->xb, L->wqkv, 1, E, m->qkv_dim, 0.f, 0);
        if (!e) e = hass_cuda_rope(m->qkv, m->pos, 1, m->qkv_dim, c->n_head + c->n_kv_head, hd, c->rope_theta, c->rope_layout);
        if (!e) e = hass_cuda_kv_store(kc, vc, m->qkv, m->n_past, 1, m->qkv_dim, m->q_dim, m->kv_dim);
        if (!e) e = hass_cuda_attention_decode(m->att, m->qkv, kc, vc, m->n_past, c->n_ctx, c->n_head, c->n_kv_head, hd, m->dec_part, m->dec_split);
        if (!e) e = hass_cuda_matmul(m->cublas, m->x, m->att, L->wo, m->xb, 1, m->q_dim, E, 1.f);
        if (!e) e = hass_cuda_rmsnorm_bf16(NULL, m->xb, m->x, L->ffn_norm, 1, E, c->norm_eps);
        if (!e) e = hass_cuda_matmul_bf16(m->cublas, m->gu, m->xb, L->w_gu, 1, E, 2 * F, 0.f, 0);
        if (!e) e = hass_cuda_swiglu_bf16(m->xb, m->gu, 1, F);
        if (!e) e = hass_cuda_matmul_bf16(m->cublas, m->x, m->xb, L->w_down, 1, F, E, 1.f, 0);
    }
    if (!e) e = hass_cuda_rmsnorm_bf16(m->h, m->xb, m->x, m->out_norm, 1, E, c->norm_eps);
    if (!e) e = hass_cuda_matmul_bf16(m->cublas, m->logits, m->xb, m->lm_head, 1, E, c->n_vocab, 0.f, 0);
    return e;
}

// Free a stack; NULL is a no-op.
extern "C" void hass_cuda_llama_free(hass_cuda_llama *m) {
    if (!m) return;
    hass_cuda_free(m->arena);
    hass_cuda_cublas_destroy(m->cublas);
    free(m->layers);
    free(m);
}
