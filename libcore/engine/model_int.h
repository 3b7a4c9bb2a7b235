// model_int.h: internal to libcore: the layout of a loaded model (model.c, forward.c).
#ifndef HASS_MODEL_INT_H
#define HASS_MODEL_INT_H

#include "gguf.h"
#include "model.h"
#include "pool.h"

// One decoder layer's weights (views into the mapped files; vectors are owned f32 copies).
typedef struct hass_layer {
    const float *attn_norm;          // (C)
    hass_wmat wq, wk, wv, wo;        // (H*D, C), (Hkv*D, C), (Hkv*D, C), (C, H*D)
    const float *bq, *bk, *bv;       // (H*D), (Hkv*D), (Hkv*D) or NULL
    const float *ffn_norm;           // (C)
    hass_wmat w_gate, w_up, w_down;  // (F, C), (F, C), (C, F)
} hass_layer;

struct hass_st;

struct hass_model {
    hass_model_cfg cfg;
    char *path;                // owned
    int n_threads;
    int prec;                  // hass_precision
    hass_pool *pool;           // the kernels' thread team (n_threads)
    hass_gguf *gguf;           // GGUF source, or NULL
    void **st;                 // safetensors shards (hass_st *), or NULL
    int n_st;
    hass_wmat tok_embd;        // (V, C)
    hass_wmat output;          // (V, C), = tok_embd when tied
    const float *output_norm;  // (C)
    hass_layer *layers;        // (n_layer)
    float *inv_freq;           // (D/2) RoPE inverse frequencies (scaling applied)
    void **allocs;             // owned f32 vectors (norms, biases, inv_freq)
    int n_allocs, cap_allocs;
    uint32_t fingerprint;
    int layers_packed;         // 1: the layers' quantized weights have their packed copy (pk)
};

// Give the layers' quantized weights their copy in the AVX-512 kernel's packed layout when that
// kernel is in use and the precision is the default (once; the forward pass calls it, a model
// used only for its embedding and LM head or only in f32 mode never pays for it).
hass_err hass_model_pack_layers(hass_model *m);

#endif
