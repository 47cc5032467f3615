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

/// One register tile of C: MR rows (rows[r] of op(A), C and rowBias when `rows` is given, else r), NV vectors of
/// columns, the last of them holding `last` columns when `partial`. C[i, j] = start + Σ_p A'[i, t_p] B[t_p, j], the
/// sum in fused multiply-adds from +0 in the order of p, where t_p is aTerms[p] for A' (bTerms[p] for B) when given,
/// else p.
ALWAYS_INLINE TARGET void NAME(tile)(const int MR, const int NV, const int partial, int last, long k,
                                     const float *a, long aRow, long aK, const int *rows, const int *aTerms,
                                     const float *b, long ldb, const int *bTerms, const float *rowBias, int accumulate,
                                     float *c, long ldc) {
    const float *ar[TILE_ROWS];
    float *cr[TILE_ROWS];
    float bias[TILE_ROWS];
    for (int r = 0; r < MR; r++) {
        long i = rows ? rows[r] : r;
        ar[r] = a + i * aRow;
        cr[r] = c + i * ldc;
        bias[r] = rowBias ? rowBias[i] : 0.0f;
    }
    VEC s[TILE_ROWS][TILE_VECTORS];
    // From +0 read through `panel_zero`: from a constant, clang clears the whole tile in memory (a call to memset for
    // AVX-512's 24 vectors) and loads it back into registers, which cost about a tenth of the kernel's time.
    const VEC zero = NAME(splat)(panel_zero);
    for (int r = 0; r < MR; r++) for (int v = 0; v < NV; v++) s[r][v] = zero;
    for (long p = 0; p < k; p++) {
        const float *row = b + (bTerms ? bTerms[p] : p) * ldb;
        long column = (aTerms ? aTerms[p] : p) * aK;
        VEC bv[TILE_VECTORS];
        for (int v = 0; v < NV; v++) {
            if (partial && v == NV - 1) bv[v] = LOAD_PART(row + v * LANES, last);
            else memcpy(&bv[v], row + v * LANES, sizeof(VEC));
        }
        for (int r = 0; r < MR; r++) {
            VEC av = NAME(splat)(ar[r][column]);
            for (int v = 0; v < NV; v++) s[r][v] = __builtin_elementwise_fma(av, bv[v], s[r][v]);
        }
    }
    for (int r = 0; r < MR; r++) {
        VEC rowStart = NAME(splat)(bias[r]);
        for (int v = 0; v < NV; v++) {
            int part = partial && v == NV - 1;
            VEC start = rowStart;
            if (accumulate) {
                if (part) start = LOAD_PART(cr[r] + v * LANES, last);
                else memcpy(&start, cr[r] + v * LANES, sizeof(VEC));
            }
            VEC result = start + s[r][v];
            if (part) STORE_PART(cr[r] + v * LANES, result, last);
            else memcpy(cr[r] + v * LANES, &result, sizeof(VEC));
        }
    }
}

/// MR rows of C (see `tile` for `rows`), across the columns j ..< j + n (n ≤ PANEL_BLOCK): full tiles, then the
/// remaining columns as one tile of as many vectors as they fill, the last one perhaps in part. The tile's rows of A
/// stay in L1 across it.
ALWAYS_INLINE TARGET void NAME(row_block)(const int MR, long n, long k, const float *a, long aRow, long aK,
                                          const int *rows, const int *aTerms, const float *b, long ldb,
                                          const int *bTerms, const float *rowBias, int accumulate, float *c, long ldc) {
    const long width = TILE_VECTORS * LANES;
    long j = 0;
    for (; j + width <= n; j += width) {
        NAME(tile)(MR, TILE_VECTORS, 0, LANES, k, a, aRow, aK, rows, aTerms, b + j, ldb, bTerms, rowBias, accumulate,
                   c + j, ldc);
    }
    long rest = n - j;
    if (rest == 0) return;
    int vectors = (int)((rest + LANES - 1) / LANES), last = (int)(rest - (vectors - 1) * LANES);
#define REST(NV) do { \
        if (last < LANES) NAME(tile)(MR, NV, 1, last, k, a, aRow, aK, rows, aTerms, b + j, ldb, bTerms, rowBias, \
                                     accumulate, c + j, ldc); \
        else NAME(tile)(MR, NV, 0, LANES, k, a, aRow, aK, rows, aTerms, b + j, ldb, bTerms, rowBias, accumulate, \
                        c + j, ldc); \
    } while (0)
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
/// `scratch` (k × PANEL_BLOCK floats, the terms' rows in the order of the terms): reading them in place costs a TLB
/// miss per k. Inlined twice: with `terms` 0 (every k, the common case) and with a list.
ALWAYS_INLINE TARGET void NAME(panel_body)(PANEL_PARAMETERS, const int *rows, const int *terms, float *scratch) {
    for (long j = 0; j < n; j += PANEL_BLOCK) {
        long columns = n - j < PANEL_BLOCK ? n - j : PANEL_BLOCK;
        const float *bj = b + j;
        long ldbj = ldb;
        const int *bTerms = terms;
        if (scratch) {
            for (long p = 0; p < k; p++) {
                memcpy(scratch + p * columns, b + (terms ? terms[p] : p) * ldb + j, sizeof(float) * columns);
            }
            bj = scratch;
            ldbj = columns;
            bTerms = 0;
        }
        // Rows i ..< i + MR: through `rows`, or by offsetting A, C and the biases.
#define ROWS(MR) do { \
            if (rows) NAME(row_block)(MR, columns, k, a, aRow, aK, rows + i, terms, bj, ldbj, bTerms, rowBias, \
                                      accumulate, c + j, ldc); \
            else NAME(row_block)(MR, columns, k, a + i * aRow, aRow, aK, 0, terms, bj, ldbj, bTerms, \
                                 rowBias ? rowBias + i : 0, accumulate, c + i * ldc + j, ldc); \
        } while (0)
        long i = 0;
        for (; i + TILE_ROWS <= m; i += TILE_ROWS) ROWS(TILE_ROWS);
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

static TARGET void NAME(panel_gemm)(PANEL_PARAMETERS, const int *rows, const int *terms, float *scratch) {
    if (terms) NAME(panel_body)(m, n, k, a, aRow, aK, b, ldb, rowBias, accumulate, c, ldc, rows, terms, scratch);
    else NAME(panel_body)(m, n, k, a, aRow, aK, b, ldb, rowBias, accumulate, c, ldc, rows, 0, scratch);
}
