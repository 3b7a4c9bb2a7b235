// draft_remote.c: the drafter as its own process: the back channel between hass-verify (client)
// and hass-draft (server) over a Unix socket. Frames: u32 magic "HSDC", u32 type, u32 payload
// length, payload, u32 crc32 (zlib) of the payload; little-endian (the hosts are the same
// machine); lengths are checked against limits before anything is allocated.
//   RESET (1): empty                      -> no reply
//   PUSH  (2): i32 m, f32 feats[m*C], i32 tokens[m] -> no reply
//   TREE  (3): i32 root, total, depth, topk -> TREE_OK (4): i32 n, i32 tok[n], i32 parent[n]
//                                            or ERR (5): message bytes
// The client is a hass_drafter, so the decode loop is the same as in-process; every exchange (a
// question and the whole of its answer) has a deadline, and a dead peer makes every later call
// fail at once (never a hang).
// Before any frame, hass-draft announces the socket in its output stream (hass_remote_announce)
// and hass-verify connects to it (hass_remote_from_announcement).
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "draft_remote.h"
#include "jsonl.h"

#define MAGIC 0x43445348u // "HSDC"
#define MAX_PAYLOAD (64u << 20)

enum { F_RESET = 1, F_PUSH = 2, F_TREE = 3, F_TREE_OK = 4, F_ERR = 5 };

// A time limit: the moment (monotonic ms) by which an exchange must be done, and its length
// for messages; ms <= 0: none.
typedef struct deadline {
    int64_t at;
    int ms;
} deadline;

// The limit of an exchange that starts now and may take ms (<= 0: no limit).
static deadline deadline_in(int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline d = {(int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ms, ms};
    return d;
}

// Wait until fd is ready for ev (POLLIN, POLLOUT) or the deadline passes.
static hass_err wait_fd(int fd, short ev, const deadline *dl) {
    for (;;) {
        int left = -1;
        if (dl->ms > 0) {
            int64_t rest = dl->at - deadline_in(0).at;
            if (rest <= 0) return hass_seterr(HASS_EIO, "draft channel: no answer within %d ms", dl->ms);
            left = (int)rest;
        }
        struct pollfd pf = {fd, ev, 0};
        int r = poll(&pf, 1, left);
        if (r > 0) return HASS_OK;
        if (r < 0 && errno != EINTR) return hass_seterr(HASS_EIO, "draft channel: %s", strerror(errno));
    }
}

// Write all bytes before the deadline (EINTR-safe, no SIGPIPE).
static hass_err write_all(int fd, const void *p, size_t n, const deadline *dl) {
    const uint8_t *b = p;
    int flags = MSG_NOSIGNAL | (dl->ms > 0 ? MSG_DONTWAIT : 0);
    while (n) {
        hass_err e = dl->ms > 0 ? wait_fd(fd, POLLOUT, dl) : HASS_OK;
        if (e) return e;
        ssize_t k = send(fd, b, n, flags);
        if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (k <= 0) return hass_seterr(HASS_EIO, "draft channel: write failed: %s", strerror(errno));
        b += k;
        n -= (size_t)k;
    }
    return HASS_OK;
}

// Read exactly n bytes before the deadline: the limit is on the whole, not on each chunk.
static hass_err read_all(int fd, void *p, size_t n, const deadline *dl) {
    uint8_t *b = p;
    while (n) {
        hass_err e = wait_fd(fd, POLLIN, dl);
        if (e) return e;
        ssize_t k = read(fd, b, n);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0) return hass_seterr(HASS_EIO, "draft channel: the other side closed the connection");
        if (k < 0) return hass_seterr(HASS_EIO, "draft channel: read failed: %s", strerror(errno));
        b += k;
        n -= (size_t)k;
    }
    return HASS_OK;
}

// Send one frame of up to three payload parts.
static hass_err send_frame(int fd, uint32_t type, const void *a, size_t na, const void *b,
                           size_t nb, const void *c, size_t nc, const deadline *dl) {
    uint32_t hdr[3] = {MAGIC, type, (uint32_t)(na + nb + nc)};
    uLong crc = crc32(0L, Z_NULL, 0);
    if (na) crc = crc32(crc, a, (uInt)na);
    if (nb) crc = crc32(crc, b, (uInt)nb);
    if (nc) crc = crc32(crc, c, (uInt)nc);
    uint32_t cr = (uint32_t)crc;
    hass_err e;
    if ((e = write_all(fd, hdr, sizeof hdr, dl))) return e;
    if (na && (e = write_all(fd, a, na, dl))) return e;
    if (nb && (e = write_all(fd, b, nb, dl))) return e;
    if (nc && (e = write_all(fd, c, nc, dl))) return e;
    return write_all(fd, &cr, 4, dl);
}

