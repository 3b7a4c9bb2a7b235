// head.c: draft head config + weights: load with shape and identity checks, random init, save.
#include "head.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "half.h"
#include "safetensors.h"
#include "sample.h"

// Tensor names of the EAGLE layout.
#define T_FC_W "fc.weight"
#define T_FC_B "fc.bias"
#define T_Q "layers.0.self_attn.q_proj.weight"
#define T_K "layers.0.self_attn.k_proj.weight"
#define T_V "layers.0.self_attn.v_proj.weight"
#define T_O "layers.0.self_attn.o_proj.weight"
#define T_GATE "layers.0.mlp.gate_proj.weight"
#define T_UP "layers.0.mlp.up_proj.weight"
#define T_DOWN "layers.0.mlp.down_proj.weight"
#define T_NORM "layers.0.post_attention_layernorm.weight"
#define T_EMBED "embed_tokens.weight"
#define T_DVOCAB "draft_vocab"

// One weight slot: its name, shape and where it goes.
typedef struct slot {
    const char *name;
    int64_t rows, cols; // cols 0 = a vector
    float **dst;
} slot;

// Fill the slot table of h (fc bias last, optional).
static int slots_of(hass_head *h, slot *s) {
    int64_t C = h->n_embd, Q = (int64_t)h->n_head * h->head_dim,
            KV = (int64_t)h->n_head_kv * h->head_dim, F = h->n_ff;
    int n = 0;
    s[n++] = (slot){T_FC_W, C, 2 * C, &h->fc_w};
    s[n++] = (slot){T_Q, Q, C, &h->wq};
    s[n++] = (slot){T_K, KV, C, &h->wk};
    s[n++] = (slot){T_V, KV, C, &h->wv};
    s[n++] = (slot){T_O, C, Q, &h->wo};
    s[n++] = (slot){T_GATE, F, C, &h->w_gate};
    s[n++] = (slot){T_UP, F, C, &h->w_up};
    s[n++] = (slot){T_DOWN, C, F, &h->w_down};
    s[n++] = (slot){T_NORM, C, 0, &h->post_norm};
    if (h->has_bias) s[n++] = (slot){T_FC_B, C, 0, &h->fc_b};
    return n;
}

// Elements of a slot.
static int64_t slot_n(const slot *s) { return s->rows * (s->cols ? s->cols : 1); }

// Allocate the weights of h (config already set) and point the slots into one buffer.
static hass_err alloc_weights(hass_head *h, const char *where) {
    slot s[10];
    int n = slots_of(h, s);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)slot_n(&s[i]);
    h->data = malloc(sizeof(float) * total);
    if (!h->data) return hass_seterr(HASS_ENOMEM, "%s: out of memory for %zu weights", where, total);
    h->n_params = total;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        *s[i].dst = h->data + off;
        off += (size_t)slot_n(&s[i]);
    }
    return HASS_OK;
}

// Free a head.
void hass_head_free(hass_head *h) {
    if (!h) return;
    free(h->data);
    free(h->dvocab);
    free(h);
}

// Integer field k of config o into *v: def when absent (def 0: required), else an integer; in
// [lo, hi] either way. HASS_EFORMAT naming the file, the field, its value and its range.
static hass_err jint(json_t *o, const char *path, const char *k, int64_t def, int64_t lo,
                     int64_t hi, int64_t *v) {
    json_t *x = json_object_get(o, k);
    *v = def;
    if (!x && !def) return hass_seterr(HASS_EFORMAT, "%s: \"%s\" missing", path, k);
    if (x && !json_is_integer(x))
        return hass_seterr(HASS_EFORMAT, "%s: \"%s\" must be an integer in [%lld, %lld]", path, k,
                           (long long)lo, (long long)hi);
    if (x) *v = json_integer_value(x);
    if (*v < lo || *v > hi)
        return hass_seterr(HASS_EFORMAT, "%s: \"%s\" %lld outside [%lld, %lld]", path, k,
                           (long long)*v, (long long)lo, (long long)hi);
    return HASS_OK;
}

