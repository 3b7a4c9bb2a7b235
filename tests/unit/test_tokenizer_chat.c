// test_tokenizer_chat.c: chat templates render exactly what the real Jinja templates render
// (tests/data/chat_renderings.jsonl from tests/gen/gen_chat.py), are detected from the template
// strings, and unknown names or bad messages are clear errors. The templates of real GGUF files
// (tests/data/chat_models.json, from tests/gen/gen_chat_models.py) render with hass's auto
// template exactly what jinja2 renders from them, default system turn included.
#include <unistd.h>

#include "chat.h"
#include "unit.h"

// Vocabulary whose BOS/EOS the template needs.
static hass_tokenizer *vocab_for(const char *tmpl, hass_tokenizer **cache) {
    char p[512];
    hass_err e;
    if (!strcmp(tmpl, "chatml")) {
        if (!cache[0]) {
            const char *m = getenv("HASS_MODELS") ? getenv("HASS_MODELS") : "models";
            snprintf(p, sizeof p, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", m);
            if (unit_exists(p)) cache[0] = hass_tokenizer_load(p, &e);
        }
        return cache[0];
    }
    if (!strcmp(tmpl, "llama-3")) {
        if (!cache[1]) {
            // the LLaMA-3 special tokens come from its tokenizer_config.json: a GPT-2 vocab plus it
            char dir[] = "/tmp/hass-chat-XXXXXX";
            if (!mkdtemp(dir)) return NULL;
            char cwd[256], s[700], d[700];
            const char *data = unit_data_dir();
            const char *src[] = {"tokenizer/llama3/encoder.json", "tokenizer/llama3/vocab.bpe",
                                 "tokenizer/hf/Meta-Llama-3-8B-Instruct/tokenizer_config.json"};
            const char *dst[] = {"encoder.json", "vocab.bpe", "tokenizer_config.json"};
            for (int i = 0; i < 3; i++) {
                if (data[0] == '/') snprintf(s, sizeof s, "%s/%s", data, src[i]);
                else snprintf(s, sizeof s, "%s/%s/%s", getcwd(cwd, sizeof cwd), data, src[i]);
                snprintf(d, sizeof d, "%s/%s", dir, dst[i]);
                if (symlink(s, d)) return NULL;
            }
            cache[1] = hass_tokenizer_load(dir, &e);
            for (int i = 0; i < 3; i++) { snprintf(d, sizeof d, "%s/%s", dir, dst[i]); unlink(d); }
            rmdir(dir);
        }
        return cache[1];
    }
    if (!cache[2]) cache[2] = hass_tokenizer_load(unit_data(p, sizeof p, "tokenizer/llama.cpp/ggml-vocab-llama-spm.gguf"), &e);
    return cache[2];
}

// Templates of chat_models.json that hass has no renderer for (it refuses them by name).
static int unsupported(const char *model) { return !strcmp(model, "ggml-vocab-phi-3.gguf"); }

// Every rendering of tests/data/chat_model_renderings.jsonl, by hass's auto template from the stored
// template string and BOS/EOS texts: equal to jinja2's byte for byte, or refused for unsupported.
static void check_model_renderings(void) {
    json_t *models = json_load_file("tests/data/chat_models.json", 0, NULL);
    FILE *f = fopen("tests/data/chat_model_renderings.jsonl", "r");
    CHECK("model template fixtures open", models && f, "tests/data/chat_models.json, chat_model_renderings.jsonl");
    if (!models || !f) { json_decref(models); if (f) fclose(f); return; }
    char line[16384], first[900] = "";
    int n = 0, ok = 0, n_unsup = 0, refused = 0, with_default = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *rec = json_loads(line, 0, NULL);
        const char *name = json_string_value(json_object_get(rec, "model"));
        json_t *mj = json_object_get(models, name ? name : "");
        hass_chat_model m = {.tmpl = json_string_value(json_object_get(mj, "template")),
                             .bos = json_string_value(json_object_get(mj, "bos_token")),
                             .eos = json_string_value(json_object_get(mj, "eos_token"))};
        m.n_bos = m.bos ? strlen(m.bos) : 0;
        m.n_eos = m.eos ? strlen(m.eos) : 0;
        json_t *msgs = json_object_get(rec, "messages");
        const char *want = json_string_value(json_object_get(rec, "text"));
        char *out = NULL;
        hass_err e = hass_chat_render_model(&m, NULL, msgs, json_is_true(json_object_get(rec, "add_generation_prompt")), &out,
                                            NULL, NULL);
        if (name && unsupported(name)) {
            n_unsup++;
            refused += e == HASS_EINVAL && strstr(hass_errmsg(), "not one we know") != NULL;
        } else {
            n++;
            int good = want ? !e && !strcmp(out, want) : e != HASS_OK;
            ok += good;
            if (!good && !first[0])
                snprintf(first, sizeof first, "%s #%d: got '%s' want '%s'", name ? name : "?", n, e ? hass_errmsg() : out,
                         want ? want : "an error");
            // the user's messages start with no system turn but the rendering does
            with_default += good && want && strcmp(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "system") &&
                            !strncmp(want, "<|im_start|>system", 18);
        }
        free(out);
        json_decref(rec);
    }
    fclose(f);
    json_decref(models);
    CHECK("model templates render as jinja2 renders them (auto, from the template string)", n > 0 && ok == n,
          "%d/%d; first: %s", ok, n, first);
    // 6 ChatML templates (2 Qwen2.5, SmolLM2, 3 synthetic) x 9 conversations that start without a
    // system message x generation prompt on/off
    CHECK("the default system turn is read from each ChatML template", with_default == 6 * 9 * 2, "%d", with_default);
    CHECK("templates hass has no renderer for are refused by auto", n_unsup > 0 && refused == n_unsup, "%d/%d", refused,
          n_unsup);
}

