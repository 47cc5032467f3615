import CBLAS
import Foundation

/// The one seam through which every matrix product in rlbench goes.
///
/// `C = alpha * op(A) * op(B) + beta * C`, row-major, with `op` an optional transpose — the
/// CBLAS `sgemm` contract. `Gemm.multiply` sends the product to OpenBLAS; `Gemm.reference` is
/// the plain triple loop kept beside it for tests.
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
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
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
