// test_jsonl.c: the JSONL reader keeps unknown keys, reports <file>:<line> on bad lines and goes
// on; over-long lines are skipped; id arrays are range-checked.
#include <unistd.h>

#include "jsonl.h"
#include "unit.h"

int main(void) {
    const char *text = "{\"id\":\"a\",\"text\":\"hi\",\"extra\":{\"k\":[1,2]},\"r\":0.1}\n"
                       "\n"
                       "not json\n"
                       "[1,2]\n"
                       "{\"id\":2,\"tokens\":[1,2,70000]}\r\n"
                       "{\"id\":3,\"pad\":\"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\"}\n"
                       "{\"id\":4}";
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    hass_jsonl_reader r;
    hass_jsonl_reader_init(&r, f, "<test>");
    r.max_line = 100;
    json_t *o;
    hass_err e = hass_jsonl_read(&r, &o);
    CHECK("jsonl first record", !e && o && r.line == 1, "e=%d line=%lld", e, (long long)r.line);
    char *s = json_dumps(o, JSON_COMPACT);
    CHECK("jsonl keeps unknown keys in order", s && !strcmp(s, "{\"id\":\"a\",\"text\":\"hi\",\"extra\":{\"k\":[1,2]},\"r\":0.10000000000000001}") , "%s", s);
    free(s);
    json_decref(o);
    e = hass_jsonl_read(&r, &o);
    CHECK("jsonl non-JSON line", e == HASS_EFORMAT && !o && strstr(hass_errmsg(), "<test>:3: not JSON"), "%s", hass_errmsg());
    e = hass_jsonl_read(&r, &o);
    CHECK("jsonl non-object line", e == HASS_EFORMAT && strstr(hass_errmsg(), "<test>:4: record is not a JSON object"), "%s", hass_errmsg());
    e = hass_jsonl_read(&r, &o);
    CHECK("jsonl CRLF record after errors", !e && o && r.line == 5, "e=%d", e);
    int32_t *ids;
    int64_t n;
    e = hass_jsonl_get_ids(o, "tokens", 50000, &ids, &n);
    CHECK("jsonl id out of range", e == HASS_ERANGE && strstr(hass_errmsg(), "\"tokens\"[2] = 70000"), "%s", hass_errmsg());
    e = hass_jsonl_get_ids(o, "tokens", 100000, &ids, &n);
    CHECK("jsonl ids", !e && n == 3 && ids[2] == 70000, "e=%d", e);
    free(ids);
    e = hass_jsonl_get_ids(o, "nope", 10, &ids, &n);
    CHECK("jsonl missing key", e == HASS_EFORMAT && strstr(hass_errmsg(), "\"nope\" missing"), "%s", hass_errmsg());
    json_t *er = hass_jsonl_error_record(o, "<test>:5: boom", 5);
    s = json_dumps(er, JSON_COMPACT);
    CHECK("jsonl error record keeps id", s && strstr(s, "\"id\":2") && strstr(s, "\"error\":\"<test>:5: boom\""), "%s", s);
    free(s);
    json_decref(er);
    json_decref(o);
    e = hass_jsonl_read(&r, &o);
    CHECK("jsonl over-long line", e == HASS_ERANGE && strstr(hass_errmsg(), "<test>:6: line longer"), "%s", hass_errmsg());
    e = hass_jsonl_read(&r, &o);
    CHECK("jsonl last line without newline", !e && o && json_integer_value(json_object_get(o, "id")) == 4, "e=%d", e);
    json_decref(o);
    e = hass_jsonl_read(&r, &o);
    CHECK("jsonl end of input", !e && !o, "e=%d", e);
    hass_jsonl_reader_free(&r);
    fclose(f);
    // the writer: compact, floats with 9 significant digits, one line
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    json_t *w = json_pack("{s:s, s:f, s:[i,i]}", "id", "x", "t", 0.1, "tokens", 1, 2);
    e = hass_jsonl_write(m, w, 1);
    fclose(m);
    CHECK("jsonl writer line", !e && !strcmp(buf, "{\"id\":\"x\",\"t\":0.1,\"tokens\":[1,2]}\n"), "%s", buf);
    free(buf);
    json_decref(w);
    UNIT_DONE();
}
