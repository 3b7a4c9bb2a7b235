// model.c: load a LLaMA-family model (GGUF file or HF safetensors directory), check every
// tensor against the config, expose the embedding, LM head and matmul.
#include "model_int.h"
#include "quant.h"
#include "kquant.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// A tensor as found in a file, in ggml order: ne[0] is the contiguous dimension.
typedef struct tsrc {
    const char *name;
    int type;            // hass_ggml_type
    int n_dims;
    int64_t ne[4];
    const void *data;
    uint64_t n_bytes;
} tsrc;

// Tensor name in the file for a logical name: GGUF names are used as the logical names.
typedef struct name_map {
    const char *gguf, *hf;
} name_map;

static const name_map NAMES[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};

// Default thread count: all online cores.
static int all_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

// FNV-1a over bytes, continuing from h.
static uint32_t fnv(uint32_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
    return h;
}

// Hand an allocation to the model (freed by hass_model_free); NULL when out of memory.
static void *own_ptr(hass_model *m, void *p) {
    if (m->n_allocs == m->cap_allocs) {
        int cap = m->cap_allocs ? 2 * m->cap_allocs : 64;
        void **a = realloc(m->allocs, (size_t)cap * sizeof *a);
        if (!a) return NULL;
        m->allocs = a;
        m->cap_allocs = cap;
    }
    m->allocs[m->n_allocs++] = p;
    return p;
}

// Keep an owned allocation for hass_model_free.
static float *own(hass_model *m, size_t n_floats) {
    float *p = calloc(n_floats ? n_floats : 1, sizeof(float));
    if (p && !own_ptr(m, p)) {
        free(p);
        return NULL;
    }
    return p;
}

#include "safetensors.h"
#define HAVE_ST 1

// Find a tensor by its file name in whichever source the model has; 0 if found.
static int find_raw(const hass_model *m, const char *fname, tsrc *t) {
    memset(t, 0, sizeof *t);
    if (m->gguf) {
        const hass_gguf_tensor *g = hass_gguf_find_tensor(m->gguf, fname);
        if (!g) return -1;
        t->name = g->name;
        t->type = (int)g->type;
        t->n_dims = (int)g->n_dims;
        for (int i = 0; i < 4; i++) t->ne[i] = g->ne[i];
        t->data = g->data;
        t->n_bytes = g->n_bytes;
        return 0;
    }
#ifdef HAVE_ST
    for (int s = 0; s < m->n_st; s++) {
        const hass_st_tensor *x = hass_st_find((hass_st *)m->st[s], fname);
        if (!x) continue;
        t->name = x->name;
        t->type = x->dtype == HASS_ST_F32 ? HASS_GGML_F32 : x->dtype == HASS_ST_F16 ? HASS_GGML_F16
                : x->dtype == HASS_ST_BF16 ? HASS_GGML_BF16 : -1;
        t->n_dims = x->n_dims;
        for (int i = 0; i < 4; i++) t->ne[i] = 1;
        if (x->n_dims > 4) t->n_dims = -1;
        for (int i = 0; i < x->n_dims && i < 4; i++) t->ne[i] = x->shape[x->n_dims - 1 - i];
        t->data = x->data;
        t->n_bytes = x->n_bytes;
        return 0;
    }
#endif
    return -1;
}

// File name of a logical tensor of layer il (-1: global).
static void file_name(const hass_model *m, const char *logical, int il, char *buf, size_t n) {
    const char *hf = NULL;
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (!strcmp(NAMES[i].gguf, logical)) hf = NAMES[i].hf;
    if (m->gguf || !hf) {
        if (il >= 0) snprintf(buf, n, "blk.%d.%s", il, logical);
        else snprintf(buf, n, "%s", logical);
    } else {
        if (il >= 0) snprintf(buf, n, "model.layers.%d.%s", il, hf);
        else snprintf(buf, n, "%s", hf);
    }
}