// Real field k of config o into *v: def when absent, else a finite number in (0, hi].
static hass_err jreal(json_t *o, const char *path, const char *k, double def, double hi, double *v) {
    json_t *x = json_object_get(o, k);
    *v = x ? (json_is_number(x) ? json_number_value(x) : NAN) : def;
    if (!(*v > 0 && *v <= hi))
        return hass_seterr(HASS_EFORMAT, "%s: \"%s\" must be a number in (0, %g]", path, k, hi);
    return HASS_OK;
}

// Check config o's fields and set h's configuration from them.
static hass_err config_fields(hass_head *h, json_t *o, const char *path) {
    int64_t C, F, H, V, Hkv, D, L;
    hass_err e;
    if ((e = jint(o, path, "hidden_size", 0, 1, 1 << 16, &C)) ||
        (e = jint(o, path, "intermediate_size", 0, 1, 1 << 18, &F)) ||
        (e = jint(o, path, "num_attention_heads", 0, 1, 1024, &H)) ||
        (e = jint(o, path, "vocab_size", 0, 1, 1 << 22, &V)) ||
        (e = jint(o, path, "num_key_value_heads", H, 1, H, &Hkv)) ||
        (e = jint(o, path, "num_hidden_layers", 1, 1, 1, &L)))
        return e;
    if (H % Hkv)
        return hass_seterr(HASS_EFORMAT, "%s: \"num_key_value_heads\" %lld must divide "
                           "\"num_attention_heads\" %lld", path, (long long)Hkv, (long long)H);
    if (!json_object_get(o, "head_dim") && (C % H || C / H < 2 || C / H > 1024 || (C / H) % 2))
        return hass_seterr(HASS_EFORMAT, "%s: no \"head_dim\", and hidden_size %lld / "
                           "num_attention_heads %lld is not an even integer in [2, 1024]", path,
                           (long long)C, (long long)H);
    if ((e = jint(o, path, "head_dim", C / H, 2, 1024, &D))) return e;
    if (D % 2) return hass_seterr(HASS_EFORMAT, "%s: \"head_dim\" %lld must be even", path, (long long)D);
    double theta, eps;
    if ((e = jreal(o, path, "rope_theta", 10000.0, 1e12, &theta)) ||
        (e = jreal(o, path, "rms_norm_eps", 1e-6, 1.0, &eps)))
        return e;
    json_t *b = json_object_get(o, "bias");
    if (b && !json_is_boolean(b))
        return hass_seterr(HASS_EFORMAT, "%s: \"bias\" must be true or false", path);
    json_t *rs = json_object_get(o, "rope_scaling");
    if (rs && !json_is_null(rs))
        return hass_seterr(HASS_EUNSUP, "%s: rope_scaling in a draft head is not supported", path);
    h->n_embd = (int)C;
    h->n_ff = (int)F;
    h->n_head = (int)H;
    h->n_head_kv = (int)Hkv;
    h->head_dim = (int)D;
    h->n_vocab = (int)V;
    h->rope_theta = (float)theta;
    h->norm_eps = (float)eps;
    h->has_bias = b ? json_is_true(b) : -1; // -1: decide from the tensors
    return HASS_OK;
}

// Parse config.json into h's configuration fields.
static hass_err parse_config(hass_head *h, const char *path) {
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        FILE *f = fopen(path, "rb");
        if (!f) return hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
        fclose(f);
        return hass_seterr(HASS_EFORMAT, "%s:%d: %s", path, je.line, je.text);
    }
    hass_err e = json_is_object(o) ? config_fields(h, o, path)
                                   : hass_seterr(HASS_EFORMAT, "%s: not a JSON object", path);
    json_decref(o);
    return e;
}

// The optional draft vocabulary t (I32, [n], ascending ids in [0, V)) into h; NULL t: none.
static hass_err load_dvocab(hass_head *h, const hass_st_tensor *t, const char *path) {
    if (!t) return HASS_OK;
    if (t->dtype != HASS_ST_I32 || t->n_dims != 1 || t->shape[0] < 1 || t->shape[0] > h->n_vocab)
        return hass_seterr(HASS_EFORMAT, "%s: tensor '%s' must be I32 [n] with 1 <= n <= %d", path,
                           T_DVOCAB, h->n_vocab);
    int n = (int)t->shape[0];
    if (!(h->dvocab = malloc(sizeof(int32_t) * (size_t)n)))
        return hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
    memcpy(h->dvocab, t->data, sizeof(int32_t) * (size_t)n);
    h->n_dvocab = n;
    for (int i = 0; i < n; i++)
        if (h->dvocab[i] < 0 || h->dvocab[i] >= h->n_vocab || (i && h->dvocab[i] <= h->dvocab[i - 1]))
            return hass_seterr(HASS_EFORMAT, "%s: tensor '%s': entry %d (%d) is not an ascending id "
                               "below %d", path, T_DVOCAB, i, h->dvocab[i], h->n_vocab);
    return HASS_OK;
}

