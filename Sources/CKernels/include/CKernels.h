#ifndef RLBENCH_CKERNELS_H
#define RLBENCH_CKERNELS_H

/// Element-wise kernels and thin matrix products of the tensor core, in C so that they can use AVX2 or AVX-512
/// where the CPU has them (chosen at run time; the build itself targets plain x86-64). Every version of an element-wise
/// kernel performs the same IEEE operations in the same order, without fused multiply-adds, so their results are
/// bit-identical: only the speed depends on the CPU.

/// The element-wise kernels' instruction set in use: 2 (AVX-512), 1 (AVX2) or 0 (portable) — the widest the CPU has
/// (`rl_cpu_vector_level`), lowered by `RLBENCH_NO_AVX512` (to AVX2), `RLBENCH_NO_AVX2` (to portable) or
/// `rl_kernels_limit`.
int rl_kernels_level(void);

/// Uses at most `level` (2, 1 or 0 as in `rl_kernels_level`, capped by what the CPU has) from now on; returns the
/// level now in use.
int rl_kernels_limit(int level);

/// The widest vector instructions this CPU and its operating system support: 0 (older than AVX2 with FMA), 1 (AVX2
/// and FMA), 2 (also AVX-512 F, CD, BW, DQ and VL: the set OpenBLAS's SkylakeX kernels use).
int rl_cpu_vector_level(void);

/// The element-wise kernels below may write their output over an input (y == x, out == g): each element is read
/// before it is written.

/// y[i] = tanh(x[i]): Eigen's rational approximation p(x)/q(x) on [-7.9053, 7.9053] (±1 beyond, in float), and x
/// itself for |x| < 4e-4.
void rl_tanh(const float *x, float *y, long n);

/// out[i] = g[i] · (1 − y[i]²), the backward of tanh from its output y.
void rl_tanh_backward(const float *g, const float *y, float *out, long n);

/// One LSTM time step (PyTorch's gates i, f, g, o) for `rows` samples, row r of each operand at its pointer plus r
/// times its stride: from the input and hidden projections x and h (4·hidden values each, biases included) and the
/// previous cell state cPrev, writes the sample's 6·hidden values of `cache` (i, f, g, o, c, tanh c) and its new hidden
/// state y = o·tanh(c), where c = f·cPrev + i·g and each gate's pre-activation is a = x + h, with σ(a) computed as
/// 0.5 + 0.5·tanh(0.5·a) (`rl_tanh`'s tanh). Every instruction set gives the same bits.
void rl_lstm_forward(long rows, long hidden, const float *x, long xStride, const float *h, long hStride,
                     const float *cPrev, long cPrevStride, float *cache, long cacheStride, float *y, long yStride);

/// The backward of `rl_lstm_forward` at one time step for `rows` samples (strides as there): from the gradient
/// reaching h_t (upstream + dh, dh then cleared to +0 for the caller to add the next product into), the gradient dc
/// reaching c_t (replaced by the one reaching cPrev, dc·f), the step's `cache` and cPrev, writes the gradients of the
/// four gates' pre-activations (4·hidden values a row) into dGates:
/// dc' = dc + dh·o·(1 − tanh²c); di = dc'·g·i(1 − i); df = dc'·cPrev·f(1 − f); dg = dc'·i(1 − g²); do = dh·tanh c·o(1 − o),
/// each product taken left to right.
void rl_lstm_backward(long rows, long hidden, const float *upstream, long upstreamStride, float *dh, long dhStride,
                      const float *cache, long cacheStride, const float *cPrev, long cPrevStride, float *dc,
                      long dcStride, float *dGates, long dGatesStride);

/// y[i] = x[i] where x[i] > 0, else +0 (also for NaN).
void rl_relu(const float *x, float *y, long n);

/// out[i] = g[i] where y[i] > 0, else +0: the backward of ReLU from its output y.
void rl_relu_backward(const float *g, const float *y, float *out, long n);

/// sums[j] = Σ_i g[i·columns + j] over the `rows` rows of a row-major matrix, each column added up from +0 in row
/// order (the bias gradient of a linear layer).
void rl_column_sums(const float *g, long rows, long columns, float *sums);

