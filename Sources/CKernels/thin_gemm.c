#include "CKernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// Matrix products with one very small dimension: a first layer fed four observation values, a head with two
// outputs, that head's weight gradient. OpenBLAS packs both operands and runs its register tiles nearly empty on
// these shapes (5–16 GFLOP/s, against about 60 on a 64-wide layer); a plain loop over the small dimension is two
// to three times faster.
//
// Every element is accumulated exactly as OpenBLAS's Haswell/Zen `sgemm` kernels do for these shapes (fused
// multiply-adds over k in order, into an accumulator that starts at +0, then added to C), so switching between
// the two changes no value. That correspondence holds only on CPUs with FMA; elsewhere `rl_thin_gemm` declines and
// the caller uses BLAS.

#pragma clang fp contract(off)
#pragma clang diagnostic ignored "-Wpsabi"

typedef float f8 __attribute__((vector_size(32), aligned(4)));

#if defined(__x86_64__) || defined(__i386__)
#define FMA __attribute__((target("avx2,fma")))
#else
#define FMA
#endif
#define ALWAYS_INLINE static inline __attribute__((always_inline)) FMA

ALWAYS_INLINE f8 load8(const float *p) { f8 r; memcpy(&r, p, sizeof r); return r; }
ALWAYS_INLINE void store8(float *p, f8 v) { memcpy(p, &v, sizeof v); }
ALWAYS_INLINE f8 splat8(float v) { return (f8){v, v, v, v, v, v, v, v}; }

/// The largest K of an M- or N-thin product: OpenBLAS splits longer sums into blocks, each added to C separately.
#define THIN_MAX_K 320
/// Scratch floats kept on the stack; larger packed operands are allocated.
#define STACK_FLOATS 4096

/// C[i, :] = Σ_k A'[i, k] · B'[k, :] + (accumulate ? C[i, :] : 0) with B' laid out row-contiguously (`bp`, row
/// stride `ldbp`); A'[i, k] is `a[i * rowStrideA + k * kStrideA]`. Sixty-four columns at a time: eight independent
/// chains of fused multiply-adds keep both FMA pipes busy even when k is tiny. `K` is k when it is a compile-time
/// constant (the tiny sums, whose loops are then unrolled), 0 otherwise.
ALWAYS_INLINE void rows_k(const long K, long m, long n, long k, const float *a, long rowStrideA, long kStrideA,
                          const float *bp, long ldbp, float *c, long ldc, int accumulate) {
    if (K) k = K;
    long n8 = n / 8 * 8;
    for (long i = 0; i < m; i++) {
        const float *ai = a + i * rowStrideA;
        float *ci = c + i * ldc;
        long j = 0;
        for (; j + 64 <= n8; j += 64) {
            f8 s[8];
            for (int v = 0; v < 8; v++) s[v] = splat8(0);
            for (long p = 0; p < k; p++) {
                f8 av = splat8(ai[p * kStrideA]);
                const float *row = bp + p * ldbp + j;
                for (int v = 0; v < 8; v++) s[v] = __builtin_elementwise_fma(av, load8(row + 8 * v), s[v]);
            }
            for (int v = 0; v < 8; v++) store8(ci + j + 8 * v, (accumulate ? load8(ci + j + 8 * v) : splat8(0)) + s[v]);
        }
        for (; j < n8; j += 8) {
            f8 s = splat8(0);
            for (long p = 0; p < k; p++) s = __builtin_elementwise_fma(splat8(ai[p * kStrideA]), load8(bp + p * ldbp + j), s);
            store8(ci + j, (accumulate ? load8(ci + j) : splat8(0)) + s);
        }
        for (; j < n; j++) {
            float s = 0;
            for (long p = 0; p < k; p++) s = __builtin_fmaf(ai[p * kStrideA], bp[p * ldbp + j], s);
            ci[j] = (accumulate ? ci[j] : 0) + s;
        }
    }
}