// Keep the n largest counts' ids, ascending.
hass_err hass_head_set_dvocab(hass_head *h, const int64_t *counts, int n) {
    free(h->dvocab);
    h->dvocab = NULL, h->n_dvocab = 0;
    if (n <= 0 || n >= h->n_vocab) return HASS_OK;
    int V = h->n_vocab;
    int32_t *ord = malloc(sizeof(int32_t) * (size_t)V);
    uint8_t *keep = calloc((size_t)V, 1);
    if (!ord || !keep) {
        free(ord), free(keep);
        return hass_seterr(HASS_ENOMEM, "hass_head_set_dvocab: out of memory");
    }
    for (int i = 0; i < V; i++) ord[i] = i;
    // partial selection: n passes would be slow for n ~ 8k; sort ids by (count desc, id asc)
    for (int gap = V / 2; gap > 0; gap /= 2) // Shell sort: small, no comparator globals
        for (int i = gap; i < V; i++) {
            int32_t x = ord[i];
            int j = i;
            while (j >= gap && (counts[ord[j - gap]] < counts[x] ||
                                (counts[ord[j - gap]] == counts[x] && ord[j - gap] > x))) {
                ord[j] = ord[j - gap];
                j -= gap;
            }
            ord[j] = x;
        }
    for (int i = 0; i < n; i++) keep[ord[i]] = 1;
    h->dvocab = ord; // reuse: ascending ids of the kept set
    for (int i = 0, k = 0; i < V; i++)
        if (keep[i]) h->dvocab[k++] = i;
    h->n_dvocab = n;
    free(keep);
    return HASS_OK;
}

// Element i of a u16 array at any alignment.
static uint16_t u16_at(const void *p, int64_t i) {
    uint16_t v;
    memcpy(&v, (const uint8_t *)p + 2 * i, sizeof v);
    return v;
}

// Copy a tensor into f32 dst, converting F16/BF16.
static hass_err load_tensor(const hass_st_tensor *t, float *dst, int64_t n, const char *path) {
    switch (t->dtype) {
    case HASS_ST_F32: memcpy(dst, t->data, sizeof(float) * (size_t)n); break;
    case HASS_ST_F16: // the data may sit at any byte offset (an odd-length header): memcpy
        for (int64_t i = 0; i < n; i++) dst[i] = hass_f16_to_f32(u16_at(t->data, i));
        break;
    case HASS_ST_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = hass_bf16_to_f32(u16_at(t->data, i));
        break;
    default:
        return hass_seterr(HASS_EUNSUP, "%s: tensor '%s' has dtype %s (F32, F16 or BF16 expected)",
                           path, t->name, hass_st_dtype_name(t->dtype));
    }
    return HASS_OK;
}

// Whether t has exactly the shape (rows) or (rows, cols).
static int shape_is(const hass_st_tensor *t, int64_t rows, int64_t cols) {
    if (cols == 0) return t->n_dims == 1 && t->shape[0] == rows;
    return t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols;
}

// "[a, b]" text of a tensor's shape.
static const char *shape_str(const hass_st_tensor *t, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int d = 0; d < t->n_dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}

// Parse a "%08x" fingerprint; 0 on anything else.
static uint32_t parse_fp(const char *s) {
    if (!s) return 0;
    char *end;
    unsigned long v = strtoul(s, &end, 16);
    return (*s && !*end) ? (uint32_t)v : 0;
}

