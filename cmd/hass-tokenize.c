// hass-tokenize: adds "tokens" to JSONL records from their "text" or chat "messages".
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "cli.h"
#include "stream.h"
#include "tokenizer.h"

static const char *PROG = "hass-tokenize";

// Full help on stdout.
static void usage(void) {
    printf("usage: %s -m MODEL [OPTIONS] [FILE...]\n"
           "\n"
           "Tokenize the \"text\" (raw) or chat \"messages\" (template + generation prompt) of each\n"
           "JSONL record and add \"tokens\"; every other key is kept. ShareGPT \"conversations\"\n"
           "({\"from\": human|gpt|system, \"value\"}) count as messages. FILE '-' or none: stdin.\n"
           "\n"
           "  -m, --model PATH      GGUF (vocab-only too), HF folder, tokenizer.json, tokenizer.model,\n"
           "                        or a folder with encoder.json + vocab.bpe (+ tokenizer_config.json)\n"
           "      --chat            wrap \"text\" as one user message and apply the chat template\n"
           "      --template NAME   chat template: auto (default), %s\n"
           "      --no-gen-prompt   do not append the assistant header after \"messages\"\n"
           "      --mask            also add \"loss_mask\" (1 = assistant-turn token) for chats\n"
           "      --no-bos          never add BOS (default: as the model says)\n"
           "      --special         parse special-token strings in \"text\" (default: plain text)\n"
           "      --pre NAME        override the pre-tokenizer (gpt-2, llama-bpe, smollm, ...)\n"
           "      --max-text BYTES  longest text accepted per record (default 16777216)\n"
           "      --info            print the tokenizer's properties as one JSON line and exit\n"
           "  -o, --output FILE     write here instead of stdout\n"
           "      --bin             write binary frames (man hass-format)\n"
           "      --buffered        do not flush after each record\n"
           "  -f, --force           binary output to a terminal\n"
           "  -v, --verbose         more messages on stderr\n"
           "  -q, --quiet           fewer messages on stderr\n"
           "  -h, --help            this help\n"
           "  -V, --version         version and build (cpu-only or cuda)\n"
           "\n"
           "A record that cannot be tokenized (no \"text\"/\"messages\", bad JSON, text too long)\n"
           "becomes an error record; the rest go on.\n"
           "Exit status: 0 ok, 1 runtime failure, 2 usage, 3 some record was malformed.\n",
           PROG, hass_chat_names());
}

typedef struct ctx {
    hass_tokenizer *t;
    const char *template_name; // NULL = auto
    int chat, gen_prompt, no_bos, special, mask;
    int64_t max_text;
} ctx;