/// sums[i] = Σ_j g[i·columns + j] for each of the `rows` rows of a row-major matrix, each row added up from +0 in
/// column order: `rl_column_sums` of the transposed matrix, the same values.
void rl_row_sums(const float *g, long rows, long columns, float *sums);

/// One Adam update of n parameters w with gradient g and moments m, v (PyTorch's formulas):
/// d = g + l2·w, m ← β₁m + (1−β₁)d, v ← β₂v + (1−β₂)d², w −= stepSize·m / (√v · inverseBc2Sqrt + ε).
/// On x86 subnormal inputs and results count as zero during the update (FTZ and DAZ; the caller's setting is
/// restored): decaying moments otherwise cost a microcode assist per operation on Intel CPUs.
void rl_adam(float *w, const float *g, float *m, float *v, long n, float l2, float beta1, float oneMinusBeta1,
             float beta2, float oneMinusBeta2, float stepSize, float inverseBc2Sqrt, float eps);

/// C = op(A)·op(B) + (accumulate ? C : 0) (row-major, op an optional transpose: the CBLAS `sgemm` contract with
/// alpha 1 and beta 1 or 0; with 0, C is only written) for
/// products with one very small dimension, the shapes where OpenBLAS's packing costs several times the arithmetic:
/// k ≤ 7; or m ≤ 3 or n ≤ 7, with k ≤ 320. Each element is the sum over k in
/// order, in fused multiply-adds from +0, then added to C (or to +0) — the values of OpenBLAS's Haswell and Zen kernels.
/// Returns 1 when it computed the product, 0 (C untouched) for another shape or on a CPU without AVX2 and FMA.
int rl_thin_gemm(int transA, int transB, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                 int accumulate, float *c, long ldc);

/// C = op(A)·B + start (row-major; op an optional transpose of A, B never transposed), where start is C itself
/// (accumulate), else rowBias[i] for row i when rowBias is given, else +0; C is only written unless accumulate.
/// Each element is the sum over k in order, in fused multiply-adds from +0, then added to its start: the same value on
/// every CPU and whatever the caller's cut of C into pieces. Made for medium products (tens to hundreds in each
/// dimension), where it skips OpenBLAS's packing of both operands and the clearing of C (see panel_gemm.c). The
/// portable build (no AVX2) computes the same values, slowly.
///
/// Two optional lists (NULL: all, in order) leave out work whose result is known:
/// - `rows`: the m rows computed are rows[0..<m] of op(A), C and rowBias; C's other rows are not touched.
/// - `terms`: each sum runs over the k indices terms[0..<k] (increasing) of op(A)'s columns and B's rows. Leaving out
///   products that are zero (a zero row of B, a zero column of op(A)) gives the same values: adding ±0 to a sum that
///   starts from +0 changes nothing. (Not when the other factor is infinite or NaN: that product would be NaN.)
void rl_panel_gemm(int transA, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                   const float *rowBias, int accumulate, float *c, long ldc, const int *rows, const int *terms);

/// Writes into `indices` the rows of the row-major `rows × columns` matrix x that hold a value other than ±0 (NaN
/// counts), in increasing order, and returns how many there are.
long rl_nonzero_rows(const float *x, long rows, long columns, int *indices);

/// One spatial axis of a convolution (Convolution.swift's `ConvolutionAxis`): grid position o with kernel tap t reads
/// image position o·stride − padding + t·dilation, which is padding (zero) outside 0..<image.
typedef struct {
    long image, grid, kernel, stride, padding, dilation;
} rl_conv_axis;

/// im2col: writes one sample's lowered matrix of `channels` image channels: row (c·kH + i)·kW + j (rows `rowStride`
/// floats apart) holds, for each grid cell (y, x) at column y·gridW + x, the image cell tap (i, j) sees (0 in the
/// padding).
void rl_lower(const float *image, float *lowered, long rowStride, long channels, const rl_conv_axis *h,
              const rl_conv_axis *w);

/// col2im: adds such a lowered matrix back into the image (padding cells dropped; cells several taps see receive
/// the sum, added in row order).
void rl_unlower(const float *lowered, float *image, long rowStride, long channels, const rl_conv_axis *h,
                const rl_conv_axis *w);

#endif
