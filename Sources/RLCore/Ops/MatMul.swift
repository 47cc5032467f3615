/// Matrix products through the `Gemm` seam: 2-D, batched, and batched-by-2-D (broadcast).

extension Tensor {
    /// The matrix product `self @ other` (PyTorch's `matmul` for ranks 2 and 3):
    /// `[m,k] @ [k,n]`, `[b,m,k] @ [b,k,n]`, and `[b,m,k] @ [k,n]` (the right matrix broadcast
    /// over the batch; its gradient sums over it).
    public func matmul(_ other: Tensor) -> Tensor {
        let a = self, b = other
        precondition((a.rank == 2 || a.rank == 3) && (b.rank == 2 || b.rank == 3) && !(a.rank == 2 && b.rank == 3),
                     "matmul supports [m,k]@[k,n], [b,m,k]@[b,k,n] and [b,m,k]@[k,n]; got \(a.shape) @ \(b.shape)")
        let batch = a.rank == 3 ? a.shape[0] : 1
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1]
        let kb = b.shape[b.rank - 2], n = b.shape[b.rank - 1]
        precondition(k == kb, "matmul: inner dimensions differ: \(a.shape) @ \(b.shape)")
        if b.rank == 3 { precondition(b.shape[0] == batch, "matmul: batch sizes differ: \(a.shape) @ \(b.shape)") }
        let bStride = b.rank == 3 ? k * n : 0
        let outShape = a.rank == 3 ? [batch, m, n] : [m, n]

        var out = [Float](repeating: 0, count: batch * m * n)
        if b.rank == 2 {
            // Fold the batch into the rows: one large product instead of `batch` small ones.
            Tensor.gemm(false, false, batch * m, n, k, a.data, 0, k, b.data, 0, n, &out, 0, n, beta: 0)
        } else {
            for i in 0..<batch {
                Tensor.gemm(false, false, m, n, k, a.data, i * m * k, k, b.data, i * bStride, n, &out, i * m * n, n, beta: 0)
            }
        }
        return Tensor.result(out, shape: outShape, inputs: [a, b]) { result in
            let g = result.grad!
            if a.requiresGrad {
                // dA = G @ Bᵀ
                var ga = [Float](repeating: 0, count: a.count)
                if b.rank == 2 {
                    Tensor.gemm(false, true, batch * m, k, n, g, 0, n, b.data, 0, n, &ga, 0, k, beta: 0)
                } else {
                    for i in 0..<batch {
                        Tensor.gemm(false, true, m, k, n, g, i * m * n, n, b.data, i * bStride, n, &ga, i * m * k, k, beta: 0)
                    }
                }
                a.accumulateGrad(ga)
            }
            if b.requiresGrad {
                // dB = Aᵀ @ G (summed over the batch when B was broadcast)
                var gb = [Float](repeating: 0, count: b.count)
                if b.rank == 2 {
                    Tensor.gemm(true, false, k, n, batch * m, a.data, 0, k, g, 0, n, &gb, 0, n, beta: 0)
                } else {
                    for i in 0..<batch {
                        Tensor.gemm(true, false, k, n, m, a.data, i * m * k, k, g, i * m * n, n, &gb, i * k * n, n, beta: 0)
                    }
                }
                b.accumulateGrad(gb)
            }
        }
    }

    /// `C[offC...] = op(A[offA...]) @ op(B[offB...]) + beta * C` on array storage.
    @inline(__always)
    static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                     _ a: [Float], _ offA: Int, _ lda: Int, _ b: [Float], _ offB: Int, _ ldb: Int,
                     _ c: inout [Float], _ offC: Int, _ ldc: Int, beta: Float) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            // An empty inner dimension: the product is zero.
            for i in 0..<m { for j in 0..<n { c[offC + i * ldc + j] = beta == 0 ? 0 : beta * c[offC + i * ldc + j] } }
            return
        }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    Gemm.multiply(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1,
                                  a: ap.baseAddress! + offA, lda: lda, b: bp.baseAddress! + offB, ldb: ldb,
                                  beta: beta, c: cp.baseAddress! + offC, ldc: ldc)
                }
            }
        }
    }
}
