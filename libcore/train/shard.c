// shard.c: feature shards (see shard.h): mmapped bounds-checked reader, atomic writer, the
// target fingerprint and the target's frozen matrices as f32.
#include "shard.h"
#include "train_ops.h"
#include "mapfile.h"

#include "quant.h"
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define HDR_BYTES 64

struct hass_shard {
    char *path;
    const uint8_t *map; // whole file
    size_t n_bytes;
    int dtype, n_embd, n_vocab;
    uint32_t fp;
    int64_t n_seq, n_tok;
    uint64_t *off; // (n_seq) offset of each record header
};

struct hass_shard_writer {
    char *path, *tmp;
    FILE *f;
    int dtype, n_embd, n_vocab;
    uint32_t fp;
    int64_t n_seq, n_tok;
    uint8_t *buf; // payload scratch
    size_t cap;
};

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v), wr32(p + 4, (uint32_t)(v >> 32)); }

// Payload bytes of a record of n positions.
static uint64_t payload_bytes(uint64_t n, int n_embd) {
    return n * 4 + ((n + 3) & ~(uint64_t)3) + n * (uint64_t)n_embd * 2;
}

// crc32 over a large buffer, continuing from c (zlib takes uInt lengths).
static uint32_t crc_more(uLong c, const uint8_t *p, uint64_t n) {
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k, n -= k;
    }
    return (uint32_t)c;
}

// crc32 of a buffer.
static uint32_t crc_buf(const uint8_t *p, uint64_t n) { return crc_more(crc32(0L, Z_NULL, 0), p, n); }

// ---- reader ----------------------------------------------------------------------------------

// Free a reader.
void hass_shard_free(hass_shard *s) {
    if (!s) return;
    hass_file_unmap(s->map, s->n_bytes);
    free(s->off);
    free(s->path);
    free(s);
}

// Walk the n_seq records after the header (hb bytes) as records of width H and check they end
// at the end of the file with n_tok positions in all; off (n_seq or NULL) gets their offsets.
static hass_err walk(const hass_shard *s, uint64_t hb, int H, uint64_t n_tok, uint64_t *off) {
    uint64_t at = hb, tot = 0;
    for (int64_t i = 0; i < s->n_seq; i++) {
        if (s->n_bytes - at < 8)
            return hass_seterr(HASS_EFORMAT, "%s: record %lld: truncated header at byte %llu", s->path,
                               (long long)i, (unsigned long long)at);
        uint32_t n = rd32(s->map + at);
        uint64_t pb = payload_bytes(n, H);
        if (n < 1 || n > HASS_SHARD_MAX_LEN || pb > s->n_bytes - at - 8)
            return hass_seterr(HASS_EFORMAT, "%s: record %lld: %u positions, %llu bytes left (truncated "
                               "or corrupt)", s->path, (long long)i, n,
                               (unsigned long long)(s->n_bytes - at - 8));
        if (off) off[i] = at;
        at += 8 + pb;
        tot += n;
    }
    if (at != s->n_bytes || tot != n_tok)
        return hass_seterr(HASS_EFORMAT, "%s: %llu trailing bytes, %llu positions (header says %llu)",
                           s->path, (unsigned long long)(s->n_bytes - at), (unsigned long long)tot,
                           (unsigned long long)n_tok);
    return HASS_OK;
}

// The record width other than the header's n_embd that the records fit exactly, or 0. The data
// bytes are 8 n_seq + 4 n_tok + padding (n_tok .. n_tok + 3 n_seq) + 2 n_tok H, so at most a few
// widths are candidates; each is walked.
static int other_width(const hass_shard *s, uint64_t hb, uint64_t n_tok) {
    uint64_t n_seq = (uint64_t)s->n_seq, fixed = 8 * n_seq + 5 * n_tok;
    if (n_tok < n_seq || n_tok > s->n_bytes || s->n_bytes - hb < fixed) return 0;
    uint64_t rest = s->n_bytes - hb - fixed; // 2 n_tok H + up to 3 n_seq
    uint64_t lo = rest > 3 * n_seq ? (rest - 3 * n_seq) / (2 * n_tok) : 0, hi = rest / (2 * n_tok);
    for (uint64_t w = lo < 1 ? 1 : lo; w <= hi && w <= 65536; w++)
        if ((int)w != s->n_embd && !walk(s, hb, (int)w, n_tok, NULL)) return (int)w;
    return 0;
}

