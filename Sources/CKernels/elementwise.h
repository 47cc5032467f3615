// The element-wise kernels, written once over a vector type and included by kernels.c once per instruction set.
// Before each inclusion kernels.c defines:
//   VEC, IVEC  a vector of LANES floats and one of LANES 32-bit integers (clang vector extensions);
//   LANES      8 or 16;
//   KERNEL(f)  the name of this copy of f (f_portable, f_avx2, f_avx512);
//   TARGET     the instruction set attribute of this copy (empty for the portable one).
// Every operation is lane-wise IEEE arithmetic without fused multiply-adds (contraction is off in kernels.c), so
// each copy computes every element with the same operations in the same order: the copies differ in speed only.

ALWAYS_INLINE TARGET VEC KERNEL(splat)(float v) {
    VEC r;
    for (int i = 0; i < LANES; i++) r[i] = v;
    return r;
}
ALWAYS_INLINE TARGET VEC KERNEL(load)(const float *p) { VEC r; memcpy(&r, p, sizeof r); return r; }
ALWAYS_INLINE TARGET void KERNEL(store)(float *p, VEC v) { memcpy(p, &v, sizeof v); }
/// Lanes of `a` where `mask` is set, of `b` elsewhere.
ALWAYS_INLINE TARGET VEC KERNEL(blend)(IVEC mask, VEC a, VEC b) { return (VEC)(((IVEC)a & mask) | ((IVEC)b & ~mask)); }

#define splat KERNEL(splat)
#define load KERNEL(load)
#define store KERNEL(store)
#define blend KERNEL(blend)

#ifndef TANH_BLOCK
/// Vectors whose tanh is computed together (see `tanh_block`).
#define TANH_BLOCK 12
#endif

/// tanh of the `count` vectors of `v`, in place, as Eigen's rational approximation p(x)/q(x) on [-7.9053, 7.9053]
/// (x itself for |x| < 4e-4). Each step is taken for every vector before the next, so that the vectors' long chains
/// of dependent multiplies and adds overlap: one vector at a time is bound by their latency (16 cycles per 8 values
/// on Zen 3), a block of twelve much less (10.8). Each value is computed by the same operations in the same order
/// whatever the block.
ALWAYS_INLINE TARGET void KERNEL(tanh_vectors)(VEC *v, const int count) {
    const float bound = 7.90531110763549805f;
    VEC x[TANH_BLOCK], x2[TANH_BLOCK], p[TANH_BLOCK], q[TANH_BLOCK];
    for (int i = 0; i < count; i++) {
        VEC clamped = blend(v[i] > splat(bound), splat(bound), v[i]);
        x[i] = blend(clamped < splat(-bound), splat(-bound), clamped);
    }
    for (int i = 0; i < count; i++) x2[i] = x[i] * x[i];
    for (int i = 0; i < count; i++) p[i] = splat(-2.76076847742355e-16f) * x2[i] + 2.00018790482477e-13f;
    for (int i = 0; i < count; i++) q[i] = splat(1.19825839466702e-06f) * x2[i] + 1.18534705686654e-04f;
    for (int i = 0; i < count; i++) p[i] = p[i] * x2[i] - 8.60467152213735e-11f;
    for (int i = 0; i < count; i++) q[i] = q[i] * x2[i] + 2.26843463243900e-03f;
    for (int i = 0; i < count; i++) p[i] = p[i] * x2[i] + 5.12229709037114e-08f;
    for (int i = 0; i < count; i++) q[i] = q[i] * x2[i] + 4.89352518554385e-03f;
    for (int i = 0; i < count; i++) p[i] = p[i] * x2[i] + 1.48572235717979e-05f;
    for (int i = 0; i < count; i++) p[i] = p[i] * x2[i] + 6.37261928875436e-04f;
    for (int i = 0; i < count; i++) p[i] = p[i] * x2[i] + 4.89352455891786e-03f;
    for (int i = 0; i < count; i++) p[i] = p[i] * x[i];
    for (int i = 0; i < count; i++) {
        IVEC tiny = (v[i] < splat(0.0004f)) & (v[i] > splat(-0.0004f));
        v[i] = blend(tiny, v[i], p[i] / q[i]);
    }
}

/// tanh of `count` vectors from `in` into `out` (`tanh_vectors`).
ALWAYS_INLINE TARGET void KERNEL(tanh_block)(const float *in, float *out, const int count) {
    VEC v[TANH_BLOCK];
    for (int i = 0; i < count; i++) v[i] = load(in + i * LANES);
    KERNEL(tanh_vectors)(v, count);
    for (int i = 0; i < count; i++) store(out + i * LANES, v[i]);
}

