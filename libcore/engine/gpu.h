// gpu.h: the C view of kernels/ (device memory, streams, graphs, kernels, the GPU LLaMA forward).
// Only declared; defined when built with CUDA. libcore code calls these only under
// HASS_WITH_CUDA; tests skip without a device. Every d_ pointer is device memory; every launcher
// queues work on the stream set by hass_cuda_set_stream (default: the legacy stream) and returns
// at once; hass_cuda_d2h/h2d wait for that stream.
#ifndef HASS_CUDA_H
#define HASS_CUDA_H

#include "hass.h"

#ifdef HASS_WITH_CUDA
// ---- device, memory, streams, graphs (kernels/device.cu) ---------------------------------------
hass_err hass_cuda_malloc(void **d, size_t n_bytes);
void hass_cuda_free(void *d);
hass_err hass_cuda_h2d(void *d, const void *h, size_t n_bytes);
hass_err hass_cuda_d2h(void *h, const void *d, size_t n_bytes);
hass_err hass_cuda_d2d(void *d_dst, const void *d_src, size_t n_bytes);
hass_err hass_cuda_sync(void);
// Copy n_rows rows of width_bytes between pitched buffers, host or device on either side
// (cudaMemcpyDefault); synchronous.
hass_err hass_cuda_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch,
                          size_t width_bytes, size_t n_rows);
// Device-to-device only: the same, queued without waiting.
hass_err hass_cuda_copy2d_d2d(void *d_dst, size_t dpitch, const void *d_src, size_t spitch,
                              size_t width_bytes, size_t n_rows);
// Host -> device from pageable (malloc) memory without waiting for the device: returns once h
// is staged, so it may be reused at once (CUDA's rule for pageable sources; not for pinned).
hass_err hass_cuda_h2d_staged(void *d, const void *h, size_t n_bytes);
hass_err hass_cuda_mem_info(size_t *free_bytes, size_t *total_bytes);
hass_err hass_cuda_device_name(char *buf, size_t n);
hass_err hass_cuda_cublas_create(void **handle);
void hass_cuda_cublas_destroy(void *handle);
hass_err hass_cuda_stream_create(void **stream);
void hass_cuda_stream_destroy(void *stream);
void hass_cuda_set_stream(void *stream);
void *hass_cuda_get_stream(void);
hass_err hass_cuda_stream_sync(void);
hass_err hass_cuda_graph_begin(void);
hass_err hass_cuda_graph_end(void **exec);
hass_err hass_cuda_graph_launch(void *exec);
void hass_cuda_graph_free(void *exec);

// ---- kernels: each has a CPU twin hass_cpu_<op> with the same parameters (libcore/engine/ops.h) -------
hass_err hass_cuda_rmsnorm(float *d_y, const float *d_x, const float *d_w, int n_rows, int dim,
                           float eps);
hass_err hass_cuda_embed(float *d_y, const uint16_t *d_table, const int32_t *d_tok, int n_tok,
                         int n_vocab, int dim);
hass_err hass_cuda_rope(float *d_x, const int32_t *d_pos, int n_tok, int row_stride, int n_head,
                        int head_dim, float theta, int layout);
hass_err hass_cuda_attention(float *d_out, const float *d_q, const float *d_k_cache,
                             const float *d_v_cache, const uint8_t *d_mask, int n_past, int n,
                             int q_stride, int n_head, int n_kv_head, int head_dim);
hass_err hass_cuda_swiglu(float *d_y, const float *d_gu, int n_tok, int n_ff);
hass_err hass_cuda_add(float *d_y, const float *d_x, size_t n);
// y = bf16(x) W^T + beta*y; d_xb: scratch of n*in bf16 values for the rounded x.
hass_err hass_cuda_matmul(void *cublas, float *d_y, const float *d_x, const uint16_t *d_w,
                          uint16_t *d_xb, int n, int in, int out, float beta);
// Same with x already bf16; path 0 auto, 1 cuBLAS, 2 the GEMV kernel (n <= 8, in % 8 == 0).
hass_err hass_cuda_matmul_bf16(void *cublas, float *d_y, const uint16_t *d_xb,
                               const uint16_t *d_w, int n, int in, int out, float beta, int path);
// Largest n for which path 0 picks the GEMV kernel (default 4; 0 = always cuBLAS).
void hass_cuda_matmul_set_gemv_max(int n);
// Batch-invariant mode (on by default; HASS_CUDA_INVARIANT=0 turns it off in the backend): every
// row of a matmul gets the GEMV kernel's arithmetic whatever the block size, and the LLaMA stack
// uses hass_cuda_attention_rows, so verifying a tree gives the bits of decoding its tokens one
// by one. Off: cuBLAS and the chunked attention kernel for large blocks (faster, not invariant).
void hass_cuda_set_batch_invariant(int on);
int hass_cuda_batch_invariant(void);
hass_err hass_cuda_argmax(int32_t *d_idx, const float *d_x, int n_rows, int n_col);
hass_err hass_cuda_topk(int32_t *d_idx, float *d_val, const float *d_x, int n_rows, int n_col,
                        int k);