// Read our hass.* metadata keys.
static void read_meta(hass_head *h, const hass_st *st) {
    const char *tf = hass_st_meta(st, "hass.target_fingerprint");
    const char *kf = hass_st_meta(st, "hass.tokenizer_fingerprint");
    const char *nc = hass_st_meta(st, "hass.n_ctx_train");
    const char *rc = hass_st_meta(st, "hass.recipe");
    const char *am = hass_st_meta(st, "hass.attn_mask");
    h->has_meta = tf || kf || nc || rc || am;
    h->target_fp = parse_fp(tf);
    h->tok_fp = parse_fp(kf);
    h->n_ctx_train = nc ? atoi(nc) : 0;
    snprintf(h->recipe, sizeof h->recipe, "%s", rc ? rc : "");
    snprintf(h->attn_mask, sizeof h->attn_mask, "%s", am ? am : "");
}

// Load and check a head (see head.h).
hass_head *hass_head_load(const char *path, const hass_head_target *tg, hass_err *err) {
    hass_head *h = calloc(1, sizeof(*h));
    hass_st *st = NULL;
    hass_err e = HASS_OK;
    char cfg[4096], stp[4096];
    if (!h) {
        e = hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        e = hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(cfg, sizeof cfg, "%s/config.json", path);
        snprintf(stp, sizeof stp, "%s/model.safetensors", path);
    } else {
        snprintf(stp, sizeof stp, "%s", path);
        snprintf(cfg, sizeof cfg, "%s", path);
        char *slash = strrchr(cfg, '/');
        if (slash) snprintf(slash + 1, sizeof cfg - (size_t)(slash + 1 - cfg), "config.json");
        else snprintf(cfg, sizeof cfg, "config.json");
    }
    if ((e = parse_config(h, cfg))) goto fail;
    st = hass_st_open(stp, &e);
    if (!st) goto fail;
    read_meta(h, st);
    // against the target: dimensions first, then identity
    if (tg) {
        if (h->n_embd != tg->n_embd || h->n_vocab != tg->n_vocab) {
            e = hass_seterr(HASS_EVOCAB,
                            "%s: head is for hidden size %d and vocabulary %d, the target has %d and %d",
                            path, h->n_embd, h->n_vocab, tg->n_embd, tg->n_vocab);
            goto fail;
        }
        if (h->target_fp && tg->fingerprint && h->target_fp != tg->fingerprint) {
            e = hass_seterr(HASS_EVOCAB,
                            "%s: head was made for target %08x, this target is %08x (train a head "
                            "for this model, or pass the model it was made for)",
                            path, h->target_fp, tg->fingerprint);
            goto fail;
        }
        if (h->tok_fp && tg->tok_fingerprint && h->tok_fp != tg->tok_fingerprint) {
            e = hass_seterr(HASS_EVOCAB, "%s: head was made for tokenizer %08x, this target's is %08x",
                            path, h->tok_fp, tg->tok_fingerprint);
            goto fail;
        }
    }
    const hass_st_tensor *tb = hass_st_find(st, T_FC_B);
    if (h->has_bias < 0) h->has_bias = tb != NULL;
    else if (h->has_bias != (tb != NULL)) {
        e = hass_seterr(HASS_EFORMAT, "%s: config.json says \"bias\": %s but %s is %s", cfg,
                        h->has_bias ? "true" : "false", T_FC_B, tb ? "present" : "missing");
        goto fail;
    }
    slot s[10];
    int n = slots_of(h, s);
    char b1[96];
    for (int i = 0; i < n; i++) { // every shape first: the file bounds what is allocated
        const hass_st_tensor *t = hass_st_find(st, s[i].name);
        if (!t) {
            e = hass_seterr(HASS_EFORMAT, "%s: tensor '%s' missing", stp, s[i].name);
            goto fail;
        }
        if (!shape_is(t, s[i].rows, s[i].cols)) {
            if (s[i].cols)
                e = hass_seterr(HASS_EFORMAT, "%s: tensor '%s' has shape %s, expected [%lld, %lld]",
                                stp, s[i].name, shape_str(t, b1, sizeof b1),
                                (long long)s[i].rows, (long long)s[i].cols);
            else
                e = hass_seterr(HASS_EFORMAT, "%s: tensor '%s' has shape %s, expected [%lld]", stp,
                                s[i].name, shape_str(t, b1, sizeof b1), (long long)s[i].rows);
            goto fail;
        }
    }
    if ((e = alloc_weights(h, path))) goto fail;
    n = slots_of(h, s);
    for (int i = 0; i < n; i++)
        if ((e = load_tensor(hass_st_find(st, s[i].name), *s[i].dst, slot_n(&s[i]), stp))) goto fail;
    if ((e = load_dvocab(h, hass_st_find(st, T_DVOCAB), stp))) goto fail;
    const hass_st_tensor *te = hass_st_find(st, T_EMBED);
    if (te && !shape_is(te, h->n_vocab, h->n_embd)) {
        e = hass_seterr(HASS_EFORMAT, "%s: tensor '%s' has shape %s, expected [%d, %d]", stp, T_EMBED,
                        shape_str(te, b1, sizeof b1), h->n_vocab, h->n_embd);
        goto fail;
    }
    for (int64_t i = 0; i < hass_st_n_tensors(st); i++) {
        const char *nm = hass_st_tensor_at(st, i)->name;
        int known = !strcmp(nm, T_EMBED) || !strcmp(nm, T_DVOCAB);
        for (int j = 0; j < n; j++) known |= !strcmp(nm, s[j].name);
        if (!known) HASS_WARN("%s: ignoring unknown tensor '%s'", stp, nm);
    }
    if (!h->has_meta) HASS_INFO("%s: no hass metadata (public head): target identity not checked", path);
    hass_st_free(st);
    return h;
fail:
    hass_st_free(st);
    hass_head_free(h);
    if (err) *err = e;
    return NULL;
}