// Load a weight matrix of n_out rows of n_in values; checks type, shape and byte size.
// required = 0: a missing tensor leaves w->data NULL and returns OK.
static hass_err get_mat(hass_model *m, const char *logical, int il, int n_in, int n_out,
                        hass_wmat *w, int required) {
    char name[256];
    tsrc t;
    file_name(m, logical, il, name, sizeof name);
    memset(w, 0, sizeof *w);
    if (find_raw(m, name, &t)) {
        if (!required) return HASS_OK;
        return hass_seterr(HASS_EFORMAT, "%s: tensor '%s' is missing", m->path, name);
    }
    if (t.type < 0 || !hass_quant_supported(t.type))
        return hass_seterr(HASS_EUNSUP, "%s: tensor '%s': unsupported dtype %s (F32, F16, BF16, "
                           "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K are supported)", m->path, name,
                           t.type < 0 ? "(safetensors dtype)" : hass_ggml_type_name(t.type));
    if (t.n_dims != 2 || t.ne[0] != n_in || t.ne[1] != n_out)
        return hass_seterr(HASS_EFORMAT, "%s: tensor '%s' has shape [%lld, %lld] (%d dims), the "
                           "config says [%d, %d] (rows %d of %d values)", m->path, name,
                           (long long)t.ne[1], (long long)t.ne[0], t.n_dims, n_out, n_in, n_out,
                           n_in);
    uint64_t rb = hass_ggml_row_bytes(t.type, n_in);
    if (!rb || t.n_bytes != rb * (uint64_t)n_out)
        return hass_seterr(HASS_EFORMAT, "%s: tensor '%s': %llu bytes, expected %llu", m->path,
                           name, (unsigned long long)t.n_bytes,
                           (unsigned long long)(rb * (uint64_t)n_out));
    w->type = t.type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = rb;
    w->data = t.data;
    return HASS_OK;
}

// Load a vector of n values as an owned f32 copy (any float dtype). required = 0: *out = NULL
// when missing.
static hass_err get_vec(hass_model *m, const char *logical, int il, int n, const float **out,
                        int required) {
    char name[256];
    tsrc t;
    file_name(m, logical, il, name, sizeof name);
    *out = NULL;
    if (find_raw(m, name, &t)) {
        if (!required) return HASS_OK;
        return hass_seterr(HASS_EFORMAT, "%s: tensor '%s' is missing", m->path, name);
    }
    if (t.type != HASS_GGML_F32 && t.type != HASS_GGML_F16 && t.type != HASS_GGML_BF16)
        return hass_seterr(HASS_EUNSUP, "%s: tensor '%s': unsupported dtype %s for a vector",
                           m->path, name, t.type < 0 ? "?" : hass_ggml_type_name(t.type));
    if (t.n_dims != 1 || t.ne[0] != n)
        return hass_seterr(HASS_EFORMAT, "%s: tensor '%s' has %lld values (%d dims), the config "
                           "says %d", m->path, name, (long long)t.ne[0], t.n_dims, n);
    if (t.n_bytes != hass_ggml_row_bytes(t.type, n))
        return hass_seterr(HASS_EFORMAT, "%s: tensor '%s': wrong byte size", m->path, name);
    float *v = own(m, (size_t)n);
    if (!v) return hass_seterr(HASS_ENOMEM, "%s: out of memory", m->path);
    hass_wmat w = {t.type, n, 1, (size_t)t.n_bytes, t.data, NULL};
    hass_quant_row(&w, 0, v);
    *out = v;
    return HASS_OK;
}

// Check the config for values the forward pass cannot handle.
static hass_err check_cfg(const hass_model *m) {
    const hass_model_cfg *c = &m->cfg;
    if (c->n_vocab <= 0 || c->n_embd <= 0 || c->n_layer <= 0 || c->n_head <= 0 ||
        c->n_head_kv <= 0 || c->n_ff <= 0 || c->head_dim <= 0 || c->n_vocab > (1 << 24) ||
        c->n_embd > (1 << 16) || c->n_ff > (1 << 18) || c->n_layer > 1024 || c->n_head > 1024)
        return hass_seterr(HASS_EFORMAT, "%s: implausible config (vocab %d, embd %d, layers %d, "
                           "heads %d/%d, ff %d, head_dim %d)", m->path, c->n_vocab, c->n_embd,
                           c->n_layer, c->n_head, c->n_head_kv, c->n_ff, c->head_dim);
    if (c->n_head % c->n_head_kv)
        return hass_seterr(HASS_EFORMAT, "%s: %d heads is not a multiple of %d kv heads", m->path,
                           c->n_head, c->n_head_kv);
    if (c->head_dim % 2)
        return hass_seterr(HASS_EFORMAT, "%s: head_dim %d is odd", m->path, c->head_dim);
    if (!(c->norm_eps > 0.f) || !(c->rope_theta > 0.f))
        return hass_seterr(HASS_EFORMAT, "%s: bad norm eps %g or rope theta %g", m->path,
                           c->norm_eps, c->rope_theta);
    return HASS_OK;
}