hass_err hass_cuda_log_softmax(float *d_y, const float *d_x, int n_rows, int n_col);
hass_err hass_cuda_sample(int32_t *d_tok, const float *d_logits, const float *d_u, int n_rows,
                          int n_col, float temp, int top_k, float top_p);
hass_err hass_cuda_accept_greedy(int32_t *d_path, int32_t *d_n_path, const int32_t *d_tokens,
                                 const int32_t *d_parent, const int32_t *d_target, int n);
// d_out: (3) the path length, the bonus token, the number of uniforms used; d_u: n + 1
// uniforms; d_probs: V floats of scratch.
hass_err hass_cuda_accept_sample(int32_t *d_path, int32_t *d_out, const int32_t *d_tokens,
                                 const int32_t *d_parent, const float *d_logits, const double *d_u,
                                 int n, int V, float temp, int top_k, float top_p, float *d_probs);
hass_err hass_cuda_kv_compact(float *d_k_cache, float *d_v_cache, const int32_t *d_idx,
                              int n_keep, int L0, int n_layer, size_t layer_stride, int kv_dim);
// One query over *d_n_past + 1 keys (twin: hass_cpu_attention with n = 1, causal): the
// position is read on the device, the split count is fixed (by the caller, from the cache
// capacity max_keys), so a captured graph replays at any position. head_dim <= 128.
// d_part: n_split * n_head * (head_dim + 2) floats of scratch.
hass_err hass_cuda_attention_decode(float *d_out, const float *d_q, const float *d_k_cache,
                                    const float *d_v_cache, const int32_t *d_n_past, int max_keys,
                                    int n_head, int n_kv_head, int head_dim, float *d_part,
                                    int n_split);
// n queries (rows of d_q, stride q_stride) after n_past committed entries with block mask d_mask
// (n, n) or NULL (causal); twin: hass_cpu_attention. Batch-invariant: each query runs the decode
// step's arithmetic over its own visible keys in order (committed, then the block entries its
// mask row allows), splits of ceil(max_keys / n_split) ordinals, so a tree's rows get the bits
// of the same tokens decoded alone (hass_cuda_attention_decode with the same max_keys and
// n_split). d_part: hass_cuda_attention_rows_part(n_split, n, n_head, head_dim) floats.
hass_err hass_cuda_attention_rows(float *d_out, const float *d_q, const float *d_k_cache,
                                  const float *d_v_cache, const uint8_t *d_mask, int n_past, int n,
                                  int q_stride, int max_keys, int n_head, int n_kv_head,
                                  int head_dim, float *d_part, int n_split);
// Floats of split scratch hass_cuda_attention_rows needs for a block of n queries.
size_t hass_cuda_attention_rows_part(int n_split, int n, int n_head, int head_dim);
// K/V parts of n qkv rows to cache rows *d_n_past + r (twin: hass_cpu_kv_store).
hass_err hass_cuda_kv_store(float *d_k_cache, float *d_v_cache, const float *d_qkv,
                            const int32_t *d_n_past, int n, int qkv_stride, int q_dim, int kv_dim);
// Helpers without a twin: float -> bf16 (hass_f32_to_bf16 per value) and deterministic noise
// fills offset + scale*uniform(-1, 1) (synthetic weights made on the device, never copied).
hass_err hass_cuda_to_bf16(uint16_t *d_y, const float *d_x, size_t n);
// Fused variants for the forward: the output also (or only) as bf16 for the next matmul.
hass_err hass_cuda_rmsnorm_bf16(float *d_y, uint16_t *d_yb, const float *d_x, const float *d_w,
                                int n_rows, int dim, float eps);
hass_err hass_cuda_swiglu_bf16(uint16_t *d_yb, const float *d_gu, int n_tok, int n_ff);
hass_err hass_cuda_fill_bf16(uint16_t *d_w, size_t n, uint32_t seed, float scale, float offset);
hass_err hass_cuda_fill_f32(float *d_w, size_t n, uint32_t seed, float scale, float offset);
#endif

// ---- a LLaMA layer stack on the GPU (kernels/llama.cu) ------------------------------------------
// Shapes and options of the stack.
typedef struct hass_cuda_llama_cfg {
    int n_layer, n_embd, n_head, n_kv_head, n_ff, n_vocab;
    int n_ctx;       // KV entries per layer
    int max_tok;     // most tokens per forward (tree size)
    int rope_layout; // HASS_ROPE_PAIRS or HASS_ROPE_HALF
    int tied;        // LM head = token embedding
    float rope_theta, norm_eps;
} hass_cuda_llama_cfg;

