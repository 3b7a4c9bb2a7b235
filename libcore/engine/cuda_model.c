// cuda_model.c: upload a loaded model (model.h) to the GPU LLaMA stack of kernels/llama.cu:
// every weight dequantized on the host (GGUF Q4_0/Q4_1/Q8_0/F16/BF16/F32 -> float -> bf16, round
// to nearest even), Q/K/V rows concatenated into wqkv and gate/up rows into w_gu, norms as f32.
// Built only with CUDA.
#ifdef HASS_WITH_CUDA
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "model_int.h"
#include "ops.h"
#include "quant.h"

#define UPLOAD_ROWS_BYTES ((size_t)16 << 20) // host staging per copy

// Copy the rows of w, converted to bf16, to d_dst (w->n_out rows of w->n_in values).
static hass_err upload_wmat(uint16_t *d_dst, const hass_wmat *w, float *row, uint16_t *stage,
                            size_t stage_vals) {
    size_t per = stage_vals / (size_t)w->n_in, done = 0;
    if (per == 0) return hass_seterr(HASS_ERANGE, "cuda upload: row of %d values too long", w->n_in);
    while (done < (size_t)w->n_out) {
        size_t k = (size_t)w->n_out - done < per ? (size_t)w->n_out - done : per;
        for (size_t r = 0; r < k; r++) {
            hass_quant_row(w, (int)(done + r), row);
            for (int i = 0; i < w->n_in; i++) stage[r * w->n_in + i] = hass_f32_to_bf16(row[i]);
        }
        hass_err e = hass_cuda_h2d(d_dst + done * w->n_in, stage, k * w->n_in * 2);
        if (e) return e;
        done += k;
    }
    return HASS_OK;
}

// Build a GPU stack from a loaded model: n_ctx KV entries, forwards of up to max_tok tokens.
// HASS_EUNSUP for what the stack does not do (biases, RoPE scaling, head_dim != n_embd/n_head).
hass_cuda_llama *hass_cuda_llama_from_model(const hass_model *m, int n_ctx, int max_tok,
                                            hass_err *err) {
    const hass_model_cfg *c = &m->cfg;
    if (c->qkv_bias || c->rope_scaling || c->head_dim * c->n_head != c->n_embd) {
        *err = hass_seterr(HASS_EUNSUP, "cuda: %s: q/k/v biases, RoPE scaling or head_dim %d != "
                                        "n_embd/n_head are not supported on the GPU yet",
                           m->path, c->head_dim);
        return NULL;
    }
    hass_cuda_llama_cfg g = {.n_layer = c->n_layer, .n_embd = c->n_embd, .n_head = c->n_head,
                             .n_kv_head = c->n_head_kv, .n_ff = c->n_ff, .n_vocab = c->n_vocab,
                             .n_ctx = n_ctx, .max_tok = max_tok, .rope_layout = c->rope_mode,
                             .tied = c->tied, .rope_theta = c->rope_theta, .norm_eps = c->norm_eps};
    hass_cuda_llama *d = hass_cuda_llama_new(&g, err);
    if (!d) return NULL;
    int widest = c->n_embd > c->n_ff ? c->n_embd : c->n_ff;
    size_t stage_vals = UPLOAD_ROWS_BYTES / 2;
    if (stage_vals < (size_t)widest) stage_vals = (size_t)widest;
    float *row = malloc((size_t)widest * sizeof *row);
    uint16_t *stage = malloc(stage_vals * sizeof *stage);
    hass_err e = row && stage ? HASS_OK : hass_seterr(HASS_ENOMEM, "cuda upload: out of memory");
    size_t C = (size_t)c->n_embd;
    if (!e) e = upload_wmat(d->tok_embd, &m->tok_embd, row, stage, stage_vals);
    if (!e && !c->tied) e = upload_wmat(d->lm_head, &m->output, row, stage, stage_vals);
    if (!e) e = hass_cuda_h2d(d->out_norm, m->output_norm, C * 4);
    for (int l = 0; l < c->n_layer && !e; l++) {
        const hass_layer *L = &m->layers[l];
        hass_cuda_layer *D = &d->layers[l];
        e = hass_cuda_h2d(D->attn_norm, L->attn_norm, C * 4);
        if (!e) e = hass_cuda_h2d(D->ffn_norm, L->ffn_norm, C * 4);
        if (!e) e = upload_wmat(D->wqkv, &L->wq, row, stage, stage_vals);
        if (!e) e = upload_wmat(D->wqkv + (size_t)d->q_dim * C, &L->wk, row, stage, stage_vals);
        if (!e) e = upload_wmat(D->wqkv + (size_t)(d->q_dim + d->kv_dim) * C, &L->wv, row, stage, stage_vals);
        if (!e) e = upload_wmat(D->wo, &L->wo, row, stage, stage_vals);
        if (!e) e = upload_wmat(D->w_gu, &L->w_gate, row, stage, stage_vals);
        if (!e) e = upload_wmat(D->w_gu + (size_t)c->n_ff * C, &L->w_up, row, stage, stage_vals);
        if (!e) e = upload_wmat(D->w_down, &L->w_down, row, stage, stage_vals);
    }
    free(row);
    free(stage);
    if (e) {
        hass_errprefix("cuda upload of %s", m->path);
        *err = e;
        hass_cuda_llama_free(d);
        return NULL;
    }
    return d;
}
#else
typedef int hass_cuda_model_unused; // ISO C: a translation unit needs a declaration
#endif
