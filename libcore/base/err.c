// err.c: error codes, per-thread error messages, exit-code mapping, assertions.
#include "hass.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_msg[4096]; // messages quote paths (hass-train --resume: a path and two recipes)

// Name of an error code.
const char *hass_strerror(hass_err e) {
    switch (e) {
    case HASS_OK: return "OK";
    case HASS_EIO: return "EIO";
    case HASS_ENOMEM: return "ENOMEM";
    case HASS_EFORMAT: return "EFORMAT";
    case HASS_EVERSION: return "EVERSION";
    case HASS_EVOCAB: return "EVOCAB";
    case HASS_ECUDA: return "ECUDA";
    case HASS_ENODEV: return "ENODEV";
    case HASS_EINVAL: return "EINVAL";
    case HASS_EUNSUP: return "EUNSUP";
    case HASS_ERANGE: return "ERANGE";
    }
    return "E?";
}

// Last message recorded in this thread.
const char *hass_errmsg(void) { return g_msg; }

// Record a message and return the code.
hass_err hass_seterr(hass_err code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return code;
}

// Prepend a location to the current message.
void hass_errprefix(const char *fmt, ...) {
    char out[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out, sizeof out, fmt, ap);
    va_end(ap);
    size_t n = k < 0 ? 0 : (size_t)k < sizeof out ? (size_t)k : sizeof out - 1;
    const char *sep = ": ";
    for (const char *p = sep; *p && n + 1 < sizeof out; p++) out[n++] = *p;
    for (const char *p = g_msg; *p && n + 1 < sizeof out; p++) out[n++] = *p;
    out[n] = 0;
    memcpy(g_msg, out, n + 1);
}

// Exit code of the suite's table for an error code.
int hass_exit_code(hass_err e) {
    switch (e) {
    case HASS_OK: return HASS_EXIT_OK;
    case HASS_EFORMAT:
    case HASS_EVERSION:
    case HASS_EVOCAB: return HASS_EXIT_INPUT;
    case HASS_ENODEV: return HASS_EXIT_DEVICE;
    case HASS_EINVAL: return HASS_EXIT_USAGE;
    default: return HASS_EXIT_RUNTIME;
    }
}

// Exit code for a failed record.
int hass_record_exit_code(hass_err e) {
    return e == HASS_EFORMAT || e == HASS_ERANGE || e == HASS_EVOCAB || e == HASS_EVERSION
               ? HASS_EXIT_INPUT
               : HASS_EXIT_RUNTIME;
}

// Print the failed invariant and abort.
void hass_assert_fail(const char *file, int line, const char *expr) {
    fflush(stdout);
    fprintf(stderr, "%s:%d: assertion '%s' failed\n", file, line, expr);
    abort();
}
