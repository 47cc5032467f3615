import CKernels

/// An MLP with a narrow input and two wide hidden layers (DQN's 4-256-256-2) as one graph node whose work is shared
/// between the two cores by hidden units, so that each core computes with, and writes, only the weights it owns.
///
/// Core c owns the second hidden layer's units U_c (rows of W₂, entries of b₂, columns of W₃) and the first hidden
/// layer's units V_c (rows of W₁, entries of b₁): the halves that `OptimizerBase.withCoreSlices` gives it to clip and
/// update, give or take a few hundred first-layer values. Forward, each core computes the whole first hidden layer
/// itself (the narrow input makes it cheap), its own units of the second, and their share of the output,
/// `h₂[:, U_c] W₃[:, U_c]ᵀ`; the output is the two shares added, plus b₃. Backward, each core forms the gradients of
/// its own weights of W₃, W₂ and b₂ and its share of dL/dh₁ through its rows of W₂; the first layer's gradients then
/// come, on each core for its units V_c, from the two shares added. The weight gradients are written into the
/// storage they had at the last step (`Tensor.accumulateGrad(writing:)`), so each core writes memory it wrote before.
///
/// The second hidden layer is kept transposed (`[units, rows]`), so that its three wide products each read their
/// right operand as stored: h₂ᵀ = W₂[U] h₁ᵀ + b₂, dL/dW₂[U] = (dL/dz₂)ᵀ h₁ and the dL/dh₁ share (dL/dz₂) W₂[U] go to
/// the panel kernel (`Gemm.panel`), which neither packs its operands nor clears C first, as OpenBLAS's path does; each
/// core also computes h₁ᵀ for it, from the narrow input.
///
/// Units that no row of the batch activates (ReLU's dead units: in DQN on CartPole about 64% of the second layer's
/// and 12% of the first layer's in a minibatch) add only zero products, so they are left out: the forward product
/// sums over the first layer's active units, and the backward products run over the second layer's units with a
/// gradient (the panel kernel's lists of rows and terms), the others' rows of dL/dW₂ written as +0. An in-order sum
/// from +0 is unchanged by a zero product, so the values are the same as without the lists while the other factors
/// are finite (with an infinite or NaN weight, that product would be NaN).
///
/// Between the cores pass only the output shares and half of each dL/dh₁ share. `Tensor.chain`, which splits each
/// wide product on its own, moves the wide layer's weights and gradients from one core's cache to the other's at
/// every step, and each core's half of Adam then waits on memory the other core wrote, which this split avoids
/// (docs/design.md, "Where the time goes").
///
/// The values differ from the layer-by-layer ones only where sums are cut in two: the output (two shares, then b₃)
/// and dL/dh₁ (two shares). The cut depends only on the sizes, so the values are the same on one core or two.
extension Tensor {
    /// The layers of a chain that `splitChain` runs: Linear, activation, Linear (wide), activation, Linear, with
    /// biases, every parameter requiring grad, a first layer at least four times as wide as its input, and a wide
    /// layer of at least `ExecutionPolicy.parallelUpdateElements` weights (so that the optimizer's update is split in
    /// halves too: 256 × 256, not REINFORCE's 64 × 64) and `splitForwardProduct` multiply-adds on `rows` rows.
    struct SplitChainLayers {
        let first: Linear, firstActivation: Activation
        let middle: Linear, middleActivation: Activation
        let last: Linear

