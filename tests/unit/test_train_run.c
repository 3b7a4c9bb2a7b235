// test_train_run.c: the library side of hass-train (libcore/train/trainrun.c, trainfeat.c,
// trainlog.c): the epoch data order, the log helpers (atomic write, truncation on resume, the
// per-step arrays), and on stories260K a feature shard and a short run through the library:
// files written, nothing on stdout, a resume that refuses another recipe, and the errors that
// come back as hass_err instead of exits.
#include "mapfile.h"
#include "trainfeat.h"
#include "trainlog.h"
#include "trainrun.h"
#include "unit.h"

#include <fcntl.h>
#include <unistd.h>

// Whole file into a malloc'd string ("" when empty, NULL when missing).
static char *slurp(const char *path) {
    const uint8_t *m;
    uint64_t n;
    hass_err e = hass_file_map(path, &m, &n);
    if (e) return e == HASS_EFORMAT ? strdup("") : NULL;
    char *s = strndup((const char *)m, (size_t)n);
    hass_file_unmap(m, n);
    return s;
}

// Lines of a string.
static int n_lines(const char *s) {
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

static void test_shuffle(void) {
    int64_t p[10], q[10];
    static const int64_t want0[10] = {0, 8, 1, 5, 2, 4, 9, 6, 3, 7}, want1[10] = {6, 7, 3, 1, 9, 2, 0, 5, 8, 4};
    hass_trainrun_shuffle(p, 10, 0, 0);
    hass_trainrun_shuffle(q, 10, 7, 3);
    // the data order is part of a checkpoint's meaning: a changed order breaks exact resume
    CHECK("trainrun: data order of seed 0 epoch 0 and seed 7 epoch 3 unchanged",
          !memcmp(p, want0, sizeof p) && !memcmp(q, want1, sizeof q), "got %lld %lld %lld ...", (long long)p[0],
          (long long)p[1], (long long)p[2]);
    int64_t big[1000];
    int seen[1000] = {0}, ok = 1, moved = 0;
    hass_trainrun_shuffle(big, 1000, 3, 1);
    for (int i = 0; i < 1000; i++) {
        ok &= big[i] >= 0 && big[i] < 1000 && !seen[big[i]]++;
        moved += big[i] != i;
    }
    CHECK("trainrun: the data order is a permutation that moves most records", ok && moved > 900, "moved %d", moved);
    hass_trainrun_shuffle(p, 10, 0, 1);
    CHECK("trainrun: another epoch gets another order", memcmp(p, want0, sizeof p) != 0, "same order");
}

static void test_log(const char *dir) {
    char path[600], bad[600];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    snprintf(bad, sizeof bad, "%s/none/log.jsonl", dir);
    const char *text = "{\"type\":\"train\",\"step\":1}\n{\"type\":\"train\",\"step\":2}\n"
                       "{\"type\":\"eval\",\"step\":2}\n{\"type\":\"train\",\"step\":3}\n{\"type\":\"train\",\"step\":4}\n";
    hass_err e = hass_trainlog_write_atomic(path, text);
    char *s = slurp(path);
    CHECK("trainlog: atomic write", !e && s && !strcmp(s, text), "err %d %s", e, hass_errmsg());
    free(s);
    e = hass_trainlog_truncate(path, 2);
    s = slurp(path);
    CHECK("trainlog: truncation keeps the lines of steps <= 2 (eval included)",
          !e && s && !strcmp(s, "{\"type\":\"train\",\"step\":1}\n{\"type\":\"train\",\"step\":2}\n"
                                "{\"type\":\"eval\",\"step\":2}\n"), "%s", s ? s : hass_errmsg());
    free(s);
    CHECK("trainlog: truncating a missing log is fine", hass_trainlog_truncate(bad, 2) == HASS_OK, "%s", hass_errmsg());
    e = hass_trainlog_write_atomic(bad, "x");
    CHECK("trainlog: an atomic write into a missing folder is EIO naming the file",
          e == HASS_EIO && strstr(hass_errmsg(), "none/log.jsonl"), "err %d %s", e, hass_errmsg());

    hass_train_stats st = {.n_align = 2, .vloss = {0.5, 0.25}, .ploss = {1, 2}, .kloss = {3, 4},
                           .top1 = {1, 2}, .top3 = {3, 4}, .n_mask = 4};
    FILE *f = fopen(path, "w");
    json_t *j = json_object();
    json_object_set_new(j, "step", json_integer(7));
    hass_trainlog_put_steps(j, &st, st.n_mask, NULL);
    e = f ? hass_trainlog_line(f, path, j) : HASS_EIO;
    if (f) fclose(f);
    s = slurp(path);
    CHECK("trainlog: a step's line (compact, per-alignment-step arrays, accuracies over the mask)",
          !e && s && !strcmp(s, "{\"step\":7,\"vloss\":[0.5,0.25],\"ploss\":[1.0,2.0],\"kloss\":[3.0,4.0],"
                                "\"acc1\":[0.25,0.5],\"acc3\":[0.75,1.0]}\n"), "%s", s ? s : hass_errmsg());
    free(s);
    double sums[6] = {2, 4, 8, 1, 1, 1};
    j = json_object();
    hass_trainlog_put_steps(j, &st, 8, sums);
    char *d = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    CHECK("trainlog: with sums the losses are sums / mask count", d && strstr(d, "\"vloss\":[0.25,0.125]") &&
          strstr(d, "\"kloss\":[1.0,0.125]") && strstr(d, "\"acc1\":[0.125,0.25]"), "%s", d ? d : "(null)");
    free(d);
}

// Run fn(ctx) with file descriptor 1 sent to path; returns what fn returned.
static hass_err with_stdout_to(const char *path, hass_err (*fn)(void *), void *ctx) {
    fflush(stdout);
    int saved = dup(1), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0) return HASS_EIO;
    dup2(fd, 1);
    close(fd);
    hass_err e = fn(ctx);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return e;
}

