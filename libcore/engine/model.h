// model.h: the target model's configuration and weights (LLaMA family), loaded from a GGUF file
// (v1/v2/v3; F32, F16, BF16, Q8_0, Q4_0, Q4_1) or a Hugging Face directory (config.json +
// model.safetensors, or shards listed in model.safetensors.index.json; F32/F16/BF16).
//
// Weights are mmapped and never copied: quantized tensors stay quantized and are dequantized
// inside the matmul (hass_matmul). Every tensor's shape is checked against the config and its
// byte range against the file before use; errors name the file and the tensor.
//
// Dimension names used in shape comments: n_vocab (V), n_embd (C), n_head (H), n_head_kv (Hkv),
// head_dim (D), n_ff (F), n rows of a block (N).
//
// RoPE layout (hass_rope_mode): GGUF files written by llama.cpp's converters store Q/K rows of
// HF checkpoints permuted so that RoPE rotates ADJACENT pairs (2i, 2i+1) of each head; files
// converted from Meta's original .pth (stories260K, "Meta AI original pth") were never permuted
// because Meta's RoPE already rotates adjacent pairs. So every GGUF "llama" file uses
// HASS_ROPE_PAIRS (this reproduces the documented stories260K greedy text and llama.cpp's
// logits). HF safetensors directories store the un-permuted weights and use the rotate-half
// layout (i, i + D/2): HASS_ROPE_HALF. Qwen2 uses rotate-half in both formats (llama.cpp NEOX).
#ifndef HASS_MODEL_H
#define HASS_MODEL_H

#include "hass.h"
#include "ops.h" // hass_rope_mode: HASS_ROPE_PAIRS, HASS_ROPE_HALF


typedef enum hass_arch {
    HASS_ARCH_LLAMA = 0, // LLaMA-2/3, SmolLM2, TinyLlama, stories
    HASS_ARCH_QWEN2 = 1, // LLaMA + q/k/v bias
} hass_arch;

// Hyper-parameters of a loaded model.
typedef struct hass_model_cfg {
    int arch;          // hass_arch
    int n_vocab;       // V
    int n_embd;        // C
    int n_layer;       // number of decoder layers
    int n_head;        // H query heads
    int n_head_kv;     // Hkv key/value heads (GQA: query head h uses kv head h / (H / Hkv))
    int head_dim;      // D (C / H unless the file says otherwise)
    int n_ff;          // F, the SwiGLU hidden width
    int n_ctx_train;   // context length the model was trained with
    float rope_theta;  // RoPE base (10000 when the file does not say)
    float norm_eps;    // RMSNorm epsilon
    int rope_mode;     // hass_rope_mode
    int tied;          // 1: the LM head is the token embedding
    int qkv_bias;      // 1: q/k/v projections have biases (Qwen2)
    // LLaMA-3 RoPE scaling ("rope_type": "llama3"); rope_scaling 0 = none.
    int rope_scaling;        // 0 none, 1 llama3
    float rope_factor;       // e.g. 8
    float rope_low_freq;     // low_freq_factor, e.g. 1
    float rope_high_freq;    // high_freq_factor, e.g. 4
    int rope_orig_ctx;       // original_max_position_embeddings, e.g. 8192
    int bos_id, eos_id;      // -1 when unknown
} hass_model_cfg;

// A weight matrix as stored (borrowed view into the mapped file): n_out rows of n_in values of
// `type` (hass_ggml_type: F32, F16, BF16, Q8_0, Q4_0 or Q4_1), row r at data + r * row_bytes.
// Same layout as a PyTorch nn.Linear weight [out, in]: y[r] = sum_j W[r, j] x[j].
typedef struct hass_wmat {
    int type;          // hass_ggml_type
    int n_in;          // contiguous length of a row (multiple of 32 for quantized types)
    int n_out;         // number of rows
    size_t row_bytes;  // bytes per row
    const void *data;  // (n_out, n_in) in `type`
    // Optional copy of a Q4_0/Q4_1/Q8_0 matrix in the block-interleaved layout of the AVX-512
    // kernel (hass_quant_pack); NULL: the kernels read `data`. Must describe the same rows.
    const void *pk;
} hass_wmat;

typedef struct hass_model hass_model;

