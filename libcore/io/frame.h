// frame.h: the binary framing of the record streams (man/hass-format.5, STYLE.md section 4.6).
//
// A binary stream is a 16-byte header followed by frames; everything is little-endian and read or
// written field by field:
//
//   header: "HASS" | u16 version=1 | u16 header_bytes=16 | u32 vocab_fp | u32 flags=0
//   frame:  u32 type | u32 seq | u32 payload_bytes | payload | u32 crc32(type..payload)
//
// payload_bytes is checked against HASS_FRAME_MAX_PAYLOAD before anything is allocated. A RECORD
// frame carries one record (see hass_frame_encode_record); an END frame closes the stream so a
// cut at a frame boundary is still seen as truncated; other types pass through unchanged.
#ifndef HASS_FRAME_H
#define HASS_FRAME_H

#include <jansson.h>

#include "hass.h"

#define HASS_FRAME_MAGIC "HASS"
#define HASS_FRAME_VERSION 1
#define HASS_FRAME_HEADER_BYTES 16
#define HASS_FRAME_MAX_PAYLOAD (64u << 20) // 64 MiB
#define HASS_FRAME_MAX_HEADER 4096u        // longest header a reader skips over
#define HASS_FRAME_MAX_KEY 256             // packed array keys are shorter than this

enum {
    HASS_FRAME_RECORD = 1, // one record: JSON text + packed int32 arrays
    HASS_FRAME_END = 2,    // end of stream: u32 number of frames before it
};

// Stream header fields (after the magic).
typedef struct hass_frame_header {
    uint16_t version;      // format version (1)
    uint16_t header_bytes; // whole header size including the magic (>= 16)
    uint32_t vocab_fp;     // vocabulary fingerprint of the token ids (0 = unknown)
    uint32_t flags;        // reserved, 0
} hass_frame_header;

// One frame; payload points into a reader-owned buffer.
typedef struct hass_frame {
    uint32_t type;     // HASS_FRAME_*
    uint32_t seq;      // 0-based frame number in its stream
    uint32_t n_bytes;  // payload size
    uint8_t *payload;  // (n_bytes) borrowed
} hass_frame;

// CRC-32 (zlib) of n bytes, continuing from crc (start with 0).
uint32_t hass_crc32(uint32_t crc, const void *p, size_t n);

// Write the stream header. HASS_EIO on a failed write.
hass_err hass_frame_write_header(FILE *f, uint32_t vocab_fp, uint32_t flags);
// Read the stream header; when have_magic, the 4 magic bytes were already consumed by the
// caller. HASS_EFORMAT for bad magic or a short header, HASS_EVERSION for a newer version.
hass_err hass_frame_read_header(FILE *f, int have_magic, hass_frame_header *h);

// Write one frame (header fields, payload, CRC). HASS_EIO on a failed write, HASS_ERANGE when
// the payload is over the limit.
hass_err hass_frame_write(FILE *f, uint32_t type, uint32_t seq, const void *payload,
                          uint32_t n_bytes);

// Read one frame into *fr, growing *buf (capacity *cap) as needed. Returns HASS_OK, or HASS_OK
// with fr->type = 0 at a clean end of input (no byte read), or an error: HASS_EFORMAT for a
// truncated frame or a CRC mismatch, HASS_ERANGE for an over-limit size, HASS_EIO/ENOMEM.
// *resync is set to 1 when the next frame can still be read (a CRC mismatch), else 0.
hass_err hass_frame_read(FILE *f, hass_frame *fr, uint8_t **buf, size_t *cap, int *resync);

// Check an END frame against the n_before frames that preceded it in its stream: its payload
// must be the u32 count n_before. HASS_EFORMAT naming both counts otherwise.
hass_err hass_frame_check_end(const hass_frame *fr, int64_t n_before);

// Encode a record object as a RECORD payload into *buf (capacity *cap, grown as needed):
//   u32 json_bytes | compact JSON of the object | u32 n_arrays |
//   n_arrays x { u32 key_bytes | key | u32 n | n x i32 }
// Every top-level array whose elements are all integers in int32 range (key shorter than
// HASS_FRAME_MAX_KEY bytes) is packed into the
// array section; its value in the JSON text is the placeholder 0, so key order is kept.
hass_err hass_frame_encode_record(const json_t *rec, uint8_t **buf, size_t *cap,
                                  uint32_t *n_bytes);
// Decode a RECORD payload into a new object (caller decrefs). HASS_EFORMAT on any
// inconsistency (sizes past the end, bad JSON, an array key not in the object, leftover bytes).
hass_err hass_frame_decode_record(const uint8_t *p, uint32_t n_bytes, json_t **rec);

#endif
