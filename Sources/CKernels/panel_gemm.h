// The panel product, written once over a vector type and included by panel_gemm.c once per instruction set.
// Before each inclusion panel_gemm.c defines:
//   VEC           a vector of LANES floats (clang vector extensions), LANES 8 or 16;
//   TILE_VECTORS  vectors of columns in a full register tile (4 with AVX-512's 32 registers, 2 with 16);
//   NAME(f)       the name of this copy of f; TARGET its instruction-set attribute (empty for the portable one);
//   LOAD_PART(p, count), STORE_PART(p, v, count)  the first `count` lanes only (the others read as +0, not written).

/// A vector of `value` in every lane (a broadcast; `(VEC){0} + value` would add, to turn −0 into +0).
ALWAYS_INLINE TARGET VEC NAME(splat)(float value) {
    VEC v;
    for (int i = 0; i < LANES; i++) v[i] = value;
    return v;
}

/// One register tile of C: MR rows, NV vectors of columns, the last of them holding `last` columns when `partial`.
/// C[i, j] = start + Σ_k A'[i, k] B[k, j], the sum in fused multiply-adds from +0 in the order of k.
ALWAYS_INLINE TARGET void NAME(tile)(const int MR, const int NV, const int partial, int last, long k,
                                     const float *a, long aRow, long aK, const float *b, long ldb,
                                     const float *rowBias, int accumulate, float *c, long ldc) {
    VEC s[TILE_ROWS][TILE_VECTORS];
    for (int r = 0; r < MR; r++) for (int v = 0; v < NV; v++) s[r][v] = (VEC){0};
    for (long p = 0; p < k; p++) {
        const float *row = b + p * ldb;
        VEC bv[TILE_VECTORS];
        for (int v = 0; v < NV; v++) {
            if (partial && v == NV - 1) bv[v] = LOAD_PART(row + v * LANES, last);
            else memcpy(&bv[v], row + v * LANES, sizeof(VEC));
        }
        for (int r = 0; r < MR; r++) {
            VEC av = NAME(splat)(a[r * aRow + p * aK]);
            for (int v = 0; v < NV; v++) s[r][v] = __builtin_elementwise_fma(av, bv[v], s[r][v]);
        }
    }
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        VEC bias = NAME(splat)(rowBias ? rowBias[r] : 0.0f);
        for (int v = 0; v < NV; v++) {
            int part = partial && v == NV - 1;
            VEC start = bias;
            if (accumulate) {
                if (part) start = LOAD_PART(cr + v * LANES, last);
                else memcpy(&start, cr + v * LANES, sizeof(VEC));
            }
            VEC result = start + s[r][v];
            if (part) STORE_PART(cr + v * LANES, result, last);
            else memcpy(cr + v * LANES, &result, sizeof(VEC));
        }
    }
}

/// Rows i ..< i + MR of C, across the columns j ..< j + n (n ≤ PANEL_BLOCK): full tiles, then the remaining columns as
/// one tile of as many vectors as they fill, the last one perhaps in part. The tile's rows of A stay in L1 across it.
ALWAYS_INLINE TARGET void NAME(row_block)(const int MR, long n, long k, const float *a, long aRow, long aK,
                                          const float *b, long ldb, const float *rowBias, int accumulate,
                                          float *c, long ldc) {
    const long width = TILE_VECTORS * LANES;
    long j = 0;
    for (; j + width <= n; j += width) {
        NAME(tile)(MR, TILE_VECTORS, 0, LANES, k, a, aRow, aK, b + j, ldb, rowBias, accumulate, c + j, ldc);
    }
    long rest = n - j;
    if (rest == 0) return;
    int vectors = (int)((rest + LANES - 1) / LANES), last = (int)(rest - (vectors - 1) * LANES);
#define REST(NV) do { if (last < LANES) NAME(tile)(MR, NV, 1, last, k, a, aRow, aK, b + j, ldb, rowBias, accumulate, c + j, ldc); \
                      else NAME(tile)(MR, NV, 0, LANES, k, a, aRow, aK, b + j, ldb, rowBias, accumulate, c + j, ldc); } while (0)
    switch (vectors) {
    case 1: REST(1); break;
#if TILE_VECTORS >= 2
    case 2: REST(2); break;
#endif
#if TILE_VECTORS >= 3
    case 3: REST(3); break;
#endif
#if TILE_VECTORS >= 4
    case 4: REST(4); break;
#endif
    default: break;
    }
#undef REST
}

/// Blocks of PANEL_BLOCK columns (their rows of B stay in L2), each down all m rows, TILE_ROWS at a time. Rows of B far
/// apart (ldb > 2·PANEL_BLOCK: a new page for every k) are first copied next to each other, one block at a time, into
/// `scratch` (k × PANEL_BLOCK floats): reading them in place costs a TLB miss per k.
static TARGET void NAME(panel_gemm)(PANEL_PARAMETERS, float *scratch) {
    for (long j = 0; j < n; j += PANEL_BLOCK) {
        long columns = n - j < PANEL_BLOCK ? n - j : PANEL_BLOCK;
        const float *bj = b + j;
        long ldbj = ldb;
        if (scratch) {
            for (long p = 0; p < k; p++) memcpy(scratch + p * columns, b + p * ldb + j, sizeof(float) * columns);
            bj = scratch;
            ldbj = columns;
        }
        long i = 0;
        for (; i + TILE_ROWS <= m; i += TILE_ROWS) {
            NAME(row_block)(TILE_ROWS, columns, k, a + i * aRow, aRow, aK, bj, ldbj, rowBias ? rowBias + i : 0,
                            accumulate, c + i * ldc + j, ldc);
        }
        const float *ai = a + i * aRow, *biasi = rowBias ? rowBias + i : 0;
        float *ci = c + i * ldc + j;
#define ROWS(MR) NAME(row_block)(MR, columns, k, ai, aRow, aK, bj, ldbj, biasi, accumulate, ci, ldc)
        switch (m - i) {
        case 1: ROWS(1); break;
        case 2: ROWS(2); break;
        case 3: ROWS(3); break;
        case 4: ROWS(4); break;
        case 5: ROWS(5); break;
#if TILE_ROWS > 6
        case 6: ROWS(6); break;
        case 7: ROWS(7); break;
#endif
        default: break;
        }
#undef ROWS
    }
}
