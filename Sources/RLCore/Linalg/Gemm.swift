import CBLAS
import CKernels
import Foundation

/// The one seam through which every matrix product in rlbench goes.
///
/// `C = alpha * op(A) * op(B) + beta * C`, row-major, with `op` an optional transpose — the
/// CBLAS `sgemm` contract. `Gemm.multiply` sends the product to OpenBLAS, or to one of rlbench's kernels where
/// they are faster: the thin kernel `rl_thin_gemm` for a product with one tiny dimension, the panel kernel
/// `rl_panel_gemm` for a medium product with B as stored (see `panelDepths`); `Gemm.reference` is the plain triple
/// loop kept beside it for tests.
public enum Gemm {
    /// Row-major `C[m×n] = alpha * op(A)[m×k] * op(B)[k×n] + beta * C`.
    /// `lda`, `ldb`, `ldc` are the row strides of A, B, C as stored.
    @inlinable
    public static func multiply(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        _ = threadsConfigured
        guard k > 0 else {
            // op(A)·op(B) is empty: C = beta·C.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        guard m > 1 && n > 1 else {
            vectorProduct(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                          beta: beta, c: c, ldc: ldc)
            return
        }
        // A tiny dimension (four observation values, a two-action head): a plain loop, the same values as OpenBLAS.
        if alpha == 1 && (beta == 0 || beta == 1)
            && rl_thin_gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, lda, b, ldb, beta == 1 ? 1 : 0, c, ldc) != 0 {
            return
        }
        // A medium product whose B is stored row by row (a layer's input gradient g W, its weight gradient gᵀ x): the
        // panel kernel, without OpenBLAS's packing of both operands (see `panel`).
        if !transB && alpha == 1 && (beta == 0 || beta == 1) && m >= 16 && n >= 16 && panelDepths.contains(k) {
            panel(transA: transA, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, accumulate: beta == 1, c: c, ldc: ldc)
            return
        }
        // OpenBLAS 0.3.21 meets beta 0 with a pass that stores zeros one float at a time (`sgemm_beta`: about 6% of
        // DQN's samples); clearing C at memset speed and adding the product to it gives the same values.
        var beta = beta
        if beta == 0 {
            if ldc == n {
                c.update(repeating: 0, count: m * n)
            } else {
                for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
            }
            beta = 1
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The inner dimensions of the products `multiply` sends to the panel kernel (with B not transposed, alpha 1, beta
    /// 0 or 1, and at least 16 rows and columns). Up to 256 OpenBLAS's Cooper Lake kernels sum k in one block, so their
    /// values are the panel kernel's (checked for m, n from 16 to 400, except some products of under a million
    /// multiply-adds with n not a multiple of 16); from 384 on they add the sums of blocks of k, which round otherwise.
    @usableFromInline static let panelDepths = 16...256

    /// Row-major `C[m×n] = op(A)[m×k] · B[k×n] + start`, with B as stored (not transposed) and start C itself
    /// (`accumulate`), else `rowBias[i]` for row i, else 0; C is only written unless `accumulate`. Through the panel
    /// kernel `rl_panel_gemm`, which reads B in place and writes each tile of C once: on medium products (DQN's
    /// 64-row minibatches through a 256-wide layer) it skips the packing of both operands and the clearing of C that
    /// `multiply` pays for. Each element is the sum over k in order from +0, then added to its start.
    ///
    /// With `rows`, only C's rows `rows[0..<m]` are computed (from those rows of op(A) and `rowBias`); with `terms`,
    /// the sums run over the k indices `terms[0..<k]` (increasing) only — to leave out zero products, which gives the
    /// same values as long as their other factors are finite (see `rl_panel_gemm`).
    public static func panel(transA: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int, rowBias: UnsafePointer<Float>? = nil,
                             accumulate: Bool = false, c: UnsafeMutablePointer<Float>, ldc: Int,
                             rows: UnsafePointer<Int32>? = nil, terms: UnsafePointer<Int32>? = nil) {
        rl_panel_gemm(transA ? 1 : 0, m, n, k, a, lda, b, ldb, rowBias, accumulate ? 1 : 0, c, ldc, rows, terms)
    }

    /// A product with one row (acting on one observation) or one column (a value head) as a matrix-vector product:
    /// OpenBLAS's `sgemm` would pack the whole matrix first, several times the work of `sgemv` at these sizes.
    @usableFromInline
    static func vectorProduct(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let length = m == 1 ? n : m, stride = m == 1 ? 1 : ldc
        // With beta 0, C may hold anything (even NaN bit patterns); BLAS only promises not to read it.
        if beta == 0 { for i in 0..<length { c[i * stride] = 0 } }
        let order = CblasRowMajor
        if m == 1 {
            // c = op(B)ᵀ x, x the one row of op(A) (a column of A when transposed).
            let x = a, incx = Int32(transA ? lda : 1)
            if transB {
                cblas_sgemv(order, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb), x, incx, beta, c, 1)
            } else {
                cblas_sgemv(order, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb), x, incx, beta, c, 1)
            }
        } else {
            // c (a column, stride ldc) = op(A) x, x the one column of op(B) (a row of B when transposed).
            let x = b, incx = Int32(transB ? 1 : ldb)
            if transA {
                cblas_sgemv(order, CblasTrans, Int32(k), Int32(m), alpha, a, Int32(lda), x, incx, beta, c, Int32(ldc))
            } else {
                cblas_sgemv(order, CblasNoTrans, Int32(m), Int32(k), alpha, a, Int32(lda), x, incx, beta, c, Int32(ldc))
            }
        }
    }

    /// The reference triple loop with the same contract as `multiply` (accumulates in Double).
    public static func reference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    sum += Double(av) * Double(bv)
                }
                let prior = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                c[i * ldc + j] = Float(Double(alpha) * sum + prior)
            }
        }
    }

    /// RL-sized products are far too small to split across threads: OpenBLAS's thread pool only spins. Unless the
    /// user chose with `OPENBLAS_NUM_THREADS`, rlbench runs OpenBLAS single-threaded (set once, on first use).
    @usableFromInline
    static let threadsConfigured: Bool = {
        if getenv("OPENBLAS_NUM_THREADS") == nil { openblas_set_num_threads(1) }
        return true
    }()

    /// Sets the number of threads OpenBLAS may use (1 is best for the small products of RL nets).
    public static func setThreadCount(_ n: Int) { openblas_set_num_threads(Int32(n)) }
}