// Receive one frame into *buf (grown as needed), all of it before the deadline. HASS_EFORMAT
// on a bad magic, size or CRC.
static hass_err recv_frame(int fd, uint32_t *type, uint8_t **buf, size_t *cap, uint32_t *len,
                           const deadline *dl) {
    uint32_t hdr[3];
    hass_err e = read_all(fd, hdr, sizeof hdr, dl);
    if (e) return e;
    if (hdr[0] != MAGIC) return hass_seterr(HASS_EFORMAT, "draft channel: bad frame magic %08x", hdr[0]);
    if (hdr[2] > MAX_PAYLOAD)
        return hass_seterr(HASS_EFORMAT, "draft channel: frame of %u bytes is over the limit", hdr[2]);
    if (hdr[2] + 1 > *cap) {
        uint8_t *p = realloc(*buf, hdr[2] + 1);
        if (!p) return hass_seterr(HASS_ENOMEM, "draft channel: out of memory");
        *buf = p;
        *cap = hdr[2] + 1;
    }
    uint32_t cr;
    if ((e = read_all(fd, *buf, hdr[2], dl)) || (e = read_all(fd, &cr, 4, dl))) return e;
    if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), *buf, hdr[2]) != cr)
        return hass_seterr(HASS_EFORMAT, "draft channel: CRC mismatch");
    *type = hdr[1];
    *len = hdr[2];
    return HASS_OK;
}

// ----------------------------------------------------------------------------
// client

struct hass_remote {
    int fd;
    int dead;          // a call failed: every later call fails at once
    char why[256];     // the message of that failure
    int timeout_ms;
    int n_embd;        // C of the feature rows
    int n_vocab;       // V: tree tokens are below it
    char path[108];    // the socket (sockaddr_un's sun_path)
    uint8_t *buf;
    size_t cap;
};

// Mark dead on failure (keeping the first message).
static hass_err chk(hass_remote *r, hass_err e) {
    if (e && !r->dead) snprintf(r->why, sizeof r->why, "%s", hass_errmsg());
    if (e) r->dead = 1;
    return e;
}

// RESET.
static hass_err rem_reset(void *ctx) {
    hass_remote *r = ctx;
    if (r->dead) return hass_seterr(HASS_EIO, "draft channel: lost earlier");
    deadline dl = deadline_in(r->timeout_ms);
    return chk(r, send_frame(r->fd, F_RESET, NULL, 0, NULL, 0, NULL, 0, &dl));
}

// PUSH.
static hass_err rem_push(void *ctx, const float *f, const int32_t *t, int m) {
    hass_remote *r = ctx;
    if (r->dead) return hass_seterr(HASS_EIO, "draft channel: lost earlier");
    deadline dl = deadline_in(r->timeout_ms);
    return chk(r, send_frame(r->fd, F_PUSH, &m, 4, f, sizeof(float) * (size_t)m * r->n_embd, t,
                             sizeof(int32_t) * (size_t)m, &dl));
}

// TREE: ask and load the answer.
static hass_err rem_tree(void *ctx, int32_t root, hass_tree *t) {
    hass_remote *r = ctx;
    if (r->dead) return hass_seterr(HASS_EIO, "draft channel: lost earlier");
    int32_t q[4] = {root, t->cfg.n_total, t->cfg.levels, t->cfg.top_k};
    deadline dl = deadline_in(r->timeout_ms); // for the question and the whole answer
    hass_err e = send_frame(r->fd, F_TREE, q, sizeof q, NULL, 0, NULL, 0, &dl);
    uint32_t type = 0, len = 0;
    if (!e) e = recv_frame(r->fd, &type, &r->buf, &r->cap, &len, &dl);
    if (e) return chk(r, e);
    if (type == F_ERR) {
        r->buf[len] = 0;
        return chk(r, hass_seterr(HASS_EIO, "drafter: %s", (char *)r->buf));
    }
    int32_t n;
    if (type != F_TREE_OK || len < 4 || (memcpy(&n, r->buf, 4), n < 1) || n > t->cfg.n_total ||
        len != 4 + 8 * (uint32_t)n)
        return chk(r, hass_seterr(HASS_EFORMAT, "draft channel: bad tree frame (type %u, %u bytes)", type, len));
    int32_t *tok = (int32_t *)(r->buf + 4), *par = tok + n;
    if (tok[0] != root)
        return chk(r, hass_seterr(HASS_EFORMAT, "draft channel: tree root %d, asked for %d", tok[0], root));
    for (int32_t i = 1; i < n; i++) // the target would refuse them in every later cycle
        if (tok[i] < 0 || tok[i] >= r->n_vocab)
            return chk(r, hass_seterr(HASS_EFORMAT, "draft channel: tree node %d is token %d, "
                                      "outside [0, %d)", i, tok[i], r->n_vocab));
    return chk(r, hass_tree_set(t, n, tok, par));
}