// Open, check header and record bounds, index the records.
hass_shard *hass_shard_open(const char *path, uint32_t want_fp, hass_err *err) {
    hass_err e = HASS_OK;
    hass_shard *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        e = hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    uint64_t size;
    if ((e = hass_file_map(path, &s->map, &size))) goto fail_s;
    s->n_bytes = (size_t)size;
    if (s->n_bytes < HDR_BYTES) {
        e = hass_seterr(HASS_EFORMAT, "%s: %zu bytes, too short for a feature shard header", path, s->n_bytes);
        goto fail_s;
    }
    const uint8_t *h = s->map;
    if (memcmp(h, "HASSFEAT", 8)) {
        e = hass_seterr(HASS_EFORMAT, "%s: not a feature shard (magic is not HASSFEAT)", path);
        goto fail_s;
    }
    if (rd32(h + 8) != HASS_SHARD_VERSION) {
        e = hass_seterr(HASS_EVERSION, "%s: shard version %u, this build reads %d", path, rd32(h + 8),
                        HASS_SHARD_VERSION);
        goto fail_s;
    }
    if (rd32(h + 60) != crc_buf(h, 60)) {
        e = hass_seterr(HASS_EFORMAT, "%s: header CRC mismatch (corrupt shard)", path);
        goto fail_s;
    }
    uint32_t hb = rd32(h + 12);
    s->dtype = (int)rd32(h + 16);
    s->n_embd = (int)rd32(h + 20);
    s->n_vocab = (int)rd32(h + 24);
    s->fp = rd32(h + 28);
    uint64_t n_seq = rd64(h + 32), n_tok = rd64(h + 40);
    if (hb < HDR_BYTES || hb > s->n_bytes || (s->dtype != HASS_SHARD_F16 && s->dtype != HASS_SHARD_BF16) ||
        rd32(h + 20) < 1 || rd32(h + 20) > 65536 || rd32(h + 24) < 1 || n_seq > s->n_bytes / 8) {
        e = hass_seterr(HASS_EFORMAT, "%s: bad header (header_bytes %u, dtype %d, n_embd %u, n_vocab %u, "
                        "n_seq %llu)", path, hb, s->dtype, rd32(h + 20), rd32(h + 24),
                        (unsigned long long)n_seq);
        goto fail_s;
    }
    if (want_fp && s->fp != want_fp) {
        e = hass_seterr(HASS_EVOCAB, "%s: shard made for target %08x, this target is %08x; regenerate "
                        "the features with this model", path, s->fp, want_fp);
        goto fail_s;
    }
    s->n_seq = (int64_t)n_seq;
    if (!(s->off = malloc((n_seq ? n_seq : 1) * sizeof(uint64_t)))) {
        e = hass_seterr(HASS_ENOMEM, "%s: out of memory for %llu records", path, (unsigned long long)n_seq);
        goto fail_s;
    }
    if ((e = walk(s, hb, s->n_embd, n_tok, s->off))) {
        int w = other_width(s, hb, n_tok);
        if (w) e = hass_seterr(HASS_EFORMAT, "%s: the records are %d features wide, the header says "
                               "n_embd %d (header written for another model?)", path, w, s->n_embd);
        goto fail_s;
    }
    s->n_tok = (int64_t)n_tok;
    return s;
fail_s:
    hass_shard_free(s);
fail:
    if (err) *err = e;
    return NULL;
}

const char *hass_shard_path(const hass_shard *s) { return s->path; }
int64_t hass_shard_n_seq(const hass_shard *s) { return s->n_seq; }
int64_t hass_shard_n_tok(const hass_shard *s) { return s->n_tok; }
int hass_shard_n_embd(const hass_shard *s) { return s->n_embd; }
int hass_shard_n_vocab(const hass_shard *s) { return s->n_vocab; }
uint32_t hass_shard_fp(const hass_shard *s) { return s->fp; }
int hass_shard_dtype(const hass_shard *s) { return s->dtype; }
int hass_shard_len(const hass_shard *s, int64_t i) {
    return i >= 0 && i < s->n_seq ? (int)rd32(s->map + s->off[i]) : 0;
}

// Check the CRC of record i.
static hass_err check_record(const hass_shard *s, int64_t i) {
    const uint8_t *r = s->map + s->off[i];
    uint32_t n = rd32(r);
    if (crc_buf(r + 8, payload_bytes(n, s->n_embd)) != rd32(r + 4))
        return hass_seterr(HASS_EFORMAT, "%s: record %lld: CRC mismatch (corrupt shard)", s->path,
                           (long long)i);
    return HASS_OK;
}

