// gguf.h: bounds-checked reader for GGUF files (v1, v2, v3): header, metadata, tensor table.
//
// The file is mmapped read-only. Every count, length and offset is checked against the bytes
// left and against hard limits before anything is allocated or read, so a truncated or hostile
// file gives HASS_EFORMAT with a message naming the file and the field, never a crash.
// Layout (all little-endian): "GGUF" u32 version, n_tensors, n_kv (u32 in v1, u64 in v2+),
// kv pairs, tensor infos, padding to the alignment, tensor data.
#ifndef HASS_GGUF_H
#define HASS_GGUF_H

#include "hass.h"

typedef enum hass_gguf_vtype {
    HASS_GGUF_U8 = 0, HASS_GGUF_I8 = 1, HASS_GGUF_U16 = 2, HASS_GGUF_I16 = 3,
    HASS_GGUF_U32 = 4, HASS_GGUF_I32 = 5, HASS_GGUF_F32 = 6, HASS_GGUF_BOOL = 7,
    HASS_GGUF_STR = 8, HASS_GGUF_ARR = 9, HASS_GGUF_U64 = 10, HASS_GGUF_I64 = 11,
    HASS_GGUF_F64 = 12,
} hass_gguf_vtype;

// ggml tensor types that the reader knows the size of.
typedef enum hass_ggml_type {
    HASS_GGML_F32 = 0, HASS_GGML_F16 = 1, HASS_GGML_Q4_0 = 2, HASS_GGML_Q4_1 = 3,
    HASS_GGML_Q5_0 = 6, HASS_GGML_Q5_1 = 7, HASS_GGML_Q8_0 = 8, HASS_GGML_Q8_1 = 9,
    HASS_GGML_Q2_K = 10, HASS_GGML_Q3_K = 11, HASS_GGML_Q4_K = 12, HASS_GGML_Q5_K = 13,
    HASS_GGML_Q6_K = 14, HASS_GGML_Q8_K = 15, HASS_GGML_I8 = 24, HASS_GGML_I16 = 25,
    HASS_GGML_I32 = 26, HASS_GGML_I64 = 27, HASS_GGML_F64 = 28, HASS_GGML_BF16 = 30,
} hass_ggml_type;

#define HASS_GGUF_MAX_DIMS 4

// One metadata key/value; scalar values are decoded, strings and arrays point into the map.
typedef struct hass_gguf_kv {
    const char *key;      // borrowed, NUL-terminated copy owned by the reader
    hass_gguf_vtype type; // value type
    hass_gguf_vtype atype;// element type when type == ARR
    uint64_t n;           // array length (1 for scalars), string length for STR
    const uint8_t *data;  // scalar bytes, string bytes, or the first array element
    uint64_t *str_off;    // for arrays of strings: n offsets of each (len, bytes) from data
    int len_bytes;        // width of a string length field: 4 in v1, 8 later
} hass_gguf_kv;

// One tensor of the table.
typedef struct hass_gguf_tensor {
    const char *name;            // borrowed
    uint32_t n_dims;             // 1..4
    int64_t ne[HASS_GGUF_MAX_DIMS]; // ne[0] is contiguous; unused dims are 1
    hass_ggml_type type;         // ggml type
    uint64_t offset;             // from the start of the data section
    uint64_t n_bytes;            // size of the data
    const void *data;            // into the map
} hass_gguf_tensor;

typedef struct hass_gguf hass_gguf;

// Open and validate a GGUF file; NULL with *err set (message names the file) on failure.
hass_gguf *hass_gguf_open(const char *path, hass_err *err);
// Unmap and free; NULL is a no-op.
void hass_gguf_free(hass_gguf *g);

uint32_t hass_gguf_version(const hass_gguf *g);
const char *hass_gguf_path(const hass_gguf *g);
// Let the memory of bytes [p, p + n) go when they lie in g's map (hass_file_map_drop; a no-op
// otherwise): for tensor data the caller has copied in another layout.
void hass_gguf_drop(const hass_gguf *g, const void *p, uint64_t n);
uint64_t hass_gguf_file_bytes(const hass_gguf *g);
uint64_t hass_gguf_alignment(const hass_gguf *g);
int64_t hass_gguf_n_kv(const hass_gguf *g);
const hass_gguf_kv *hass_gguf_kv_at(const hass_gguf *g, int64_t i);
// Metadata entry by key, or NULL.
const hass_gguf_kv *hass_gguf_find(const hass_gguf *g, const char *key);
int64_t hass_gguf_n_tensors(const hass_gguf *g);
const hass_gguf_tensor *hass_gguf_tensor_at(const hass_gguf *g, int64_t i);
// Tensor by name, or NULL.
const hass_gguf_tensor *hass_gguf_find_tensor(const hass_gguf *g, const char *name);

// Typed getters: HASS_OK, or HASS_EFORMAT when the key is missing / has another type.
// Integer getters accept any integer type whose value fits.
hass_err hass_gguf_get_i64(const hass_gguf *g, const char *key, int64_t *out);
hass_err hass_gguf_get_f32(const hass_gguf *g, const char *key, float *out);
hass_err hass_gguf_get_bool(const hass_gguf *g, const char *key, int *out);
// String value (not NUL-terminated) and its length.
hass_err hass_gguf_get_str(const hass_gguf *g, const char *key, const char **s, uint64_t *len);
// Element i of a string array (not NUL-terminated).
const char *hass_gguf_arr_str(const hass_gguf_kv *kv, uint64_t i, uint64_t *len);
// Element i of a numeric array converted to double.
double hass_gguf_arr_num(const hass_gguf_kv *kv, uint64_t i);

// Name of a ggml type ("Q4_1"), "?" if unknown.
const char *hass_ggml_type_name(int type);
// Bytes of a row of n elements of a type; 0 if unknown or n is not a multiple of the block.
uint64_t hass_ggml_row_bytes(int type, int64_t n);
// Name of a value type ("u32").
const char *hass_gguf_vtype_name(int t);

// Write the header, metadata (arrays abbreviated) and tensor table as text (hass-verify --inspect).
void hass_gguf_print(const hass_gguf *g, FILE *out, int full_arrays);
// Same as one JSON object per line: {"type":"gguf",...}, {"type":"kv",...}, {"type":"tensor",...}.
void hass_gguf_print_json(const hass_gguf *g, FILE *out);

#endif