// Inverse RoPE frequencies with LLaMA-3 scaling (as in HF transformers) and optional per-freq
// factors (llama.cpp's rope_freqs.weight).
static hass_err make_inv_freq(hass_model *m, const float *factors) {
    const hass_model_cfg *c = &m->cfg;
    int half = c->head_dim / 2;
    float *f = own(m, (size_t)half);
    if (!f) return hass_seterr(HASS_ENOMEM, "%s: out of memory", m->path);
    for (int i = 0; i < half; i++) {
        double inv = 1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)c->head_dim);
        if (c->rope_scaling == 1) {
            double lo_wl = c->rope_orig_ctx / c->rope_low_freq;
            double hi_wl = c->rope_orig_ctx / c->rope_high_freq;
            double wl = 2.0 * M_PI / inv;
            if (wl > lo_wl) {
                inv /= c->rope_factor;
            } else if (wl >= hi_wl) {
                double s = (c->rope_orig_ctx / wl - c->rope_low_freq) /
                           (c->rope_high_freq - c->rope_low_freq);
                inv = (1 - s) * inv / c->rope_factor + s * inv;
            }
        } else if (c->rope_scaling == 2) { // linear
            inv /= c->rope_factor;
        }
        if (factors) inv /= factors[i];
        f[i] = (float)inv;
    }
    m->inv_freq = f;
    return HASS_OK;
}

// Load and check every tensor named by the config.
static hass_err load_tensors(hass_model *m) {
    hass_model_cfg *c = &m->cfg;
    int C = c->n_embd, V = c->n_vocab, D = c->head_dim, F = c->n_ff;
    int qd = c->n_head * D, kvd = c->n_head_kv * D;
    hass_err e;
    if ((e = get_mat(m, "token_embd.weight", -1, C, V, &m->tok_embd, 1))) return e;
    if ((e = get_vec(m, "output_norm.weight", -1, C, &m->output_norm, 1))) return e;
    if ((e = get_mat(m, "output.weight", -1, C, V, &m->output, 0))) return e;
    if (!m->output.data) {
        m->output = m->tok_embd;
        c->tied = 1;
    } else {
        c->tied = m->output.data == m->tok_embd.data;
    }
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) return hass_seterr(HASS_ENOMEM, "%s: out of memory", m->path);
    for (int il = 0; il < c->n_layer; il++) {
        hass_layer *L = &m->layers[il];
        if ((e = get_vec(m, "attn_norm.weight", il, C, &L->attn_norm, 1)) ||
            (e = get_mat(m, "attn_q.weight", il, C, qd, &L->wq, 1)) ||
            (e = get_mat(m, "attn_k.weight", il, C, kvd, &L->wk, 1)) ||
            (e = get_mat(m, "attn_v.weight", il, C, kvd, &L->wv, 1)) ||
            (e = get_mat(m, "attn_output.weight", il, qd, C, &L->wo, 1)) ||
            (e = get_vec(m, "ffn_norm.weight", il, C, &L->ffn_norm, 1)) ||
            (e = get_mat(m, "ffn_gate.weight", il, C, F, &L->w_gate, 1)) ||
            (e = get_mat(m, "ffn_up.weight", il, C, F, &L->w_up, 1)) ||
            (e = get_mat(m, "ffn_down.weight", il, F, C, &L->w_down, 1)))
            return e;
        int req = c->qkv_bias;
        if ((e = get_vec(m, "attn_q.bias", il, qd, &L->bq, req)) ||
            (e = get_vec(m, "attn_k.bias", il, kvd, &L->bk, req)) ||
            (e = get_vec(m, "attn_v.bias", il, kvd, &L->bv, req)))
            return e;
        if (L->bq || L->bk || L->bv) c->qkv_bias = 1;
    }
    return HASS_OK;
}