// CRC check, then copy and convert.
int hass_shard_read(const hass_shard *s, int64_t i, int max_len, int32_t *ids, uint8_t *mask,
                    float *feat) {
    if (i < 0 || i >= s->n_seq)
        return hass_seterr(HASS_EINVAL, "%s: record %lld of %lld", s->path, (long long)i, (long long)s->n_seq);
    hass_err e = check_record(s, i);
    if (e) return e;
    const uint8_t *r = s->map + s->off[i];
    int n_full = (int)rd32(r), n = n_full < max_len ? n_full : max_len, H = s->n_embd;
    const uint8_t *p = r + 8;
    for (int t = 0; t < n; t++) ids[t] = (int32_t)rd32(p + 4 * (size_t)t);
    p += 4 * (size_t)n_full;
    for (int t = 0; t < n; t++) mask[t] = p[t] != 0;
    p += (n_full + 3) & ~3;
    for (size_t k = 0; feat && k < (size_t)n * H; k++) {
        uint16_t v = (uint16_t)(p[2 * k] | p[2 * k + 1] << 8);
        feat[k] = s->dtype == HASS_SHARD_F16 ? hass_f16_to_f32(v) : hass_bf16_to_f32(v);
    }
    for (int t = 0; t < n; t++)
        if (ids[t] < 0 || ids[t] >= s->n_vocab)
            return hass_seterr(HASS_EFORMAT, "%s: record %lld position %d: token %d outside the vocabulary "
                               "(%d)", s->path, (long long)i, t, ids[t], s->n_vocab);
    return n;
}

// Check all records.
hass_err hass_shard_verify(const hass_shard *s) {
    for (int64_t i = 0; i < s->n_seq; i++) {
        hass_err e = check_record(s, i);
        if (e) return e;
    }
    return HASS_OK;
}

// ---- writer ----------------------------------------------------------------------------------

// Header bytes for the writer's current counts.
static void make_header(uint8_t *h, const hass_shard_writer *w) {
    memset(h, 0, HDR_BYTES);
    memcpy(h, "HASSFEAT", 8);
    wr32(h + 8, HASS_SHARD_VERSION);
    wr32(h + 12, HDR_BYTES);
    wr32(h + 16, (uint32_t)w->dtype);
    wr32(h + 20, (uint32_t)w->n_embd);
    wr32(h + 24, (uint32_t)w->n_vocab);
    wr32(h + 28, w->fp);
    wr64(h + 32, (uint64_t)w->n_seq);
    wr64(h + 40, (uint64_t)w->n_tok);
    wr32(h + 60, crc_buf(h, 60));
}

// Free the writer's memory (files untouched).
static void writer_release(hass_shard_writer *w) {
    free(w->path), free(w->tmp), free(w->buf), free(w);
}

// Drop an unfinished shard.
void hass_shard_writer_abort(hass_shard_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    unlink(w->tmp);
    writer_release(w);
}

// Create the temporary file and write a provisional header.
hass_shard_writer *hass_shard_writer_open(const char *path, int dtype, int n_embd, int n_vocab,
                                          uint32_t target_fp, hass_err *err) {
    if ((dtype != HASS_SHARD_F16 && dtype != HASS_SHARD_BF16) || n_embd < 1 || n_embd > 65536 || n_vocab < 1) {
        if (err) *err = hass_seterr(HASS_EINVAL, "%s: bad shard parameters (dtype %d, n_embd %d, n_vocab %d)",
                                    path, dtype, n_embd, n_vocab);
        return NULL;
    }
    hass_shard_writer *w = calloc(1, sizeof *w);
    size_t pl = strlen(path);
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(pl + 32))) {
        if (w) writer_release(w);
        if (err) *err = hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    snprintf(w->tmp, pl + 32, "%s.tmp.%d", path, (int)getpid());
    w->dtype = dtype, w->n_embd = n_embd, w->n_vocab = n_vocab, w->fp = target_fp;
    uint8_t h[HDR_BYTES];
    make_header(h, w);
    if (!(w->f = fopen(w->tmp, "wb")) || fwrite(h, 1, HDR_BYTES, w->f) != HDR_BYTES) {
        if (err) *err = hass_seterr(HASS_EIO, "%s: %s", w->tmp, strerror(errno));
        hass_shard_writer_abort(w);
        return NULL;
    }
    return w;
}