// Templates whose default system turn the walk must not take: under a condition it cannot decide,
// in a tools-only branch, or not a literal. The rendering then has none.
static void check_no_default(void) {
    const char *loop = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                       "'<|im_end|>\\n' }}{% endfor %}";
    const char *pre[] = {
        "{% if add_generation_prompt %}{{ '<|im_start|>system\\nMaybe<|im_end|>\\n' }}{% endif %}",
        "{% if tools %}{{ '<|im_start|>system\\nTools<|im_end|>\\n' }}{% endif %}",
        "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n' + default_system + '<|im_end|>\\n' }}{% endif %}",
        "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n' }}{{ 'Split<|im_end|>\\n' }}{% endif %}",
        "{% if messages[0]['role'] != 'system' %}{% raw %}{{ '<|im_start|>system\\nRaw<|im_end|>\\n' }}{% endraw %}{% endif %}",
    };
    json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", "Hi");
    int good = 0;
    char got[300] = "";
    for (int i = 0; i < 5; i++) {
        char tmpl[600];
        snprintf(tmpl, sizeof tmpl, "%s%s", pre[i], loop);
        hass_chat_model m = {.tmpl = tmpl};
        char *out = NULL;
        hass_err e = hass_chat_render_model(&m, NULL, msgs, 0, &out, NULL, NULL);
        int g = !e && !strcmp(out, "<|im_start|>user\nHi<|im_end|>\n");
        good += g;
        if (!g && !got[0]) snprintf(got, sizeof got, "#%d: %s", i, e ? hass_errmsg() : out);
        free(out);
    }
    json_decref(msgs);
    CHECK("no default system turn where the template's is undecidable, tools-only or computed", good == 5, "%d/5; %s", good,
          got);
}

