// frame.c: binary stream header, CRC-checked frames and the RECORD payload codec.
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

// CRC-32 of n bytes (zlib), in chunks that fit uInt.
uint32_t hass_crc32(uint32_t crc, const void *p, size_t n) {
    const Bytef *b = p;
    uLong c = crc;
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, b, k);
        b += k;
        n -= k;
    }
    return (uint32_t)c;
}

// Store v little-endian at p.
static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

// Load a little-endian u32 from p.
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// Load a little-endian u16 from p.
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

// Write n bytes or fail with HASS_EIO.
static hass_err write_all(FILE *f, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, f) != n)
        return hass_seterr(HASS_EIO, "write failed: %s", strerror(errno));
    return HASS_OK;
}

// Write the 16-byte stream header.
hass_err hass_frame_write_header(FILE *f, uint32_t vocab_fp, uint32_t flags) {
    uint8_t h[HASS_FRAME_HEADER_BYTES];
    memcpy(h, HASS_FRAME_MAGIC, 4);
    h[4] = HASS_FRAME_VERSION, h[5] = 0;
    h[6] = HASS_FRAME_HEADER_BYTES, h[7] = 0;
    put_u32(h + 8, vocab_fp);
    put_u32(h + 12, flags);
    return write_all(f, h, sizeof h);
}

// Read the stream header (magic possibly already consumed) and skip any extra header bytes.
hass_err hass_frame_read_header(FILE *f, int have_magic, hass_frame_header *h) {
    uint8_t b[HASS_FRAME_HEADER_BYTES];
    size_t off = have_magic ? 4 : 0;
    if (have_magic) memcpy(b, HASS_FRAME_MAGIC, 4);
    size_t got = fread(b + off, 1, sizeof b - off, f);
    if (ferror(f)) return hass_seterr(HASS_EIO, "read error: %s", strerror(errno));
    if (got != sizeof b - off)
        return hass_seterr(HASS_EFORMAT, "truncated stream header (%zu of %d bytes)", got + off,
                           HASS_FRAME_HEADER_BYTES);
    if (memcmp(b, HASS_FRAME_MAGIC, 4) != 0)
        return hass_seterr(HASS_EFORMAT, "not a hass binary stream (bad magic)");
    h->version = get_u16(b + 4);
    h->header_bytes = get_u16(b + 6);
    h->vocab_fp = get_u32(b + 8);
    h->flags = get_u32(b + 12);
    if (h->version != HASS_FRAME_VERSION)
        return hass_seterr(HASS_EVERSION,
                           "binary stream version %u, this build reads version %d; "
                           "convert with a matching hass-cat",
                           h->version, HASS_FRAME_VERSION);
    if (h->header_bytes < HASS_FRAME_HEADER_BYTES || h->header_bytes > HASS_FRAME_MAX_HEADER)
        return hass_seterr(HASS_EFORMAT, "stream header size %u outside [%d, %u]",
                           h->header_bytes, HASS_FRAME_HEADER_BYTES, HASS_FRAME_MAX_HEADER);
    for (unsigned i = HASS_FRAME_HEADER_BYTES; i < h->header_bytes; i++)
        if (getc(f) == EOF) return hass_seterr(HASS_EFORMAT, "truncated stream header");
    return HASS_OK;
}

// Write one frame with its CRC.
hass_err hass_frame_write(FILE *f, uint32_t type, uint32_t seq, const void *payload,
                          uint32_t n_bytes) {
    if (n_bytes > HASS_FRAME_MAX_PAYLOAD)
        return hass_seterr(HASS_ERANGE, "frame payload of %u bytes is over the %u-byte limit",
                           n_bytes, HASS_FRAME_MAX_PAYLOAD);
    uint8_t h[12], t[4];
    put_u32(h, type);
    put_u32(h + 4, seq);
    put_u32(h + 8, n_bytes);
    uint32_t crc = hass_crc32(0, h, sizeof h);
    crc = hass_crc32(crc, payload, n_bytes);
    put_u32(t, crc);
    hass_err e;
    if ((e = write_all(f, h, sizeof h)) || (e = write_all(f, payload, n_bytes)) ||
        (e = write_all(f, t, sizeof t)))
        return e;
    return HASS_OK;
}

