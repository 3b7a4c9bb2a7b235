// test_stream.c: binary framing (header, CRC, limits, record codec) and the stream reader and
// writer in both encodings, through in-memory FILEs.
#include "frame.h"
#include "stream.h"
#include "unit.h"

// Read every record of buf (n bytes); returns the number of records and errors seen, with the
// compact JSON of each record (or "E:<message>") joined by newlines into out.
static int read_all(const char *buf, size_t n, char *out, size_t cap, int *n_err, int *fatal) {
    FILE *f = fmemopen((void *)buf, n, "rb");
    hass_stream_reader r;
    hass_stream_reader_init(&r, f, "mem", 0);
    int n_rec = 0;
    *n_err = 0, *fatal = 0;
    out[0] = 0;
    while (!r.done) {
        json_t *rec;
        hass_err e = hass_stream_read(&r, &rec);
        size_t len = strlen(out);
        if (e) {
            (*n_err)++;
            *fatal |= r.fatal;
            snprintf(out + len, cap - len, "E:%s\n", hass_errmsg());
            continue;
        }
        if (!rec) break;
        char *s = json_dumps(rec, JSON_COMPACT);
        snprintf(out + len, cap - len, "%s\n", s);
        free(s);
        json_decref(rec);
        n_rec++;
    }
    hass_stream_reader_free(&r);
    fclose(f);
    return n_rec;
}

// Write the records of a JSONL text through a writer into *buf (binary or JSONL).
static size_t write_all(const char *jsonl, int bin, char **buf) {
    size_t n = 0;
    FILE *f = open_memstream(buf, &n);
    hass_stream_writer w;
    hass_stream_writer_init(&w, f, "mem", bin, 1, 0xabcd1234u);
    FILE *in = fmemopen((void *)jsonl, strlen(jsonl), "rb");
    hass_stream_reader r;
    hass_stream_reader_init(&r, in, "in", 0);
    json_t *rec;
    while (!hass_stream_read(&r, &rec) && rec) {
        hass_stream_write(&w, rec);
        json_decref(rec);
    }
    hass_stream_writer_end(&w);
    hass_stream_writer_free(&w);
    hass_stream_reader_free(&r);
    fclose(in);
    fclose(f);
    return n;
}