        init?(_ steps: [ChainStep], rows: Int, inputs: Int) {
            guard steps.count == 5, case let .linear(first) = steps[0], case let .activation(firstActivation) = steps[1],
                  case let .linear(middle) = steps[2], case let .activation(middleActivation) = steps[3],
                  case let .linear(last) = steps[4] else { return nil }
            let layers = [first, middle, last]
            guard layers.allSatisfy({ $0.weight.requiresGrad && $0.bias?.requiresGrad == true }),
                  first.inputSize == inputs, middle.inputSize == first.outputSize, last.inputSize == middle.outputSize,
                  first.inputSize * 4 <= first.outputSize, first.outputSize >= 32, middle.outputSize >= 32,
                  middle.inputSize * middle.outputSize >= ExecutionPolicy.parallelUpdateElements,
                  rows * middle.inputSize * middle.outputSize >= ExecutionPolicy.splitForwardProduct else { return nil }
            self.first = first; self.firstActivation = firstActivation
            self.middle = middle; self.middleActivation = middleActivation
            self.last = last
        }
    }

    /// What one core computed forward for its half, kept for backward.
    private final class SplitChainHalf {
        /// The second hidden layer's units and the first hidden layer's units this half owns.
        let units: Range<Int>, firstUnits: Range<Int>
        /// The whole first hidden layer `[rows, h₁]`, as this core computed it.
        var firstHidden: [Float] = []
        /// This half's units of the second hidden layer, transposed: `[|units|, rows]`.
        var hiddenT: [Float] = []
        /// This half's share of the output (forward), then of dL/dh₁ `[rows, h₁]` (backward).
        var share: [Float] = []
        init(units: Range<Int>, firstUnits: Range<Int>) { self.units = units; self.firstUnits = firstUnits }
    }

