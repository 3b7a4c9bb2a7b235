// shard.h: feature shards for draft-head training: the target's post-norm features f_t for every
// position of every conversation, with the token ids and the loss mask (SPEC-HASS section 3),
// in a checksummed little-endian file. Documented in docs/TRAINING.md.
//
// Layout:
//   header (64 bytes): "HASSFEAT" | u32 version=1 | u32 header_bytes=64 | u32 dtype (1 f16,
//     2 bf16) | u32 n_embd | u32 n_vocab | u32 target_fp | u64 n_seq | u64 n_tok | u32 flags=0 |
//     u32 reserved[2]=0 | u32 crc32(bytes 0..59)
//   n_seq records: u32 n (positions, 1..HASS_SHARD_MAX_LEN) | u32 crc32(payload) | payload:
//     i32 ids[n] | u8 mask[n] | zero pad to a multiple of 4 | u16 feat[n * n_embd]
// target_fp ties the shard to one target model (hass_model_fingerprint); a reader refuses
// another target's shards. Writers go through a temporary file and rename, so a shard on disk
// is always complete.
#ifndef HASS_SHARD_H
#define HASS_SHARD_H

#include "hass.h"
#include "model.h"

#define HASS_SHARD_VERSION 1
#define HASS_SHARD_MAX_LEN (1 << 20) // positions per record
#define HASS_SHARD_F16 1
#define HASS_SHARD_BF16 2

typedef struct hass_shard hass_shard;
typedef struct hass_shard_writer hass_shard_writer;

// Open a shard (mmap), check the header, its CRC and every record's bounds. want_fp != 0:
// refuse (HASS_EVOCAB) a shard made for another target. NULL with *err on failure.
hass_shard *hass_shard_open(const char *path, uint32_t want_fp, hass_err *err);
void hass_shard_free(hass_shard *s);
const char *hass_shard_path(const hass_shard *s);
int64_t hass_shard_n_seq(const hass_shard *s);
int64_t hass_shard_n_tok(const hass_shard *s);
int hass_shard_n_embd(const hass_shard *s);
int hass_shard_n_vocab(const hass_shard *s);
uint32_t hass_shard_fp(const hass_shard *s);
int hass_shard_dtype(const hass_shard *s);
// Positions of record i.
int hass_shard_len(const hass_shard *s, int64_t i);
// Check record i's CRC and copy its first n = min(len, max_len) positions out, features as f32
// (feat NULL: ids and mask only).
// Returns n, or a negative hass_err (HASS_EFORMAT on a CRC mismatch, message names the record).
int hass_shard_read(const hass_shard *s, int64_t i, int max_len,
                    int32_t *ids,   // (max_len)
                    uint8_t *mask,  // (max_len)
                    float *feat);   // (max_len, n_embd) or NULL
// Check every record's CRC.
hass_err hass_shard_verify(const hass_shard *s);

// Start a shard at path (written to a temporary file until hass_shard_writer_close).
hass_shard_writer *hass_shard_writer_open(const char *path, int dtype, int n_embd, int n_vocab,
                                          uint32_t target_fp, hass_err *err);
// Append one conversation of n positions.
hass_err hass_shard_writer_add(hass_shard_writer *w, int n,
                               const int32_t *ids,  // (n)
                               const uint8_t *mask, // (n)
                               const float *feat);  // (n, n_embd)
// Finish the header, fsync and rename into place; frees w. On failure the temporary file is
// removed and nothing appears at path.
hass_err hass_shard_writer_close(hass_shard_writer *w);
// Drop an unfinished shard (removes the temporary file); NULL is a no-op.
void hass_shard_writer_abort(hass_shard_writer *w);

// The target's frozen matrices for training, dequantised to f32: the token embedding and the LM
// head (the embedding when tied: then *head == *embed). Free both with hass_shard_mats_free.
hass_err hass_shard_target_mats(const hass_model *m,
                                float **embed, // (V, C)
                                float **head); // (V, C)
void hass_shard_mats_free(float *embed, float *head);

#endif
