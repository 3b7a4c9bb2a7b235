// tokenizer_pre.c: the byte-level BPE pre-tokenizers, hand-written matchers of llama.cpp's
// regexes (no regex library), by llama.cpp name.
#include <string.h>

#include "tokenizer_int.h"
#include "unicode.h"

// The letter class of DeepSeek-LLM's second rule (llama.cpp llama-vocab.cpp), as ranges.
static const uint32_t ds_letters[][2] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA},
    {0x1BC, 0x1BF}, {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377},
    {0x37B, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C},
    {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x52F}, {0x531, 0x556},
    {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF},
    {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
    {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE},
    {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC},
    {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113},
    {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126}, {0x2128, 0x2128},
    {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
    {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787},
    {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

// Whether cp is in a sorted-or-not list of ranges.
static int in_ranges(uint32_t cp, const uint32_t (*r)[2], size_t n) {
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i][0] && cp <= r[i][1]) return 1;
    return 0;
}

// llama.cpp names of the rule sets.
static const struct { const char *name; int pre; } pre_names[] = {
    {"default", PRE_SPM},         {"gpt-2", PRE_GPT2},          {"gpt2", PRE_GPT2},
    {"mpt", PRE_GPT2},            {"olmo", PRE_GPT2},           {"jais", PRE_GPT2},
    {"llama-bpe", PRE_LLAMA3},    {"llama3", PRE_LLAMA3},       {"llama-v3", PRE_LLAMA3},
    {"smollm", PRE_DIGITS_GPT2},  {"starcoder", PRE_DIGITS_GPT2}, {"refact", PRE_DIGITS_GPT2},
    {"command-r", PRE_DIGITS_GPT2}, {"codeshell", PRE_DIGITS_GPT2}, {"falcon", PRE_FALCON},
    {"qwen2", PRE_QWEN2},         {"deepseek-coder", PRE_DEEPSEEK_CODER},
    {"deepseek-llm", PRE_DEEPSEEK_LLM},         {"stablelm2", PRE_QWEN2},     {"deepseek-r1-qwen", PRE_QWEN2},
};

// Set the pre-tokenizer by llama.cpp name.
hass_err hass_tokenizer_set_pre(hass_tokenizer *t, const char *name) {
    for (size_t i = 0; i < sizeof pre_names / sizeof *pre_names; i++) {
        if (strcmp(pre_names[i].name, name)) continue;
        if ((pre_names[i].pre == PRE_SPM) != (t->kind == HASS_TOK_SPM))
            return hass_seterr(HASS_EINVAL, "tokenizer: pre-tokenizer '%s' does not fit a %s vocabulary",
                               name, t->kind == HASS_TOK_SPM ? "SentencePiece" : "byte-level BPE");
        t->pre = pre_names[i].pre;
        snprintf(t->pre_name, sizeof t->pre_name, "%s", name);
        t->ignore_merges = t->pre == PRE_LLAMA3;
        return HASS_OK;
    }
    return hass_seterr(HASS_EINVAL, "tokenizer: unknown pre-tokenizer '%s' (known: default, gpt-2, "
                       "llama-bpe, smollm, starcoder, refact, mpt, falcon, qwen2, deepseek-coder, deepseek-llm)", name);
}


// Get flags of codepoint i inside [.., end).
#define FL(i) ((i) < end ? w->fl[i] : 0)
#define CP(i) ((i) < end ? w->cp[i] : 0xFFFFFFFFu)

// GPT-2 regex: end of the match at pos.
static int32_t match_gpt2(const enc_ws *w, int32_t pos, int32_t end) {
    uint32_t c = w->cp[pos];
    if (c == '\'' && pos + 1 < end) {
        uint32_t c1 = w->cp[pos + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
        if (pos + 2 < end) {
            uint32_t c2 = w->cp[pos + 2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return pos + 3;
        }
    }
    unsigned f2 = c == ' ' ? FL(pos + 1) : w->fl[pos];
    if (f2 & HASS_UF_L) {
        pos += c == ' ';
        while (FL(pos) & HASS_UF_L) pos++;
        return pos;
    }
    if (f2 & HASS_UF_N) {
        pos += c == ' ';
        while (FL(pos) & HASS_UF_N) pos++;
        return pos;
    }
    if (!(f2 & (HASS_UF_SPACE | HASS_UF_L | HASS_UF_N)) && f2) {
        pos += c == ' ';
        while ((FL(pos) & UF_IN) && !(FL(pos) & (HASS_UF_SPACE | HASS_UF_L | HASS_UF_N))) pos++;
        return pos;
    }
    int32_t nws = 0;
    while (FL(pos + nws) & HASS_UF_SPACE) nws++;
    if (nws > 1 && pos + nws < end) return pos + nws - 1; // \s+(?!\S)
    if (nws > 0) return pos + nws;
    return pos + 1;
}

// LLaMA-3 regex (digits: max 3 per piece, or 1 for Qwen2): end of the match at pos.
static int32_t match_llama3(const enc_ws *w, int32_t pos, int32_t end, int max_digits) {
    uint32_t c = w->cp[pos];
    unsigned f = w->fl[pos];
    if (c == '\'' && pos + 1 < end) {
        uint32_t c1 = w->cp[pos + 1];
        if (c1 < 128) c1 |= 0x20 * (c1 >= 'A' && c1 <= 'Z');
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
        if (pos + 2 < end) {
            uint32_t c2 = w->cp[pos + 2];
            if (c2 < 128) c2 |= 0x20 * (c2 >= 'A' && c2 <= 'Z');
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return pos + 3;
        }
    }
    if (!(c == '\r' || c == '\n' || (f & HASS_UF_N))) {
        if ((f & HASS_UF_L) || (FL(pos + 1) & HASS_UF_L)) { // [^\r\n\p{L}\p{N}]?\p{L}+
            pos++;
            while (FL(pos) & HASS_UF_L) pos++;
            return pos;
        }
    }
    if (f & HASS_UF_N) { // \p{N}{1,3}
        int32_t s = pos;
        while ((FL(pos) & HASS_UF_N) && pos - s < max_digits) pos++;
        return pos;
    }
    unsigned f2 = c == ' ' ? FL(pos + 1) : f;
    if (!(f2 & (HASS_UF_SPACE | HASS_UF_L | HASS_UF_N)) && f2) { // ?[^\s\p{L}\p{N}]+[\r\n]*
        pos += c == ' ';
        while ((FL(pos) & UF_IN) && !(FL(pos) & (HASS_UF_SPACE | HASS_UF_L | HASS_UF_N))) pos++;
        while (CP(pos) == '\r' || CP(pos) == '\n') pos++;
        return pos;
    }
    int32_t nws = 0, last_nl = -1;
    while (FL(pos + nws) & HASS_UF_SPACE) {
        uint32_t c2 = w->cp[pos + nws];
        if (c2 == '\r' || c2 == '\n') last_nl = pos + nws + 1;
        nws++;
    }
    if (last_nl > 0) return last_nl;                      // \s*[\r\n]+
    if (nws > 1 && pos + nws < end) return pos + nws - 1; // \s+(?!\S)
    if (nws > 0) return pos + nws;                        // \s+
    return pos + 1;
}

// Isolating stage: \p{N} single codepoints (kind 0), runs of [\p{P}$+<=>^~|`] (kind 1),
// [0-9]{3} (kind 2). Returns the end of the match or of the gap before the next match.
static int32_t match_isolate(const enc_ws *w, int32_t pos, int32_t end, int kind) {
#define IS_PUNCT(i) ((w->fl[i] & HASS_UF_P) || strchr("$+<=>^~|`", (int)(w->cp[i] < 128 ? w->cp[i] : 1)))
#define IS_D3(i) ((i) + 2 < end && w->cp[i] - '0' < 10 && w->cp[(i) + 1] - '0' < 10 && w->cp[(i) + 2] - '0' < 10)
    if (kind == 0) {
        if (w->fl[pos] & HASS_UF_N) return pos + 1;
        while (pos < end && !(w->fl[pos] & HASS_UF_N)) pos++;
        return pos;
    }
    if (kind == 1) {
        if (IS_PUNCT(pos) && w->cp[pos]) {
            while (pos < end && IS_PUNCT(pos) && w->cp[pos]) pos++;
            return pos;
        }
        while (pos < end && !(IS_PUNCT(pos) && w->cp[pos])) pos++;
        return pos;
    }
    if (IS_D3(pos)) return pos + 3;
    while (pos < end && !IS_D3(pos)) pos++;
    return pos;
#undef IS_PUNCT
#undef IS_D3
}

// Length of a DeepSeek isolating match at pos (0 if none): kind 3 [\r\n], 4 \s?\p{L}+,
// 5 \s?\p{P}+, 6 [\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+, 7 \s?[ds_letters]+,
// 8 \s?[!-/:-~！-／：-～‘-‟　-。]+, 9 \s+$, 11 \p{N}+.
static int32_t iso_len(const enc_ws *w, int32_t pos, int32_t end, int kind) {
    static const uint32_t ds_punct[][2] = {{0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
                                           {0x2018, 0x201F}, {0x3000, 0x3002}};
#define DS_L(i) ((i) < end && in_ranges(w->cp[i], ds_letters, sizeof ds_letters / sizeof *ds_letters))
#define DS_P(i) ((i) < end && in_ranges(w->cp[i], ds_punct, sizeof ds_punct / sizeof *ds_punct))
    uint32_t c = w->cp[pos];
    int32_t p = pos;
    switch (kind) {
    case 3: return c == '\r' || c == '\n';
    case 4:
    case 5: {
        unsigned want = kind == 4 ? HASS_UF_L : HASS_UF_P;
        if ((w->fl[p] & HASS_UF_SPACE) && (FL(p + 1) & want)) p++;
        while (FL(p) & want) p++;
        return p - pos;
    }
    case 7:
        if ((w->fl[p] & HASS_UF_SPACE) && DS_L(p + 1)) p++;
        while (DS_L(p)) p++;
        return p - pos;
    case 8:
        if ((w->fl[p] & HASS_UF_SPACE) && DS_P(p + 1)) p++;
        while (DS_P(p)) p++;
        return p - pos;
    case 9:
        while (FL(p) & HASS_UF_SPACE) p++;
        return p == end ? p - pos : 0;
    case 11:
        while (FL(p) & HASS_UF_N) p++;
        return p - pos;
    default:
        while (p < end && ((w->cp[p] >= 0x0800 && w->cp[p] <= 0x9FA5) || (w->cp[p] >= 0xAC00 && w->cp[p] <= 0xD7FF))) p++;
        return p - pos;
    }
#undef DS_L
#undef DS_P
}

// Isolating stage over DeepSeek-Coder's rules: end of the match at pos, or of the gap before
// the next match.
static int32_t match_iso(const enc_ws *w, int32_t pos, int32_t end, int kind) {
    int32_t l = iso_len(w, pos, end, kind);
    if (l > 0) return pos + l;
    while (pos < end && iso_len(w, pos, end, kind) == 0) pos++;
    return pos;
}

// Run pre-tokenizer stage `stage` over codepoints [a, b), then BPE each final piece.
void hass_tok_pre_split(const hass_tokenizer *t, enc_ws *w, const char *text, int stage, int32_t a, int32_t b) {
    static const int stages[][7] = {
        [PRE_SPM] = {-1},
        [PRE_GPT2] = {1, -1},
        [PRE_LLAMA3] = {2, -1},
        [PRE_DIGITS_GPT2] = {10, 1, -1},
        [PRE_FALCON] = {11, 1, 12, -1},
        [PRE_QWEN2] = {3, -1},
        [PRE_DEEPSEEK_CODER] = {23, 24, 25, 26, 10, -1},
        [PRE_DEEPSEEK_LLM] = {23, 27, 28, 29, 26, 31, -1},
    };
    int s = stages[t->pre][stage];
    if (s < 0) {
        hass_tok_bpe_word(t, w, (const unsigned char *)text + w->off[a], (int32_t)(w->off[b] - w->off[a]), w->run_off + w->off[a]);
        return;
    }
    for (int32_t pos = a; pos < b;) {
        int32_t e;
        switch (s) {
        case 1: e = match_gpt2(w, pos, b); break;
        case 2: e = match_llama3(w, pos, b, 3); break;
        case 3: e = match_llama3(w, pos, b, 1); break;
        default: e = s >= 20 ? match_iso(w, pos, b, s - 20) : match_isolate(w, pos, b, s - 10); break;
        }
        if (e <= pos) e = pos + 1;
        if (e > b) e = b;
        hass_tok_pre_split(t, w, text, stage + 1, pos, e);
        pos = e;
    }
}
