// ref.h: reader for the HASSREF reference fixtures in tests/data/ref_*.bin.gz (logits and
// greedy paths from implementations we did not write: llama.cpp, a numpy f64 forward).
// Format (tests/data/README.md): a gzip stream of little-endian records
//   header: char magic[8] "HASSREF\0"; u32 version (1), n_vocab, n_prompts, top_k,
//           logits_type (0 f32, 1 f16); str model; str source
//   prompt: str name; str text; u32 n_tok, i32 tok[n_tok];
//           u32 n_pos, row[n_pos]; u32 n_last, logit[n_last] (f32 or f16);
//           u32 n_gen, i32 gen[n_gen], row[n_gen]; i32 eos_at; str gen_text
//   row:    i32 argmax; f32 margin (top1 - top2); i32 top_id[top_k]; f32 top_logit[top_k]
//   str:    u32 len, len bytes (no NUL)
// Header-only, zlib only; test code, so plain names (ref_*) and a caller-supplied error buffer.
// Also two helpers of the engine comparisons: ref_stddev, ref_row_diff.
#ifndef HASS_TEST_REF_H
#define HASS_TEST_REF_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define REF_MAGIC "HASSREF"
#define REF_VERSION 1
#define REF_MAX_COUNT (1u << 24) // sanity limit on every count before allocating

// One scored position: the logits row that follows a token (prompt or greedy step).
typedef struct {
    int32_t argmax;    // id of the largest logit (ties: smallest id)
    float margin;      // top-1 minus top-2 logit
    int32_t *top_id;   // (top_k) ids by descending logit
    float *top_logit;  // (top_k) their logits
} ref_row;

// One prompt of a fixture.
typedef struct {
    char *name;         // short id, e.g. "mtbench_81_writing"
    char *text;         // exact text given to the tokenizer (chat prompts already rendered)
    int n_tok;
    int32_t *tok;       // (n_tok) prompt ids as the reference tokenized them
    int n_pos;          // n_tok, or 0 when per-position rows were not stored
    ref_row *pos;       // (n_pos) row after prompt token p (predicts token p+1)
    int n_last;         // n_vocab, or 0 when not stored
    float *last;        // (n_last) full logits after the last prompt token, as f32
    int n_gen;          // greedy steps (0: none)
    int32_t *gen;       // (n_gen) greedy ids, gen[0] follows the prompt
    ref_row *gen_row;   // (n_gen) the row each greedy id was taken from
    int eos_at;         // first step that produced an end-of-generation id, -1 none
    char *gen_text;     // detokenized gen[0 .. eos_at) (whole path if eos_at < 0)
} ref_prompt;

// A loaded fixture file.
typedef struct {
    int version, n_vocab, n_prompts, top_k, logits_type;
    char *model;        // GGUF file name the reference ran
    char *source;       // who made it, with versions and settings
    ref_prompt *p;      // (n_prompts)
} ref_file;

// Reader state: a gzip stream plus a sticky error.
typedef struct {
    gzFile gz;
    int bad;
    char *err;
    size_t n_err;
    const char *path;
} ref_reader;

// Record the first read error.
static inline void ref_fail(ref_reader *r, const char *what) {
    if (!r->bad && r->err && r->n_err) snprintf(r->err, r->n_err, "%s: %s", r->path, what);
    r->bad = 1;
}

// Read exactly n bytes.
static inline void ref_read(ref_reader *r, void *dst, size_t n) {
    if (r->bad) { memset(dst, 0, n); return; }
    size_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int k = gzread(r->gz, (char *)dst + got, chunk);
        if (k <= 0) { memset(dst, 0, n); ref_fail(r, "truncated or corrupt gzip stream"); return; }
        got += (size_t)k;
    }
}