// Tokenize one record.
static hass_err tokenize_record(void *vc, const json_t *in, const char *where, hass_stream_writer *w,
                                json_t **out) {
    ctx *c = vc;
    (void)where;
    (void)w;
    json_t *text = json_object_get(in, "text"), *msgs = json_object_get(in, "messages");
    json_t *wrapped = NULL;
    char *rendered = NULL;
    hass_chat_span *spans = NULL;
    int64_t n_spans = 0;
    json_t *conv = json_object_get(in, "conversations");
    if (!msgs && conv) { // ShareGPT: {"from": "human"|"gpt"|"system", "value": ...}
        if (!json_is_array(conv)) return hass_seterr(HASS_EFORMAT, "\"conversations\" is not an array");
        msgs = wrapped = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(conv, i, m) {
            const char *from = json_string_value(json_object_get(m, "from"));
            json_t *value = json_object_get(m, "value");
            if (!from || !json_is_string(value)) {
                json_decref(wrapped);
                return hass_seterr(HASS_EFORMAT, "conversations[%zu]: \"from\" or \"value\" missing or not a string", i);
            }
            const char *role = !strcmp(from, "human") || !strcmp(from, "user") ? "user"
                               : !strcmp(from, "gpt") || !strcmp(from, "assistant") ? "assistant" : from;
            json_array_append_new(wrapped, json_pack("{s:s,s:O}", "role", role, "content", value));
        }
    }
    const char *s;
    size_t n;
    int add_bos = c->no_bos ? HASS_BOS_NO : HASS_BOS_MODEL, special = c->special;
    if (!msgs && text && c->chat) {
        if (!json_is_string(text)) return hass_seterr(HASS_EFORMAT, "\"text\" is not a string");
        msgs = wrapped = json_pack("[{s:s,s:O}]", "role", "user", "content", text);
    }
    if (msgs) {
        hass_err e = hass_chat_render_spans(c->t, c->template_name, msgs, c->gen_prompt, &rendered, &spans, &n_spans);
        json_decref(wrapped);
        if (e) return e;
        s = rendered;
        n = strlen(rendered);
        special = 1; // the template's markers are special tokens
        size_t nb;
        const char *bos = hass_tokenizer_text(c->t, hass_tokenizer_bos(c->t), &nb);
        if (bos && nb > 0 && n >= nb && !memcmp(s, bos, nb)) add_bos = HASS_BOS_NO; // already there
    } else if (text) {
        if (!json_is_string(text)) return hass_seterr(HASS_EFORMAT, "\"text\" is not a string");
        s = json_string_value(text);
        n = json_string_length(text);
    } else {
        return hass_seterr(HASS_EFORMAT, "record has neither \"text\" nor \"messages\"");
    }
    if ((int64_t)n > c->max_text) {
        free(rendered);
        free(spans);
        return hass_seterr(HASS_ERANGE, "text is %zu bytes, more than --max-text %lld", n, (long long)c->max_text);
    }
    int32_t *ids;
    int64_t n_ids;
    hass_err e = hass_tokenizer_encode_alloc(c->t, s, n, add_bos, special, &ids, &n_ids);
    int64_t *offs = NULL;
    uint8_t *mask = NULL;
    if (!e && c->mask && rendered) { // offsets of the same ids, then the assistant-span mask
        offs = malloc((size_t)(n_ids + 1) * sizeof *offs);
        mask = malloc((size_t)n_ids + 1);
        if (!offs || !mask) e = hass_seterr(HASS_ENOMEM, "out of memory");
        else if (hass_tokenizer_encode_offsets(c->t, s, n, add_bos, special, ids, offs, n_ids) != n_ids)
            e = hass_seterr(HASS_ENOMEM, "tokenize: out of memory");
        else hass_chat_span_mask(spans, n_spans, offs, n_ids, n, mask);
    }
    free(rendered);
    free(spans);
    free(offs);
    if (e) { free(ids); free(mask); return e; }
    *out = json_deep_copy(in);
    hass_jsonl_set_ids(*out, "tokens", ids, n_ids);
    if (mask) {
        json_t *a = json_array();
        for (int64_t k = 0; k < n_ids; k++) json_array_append_new(a, json_integer(mask[k]));
        json_object_set_new(*out, "loss_mask", a);
    }
    free(ids);
    free(mask);
    return HASS_OK;
}

