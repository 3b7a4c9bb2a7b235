// test_train_convo.c: conversation records -> normalised messages, rendered text with assistant
// spans (ChatML through chat.h), tokens and the loss mask from token offsets (SmolLM2 tokenizer
// when models/ has it), and the file readers (JSON array and JSONL).
#include "chat.h"
#include "convo.h"
#include "unit.h"

// Render with the named chat template (ctx: tokenizer; NULL tokenizer allowed for chatml).
typedef struct {
    const hass_tokenizer *t;
    const char *name;
} rctx;

static hass_err render(void *p, const json_t *m, int gen, char **out) {
    rctx *c = p;
    return hass_chat_render(c->t, c->name, m, gen, out);
}

static void test_messages(void) {
    const char *why = NULL;
    json_t *rec = json_loads("{\"conversations\":[{\"from\":\"gpt\",\"value\":\"hello?\"},"
                             "{\"from\":\"human\",\"value\":\"Hi\"},{\"from\":\"gpt\",\"value\":\"Hello!\"},"
                             "{\"from\":\"human\",\"value\":\"2+2?\"},{\"from\":\"chatgpt\",\"value\":\"4\"}]}", 0, NULL);
    json_t *m = hass_convo_messages(rec, &why);
    char *s = m ? json_dumps(m, JSON_COMPACT) : NULL;
    CHECK("convo: ShareGPT normalised (leading gpt turn dropped, roles mapped)",
          s && !strcmp(s, "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello!\"},"
                          "{\"role\":\"user\",\"content\":\"2+2?\"},{\"role\":\"assistant\",\"content\":\"4\"}]"),
          "%s", s ? s : why);
    free(s);
    json_decref(m);
    json_decref(rec);
    rec = json_loads("{\"conversations\":[{\"from\":\"human\",\"value\":\"a\"},{\"from\":\"human\",\"value\":\"b\"},"
                     "{\"from\":\"gpt\",\"value\":\"c\"}]}", 0, NULL);
    m = hass_convo_messages(rec, &why);
    CHECK("convo: non-alternating roles rejected with a reason", !m && strstr(why, "alternate"), "%s", m ? "accepted" : why);
    json_decref(m);
    json_decref(rec);
    rec = json_loads("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"q\"}]}", 0, NULL);
    m = hass_convo_messages(rec, &why);
    CHECK("convo: a record without an assistant reply is rejected", !m && strstr(why, "no assistant"), "%s", m ? "accepted" : why);
    json_decref(m);
    json_decref(rec);
}

static void test_spans(void) {
    json_t *m = json_loads("[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Hi\"},"
                           "{\"role\":\"assistant\",\"content\":\"Hello!\"},{\"role\":\"user\",\"content\":\"2+2?\"},"
                           "{\"role\":\"assistant\",\"content\":\"4\"}]", 0, NULL);
    rctx c = {NULL, "chatml"};
    char *text = NULL;
    size_t len = 0, *sp = NULL;
    int n = 0;
    hass_err e = hass_convo_render(render, &c, m, &text, &len, &sp, &n);
    int ok = !e && n == 2;
    char a[64] = "", b[64] = "";
    if (ok) {
        snprintf(a, sizeof a, "%.*s", (int)(sp[1] - sp[0]), text + sp[0]);
        snprintf(b, sizeof b, "%.*s", (int)(sp[3] - sp[2]), text + sp[2]);
    }
    CHECK("convo: ChatML assistant spans = reply + <|im_end|>",
          ok && !strcmp(a, "Hello!<|im_end|>") && !strcmp(b, "4<|im_end|>"), "e %d n %d '%s' '%s'", e, n, a, b);
    // tokens and mask with the SmolLM2 tokenizer
    char mp[600];
    const char *md = getenv("HASS_MODELS");
    snprintf(mp, sizeof mp, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", md && *md ? md : "models");
    if (!unit_exists(mp)) {
        SKIP("convo: SmolLM2 tokens = whole-text encoding, mask = reply tokens + <|im_end|>", "no SmolLM2 in $HASS_MODELS");
    } else {
        hass_err err;
        hass_tokenizer *t = hass_tokenizer_load(mp, &err);
        int32_t *ids = NULL;
        uint8_t *mask = NULL;
        int64_t nt = 0;
        e = t ? hass_convo_tokens(t, text, len, sp, n, &ids, &mask, &nt) : err;
        int32_t *ref = NULL;
        int64_t nr = 0;
        if (!e) hass_tokenizer_encode_alloc(t, text, len, HASS_BOS_MODEL, 1, &ref, &nr);
        char got[256] = "";
        size_t gl = 0;
        for (int64_t i = 0; !e && i < nt; i++)
            if (mask[i]) {
                size_t pl;
                const char *p = hass_tokenizer_piece(t, ids[i], &pl);
                if (gl + pl + 2 < sizeof got) memcpy(got + gl, p, pl), gl += pl, got[gl++] = '|';
            }
        got[gl] = 0;
        CHECK("convo: SmolLM2 tokens = whole-text encoding, mask = reply tokens + <|im_end|>",
              !e && nr == nt && !memcmp(ref, ids, sizeof(int32_t) * nt) && strstr(got, "<|im_end|>|") &&
              strstr(got, "4|<|im_end|>|") && !strstr(got, "Hi") && !strstr(got, "user"),
              "e %d: masked pieces '%s'", e, got);
        free(ids), free(mask), free(ref);
        hass_tokenizer_free(t);
    }
    free(text), free(sp);
    json_decref(m);
}

// Count records of a file.
static int count_rec(void *p, int64_t idx, json_t *rec) {
    (void)idx, (void)rec;
    (*(int64_t *)p)++;
    return 0;
}

static void test_read(void) {
    char buf[512];
    const char *p = unit_data(buf, sizeof buf, "sharegpt/dummy_conversation.json");
    int64_t n = 0;
    if (!unit_exists(p)) {
        SKIP("convo: read a ShareGPT JSON array", "no HASS_DATA sharegpt");
    } else {
        hass_err e = hass_convo_read(p, count_rec, &n);
        CHECK("convo: read a ShareGPT JSON array (500 records)", !e && n == 500, "e %d n %lld", e, (long long)n);
    }
    char path[] = "/tmp/hass-convo-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("{\"messages\":[]}\n\n{\"messages\":[]}\n", f);
    fclose(f);
    n = 0;
    hass_err e = hass_convo_read(path, count_rec, &n);
    CHECK("convo: read JSONL (blank lines skipped)", !e && n == 2, "e %d n %lld", e, (long long)n);
    f = fopen(path, "w");
    fputs("{\"messages\":[]}\n{bad\n", f);
    fclose(f);
    e = hass_convo_read(path, count_rec, &n);
    CHECK("convo: bad JSONL line -> EFORMAT with file:line", e == HASS_EFORMAT && strstr(hass_errmsg(), ":2:"),
          "e %d %s", e, hass_errmsg());
    remove(path);
}

int main(void) {
    test_messages();
    test_spans();
    test_read();
    UNIT_DONE();
}
