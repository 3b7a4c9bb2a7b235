// head.h: HASS/EAGLE draft heads: load (config.json + model.safetensors in the EAGLE layout),
// check against the target, random initialisation, save.
//
// Layout (SPEC-HASS.md section 2): fc.weight (C, 2C) acting on [embedding; feature], optional
// fc.bias (C), one decoder layer without input norm: layers.0.self_attn.{q,k,v,o}_proj.weight,
// layers.0.mlp.{gate,up,down}_proj.weight, layers.0.post_attention_layernorm.weight; an
// embed_tokens.weight (V, C) copy may be present (public heads carry it): its shape is checked
// but it is never loaded, the target's embedding and LM head are shared. config.json is
// LLaMA-style (hidden_size, intermediate_size, num_attention_heads, num_key_value_heads,
// vocab_size, rms_norm_eps, rope_theta (default 10000), optional head_dim and bias).
//
// Our heads carry metadata in the safetensors "__metadata__": hass.target_fingerprint and
// hass.tokenizer_fingerprint (8 hex digits), hass.n_ctx_train, hass.recipe, hass.attn_mask
// ("correct" or "leaky"). At load a head whose fingerprints differ from the target's is refused
// (HASS_EVOCAB, the message names both); a public head without them loads after the shape checks.
// Weights are held as f32 (F16/BF16 files are converted at load).
#ifndef HASS_HEAD_H
#define HASS_HEAD_H

#include "hass.h"

// What a head is checked against: the target's dimensions and identity (0 = unknown).
typedef struct hass_head_target {
    int n_embd;          // C
    int n_vocab;         // V
    int n_head;          // used for random heads
    int n_head_kv;       // used for random heads
    int head_dim;        // used for random heads
    int n_ff;            // used for random heads
    float rope_theta;    // used for random heads (written into config.json)
    float norm_eps;      // used for random heads
    int n_ctx_train;     // used for random heads
    uint32_t fingerprint;     // hass_model_fingerprint of the target
    uint32_t tok_fingerprint; // hass_tokenizer_fingerprint of its vocabulary
} hass_head_target;

typedef struct hass_head {
    // configuration
    int n_embd;       // C
    int n_vocab;      // V
    int n_head;       // H query heads
    int n_head_kv;    // Hkv
    int head_dim;     // D
    int n_ff;         // F
    float rope_theta; // RoPE base (rotate-half layout)
    float norm_eps;   // post-attention RMSNorm epsilon
    int has_bias;     // fc.bias present
    // metadata (ours; zero/empty for public heads)
    int has_meta;             // hass.* keys present
    uint32_t target_fp;       // hass.target_fingerprint
    uint32_t tok_fp;          // hass.tokenizer_fingerprint
    int n_ctx_train;          // hass.n_ctx_train (0 unknown)
    char recipe[256];         // hass.recipe
    char attn_mask[16];       // hass.attn_mask
    // weights (one allocation, f32)
    float *fc_w;      // (C, 2C)
    float *fc_b;      // (C) or NULL
    float *wq;        // (H*D, C)
    float *wk;        // (Hkv*D, C)
    float *wv;        // (Hkv*D, C)
    float *wo;        // (C, H*D)
    float *w_gate;    // (F, C)
    float *w_up;      // (F, C)
    float *w_down;    // (C, F)
    float *post_norm; // (C)
    float *data;      // owner of all of the above
    size_t n_params;  // floats in data
    // optional draft vocabulary ("draft_vocab", I32): the draft proposes only these token ids
    // (ascending, distinct, in [0, V)), so its LM-head product covers n_dvocab rows, not V. The
    // verification is unchanged, so output stays exact; tokens outside it are never drafted.
    int32_t *dvocab;  // (n_dvocab) or NULL (the whole vocabulary)
    int n_dvocab;
} hass_head;

// Load a head from a directory (config.json + model.safetensors) or from a .safetensors file
// with config.json beside it, and check it against target (NULL: shapes only against its own
// config). NULL with *err: HASS_EIO (files), HASS_EFORMAT (JSON, missing/bad tensors, shapes),
// HASS_EVOCAB (made for another target or tokenizer), HASS_EUNSUP (dtype).
hass_head *hass_head_load(const char *path, const hass_head_target *target, hass_err *err);
// A randomly initialised head for target (PyTorch defaults: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
// for weights and fc bias, norm weight 1), seeded. Metadata from target; recipe "random".
hass_head *hass_head_random(const hass_head_target *target, int with_bias, uint64_t seed,
                            hass_err *err);
// Save config.json and model.safetensors (F32, with metadata) into dir (created if missing).
// embed: when not NULL, also write it as embed_tokens.weight (V, C), for tools that need the
// full EAGLE layout; NULL leaves it out (we share the target's embedding).
hass_err hass_head_save(const hass_head *h, const char *dir,
                        const float *embed); // (V, C) or NULL
// The same with the layer's tensors in BF16 when bf16 is 1 (round to nearest even): half the
// size, for heads that ship (the load path converts back to f32).
hass_err hass_head_save_as(const hass_head *h, const char *dir, const float *embed, int bf16);
// Give h a draft vocabulary: the n most frequent ids of counts (V entries; ties to the lower id),
// stored ascending. n >= V or n <= 0 removes it. HASS_ENOMEM on failure.
hass_err hass_head_set_dvocab(hass_head *h, const int64_t *counts, int n);
// Free (NULL ok).
void hass_head_free(hass_head *h);

#endif
