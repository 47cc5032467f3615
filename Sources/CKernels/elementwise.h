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

/// tanh as Eigen's rational approximation p(x)/q(x) on [-7.9053, 7.9053], x itself for |x| < 4e-4.
ALWAYS_INLINE TARGET VEC KERNEL(tanh_lanes)(VEC input) {
    const float bound = 7.90531110763549805f;
    VEC x = blend(input > splat(bound), splat(bound), input);
    x = blend(x < splat(-bound), splat(-bound), x);
    VEC x2 = x * x;
    VEC p = splat(-2.76076847742355e-16f);
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    VEC q = splat(1.19825839466702e-06f);
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    IVEC tiny = (input < splat(0.0004f)) & (input > splat(-0.0004f));
    return blend(tiny, input, p / q);
}

static TARGET void KERNEL(tanh)(const float *x, float *y, long n) {
    long i = 0;
    // Four independent groups per iteration, so that their long chains of dependent operations overlap.
    for (; i + 4 * LANES <= n; i += 4 * LANES) {
        VEC a = KERNEL(tanh_lanes)(load(x + i)), b = KERNEL(tanh_lanes)(load(x + i + LANES));
        VEC c = KERNEL(tanh_lanes)(load(x + i + 2 * LANES)), d = KERNEL(tanh_lanes)(load(x + i + 3 * LANES));
        store(y + i, a);
        store(y + i + LANES, b);
        store(y + i + 2 * LANES, c);
        store(y + i + 3 * LANES, d);
    }
    for (; i + LANES <= n; i += LANES) store(y + i, KERNEL(tanh_lanes)(load(x + i)));
    if (i < n) {
        float pad[LANES] = {0};
        memcpy(pad, x + i, (size_t)(n - i) * sizeof(float));
        store(pad, KERNEL(tanh_lanes)(load(pad)));
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