static TARGET void KERNEL(tanh)(const float *x, float *y, long n) {
    long i = 0;
    for (; i + TANH_BLOCK * LANES <= n; i += TANH_BLOCK * LANES) KERNEL(tanh_block)(x + i, y + i, TANH_BLOCK);
    const long whole = (n - i) / LANES;
    KERNEL(tanh_block)(x + i, y + i, (int)whole);
    i += whole * LANES;
    if (i < n) {
        float pad[LANES] = {0};
        memcpy(pad, x + i, (size_t)(n - i) * sizeof(float));
        KERNEL(tanh_block)(pad, pad, 1);
        memcpy(y + i, pad, (size_t)(n - i) * sizeof(float));
    }
}

static TARGET void KERNEL(tanh_backward)(const float *g, const float *y, float *out, long n) {
    long i = 0;
    for (; i + LANES <= n; i += LANES) {
        VEC yv = load(y + i);
        store(out + i, load(g + i) * (1.0f - yv * yv));
    }
    for (; i < n; i++) out[i] = g[i] * (1.0f - y[i] * y[i]);
}

static TARGET void KERNEL(relu)(const float *x, float *y, long n) {
    long i = 0;
    for (; i + LANES <= n; i += LANES) {
        VEC v = load(x + i);
        store(y + i, blend(v > splat(0), v, splat(0)));
    }
    for (; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

static TARGET void KERNEL(relu_backward)(const float *g, const float *y, float *out, long n) {
    long i = 0;
    for (; i + LANES <= n; i += LANES) store(out + i, blend(load(y + i) > splat(0), load(g + i), splat(0)));
    for (; i < n; i++) out[i] = y[i] > 0 ? g[i] : 0;
}

static TARGET void KERNEL(column_sums)(const float *g, long rows, long columns, float *sums) {
    long j = 0;
    // Four vectors of columns at a time, their sums kept in registers over all the rows.
    for (; j + 4 * LANES <= columns; j += 4 * LANES) {
        VEC a = splat(0), b = splat(0), c = splat(0), d = splat(0);
        for (long i = 0; i < rows; i++) {
            const float *row = g + i * columns + j;
            a = a + load(row);
            b = b + load(row + LANES);
            c = c + load(row + 2 * LANES);
            d = d + load(row + 3 * LANES);
        }
        store(sums + j, a);
        store(sums + j + LANES, b);
        store(sums + j + 2 * LANES, c);
        store(sums + j + 3 * LANES, d);
    }
    for (; j + LANES <= columns; j += LANES) {
        VEC a = splat(0);
        for (long i = 0; i < rows; i++) a = a + load(g + i * columns + j);
        store(sums + j, a);
    }
    for (; j < columns; j++) {
        float s = 0;
        for (long i = 0; i < rows; i++) s += g[i * columns + j];
        sums[j] = s;
    }
}

static TARGET void KERNEL(adam)(ADAM_PARAMETERS) {
    long k = 0;
    for (; k + LANES <= n; k += LANES) {
        VEC wk = load(w + k);
        VEC d = load(g + k) + l2 * wk;
        VEC mk = b1 * load(m + k) + c1 * d;
        VEC vk = b2 * load(v + k) + c2 * d * d;
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

/// The first `count` (1 to LANES) floats at p, the other lanes +0; and their store.
ALWAYS_INLINE TARGET VEC KERNEL(load_upto)(const float *p, long count) {
    if (count == LANES) return load(p);
    VEC r = splat(0);
    memcpy(&r, p, sizeof(float) * (size_t)count);
    return r;
}
ALWAYS_INLINE TARGET void KERNEL(store_upto)(float *p, VEC v, long count) {
    if (count == LANES) store(p, v);
    else memcpy(p, &v, sizeof(float) * (size_t)count);
}

/// One LSTM sample's gates, cell and hidden state at values j ..< j + n of its H (n ≤ LANES): the four gates'
/// pre-activations x + h, their tanh (g) or σ(a) = 0.5 + 0.5·tanh(0.5·a) (i, f, o) together, then c = f·cPrev + i·g
/// and tanh c, all written to v; h = o·tanh c into y. (The vectors of the next j, independent of these, overlap with
/// their chains: blocks of several j were no faster.)
ALWAYS_INLINE TARGET void KERNEL(lstm_forward_vector)(const float *x, const float *h, const float *cPrev, float *v,
                                                      float *y, long H, long j, long n) {
    VEC gate[4];
    for (int q = 0; q < 4; q++) {
        VEC a = KERNEL(load_upto)(x + q * H + j, n) + KERNEL(load_upto)(h + q * H + j, n);
        gate[q] = q == 2 ? a : a * 0.5f;
    }
    KERNEL(tanh_vectors)(gate, 4);
    VEC i = 0.5f + 0.5f * gate[0], f = 0.5f + 0.5f * gate[1], g = gate[2], o = 0.5f + 0.5f * gate[3];
    VEC c[1] = {f * KERNEL(load_upto)(cPrev + j, n) + i * g};
    KERNEL(store_upto)(v + j, i, n);
    KERNEL(store_upto)(v + H + j, f, n);
    KERNEL(store_upto)(v + 2 * H + j, g, n);
    KERNEL(store_upto)(v + 3 * H + j, o, n);
    KERNEL(store_upto)(v + 4 * H + j, c[0], n);
    KERNEL(tanh_vectors)(c, 1);
    KERNEL(store_upto)(v + 5 * H + j, c[0], n);
    KERNEL(store_upto)(y + j, o * c[0], n);
}

/// One time step of an LSTM for `rows` samples (see rl_lstm_forward in CKernels.h), a vector of each sample's hidden
/// units at a time.
static TARGET void KERNEL(lstm_forward)(long rows, long H, const float *x, long xStride, const float *h, long hStride,
                                        const float *cPrev, long cPrevStride, float *cache, long cacheStride,
                                        float *y, long yStride) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * xStride, *hr = h + r * hStride, *cp = cPrev + r * cPrevStride;
        float *v = cache + r * cacheStride, *yr = y + r * yStride;
        long j = 0;
        for (; j + LANES <= H; j += LANES) KERNEL(lstm_forward_vector)(xr, hr, cp, v, yr, H, j, LANES);
        if (j < H) KERNEL(lstm_forward_vector)(xr, hr, cp, v, yr, H, j, H - j);
    }
}

/// The backward of `lstm_forward` for one sample at values j ..< j + n of its H (n ≤ LANES; see rl_lstm_backward).
ALWAYS_INLINE TARGET void KERNEL(lstm_backward_vector)(const float *up, float *carry, const float *v, const float *cp,
                                                       float *dcr, float *dx, long H, long j, long n) {
    VEC i = KERNEL(load_upto)(v + j, n), f = KERNEL(load_upto)(v + H + j, n);
    VEC g = KERNEL(load_upto)(v + 2 * H + j, n), o = KERNEL(load_upto)(v + 3 * H + j, n);
    VEC tc = KERNEL(load_upto)(v + 5 * H + j, n);
    VEC dhj = KERNEL(load_upto)(up + j, n) + KERNEL(load_upto)(carry + j, n);
    VEC dcj = KERNEL(load_upto)(dcr + j, n) + dhj * o * (1.0f - tc * tc);
    KERNEL(store_upto)(dx + j, dcj * g * i * (1.0f - i), n);
    KERNEL(store_upto)(dx + H + j, dcj * KERNEL(load_upto)(cp + j, n) * f * (1.0f - f), n);
    KERNEL(store_upto)(dx + 2 * H + j, dcj * i * (1.0f - g * g), n);
    KERNEL(store_upto)(dx + 3 * H + j, dhj * tc * o * (1.0f - o), n);
    KERNEL(store_upto)(dcr + j, dcj * f, n);
    KERNEL(store_upto)(carry + j, splat(0), n);
}

/// The backward of `lstm_forward` for `rows` samples at one time step, in one pass (see rl_lstm_backward).
static TARGET void KERNEL(lstm_backward)(long rows, long H, const float *upstream, long upStride, float *dh, long dhStride,
                                         const float *cache, long cacheStride, const float *cPrev, long cPrevStride,
                                         float *dc, long dcStride, float *dGates, long dGatesStride) {
    for (long r = 0; r < rows; r++) {
        const float *up = upstream + r * upStride, *v = cache + r * cacheStride, *cp = cPrev + r * cPrevStride;
        float *carry = dh + r * dhStride, *dcr = dc + r * dcStride, *dx = dGates + r * dGatesStride;
        long j = 0;
        for (; j + LANES <= H; j += LANES) KERNEL(lstm_backward_vector)(up, carry, v, cp, dcr, dx, H, j, LANES);
        if (j < H) KERNEL(lstm_backward_vector)(up, carry, v, cp, dcr, dx, H, j, H - j);
    }
}

#undef splat
#undef load
#undef store
#undef blend