FMA static void rows_kernel(long m, long n, long k, const float *a, long rowStrideA, long kStrideA,
                            const float *bp, long ldbp, float *c, long ldc, int accumulate) {
#define ROWS(K) rows_k(K, m, n, k, a, rowStrideA, kStrideA, bp, ldbp, c, ldc, accumulate)
    switch (k) {
    case 1: ROWS(1); break;
    case 2: ROWS(2); break;
    case 3: ROWS(3); break;
    case 4: ROWS(4); break;
    case 5: ROWS(5); break;
    case 6: ROWS(6); break;
    case 7: ROWS(7); break;
    default: ROWS(0); break;
    }
#undef ROWS
}

/// The eight rows `r[0..8]` (eight consecutive k each) turned into eight columns: `r[p]` then holds, for k = p,
/// the eight rows' values.
ALWAYS_INLINE void transpose8(f8 r[8]) {
    f8 t[8], u[8];
    for (int q = 0; q < 8; q += 2) {
        t[q] = __builtin_shufflevector(r[q], r[q + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[q + 1] = __builtin_shufflevector(r[q], r[q + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int q = 0; q < 8; q += 4) {
        u[q] = __builtin_shufflevector(t[q], t[q + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[q + 1] = __builtin_shufflevector(t[q], t[q + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[q + 2] = __builtin_shufflevector(t[q + 1], t[q + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[q + 3] = __builtin_shufflevector(t[q + 1], t[q + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int q = 0; q < 4; q++) {
        r[q] = __builtin_shufflevector(u[q], u[q + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[q + 4] = __builtin_shufflevector(u[q], u[q + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/// C[i..i+8, 0..N] += A'[i..i+8, :] · B'[:, 0..N] for N ≤ 7 columns known at compile time, eight rows of C per
/// vector. With `transA` the eight rows of A' at one k are eight consecutive floats of A; otherwise blocks of
/// 8 × 8 values of A are transposed in registers. `rows` < 8 only for the last block (its other lanes unused).
ALWAYS_INLINE void columns_block(const int N, int transA, long rows, long k, const float *a, long lda, const float *b,
                                 long kStrideB, long columnStrideB, float *c, long ldc, int accumulate) {
    f8 s[7];
    for (int j = 0; j < N; j++) s[j] = splat8(0);
    long p = 0;
    if (rows == 8 && !transA) {
        for (; p + 8 <= k; p += 8) {
            f8 r[8];
            for (int q = 0; q < 8; q++) r[q] = load8(a + q * lda + p);
            transpose8(r);
            for (int q = 0; q < 8; q++) {
                for (int j = 0; j < N; j++) {
                    s[j] = __builtin_elementwise_fma(r[q], splat8(b[(p + q) * kStrideB + j * columnStrideB]), s[j]);
                }
            }
        }
    }
    for (; p < k; p++) {
        f8 column;
        if (rows == 8 && transA) {
            column = load8(a + p * lda);
        } else {
            float lanes[8] = {0};
            for (long q = 0; q < rows; q++) lanes[q] = transA ? a[p * lda + q] : a[q * lda + p];
            column = load8(lanes);
        }
        for (int j = 0; j < N; j++) s[j] = __builtin_elementwise_fma(column, splat8(b[p * kStrideB + j * columnStrideB]), s[j]);
    }
    for (int j = 0; j < N; j++) {
        float lanes[8];
        store8(lanes, s[j]);
        for (long q = 0; q < rows; q++) c[q * ldc + j] = (accumulate ? c[q * ldc + j] : 0) + lanes[q];
    }
}

/// Sixteen rows of C at once from A stored [k, m] (`transA`): 2N independent chains instead of N.
ALWAYS_INLINE void columns_pair(const int N, long k, const float *a, long lda, const float *b, long kStrideB,
                                long columnStrideB, float *c, long ldc, int accumulate) {
    f8 s[7], t[7];
    for (int j = 0; j < N; j++) { s[j] = splat8(0); t[j] = splat8(0); }
    for (long p = 0; p < k; p++) {
        f8 lo = load8(a + p * lda), hi = load8(a + p * lda + 8);
        for (int j = 0; j < N; j++) {
            f8 bv = splat8(b[p * kStrideB + j * columnStrideB]);
            s[j] = __builtin_elementwise_fma(lo, bv, s[j]);
            t[j] = __builtin_elementwise_fma(hi, bv, t[j]);
        }
    }
    for (int j = 0; j < N; j++) {
        float lanes[16];
        store8(lanes, s[j]);
        store8(lanes + 8, t[j]);
        for (long q = 0; q < 16; q++) c[q * ldc + j] = (accumulate ? c[q * ldc + j] : 0) + lanes[q];
    }
}

ALWAYS_INLINE void columns_n(const int N, int transA, long m, long k, const float *a, long lda, const float *b,
                             long kStrideB, long columnStrideB, float *c, long ldc, int accumulate) {
    long i = 0;
    if (transA) {
        for (; i + 16 <= m; i += 16) columns_pair(N, k, a + i, lda, b, kStrideB, columnStrideB, c + i * ldc, ldc, accumulate);
    }
    for (; i < m; i += 8) {
        long rows = m - i < 8 ? m - i : 8;
        const float *ai = transA ? a + i : a + i * lda;
        columns_block(N, transA, rows, k, ai, lda, b, kStrideB, columnStrideB, c + i * ldc, ldc, accumulate);
    }
}

/// C[:, j] += Σ_k A'[:, k] · B'[k, j] for n ≤ 7 columns j, eight rows at a time. B'[k, j] is
/// `b[k * kStrideB + j * columnStrideB]`.
FMA static void columns_kernel(int transA, long m, long n, long k, const float *a, long lda, const float *b,
                               long kStrideB, long columnStrideB, float *c, long ldc, int accumulate) {
    switch (n) {
    case 1: columns_n(1, transA, m, k, a, lda, b, kStrideB, columnStrideB, c, ldc, accumulate); break;
    case 2: columns_n(2, transA, m, k, a, lda, b, kStrideB, columnStrideB, c, ldc, accumulate); break;
    case 3: columns_n(3, transA, m, k, a, lda, b, kStrideB, columnStrideB, c, ldc, accumulate); break;
    case 4: columns_n(4, transA, m, k, a, lda, b, kStrideB, columnStrideB, c, ldc, accumulate); break;
    case 5: columns_n(5, transA, m, k, a, lda, b, kStrideB, columnStrideB, c, ldc, accumulate); break;
    case 6: columns_n(6, transA, m, k, a, lda, b, kStrideB, columnStrideB, c, ldc, accumulate); break;
    default: columns_n(7, transA, m, k, a, lda, b, kStrideB, columnStrideB, c, ldc, accumulate); break;
    }
}

int rl_thin_gemm(int transA, int transB, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                 int accumulate, float *c, long ldc) {
    static atomic_int usable = -1;  // -1 until first use; every thread that races here computes the same answer
    int state = atomic_load_explicit(&usable, memory_order_relaxed);
    if (state < 0) {
        state = rl_cpu_vector_level() >= 1;  // AVX2 and FMA
        atomic_store_explicit(&usable, state, memory_order_relaxed);
    }
    if (!state || m <= 0 || n <= 0 || k <= 0) return 0;

    // A'[i, k] and B'[k, j] as strides into the stored matrices.
    long aRow = transA ? 1 : lda, aK = transA ? lda : 1;
    long bK = transB ? 1 : ldb, bColumn = transB ? ldb : 1;

    if (k <= 7 || (m <= 3 && k <= THIN_MAX_K)) {
        // Few terms per element, or few rows: along the rows of C, B' must be row-contiguous.
        if (!transB) {
            rows_kernel(m, n, k, a, aRow, aK, b, ldb, c, ldc, accumulate);
            return 1;
        }
        float stack[STACK_FLOATS];
        float *packed = k * n <= STACK_FLOATS ? stack : malloc((size_t)(k * n) * sizeof(float));
        if (!packed) return 0;
        for (long p = 0; p < k; p++) for (long j = 0; j < n; j++) packed[p * n + j] = b[j * ldb + p];
        rows_kernel(m, n, k, a, aRow, aK, packed, n, c, ldc, accumulate);
        if (packed != stack) free(packed);
        return 1;
    }
    if (n <= 7 && k <= THIN_MAX_K) {
        // Few columns: down the columns of C, eight rows at a time.
        columns_kernel(transA, m, n, k, a, lda, b, bK, bColumn, c, ldc, accumulate);
        return 1;
    }
    return 0;
}
