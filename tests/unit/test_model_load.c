// test_model_load.c: model loading. Bad input (truncated file, wrong magic, a tensor shape that
// disagrees with the config, an unsupported dtype, a missing tensor, an unknown architecture)
// gives a clear error naming the file and the tensor, never a crash. An HF safetensors directory
// (sharded, rotate-half Q/K layout) converted from stories260K gives the GGUF model's logits;
// LLaMA-3 RoPE scaling in its config.json gives hand-computed frequencies and position scaling.
#include "forward.h"
#include "gguf.h"
#include "model_int.h" // inv_freq
#include "safetensors.h"
#include "unit.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned char *g_buf;
static size_t g_n;

// Read a whole file.
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

// Write bytes to a file.
static void spit(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b, 1, n, f);
        fclose(f);
    }
}

// Offset just past the first occurrence of a string in the header, or 0.
static size_t after(const unsigned char *b, size_t n, const char *s) {
    size_t k = strlen(s);
    for (size_t i = 0; i + k < n && i < 20000; i++)
        if (!memcmp(b + i, s, k)) return i + k;
    return 0;
}

// Load a patched copy; check the error code and that the message names the file and `what`.
static void expect_fail(const char *name, const char *path, const unsigned char *b, size_t n,
                        hass_err code, const char *what) {
    spit(path, b, n);
    hass_err e = HASS_OK;
    hass_model *m = hass_model_load(path, 1, &e);
    const char *msg = hass_errmsg();
    CHECK(name, !m && e == code && strstr(msg, path) && (!what || strstr(msg, what)),
          "got %s (%d): '%s', want %s naming '%s'", m ? "a model" : hass_strerror(e), e, msg,
          hass_strerror(code), what ? what : path);
    hass_model_free(m);
}

// Write a float tensor into a safetensors tensor entry (F32, shape rows x cols or vector).
static hass_st_tensor st_tensor(const char *name, const float *data, int64_t rows, int64_t cols) {
    hass_st_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = HASS_ST_F32;
    t.n_dims = cols ? 2 : 1;
    t.shape[0] = rows;
    t.shape[1] = cols;
    t.data = data;
    t.n_bytes = (uint64_t)(rows * (cols ? cols : 1)) * 4;
    return t;
}

// Convert a pairs-layout (Meta) Q/K weight to HF's rotate-half layout: row h*D + s*D/2 + i of
// the result is row h*D + 2i + s of the input.
static float *permute_qk(const float *w, int n_heads, int D, int cols) {
    float *o = malloc(sizeof(float) * (size_t)n_heads * D * cols);
    for (int h = 0; h < n_heads; h++)
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < D / 2; i++)
                memcpy(o + ((size_t)h * D + s * D / 2 + i) * cols,
                       w + ((size_t)h * D + 2 * i + s) * cols, sizeof(float) * cols);
    return o;
}

