// verify_spec.c: hass-verify's speculative decoding state (see verify_spec.h).
#include "verify_spec.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

// The --tree auto cost cache file of this setup (hass_cli_cache_file): keyed by what the
// measured costs depend on: the target, the head file, the device (and GPU), threads and
// kernels, the drafter's precision, the tree limits and the context. NULL: measure every run.
static char *cost_cache(hass_backend *b, const char *draft, const hass_tree_cfg *tc, int n_ctx,
                        int exact) {
    char head[PATH_MAX], st_path[PATH_MAX + 32], key[PATH_MAX + 512], gpu[256];
    struct stat st = {0};
    hass_backend_device_label(b, gpu, sizeof gpu);
    if (!realpath(draft, head)) return NULL;
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", head);
    if (stat(st_path, &st)) return NULL;
    snprintf(key, sizeof key, "%08x|%s|%lld|%lld|%s %s|%d|%s|%d|%d,%d,%d|%d",
             (unsigned)hass_model_fingerprint(b->m), head, (long long)st.st_size,
             (long long)st.st_mtime, hass_device_name(b->dev), gpu, hass_model_threads(b->m),
             hass_kernel_path(), exact, tc->n_total, tc->levels, tc->top_k, n_ctx);
    return hass_cli_cache_file("tree-auto", key);
}

int hass_verify_spec_metrics(hass_verify_spec *sp, const char *path) {
    if (!path || sp->metrics) return 0;
    sp->metrics = fopen(path, "w");
    if (!sp->metrics) return hass_cli_fail(HASS_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
    return 0;
}

int hass_verify_spec_setup(hass_verify_spec *sp, hass_backend *b, const hass_tokenizer *tok,
                           const hass_verify_spec_opts *a, int n_ctx, hass_verify_batch *vb) {
    hass_err e;
    int rc = hass_verify_spec_metrics(sp, a->metrics);
    if (rc || !a->draft) return rc;
    const hass_tree_cfg *tc = &sp->tc;
    sp->hd = hass_head_drafter_open(a->draft, b, hass_tokenizer_fingerprint(tok), n_ctx, tc,
                                    a->draft_exact, &e);
    if (!sp->hd) return hass_cli_fail_err(e, "%s", hass_errmsg());
    hass_drafter dr = hass_head_drafter_iface(sp->hd);
    char *cache = a->tree_auto ? cost_cache(b, a->draft, tc, n_ctx, a->draft_exact) : NULL;
    hass_spec_cfg sc = {*tc, a->tree_auto, {0.f, 0, 1.f}, 0, n_ctx, cache};
    if (vb) e = hass_verify_batch_set_draft(vb, sp->hd, &sc);
    else sp->spec = hass_spec_new_on(b, &dr, &sc, &e);
    free(cache);
    if (vb ? e != HASS_OK : !sp->spec) return hass_cli_fail_err(e, "%s", hass_errmsg());
    hass_tree_cfg cur = vb ? *tc : hass_spec_current_tree(sp->spec);
    HASS_INFO("draft head %s: tree %s, total %d, depth %d, top-k %d", a->draft,
              a->tree_auto ? "auto" : "fixed", cur.n_total, cur.levels, cur.top_k);
    return 0;
}

int hass_verify_spec_teardown(hass_verify_spec *sp) {
    int bad = sp->metrics && fclose(sp->metrics) != 0;
    hass_spec_free(sp->spec);
    hass_remote_free(sp->remote);
    hass_head_drafter_free(sp->hd);
    memset(sp, 0, sizeof *sp);
    return bad;
}