// Print the tokenizer's properties as one JSON line.
static int print_info(const hass_tokenizer *t, FILE *out) {
    const char *tmpl = hass_tokenizer_chat_template(t);
    char fp[16];
    snprintf(fp, sizeof fp, "%08x", hass_tokenizer_fingerprint(t));
    json_t *o = json_pack("{s:s,s:s,s:i,s:i,s:i,s:b,s:s,s:s?}", "kind",
                          hass_tokenizer_kind(t) == HASS_TOK_SPM ? "spm" : "bpe", "pre", hass_tokenizer_pre(t),
                          "n_vocab", (int)hass_tokenizer_n_vocab(t), "bos", (int)hass_tokenizer_bos(t), "eos",
                          (int)hass_tokenizer_eos(t), "add_bos", hass_tokenizer_add_bos(t), "fingerprint", fp,
                          "chat_template", tmpl ? hass_chat_detect(tmpl) : NULL);
    json_t *eog = json_array();
    for (int32_t id = 0; id < hass_tokenizer_n_vocab(t); id++)
        if (hass_tokenizer_is_eog(t, id)) json_array_append_new(eog, json_integer(id));
    json_object_set_new(o, "eog", eog);
    hass_err e = hass_jsonl_write(out, o, 1);
    json_decref(o);
    return e ? HASS_EXIT_RUNTIME : 0;
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    enum { O_CHAT = 256, O_TMPL, O_NOGEN, O_NOBOS, O_SPECIAL, O_PRE, O_MAXT, O_INFO, O_MASK };
    static const struct option opts[] = {
        {"chat", no_argument, 0, O_CHAT},       {"template", required_argument, 0, O_TMPL},
        {"no-gen-prompt", no_argument, 0, O_NOGEN}, {"no-bos", no_argument, 0, O_NOBOS},
        {"special", no_argument, 0, O_SPECIAL}, {"pre", required_argument, 0, O_PRE},
        {"max-text", required_argument, 0, O_MAXT}, {"info", no_argument, 0, O_INFO},
        {"mask", no_argument, 0, O_MASK},       {0, 0, 0, 0}};
    hass_cli cl;
    hass_cli_init(&cl, PROG, usage, HASS_CLI_MODEL | HASS_CLI_OUTPUT, opts, "");
    const char *pre = NULL;
    ctx c = {.gen_prompt = 1, .max_text = 16 << 20};
    int info = 0, ch, rc;
    while ((ch = getopt_long(argc, argv, cl.shortopts, cl.opts, NULL)) != -1) {
        switch (ch) {
        case O_CHAT: c.chat = 1; break;
        case O_TMPL:
            if (!strcmp(optarg, "auto")) { c.template_name = NULL; break; }
            if (!hass_chat_canonical(optarg))
                return hass_cli_usage_error(PROG, "--template: unknown chat template '%s' (known: auto, %s)",
                                            optarg, hass_chat_names());
            c.template_name = optarg;
            break;
        case O_NOGEN: c.gen_prompt = 0; break;
        case O_MASK: c.mask = 1; break;
        case O_NOBOS: c.no_bos = 1; break;
        case O_SPECIAL: c.special = 1; break;
        case O_PRE: pre = optarg; break;
        case O_MAXT:
            if ((rc = hass_cli_int(PROG, "--max-text", optarg, 0, INT32_MAX, &c.max_text))) return rc;
            break;
        case O_INFO: info = 1; break;
        default:
            if ((rc = hass_cli_flag(&cl, ch, optarg)) >= 0) return rc;
        }
    }
    if ((rc = hass_cli_need_model(&cl))) return rc;
    const char *outpath = cl.output;
    hass_err e;
    c.t = hass_tokenizer_load(cl.model, &e);
    if (!c.t) return hass_cli_fail_err(e, "%s", hass_errmsg());
    if (pre && hass_tokenizer_set_pre(c.t, pre)) {
        hass_tokenizer_free(c.t);
        return hass_cli_usage_error(PROG, "--pre: %s", hass_errmsg());
    }
    FILE *out = hass_cli_open_output(&cl);
    if (!out) { hass_tokenizer_free(c.t); return HASS_EXIT_RUNTIME; }
    if (info) {
        rc = print_info(c.t, out);
        hass_tokenizer_free(c.t);
        if (out != stdout && fclose(out)) rc = HASS_EXIT_RUNTIME;
        return rc;
    }
    if ((rc = hass_cli_refuse_tty(&cl, out))) {
        hass_tokenizer_free(c.t);
        return rc;
    }
    hass_stream_writer w;
    hass_stream_writer_init(&w, out, outpath, cl.bin, !cl.buffered, hass_tokenizer_fingerprint(c.t));
    hass_stream_stats st;
    e = hass_stream_filter((const char *const *)argv + optind, argc - optind, 0, &w, tokenize_record, &c, &st);
    if (!e) e = hass_stream_writer_end(&w);
    int epipe = w.epipe;
    hass_stream_writer_free(&w);
    hass_tokenizer_free(c.t);
    if (out != stdout && fclose(out) != 0 && !e) e = hass_seterr(HASS_EIO, "%s: close failed: %s", outpath, strerror(errno));
    if (e) {
        if (epipe) return HASS_EXIT_RUNTIME;
        return hass_cli_fail_err(e, "%s", hass_errmsg());
    }
    if (st.n_failed) HASS_WARN("%lld of %lld records failed", (long long)st.n_failed, (long long)st.n_in);
    return st.exit_code;
}