// Random head with PyTorch-default-like init.
hass_head *hass_head_random(const hass_head_target *tg, int with_bias, uint64_t seed,
                            hass_err *err) {
    if (tg->n_embd <= 0 || tg->n_vocab <= 0 || tg->n_head <= 0 || tg->n_head_kv <= 0 ||
        tg->head_dim <= 0 || tg->n_ff <= 0 || tg->n_head % tg->n_head_kv) {
        if (err) *err = hass_seterr(HASS_EINVAL, "head: bad target dimensions for a random head");
        return NULL;
    }
    hass_head *h = calloc(1, sizeof(*h));
    if (!h) {
        if (err) *err = hass_seterr(HASS_ENOMEM, "head: out of memory");
        return NULL;
    }
    h->n_embd = tg->n_embd;
    h->n_vocab = tg->n_vocab;
    h->n_head = tg->n_head;
    h->n_head_kv = tg->n_head_kv;
    h->head_dim = tg->head_dim;
    h->n_ff = tg->n_ff;
    h->rope_theta = tg->rope_theta > 0 ? tg->rope_theta : 10000.f;
    h->norm_eps = tg->norm_eps > 0 ? tg->norm_eps : 1e-5f;
    h->has_bias = with_bias != 0;
    h->has_meta = 1;
    h->target_fp = tg->fingerprint;
    h->tok_fp = tg->tok_fingerprint;
    h->n_ctx_train = tg->n_ctx_train;
    snprintf(h->recipe, sizeof h->recipe, "random seed=%llu", (unsigned long long)seed);
    snprintf(h->attn_mask, sizeof h->attn_mask, "correct");
    hass_err e = alloc_weights(h, "head");
    if (e) {
        hass_head_free(h);
        if (err) *err = e;
        return NULL;
    }
    hass_rng rng;
    hass_rng_seed(&rng, seed);
    slot s[10];
    int n = slots_of(h, s);
    for (int i = 0; i < n; i++) {
        int64_t m = slot_n(&s[i]);
        float *d = *s[i].dst;
        if (s[i].dst == &h->post_norm) {
            for (int64_t k = 0; k < m; k++) d[k] = 1.f;
            continue;
        }
        // fan_in: the column count of the weight (fc bias uses fc's fan_in 2C)
        int64_t fan_in = s[i].cols ? s[i].cols : 2 * (int64_t)h->n_embd;
        double bound = 1.0 / sqrt((double)fan_in);
        for (int64_t k = 0; k < m; k++) d[k] = (float)((2.0 * hass_rng_uniform(&rng) - 1.0) * bound);
    }
    return h;
}

