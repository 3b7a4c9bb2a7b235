// fuzz_remote_client.c: the verifier side of the back channel (hass_remote over a connection,
// hass_remote_from_fd) reading the bytes as the drafter's answers over a socketpair: up to 8
// tree questions (root 1, at most 16 nodes, vocabulary 512), a push of one feature row between
// them, until the connection is dead. Input at most 32 KiB, written before the questions; the
// questions wait in the peer's receive buffer.
#include <sys/socket.h>

#include "draft_remote.h"
#include "fuzz.h"
#include "tree.h"

enum { C = 8, V = 512 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    if (size > 32768) return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) abort();
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    for (size_t off = 0; off < size;) {
        ssize_t k = write(sv[0], data + off, size - off);
        if (k <= 0) abort();
        off += (size_t)k;
    }
    shutdown(sv[0], SHUT_WR); // after the bytes the client reads the end of the connection
    hass_err e;
    hass_remote *r = hass_remote_from_fd(sv[1], "fuzz", C, V, 1000, &e);
    if (!r) abort();
    hass_drafter d = hass_remote_drafter(r);
    hass_tree_cfg cfg = {16, 4, 4};
    hass_tree *t = hass_tree_new(&cfg, &e);
    if (!t) abort();
    float f[C] = {0};
    int32_t tok = 7;
    for (int i = 0; i < 8 && !hass_remote_dead(r); i++) {
        if (d.tree(d.ctx, 1, t) == HASS_OK && t->n < 1) abort(); // a loaded tree has its root
        d.push(d.ctx, f, &tok, 1);
    }
    hass_tree_free(t);
    hass_remote_free(r);
    close(sv[0]);
    return 0;
}
