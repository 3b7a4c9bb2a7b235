// train_gemm.c: y += a b for the training ops (f32, row-major, strided), register-blocked with
// AVX-512 or AVX2+FMA picked at run time and a portable C fallback.
//
// Order: every element of y is one running f32 sum over k = 0, 1, ..., K-1 (a single fused
// multiply-add per term, in k order), whatever the blocking, the tile it falls in, the path's
// vector width or the thread count. So results are bit-identical across thread counts and
// across the three paths (the C path uses fmaf, the same rounding as a vector FMA).
#include "train_ops.h"
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TG_X86 1
#endif

#define TG_MR 6    // rows of a register tile
#define TG_KC 256  // k per cache block (a (KC, NC) panel of b stays in L2)
#define TG_NC 256  // columns per thread task
#define TG_PAR_MIN 2000000L // multiply-adds below which one thread does it all

typedef struct tg_args {
    float *y;
    const float *a, *b;
    int ldy, lda, ldb;
} tg_args;

// C path: rows [r0, r0+mr), columns [c0, c1), k in [k0, k1): y += a b, one fmaf per term.
static void tile_c(const tg_args *g, int r0, int mr, int c0, int c1, int k0, int k1) {
    for (int r = r0; r < r0 + mr; r++) {
        float *yr = g->y + (size_t)r * g->ldy;
        const float *ar = g->a + (size_t)r * g->lda;
        for (int k = k0; k < k1; k++) {
            float av = ar[k];
            const float *bk = g->b + (size_t)k * g->ldb;
            for (int c = c0; c < c1; c++) yr[c] = fmaf(av, bk[c], yr[c]);
        }
    }
}

#ifdef TG_X86
#define T_AVX512 __attribute__((target("avx512f,fma")))
#define T_AVX2 __attribute__((target("avx2,fma")))

// The k loop of an AVX-512 tile: acc[i][v] += a[i][k] * b[k][16v..16v+15]; plain loads when
// all 64 columns exist (they fold into the FMAs), masked ones for a ragged edge.
T_AVX512 static inline __attribute__((always_inline)) void
k_loop_512(__m512 acc[][4], const float *const *ar, const float *bk, int ldb, const int mr,
           const __mmask16 *mk, const int masked, int k0, int k1) {
    for (int k = k0; k < k1; k++, bk += ldb) {
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
            bv[v] = masked ? _mm512_maskz_loadu_ps(mk[v], bk + 16 * v) : _mm512_loadu_ps(bk + 16 * v);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512 av = _mm512_set1_ps(ar[i][k]);
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
        }
    }
}

// AVX-512: mr (a constant after inlining) rows x 64 columns in 4*mr accumulators; ragged
// columns by masked loads/stores.
T_AVX512 static inline __attribute__((always_inline)) void
tile_512_mr(const tg_args *g, int r0, const int mr, int c0, int c1, int k0, int k1) {
    const float *ar[TG_MR];
    for (int i = 0; i < mr; i++) ar[i] = g->a + (size_t)(r0 + i) * g->lda;
    for (int c = c0; c < c1; c += 64) {
        int nc = c1 - c < 64 ? c1 - c : 64;
        __mmask16 mk[4];
        for (int v = 0; v < 4; v++) {
            int left = nc - 16 * v;
            mk[v] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
        }
        __m512 acc[TG_MR][4];
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < 4; v++)
                acc[i][v] = _mm512_maskz_loadu_ps(mk[v], g->y + (size_t)(r0 + i) * g->ldy + c + 16 * v);
        const float *bk = g->b + (size_t)k0 * g->ldb + c;
        if (nc == 64) k_loop_512(acc, ar, bk, g->ldb, mr, mk, 0, k0, k1);
        else k_loop_512(acc, ar, bk, g->ldb, mr, mk, 1, k0, k1);
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < 4; v++)
                _mm512_mask_storeu_ps(g->y + (size_t)(r0 + i) * g->ldy + c + 16 * v, mk[v], acc[i][v]);
    }
}

// AVX-512 tile: the row count made a constant so the accumulators live in registers.
T_AVX512 static void tile_512(const tg_args *g, int r0, int mr, int c0, int c1, int k0, int k1) {
    switch (mr) {
    case 6: tile_512_mr(g, r0, 6, c0, c1, k0, k1); break;
    case 5: tile_512_mr(g, r0, 5, c0, c1, k0, k1); break;
    case 4: tile_512_mr(g, r0, 4, c0, c1, k0, k1); break;
    case 3: tile_512_mr(g, r0, 3, c0, c1, k0, k1); break;
    case 2: tile_512_mr(g, r0, 2, c0, c1, k0, k1); break;
    default: tile_512_mr(g, r0, 1, c0, c1, k0, k1); break;
    }
}

