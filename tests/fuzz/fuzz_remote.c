// fuzz_remote.c: the drafter side of the back channel (hass_remote_serve_drafter) reading the
// bytes as the frames a verifier sends, over a socketpair, with a stub drafter that reads every
// pushed feature and token (as a real one would) and answers trees with the root alone.
// Input at most 32 KiB: it is written before serving, and the answers (one short frame per
// 32-byte TREE frame at most) wait in the peer's receive buffer.
// The verifier side is fuzz_remote_client.c.
#include <sys/socket.h>

#include "draft_remote.h"
#include "fuzz.h"
#include "tree.h"

enum { C = 8 };

// Stub drafter: reset does nothing.
static hass_err stub_reset(void *ctx) { return HASS_OK; }

// Stub drafter: read all m feature rows and tokens.
static hass_err stub_push(void *ctx, const float *f, const int32_t *t, int m) {
    volatile float s = 0;
    for (int64_t i = 0; i < (int64_t)m * C; i++) s += f[i];
    for (int i = 0; i < m; i++) s += (float)t[i];
    (void)s;
    return HASS_OK;
}

// Stub drafter: the tree of the root alone.
static hass_err stub_tree(void *ctx, int32_t root, hass_tree *t) {
    t->n = 1;
    t->tok[0] = root;
    t->parent[0] = -1;
    return HASS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    if (size > 32768) return 0; // input and answers fit the socket buffers: no thread needed
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) abort();
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    size_t off = 0;
    while (off < size) {
        ssize_t k = write(sv[0], data + off, size - off);
        if (k <= 0) abort();
        off += (size_t)k;
    }
    shutdown(sv[0], SHUT_WR); // the server sees the peer close after the bytes; answers queue
    hass_drafter dr = {NULL, stub_reset, stub_push, stub_tree};
    hass_tree_cfg max = {64, 8, 8};
    hass_remote_serve_drafter(sv[1], &dr, C, &max);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
