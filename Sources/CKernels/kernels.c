#include "CKernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

// No fused multiply-adds anywhere (they round differently), and no warnings about 8-lane vectors passed between the
// always-inlined helpers of the portable build.
#pragma clang fp contract(off)
#pragma clang diagnostic ignored "-Wpsabi"

// Eight floats; in the portable build the compiler carries each operation out as two SSE operations.
typedef float f8 __attribute__((vector_size(32), aligned(4)));
typedef int i8 __attribute__((vector_size(32), aligned(4)));

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE f8 splat(float v) { return (f8){v, v, v, v, v, v, v, v}; }
ALWAYS_INLINE f8 load(const float *p) { f8 r; memcpy(&r, p, sizeof r); return r; }
ALWAYS_INLINE void store(float *p, f8 v) { memcpy(p, &v, sizeof v); }
/// Lanes of `a` where `mask` is set, of `b` elsewhere.
ALWAYS_INLINE f8 blend(i8 mask, f8 a, f8 b) { return (f8)(((i8)a & mask) | ((i8)b & ~mask)); }

// MARK: - The kernels, written once, compiled twice (portable and AVX2).

ALWAYS_INLINE f8 tanh8(f8 input) {
    const float bound = 7.90531110763549805f;
    f8 x = blend(input > splat(bound), splat(bound), input);
    x = blend(x < splat(-bound), splat(-bound), x);
    f8 x2 = x * x;
    f8 p = splat(-2.76076847742355e-16f);
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    f8 q = splat(1.19825839466702e-06f);
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    i8 tiny = (input < splat(0.0004f)) & (input > splat(-0.0004f));
    return blend(tiny, input, p / q);
}

ALWAYS_INLINE void tanh_body(const float *x, float *y, long n) {
    long i = 0;
    // Four independent groups per iteration, so that their long chains of dependent operations overlap.
    for (; i + 32 <= n; i += 32) {
        f8 a = tanh8(load(x + i)), b = tanh8(load(x + i + 8)), c = tanh8(load(x + i + 16)), d = tanh8(load(x + i + 24));
        store(y + i, a);
        store(y + i + 8, b);
        store(y + i + 16, c);
        store(y + i + 24, d);
    }
    for (; i + 8 <= n; i += 8) store(y + i, tanh8(load(x + i)));
    if (i < n) {
        float pad[8] = {0};
        memcpy(pad, x + i, (size_t)(n - i) * sizeof(float));
        store(pad, tanh8(load(pad)));
        memcpy(y + i, pad, (size_t)(n - i) * sizeof(float));
    }
}

ALWAYS_INLINE void tanh_backward_body(const float *g, const float *y, float *out, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        f8 yv = load(y + i);
        store(out + i, load(g + i) * (1.0f - yv * yv));
    }
    for (; i < n; i++) out[i] = g[i] * (1.0f - y[i] * y[i]);
}

ALWAYS_INLINE void relu_body(const float *x, float *y, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        f8 v = load(x + i);
        store(y + i, blend(v > splat(0), v, splat(0)));
    }
    for (; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

ALWAYS_INLINE void relu_backward_body(const float *g, const float *y, float *out, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) store(out + i, blend(load(y + i) > splat(0), load(g + i), splat(0)));
    for (; i < n; i++) out[i] = y[i] > 0 ? g[i] : 0;
}

ALWAYS_INLINE void adam_body(float *w, const float *g, float *m, float *v, long n, float l2, float b1, float c1,
                             float b2, float c2, float stepSize, float inverseBc2Sqrt, float eps) {
    long k = 0;
    for (; k + 8 <= n; k += 8) {
        f8 wk = load(w + k);
        f8 d = load(g + k) + l2 * wk;
        f8 mk = b1 * load(m + k) + c1 * d;
        f8 vk = b2 * load(v + k) + c2 * d * d;
        wk -= stepSize * mk / (__builtin_elementwise_sqrt(vk) * inverseBc2Sqrt + eps);
        store(m + k, mk);
        store(v + k, vk);
        store(w + k, wk);
    }
    for (; k < n; k++) {
        float d = g[k] + l2 * w[k];
        m[k] = b1 * m[k] + c1 * d;
        v[k] = b2 * v[k] + c2 * d * d;
        w[k] -= stepSize * m[k] / (sqrtf(v[k]) * inverseBc2Sqrt + eps);
    }
}

