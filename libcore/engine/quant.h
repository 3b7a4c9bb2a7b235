// quant.h: internal to libcore: weight-block formats, fp16/bf16 conversion, 8-bit activation
// quantization (cpu_quant.c) and the CPU matmul kernels behind hass_matmul (cpu_matmul.c: the
// dispatch and the threads; what its files share: matmul_int.h).
//
// Block formats (ggml's, little-endian): Q4_0 {f16 d; u8 qs[16]} value (nibble - 8) * d;
// Q4_1 {f16 d; f16 m; u8 qs[16]} value nibble * d + m; Q8_0 {f16 d; i8 qs[32]} value q * d.
// In Q4 blocks byte k holds element k (low nibble) and element k + 16 (high nibble).
//
// By default (HASS_PREC_Q8) activations for quantized weights are quantized per row in blocks
// of 32 exactly like llama.cpp's Q8_0/Q8_1: q = round(x / d), d = max|x| / 127, with the
// block's d and s = d * sum(q) rounded to fp16 (kept as floats). The Q4_1 kernels use that s for
// the m term (as llama.cpp does); Q4_0 and Q8_0 corrections use d * sum(q) exactly. A quantized row (hass_quant_qrow_bytes) also holds
// the scales laid out for the AVX-512 kernel (matmul_int.h, qrow_layout). In HASS_PREC_F32 mode
// (hass_model_set_precision) the weights are dequantized to f32 inside the kernels instead and
// the activations are used as they are (llama.cpp's path for F32 weights).
#ifndef HASS_QUANT_H
#define HASS_QUANT_H

#include "gguf.h"
#include "model.h"
#include "pool.h"
#include "safetensors.h" // hass_f16_to_f32, hass_f32_to_f16, hass_bf16_to_f32

// x rounded to the nearest fp16 value (as a float).
float hass_f16_round(float x);
// Whether a ggml type is one hass_matmul handles (F32, F16, BF16, Q8_0, Q4_0, Q4_1).
int hass_quant_supported(int type);
// Whether the type's matmul quantizes activations to 8 bits.
int hass_quant_is_q(int type);
// Dequantize row r of w into out (w->n_in floats).
void hass_quant_row(const hass_wmat *w, int r, float *out); // (n_in)
// Bytes of one quantized activation row of n_in values.
size_t hass_quant_qrow_bytes(int n_in);
// The block scales d (nb floats) of a quantized activation row.
const float *hass_quant_qrow_d(const void *q, int n_in);
// The llama.cpp-style s = fp16(d * sum(q)) (nb floats) of a quantized activation row.
const float *hass_quant_qrow_s(const void *q, int n_in);
// The exact se = d * sum(q) (nb floats) of a quantized activation row.
const float *hass_quant_qrow_se(const void *q, int n_in);
// Quantize n rows of x (n, n_in) into q (n rows of hass_quant_qrow_bytes(n_in)), every part of
// the layout, with the quantizer of the kernel path in use (the bytes are the same on every path).
void hass_quant_rows(const float *x, int n, int n_in, void *q);

// A copy of a Q4_0/Q4_1/Q8_0 matrix in the packed layout of the AVX-512 kernel (matmul_int.h),
// to store in w->pk; the caller frees it. NULL for other types or out of memory.
// Whether hass_quant_pack packs w: Q4_0, Q4_1, Q8_0, Q5_0, Q4_K or Q6_K of whole blocks.
int hass_quant_packable(const hass_wmat *w);
void *hass_quant_pack(const hass_wmat *w);
// Same, packed by the threads of pool (NULL: the caller alone).
void *hass_quant_pack_on(const hass_wmat *w, hass_pool *pool);

// Force a kernel path for tests and benchmarks: 0 portable C, 1 AVX2, 2 AVX-512 (capped at what
// the CPU has, HASS_KERNELS still applies); returns the path now in use.
int hass_kernel_set_path(int p);
// The path in use (0 portable C, 1 AVX2, 2 AVX-512): the engine's and the trainer's kernels
// follow the same choice.
int hass_kernel_level(void);

// One output of a multi-matmul: y (n, w->n_out) = x W^T.
typedef struct hass_mm_job {
    const hass_wmat *w;
    float *y; // (n, w->n_out)
} hass_mm_job;
// Run several matmuls that share the input x (n, n_in) in one parallel region; all weights must
// have the same n_in and agree on hass_quant_is_q. q: scratch of hass_matmul_scratch_bytes.
// pool: the thread team (NULL: the caller alone).
void hass_mm_run(const hass_mm_job *jobs, int n_jobs, const float *x, int n, void *q,
                 hass_pool *pool);
// Same with an activation precision (hass_precision): HASS_PREC_F32 multiplies quantized
// weights, dequantized block by block inside the kernel, with the f32 rows of x as they are (q
// unused); the jobs must still agree on hass_quant_is_q (it picks the row-group size).
void hass_mm_run_prec(const hass_mm_job *jobs, int n_jobs, const float *x, int n, void *q,
                      hass_pool *pool, int prec);

#endif