// Arithmetic precision of the CPU engine (hass_model_set_precision).
typedef enum hass_precision {
    // Default, llama.cpp's default CPU path: activations entering a Q4_0/Q4_1/Q8_0 matmul are
    // rounded to 8 bits per 32-block (integer dot products), and the KV cache, the attention
    // queries and the attention probabilities hold fp16 values.
    HASS_PREC_Q8 = 0,
    // f32 activations: quantized weights are dequantized to f32 inside the matmul and multiplied
    // with the activations as they are; f32 KV cache, queries and probabilities. Slower (about
    // 1.1-1.4x on SmolLM2, docs/PERF.md); reproduces llama.cpp on the same weights stored as
    // F32 (logits within 1e-4, the same greedy paths).
    HASS_PREC_F32 = 1,
} hass_precision;

// Load a model: a GGUF file, or a directory holding config.json and safetensors. n_threads is
// the thread count of every kernel (<= 0: all cores). NULL with *err set on failure.
hass_model *hass_model_load(const char *path, int n_threads, hass_err *err);
// Unmap and free; NULL is a no-op.
void hass_model_free(hass_model *m);
// The configuration (borrowed).
const hass_model_cfg *hass_model_config(const hass_model *m);
// The path the model was loaded from (borrowed).
const char *hass_model_path(const hass_model *m);
// A 32-bit fingerprint of the weights' identity (config, tensor names/types/shapes and a sample
// of the LM-head and embedding bytes): draft heads record it to refuse another target.
uint32_t hass_model_fingerprint(const hass_model *m);
// What one token's forward reads and multiplies in the weight matrices (the layers' and the LM
// head's; the roofline of a decode step): *bytes as stored, *macs multiply-adds.
void hass_model_weight_cost(const hass_model *m, uint64_t *bytes, uint64_t *macs);
// Threads used by the kernels.
int hass_model_threads(const hass_model *m);
// Change the thread count (<= 0: all cores).
void hass_model_set_threads(hass_model *m, int n_threads);
// Set the precision (hass_precision) of every later forward pass and matmul on this model.
// Caches filled under another precision hold other values: truncate them (hass_kv_truncate(kv,
// 0)) after a change. HASS_EINVAL for an unknown value.
hass_err hass_model_set_precision(hass_model *m, int prec);
// The precision in use (HASS_PREC_Q8 after loading).
int hass_model_precision(const hass_model *m);

// Embedding rows of n tokens: out (n, C). HASS_ERANGE for an id outside [0, V).
hass_err hass_model_embed(const hass_model *m, const int32_t *tok, int n,
                          float *out); // (n, C)
// LM head on n feature rows (post final norm): logits (n, V).
hass_err hass_model_lm_head(const hass_model *m, const float *x, // (n, C)
                            int n, float *logits);              // (n, V)
// The LM-head weight (the embedding when tied), e.g. for a draft head's own kernels.
const hass_wmat *hass_model_lm_head_w(const hass_model *m);
// The token-embedding weight.
const hass_wmat *hass_model_embed_w(const hass_model *m);

// y = x W^T for n rows with the model's kernels and threads: y (n, w->n_out), x (n, w->n_in).
// Batch-invariant: row i of y is bit-identical for any n and any thread count. Rows of x are
// quantized to 8 bits per 32-block first when W is Q4_0/Q4_1/Q8_0 (as llama.cpp does) unless the
// model's precision is HASS_PREC_F32; scratch `q` must hold hass_matmul_scratch_bytes(w->n_in,
// n) bytes (NULL: allocated per call when needed).
hass_err hass_matmul(const hass_model *m, float *y,         // (n, n_out)
                     const float *x,                         // (n, n_in)
                     int n, const hass_wmat *w, void *q);
// Same for two or three weights that share the input x (q/k/v, gate/up): x is quantized once
// and the products run in one parallel region, with the same bits as separate calls. The
// weights must have the same n_in and all be quantized types or all not; y[i] (n, w[i]->n_out).
hass_err hass_matmul_shared(const hass_model *m, float *const *y, const float *x, int n,
                            const hass_wmat *const *w, int n_w, void *q);
// Scratch bytes hass_matmul needs for n rows of n_in values.
size_t hass_matmul_scratch_bytes(int n_in, int n);

// Kernel path in use: "avx512", "avx2" or "c" (HASS_KERNELS=c|avx2|avx512 in the environment
// forces a lower one, for tests and benchmarks).
const char *hass_kernel_path(void);

#endif
