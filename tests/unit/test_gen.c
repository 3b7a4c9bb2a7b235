// test_gen.c: the stop tracker (end-of-generation ids, stop ids, stop strings across token
// boundaries, max_new), record seeds, and plain generation on stories260K (greedy ids, EOS stop,
// context limit, per-record overrides, error records).
#include "gen.h"
#include "verify_record.h"
#include "unit.h"

int main(void) {
    char path[512];
    unit_data(path, sizeof path, "models/stories260K/stories260K-v3-f32.gguf");
    hass_err e;
    hass_tokenizer *tok = hass_tokenizer_load(path, &e);
    hass_model *m = tok ? hass_model_load(path, 1, &e) : NULL;
    if (!m) {
        SKIP("gen", "stories260K not loadable");
        hass_tokenizer_free(tok);
        return 0;
    }

    // Stop tracker: EOS (id 2) ends without being kept.
    hass_stop_cfg sc = {.max_new = 100, .tok = tok};
    hass_stop st;
    int keep;
    hass_stop_init(&st, &sc);
    hass_finish f1 = hass_stop_push(&st, 432, &keep);
    int k1 = keep;
    hass_finish f2 = hass_stop_push(&st, 2, &keep);
    CHECK("stop: EOS ends the generation and is not kept",
          f1 == HASS_FINISH_NONE && k1 && f2 == HASS_FINISH_EOS && !keep, "%d %d %d %d", f1, k1,
          f2, keep);
    hass_stop_free(&st);
    sc.ignore_eos = 1;
    hass_stop_init(&st, &sc);
    f2 = hass_stop_push(&st, 2, &keep);
    CHECK("stop: --ignore-eos keeps going", f2 == HASS_FINISH_NONE && keep, "%d %d", f2, keep);
    hass_stop_free(&st);

    // A stop string spanning two pieces (", there was" = 432 383 286): "re wa" needs 383 and 286.
    const char *stops[] = {"zzz", "re wa"};
    sc = (hass_stop_cfg){.max_new = 100, .tok = tok, .strs = stops, .n_strs = 2};
    hass_stop_init(&st, &sc);
    hass_finish a = hass_stop_push(&st, 432, &keep), b = hass_stop_push(&st, 383, &keep),
                c = hass_stop_push(&st, 286, &keep);
    CHECK("stop: a stop string across token boundaries matches on the token completing it",
          a == HASS_FINISH_NONE && b == HASS_FINISH_NONE && c == HASS_FINISH_STOP && keep &&
              st.stop_idx == 1,
          "%d %d %d idx %d", a, b, c, st.stop_idx);
    hass_stop_free(&st);
    sc = (hass_stop_cfg){.max_new = 2, .tok = tok};
    hass_stop_init(&st, &sc);
    a = hass_stop_push(&st, 432, &keep), b = hass_stop_push(&st, 383, &keep);
    CHECK("stop: max_new", a == HASS_FINISH_NONE && b == HASS_FINISH_LENGTH && keep &&
          st.finish == HASS_FINISH_LENGTH && st.n_gen == 2, "%d %d", a, b);
    hass_stop_free(&st);
    // A stop id is kept and ends with "stop"; no tokenizer: no end-of-generation ids, no text.
    const int32_t ids[] = {7, 383};
    sc = (hass_stop_cfg){.max_new = 100, .ids = ids, .n_ids = 2, .strs = stops, .n_strs = 2};
    hass_stop_init(&st, &sc);
    a = hass_stop_push(&st, 2, &keep);
    int ka = keep;
    b = hass_stop_push(&st, 383, &keep);
    CHECK("stop: a stop id is kept and ends the generation",
          a == HASS_FINISH_NONE && ka && b == HASS_FINISH_STOP && keep && st.stop_idx == -1 &&
              st.n_gen == 2 && st.len == 0,
          "%d %d %d idx %d", a, b, keep, st.stop_idx);
    hass_stop_free(&st);
    CHECK("stop: finish names", !strcmp(hass_finish_name(HASS_FINISH_EOS), "eos") &&
          !strcmp(hass_finish_name(HASS_FINISH_STOP), "stop") &&
          !strcmp(hass_finish_name(HASS_FINISH_LENGTH), "length") &&
          !strcmp(hass_finish_name(HASS_FINISH_NONE), "none"), "names");

    // Record seeds: the id decides, not the position; an explicit seed wins.
    json_t *r1 = json_pack("{s:s}", "id", "q7"), *r2 = json_pack("{s:s,s:i}", "id", "q7", "seed", 5);
    json_t *r3 = json_object();
    CHECK("seed: same id, same seed at any index",
          hass_verify_record_seed(3, r1, 0) == hass_verify_record_seed(3, r1, 99) &&
              hass_verify_record_seed(3, r1, 0) != hass_verify_record_seed(4, r1, 0),
          "differs");
    CHECK("seed: explicit seed key", hass_verify_record_seed(3, r2, 0) == 5, "not 5");
    CHECK("seed: no id: the index decides",
          hass_verify_record_seed(3, r3, 0) != hass_verify_record_seed(3, r3, 1), "same");
    json_decref(r1), json_decref(r2), json_decref(r3);

    // Plain generation: the greedy ids of llama.cpp's story, then the limits.
    hass_gen *g = hass_gen_new(m, tok, 16, &e);
    CHECK("gen: new", g && hass_gen_ctx(g) == 16, "%s", hass_errmsg());
    int32_t prompt[] = {1, 403, 407, 261, 378};
    hass_gen_cfg cfg = {.max_new = 6};
    hass_gen_out out;
    e = hass_gen_run(g, &cfg, 0, prompt, 5, NULL, NULL, &out);
    const int32_t want[] = {432, 383, 286, 261, 376, 298};
    CHECK("gen: greedy ids", !e && out.n_tokens == 6 && !memcmp(out.tokens, want, sizeof want) &&
          out.finish == HASS_FINISH_LENGTH && out.n_decode == 5,
          "e=%d n=%d finish=%d", e, out.n_tokens, out.finish);
    cfg.max_new = 100;
    e = hass_gen_run(g, &cfg, 0, prompt, 5, NULL, NULL, &out);
    CHECK("gen: a full context ends with length", !e && out.n_tokens == 16 - 5 + 1 &&
          out.finish == HASS_FINISH_LENGTH, "e=%d n=%d", e, out.n_tokens);
    int32_t big[17] = {1};
    e = hass_gen_run(g, &cfg, 0, big, 17, NULL, NULL, &out);
    CHECK("gen: prompt longer than the context", e == HASS_ERANGE, "e=%d", e);
    int32_t bad[] = {1, 512};
    e = hass_gen_run(g, &cfg, 0, bad, 2, NULL, NULL, &out);
    CHECK("gen: id out of range", e == HASS_ERANGE, "e=%d", e);
    e = hass_gen_run(g, &cfg, 0, bad, 0, NULL, NULL, &out);
    CHECK("gen: empty prompt", e == HASS_ERANGE, "e=%d", e);

    // Record glue: per-record max_new, error record keeps the input and says where.
    json_t *in = json_pack("{s:s,s:[i,i],s:i}", "id", "a", "tokens", 1, 403, "max_new", 2), *o;
    e = hass_verify_record(g, &cfg, in, "t:1", 0, 0, NULL, &o);
    CHECK("record: generated, finish, timing", !e && json_array_size(json_object_get(o, "generated")) == 2 &&
          !strcmp(json_string_value(json_object_get(o, "finish")), "length") &&
          json_is_object(json_object_get(o, "timing")), "e=%d", e);
    json_decref(o), json_decref(in);
    in = json_pack("{s:s}", "id", "b");
    e = hass_verify_record(g, &cfg, in, "t:2", 1, 0, NULL, &o);
    CHECK("record: missing tokens gives an error record",
          e == HASS_EFORMAT && !strcmp(json_string_value(json_object_get(o, "error")), "t:2: \"tokens\" missing") &&
          !strcmp(json_string_value(json_object_get(o, "finish")), "error") &&
          !strcmp(json_string_value(json_object_get(o, "id")), "b"),
          "%s", json_string_value(json_object_get(o, "error")));
    json_decref(o), json_decref(in);

    hass_gen_free(g);
    hass_gen_free(NULL);
    hass_model_free(m);
    hass_tokenizer_free(tok);
    return unit_failed ? 1 : 0;
}