// Encode and append one record.
hass_err hass_shard_writer_add(hass_shard_writer *w, int n, const int32_t *ids, const uint8_t *mask,
                               const float *feat) {
    if (n < 1 || n > HASS_SHARD_MAX_LEN)
        return hass_seterr(HASS_EINVAL, "%s: record of %d positions (1..%d)", w->path, n, HASS_SHARD_MAX_LEN);
    for (int t = 0; t < n; t++)
        if (ids[t] < 0 || ids[t] >= w->n_vocab)
            return hass_seterr(HASS_EINVAL, "%s: record %lld: token %d outside the vocabulary (%d)", w->path,
                               (long long)w->n_seq, ids[t], w->n_vocab);
    size_t pb = (size_t)payload_bytes((uint64_t)n, w->n_embd);
    if (pb + 8 > w->cap) {
        uint8_t *nb = realloc(w->buf, pb + 8);
        if (!nb) return hass_seterr(HASS_ENOMEM, "%s: out of memory for a %d-position record", w->path, n);
        w->buf = nb, w->cap = pb + 8;
    }
    uint8_t *p = w->buf + 8;
    memset(p, 0, pb);
    for (int t = 0; t < n; t++) wr32(p + 4 * (size_t)t, (uint32_t)ids[t]);
    uint8_t *pm = p + 4 * (size_t)n;
    for (int t = 0; t < n; t++) pm[t] = mask[t] != 0;
    uint8_t *pf = pm + ((n + 3) & ~3);
    for (size_t k = 0; k < (size_t)n * w->n_embd; k++) {
        uint16_t v = w->dtype == HASS_SHARD_F16 ? hass_f32_to_f16(feat[k]) : hass_f32_to_bf16(feat[k]);
        pf[2 * k] = (uint8_t)v, pf[2 * k + 1] = (uint8_t)(v >> 8);
    }
    wr32(w->buf, (uint32_t)n);
    wr32(w->buf + 4, crc_buf(p, pb));
    if (fwrite(w->buf, 1, pb + 8, w->f) != pb + 8)
        return hass_seterr(HASS_EIO, "%s: write: %s", w->tmp, strerror(errno));
    w->n_seq++;
    w->n_tok += n;
    return HASS_OK;
}

// Final header, flush, fsync, rename.
hass_err hass_shard_writer_close(hass_shard_writer *w) {
    uint8_t h[HDR_BYTES];
    make_header(h, w);
    hass_err e = HASS_OK;
    if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, HDR_BYTES, w->f) != HDR_BYTES ||
        fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
        e = hass_seterr(HASS_EIO, "%s: %s", w->tmp, strerror(errno));
    if (fclose(w->f) != 0 && !e) e = hass_seterr(HASS_EIO, "%s: close: %s", w->tmp, strerror(errno));
    w->f = NULL;
    if (!e && rename(w->tmp, w->path) != 0) e = hass_seterr(HASS_EIO, "%s: rename: %s", w->path, strerror(errno));
    if (e) {
        hass_shard_writer_abort(w);
        return e;
    }
    writer_release(w);
    return HASS_OK;
}

// ---- target side -----------------------------------------------------------------------------

// Dequantise all rows of w into a new (n_out, n_in) f32 array.
static hass_err wmat_f32(const hass_wmat *w, float **out) {
    size_t n = (size_t)w->n_out * (size_t)w->n_in;
    float *x = hass_train_ops_big_alloc(n * sizeof(float)); // huge pages: the trainer reads it in panels
    if (!x) return hass_seterr(HASS_ENOMEM, "out of memory for a (%d, %d) f32 matrix", w->n_out, w->n_in);
    for (int r = 0; r < w->n_out; r++) hass_quant_row(w, r, x + (size_t)r * w->n_in);
    *out = x;
    return HASS_OK;
}

// Embedding and head as f32 (one array when tied).
hass_err hass_shard_target_mats(const hass_model *m, float **embed, float **head) {
    const hass_wmat *we = hass_model_embed_w(m), *wh = hass_model_lm_head_w(m);
    hass_err e = wmat_f32(we, embed);
    if (e) return e;
    *head = *embed;
    if (wh->data != we->data || wh->type != we->type) {
        if ((e = wmat_f32(wh, head))) {
            free(*embed);
            return e;
        }
    }
    return HASS_OK;
}

// Free what hass_shard_target_mats returned.
void hass_shard_mats_free(float *embed, float *head) {
    if (head != embed) free(head);
    free(embed);
}
