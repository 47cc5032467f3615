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

/// tanh of `count` vectors from `in` into `out`, as Eigen's rational approximation p(x)/q(x) on [-7.9053, 7.9053]
/// (x itself for |x| < 4e-4). Each step is taken for every vector before the next, so that the vectors' long chains
/// of dependent multiplies and adds overlap: one vector at a time is bound by their latency (16 cycles per 8 values
/// on Zen 3), a block of twelve much less (10.8). Each value is computed by the same operations in the same order
/// whatever the block.
ALWAYS_INLINE TARGET void KERNEL(tanh_block)(const float *in, float *out, const int count) {
    const float bound = 7.90531110763549805f;
    VEC x[TANH_BLOCK], x2[TANH_BLOCK], p[TANH_BLOCK], q[TANH_BLOCK];
    for (int v = 0; v < count; v++) {
        VEC input = load(in + v * LANES);
        VEC clamped = blend(input > splat(bound), splat(bound), input);
        x[v] = blend(clamped < splat(-bound), splat(-bound), clamped);
    }
    for (int v = 0; v < count; v++) x2[v] = x[v] * x[v];
    for (int v = 0; v < count; v++) p[v] = splat(-2.76076847742355e-16f) * x2[v] + 2.00018790482477e-13f;
    for (int v = 0; v < count; v++) q[v] = splat(1.19825839466702e-06f) * x2[v] + 1.18534705686654e-04f;
    for (int v = 0; v < count; v++) p[v] = p[v] * x2[v] - 8.60467152213735e-11f;
    for (int v = 0; v < count; v++) q[v] = q[v] * x2[v] + 2.26843463243900e-03f;
    for (int v = 0; v < count; v++) p[v] = p[v] * x2[v] + 5.12229709037114e-08f;
    for (int v = 0; v < count; v++) q[v] = q[v] * x2[v] + 4.89352518554385e-03f;
    for (int v = 0; v < count; v++) p[v] = p[v] * x2[v] + 1.48572235717979e-05f;
    for (int v = 0; v < count; v++) p[v] = p[v] * x2[v] + 6.37261928875436e-04f;
    for (int v = 0; v < count; v++) p[v] = p[v] * x2[v] + 4.89352455891786e-03f;
    for (int v = 0; v < count; v++) p[v] = p[v] * x[v];
    for (int v = 0; v < count; v++) {
        VEC input = load(in + v * LANES);
        IVEC tiny = (input < splat(0.0004f)) & (input > splat(-0.0004f));
        store(out + v * LANES, blend(tiny, input, p[v] / q[v]));
    }
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

#undef splat
#undef load
#undef store
#undef blend