// Read one frame; see frame.h for the return convention.
hass_err hass_frame_read(FILE *f, hass_frame *fr, uint8_t **buf, size_t *cap, int *resync) {
    uint8_t h[12], t[4];
    memset(fr, 0, sizeof *fr);
    *resync = 0;
    size_t got = fread(h, 1, sizeof h, f);
    if (got == 0 && !ferror(f)) return HASS_OK; // clean end
    if (ferror(f)) return hass_seterr(HASS_EIO, "read error: %s", strerror(errno));
    if (got != sizeof h)
        return hass_seterr(HASS_EFORMAT, "truncated frame header (%zu of 12 bytes)", got);
    uint32_t type = get_u32(h), seq = get_u32(h + 4), n = get_u32(h + 8);
    if (type == 0) return hass_seterr(HASS_EFORMAT, "frame type 0 is invalid");
    if (n > HASS_FRAME_MAX_PAYLOAD)
        return hass_seterr(HASS_ERANGE, "frame payload of %u bytes is over the %u-byte limit",
                           n, HASS_FRAME_MAX_PAYLOAD);
    if (*cap < (size_t)n + 1) {
        uint8_t *b = realloc(*buf, (size_t)n + 1);
        if (!b) return hass_seterr(HASS_ENOMEM, "out of memory for a %u-byte frame", n);
        *buf = b;
        *cap = (size_t)n + 1;
    }
    got = fread(*buf, 1, n, f);
    if (got != n)
        return hass_seterr(HASS_EFORMAT, "truncated frame payload (%zu of %u bytes)", got, n);
    if (fread(t, 1, 4, f) != 4) return hass_seterr(HASS_EFORMAT, "truncated frame (no CRC)");
    uint32_t crc = hass_crc32(hass_crc32(0, h, sizeof h), *buf, n);
    fr->type = type, fr->seq = seq, fr->n_bytes = n, fr->payload = *buf;
    if (crc != get_u32(t)) {
        *resync = 1;
        return hass_seterr(HASS_EFORMAT, "crc mismatch (stored %08x, computed %08x)",
                           get_u32(t), crc);
    }
    return HASS_OK;
}

// Check an END frame's count.
hass_err hass_frame_check_end(const hass_frame *fr, int64_t n_before) {
    if (fr->n_bytes != 4)
        return hass_seterr(HASS_EFORMAT, "END frame has a %u-byte payload, not the 4-byte count of "
                           "the %lld frames before it", fr->n_bytes, (long long)n_before);
    uint32_t n = get_u32(fr->payload);
    if ((int64_t)n != n_before)
        return hass_seterr(HASS_EFORMAT, "END frame says %u frames came before it, the stream had "
                           "%lld (frames lost or added)", n, (long long)n_before);
    return HASS_OK;
}

// Grow *buf to hold at least need bytes.
static hass_err reserve(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return HASS_OK;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    uint8_t *b = realloc(*buf, c);
    if (!b) return hass_seterr(HASS_ENOMEM, "out of memory for a %zu-byte record", need);
    *buf = b;
    *cap = c;
    return HASS_OK;
}

// Whether key k's value v is packed: an array of integers that all fit int32, key < 256 bytes.
static int packable(const char *k, const json_t *v) {
    if (!json_is_array(v) || strlen(k) >= HASS_FRAME_MAX_KEY) return 0;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_integer(x)) return 0;
        json_int_t t = json_integer_value(x);
        if (t < INT32_MIN || t > INT32_MAX) return 0;
    }
    return 1;
}