// A run's configuration and its one shard.
typedef struct {
    hass_trainrun_cfg c;
    const char *shard;
} job;

// A training run through the library: open, run, free.
static hass_err train(void *p) {
    const job *j = p;
    hass_err e;
    hass_trainrun *r = hass_trainrun_open(&j->c, &j->shard, 1, &e);
    if (r) e = hass_trainrun_run(r);
    hass_trainrun_free(r);
    return e;
}

// Features, a run, a resume with another recipe and the errors, on stories260K.
static void test_run(const char *dir) {
    char model[512], conv[512], shard[600], out[600], p[700];
    unit_data(model, sizeof model, "models/stories260K/stories260K-v3-f32.gguf");
    unit_data(conv, sizeof conv, "sharegpt/dummy_conversation.json");
    if (!unit_exists(model) || !unit_exists(conv)) {
        SKIP("trainrun: stories260K run", "needs stories260K and the dummy conversations");
        return;
    }
    snprintf(shard, sizeof shard, "%s/c.shard", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    const char *files[1] = {conv};
    hass_features_cfg fc = {.model = model, .out = shard, .tmpl = "chatml", .limit = 4, .max_len = 48,
                            .threads = 1, .progress = 0};
    hass_err e = hass_features_make(&fc, files, 1);
    CHECK("trainfeat: a shard from 4 conversations", !e && unit_exists(shard), "err %d %s", e, hass_errmsg());
    if (e) return;
    fc.tmpl = "nope";
    snprintf(p, sizeof p, "%s/x.shard", dir);
    fc.out = p;
    e = hass_features_make(&fc, files, 1);
    CHECK("trainfeat: an unknown template is EINVAL (exit 2), no shard", e == HASS_EINVAL && !unit_exists(p) &&
          strstr(hass_errmsg(), "--template: unknown 'nope'"), "err %d %s", e, hass_errmsg());
    fc.tmpl = NULL;
    e = hass_features_make(&fc, files, 1);
    CHECK("trainfeat: a model without a chat template is EFORMAT (exit 3)",
          e == HASS_EFORMAT && strstr(hass_errmsg(), "no chat template recognised"), "err %d %s", e, hass_errmsg());

    job jb = {.shard = shard};
    hass_trainrun_cfg *c = &jb.c;
    hass_trainrun_defaults(c);
    c->model = model, c->out = out, c->batch = 2, c->test_frac = 0.25, c->threads = 1, c->progress = 0;
    char so[700];
    snprintf(so, sizeof so, "%s/stdout", dir);
    e = with_stdout_to(so, train, &jb);
    char *s = slurp(so);
    CHECK("trainrun: a run writes nothing to stdout", !e && s && !*s, "err %d %s; stdout '%s'", e, hass_errmsg(),
          s ? s : "(none)");
    free(s);
    snprintf(p, sizeof p, "%s/log.jsonl", out);
    s = slurp(p);
    int ok = 1;
    const char *names[] = {"model.safetensors", "config.json", "state.safetensors", "curves.gp"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", out, names[i]);
        ok &= unit_exists(p);
    }
    // 4 records, 3 for training in batches of 2: 2 steps, then one held-out evaluation
    CHECK("trainrun: head, state, curves and a log of 2 steps and 1 evaluation", ok && n_lines(s) == 3 && s &&
          strstr(s, "\"type\":\"eval\",\"step\":2"), "log: %s", s ? s : "(none)");
    free(s);

    c->resume = 1, c->batch = 3;
    e = train(&jb);
    CHECK("trainrun: resuming with another batch size is EINVAL (exit 2) naming both recipes",
          e == HASS_EINVAL && strstr(hass_errmsg(), "another recipe") && strstr(hass_errmsg(), "\"batch\":2") &&
          strstr(hass_errmsg(), "\"batch\":3"), "err %d %s", e, hass_errmsg());
    c->resume = 0, c->batch = 2, c->test_frac = 0.9;
    e = train(&jb);
    CHECK("trainrun: no training records is EFORMAT (exit 3)",
          e == HASS_EFORMAT && strstr(hass_errmsg(), "no training records (4 in all)"), "err %d %s", e, hass_errmsg());
    c->test_frac = 0.25, c->batch = 0;
    e = train(&jb);
    CHECK("trainrun: a batch of 0 is EINVAL", e == HASS_EINVAL, "err %d %s", e, hass_errmsg());
}

int main(void) {
    hass_verbosity = 1;
    char dir[] = "/tmp/hass-trainrun-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    test_shuffle();
    test_log(dir);
    test_run(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    UNIT_DONE();
}