// Fill a tensor entry for hass_st_write (cols 0: a vector).
static hass_st_tensor *st_tensor(hass_st_tensor *x, const char *name, hass_st_dtype dtype, int64_t rows,
                                 int64_t cols, const void *data, uint64_t n_bytes) {
    memset(x, 0, sizeof *x);
    x->name = name;
    x->dtype = dtype;
    x->n_dims = cols ? 2 : 1;
    x->shape[0] = rows;
    x->shape[1] = cols;
    x->data = data;
    x->n_bytes = n_bytes;
    return x;
}

// Save config.json and model.safetensors (F32).
hass_err hass_head_save(const hass_head *h, const char *dir, const float *embed) {
    return hass_head_save_as(h, dir, embed, 0);
}

// Save config.json and model.safetensors, the layer's tensors in F32 or (bf16 = 1) BF16.
hass_err hass_head_save_as(const hass_head *h, const char *dir, const float *embed, int bf16) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return hass_seterr(HASS_EIO, "%s: %s", dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", "LlamaForCausalLM"));
    json_object_set_new(o, "model_type", json_string("llama"));
    json_object_set_new(o, "hidden_size", json_integer(h->n_embd));
    json_object_set_new(o, "intermediate_size", json_integer(h->n_ff));
    json_object_set_new(o, "num_attention_heads", json_integer(h->n_head));
    json_object_set_new(o, "num_key_value_heads", json_integer(h->n_head_kv));
    json_object_set_new(o, "head_dim", json_integer(h->head_dim));
    json_object_set_new(o, "num_hidden_layers", json_integer(1));
    json_object_set_new(o, "vocab_size", json_integer(h->n_vocab));
    json_object_set_new(o, "rms_norm_eps", json_real(h->norm_eps));
    json_object_set_new(o, "rope_theta", json_real(h->rope_theta));
    json_object_set_new(o, "max_position_embeddings", json_integer(h->n_ctx_train > 0 ? h->n_ctx_train : 2048));
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "bias", json_boolean(h->has_bias));
    json_object_set_new(o, "torch_dtype", json_string(bf16 ? "bfloat16" : "float32"));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(o, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    if (rc != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return hass_seterr(HASS_EIO, "%s: cannot write", path);
    }
    slot s[10];
    int n = slots_of((hass_head *)h, s);
    hass_st_tensor t[12];
    uint16_t *half[10] = {0}; // bf16 copies
    int nt = 0;
    hass_err e = HASS_OK;
    for (int i = 0; i < n; i++) {
        hass_st_tensor *x = st_tensor(&t[nt++], s[i].name, bf16 ? HASS_ST_BF16 : HASS_ST_F32,
                                      s[i].rows, s[i].cols, *s[i].dst,
                                      (bf16 ? sizeof(uint16_t) : sizeof(float)) * (uint64_t)slot_n(&s[i]));
        if (!bf16) continue;
        if (!(half[i] = malloc(x->n_bytes))) {
            e = hass_seterr(HASS_ENOMEM, "%s: out of memory", dir);
            goto out;
        }
        for (int64_t j = 0; j < slot_n(&s[i]); j++) half[i][j] = hass_f32_to_bf16((*s[i].dst)[j]);
        x->data = half[i];
    }
    if (h->dvocab)
        st_tensor(&t[nt++], T_DVOCAB, HASS_ST_I32, h->n_dvocab, 0, h->dvocab,
                  sizeof(int32_t) * (uint64_t)h->n_dvocab);
    if (embed)
        st_tensor(&t[nt++], T_EMBED, HASS_ST_F32, h->n_vocab, h->n_embd, embed,
                  sizeof(float) * (uint64_t)h->n_vocab * h->n_embd);
    char tf[16], kf[16], nc[24];
    snprintf(tf, sizeof tf, "%08x", h->target_fp);
    snprintf(kf, sizeof kf, "%08x", h->tok_fp);
    snprintf(nc, sizeof nc, "%d", h->n_ctx_train);
    const char *meta[] = {"format", "pt",
                          "hass.target_fingerprint", tf,
                          "hass.tokenizer_fingerprint", kf,
                          "hass.n_ctx_train", nc,
                          "hass.recipe", h->recipe,
                          "hass.attn_mask", h->attn_mask[0] ? h->attn_mask : "correct",
                          NULL};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    e = hass_st_write(path, t, nt, meta);
out:
    for (int i = 0; i < 10; i++) free(half[i]);
    return e;
}