// Give a quantized matrix its copy in the AVX-512 kernel's packed layout (hass_quant_pack),
// owned by the model.
static hass_err pack_mat(hass_model *m, hass_wmat *w) {
    if (w->pk || !hass_quant_packable(w)) return HASS_OK;
    void *p = hass_quant_pack_on(w, m->pool);
    if (!p || !own_ptr(m, p)) {
        free(p);
        return hass_seterr(HASS_ENOMEM, "%s: out of memory for the packed weights", m->path);
    }
    w->pk = p;
    // the kernels read the packed copy now: the mapped blocks need not stay in memory
    hass_gguf_drop(m->gguf, w->data, (uint64_t)w->row_bytes * (uint64_t)w->n_out);
    return HASS_OK;
}

hass_err hass_model_pack_layers(hass_model *m) {
    // f32 mode reads the stored blocks (kqf_*): pack when a default-precision forward comes
    if (m->layers_packed || hass_kernel_level() != 2 || m->prec == HASS_PREC_F32) return HASS_OK;
    for (int il = 0; il < m->cfg.n_layer; il++) {
        hass_layer *L = &m->layers[il];
        hass_wmat *lw[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            hass_err e = pack_mat(m, lw[i]);
            if (e) return e;
        }
    }
    m->layers_packed = 1;
    return HASS_OK;
}

void hass_model_weight_cost(const hass_model *m, uint64_t *bytes, uint64_t *macs) {
    *bytes = (uint64_t)m->output.row_bytes * (uint64_t)m->output.n_out;
    *macs = (uint64_t)m->output.n_in * (uint64_t)m->output.n_out;
    for (int il = 0; il < m->cfg.n_layer; il++) {
        const hass_layer *L = &m->layers[il];
        const hass_wmat *lw[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            *bytes += (uint64_t)lw[i]->row_bytes * (uint64_t)lw[i]->n_out;
            *macs += (uint64_t)lw[i]->n_in * (uint64_t)lw[i]->n_out;
        }
    }
}

// Fingerprint: config, tensor types and shapes, and a sample of the embedding/LM-head bytes.
static uint32_t fingerprint(const hass_model *m) {
    const hass_model_cfg *c = &m->cfg;
    uint32_t h = 2166136261u;
    int ints[] = {c->arch, c->n_vocab, c->n_embd, c->n_layer, c->n_head, c->n_head_kv,
                  c->head_dim, c->n_ff, c->tied, c->qkv_bias, m->tok_embd.type, m->output.type};
    h = fnv(h, ints, sizeof ints);
    const hass_wmat *ws[2] = {&m->tok_embd, &m->output};
    for (int i = 0; i < 2; i++) {
        size_t n = ws[i]->row_bytes * (size_t)ws[i]->n_out, k = n < 4096 ? n : 4096;
        h = fnv(h, ws[i]->data, k);
        h = fnv(h, (const uint8_t *)ws[i]->data + n - k, k);
    }
    for (int il = 0; il < c->n_layer; il++) {
        const hass_layer *L = &m->layers[il];
        int t[] = {L->wq.type, L->wk.type, L->wv.type, L->wo.type, L->w_gate.type,
                   L->w_up.type, L->w_down.type};
        h = fnv(h, t, sizeof t);
    }
    return h;
}

// ----------------------------------------------------------------------------
// GGUF

// Integer metadata "<arch>.<key>", or def when absent; -1 on a wrong type.
static int64_t kv_int(const hass_gguf *g, const char *arch, const char *key, int64_t def, int *bad) {
    char k[160];
    int64_t v;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (!hass_gguf_find(g, k)) return def;
    if (hass_gguf_get_i64(g, k, &v)) *bad = 1;
    return v;
}

