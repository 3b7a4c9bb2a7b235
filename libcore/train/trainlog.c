// trainlog.c: the training log (JSONL), its truncation on resume, the gnuplot curves, the notes.
#include "trainlog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// A plain note on stderr at the default verbosity.
void hass_trainlog_note(const char *fmt, ...) {
    if (hass_verbosity < 2) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", hass_log_prog());
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

// Write text to path atomically (tmp + fsync + rename).
hass_err hass_trainlog_write_atomic(const char *path, const char *text) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return hass_seterr(HASS_EIO, "%s: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        hass_err e = hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return e;
    }
    return HASS_OK;
}

// Keep only the log lines of steps <= step (resume), atomically.
hass_err hass_trainlog_truncate(const char *path, int64_t step) {
    FILE *f = fopen(path, "r");
    if (!f) return HASS_OK;
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap), line[65536];
    if (!out) {
        fclose(f);
        return hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
    }
    out[0] = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        int keep = j && json_integer_value(json_object_get(j, "step")) <= step;
        json_decref(j);
        if (!keep) continue;
        size_t l = strlen(line);
        if (len + l + 1 > cap) {
            char *nb = realloc(out, cap = 2 * (len + l + 1));
            if (!nb) {
                free(out);
                fclose(f);
                return hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
            }
            out = nb;
        }
        memcpy(out + len, line, l + 1);
        len += l;
    }
    fclose(f);
    hass_err e = hass_trainlog_write_atomic(path, out);
    free(out);
    return e;
}

// Append the per-step arrays of st to a JSON object.
void hass_trainlog_put_steps(json_t *j, const hass_train_stats *st, int64_t n_mask_tot,
                             const double *sums) {
    json_t *v = json_array(), *p = json_array(), *k = json_array(), *a1 = json_array(), *a3 = json_array();
    double nm = n_mask_tot > 0 ? (double)n_mask_tot : 1;
    for (int s = 0; s < st->n_align; s++) {
        json_array_append_new(v, json_real(sums ? sums[3 * s] / nm : st->vloss[s]));
        json_array_append_new(p, json_real(sums ? sums[3 * s + 1] / nm : st->ploss[s]));
        json_array_append_new(k, json_real(sums ? sums[3 * s + 2] / nm : st->kloss[s]));
        json_array_append_new(a1, json_real((double)st->top1[s] / nm));
        json_array_append_new(a3, json_real((double)st->top3[s] / nm));
    }
    json_object_set_new(j, "vloss", v);
    json_object_set_new(j, "ploss", p);
    json_object_set_new(j, "kloss", k);
    json_object_set_new(j, "acc1", a1);
    json_object_set_new(j, "acc3", a3);
}

// Append one JSON line to the log.
hass_err hass_trainlog_line(FILE *log, const char *path, json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(j);
    int bad = !s || fprintf(log, "%s\n", s) < 0 || fflush(log) != 0;
    free(s);
    return bad ? hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno)) : HASS_OK;
}

// The curves as two gnuplot blocks (training steps, held-out evaluations) from the log in.
static void write_tsv(FILE *in, FILE *o) {
    char line[65536];
    fprintf(o, "# block 0: training steps, block 1: held-out evaluations\n"
               "# step loss acc1_step0 acc3_step0 acc1_last_step\n");
    for (int pass = 0; pass < 2; pass++) { // train rows, then eval rows (gnuplot index 0 / 1)
        if (pass) fprintf(o, "\n\n");
        rewind(in);
        while (fgets(line, sizeof line, in)) {
            json_error_t je;
            json_t *j = json_loads(line, 0, &je);
            if (!j) continue;
            const char *ty = json_string_value(json_object_get(j, "type"));
            json_t *a1 = json_object_get(j, "acc1"), *a3 = json_object_get(j, "acc3");
            size_t na = json_array_size(a1);
            if (ty && !strcmp(ty, pass ? "eval" : "train"))
                fprintf(o, "%lld %.6g %.6g %.6g %.6g\n", (long long)json_integer_value(json_object_get(j, "step")),
                        json_number_value(json_object_get(j, "loss")), json_number_value(json_array_get(a1, 0)),
                        json_number_value(json_array_get(a3, 0)),
                        na ? json_number_value(json_array_get(a1, na - 1)) : 0.0);
            json_decref(j);
        }
    }
}

// Plot the curves of the log with gnuplot (skipped with a note when gnuplot is missing).
void hass_trainlog_plot(const char *dir) {
    char cmd[8400], gp[4200], tsv[4200];
    snprintf(tsv, sizeof tsv, "%s/curves.tsv", dir);
    snprintf(gp, sizeof gp, "%s/curves.gp", dir);
    char logp[4200];
    snprintf(logp, sizeof logp, "%s/log.jsonl", dir);
    FILE *in = fopen(logp, "r"), *o = fopen(tsv, "w");
    if (!in || !o) {
        if (in) fclose(in);
        if (o) fclose(o);
        return;
    }
    write_tsv(in, o);
    fclose(in);
    fclose(o);
    FILE *g = fopen(gp, "w");
    if (!g) return;
    fprintf(g, "# run in the output folder: cd DIR && gnuplot curves.gp\n"
               "set terminal png size 1000,420\nset output 'curves.png'\nset multiplot layout 1,2\n"
               "set xlabel 'optimiser step'\nset title 'loss (sum over alignment steps)'\n"
               "plot '%s' index 0 using 1:2 with lines title 'train', '' index 1 using 1:2 "
               "with linespoints title 'held-out'\n"
               "set title 'held-out accuracy'\nset yrange [0:1]\n"
               "plot '%s' index 1 using 1:3 with linespoints title 'top-1 (step 0)', '' index 1 using "
               "1:4 with linespoints title 'top-3 (step 0)', '' index 1 using 1:5 "
               "with linespoints title 'top-1 (last step)'\nunset multiplot\n", "curves.tsv", "curves.tsv");
    fclose(g);
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        HASS_INFO("gnuplot not found: %s written, no curves.png", gp);
        return;
    }
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot curves.gp >/dev/null 2>&1", dir);
    if (system(cmd) != 0) HASS_WARN("gnuplot failed on %s", gp);
}
