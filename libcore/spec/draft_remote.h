// draft_remote.h: the back channel of the two-process mode (hass-draft | hass-verify): a
// hass_drafter whose work happens in another process, over a Unix socket that hass-draft
// announces in its output stream with a {"type":"draft_channel",...} record. The frame format
// is at the top of draft_remote.c and in hass-format(5).
#ifndef HASS_DRAFT_REMOTE_H
#define HASS_DRAFT_REMOTE_H

#include "spec.h"

typedef struct hass_remote hass_remote;

// Connect to the drafter at socket path; n_embd = the target's feature width; every answer must
// come within timeout_ms. NULL with *err (HASS_EIO) when nothing listens there.
hass_remote *hass_remote_connect(const char *path, int n_embd, int timeout_ms, hass_err *err);
// The drafter interface over the connection (borrowed r).
hass_drafter hass_remote_drafter(hass_remote *r);
// Whether a call failed (the connection is then unusable).
int hass_remote_dead(const hass_remote *r);
// Close (NULL ok).
void hass_remote_free(hass_remote *r);

// Serve one accepted connection fd with drafter d (trees up to max) until the peer closes it.
hass_err hass_remote_serve(int fd, hass_draft *d, const hass_tree_cfg *max);
// The same with any drafter of spec.h (the GPU one too); C = feature width.
hass_err hass_remote_serve_drafter(int fd, const hass_drafter *dr, int C,
                                   const hass_tree_cfg *max);

#endif