// Device pointers of one layer; matrices bf16 row-major (out, in).
typedef struct hass_cuda_layer {
    float *attn_norm;  // (n_embd)
    uint16_t *wqkv;    // (q_dim + 2*kv_dim, n_embd): Q rows, then K, then V
    uint16_t *wo;      // (n_embd, q_dim)
    float *ffn_norm;   // (n_embd)
    uint16_t *w_gu;    // (2*n_ff, n_embd): gate rows, then up rows
    uint16_t *w_down;  // (n_embd, n_ff)
} hass_cuda_layer;

// The stack: weights in one device arena, KV cache, scratch and the forward's inputs/outputs.
// q_dim = n_head*head_dim, kv_dim = n_kv_head*head_dim, head_dim = n_embd/n_head.
typedef struct hass_cuda_llama {
    hass_cuda_llama_cfg cfg;
    int head_dim, q_dim, kv_dim, qkv_dim;
    void *cublas;
    void *arena;              // device: weights + KV + scratch (a fork: KV + scratch only)
    int shares_weights;       // a fork (hass_cuda_llama_fork): the weights belong to another stack
    size_t weight_bytes;      // bytes of weights read by a forward (all but the embedding)
    uint16_t *tok_embd;       // (n_vocab, n_embd)
    uint16_t *lm_head;        // (n_vocab, n_embd), = tok_embd when tied
    float *out_norm;          // (n_embd)
    hass_cuda_layer *layers;  // host array of n_layer
    float *k_cache, *v_cache; // (n_layer, n_ctx, kv_dim)
    float *x, *h;             // (max_tok, n_embd): residual stream, normed input; h = features
    float *qkv;               // (max_tok, qkv_dim)
    float *att;               // (max_tok, q_dim)
    float *gu;                // (max_tok, 2*n_ff)
    float *ff;                // (max_tok, n_ff)
    uint16_t *xb;             // (max_tok, max(n_embd, q_dim, n_ff)) bf16 scratch
    float *logits;            // (max_tok, n_vocab)
    int32_t *tok, *pos;       // (max_tok) inputs
    uint8_t *mask;            // (max_tok, max_tok) input block mask
    int32_t *n_past;          // (1) device: the position hass_cuda_llama_decode reads
    float *dec_part;          // (dec_split, n_head, head_dim + 2) decode attention partials
    int dec_split;            // decode attention splits (from n_ctx, not the position)
} hass_cuda_llama;

#ifdef HASS_WITH_CUDA
// Device bytes a stack of this shape needs (weights + KV + scratch).
size_t hass_cuda_llama_bytes(const hass_cuda_llama_cfg *cfg);
// Allocate a stack (weights uninitialised) after checking free device memory: HASS_ENODEV
// without a device, HASS_ENOMEM when it does not fit (the message gives both sizes).
hass_cuda_llama *hass_cuda_llama_new(const hass_cuda_llama_cfg *cfg, hass_err *err);
// A stack over src's weights (shared: src must outlive it) with its own KV cache of n_ctx
// entries and scratch for forwards of up to max_tok tokens; HASS_ENOMEM (both sizes in GiB)
// when those do not fit. One uploaded model serves several sequences this way.
hass_cuda_llama *hass_cuda_llama_fork(const hass_cuda_llama *src, int n_ctx, int max_tok,
                                      hass_err *err);
// Fill every weight with deterministic noise on the device (synthetic model; norms near 1).
hass_err hass_cuda_llama_randomize(hass_cuda_llama *m, uint32_t seed);
// Copy the inputs of the next forward: n tokens, their positions, block mask (NULL: causal).
hass_err hass_cuda_llama_set_input(hass_cuda_llama *m, const int32_t *tok, const int32_t *pos,
                                   const uint8_t *mask, int n);
// Queue a forward of n tokens (inputs set before) after n_past committed KV entries: stores
// their K/V at [n_past, n_past+n), leaves features in m->h and logits in m->logits. use_mask:
// read m->mask (else causal). Capturable as a CUDA graph.
hass_err hass_cuda_llama_forward(hass_cuda_llama *m, int n_past, int n, int use_mask);
// Set the device n_past that hass_cuda_llama_decode reads (HASS_ERANGE when the cache is full).
hass_err hass_cuda_llama_set_past(hass_cuda_llama *m, int n_past);
// Queue a forward of one token (m->tok[0] at m->pos[0], set before) after *m->n_past committed
// entries, read on the device: the same result as hass_cuda_llama_forward(m, n_past, 1, 0) up to
// the attention's split order, and capturable ONCE as a graph that replays at any position
// (update m->n_past, m->tok, m->pos between launches).
hass_err hass_cuda_llama_decode(hass_cuda_llama *m);
void hass_cuda_llama_free(hass_cuda_llama *m);
// Upload a loaded model (libcore/engine/model.h) as a GPU stack (libcore/engine/cuda_model.c): weights
// dequantized to bf16 on the host; HASS_EUNSUP for q/k/v biases or RoPE scaling.
struct hass_model;
hass_cuda_llama *hass_cuda_llama_from_model(const struct hass_model *m, int n_ctx, int max_tok,
                                            hass_err *err);
#endif

#endif