// Connect to a drafter's socket.
hass_remote *hass_remote_connect(const char *path, int n_embd, int n_vocab, int timeout_ms,
                                 hass_err *err) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path) {
        if (err) *err = hass_seterr(HASS_EINVAL, "draft channel: socket path too long: %s", path);
        return NULL;
    }
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (err) *err = hass_seterr(HASS_EIO, "draft channel: cannot connect to %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    return hass_remote_from_fd(fd, path, n_embd, n_vocab, timeout_ms, err);
}

// The client over a connected socket.
hass_remote *hass_remote_from_fd(int fd, const char *name, int n_embd, int n_vocab, int timeout_ms,
                                 hass_err *err) {
    hass_remote *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        if (err) *err = hass_seterr(HASS_ENOMEM, "draft channel: out of memory");
        return NULL;
    }
    r->fd = fd;
    r->timeout_ms = timeout_ms;
    r->n_embd = n_embd;
    r->n_vocab = n_vocab;
    snprintf(r->path, sizeof r->path, "%s", name);
    return r;
}

// The drafter interface over a connection.
hass_drafter hass_remote_drafter(hass_remote *r) {
    hass_drafter d = {r, rem_reset, rem_push, rem_tree};
    return d;
}

// The exchange limit of the environment.
int hass_remote_timeout_ms(void) {
    const char *v = getenv("HASS_DRAFT_TIMEOUT");
    if (!v || !*v) return 30000;
    char *end;
    double sec = strtod(v, &end);
    if (*end || !(sec > 0) || sec > 86400) {
        HASS_WARN("HASS_DRAFT_TIMEOUT=%s is not a number of seconds in (0, 86400]; 30 s it is", v);
        return 30000;
    }
    int ms = (int)(sec * 1e3 + 0.5);
    return ms > 0 ? ms : 1;
}

// The socket path.
const char *hass_remote_path(const hass_remote *r) { return r->path; }

// Whether a call has failed.
int hass_remote_dead(const hass_remote *r) { return r->dead; }

// The message of the first failure.
const char *hass_remote_why(const hass_remote *r) { return r->why; }

// Close and free.
void hass_remote_free(hass_remote *r) {
    if (!r) return;
    close(r->fd);
    free(r->buf);
    free(r);
}

// ----------------------------------------------------------------------------
// the announcement, client side

// Whether rec is a control record of type name.
static int is_type(const json_t *rec, const char *name) {
    const char *type = json_string_value(json_object_get(rec, "type"));
    return type && !strcmp(type, name);
}

// Whether rec announces a channel.
int hass_remote_is_announcement(const json_t *rec) { return is_type(rec, "draft_channel"); }

// Whether rec ends the channel.
int hass_remote_is_end(const json_t *rec) { return is_type(rec, "draft_channel_end"); }