// mr (<= 4) rows x 24 columns of the AVX2 tile, whole vectors only.
T_AVX2 static inline __attribute__((always_inline)) void
tile_256_mr(const tg_args *g, int r0, const int mr, int c, int k0, int k1) {
    __m256 acc[TG_MR][3];
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < 3; v++) acc[i][v] = _mm256_loadu_ps(g->y + (size_t)(r0 + i) * g->ldy + c + 8 * v);
    for (int k = k0; k < k1; k++) {
        const float *bk = g->b + (size_t)k * g->ldb + c;
        __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8), b2 = _mm256_loadu_ps(bk + 16);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m256 av = _mm256_broadcast_ss(g->a + (size_t)(r0 + i) * g->lda + k);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
            acc[i][2] = _mm256_fmadd_ps(av, b2, acc[i][2]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < 3; v++) _mm256_storeu_ps(g->y + (size_t)(r0 + i) * g->ldy + c + 8 * v, acc[i][v]);
}

// AVX2 strip with the row count made a constant.
T_AVX2 static void tile_256_full(const tg_args *g, int r0, int mr, int c, int k0, int k1) {
    if (mr > 4) { // 16 ymm registers hold at most 4 rows of 3 accumulators
        tile_256_mr(g, r0, 4, c, k0, k1);
        r0 += 4, mr -= 4;
    }
    switch (mr) {
    case 4: tile_256_mr(g, r0, 4, c, k0, k1); break;
    case 3: tile_256_mr(g, r0, 3, c, k0, k1); break;
    case 2: tile_256_mr(g, r0, 2, c, k0, k1); break;
    default: tile_256_mr(g, r0, 1, c, k0, k1); break;
    }
}

// AVX2: 24-column strips in registers, the ragged rest on the C path (same order).
T_AVX2 static void tile_256(const tg_args *g, int r0, int mr, int c0, int c1, int k0, int k1) {
    int c = c0;
    for (; c + 24 <= c1; c += 24) tile_256_full(g, r0, mr, c, k0, k1);
    if (c < c1) tile_c(g, r0, mr, c, c1, k0, k1);
}
#endif

typedef void (*tile_fn)(const tg_args *, int, int, int, int, int, int);

// The tile kernel of the engine's kernel path (hass_kernel_level; HASS_KERNELS applies).
static tile_fn pick_tile(void) {
#ifdef TG_X86
    switch (hass_kernel_level()) {
    case 2: return tile_512;
    case 1: return tile_256;
    }
#endif
    return tile_c;
}

// Columns [c0, c1) of every row: k blocks outermost so a (KC, c1-c0) panel of b is reused by
// all rows while it sits in cache.
static void panel(const tg_args *g, tile_fn tile, int n, int c0, int c1, int K) {
    for (int k0 = 0; k0 < K; k0 += TG_KC) {
        int k1 = k0 + TG_KC < K ? k0 + TG_KC : K;
        for (int r = 0; r < n; r += TG_MR) tile(g, r, n - r < TG_MR ? n - r : TG_MR, c0, c1, k0, k1);
    }
}

// y (n, M; stride ldy) += a (n, K; lda) b (K, M; ldb). Threads split the columns.
void hass_train_ops_gemm(float *y, int ldy, const float *a, int lda, const float *b, int ldb, int n,
                    int K, int M) {
    if (n <= 0 || M <= 0 || K <= 0) return;
    tg_args g = {y, a, b, ldy, lda, ldb};
    tile_fn tile = pick_tile();
    int n_task = (M + TG_NC - 1) / TG_NC;
    int par = (long)n * K * M > TG_PAR_MIN && n_task > 1;
    (void)par;
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int t = 0; t < n_task; t++) {
        int c0 = t * TG_NC, c1 = c0 + TG_NC < M ? c0 + TG_NC : M;
        panel(&g, tile, n, c0, c1, K);
    }
}

// dst (cols, rows) = src (rows, cols)^T, both dense.
void hass_train_ops_transpose(float *dst, const float *src, int rows, int cols) {
    const int B = 32;
    for (int r0 = 0; r0 < rows; r0 += B)
        for (int c0 = 0; c0 < cols; c0 += B) {
            int r1 = r0 + B < rows ? r0 + B : rows, c1 = c0 + B < cols ? c0 + B : cols;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
        }
}

// n_bytes aligned to 2 MiB and marked for transparent huge pages where the kernel allows them (a
// matrix of 100+ MiB read in strided panels otherwise misses the TLB on every row). Release with
// free(). NULL on failure.
void *hass_train_ops_big_alloc(size_t n_bytes) {
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    size_t n = (n_bytes + huge - 1) / huge * huge;
    if (posix_memalign(&p, huge, n ? n : huge)) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
}