// Write dir/config.json for the model type with c's hyper-parameters (extra: more JSON members,
// each followed by ", ", or "").
static void write_config_x(const char *dir, const char *type, const hass_model_cfg *c,
                           const char *extra) {
    char p[1400];
    snprintf(p, sizeof p, "%.1300s/config.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) return;
    fprintf(f, "{%s\"model_type\": \"%s\", \"vocab_size\": %d, \"hidden_size\": %d, "
            "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
            "\"intermediate_size\": %d, \"max_position_embeddings\": 512, \"rms_norm_eps\": 1e-05, "
            "\"rope_theta\": 10000.0, \"tie_word_embeddings\": false}\n", extra, type, c->n_vocab,
            c->n_embd, c->n_layer, c->n_head, c->n_head_kv, c->n_ff);
    fclose(f);
}

// Write dir/config.json without extra members.
static void write_config(const char *dir, const char *type, const hass_model_cfg *c) {
    write_config_x(dir, type, c, "");
}

// LLaMA-3 RoPE scaling from config.json ("rope_scaling": {"rope_type": "llama3", ...}) on the
// HF directory `dir` (stories260K weights: head_dim 8, theta 10000, so the unscaled inverse
// frequencies are 1, 0.1, 0.01, 0.001 with wavelengths 2 pi / inv = 6.28, 62.8, 628, 6283).
// g: the same weights from the GGUF, for the configuration.
static void rope_llama3(const hass_model *g, const char *dir) {
    const hass_model_cfg *c = hass_model_config(g);
    hass_err e;
    write_config(dir, "llama", c);
    hass_model *u = hass_model_load(dir, 1, &e); // unscaled, same layout
    if (!u) {
        CHECK("model_rope_llama3_unscaled_loads", 0, "%s", hass_errmsg());
        return;
    }
    // factor 8, low 1, high 4, original context 2048: wavelengths below 2048 / 4 = 512 keep
    // their frequency (1, 0.1), above 2048 / 1 are divided by 8 (0.001 -> 0.000125), and 628 is
    // in between: s = (2048 / 628.3185 - 1) / (4 - 1) = 0.7531644, inv = (1 - s) * 0.01 / 8 +
    // s * 0.01 = 0.01 * (1 + 7 s) / 8 = 0.0078401886 (HF transformers'
    // _compute_llama3_parameters, evaluated by hand).
    static const double want[4] = {1.0, 0.1, 0.0078401886, 0.000125};
    write_config_x(dir, "llama", c, "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                   "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                   "\"original_max_position_embeddings\": 2048}, ");
    hass_model *h = hass_model_load(dir, 1, &e);
    const hass_model_cfg *hc = h ? hass_model_config(h) : NULL;
    CHECK("model_rope_llama3_parsed", hc && hc->rope_scaling == 1 && hc->rope_factor == 8.f &&
          hc->rope_low_freq == 1.f && hc->rope_high_freq == 4.f && hc->rope_orig_ctx == 2048 &&
          hc->head_dim == 8, "%s", hass_errmsg());
    if (hc) {
        double worst = 0;
        for (int i = 0; i < 4; i++) worst = fmax(worst, fabs(h->inv_freq[i] / want[i] - 1));
        CHECK("model_rope_llama3_inv_freq", worst < 1e-6, "worst relative error %g (%g %g %g %g)",
              worst, h->inv_freq[0], h->inv_freq[1], h->inv_freq[2], h->inv_freq[3]);
    }
    hass_model_free(h);
    // original context 4: every wavelength (>= 6.28) is above 4 / 1, so every frequency is
    // divided by the factor 8 (exactly: a power of two) and position 8 p rotates like position p
    // unscaled: the logits at positions 0, 8, 16, 24 equal the unscaled model's at 0, 1, 2, 3
    // bit for bit (the angle 8 p * (f / 8) is exactly p * f)
    write_config_x(dir, "llama", c, "\"rope_scaling\": {\"type\": \"llama3\", \"factor\": 8.0, "
                   "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                   "\"original_max_position_embeddings\": 4}, ");
    h = hass_model_load(dir, 1, &e);
    if (h) {
        static const int32_t tok[4] = {1, 403, 407, 261}, p8[4] = {0, 8, 16, 24};
        int V = c->n_vocab;
        float *a = malloc(sizeof(float) * 4 * V), *b = malloc(sizeof(float) * 4 * V);
        hass_kv *ka = hass_kv_new(h, 32, &e), *kb = hass_kv_new(u, 32, &e);
        hass_err ea = hass_forward(h, ka, tok, p8, 4, NULL, a, NULL);
        hass_err eb = hass_forward(u, kb, tok, NULL, 4, NULL, b, NULL);
        double md = 0, m0 = 0;
        for (int i = 0; i < 4 * V; i++) md = fmax(md, fabs(a[i] - b[i]));
        // and the scaling is not a no-op: the same positions unscaled give other logits
        hass_kv_truncate(kb, 0);
        hass_err ec = hass_forward(u, kb, tok, p8, 4, NULL, b, NULL);
        for (int i = V; i < 4 * V; i++) m0 = fmax(m0, fabs(a[i] - b[i]));
        CHECK("model_rope_llama3_scaled_positions", !ea && !eb && !ec && md == 0 && m0 > 1e-2,
              "positions 8p scaled vs p unscaled: max |diff| %g; vs 8p unscaled %g (%s)", md, m0,
              hass_errmsg());
        free(a);
        free(b);
        hass_kv_free(ka);
        hass_kv_free(kb);
    } else {
        CHECK("model_rope_llama3_scaled_positions", 0, "%s", hass_errmsg());
    }
    hass_model_free(h);
    // high_freq_factor <= low_freq_factor is refused
    write_config_x(dir, "llama", c, "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                   "\"low_freq_factor\": 4.0, \"high_freq_factor\": 1.0, "
                   "\"original_max_position_embeddings\": 2048}, ");
    h = hass_model_load(dir, 1, &e);
    CHECK("model_rope_llama3_bad_refused", !h && e == HASS_EFORMAT && strstr(hass_errmsg(), "llama3"),
          "%s", hass_errmsg());
    hass_model_free(h);
    hass_model_free(u);
    write_config(dir, "llama", c);
}

// Max |difference| of the logits of two models over the first n tokens of a stories prompt
// (INFINITY when a forward fails).
static double max_logit_diff(const hass_model *ma, const hass_model *mb, int n) {
    static const int32_t tok[8] = {1, 403, 407, 261, 378, 432, 383, 286};
    int V = hass_model_config(ma)->n_vocab;
    hass_err e;
    float *a = malloc(sizeof(float) * n * V), *b = malloc(sizeof(float) * n * V);
    hass_kv *ka = hass_kv_new(ma, 16, &e), *kb = hass_kv_new(mb, 16, &e);
    double md = INFINITY;
    if (ka && kb && !hass_forward((hass_model *)ma, ka, tok, NULL, n, NULL, a, NULL) &&
        !hass_forward((hass_model *)mb, kb, tok, NULL, n, NULL, b, NULL)) {
        md = 0;
        for (int i = 0; i < n * V; i++) md = fmax(md, fabs(a[i] - b[i]));
    }
    free(a);
    free(b);
    hass_kv_free(ka);
    hass_kv_free(kb);
    return md;
}

// Build a sharded HF directory from the stories260K GGUF and compare logits with it.
static void hf_roundtrip(const char *gguf_path, const char *dir) {
    if (strlen(dir) > 1300) return;
    hass_err e;
    hass_model *g = hass_model_load(gguf_path, 1, &e);
    if (!g) {
        CHECK("model_hf_source", 0, "%s", hass_errmsg());
        return;
    }
    const hass_model_cfg *c = hass_model_config(g);
    mkdir(dir, 0755);
    char p[1400];
    write_config(dir, "llama", c);
    FILE *f;
    // read every GGUF tensor back as floats through the public matmul-free path: dequantize rows
    int L = c->n_layer, C = c->n_embd, D = c->head_dim;
    enum { MAXT = 64 };
    hass_st_tensor ts[MAXT];
    char names[MAXT][96];
    float *bufs[MAXT];
    int nt = 0;
    hass_gguf *gg = hass_gguf_open(gguf_path, &e);
    for (int64_t i = 0; gg && i < hass_gguf_n_tensors(gg) && nt < MAXT; i++) {
        const hass_gguf_tensor *t = hass_gguf_tensor_at(gg, i);
        int64_t rows = t->n_dims == 2 ? t->ne[1] : t->ne[0], cols = t->n_dims == 2 ? t->ne[0] : 0;
        const char *hf = NULL;
        int il = -1;
        char suffix[64];
        if (!strcmp(t->name, "token_embd.weight")) hf = "model.embed_tokens.weight";
        else if (!strcmp(t->name, "output.weight")) hf = "lm_head.weight";
        else if (!strcmp(t->name, "output_norm.weight")) hf = "model.norm.weight";
        else if (sscanf(t->name, "blk.%d.%63s", &il, suffix) == 2) {
            static const char *map[][2] = {
                {"attn_norm.weight", "input_layernorm.weight"}, {"attn_q.weight", "self_attn.q_proj.weight"},
                {"attn_k.weight", "self_attn.k_proj.weight"}, {"attn_v.weight", "self_attn.v_proj.weight"},
                {"attn_output.weight", "self_attn.o_proj.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"},
                {"ffn_gate.weight", "mlp.gate_proj.weight"}, {"ffn_up.weight", "mlp.up_proj.weight"},
                {"ffn_down.weight", "mlp.down_proj.weight"}};
            for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
                if (!strcmp(suffix, map[k][0])) hf = map[k][1];
        }
        if (!hf) continue;
        if (il >= 0) snprintf(names[nt], sizeof names[nt], "model.layers.%d.%s", il, hf);
        else snprintf(names[nt], sizeof names[nt], "%s", hf);
        const float *src = t->data; // stories260K is F32
        bufs[nt] = NULL;
        if (strstr(t->name, "attn_q.weight")) src = bufs[nt] = permute_qk(src, c->n_head, D, C);
        else if (strstr(t->name, "attn_k.weight")) src = bufs[nt] = permute_qk(src, c->n_head_kv, D, C);
        ts[nt] = st_tensor(names[nt], src, rows, cols);
        nt++;
    }
    // two shards: the first half of the tensors and the rest, with an index
    int half = nt / 2;
    snprintf(p, sizeof p, "%.1300s/model-00001-of-00002.safetensors", dir);
    hass_err e1 = hass_st_write(p, ts, half, NULL);
    snprintf(p, sizeof p, "%.1300s/model-00002-of-00002.safetensors", dir);
    hass_err e2 = hass_st_write(p, ts + half, nt - half, NULL);
    snprintf(p, sizeof p, "%.1300s/model.safetensors.index.json", dir);
    f = fopen(p, "w");
    fprintf(f, "{\"metadata\": {}, \"weight_map\": {");
    for (int i = 0; i < nt; i++)
        fprintf(f, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", ts[i].name,
                i < half ? 1 : 2);
    fprintf(f, "}}\n");
    fclose(f);
    CHECK("model_hf_written", !e1 && !e2 && nt == 3 + 9 * L,
          "wrote %d tensors (%s)", nt, hass_errmsg());
    hass_model *h = hass_model_load(dir, 1, &e);
    CHECK("model_hf_loads", h != NULL, "%s", hass_errmsg());
    if (h) {
        const hass_model_cfg *hc = hass_model_config(h);
        CHECK("model_hf_rope_half", hc->rope_mode == HASS_ROPE_HALF && !hc->tied, "rope %d tied %d",
              hc->rope_mode, hc->tied);
        double md = max_logit_diff(g, h, 8);
        CHECK("model_hf_logits_match_gguf", md < 1e-3, "max |diff| %g (%s)", md, hass_errmsg());
    }
    hass_model_free(h);
    rope_llama3(g, dir);
    // the same weights as Qwen2 (q/k/v biases, here zero) in one unsharded file: same logits
    {
        char qd[1400];
        snprintf(qd, sizeof qd, "%.1300s-qwen2", dir);
        mkdir(qd, 0755);
        write_config(qd, "qwen2", c);
        hass_st_tensor all[MAXT + 3 * 8];
        char bn[3 * 8][96];
        float *zero = calloc((size_t)c->n_head * D, sizeof(float));
        int na = 0;
        for (int i = 0; i < nt; i++) all[na++] = ts[i];
        for (int il = 0; il < L && il < 8; il++) {
            static const char *pr[3] = {"q", "k", "v"};
            for (int k = 0; k < 3; k++) {
                snprintf(bn[il * 3 + k], sizeof bn[0], "model.layers.%d.self_attn.%s_proj.bias", il, pr[k]);
                all[na++] = st_tensor(bn[il * 3 + k], zero, k ? (int64_t)c->n_head_kv * D : (int64_t)c->n_head * D, 0);
            }
        }
        snprintf(p, sizeof p, "%.1300s/model.safetensors", qd);
        e = hass_st_write(p, all, na, NULL);
        hass_model *q = e ? NULL : hass_model_load(qd, 1, &e);
        CHECK("model_hf_qwen2_loads", q && hass_model_config(q)->qkv_bias &&
              hass_model_config(q)->arch == HASS_ARCH_QWEN2, "%s", hass_errmsg());
        if (q) {
            double md = max_logit_diff(g, q, 4);
            CHECK("model_hf_qwen2_zero_bias_matches", md < 1e-3, "max |diff| %g (%s)", md,
                  hass_errmsg());
        }
        hass_model_free(q);
        free(zero);
        // Qwen2 without its biases is refused, naming the tensor
        e = hass_st_write(p, ts, nt, NULL);
        q = e ? NULL : hass_model_load(qd, 1, &e);
        CHECK("model_hf_qwen2_missing_bias", !q && e == HASS_EFORMAT &&
              strstr(hass_errmsg(), "model.layers.0.self_attn.q_proj.bias"), "%s", hass_errmsg());
        hass_model_free(q);
    }
    // a directory without config.json
    snprintf(p, sizeof p, "%.1300s/config.json", dir);
    unlink(p);
    h = hass_model_load(dir, 1, &e);
    CHECK("model_hf_no_config", !h && e != HASS_OK && strstr(hass_errmsg(), "config.json"), "%s",
          hass_errmsg());
    hass_model_free(h);
    for (int i = 0; i < nt; i++) free(bufs[i]);
    hass_gguf_free(gg);
    hass_model_free(g);
}

int main(void) {
    char src[1024], path[1200], dir[1024];
    unit_data(src, sizeof src, "models/stories260K/stories260K-v3-f32.gguf");
    if (!unit_exists(src) || !(g_buf = slurp(src, &g_n))) {
        SKIP("model_load", "stories260K not present");
        UNIT_DONE();
    }
    const char *tmp = getenv("TMP");
    snprintf(dir, sizeof dir, "%.900s/hass-model-load-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    unsigned char *b = malloc(g_n);
    hass_err e;

    hass_model *m = hass_model_load(src, 1, &e);
    CHECK("model_load_ok", m && hass_model_config(m)->n_layer == 5 && hass_model_fingerprint(m),
          "%s", hass_errmsg());
    hass_model_free(m);
    m = hass_model_load("/nonexistent/model.gguf", 1, &e);
    CHECK("model_load_missing_file", !m && e == HASS_EIO && strstr(hass_errmsg(), "/nonexistent"),
          "%d %s", e, hass_errmsg());

    expect_fail("model_load_truncated", path, g_buf, g_n / 2, HASS_EFORMAT, "truncated");
    memcpy(b, g_buf, g_n);
    memcpy(b, "GGUX", 4);
    expect_fail("model_load_bad_magic", path, b, g_n, HASS_EFORMAT, "magic");

    // shape: blk.0.attn_q.weight [64, 64] -> [64, 63]; layout after the name: u32 n_dims, u64 ne[]
    memcpy(b, g_buf, g_n);
    size_t o = after(b, g_n, "blk.0.attn_q.weight");
    CHECK("model_load_found_attn_q", o > 0, "tensor name not found in the header");
    if (o) {
        uint64_t ne1 = 63;
        memcpy(b + o + 4 + 8, &ne1, 8);
        expect_fail("model_load_shape_mismatch", path, b, g_n, HASS_EFORMAT, "blk.0.attn_q.weight");
    }
    // dtype: blk.0.ffn_up.weight F32 -> Q8_1 (type 9), which the loader does not run
    memcpy(b, g_buf, g_n);
    o = after(b, g_n, "blk.0.ffn_up.weight");
    if (o) {
        uint32_t t = 9;
        memcpy(b + o + 4 + 16, &t, 4);
        expect_fail("model_load_unsupported_dtype", path, b, g_n, HASS_EUNSUP, "blk.0.ffn_up.weight");
    }
    // missing: rename blk.0.ffn_up.weight
    memcpy(b, g_buf, g_n);
    o = after(b, g_n, "blk.0.ffn_up.weight");
    if (o) {
        b[o - strlen(".weight") - 1] = 'q';
        expect_fail("model_load_missing_tensor", path, b, g_n, HASS_EFORMAT, "'blk.0.ffn_up.weight' is missing");
    }
    // architecture: "llama" -> "bloom" in general.architecture's value (u32 type, u64 length)
    memcpy(b, g_buf, g_n);
    o = after(b, g_n, "general.architecture");
    if (o) {
        memcpy(b + o + 4 + 8, "bloom", 5);
        expect_fail("model_load_unknown_arch", path, b, g_n, HASS_EUNSUP, "bloom");
    }
    // every truncation point of the header and a sample of the data: error, never a crash
    int ok = 1;
    for (size_t cut = 0; cut < g_n; cut += cut < 12000 ? 97 : 40013) {
        spit(path, g_buf, cut);
        m = hass_model_load(path, 1, &e);
        if (m || e == HASS_OK) ok = 0;
        hass_model_free(m);
    }
    CHECK("model_load_every_truncation", ok, "a truncated file loaded");
    unlink(path);

    snprintf(path, sizeof path, "%s/hf", dir);
    hf_roundtrip(src, path);
    free(b);
    free(g_buf);
    UNIT_DONE();
}