// An END frame must carry the count of the frames before it: a wrong count or an empty payload
// is an error after the records (not fatal: another stream may follow), one that says where.
static void test_end_count(void) {
    static const struct { const char *payload; uint32_t n; const char *want; } cases[] = {
        {"\x63\0\0\0", 4, "frame 4: END frame says 99 frames came before it, the stream had 3"},
        {"", 0, "frame 4: END frame has a 0-byte payload"},
        {"\x02\0\0\0", 4, "END frame says 2 frames"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char *buf = NULL, got[2048], nm[80];
        size_t nb = 0;
        FILE *f = open_memstream(&buf, &nb);
        hass_frame_write_header(f, 0, 0);
        for (uint32_t i = 0; i < 3; i++) hass_frame_write(f, 77, i, "\x01", 1);
        hass_frame_write(f, HASS_FRAME_END, 3, cases[c].payload, cases[c].n);
        hass_frame_write_header(f, 0, 0); // a good stream after it still reads
        hass_frame_write(f, 77, 0, "\x02", 1);
        hass_frame_write(f, HASS_FRAME_END, 1, "\x01\0\0\0", 4);
        fclose(f);
        int n_err, fatal, k = read_all(buf, nb, got, sizeof got, &n_err, &fatal);
        snprintf(nm, sizeof nm, "END frame count checked (case %zu)", c);
        CHECK(nm, k == 4 && n_err == 1 && !fatal && strstr(got, cases[c].want), "k=%d err=%d fatal=%d\n%s",
              k, n_err, fatal, got);
        free(buf);
    }
}

int main(void) {
    test_end_count();
    const char *recs = "{\"id\":\"a\",\"tokens\":[1,2,-3,2147483647],\"m\":{\"x\":[1]},\"t\":0.5}\n"
                       "{\"id\":\"b\",\"tokens\":[],\"z\":[1,\"a\"],\"big\":[2147483648]}\n"
                       "{\"generated\":[7],\"id\":7,\"tokens\":[9]}\n";
    char got[8192];
    int n_err, fatal;

    // CRC-32 of "123456789" is the standard check value.
    CHECK("crc32 check value", hass_crc32(0, "123456789", 9) == 0xcbf43926u, "%08x",
          hass_crc32(0, "123456789", 9));

    // JSONL -> binary -> records gives the same text as JSONL -> records.
    char *bin = NULL;
    size_t nb = write_all(recs, 1, &bin);
    int k = read_all(bin, nb, got, sizeof got, &n_err, &fatal);
    CHECK("binary round trip keeps records and key order", k == 3 && n_err == 0 && !strcmp(got, recs),
          "k=%d err=%d got:\n%s", k, n_err, got);
    CHECK("binary header: magic, version, size, vocab fp",
          nb > 16 && !memcmp(bin, "HASS\x01\x00\x10\x00\x34\x12\xcd\xab\0\0\0\0", 16), "nb=%zu",
          nb);
    char *txt = NULL;
    size_t nt = write_all(recs, 0, &txt);
    CHECK("jsonl writer writes the records unchanged", nt == strlen(recs) && !memcmp(txt, recs, nt),
          "%.*s", (int)nt, txt);

    // A flipped payload byte: that frame is an error, the following frames still read.
    char *bad = malloc(nb);
    memcpy(bad, bin, nb);
    bad[16 + 12 + 6] ^= 0x20;
    k = read_all(bad, nb, got, sizeof got, &n_err, &fatal);
    CHECK("crc mismatch is an error for that frame only", k == 2 && n_err == 1 && !fatal &&
          strstr(got, "E:mem:frame 1: crc mismatch"), "k=%d err=%d fatal=%d\n%s", k, n_err, fatal, got);

    // Every truncation point gives the records before it and one fatal "truncated" error.
    int trunc_ok = 1;
    for (size_t cut = 17; cut < nb; cut++) {
        k = read_all(bin, cut, got, sizeof got, &n_err, &fatal);
        if (n_err != 1 || !fatal || !strstr(got, "truncated")) {
            trunc_ok = 0;
            printf("# cut %zu: k=%d err=%d fatal=%d %s\n", cut, k, n_err, fatal, got);
            break;
        }
    }
    CHECK("every truncated binary stream is reported as truncated", trunc_ok, "see above");

    // A frame announcing 64 MiB + 1 is refused before allocating.
    memcpy(bad, bin, nb);
    bad[16 + 8] = 1, bad[16 + 9] = 0, bad[16 + 10] = 0, bad[16 + 11] = 4;
    k = read_all(bad, nb, got, sizeof got, &n_err, &fatal);
    CHECK("over-limit payload size is refused", k == 0 && fatal && strstr(got, "over the"), "%s",
          got);

    // Version 2 is refused with a hint; a garbage first byte is malformed input.
    memcpy(bad, bin, nb);
    bad[4] = 2;
    k = read_all(bad, nb, got, sizeof got, &n_err, &fatal);
    CHECK("newer version is refused", k == 0 && fatal && strstr(got, "version 2"), "%s", got);
    k = read_all("xyz\n", 4, got, sizeof got, &n_err, &fatal);
    CHECK("unknown first byte is malformed input", k == 0 && fatal && strstr(got, "neither JSONL"),
          "%s", got);

    // Two binary streams back to back read as one input.
    char *two = malloc(2 * nb);
    memcpy(two, bin, nb);
    memcpy(two + nb, bin, nb);
    k = read_all(two, 2 * nb, got, sizeof got, &n_err, &fatal);
    CHECK("concatenated binary streams", k == 6 && n_err == 0, "k=%d err=%d", k, n_err);

    // A frame of unknown type becomes a pass-through record and is written back unchanged.
    char *pt = NULL;
    size_t npt = 0;
    FILE *f = open_memstream(&pt, &npt);
    hass_frame_write_header(f, 0, 0);
    hass_frame_write(f, 77, 0, "\x01\xff", 2);
    hass_frame_write(f, HASS_FRAME_END, 1, "\x01\0\0\0", 4);
    fclose(f);
    k = read_all(pt, npt, got, sizeof got, &n_err, &fatal);
    CHECK("unknown frame type reads as a pass-through record",
          k == 1 && !strcmp(got, "{\"_hass_frame\":{\"type\":77,\"payload\":\"01ff\"}}\n"), "%s",
          got);
    char *pt2 = NULL;
    size_t npt2 = write_all(got, 1, &pt2);
    CHECK("pass-through record is written back as the same frame", npt2 == npt &&
          !memcmp(pt + 16, pt2 + 16, npt - 16), "n %zu vs %zu", npt2, npt);

    // The record codec rejects inconsistent payloads.
    uint8_t *p = NULL;
    size_t cap = 0;
    uint32_t n = 0;
    json_t *o = json_pack("{s:s,s:[i,i]}", "id", "x", "tokens", 5, 6);
    hass_frame_encode_record(o, &p, &cap, &n);
    json_t *back = NULL;
    CHECK("record codec decodes its own encoding", !hass_frame_decode_record(p, n, &back) &&
          json_equal(o, back), "%s", hass_errmsg());
    json_decref(back);
    CHECK("record with a byte too many is refused",
          hass_frame_decode_record(p, n + 1, &back) == HASS_EFORMAT, "accepted");
    CHECK("record cut short is refused", hass_frame_decode_record(p, n - 1, &back) == HASS_EFORMAT,
          "accepted");
    p[n - 8 - 6 - 4 + 0] = 'q'; // "tokens" key of the packed array -> "qokens"
    CHECK("packed array without its placeholder is refused",
          hass_frame_decode_record(p, n, &back) == HASS_EFORMAT, "accepted");
    json_decref(o);
    free(p);

    free(bin), free(txt), free(bad), free(two), free(pt), free(pt2);
    return unit_failed ? 1 : 0;
}
