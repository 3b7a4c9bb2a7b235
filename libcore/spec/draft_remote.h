// draft_remote.h: the back channel of the two-process mode (hass-draft | hass-verify): a
// hass_drafter whose work happens in another process, over a Unix socket that hass-draft
// announces in its output stream with a {"type":"draft_channel",...} record. The frame format
// is at the top of draft_remote.c and in hass-format(5). All of the protocol is here: the
// server listens, announces and serves one client in a thread (hass-draft); the client reads
// the announcement, checks it and connects (hass-verify).
#ifndef HASS_DRAFT_REMOTE_H
#define HASS_DRAFT_REMOTE_H

#include <jansson.h>

#include "spec.h"

typedef struct hass_remote hass_remote;
typedef struct hass_remote_server hass_remote_server;

// ---- server (the drafter process)

// Listen on a new Unix socket ($TMPDIR, else /tmp, /hass-draft.<pid>.sock) for one client, to
// be served with dr (borrowed; feature width C, trees up to max). NULL with *err (HASS_EIO,
// "<socket path>: <why>").
hass_remote_server *hass_remote_listen(const hass_drafter *dr, int C, const hass_tree_cfg *max,
                                       hass_err *err);
// Write the announcement to out (flushed): {"type":"draft_channel","proto":1,"socket":PATH,
// "target_fp":HEX,"tokenizer_fp":HEX,"tree":{"total":N,"depth":N,"topk":N}}, then serve the
// first client in a thread. HASS_EIO when out cannot be written (nothing is served then).
hass_err hass_remote_announce(hass_remote_server *s, FILE *out, uint32_t target_fp,
                              uint32_t tok_fp);
// Every record is copied: write the end of the channel to out (flushed):
// {"type":"draft_channel_end"}. Every record that passed through hass-draft is before it, so
// hass-verify, when it reads it, has decoded them all: it closes the connection then, which ends
// the session even while something else holds the stream open. HASS_EIO when out fails.
hass_err hass_remote_end(FILE *out);
// The stream is over: wait for the client to finish (or, when none came, give up 10 s later),
// remove the socket and free s. How serving ended: HASS_OK, or the error of the session (its
// message in hass_errmsg()). NULL is a no-op.
hass_err hass_remote_close(hass_remote_server *s);

// ---- client (the decoding process)

// Whether rec is a back-channel announcement ({"type":"draft_channel"}).
int hass_remote_is_announcement(const json_t *rec);
// Whether rec is the end of the channel ({"type":"draft_channel_end"}, hass_remote_end).
int hass_remote_is_end(const json_t *rec);
// Connect to the drafter that announcement rec names, after checking that it runs this target
// and tokenizer (fingerprints; HASS_EVOCAB otherwise, HASS_EFORMAT without "socket"); the tree
// *tc is reduced to the drafter's largest. Timeout as hass_remote_connect. NULL with *err.
hass_remote *hass_remote_from_announcement(const json_t *rec, uint32_t target_fp, uint32_t tok_fp,
                                           int n_embd, int n_vocab, int timeout_ms,
                                           hass_tree_cfg *tc, hass_err *err);
// The limit on each exchange, in ms: $HASS_DRAFT_TIMEOUT seconds (a number > 0, fractions
// allowed) when set, else 30000 (30 s); a bad value is said (warning) and the default used.
int hass_remote_timeout_ms(void);
// The socket path of a connection (borrowed).
const char *hass_remote_path(const hass_remote *r);

// Connect to the drafter at socket path; n_embd = the target's feature width, n_vocab its
// vocabulary (a tree with a token outside it is a bad frame); every exchange (a
// question and the whole of its answer) must be done within timeout_ms (<= 0: no limit), else
// the connection is dead. NULL with *err (HASS_EIO) when nothing listens there.
hass_remote *hass_remote_connect(const char *path, int n_embd, int n_vocab, int timeout_ms,
                                 hass_err *err);
// The client over an already connected socket fd (owned by it from now on, closed by
// hass_remote_free); name stands for the socket in messages. For tests and fuzzing.
hass_remote *hass_remote_from_fd(int fd, const char *name, int n_embd, int n_vocab, int timeout_ms,
                                 hass_err *err);
// The drafter interface over the connection (borrowed r).
hass_drafter hass_remote_drafter(hass_remote *r);
// Whether a call failed (the connection is then unusable).
int hass_remote_dead(const hass_remote *r);
// Why the first failed call failed (borrowed; "" while none failed).
const char *hass_remote_why(const hass_remote *r);
// Close (NULL ok).
void hass_remote_free(hass_remote *r);

// Serve one accepted connection fd with drafter d (trees up to max) until the peer closes it.
hass_err hass_remote_serve(int fd, hass_draft *d, const hass_tree_cfg *max);
// The same with any drafter of spec.h (the GPU one too); C = feature width.
hass_err hass_remote_serve_drafter(int fd, const hass_drafter *dr, int C,
                                   const hass_tree_cfg *max);

#endif
