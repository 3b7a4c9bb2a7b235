// safetensors.h: bounds-checked reader and atomic writer for the safetensors format.
//
// Layout: u64 header_bytes (little-endian), a JSON object of header_bytes bytes
//   {"<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// then the data section; offsets are relative to its start. Shapes are row-major (PyTorch order:
// an nn.Linear weight is [out, in]). The reader maps the file and checks every tensor's size
// (product of the shape times the dtype size) and range against the file before use.
#ifndef HASS_SAFETENSORS_H
#define HASS_SAFETENSORS_H

#include "half.h" // hass_bf16_to_f32, hass_f32_to_bf16, hass_f16_to_f32, hass_f32_to_f16
#include "hass.h"

#define HASS_ST_MAX_DIMS 8

typedef enum hass_st_dtype {
    HASS_ST_F32, HASS_ST_F16, HASS_ST_BF16, HASS_ST_F64,
    HASS_ST_I64, HASS_ST_I32, HASS_ST_I16, HASS_ST_I8, HASS_ST_U8, HASS_ST_BOOL,
} hass_st_dtype;

typedef struct hass_st_tensor {
    const char *name;               // borrowed
    hass_st_dtype dtype;            // element type
    int n_dims;                     // 0..8 (0 = scalar)
    int64_t shape[HASS_ST_MAX_DIMS];// row-major dims
    const void *data;               // into the map (reader) or the caller's buffer (writer)
    uint64_t n_bytes;               // product(shape) * dtype size
} hass_st_tensor;

typedef struct hass_st hass_st;

// Open and validate a safetensors file; NULL with *err set (message names file and tensor).
hass_st *hass_st_open(const char *path, hass_err *err);
// Unmap and free; NULL is a no-op.
void hass_st_free(hass_st *st);
const char *hass_st_path(const hass_st *st);
int64_t hass_st_n_tensors(const hass_st *st);
// Tensor i in file order of the header (borrowed).
const hass_st_tensor *hass_st_tensor_at(const hass_st *st, int64_t i);
// Tensor by name, or NULL.
const hass_st_tensor *hass_st_find(const hass_st *st, const char *name);
// Value of a "__metadata__" key, or NULL (borrowed).
const char *hass_st_meta(const hass_st *st, const char *key);
// Number of metadata entries and entry i (borrowed key and value).
int64_t hass_st_n_meta(const hass_st *st);
void hass_st_meta_at(const hass_st *st, int64_t i, const char **key, const char **value);

// Bytes per element of a dtype.
int hass_st_dtype_size(hass_st_dtype t);
// "F32", "BF16", ...
const char *hass_st_dtype_name(hass_st_dtype t);

// Write tensors (data read from each tensor's .data, n_bytes checked against the shape) and
// metadata (meta: alternating key, value strings ending with NULL; may be NULL) to path
// atomically: a temporary file in the same folder, fsync, rename. On any failure (disk full
// included) the old file at path is left intact and the temporary file is removed.
hass_err hass_st_write(const char *path, const hass_st_tensor *tensors, int n_tensors,
                       const char *const *meta);

#endif