// Check an announcement, reduce the tree to the drafter's limits, connect.
hass_remote *hass_remote_from_announcement(const json_t *rec, uint32_t target_fp, uint32_t tok_fp,
                                           int n_embd, int n_vocab, int timeout_ms,
                                           hass_tree_cfg *tc, hass_err *err) {
    char tf[16], kf[16];
    snprintf(tf, sizeof tf, "%08x", target_fp);
    snprintf(kf, sizeof kf, "%08x", tok_fp);
    const char *rtf = json_string_value(json_object_get(rec, "target_fp"));
    const char *rkf = json_string_value(json_object_get(rec, "tokenizer_fp"));
    const char *path = json_string_value(json_object_get(rec, "socket"));
    if (!path) {
        *err = hass_seterr(HASS_EFORMAT, "draft channel: \"socket\" missing");
        return NULL;
    }
    if (!rtf || strcmp(rtf, tf) || !rkf || strcmp(rkf, kf)) {
        *err = hass_seterr(HASS_EVOCAB, "draft channel: the drafter runs target %s / tokenizer %s, "
                                        "this is %s / %s", rtf ? rtf : "?", rkf ? rkf : "?", tf, kf);
        return NULL;
    }
    json_t *tr = json_object_get(rec, "tree");
    int lim[3] = {(int)json_integer_value(json_object_get(tr, "total")),
                  (int)json_integer_value(json_object_get(tr, "depth")),
                  (int)json_integer_value(json_object_get(tr, "topk"))};
    if (lim[0] > 0 && tc->n_total > lim[0]) tc->n_total = lim[0];
    if (lim[1] > 0 && tc->levels > lim[1]) tc->levels = lim[1];
    if (lim[2] > 0 && tc->top_k > lim[2]) tc->top_k = lim[2];
    return hass_remote_connect(path, n_embd, n_vocab, timeout_ms, err);
}

// ----------------------------------------------------------------------------
// server

// Serve one connection with the in-process drafter d.
hass_err hass_remote_serve(int fd, hass_draft *d, const hass_tree_cfg *max) {
    hass_drafter dr = hass_drafter_local(d);
    return hass_remote_serve_drafter(fd, &dr, hass_draft_n_embd(d), max);
}

// Serve one connection with drafter dr until the peer closes it (HASS_OK) or a frame is bad.
hass_err hass_remote_serve_drafter(int fd, const hass_drafter *dr, int C, const hass_tree_cfg *max) {
    uint8_t *buf = NULL;
    size_t cap = 0;
    hass_tree *t = NULL;
    hass_err e = HASS_OK;
    const deadline none = {0, 0}; // the drafter waits for the verifier as long as it takes
    for (;;) {
        uint32_t type, len;
        e = recv_frame(fd, &type, &buf, &cap, &len, &none);
        if (e) {
            if (strstr(hass_errmsg(), "closed the connection")) e = HASS_OK;
            break;
        }
        if (type == F_RESET) {
            if ((e = dr->reset(dr->ctx))) break;
        } else if (type == F_PUSH) {
            int32_t m;
            if (len < 4 || (memcpy(&m, buf, 4), m < 0) || (uint64_t)len != 4 + (uint64_t)m * (4ull * (uint64_t)C + 4)) {
                e = hass_seterr(HASS_EFORMAT, "draft channel: bad push frame");
                break;
            }
            e = dr->push(dr->ctx, (const float *)(buf + 4), (const int32_t *)(buf + 4 + (size_t)m * C * 4), m);
            if (e) break;
        } else if (type == F_TREE && len == 16) {
            int32_t q[4];
            memcpy(q, buf, 16);
            hass_tree_cfg c = {q[1], q[2], q[3]};
            if (c.n_total > max->n_total || c.levels > max->levels || c.top_k > max->top_k ||
                hass_tree_cfg_check(&c)) {
                e = hass_seterr(HASS_EINVAL, "tree (%d, %d, %d) beyond this drafter's (%d, %d, %d)",
                                c.n_total, c.levels, c.top_k, max->n_total, max->levels, max->top_k);
            } else {
                if (!t || t->cfg.n_total != c.n_total || t->cfg.levels != c.levels || t->cfg.top_k != c.top_k) {
                    hass_tree_free(t);
                    t = hass_tree_new(&c, &e);
                }
                if (t) e = dr->tree(dr->ctx, q[0], t);
            }
            if (e) {
                const char *msg = hass_errmsg();
                if ((e = send_frame(fd, F_ERR, msg, strlen(msg), NULL, 0, NULL, 0, &none))) break;
                continue;
            }
            int32_t n = t->n;
            if ((e = send_frame(fd, F_TREE_OK, &n, 4, t->tok, 4 * (size_t)n, t->parent, 4 * (size_t)n, &none))) break;
        } else {
            e = hass_seterr(HASS_EFORMAT, "draft channel: unknown frame type %u", type);
            break;
        }
    }
    hass_tree_free(t);
    free(buf);
    return e;
}

// ----------------------------------------------------------------------------
// the listening side: one client, served in a thread