// Encode a record as a RECORD payload.
hass_err hass_frame_encode_record(const json_t *rec, uint8_t **buf, size_t *cap,
                                  uint32_t *n_bytes) {
    if (!json_is_object(rec)) return hass_seterr(HASS_EINVAL, "record is not an object");
    // The JSON part: a shallow copy with packed arrays replaced by 0 (order kept).
    json_t *shell = json_object();
    const char *k;
    json_t *v;
    size_t n_arr = 0, arr_bytes = 4;
    json_object_foreach((json_t *)rec, k, v) {
        if (packable(k, v)) {
            json_object_set_new(shell, k, json_integer(0));
            n_arr++;
            arr_bytes += 8 + strlen(k) + 4 * json_array_size(v);
        } else {
            json_object_set(shell, k, v);
        }
    }
    char *js = json_dumps(shell, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(shell);
    if (!js) return hass_seterr(HASS_ENOMEM, "cannot encode record as JSON");
    size_t jn = strlen(js), total = 4 + jn + arr_bytes;
    if (total > HASS_FRAME_MAX_PAYLOAD) {
        free(js);
        return hass_seterr(HASS_ERANGE, "record of %zu bytes is over the %u-byte frame limit",
                           total, HASS_FRAME_MAX_PAYLOAD);
    }
    hass_err e = reserve(buf, cap, total);
    if (e) {
        free(js);
        return e;
    }
    uint8_t *p = *buf;
    put_u32(p, (uint32_t)jn), p += 4;
    memcpy(p, js, jn), p += jn;
    free(js);
    put_u32(p, (uint32_t)n_arr), p += 4;
    json_object_foreach((json_t *)rec, k, v) {
        if (!packable(k, v)) continue;
        size_t kn = strlen(k), m = json_array_size(v);
        put_u32(p, (uint32_t)kn), p += 4;
        memcpy(p, k, kn), p += kn;
        put_u32(p, (uint32_t)m), p += 4;
        for (size_t i = 0; i < m; i++, p += 4)
            put_u32(p, (uint32_t)(int32_t)json_integer_value(json_array_get(v, i)));
    }
    HASS_ASSERT((size_t)(p - *buf) == total);
    *n_bytes = (uint32_t)total;
    return HASS_OK;
}

// Decode a RECORD payload, checking every size against the bytes left.
hass_err hass_frame_decode_record(const uint8_t *p, uint32_t n_bytes, json_t **rec) {
    *rec = NULL;
    const uint8_t *end = p + n_bytes;
    if (end - p < 4) return hass_seterr(HASS_EFORMAT, "record payload shorter than 4 bytes");
    uint32_t jn = get_u32(p);
    p += 4;
    if ((size_t)(end - p) < (size_t)jn + 4)
        return hass_seterr(HASS_EFORMAT, "record JSON of %u bytes runs past the payload", jn);
    json_error_t je;
    json_t *o = json_loadb((const char *)p, jn, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!o) return hass_seterr(HASS_EFORMAT, "record JSON: %s", je.text);
    if (!json_is_object(o)) {
        json_decref(o);
        return hass_seterr(HASS_EFORMAT, "record JSON is not an object");
    }
    p += jn;
    uint32_t n_arr = get_u32(p);
    p += 4;
    for (uint32_t a = 0; a < n_arr; a++) {
        if (end - p < 4) goto short_;
        uint32_t kn = get_u32(p);
        p += 4;
        if ((size_t)(end - p) < (size_t)kn + 4) goto short_;
        char key[HASS_FRAME_MAX_KEY];
        if (kn >= sizeof key || memchr(p, 0, kn)) {
            json_decref(o);
            return hass_seterr(HASS_EFORMAT, "packed array %u: bad key (%u bytes)", a, kn);
        }
        memcpy(key, p, kn);
        key[kn] = 0;
        p += kn;
        uint32_t m = get_u32(p);
        p += 4;
        if ((size_t)(end - p) / 4 < m) goto short_;
        json_t *old = json_object_get(o, key);
        if (!json_is_integer(old) || json_integer_value(old) != 0) {
            json_decref(o);
            return hass_seterr(HASS_EFORMAT, "packed array \"%s\" has no placeholder in the JSON",
                               key);
        }
        json_t *arr = json_array();
        for (uint32_t i = 0; i < m; i++, p += 4)
            json_array_append_new(arr, json_integer((int32_t)get_u32(p)));
        json_object_set_new(o, key, arr);
    }
    if (p != end) {
        json_decref(o);
        return hass_seterr(HASS_EFORMAT, "%zu bytes left over after the record",
                           (size_t)(end - p));
    }
    *rec = o;
    return HASS_OK;
short_:
    json_decref(o);
    return hass_seterr(HASS_EFORMAT, "packed arrays run past the record payload");
}