// Float metadata "<arch>.<key>", or def when absent.
static float kv_f32(const hass_gguf *g, const char *arch, const char *key, float def, int *bad) {
    char k[160];
    float v = def;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (!hass_gguf_find(g, k)) return def;
    if (hass_gguf_get_f32(g, k, &v)) *bad = 1;
    return v;
}

// Read the config from GGUF metadata and the tensor table.
static hass_err gguf_config(hass_model *m) {
    hass_gguf *g = m->gguf;
    hass_model_cfg *c = &m->cfg;
    const char *s;
    uint64_t len;
    char arch[64];
    if (hass_gguf_get_str(g, "general.architecture", &s, &len))
        return hass_seterr(HASS_EFORMAT, "%s: general.architecture is missing", m->path);
    snprintf(arch, sizeof arch, "%.*s", (int)(len < 63 ? len : 63), s);
    if (!strcmp(arch, "llama")) {
        c->arch = HASS_ARCH_LLAMA;
        c->rope_mode = HASS_ROPE_PAIRS;
    } else if (!strcmp(arch, "qwen2")) {
        c->arch = HASS_ARCH_QWEN2;
        c->rope_mode = HASS_ROPE_HALF;
        c->qkv_bias = 1;
    } else {
        return hass_seterr(HASS_EUNSUP, "%s: architecture '%s' is not supported (llama, qwen2)",
                           m->path, arch);
    }
    int bad = 0;
    c->n_embd = (int)kv_int(g, arch, "embedding_length", 0, &bad);
    c->n_layer = (int)kv_int(g, arch, "block_count", 0, &bad);
    c->n_ff = (int)kv_int(g, arch, "feed_forward_length", 0, &bad);
    c->n_head = (int)kv_int(g, arch, "attention.head_count", 0, &bad);
    c->n_head_kv = (int)kv_int(g, arch, "attention.head_count_kv", c->n_head, &bad);
    c->n_ctx_train = (int)kv_int(g, arch, "context_length", 2048, &bad);
    c->rope_theta = kv_f32(g, arch, "rope.freq_base", 10000.f, &bad);
    c->norm_eps = kv_f32(g, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &bad);
    c->head_dim = c->n_head > 0 ? c->n_embd / c->n_head : 0;
    c->head_dim = (int)kv_int(g, arch, "attention.key_length", c->head_dim, &bad);
    int rope_dims = (int)kv_int(g, arch, "rope.dimension_count", c->head_dim, &bad);
    if (bad)
        return hass_seterr(HASS_EFORMAT, "%s: a %s.* hyper-parameter has the wrong type", m->path,
                           arch);
    if (!c->n_embd || !c->n_layer || !c->n_ff || !c->n_head)
        return hass_seterr(HASS_EFORMAT, "%s: %s.embedding_length, block_count, "
                           "feed_forward_length or attention.head_count is missing", m->path, arch);
    if (rope_dims != c->head_dim)
        return hass_seterr(HASS_EUNSUP, "%s: partial RoPE (%d of %d dims) is not supported",
                           m->path, rope_dims, c->head_dim);
    char k[160];
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    if (!hass_gguf_get_str(g, k, &s, &len) && !(len == 4 && !memcmp(s, "none", 4))) {
        if (len == 6 && !memcmp(s, "linear", 6)) {
            c->rope_scaling = 2;
            c->rope_factor = kv_f32(g, arch, "rope.scaling.factor", 1.f, &bad);
        } else if (!(len == 6 && !memcmp(s, "llama3", 6))) {
            return hass_seterr(HASS_EUNSUP, "%s: rope scaling '%.*s' is not supported", m->path,
                               (int)len, s);
        }
    }
    const hass_gguf_tensor *te = hass_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return hass_seterr(HASS_EFORMAT, "%s: tensor 'token_embd.weight' is missing", m->path);
    c->n_vocab = (int)(te->ne[1] > (1 << 24) ? -1 : te->ne[1]);
    int64_t v;
    c->bos_id = hass_gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &v) ? -1 : (int)v;
    c->eos_id = hass_gguf_get_i64(g, "tokenizer.ggml.eos_token_id", &v) ? -1 : (int)v;
    return HASS_OK;
}