#if defined(__x86_64__) || defined(__i386__)
#define AVX2 __attribute__((target("avx2")))
#else
#define AVX2  // no AVX2 elsewhere: these copies are never chosen (see cpu_has_avx2)
#endif

static void tanh_portable(const float *x, float *y, long n) { tanh_body(x, y, n); }
AVX2 static void tanh_avx2(const float *x, float *y, long n) { tanh_body(x, y, n); }

static void tanh_backward_portable(const float *g, const float *y, float *out, long n) { tanh_backward_body(g, y, out, n); }
AVX2 static void tanh_backward_avx2(const float *g, const float *y, float *out, long n) { tanh_backward_body(g, y, out, n); }

static void relu_portable(const float *x, float *y, long n) { relu_body(x, y, n); }
AVX2 static void relu_avx2(const float *x, float *y, long n) { relu_body(x, y, n); }

static void relu_backward_portable(const float *g, const float *y, float *out, long n) { relu_backward_body(g, y, out, n); }
AVX2 static void relu_backward_avx2(const float *g, const float *y, float *out, long n) { relu_backward_body(g, y, out, n); }

#define ADAM_PARAMETERS float *w, const float *g, float *m, float *v, long n, float l2, float b1, float c1, \
    float b2, float c2, float stepSize, float inverseBc2Sqrt, float eps
#define ADAM_ARGUMENTS w, g, m, v, n, l2, b1, c1, b2, c2, stepSize, inverseBc2Sqrt, eps
static void adam_portable(ADAM_PARAMETERS) { adam_body(ADAM_ARGUMENTS); }
AVX2 static void adam_avx2(ADAM_PARAMETERS) { adam_body(ADAM_ARGUMENTS); }

// MARK: - Dispatch

/// -1 until first use, then 1 (AVX2) or 0 (portable).
static atomic_int avx2_state = -1;

static int cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

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

int rl_kernels_use_avx2(void) {
    int state = atomic_load_explicit(&avx2_state, memory_order_relaxed);
    if (state < 0) {
        const char *off = getenv("RLBENCH_NO_AVX2");
        state = (off != NULL && off[0] != '\0' && strcmp(off, "0") != 0) ? 0 : cpu_has_avx2();
        atomic_store_explicit(&avx2_state, state, memory_order_relaxed);
    }
    return state;
}

void rl_kernels_allow_avx2(int allow) {
    atomic_store_explicit(&avx2_state, allow ? cpu_has_avx2() : 0, memory_order_relaxed);
}

void rl_tanh(const float *x, float *y, long n) {
    if (rl_kernels_use_avx2()) tanh_avx2(x, y, n); else tanh_portable(x, y, n);
}

void rl_tanh_backward(const float *g, const float *y, float *out, long n) {
    if (rl_kernels_use_avx2()) tanh_backward_avx2(g, y, out, n); else tanh_backward_portable(g, y, out, n);
}

void rl_relu(const float *x, float *y, long n) {
    if (rl_kernels_use_avx2()) relu_avx2(x, y, n); else relu_portable(x, y, n);
}

void rl_relu_backward(const float *g, const float *y, float *out, long n) {
    if (rl_kernels_use_avx2()) relu_backward_avx2(g, y, out, n); else relu_backward_portable(g, y, out, n);
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
    if (rl_kernels_use_avx2()) adam_avx2(ADAM_ARGUMENTS); else adam_portable(ADAM_ARGUMENTS);
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(saved);
#endif
}