struct hass_remote_server {
    int lfd;               // listening socket
    char path[108];        // its path (sun_path)
    hass_drafter dr;       // borrowed
    int C;                 // feature width
    hass_tree_cfg max;     // largest tree served
    pthread_t th;
    int started;           // the thread runs
    atomic_int input_done; // the stream ended: stop waiting for a client that never came
    hass_err result;       // how serving ended
    char msg[512];         // its message (hass_errmsg is per thread)
};

// Remove the sockets of this user's hass-draft processes that are gone (killed before they could
// unlink theirs) from dir: hass-draft.PID.sock with no process PID.
static void sweep_stale(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int pid, n = 0;
        if (sscanf(e->d_name, "hass-draft.%d.sock%n", &pid, &n) != 1 || e->d_name[n] || pid <= 0)
            continue;
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        if (lstat(path, &st) || !S_ISSOCK(st.st_mode) || st.st_uid != getuid()) continue;
        if (kill(pid, 0) != 0 && errno == ESRCH && !unlink(path))
            HASS_DEBUG("removed the stale socket %s", path);
    }
    closedir(d);
}

// Listen on a fresh socket.
hass_remote_server *hass_remote_listen(const hass_drafter *dr, int C, const hass_tree_cfg *max,
                                       hass_err *err) {
    hass_remote_server *s = calloc(1, sizeof *s);
    if (!s) {
        *err = hass_seterr(HASS_ENOMEM, "draft channel: out of memory");
        return NULL;
    }
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    const char *tmp = getenv("TMPDIR");
    tmp = tmp && *tmp ? tmp : "/tmp";
    sweep_stale(tmp);
    snprintf(a.sun_path, sizeof a.sun_path, "%s/hass-draft.%d.sock", tmp, (int)getpid());
    snprintf(s->path, sizeof s->path, "%s", a.sun_path);
    unlink(a.sun_path);
    s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 1) != 0) {
        *err = hass_seterr(HASS_EIO, "%s: %s", a.sun_path, strerror(errno));
        if (s->lfd >= 0) close(s->lfd);
        free(s);
        return NULL;
    }
    s->dr = *dr;
    s->C = C;
    s->max = *max;
    return s;
}

// Accept one client (or give up once the input is done and nobody came) and serve it.
static void *serve_thread(void *arg) {
    hass_remote_server *s = arg;
    int waited_after_eof = 0;
    for (;;) {
        struct pollfd pf = {s->lfd, POLLIN, 0};
        int r = poll(&pf, 1, 200);
        if (r > 0) break;
        if (atomic_load(&s->input_done) && ++waited_after_eof > 50) return NULL; // 10 s
    }
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    s->result = hass_remote_serve_drafter(fd, &s->dr, s->C, &s->max);
    if (s->result) snprintf(s->msg, sizeof s->msg, "%s", hass_errmsg());
    close(fd);
    return NULL;
}

// Announce the socket on out, then serve.
hass_err hass_remote_announce(hass_remote_server *s, FILE *out, uint32_t target_fp,
                              uint32_t tok_fp) {
    char tf[16], kf[16];
    snprintf(tf, sizeof tf, "%08x", target_fp);
    snprintf(kf, sizeof kf, "%08x", tok_fp);
    json_t *ann = json_pack("{s:s,s:i,s:s,s:s,s:s,s:{s:i,s:i,s:i}}", "type", "draft_channel",
                            "proto", 1, "socket", s->path, "target_fp", tf, "tokenizer_fp", kf,
                            "tree", "total", s->max.n_total, "depth", s->max.levels, "topk",
                            s->max.top_k);
    hass_err e = hass_jsonl_write(out, ann, 1);
    json_decref(ann);
    if (e) return e;
    s->started = pthread_create(&s->th, NULL, serve_thread, s) == 0;
    return HASS_OK;
}

// Write the end of the channel.
hass_err hass_remote_end(FILE *out) {
    json_t *end = json_pack("{s:s}", "type", "draft_channel_end");
    hass_err e = hass_jsonl_write(out, end, 1);
    json_decref(end);
    return e;
}

// Wait for the session, close, remove the socket.
hass_err hass_remote_close(hass_remote_server *s) {
    if (!s) return HASS_OK;
    atomic_store(&s->input_done, 1);
    if (s->started) pthread_join(s->th, NULL);
    close(s->lfd);
    unlink(s->path);
    hass_err e = s->result ? hass_seterr(s->result, "%s", s->msg) : HASS_OK;
    free(s);
    return e;
}