// Read a little-endian u32.
static inline uint32_t ref_u32(ref_reader *r) {
    unsigned char b[4];
    ref_read(r, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

// Read a little-endian i32.
static inline int32_t ref_i32(ref_reader *r) { return (int32_t)ref_u32(r); }

// Read a little-endian f32.
static inline float ref_f32(ref_reader *r) {
    uint32_t u = ref_u32(r);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// IEEE half to float.
static inline float ref_half(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, u;
    if (e == 0) {
        if (m == 0) u = s;
        else { // subnormal: normalise
            e = 127 - 15 + 1;
            while (!(m & 1024)) { m <<= 1; e--; }
            u = s | e << 23 | (m & 1023) << 13;
        }
    } else if (e == 31) u = s | 0x7f800000u | m << 13;
    else u = s | (e + 127 - 15) << 23 | m << 13;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Read a count and check it against a limit.
static inline int ref_count(ref_reader *r, uint32_t limit, const char *what) {
    uint32_t n = ref_u32(r);
    if (!r->bad && n > limit) { ref_fail(r, what); return 0; }
    return r->bad ? 0 : (int)n;
}

// Allocate zeroed memory, failing the reader on exhaustion.
static inline void *ref_alloc(ref_reader *r, size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) ref_fail(r, "out of memory");
    return p;
}

// Read a length-prefixed string as a NUL-terminated heap string.
static inline char *ref_str(ref_reader *r) {
    int n = ref_count(r, REF_MAX_COUNT, "string length over limit");
    char *s = (char *)ref_alloc(r, (size_t)n + 1, 1);
    if (s && n) ref_read(r, s, (size_t)n);
    return s;
}

// Read n rows of top_k entries.
static inline ref_row *ref_rows(ref_reader *r, int n, int top_k) {
    ref_row *rows = (ref_row *)ref_alloc(r, (size_t)n, sizeof *rows);
    for (int i = 0; rows && i < n && !r->bad; i++) {
        rows[i].argmax = ref_i32(r);
        rows[i].margin = ref_f32(r);
        rows[i].top_id = (int32_t *)ref_alloc(r, (size_t)top_k, sizeof(int32_t));
        rows[i].top_logit = (float *)ref_alloc(r, (size_t)top_k, sizeof(float));
        if (r->bad) break;
        for (int j = 0; j < top_k; j++) rows[i].top_id[j] = ref_i32(r);
        for (int j = 0; j < top_k; j++) rows[i].top_logit[j] = ref_f32(r);
    }
    return rows;
}

// Free n rows.
static inline void ref_rows_free(ref_row *rows, int n) {
    for (int i = 0; rows && i < n; i++) {
        free(rows[i].top_id);
        free(rows[i].top_logit);
    }
    free(rows);
}

// Free a fixture; NULL is a no-op.
static inline void ref_free(ref_file *f) {
    if (!f) return;
    for (int i = 0; f->p && i < f->n_prompts; i++) {
        ref_prompt *p = &f->p[i];
        free(p->name);
        free(p->text);
        free(p->tok);
        ref_rows_free(p->pos, p->n_pos);
        free(p->last);
        free(p->gen);
        ref_rows_free(p->gen_row, p->n_gen);
        free(p->gen_text);
    }
    free(f->p);
    free(f->model);
    free(f->source);
    free(f);
}

// Load a fixture; NULL with a message in err (when given) on any error.
static inline ref_file *ref_load(const char *path, char *err, size_t n_err) {
    ref_reader r = {gzopen(path, "rb"), 0, err, n_err, path};
    if (!r.gz) {
        ref_fail(&r, "cannot open");
        return NULL;
    }
    ref_file *f = (ref_file *)ref_alloc(&r, 1, sizeof *f);
    char magic[8];
    ref_read(&r, magic, 8);
    if (!r.bad && memcmp(magic, REF_MAGIC "\0", 8) != 0) ref_fail(&r, "bad magic (not HASSREF)");
    if (f) {
        f->version = (int)ref_u32(&r);
        if (!r.bad && f->version != REF_VERSION) ref_fail(&r, "unsupported version");
        f->n_vocab = ref_count(&r, REF_MAX_COUNT, "n_vocab over limit");
        f->n_prompts = ref_count(&r, 1u << 16, "n_prompts over limit");
        f->top_k = ref_count(&r, 1u << 16, "top_k over limit");
        f->logits_type = (int)ref_u32(&r);
        if (!r.bad && f->logits_type != 0 && f->logits_type != 1) ref_fail(&r, "bad logits_type");
        if (!r.bad && f->top_k < 2) ref_fail(&r, "top_k below 2");
        f->model = ref_str(&r);
        f->source = ref_str(&r);
        f->p = r.bad ? NULL : (ref_prompt *)ref_alloc(&r, (size_t)f->n_prompts, sizeof *f->p);
        for (int i = 0; f->p && i < f->n_prompts && !r.bad; i++) {
            ref_prompt *p = &f->p[i];
            p->eos_at = -1;
            p->name = ref_str(&r);
            p->text = ref_str(&r);
            p->n_tok = ref_count(&r, REF_MAX_COUNT, "n_tok over limit");
            p->tok = (int32_t *)ref_alloc(&r, (size_t)p->n_tok, sizeof(int32_t));
            for (int j = 0; p->tok && j < p->n_tok; j++) p->tok[j] = ref_i32(&r);
            p->n_pos = ref_count(&r, (uint32_t)p->n_tok, "n_pos over n_tok");
            p->pos = ref_rows(&r, p->n_pos, f->top_k);
            p->n_last = ref_count(&r, (uint32_t)f->n_vocab, "n_last over n_vocab");
            p->last = (float *)ref_alloc(&r, (size_t)p->n_last, sizeof(float));
            for (int j = 0; p->last && j < p->n_last && !r.bad; j++) {
                if (f->logits_type == 1) {
                    unsigned char b[2];
                    ref_read(&r, b, 2);
                    p->last[j] = ref_half((uint16_t)(b[0] | b[1] << 8));
                } else {
                    p->last[j] = ref_f32(&r);
                }
            }
            p->n_gen = ref_count(&r, REF_MAX_COUNT, "n_gen over limit");
            p->gen = (int32_t *)ref_alloc(&r, (size_t)p->n_gen, sizeof(int32_t));
            for (int j = 0; p->gen && j < p->n_gen; j++) p->gen[j] = ref_i32(&r);
            p->gen_row = ref_rows(&r, p->n_gen, f->top_k);
            p->eos_at = ref_i32(&r);
            if (!r.bad && (p->eos_at < -1 || p->eos_at >= p->n_gen)) ref_fail(&r, "bad eos_at");
            p->gen_text = ref_str(&r);
        }
        if (!r.bad) { // nothing may follow the last prompt
            char extra;
            if (gzread(r.gz, &extra, 1) != 0) ref_fail(&r, "trailing bytes after last prompt");
        }
    }
    gzclose(r.gz);
    if (r.bad) {
        ref_free(f);
        return NULL;
    }
    return f;
}

// The prompt with the given name, or NULL.
static inline const ref_prompt *ref_find(const ref_file *f, const char *name) {
    for (int i = 0; f && i < f->n_prompts; i++)
        if (strcmp(f->p[i].name, name) == 0) return &f->p[i];
    return NULL;
}

// Path of a fixture under tests/data (tests run from the repository root).
static inline const char *ref_path(char *buf, size_t n, const char *file) {
    const char *d = getenv("HASS_REF_DIR");
    snprintf(buf, n, "%s/%s", d && *d ? d : "tests/data", file);
    return buf;
}

// Standard deviation of n values.
static inline double ref_stddev(const float *x, int n) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    double m = s / n;
    return sqrt(s2 / n - m * m);
}

// Largest |ours[id] - ref| over the top-k entries of a reference row (ours: a full logits row).
static inline double ref_row_diff(const float *ours, const ref_row *r, int top_k) {
    double md = 0;
    for (int k = 0; k < top_k; k++) {
        double d = fabs((double)ours[r->top_id[k]] - r->top_logit[k]);
        if (d > md) md = d;
    }
    return md;
}

#endif
