// backend.c: device selection and the backend wrappers (the table of backend.h); the backends
// themselves are cpu_backend.c and cuda_backend.c.
#include "backend.h"
#ifdef HASS_WITH_CUDA
#include "gpu.h"
#endif

#include <stdlib.h>
#include <string.h>


// Parse a --device value.
hass_err hass_device_parse(const char *s, hass_device *dev) {
    if (!strcmp(s, "auto")) *dev = HASS_DEVICE_AUTO;
    else if (!strcmp(s, "cpu")) *dev = HASS_DEVICE_CPU;
    else if (!strcmp(s, "cuda")) *dev = HASS_DEVICE_CUDA;
    else return hass_seterr(HASS_EINVAL, "device '%s': expected cuda, cpu or auto", s);
    return HASS_OK;
}

// Name of a device.
const char *hass_device_name(hass_device dev) {
    switch (dev) {
    case HASS_DEVICE_CPU: return "cpu";
    case HASS_DEVICE_CUDA: return "cuda";
    default: return "auto";
    }
}

// Resolve auto and check that cuda is usable.
hass_err hass_device_resolve(hass_device want, hass_device *got) {
#ifdef HASS_WITH_CUDA
    int n_dev = hass_cuda_device_count();
    if (want == HASS_DEVICE_AUTO) want = n_dev > 0 ? HASS_DEVICE_CUDA : HASS_DEVICE_CPU;
    if (want == HASS_DEVICE_CUDA && n_dev == 0)
        return hass_seterr(HASS_ENODEV, "--device cuda: no CUDA device is present (driver or GPU "
                                        "missing); use --device cpu");
#else
    if (want == HASS_DEVICE_AUTO) want = HASS_DEVICE_CPU;
    if (want == HASS_DEVICE_CUDA)
        return hass_seterr(HASS_ENODEV, "--device cuda: this is a CPU-only build (%s); use "
                                        "--device cpu or rebuild with nvcc",
                           hass_build_config());
#endif
    *got = want;
    return HASS_OK;
}

// ---- wrappers ----------------------------------------------------------------------------------

// A backend on the requested device.
hass_backend *hass_backend_new(hass_model *m, hass_device dev, hass_err *err) {
    hass_device got;
    hass_err e = hass_device_resolve(dev, &got);
    if (e) {
        *err = e;
        return NULL;
    }
    hass_backend *b = NULL;
#ifdef HASS_WITH_CUDA
    if (got == HASS_DEVICE_CUDA) b = hass_backend_cuda(m, err);
    else
#endif
        b = hass_backend_cpu(m, err);
    if (b) HASS_INFO("device: %s%s", b->ops->name, dev == HASS_DEVICE_AUTO ? " (auto)" : "");
    return b;
}

// The GPU's name, or "".
void hass_backend_device_label(const hass_backend *b, char *buf, size_t n) {
    if (n) buf[0] = 0;
#ifdef HASS_WITH_CUDA
    if (b->dev == HASS_DEVICE_CUDA && n && hass_cuda_device_name(buf, n)) buf[0] = 0;
#endif
}

// Free a backend.
void hass_backend_free(hass_backend *b) {
    if (b) b->ops->free(b);
}

// LM head through the table.
hass_err hass_backend_lm_head(hass_backend *b, const float *x, int n, float *logits) {
    return b->ops->lm_head(b, x, n, logits);
}

// A sequence through the table.
hass_seq *hass_seq_new(hass_backend *b, int n_ctx, int max_tok, hass_err *err) {
    return b->ops->seq_new(b, n_ctx, max_tok, err);
}

// Free a sequence.
void hass_seq_free(hass_seq *s) {
    if (s) s->b->ops->seq_free(s);
}

// Entries in the cache.
int hass_seq_len(const hass_seq *s) { return s->b->ops->seq_len(s); }

// Capacity.
int hass_seq_capacity(const hass_seq *s) { return s->n_ctx; }

// Truncate.
void hass_seq_truncate(hass_seq *s, int n) { s->b->ops->seq_truncate(s, n); }

// Commit an accepted path.
hass_err hass_seq_commit(hass_seq *s, const int *idx, int n_keep) {
    return s->b->ops->seq_commit(s, idx, n_keep);
}

// Reserve block rows.
hass_err hass_seq_reserve(hass_seq *s, int n) { return s->b->ops->seq_reserve(s, n); }

// Forward with logits of every row.
hass_err hass_seq_forward(hass_seq *s, const int32_t *tok, const int32_t *pos, int n,
                          const uint8_t *mask, float *logits, float *feats) {
    return s->b->ops->forward(s, tok, pos, n, mask, NULL, n, logits, feats);
}

// Forward with logits of chosen rows.
hass_err hass_seq_forward_rows(hass_seq *s, const int32_t *tok, const int32_t *pos, int n,
                               const uint8_t *mask, const int *rows, int n_rows, float *logits,
                               float *feats) {
    return s->b->ops->forward(s, tok, pos, n, mask, rows, n_rows, logits, feats);
}
