// greedy_gpu_cpu.c: greedy decoding of a real model on the GPU stack (weights uploaded as bf16)
// against the CPU engine (hass_generate) on the same prompt. Prints both token streams and the
// first divergence with the CPU's top1-top2 margin there.
//   greedy_gpu_cpu MODEL [PROMPT] [N_NEW]
// Exit: 0 same tokens, or a divergence at a near tie (CPU margin < 0.1: bf16 vs the CPU's own
// weights can flip it); 5 a divergence at a clear margin; 1 runtime; 2 usage; 4 no device.
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "forward.h"
#include "hass.h"
#include "model.h"
#include "tokenizer.h"

// Print the pieces of n tokens as text, escaped for one line.
static void print_text(const hass_tokenizer *t, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        const char *p = hass_tokenizer_piece(t, ids[i], &len);
        for (size_t k = 0; p && k < len; k++) {
            if (p[k] == '\n') fputs("\\n", stdout);
            else putchar(p[k]);
        }
    }
    putchar('\n');
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4 || !strcmp(argv[1], "--help")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: greedy_gpu_cpu MODEL [PROMPT] [N_NEW]\n");
        return argc < 2 ? 2 : 0;
    }
    const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
    int64_t n_new = 48;
    if (argc > 3 && hass_parse_i64(argv[3], 1, 1024, &n_new)) {
        fprintf(stderr, "greedy_gpu_cpu: bad N_NEW '%s'\n", argv[3]);
        return 2;
    }
    if (hass_cuda_device_count() == 0) {
        fprintf(stderr, "greedy_gpu_cpu: no CUDA device\n");
        return 4;
    }
    hass_err err;
    hass_model *m = hass_model_load(argv[1], 0, &err);
    hass_tokenizer *tk = m ? hass_tokenizer_load(argv[1], &err) : NULL;
    if (!m || !tk) {
        fprintf(stderr, "greedy_gpu_cpu: %s\n", hass_errmsg());
        return 1;
    }
    int32_t *ids = NULL;
    int64_t np = 0;
    if (hass_tokenizer_encode_alloc(tk, prompt, strlen(prompt), HASS_BOS_MODEL, 0, &ids, &np) ||
        np < 1) {
        fprintf(stderr, "greedy_gpu_cpu: cannot encode the prompt: %s\n", hass_errmsg());
        return 1;
    }
    const hass_model_cfg *c = hass_model_config(m);
    int n_ctx = (int)(np + n_new + 8), V = c->n_vocab;
    int32_t *cpu = malloc((size_t)n_new * 4), *gpu = malloc((size_t)n_new * 4);
    float *margin = malloc((size_t)n_new * 4);

    // CPU engine
    hass_kv *kv = hass_kv_new(m, n_ctx, &err);
    hass_sample_cfg sc = {.temperature = 0.f, .top_p = 1.f, .top_k = 0, .seed = 1};
    double t0 = hass_now();
    int n_cpu = kv ? hass_generate(m, kv, ids, (int)np, (int)n_new, &sc, -1, cpu, margin) : -1;
    double t_cpu = hass_now() - t0;
    if (n_cpu < 0) {
        fprintf(stderr, "greedy_gpu_cpu: cpu: %s\n", hass_errmsg());
        return 1;
    }

    // GPU stack: prefill the prompt in one forward, then one token per step
    hass_cuda_llama *d = hass_cuda_llama_from_model(m, n_ctx, (int)np, &err);
    if (!d) {
        fprintf(stderr, "greedy_gpu_cpu: %s\n", hass_errmsg());
        return err == HASS_ENODEV ? 4 : 1;
    }
    int32_t *pos = malloc((size_t)np * 4), *d_arg = NULL, tok;
    for (int i = 0; i < np; i++) pos[i] = i;
    hass_err e = hass_cuda_malloc((void **)&d_arg, 4);
    t0 = hass_now();
    if (!e) e = hass_cuda_llama_set_input(d, ids, pos, NULL, (int)np);
    if (!e) e = hass_cuda_llama_forward(d, 0, (int)np, 0);
    if (!e) e = hass_cuda_argmax(d_arg, d->logits + (size_t)(np - 1) * V, 1, V);
    if (!e) e = hass_cuda_d2h(&tok, d_arg, 4);
    int n_gpu = 0;
    while (!e && n_gpu < n_new) {
        gpu[n_gpu++] = tok;
        if (n_gpu == n_new) break;
        int32_t p = (int32_t)(np + n_gpu - 1);
        e = hass_cuda_llama_set_input(d, &tok, &p, NULL, 1);
        if (!e) e = hass_cuda_llama_forward(d, p, 1, 0);
        if (!e) e = hass_cuda_argmax(d_arg, d->logits, 1, V);
        if (!e) e = hass_cuda_d2h(&tok, d_arg, 4);
    }
    double t_gpu = hass_now() - t0;
    if (e) {
        fprintf(stderr, "greedy_gpu_cpu: gpu: %s\n", hass_errmsg());
        return 1;
    }
    int same = 0;
    while (same < n_cpu && same < n_gpu && cpu[same] == gpu[same]) same++;
    printf("model %s prompt \"%s\" (%lld tokens)\n", hass_model_path(m), prompt, (long long)np);
    printf("cpu: ");
    print_text(tk, cpu, n_cpu);
    printf("gpu: ");
    print_text(tk, gpu, n_gpu);
    printf("cpu %.1f tok/s, gpu %.1f tok/s (incl. prefill and a host round trip per token)\n",
           n_cpu / t_cpu, n_gpu / t_gpu);
    int rc = 0;
    if (same == n_cpu && same == n_gpu) {
        printf("greedy match %d/%d tokens: SAME\n", same, n_cpu);
    } else {
        float mg = same < n_cpu ? margin[same] : 0.f;
        rc = mg < 0.1f ? 0 : 5;
        printf("greedy match %d/%d tokens: first divergence at %d (cpu %d, gpu %d), cpu margin "
               "%.4f: %s\n", same, n_cpu, same, cpu[same], gpu[same], mg,
               rc ? "DIFFERENT" : "near tie");
    }
    hass_cuda_free(d_arg);
    hass_cuda_llama_free(d);
    hass_kv_free(kv);
    hass_tokenizer_free(tk);
    hass_model_free(m);
    free(ids), free(cpu), free(gpu), free(margin), free(pos);
    return rc;
}