int main(void) {
    hass_tokenizer *cache[3] = {0};
    FILE *f = fopen("tests/data/chat_renderings.jsonl", "r");
    CHECK("chat fixture opens", f != NULL, "tests/data/chat_renderings.jsonl");
    if (!f) UNIT_DONE();
    char line[8192];
    int n = 0, ok = 0, n_err = 0, ok_err = 0, skipped = 0;
    char first[600] = "";
    while (fgets(line, sizeof line, f)) {
        json_t *rec = json_loads(line, 0, NULL);
        const char *tmpl = json_string_value(json_object_get(rec, "template"));
        hass_tokenizer *t = tmpl ? vocab_for(tmpl, cache) : NULL;
        if (!t) { skipped++; json_decref(rec); continue; }
        char *out = NULL;
        hass_err e = hass_chat_render(t, tmpl, json_object_get(rec, "messages"),
                                      json_is_true(json_object_get(rec, "add_generation_prompt")), &out);
        const char *want = json_string_value(json_object_get(rec, "text"));
        if (want) {
            n++;
            if (!e && !strcmp(out, want)) ok++;
            else if (!first[0]) snprintf(first, sizeof first, "%s #%d: got '%s' want '%s'", tmpl, n, e ? hass_errmsg() : out, want);
        } else {
            n_err++;
            if (e == HASS_EFORMAT && strstr(hass_errmsg(), "alternate")) ok_err++;
        }
        free(out);
        json_decref(rec);
    }
    fclose(f);
    if (skipped) SKIP("chatml renderings", "SmolLM2 model not fetched");
    CHECK("chat renderings equal the Jinja renderings", n > 0 && ok == n, "%d/%d; first: %s", ok, n, first);
    CHECK("llama-2-chat refuses roles that do not alternate", n_err == 2 && ok_err == 2, "%d/%d", ok_err, n_err);

    // detection from the template strings
    json_t *tj = json_load_file("tests/data/chat_templates.json", 0, NULL);
    const char *names[] = {"chatml", "llama-3", "llama-2-chat", "vicuna"};
    int det = 0;
    for (int i = 0; i < 4; i++) {
        const char *d = hass_chat_detect(json_string_value(json_object_get(tj, names[i])));
        det += d && !strcmp(d, names[i]);
    }
    CHECK("chat templates are detected from their Jinja strings", det == 4, "%d/4", det);
    json_decref(tj);

    // auto on a model with a template, errors
    json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", "Hi");
    char *out = NULL;
    hass_tokenizer *spm = vocab_for("llama-2-chat", cache);
    hass_err e = hass_chat_render(spm, "nope", msgs, 1, &out);
    CHECK("unknown template name is an error naming it", e == HASS_EINVAL && strstr(hass_errmsg(), "'nope'") &&
          strstr(hass_errmsg(), "chatml"), "%s", hass_errmsg());
    e = hass_chat_render(spm, NULL, msgs, 1, &out);
    CHECK("auto without a model template asks for a name", e == HASS_EINVAL && strstr(hass_errmsg(), "no chat template"), "%s", hass_errmsg());
    json_t *bad = json_pack("[{s:s}]", "role", "user");
    e = hass_chat_render(spm, "vicuna", bad, 1, &out);
    CHECK("message without content is a format error", e == HASS_EFORMAT && strstr(hass_errmsg(), "messages[0]: \"content\""), "%s", hass_errmsg());
    json_decref(bad);
    if (cache[0]) {
        e = hass_chat_render(cache[0], NULL, msgs, 1, &out);
        CHECK("auto picks ChatML for SmolLM2 with its default system message",
              !e && !strncmp(out, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM", 60), "%s", out);
        free(out);
    }
    if (cache[1]) {
        e = hass_chat_render(cache[1], "llama-3", msgs, 1, &out);
        int32_t ids[64];
        int64_t nt = e ? 0 : hass_tokenizer_encode(cache[1], out, strlen(out), HASS_BOS_NO, 1, ids, 64);
        CHECK("llama-3 rendering tokenizes with one BOS and header tokens", nt > 5 && ids[0] == 128000 && ids[1] == 128006 &&
              ids[1] != ids[2] && ids[nt - 1] == 271, "n=%lld last=%d", (long long)nt, nt > 0 ? ids[nt - 1] : -1);
        free(out);
    }
    json_decref(msgs);
    // assistant spans -> token loss mask, for each vocabulary kind
    json_t *conv = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "role", "user", "content", "What is 2+2?",
                             "role", "assistant", "content", " 4. ", "role", "user", "content", "And 3+3?",
                             "role", "assistant", "content", "6!");
    const char *tmpls[] = {"llama-2-chat", "llama-3", "chatml", "vicuna"};
    // a token that straddles a span's start is masked (SmolLM2's "\n " before " 4."); SPM
    // decoding drops one leading space of the first piece
    const char *want_masked[] = {"4. </s>6! </s>", "4.<|eot_id|>6!<|eot_id|>", "\n 4. <|im_end|>6!<|im_end|>", " 4. </s>6!</s>"};
    for (int k = 0; k < 4; k++) {
        hass_tokenizer *t = vocab_for(tmpls[k], cache);
        char nm[96];
        snprintf(nm, sizeof nm, "%s: assistant spans give the token loss mask", tmpls[k]);
        if (!t) { SKIP(nm, "vocabulary missing"); continue; }
        hass_chat_span *sp = NULL;
        int64_t nsp = 0;
        e = hass_chat_render_spans(t, tmpls[k], conv, 0, &out, &sp, &nsp);
        int32_t ids[256];
        int64_t offs[256];
        uint8_t mask[256];
        int64_t nt = e ? 0 : hass_tokenizer_encode_offsets(t, out, strlen(out), HASS_BOS_NO, 1, ids, offs, 256);
        if (nt > 0) hass_chat_span_mask(sp, nsp, offs, nt, strlen(out), mask);
        int32_t sel[256];
        int64_t ns = 0;
        for (int64_t i = 0; i < nt; i++) if (mask[i]) sel[ns++] = ids[i];
        char *txt = NULL;
        if (ns > 0) hass_tokenizer_decode(t, sel, ns, 1, &txt, NULL);
        int good = txt && nsp == 2 && sp[0].message == 1 && sp[1].message == 3 && !strcmp(txt, want_masked[k]);
        CHECK(nm, good, "spans %lld, masked text '%s'", (long long)nsp, txt ? txt : "");
        free(txt);
        free(sp);
        free(out);
    }
    json_decref(conv);
    for (int i = 0; i < 3; i++) hass_tokenizer_free(cache[i]);
    check_model_renderings();
    check_no_default();
    UNIT_DONE();
}