    static func splitChain(_ x: Tensor, _ layers: SplitChainLayers) -> Tensor {
        let rows = x.shape[0], inputs = layers.first.inputSize
        let width1 = layers.first.outputSize, width2 = layers.middle.outputSize, outputs = layers.last.outputSize
        let w1 = layers.first.weight, w2 = layers.middle.weight, w3 = layers.last.weight
        func cut(_ n: Int) -> Int { (n / 2 + 7) / 8 * 8 }
        let halves = [SplitChainHalf(units: 0 ..< cut(width2), firstUnits: 0 ..< cut(width1)),
                      SplitChainHalf(units: cut(width2) ..< width2, firstUnits: cut(width1) ..< width1)]
        let input = x.data

        func forward(_ half: SplitChainHalf) {
            let u = half.units
            // h₁ twice: as rows (for W₂'s gradient) and transposed (B of the wide product below, read in place),
            // each element computed the same way: x W₁ᵀ over the inputs in order, then + b₁.
            half.firstHidden = affine(input, rows: rows, weight: w1, bias: layers.first.bias)
            layers.firstActivation.applyInPlace(&half.firstHidden)
            var firstHiddenT = [Float](unsafeUninitializedCapacity: width1 * rows) { h, count in
                layers.first.bias!.data.withUnsafeBufferPointer { b in
                    for j in 0..<width1 { (h.baseAddress! + j * rows).initialize(repeating: b[j], count: rows) }
                }
                count = width1 * rows
            }
            input.withUnsafeBufferPointer { x in
                w1.data.withUnsafeBufferPointer { w in
                    firstHiddenT.withUnsafeMutableBufferPointer { h in
                        // h₁ᵀ = W₁ xᵀ + b₁
                        Gemm.multiply(transA: false, transB: true, m: width1, n: rows, k: inputs, alpha: 1,
                                      a: w.baseAddress!, lda: inputs, b: x.baseAddress!, ldb: inputs,
                                      beta: 1, c: h.baseAddress!, ldc: rows)
                    }
                }
            }
            layers.firstActivation.applyInPlace(&firstHiddenT)
            // The first-layer units active on some row: the others (ReLU's dead units) add only zero products.
            var activeFirst = [Int32](unsafeUninitializedCapacity: width1) { $1 = width1 }
            let activeFirstCount = activeFirst.withUnsafeMutableBufferPointer { active in
                firstHiddenT.withUnsafeBufferPointer { rl_nonzero_rows($0.baseAddress!, width1, rows, active.baseAddress!) }
            }
            var hiddenT = [Float](unsafeUninitializedCapacity: u.count * rows) { $1 = u.count * rows }  // written whole
            var share = [Float](unsafeUninitializedCapacity: rows * outputs) { $1 = rows * outputs }
            firstHiddenT.withUnsafeBufferPointer { h1 in
                w2.data.withUnsafeBufferPointer { w in
                    layers.middle.bias!.data.withUnsafeBufferPointer { b in
                        hiddenT.withUnsafeMutableBufferPointer { h in
                            activeFirst.withUnsafeBufferPointer { active in
                                // h₂[:, U]ᵀ = W₂[U] h₁ᵀ + b₂[U], over the active first-layer units
                                Gemm.panel(transA: false, m: u.count, n: rows, k: activeFirstCount,
                                           a: w.baseAddress! + u.lowerBound * width1, lda: width1, b: h1.baseAddress!,
                                           ldb: rows, rowBias: b.baseAddress! + u.lowerBound, c: h.baseAddress!, ldc: rows,
                                           terms: active.baseAddress!)
                            }
                        }
                    }
                }
            }
            layers.middleActivation.applyInPlace(&hiddenT)
            hiddenT.withUnsafeBufferPointer { h in
                w3.data.withUnsafeBufferPointer { w in
                    share.withUnsafeMutableBufferPointer { s in
                        // This half's share of the output: h₂[:, U] W₃[:, U]ᵀ
                        Gemm.multiply(transA: true, transB: true, m: rows, n: outputs, k: u.count, alpha: 1,
                                      a: h.baseAddress!, lda: rows, b: w.baseAddress! + u.lowerBound, ldb: width2,
                                      beta: 0, c: s.baseAddress!, ldc: outputs)
                    }
                }
            }
            half.hiddenT = hiddenT
            half.share = share
        }
        _ = ForkJoin.both({ forward(halves[0]) }, { forward(halves[1]) })

        // y = (share₀ + share₁) + b₃
        let b3 = layers.last.bias!.data
        let y = [Float](unsafeUninitializedCapacity: rows * outputs) { y, count in
            for r in 0..<rows {
                for o in 0..<outputs { y[r * outputs + o] = (halves[0].share[r * outputs + o] + halves[1].share[r * outputs + o]) + b3[o] }
            }
            count = rows * outputs
        }
        let parents = [x, layers.first.weight, layers.first.bias!, w2, layers.middle.bias!, w3, layers.last.bias!]
        return result(y, shape: [rows, outputs], inputs: parents) { out in
            let g = out.grad!
            var gb1 = [Float](unsafeUninitializedCapacity: width1) { $1 = width1 }
            var gb2 = [Float](unsafeUninitializedCapacity: width2) { $1 = width2 }
            // dL/dz₁ as a whole is needed only for the input's gradient.
            let firstCount = x.requiresGrad ? rows * width1 : 0
            var firstGradient = [Float](unsafeUninitializedCapacity: firstCount) { $1 = firstCount }
            /// Where the backward writes: W₁'s, W₂'s and W₃'s gradients (see `accumulateGrads`), the bias gradients
            /// of the hidden layers and, when the input needs its gradient, dL/dz₁.
            struct Targets {
                let w1, w2, w3, b1, b2: UnsafeMutablePointer<Float>
                let firstGradient: UnsafeMutablePointer<Float>?
            }
            /// This half's weight gradients of W₃, W₂ and b₂, and its share of dL/dh₁.
            func backwardThroughOwnUnits(_ half: SplitChainHalf, _ t: Targets) {
                let u = half.units
                var gradientT = [Float](unsafeUninitializedCapacity: u.count * rows) { $1 = u.count * rows }
                var w3GradientT = [Float](unsafeUninitializedCapacity: u.count * outputs) { $1 = u.count * outputs }
                var share = [Float](unsafeUninitializedCapacity: rows * width1) { $1 = rows * width1 }
                g.withUnsafeBufferPointer { g in
                    w3.data.withUnsafeBufferPointer { w in
                        half.hiddenT.withUnsafeBufferPointer { h in
                            gradientT.withUnsafeMutableBufferPointer { d in
                                // (dL/dh₂[:, U])ᵀ = W₃[:, U]ᵀ gᵀ
                                Gemm.multiply(transA: true, transB: true, m: u.count, n: rows, k: outputs, alpha: 1,
                                              a: w.baseAddress! + u.lowerBound, lda: width2, b: g.baseAddress!, ldb: outputs,
                                              beta: 0, c: d.baseAddress!, ldc: rows)
                            }
                            w3GradientT.withUnsafeMutableBufferPointer { d in
                                // (dL/dW₃[:, U])ᵀ = h₂[:, U]ᵀ g, written below into W₃'s gradient
                                Gemm.multiply(transA: false, transB: false, m: u.count, n: outputs, k: rows, alpha: 1,
                                              a: h.baseAddress!, lda: rows, b: g.baseAddress!, ldb: outputs,
                                              beta: 0, c: d.baseAddress!, ldc: outputs)
                            }
                        }
                    }
                }
                for (j, unit) in u.enumerated() {
                    for o in 0..<outputs { t.w3[o * width2 + unit] = w3GradientT[j * outputs + o] }
                }
                layers.middleActivation.gradientInPlace(&gradientT, output: half.hiddenT)
                // The units of U with a gradient on some row: the rest (with ReLU, the units no row activates, often
                // most of them) have zero rows in dL/dW₂ and add only zero products to dL/dh₁.
                var active = [Int32](unsafeUninitializedCapacity: u.count) { $1 = u.count }
                gradientT.withUnsafeBufferPointer { d in
                    half.firstHidden.withUnsafeBufferPointer { h1 in
                        w2.data.withUnsafeBufferPointer { w in
                            share.withUnsafeMutableBufferPointer { s in
                                active.withUnsafeMutableBufferPointer { active in
                                    let activeCount = rl_nonzero_rows(d.baseAddress!, u.count, rows, active.baseAddress!)
                                    // dL/dW₂[U] = (dL/dz₂[:, U])ᵀ h₁: the active units' rows, and zeros
                                    let w2Gradient = t.w2 + u.lowerBound * width1
                                    Gemm.panel(transA: false, m: activeCount, n: width1, k: rows, a: d.baseAddress!,
                                               lda: rows, b: h1.baseAddress!, ldb: width1, c: w2Gradient, ldc: width1,
                                               rows: active.baseAddress!)
                                    var next = 0
                                    for j in 0..<u.count {
                                        if next < activeCount && Int(active[next]) == j { next += 1; continue }
                                        (w2Gradient + j * width1).update(repeating: 0, count: width1)
                                    }
                                    // dL/db₂[U]: the sums of its rows
                                    rl_row_sums(d.baseAddress!, u.count, rows, t.b2 + u.lowerBound)
                                    // This half's share of dL/dh₁: dL/dz₂[:, U] W₂[U], over the active units
                                    Gemm.panel(transA: true, m: rows, n: width1, k: activeCount, a: d.baseAddress!,
                                               lda: rows, b: w.baseAddress! + u.lowerBound * width1, ldb: width1,
                                               c: s.baseAddress!, ldc: width1, terms: active.baseAddress!)
                                }
                            }
                        }
                    }
                }
                half.share = share
            }

            /// dL/dz₁ for this half's first-layer units V (the two shares of dL/dh₁ added, through the activation),
            /// written into `firstGradient`'s columns V, and the first layer's weight and bias gradients for V.
            func backwardThroughFirstLayer(_ half: SplitChainHalf, _ t: Targets) {
                let v = half.firstUnits
                var gradient = [Float](unsafeUninitializedCapacity: rows * v.count) { $1 = rows * v.count }
                var output = [Float](unsafeUninitializedCapacity: rows * v.count) { $1 = rows * v.count }
                halves[0].share.withUnsafeBufferPointer { s0 in
                    halves[1].share.withUnsafeBufferPointer { s1 in
                        half.firstHidden.withUnsafeBufferPointer { h1 in
                            gradient.withUnsafeMutableBufferPointer { d in
                                output.withUnsafeMutableBufferPointer { o in
                                    for r in 0..<rows {
                                        let from = r * width1 + v.lowerBound, to = r * v.count
                                        for j in 0..<v.count { d[to + j] = s0[from + j] + s1[from + j] }
                                        (o.baseAddress! + to).update(from: h1.baseAddress! + from, count: v.count)
                                    }
                                }
                            }
                        }
                    }
                }
                layers.firstActivation.gradientInPlace(&gradient, output: output)
                gradient.withUnsafeBufferPointer { d in
                    input.withUnsafeBufferPointer { x in
                        // dL/dW₁[V] = (dL/dz₁[:, V])ᵀ x and dL/db₁[V]
                        Gemm.multiply(transA: true, transB: false, m: v.count, n: inputs, k: rows, alpha: 1,
                                      a: d.baseAddress!, lda: v.count, b: x.baseAddress!, ldb: inputs,
                                      beta: 0, c: t.w1 + v.lowerBound * inputs, ldc: inputs)
                        rl_column_sums(d.baseAddress!, rows, v.count, t.b1 + v.lowerBound)
                    }
                    if let firstGradient = t.firstGradient {
                        for r in 0..<rows {
                            (firstGradient + r * width1 + v.lowerBound).update(from: d.baseAddress! + r * v.count, count: v.count)
                        }
                    }
                }
            }

            // Each core writes only its own rows or columns of the gradients, into the storage they had at the last
            // step (see `Tensor.accumulateGrad(writing:)`): memory this core wrote then.
            accumulateGrads([layers.first.weight, w2, w3]) { storage in
                gb1.withUnsafeMutableBufferPointer { gb1 in
                    gb2.withUnsafeMutableBufferPointer { gb2 in
                        firstGradient.withUnsafeMutableBufferPointer { first in
                            let t = Targets(w1: storage[0], w2: storage[1], w3: storage[2], b1: gb1.baseAddress!,
                                            b2: gb2.baseAddress!, firstGradient: x.requiresGrad ? first.baseAddress! : nil)
                            _ = ForkJoin.both({ backwardThroughOwnUnits(halves[0], t) }, { backwardThroughOwnUnits(halves[1], t) })
                            _ = ForkJoin.both({ backwardThroughFirstLayer(halves[0], t) }, { backwardThroughFirstLayer(halves[1], t) })
                        }
                    }
                }
            }
            let gb3 = [Float](unsafeUninitializedCapacity: outputs) { gb, count in
                g.withUnsafeBufferPointer { rl_column_sums($0.baseAddress!, rows, outputs, gb.baseAddress!) }
                count = outputs
            }
            layers.first.bias!.accumulateGrad(gb1)
            layers.middle.bias!.accumulateGrad(gb2)
            layers.last.bias!.accumulateGrad(gb3)
            if x.requiresGrad {
                // dL/dx = dL/dz₁ W₁
                var gx = [Float](unsafeUninitializedCapacity: rows * inputs) { $1 = rows * inputs }
                firstGradient.withUnsafeBufferPointer { d in
                    layers.first.weight.data.withUnsafeBufferPointer { w in
                        gx.withUnsafeMutableBufferPointer { gx in
                            Gemm.multiply(transA: false, transB: false, m: rows, n: inputs, k: width1, alpha: 1,
                                          a: d.baseAddress!, lda: width1, b: w.baseAddress!, ldb: inputs,
                                          beta: 0, c: gx.baseAddress!, ldc: inputs)
                        }
                    }
                }
                x.accumulateGrad(gx)
            }
        }
    }
}