// ----------------------------------------------------------------------------
// HF directory (config.json + safetensors)

// Integer field of config.json (def when absent).
static int js_int(json_t *o, const char *key, int def) {
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

// Number field of config.json (def when absent).
static double js_num(json_t *o, const char *key, double def) {
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : def;
}

// Read config.json of an HF directory.
static hass_err hf_config(hass_model *m, const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", dir);
    json_error_t je;
    json_t *o = json_load_file(p, 0, &je);
    if (!o) return hass_seterr(HASS_EFORMAT, "%s:%d: %s", p, je.line, je.text);
    hass_model_cfg *c = &m->cfg;
    hass_err e = HASS_OK;
    const char *mt = json_string_value(json_object_get(o, "model_type"));
    if (mt && !strcmp(mt, "llama")) {
        c->arch = HASS_ARCH_LLAMA;
    } else if (mt && !strcmp(mt, "qwen2")) {
        c->arch = HASS_ARCH_QWEN2;
        c->qkv_bias = 1;
    } else {
        e = hass_seterr(HASS_EUNSUP, "%s: model_type '%s' is not supported (llama, qwen2)", p,
                        mt ? mt : "(missing)");
        goto done;
    }
    c->rope_mode = HASS_ROPE_HALF;
    c->n_vocab = js_int(o, "vocab_size", 0);
    c->n_embd = js_int(o, "hidden_size", 0);
    c->n_layer = js_int(o, "num_hidden_layers", 0);
    c->n_head = js_int(o, "num_attention_heads", 0);
    c->n_head_kv = js_int(o, "num_key_value_heads", c->n_head);
    c->n_ff = js_int(o, "intermediate_size", 0);
    c->n_ctx_train = js_int(o, "max_position_embeddings", 2048);
    c->head_dim = js_int(o, "head_dim", c->n_head ? c->n_embd / c->n_head : 0);
    c->rope_theta = (float)js_num(o, "rope_theta", 10000.0);
    c->norm_eps = (float)js_num(o, "rms_norm_eps", 1e-6);
    c->tied = json_is_true(json_object_get(o, "tie_word_embeddings"));
    if (json_is_true(json_object_get(o, "attention_bias"))) c->qkv_bias = 1;
    c->bos_id = js_int(o, "bos_token_id", -1);
    c->eos_id = js_int(o, "eos_token_id", -1);
    json_t *rs = json_object_get(o, "rope_scaling");
    if (json_is_object(rs)) {
        const char *t = json_string_value(json_object_get(rs, "rope_type"));
        if (!t) t = json_string_value(json_object_get(rs, "type"));
        if (t && !strcmp(t, "llama3")) {
            c->rope_scaling = 1;
            c->rope_factor = (float)js_num(rs, "factor", 8.0);
            c->rope_low_freq = (float)js_num(rs, "low_freq_factor", 1.0);
            c->rope_high_freq = (float)js_num(rs, "high_freq_factor", 4.0);
            c->rope_orig_ctx = js_int(rs, "original_max_position_embeddings", 8192);
            if (!(c->rope_high_freq > c->rope_low_freq) || c->rope_orig_ctx <= 0 ||
                !(c->rope_factor > 0))
                e = hass_seterr(HASS_EFORMAT, "%s: bad llama3 rope_scaling", p);
        } else if (t && !strcmp(t, "linear")) {
            c->rope_scaling = 2;
            c->rope_factor = (float)js_num(rs, "factor", 1.0);
        } else if (t && strcmp(t, "default")) {
            e = hass_seterr(HASS_EUNSUP, "%s: rope_scaling type '%s' is not supported", p, t);
        }
    }
done:
    json_decref(o);
    return e;
}

// Open the safetensors file(s) of an HF directory.
static hass_err hf_open(hass_model *m, const char *dir) {
#ifdef HAVE_ST
    char p[4096];
    hass_err e = HASS_OK;
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    struct stat sb;
    const char **files = NULL;
    int n_files = 0;
    json_t *idx = NULL;
    if (stat(p, &sb) == 0) {
        json_error_t je;
        idx = json_load_file(p, 0, &je);
        if (!idx) return hass_seterr(HASS_EFORMAT, "%s:%d: %s", p, je.line, je.text);
        json_t *wm = json_object_get(idx, "weight_map");
        if (!json_is_object(wm)) {
            json_decref(idx);
            return hass_seterr(HASS_EFORMAT, "%s: \"weight_map\" missing", p);
        }
        files = calloc(json_object_size(wm) + 1, sizeof *files);
        if (!files) {
            json_decref(idx);
            return hass_seterr(HASS_ENOMEM, "%s: out of memory", p);
        }
        const char *key;
        json_t *val;
        json_object_foreach(wm, key, val) {
            const char *f = json_string_value(val);
            if (!f || strchr(f, '/')) {
                e = hass_seterr(HASS_EFORMAT, "%s: bad shard name for '%s'", p, key);
                break;
            }
            int seen = 0;
            for (int i = 0; i < n_files; i++) seen |= !strcmp(files[i], f);
            if (!seen) files[n_files++] = f;
        }
    } else {
        static const char *one[] = {"model.safetensors"};
        files = malloc(sizeof *files);
        if (!files) return hass_seterr(HASS_ENOMEM, "out of memory");
        files[0] = one[0];
        n_files = 1;
    }
    if (!e) {
        m->st = calloc((size_t)n_files + 1, sizeof *m->st);
        if (!m->st) e = hass_seterr(HASS_ENOMEM, "out of memory");
    }
    for (int i = 0; !e && i < n_files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        m->st[i] = hass_st_open(p, &e);
        if (m->st[i]) m->n_st++;
    }
    free(files);
    json_decref(idx);
    return e;
#else
    return hass_seterr(HASS_EUNSUP, "%s: safetensors support is not built in", dir);
#endif
}

// ----------------------------------------------------------------------------
// public API

hass_model *hass_model_load(const char *path, int n_threads, hass_err *err) {
    hass_err e = HASS_OK;
    hass_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        *err = hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    m->n_threads = n_threads > 0 ? n_threads : all_cores();
    if (!(m->pool = hass_pool_new(m->n_threads, &e))) goto fail;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        e = hass_seterr(HASS_EIO, "%s: cannot open model: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        if ((e = hf_config(m, path)) || (e = hf_open(m, path))) goto fail;
    } else {
        m->gguf = hass_gguf_open(path, &e);
        if (!m->gguf || (e = gguf_config(m))) goto fail;
    }
    if ((e = check_cfg(m)) || (e = load_tensors(m))) goto fail;
    // the LM head is packed now (the drafter process uses it too), the layers on the first
    // forward (hass_model_pack_layers): a drafter never runs them
    if (hass_kernel_level() == 2 && (e = pack_mat(m, &m->output))) goto fail;
    const float *factors = NULL;
    if (m->gguf && (e = get_vec(m, "rope_freqs.weight", -1, m->cfg.head_dim / 2, &factors, 0)))
        goto fail;
    if ((e = make_inv_freq(m, factors))) goto fail;
    m->fingerprint = fingerprint(m);
    HASS_INFO("%s: %s, %d layers, embd %d, heads %d/%d, ff %d, vocab %d, %s head, rope %s "
              "theta %g, kernels %s, %d threads", path, m->cfg.arch ? "qwen2" : "llama",
              m->cfg.n_layer, m->cfg.n_embd, m->cfg.n_head, m->cfg.n_head_kv, m->cfg.n_ff,
              m->cfg.n_vocab, m->cfg.tied ? "tied" : "separate",
              m->cfg.rope_mode == HASS_ROPE_PAIRS ? "pairs" : "half", m->cfg.rope_theta,
              hass_kernel_path(), m->n_threads);
    *err = HASS_OK;
    return m;
fail:
    hass_model_free(m);
    *err = e;
    return NULL;
}

void hass_model_free(hass_model *m) {
    if (!m) return;
    hass_pool_free(m->pool);
    hass_gguf_free(m->gguf);
#ifdef HAVE_ST
    for (int i = 0; i < m->n_st; i++) hass_st_free((hass_st *)m->st[i]);
#endif
    free(m->st);
    for (int i = 0; i < m->n_allocs; i++) free(m->allocs[i]);
    free(m->allocs);
    free(m->layers);
    free(m->path);
    free(m);
}

const hass_model_cfg *hass_model_config(const hass_model *m) { return &m->cfg; }
const char *hass_model_path(const hass_model *m) { return m->path; }
uint32_t hass_model_fingerprint(const hass_model *m) { return m->fingerprint; }
int hass_model_threads(const hass_model *m) { return m->n_threads; }
const hass_wmat *hass_model_lm_head_w(const hass_model *m) { return &m->output; }
const hass_wmat *hass_model_embed_w(const hass_model *m) { return &m->tok_embd; }

void hass_model_set_threads(hass_model *m, int n_threads) {
    n_threads = n_threads > 0 ? n_threads : all_cores();
    if (n_threads == m->n_threads && m->pool) return;
    hass_err e;
    hass_pool *p = hass_pool_new(n_threads, &e);
    if (!p) {
        HASS_WARN("set_threads: %s; keeping %d threads", hass_errmsg(), m->n_threads);
        return;
    }
    hass_pool_free(m->pool);
    m->pool = p;
    m->n_threads = n_threads;
}

hass_err hass_model_set_precision(hass_model *m, int prec) {
    if (prec != HASS_PREC_Q8 && prec != HASS_PREC_F32)
        return hass_seterr(HASS_EINVAL, "model: unknown precision %d", prec);
    m->prec = prec;
    return HASS_OK;
}

int hass_model_precision(const hass_model *m) { return m->prec; }

hass_err hass_model_embed(const hass_model *m, const int32_t *tok, int n, float *out) {
    for (int i = 0; i < n; i++) {
        if (tok[i] < 0 || tok[i] >= m->cfg.n_vocab)
            return hass_seterr(HASS_ERANGE, "embed: token id %d outside the vocabulary [0, %d)",
                               tok[i], m->cfg.n_vocab);
        hass_quant_row(&m->tok_embd, tok[i], out + (size_t)i * m->cfg.n_embd);
    }
    return HASS_OK;
}

hass_err hass_matmul(const hass_model *m, float *y, const float *x, int n, const hass_wmat *w,
                     void *q) {
    return hass_matmul_shared(m, &y, x, n, &w, 1, q);
}

hass_err hass_matmul_shared(const hass_model *m, float *const *y, const float *x, int n,
                            const hass_wmat *const *w, int n_w, void *q) {
    hass_mm_job jobs[3];
    if (n_w < 1 || n_w > 3) return hass_seterr(HASS_EINVAL, "matmul: %d weights, 1 to 3 share an input", n_w);
    for (int i = 0; i < n_w; i++) {
        if (w[i]->n_in != w[0]->n_in || hass_quant_is_q(w[i]->type) != hass_quant_is_q(w[0]->type))
            return hass_seterr(HASS_EINVAL, "matmul: weights %d and 0 differ in inputs or kind", i);
        jobs[i] = (hass_mm_job){w[i], y[i]};
    }
    if (n <= 0) return HASS_OK;
    if (!hass_quant_supported(w[0]->type) || (hass_quant_is_q(w[0]->type) && w[0]->n_in % 32))
        return hass_seterr(HASS_EUNSUP, "matmul: weight type %s with %d inputs is not supported",
                           hass_ggml_type_name(w[0]->type), w[0]->n_in);
    void *tmp = NULL;
    int prec = m ? m->prec : HASS_PREC_Q8;
    if (!q && hass_quant_is_q(w[0]->type) && prec != HASS_PREC_F32) {
        q = tmp = malloc(hass_matmul_scratch_bytes(w[0]->n_in, n));
        if (!q) return hass_seterr(HASS_ENOMEM, "matmul: out of memory");
    }
    hass_mm_run_prec(jobs, n_w, x, n, q, m ? m->pool : NULL, prec);
    free(tmp);
    return HASS_OK;
}

hass_err hass_model_lm_head(const hass_model *m, const float *x, int n, float *logits) {
    return hass_matmul(m, logits, x, n, &m->output, NULL);
}
