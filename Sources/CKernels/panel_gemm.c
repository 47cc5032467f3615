#include "CKernels.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// Medium-sized products whose right operand B is stored row by row (not transposed): DQN's 64-row minibatches
// through a 256-wide layer, split between the cores. OpenBLAS first copies (packs) both operands into its own
// layout, and for C = A·B with beta 0, C is first cleared (by OpenBLAS, or faster by `Gemm` itself); on these
// shapes that costs about a quarter as much as the arithmetic. Here B is read where it lies, one row of k at a
// time, and each register tile of C is written once, at the end.
//
// A register tile is 6 rows by 4 vectors of C (AVX-512: 64 columns in 24 of the 32 registers) or by 2 vectors (AVX2
// and the portable build: 16 columns in 12 of 16 registers). For each k, the tile loads its stretch of row k of B,
// then, row by row, broadcasts A'[i, k] and adds the products in fused multiply-adds. Every element of C is thus the
// sum over k in order, from +0, then added to what it starts from (C, the row's bias, or +0): the same value whatever
// the tile, the instruction set, or how the caller cuts the product into pieces.

#pragma clang diagnostic ignored "-Wpsabi"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define PANEL_PARAMETERS long m, long n, long k, const float *a, long aRow, long aK, const float *b, long ldb, \
    const float *rowBias, int accumulate, float *c, long ldc

/// Columns of C done together, for every row, before the next block: their rows of B (k × 256 floats) stay in L2.
#define PANEL_BLOCK 256

/// +0, read once per register tile (see `tile` in panel_gemm.h).
static const volatile float panel_zero = 0.0f;

typedef float pf8 __attribute__((vector_size(32), aligned(4)));
typedef float pf16 __attribute__((vector_size(64), aligned(4)));

/// The first `count` floats at p, the other lanes +0 (portable: through a zeroed vector).
ALWAYS_INLINE pf8 load_part_portable(const float *p, int count) { pf8 v = {0}; memcpy(&v, p, sizeof(float) * count); return v; }
ALWAYS_INLINE void store_part_portable(float *p, pf8 v, int count) { memcpy(p, &v, sizeof(float) * count); }

#define VEC pf8
#define LANES 8
#define TILE_ROWS 6
#define TILE_VECTORS 2
#define TARGET
#define NAME(f) f##_portable
#define LOAD_PART load_part_portable
#define STORE_PART store_part_portable
#include "panel_gemm.h"
#undef TARGET
#undef NAME
#undef LOAD_PART
#undef STORE_PART

#if defined(__x86_64__) || defined(__i386__)
#define TARGET __attribute__((target("avx2,fma")))
ALWAYS_INLINE TARGET __m256i part_mask_avx2(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
ALWAYS_INLINE TARGET pf8 load_part_avx2(const float *p, int count) { return (pf8)_mm256_maskload_ps(p, part_mask_avx2(count)); }
ALWAYS_INLINE TARGET void store_part_avx2(float *p, pf8 v, int count) { _mm256_maskstore_ps(p, part_mask_avx2(count), (__m256)v); }
#define NAME(f) f##_avx2
#define LOAD_PART load_part_avx2
#define STORE_PART store_part_avx2
#include "panel_gemm.h"
#undef TARGET
#undef NAME
#undef LOAD_PART
#undef STORE_PART
#undef VEC
#undef LANES
#undef TILE_VECTORS

#define VEC pf16
#define LANES 16
#define TILE_VECTORS 4
#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
ALWAYS_INLINE TARGET pf16 load_part_avx512(const float *p, int count) {
    return (pf16)_mm512_maskz_loadu_ps((__mmask16)((1u << count) - 1), p);
}
ALWAYS_INLINE TARGET void store_part_avx512(float *p, pf16 v, int count) {
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << count) - 1), (__m512)v);
}
#define NAME(f) f##_avx512
#define LOAD_PART load_part_avx512
#define STORE_PART store_part_avx512
#include "panel_gemm.h"
#undef TARGET
#undef NAME
#undef LOAD_PART
#undef STORE_PART
#endif

void rl_panel_gemm(int transA, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                   const float *rowBias, int accumulate, float *c, long ldc, const int *rows, const int *terms) {
    if (m <= 0 || n <= 0) return;
    long aRow = transA ? 1 : lda, aK = transA ? lda : 1;
    float *scratch = NULL;
    if (ldb > 2 * PANEL_BLOCK && m > TILE_ROWS && k > 0) {
        scratch = malloc(sizeof(float) * (size_t)k * PANEL_BLOCK);  // without it, B is read in place: slower only
    }
#if defined(__x86_64__) || defined(__i386__)
    switch (rl_kernels_level()) {
    case 2: panel_gemm_avx512(m, n, k, a, aRow, aK, b, ldb, rowBias, accumulate, c, ldc, rows, terms, scratch); break;
    case 1: panel_gemm_avx2(m, n, k, a, aRow, aK, b, ldb, rowBias, accumulate, c, ldc, rows, terms, scratch); break;
    default: panel_gemm_portable(m, n, k, a, aRow, aK, b, ldb, rowBias, accumulate, c, ldc, rows, terms, scratch); break;
    }
#else
    panel_gemm_portable(m, n, k, a, aRow, aK, b, ldb, rowBias, accumulate, c, ldc, rows, terms, scratch);
#endif
    free(scratch);
}
