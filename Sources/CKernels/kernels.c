#include "CKernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

// No fused multiply-adds anywhere (they round differently), and no warnings about the vectors passed between the
// always-inlined helpers of the portable build.
#pragma clang fp contract(off)
#pragma clang diagnostic ignored "-Wpsabi"

// Eight or sixteen floats (and as many 32-bit integers); in the portable build the compiler carries each
// eight-lane operation out as two SSE operations.
typedef float f8 __attribute__((vector_size(32), aligned(4)));
typedef int i8 __attribute__((vector_size(32), aligned(4)));
typedef float f16 __attribute__((vector_size(64), aligned(4)));
typedef int i16 __attribute__((vector_size(64), aligned(4)));

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define ADAM_PARAMETERS float *w, const float *g, float *m, float *v, long n, float l2, float b1, float c1, \
    float b2, float c2, float stepSize, float inverseBc2Sqrt, float eps
#define ADAM_ARGUMENTS w, g, m, v, n, l2, b1, c1, b2, c2, stepSize, inverseBc2Sqrt, eps

// MARK: - The kernels, written once (elementwise.h), compiled three times: portable, AVX2 and AVX-512.

#define VEC f8
#define IVEC i8
#define LANES 8
#define KERNEL(f) f##_portable
#define TARGET
#include "elementwise.h"
#undef KERNEL
#undef TARGET

#if defined(__x86_64__) || defined(__i386__)
#define KERNEL(f) f##_avx2
#define TARGET __attribute__((target("avx2")))
#include "elementwise.h"
#undef KERNEL
#undef TARGET
#undef VEC
#undef IVEC
#undef LANES

#define VEC f16
#define IVEC i16
#define LANES 16
#define KERNEL(f) f##_avx512
#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#include "elementwise.h"
#undef KERNEL
#undef TARGET
#endif
#undef VEC
#undef IVEC
#undef LANES

// MARK: - Dispatch

/// -1 until first use, then the level in use: 2 (AVX-512), 1 (AVX2) or 0 (portable).
static atomic_int kernel_level = -1;

int rl_cpu_vector_level(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512vl");
    return avx512 ? 2 : 1;
#else
    return 0;
#endif
}

static int environment_flag(const char *name) {
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' && strcmp(value, "0") != 0;
}

int rl_kernels_level(void) {
    int level = atomic_load_explicit(&kernel_level, memory_order_relaxed);
    if (level < 0) {
        int limit = environment_flag("RLBENCH_NO_AVX2") ? 0 : environment_flag("RLBENCH_NO_AVX512") ? 1 : 2;
        level = rl_kernels_limit(limit);
    }
    return level;
}

int rl_kernels_limit(int level) {
    int cpu = rl_cpu_vector_level();
    int chosen = level < 0 ? 0 : level < cpu ? level : cpu;
    atomic_store_explicit(&kernel_level, chosen, memory_order_relaxed);
    return chosen;
}

#if defined(__x86_64__) || defined(__i386__)
#define DISPATCH(f, ...) do {                              \
        switch (rl_kernels_level()) {                      \
        case 2: f##_avx512(__VA_ARGS__); break;            \
        case 1: f##_avx2(__VA_ARGS__); break;              \
        default: f##_portable(__VA_ARGS__); break;         \
        }                                                  \
    } while (0)
#else
#define DISPATCH(f, ...) f##_portable(__VA_ARGS__)
#endif

void rl_tanh(const float *x, float *y, long n) { DISPATCH(tanh, x, y, n); }

void rl_tanh_backward(const float *g, const float *y, float *out, long n) { DISPATCH(tanh_backward, g, y, out, n); }

void rl_lstm_forward(long rows, long hidden, const float *x, long xStride, const float *h, long hStride,
                     const float *cPrev, long cPrevStride, float *cache, long cacheStride, float *y, long yStride) {
    DISPATCH(lstm_forward, rows, hidden, x, xStride, h, hStride, cPrev, cPrevStride, cache, cacheStride, y, yStride);
}

void rl_lstm_backward(long rows, long hidden, const float *upstream, long upstreamStride, float *dh, long dhStride,
                      const float *cache, long cacheStride, const float *cPrev, long cPrevStride, float *dc,
                      long dcStride, float *dGates, long dGatesStride) {
    DISPATCH(lstm_backward, rows, hidden, upstream, upstreamStride, dh, dhStride, cache, cacheStride, cPrev, cPrevStride,
             dc, dcStride, dGates, dGatesStride);
}

void rl_relu(const float *x, float *y, long n) { DISPATCH(relu, x, y, n); }

void rl_relu_backward(const float *g, const float *y, float *out, long n) { DISPATCH(relu_backward, g, y, out, n); }

void rl_column_sums(const float *g, long rows, long columns, float *sums) {
    DISPATCH(column_sums, g, rows, columns, sums);
}

void rl_adam(ADAM_PARAMETERS) {
#if defined(__x86_64__) || defined(__i386__)
    // Flush subnormals to zero, in and out, for this update only. The moments of a weight whose gradient stays zero
    // (a dead ReLU unit) decay by β₁ and β₂ a step into the subnormal range, where Intel CPUs take a microcode assist
    // for every operation: a DQN run spent 60% of its time here. A moment below 2⁻¹²⁶ moves its weight by less than
    // 10⁻³⁰ (learning rates up to 10⁻², ε at least 10⁻⁸), far below a weight's last bit, so the weights come out the
    // same; only such moments read 0 instead.
    unsigned int saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040);  // FTZ (bit 15) and DAZ (bit 6)
#endif
    DISPATCH(adam, ADAM_ARGUMENTS);
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(saved);
#endif
}

long rl_nonzero_rows(const float *x, long rows, long columns, int *indices) {
    long count = 0;
    for (long i = 0; i < rows; i++) {
        const float *row = x + i * columns;
        // Sixteen values at a time, up to the first block that holds a nonzero (`!= 0` is true for NaN too).
        int nonzero = 0;
        long j = 0;
        for (; j + 16 <= columns && !nonzero; j += 16) {
            for (int q = 0; q < 16; q++) nonzero |= row[j + q] != 0;
        }
        for (; j < columns && !nonzero; j++) nonzero = row[j] != 0;
        if (nonzero) indices[count++] = (int)i;
    }
    return count;
}

void rl_row_sums(const float *g, long rows, long columns, float *sums) {
    // Eight rows side by side: eight independent chains of additions, each row's in its own order.
    long i = 0;
    for (; i + 8 <= rows; i += 8) {
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (long j = 0; j < columns; j++) {
            for (int r = 0; r < 8; r++) s[r] += g[(i + r) * columns + j];
        }
        for (int r = 0; r < 8; r++) sums[i + r] = s[r];
    }
    for (; i < rows; i++) {
        float s = 0;
        for (long j = 0; j < columns; j++) s += g[i * columns + j];
        sums[i] = s;
    }
}
