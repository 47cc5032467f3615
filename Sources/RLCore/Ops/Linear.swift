import CKernels

/// The fused affine map of a Linear layer: `y = x Wᵀ + b` (PyTorch's `F.linear`).
extension Tensor {
    /// `x [n, in]`, `weight [out, in]`, optional `bias [out]` → `[n, out]`. One GEMM forward, two backward.
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1],
                     "linear: input \(x.shape) does not fit weight \(weight.shape) ([out, in])")
        let n = x.shape[0], outputs = weight.shape[0]
        if let bias { precondition(bias.shape == [outputs], "linear: bias \(bias.shape) for \(outputs) outputs") }
        let y = affine(x.data, rows: n, weight: weight, bias: bias)
        let parents = bias.map { [x, weight, $0] } ?? [x, weight]
        return result(y, shape: [n, outputs], inputs: parents) { out in
            if let gx = linearBackward(out.grad!, input: x.data, rows: n, weight: weight, bias: bias,
                                       inputGradient: x.requiresGrad) {
                x.accumulateGrad(gx)
            }
        }
    }

    /// The backward of `linear` from the upstream gradient `g [n, out]` and the input values `x [n, in]`: accumulates
    /// dL/dW = gᵀx and dL/db = Σ_rows g into `weight` and `bias` (those that require grad) and returns dL/dx = gW when
    /// `inputGradient` is set (nil otherwise).
    static func linearBackward(_ g: [Float], input x: [Float], rows n: Int, weight: Tensor, bias: Tensor?,
                               inputGradient: Bool) -> [Float]? {
        let inputs = weight.shape[1], outputs = weight.shape[0]
        var gx: [Float]?
        func inputGradientProduct() {
            var values = [Float](unsafeUninitializedCapacity: n * inputs) { $1 = n * inputs }  // beta 0 overwrites it
            gemm(false, false, n, inputs, outputs, g, 0, outputs, weight.data, 0, inputs, &values, 0, inputs, beta: 0)
            gx = values
        }
        /// dW[units] = g[:, units]ᵀ x, rows `units` of the weight gradient.
        func weightGradientRows(_ units: Range<Int>, _ gw: UnsafeMutablePointer<Float>) {
            g.withUnsafeBufferPointer { g in
                x.withUnsafeBufferPointer { x in
                    Gemm.multiply(transA: true, transB: false, m: units.count, n: inputs, k: n, alpha: 1,
                                  a: g.baseAddress! + units.lowerBound, lda: outputs, b: x.baseAddress!, ldb: inputs,
                                  beta: 0, c: gw + units.lowerBound * inputs, ldc: inputs)
                }
            }
        }
        func weightGradient(_ parts: [Range<Int>]) {
            guard n > 0, inputs > 0, outputs > 0 else { weight.accumulateGrad([Float](repeating: 0, count: weight.count)); return }
            weight.accumulateGrad { gw in
                gw.withUnsafeMutableBufferPointer { gw in ExecutionPolicy.run(parts) { weightGradientRows($0, gw.baseAddress!) } }
            }
        }
        let large = n * inputs * outputs >= ExecutionPolicy.parallelBackwardProduct
        // The two products are independent: large ones run on two cores at once (the same values either way). The
        // weight gradient stays on the calling thread, which next reads it for the gradient norm and the first half of
        // the optimizer's update: computed on the helper, that read would pull it across from the other core's cache.
        // A large weight gradient alone (no input gradient beside it) is cut in two halves of its rows instead, each
        // row the same sum as uncut (`ExecutionPolicy.weightGradientParts`).
        if inputGradient && weight.requiresGrad && large {
            _ = ForkJoin.both({ weightGradient([0..<outputs]) }, inputGradientProduct)
        } else {
            if inputGradient { inputGradientProduct() }
            if weight.requiresGrad {
                weightGradient(ExecutionPolicy.weightGradientParts(rows: n, inputs: inputs, outputs: outputs))
            }
        }
        if let bias, bias.requiresGrad {
            // dL/db: the column sums of the upstream gradient, each column's rows added in order.
            let gb = [Float](unsafeUninitializedCapacity: outputs) { gb, c in
                if n == 0 {
                    gb.initialize(repeating: 0)
                } else {
                    g.withUnsafeBufferPointer { rl_column_sums($0.baseAddress!, n, outputs, gb.baseAddress!) }
                }
                c = outputs
            }
            bias.accumulateGrad(gb)
        }
        return gx
    }
}

extension Tensor {
    /// The values of `linear` for `rows` inputs laid out row after row (`[rows, in]`), without a graph: every row
    /// starts as the bias, then one GEMM adds x Wᵀ (beta 1), or writes it (no bias); large products are computed as
    /// two halves of columns (see `ExecutionPolicy.splitForwardProduct`).
    static func affine(_ x: [Float], rows n: Int, weight: Tensor, bias: Tensor?) -> [Float] {
        let inputs = weight.shape[1], outputs = weight.shape[0]
        var y = [Float](unsafeUninitializedCapacity: n * outputs) { y, c in
            let y = y.baseAddress!
            if let bias {
                bias.data.withUnsafeBufferPointer { b in
                    for i in 0..<n { (y + i * outputs).initialize(from: b.baseAddress!, count: outputs) }
                }
            } else {
                y.initialize(repeating: 0, count: n * outputs)
            }
            c = n * outputs
        }
        guard n > 0 else { return y }
        let beta: Float = bias == nil ? 0 : 1
        x.withUnsafeBufferPointer { xp in
            weight.data.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    let x = xp.baseAddress!, w = wp.baseAddress!, y = yp.baseAddress!
                    /// y[:, columns] += x W[columns]ᵀ
                    func product(_ columns: Range<Int>) {
                        Gemm.multiply(transA: false, transB: true, m: n, n: columns.count, k: inputs, alpha: 1,
                                      a: x, lda: inputs, b: w + columns.lowerBound * inputs, ldb: inputs,
                                      beta: beta, c: y + columns.lowerBound, ldc: outputs)
                    }
                    if n * inputs * outputs >= ExecutionPolicy.splitForwardProduct && outputs >= 32 {
                        let half = (outputs / 2 + 7) / 8 * 8
                        _ = ForkJoin.both({ product(0..<half) }, { product(half..<outputs) })
                    } else {
                        product(0..<outputs)
                    }
                }
            }
        }
        return y
    }
}
