import Foundation
import RLCore
import SeededRandom
import Testing

/// Central finite differences against autodiff for every differentiable op: f is re-evaluated in Float32 with
/// each input element nudged by ±h, the scalar L = Σ f(x)·w (w fixed random weights) is differenced in Double.
func gradientCheck(_ name: String, _ shapes: [[Int]], positive: Bool = false, h: Float = 1e-2, tol: Double = 1e-3,
                   seed: UInt64 = 1, sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) -> Tensor) {
    var rng = SeededGenerator(seed: seed)
    let inputs = shapes.map { shape -> Tensor in
        let t = Tensor.uniform(shape, low: positive ? 0.5 : -1.5, high: positive ? 2 : 1.5, using: &rng)
        t.requiresGrad = true
        return t
    }
    let probe = f(inputs.map { $0.detached() })
    let weights = Tensor.uniform(probe.shape, low: -1, high: 1, using: &rng)
    func loss(_ xs: [Tensor]) -> Double {
        Tensor.withoutGrad { (f(xs) * weights).sum().data.reduce(0.0) { $0 + Double($1) } }
    }
    (f(inputs) * weights).sum().backward()
    for (k, x) in inputs.enumerated() {
        let analytic = x.grad ?? [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            func perturbed(_ delta: Float) -> Double {
                let copies = inputs.map { $0.detached() }
                copies[k].data[i] += delta
                return loss(copies)
            }
            let numeric = (perturbed(h) - perturbed(-h)) / Double(2 * h)
            let err = abs(numeric - Double(analytic[i])) / max(1, abs(numeric))
            #expect(err < tol, "\(name): d/dx\(k)[\(i)] autodiff \(analytic[i]) vs numeric \(numeric)", sourceLocation: sourceLocation)
        }
    }
}

@Suite struct GradientCheckTests {
    @Test func arithmeticWithBroadcasting() {
        gradientCheck("add", [[3, 1, 4], [2, 4]]) { $0[0] + $0[1] }
        gradientCheck("sub", [[2, 3], [3]]) { $0[0] - $0[1] }
        gradientCheck("mul", [[3, 1, 4], [2, 4]]) { $0[0] * $0[1] }
        gradientCheck("div", [[2, 3], [1, 3]], positive: true) { $0[0] / $0[1] }
        gradientCheck("scalar ops", [[2, 3]]) { 2 - (3 * $0[0] + 1) / 4 }
    }

    @Test func unaryMath() {
        gradientCheck("exp", [[2, 3]]) { $0[0].exp() }
        gradientCheck("log", [[2, 3]], positive: true) { $0[0].log() }
        gradientCheck("sqrt", [[2, 3]], positive: true) { $0[0].sqrt() }
        gradientCheck("pow scalar", [[2, 3]], positive: true) { $0[0].pow(2.5) }
        gradientCheck("pow tensor", [[2, 3], [3]], positive: true) { $0[0].pow($0[1]) }
        gradientCheck("abs", [[2, 3]]) { $0[0].abs() }
        gradientCheck("square", [[2, 3]]) { $0[0].square() }
        gradientCheck("clamp", [[3, 4]]) { $0[0].clamped(min: -0.5, max: 0.7) }
        gradientCheck("minimum", [[3, 4], [4]]) { Tensor.minimum($0[0], $0[1]) }
        gradientCheck("maximum", [[3, 4], [3, 1]]) { Tensor.maximum($0[0], $0[1]) }
    }

    @Test func activations() {
        gradientCheck("relu", [[3, 4]]) { $0[0].relu() }
        gradientCheck("leaky relu", [[3, 4]]) { $0[0].leakyRelu(0.2) }
        gradientCheck("elu", [[3, 4]]) { $0[0].elu(1.3) }
        gradientCheck("sigmoid", [[3, 4]]) { $0[0].sigmoid() }
        gradientCheck("tanh", [[3, 4]]) { $0[0].tanh() }
        gradientCheck("softplus", [[3, 4]]) { $0[0].softplus(beta: 2, threshold: 3) }
        gradientCheck("log sigmoid", [[3, 4]]) { $0[0].logSigmoid() }
        gradientCheck("softmax", [[3, 4]]) { $0[0].softmax(axis: 1) }
        gradientCheck("softmax axis 0", [[3, 4]]) { $0[0].softmax(axis: 0) }
        gradientCheck("log softmax", [[3, 4]]) { $0[0].logSoftmax(axis: -1) }
    }

    @Test func reductionsAndShapes() {
        gradientCheck("sum", [[2, 3, 4]]) { $0[0].sum() }
        gradientCheck("sum axis", [[2, 3, 4]]) { $0[0].sum(axis: 1) }
        gradientCheck("mean axis keepdims", [[2, 3, 4]]) { $0[0].mean(axis: -1, keepDims: true) }
        gradientCheck("max axis", [[2, 3, 4]]) { $0[0].max(axis: 1).values }
        gradientCheck("logsumexp", [[2, 3, 4]]) { $0[0].logSumExp(axis: 2) }
        gradientCheck("reshape", [[2, 6]]) { $0[0].reshaped([3, -1]) }
        gradientCheck("permute", [[2, 3, 4]]) { $0[0].permuted([2, 0, 1]) }
        gradientCheck("transpose", [[2, 3]]) { $0[0].transposed() }
        gradientCheck("slice", [[2, 5, 3]]) { $0[0].sliced(axis: 1, 1..<4) }
        gradientCheck("concat", [[2, 3], [2, 2]]) { Tensor.concat([$0[0], $0[1]], axis: 1) }
        gradientCheck("stack", [[2, 3], [2, 3]]) { Tensor.stack([$0[0], $0[1]], axis: 1) }
        gradientCheck("gather repeated", [[3, 4]]) { $0[0].gather(axis: 1, indices: [1, 1, 0, 3, 3, 3], indexShape: [3, 2]) }
        gradientCheck("pick", [[3, 4]]) { $0[0].pick(columns: [2, 0, 3]) }
        gradientCheck("where", [[3, 4], [3, 4]]) {
            Tensor.where(Tensor((0..<12).map { Float($0 % 3 == 0 ? 1 : 0) }, shape: [3, 4]), $0[0], $0[1])
        }
    }

    @Test func products() {
        gradientCheck("matmul", [[3, 4], [4, 2]]) { $0[0].matmul($0[1]) }
        gradientCheck("batched matmul", [[2, 3, 4], [2, 4, 2]]) { $0[0].matmul($0[1]) }
        gradientCheck("broadcast matmul", [[2, 3, 4], [4, 2]]) { $0[0].matmul($0[1]) }
        gradientCheck("linear", [[5, 4], [3, 4], [3]]) { Tensor.linear($0[0], weight: $0[1], bias: $0[2]) }
    }

    @Test func losses() {
        gradientCheck("mse", [[4, 3], [4, 3]]) { mseLoss($0[0], $0[1]) }
        gradientCheck("huber", [[4, 3], [4, 3]]) { huberLoss($0[0], $0[1], delta: 0.7) }
        gradientCheck("smooth l1", [[4, 3], [4, 3]]) { smoothL1Loss($0[0], $0[1], beta: 0.5, reduction: .sum) }
        gradientCheck("cross entropy", [[4, 5]]) { crossEntropyLoss($0[0], labels: [0, 4, 2, 2]) }
        gradientCheck("bce with logits", [[4, 3], [4, 3]]) { binaryCrossEntropyWithLogits($0[0], $0[1]) }
        gradientCheck("hinge", [[4, 5]], h: 1e-3) { multiMarginLoss($0[0], labels: [1, 0, 4, 2]) }
        gradientCheck("focal", [[4, 3]]) { sigmoidFocalLoss($0[0], Tensor((0..<12).map { Float($0 % 2) }, shape: [4, 3])) }
        gradientCheck("gaussian kl", [[4, 3], [4, 3]]) { gaussianKLLoss(mean: $0[0], logVariance: $0[1]) }
        gradientCheck("l1 + l2 penalties", [[3, 3]]) { l1Penalty([$0[0]], lambda: 0.1) + l2Penalty([$0[0]], lambda: 0.2) }
        let oldLogProb = Tensor([0.3, -0.2, 0.1, 0.0, -1.0, 0.5]), advantages = Tensor([1.5, -0.7, 0.4, -2.0, 0.9, -0.3])
        gradientCheck("clipped surrogate", [[6]], h: 1e-3) {
            clippedSurrogateLoss(logProb: $0[0], oldLogProb: oldLogProb, advantages: advantages, clipRange: 0.2)
        }
    }

    /// PPO's fused loss gives the value and gradient of the composed ops exactly (up to the sign of a zero gradient),
    /// on both sides of the clip range, inside it (where `minimum` ties), on its bounds, and for positive, negative and
    /// zero advantages.
    @Test func clippedSurrogateMatchesComposedOps() {
        let clip: Float = 0.2
        let deltas: [Float] = [0, 0.05, -0.05, 0.3, -0.3, Foundation.log(1.2), Foundation.log(0.8), 1.5, -1.5, 0.1, -0.25, 0.7]
        let oldLogProb = Tensor(deltas.indices.map { Float($0) * -0.37 })
        let advantages = Tensor(deltas.indices.map { [1.3, -0.8, 0, 2.1][$0 % 4] })
        func logProbs() -> Tensor {
            let t = Tensor(zip(deltas, oldLogProb.data).map { $0 + $1 }, shape: [deltas.count])
            t.requiresGrad = true
            return t
        }
        let fusedInput = logProbs(), composedInput = logProbs()
        let fused = clippedSurrogateLoss(logProb: fusedInput, oldLogProb: oldLogProb, advantages: advantages, clipRange: clip)
        let ratio = (composedInput - oldLogProb).exp()
        let composed = -Tensor.minimum(advantages * ratio, advantages * ratio.clamped(min: 1 - clip, max: 1 + clip)).mean()
        fused.backward()
        composed.backward()
        #expect(fused.item.bitPattern == composed.item.bitPattern, "loss \(fused.item) vs \(composed.item)")
        #expect(fusedInput.grad! == composedInput.grad!, "gradient \(fusedInput.grad!) vs \(composedInput.grad!)")
    }

    @Test func distributions() {
        gradientCheck("categorical log prob", [[3, 4]]) { Categorical(logits: $0[0]).logProb([0, 3, 1]) }
        gradientCheck("categorical entropy", [[3, 4]]) { Categorical(logits: $0[0]).entropy() }
        let values = Tensor(rows: [[0.1, -0.3], [1.2, 0.4], [-0.7, 0.0]])
        gradientCheck("gaussian log prob", [[3, 2], [2]]) { DiagonalGaussian(mean: $0[0], logStd: $0[1]).logProb(values) }
        gradientCheck("gaussian entropy", [[3, 2], [2]]) { DiagonalGaussian(mean: $0[0], logStd: $0[1]).entropy() }
    }

    /// In a graph an MLP is one chain node (`Sequential` folds its Linear and ReLU/tanh layers): the same output and
    /// the same gradients, bit for bit, as its layers applied one by one — with and without the input's gradient, and
    /// with a frozen first layer.
    @Test func mlpChainMatchesLayerByLayer() {
        for activation in [Activation.tanh, .relu] {
            for (inputGradient, frozenFirstLayer) in [(true, false), (true, true), (false, false), (false, true)] {
                var rng = SeededGenerator(seed: 7)
                let net = MLP(sizes: [5, 16, 9, 3], activation: activation, using: &rng)
                #expect(net.isChained)
                if frozenFirstLayer { for (_, p) in net.layers[0].namedParameters() { p.requiresGrad = false } }
                let input = Tensor.uniform([11, 5], low: -2, high: 2, using: &rng)
                let weights = Tensor.uniform([11, 3], low: -1, high: 1, using: &rng)
                func outputAndGradients(_ forward: (Tensor) -> Tensor) -> [[Float]] {
                    let x = input.detached()
                    x.requiresGrad = inputGradient
                    for (_, p) in net.namedParameters() { p.zeroGrad() }
                    let y = forward(x)
                    (y * weights).sum().backward()
                    return [y.data, x.grad ?? []] + net.namedParameters().map { $0.tensor.grad ?? [] }
                }
                let chained = outputAndGradients { net($0) }
                let layered = outputAndGradients { x in net.layers.reduce(x) { $1($0) } }
                let context = "\(activation), input gradient: \(inputGradient), first layer frozen: \(frozenFirstLayer)"
                #expect(chained == layered, "\(context)")
                #expect(chained[1].isEmpty == !inputGradient && chained[2].isEmpty == frozenFirstLayer && !chained[4].isEmpty,
                        "\(context)")
            }
        }
        var rng = SeededGenerator(seed: 1)
        #expect(!MLP(sizes: [3, 4, 2], activation: .sigmoid, using: &rng).isChained, "sigmoid needs its input: layer by layer")
    }

    /// Outside a graph an MLP on many rows runs transposed through the panel kernel (`Tensor.inferenceChain`),
    /// skipping the units no row activates: every value is its layer's sum over the inputs in order, in fused
    /// multiply-adds from +0, plus the bias, bit for bit — with dead ReLU units, with tanh, without biases — and within
    /// rounding of the layers applied one by one.
    @Test func mlpOnManyRowsOutsideAGraphSumsInOrder() {
        for (activation, bias, dead) in [(Activation.relu, true, true), (.relu, false, false), (.tanh, true, false)] {
            var rng = SeededGenerator(seed: 9)
            let linears = [Linear(5, 40, bias: bias, using: &rng), Linear(40, 33, bias: bias, using: &rng),
                           Linear(33, 3, bias: bias, using: &rng)]
            let net = Sequential([linears[0], ActivationLayer(activation), linears[1], ActivationLayer(activation), linears[2]])
            if dead {
                for j in stride(from: 0, to: 40, by: 3) { linears[0].bias!.data[j] = -100 }
                for j in stride(from: 1, to: 33, by: 2) { linears[1].bias!.data[j] = -100 }
            }
            let rows = ExecutionPolicy.transposedInferenceRows + 37
            let input = Tensor.uniform([rows, 5], low: -2, high: 2, using: &rng)
            var expected = input.data, width = 5
            for (l, layer) in linears.enumerated() {
                let w = layer.weight.data, outputs = layer.outputSize
                var next = [Float](repeating: 0, count: rows * outputs)
                for r in 0..<rows {
                    for o in 0..<outputs {
                        var sum: Float = 0
                        for i in 0..<width { sum.addProduct(expected[r * width + i], w[o * width + i]) }
                        next[r * outputs + o] = (layer.bias?.data[o] ?? 0) + sum
                    }
                }
                expected = l + 1 < linears.count ? activation.apply(Tensor(next, shape: [next.count])).data : next
                width = outputs
            }
            let output = Tensor.withoutGrad { net(input) }
            #expect(output.shape == [rows, 3])
            #expect(output.data.map(\.bitPattern) == expected.map(\.bitPattern), "\(activation), bias \(bias)")
            let layered = Tensor.withoutGrad { net.layers.reduce(input) { $1($0) } }
            #expect(zip(output.data, layered.data).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
        }
    }

    @Test func valueUsedTwiceAccumulates() {
        let x = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        (x * x + x).sum().backward()
        #expect(x.grad == [3, 5, 7])
        // A second backward adds to the existing gradient, as in PyTorch.
        x.sum().backward()
        #expect(x.grad == [4, 6, 8])
    }

    @Test func graphIsFreedAfterBackward() {
        let x = Tensor([1, 2], shape: [2], requiresGrad: true)
        weak var intermediate: Tensor?
        let loss: Tensor = {
            let h = x.tanh()
            intermediate = h
            return (h * 2).sum()
        }()
        #expect(intermediate != nil)
        loss.backward()
        #expect(intermediate == nil, "the graph must be released after backward")
        #expect(x.grad != nil)
    }

    @Test func withoutGradRecordsNothing() {
        let w = Tensor([1, 2], shape: [2], requiresGrad: true)
        let y = Tensor.withoutGrad { (w * 3).sum() }
        #expect(!y.requiresGrad)
        #expect(y.isLeaf)
        let frozen = Tensor([1, 2], shape: [2], requiresGrad: false)
        (frozen * w).sum().backward()
        #expect(frozen.grad == nil)
        #expect(w.grad == [1, 2])
    }
}

@Suite struct LearningTests {
    /// A 2-8-1 MLP learns XOR with Adam.
    @Test func learnsXOR() {
        var rng = SeededGenerator(seed: 3)
        let net = MLP(sizes: [2, 8, 1], activation: .tanh, using: &rng)
        let x = Tensor(rows: [[0, 0], [0, 1], [1, 0], [1, 1]])
        let y = Tensor(rows: [[0], [1], [1], [0]])
        let opt = Adam(net.namedParameters(), learningRate: 0.05)
        for _ in 0..<500 {
            net.zeroGrad()
            binaryCrossEntropyWithLogits(net(x), y).backward()
            opt.step()
        }
        let predictions = Tensor.withoutGrad { net(x).sigmoid().data }
        #expect(predictions.map { $0 > 0.5 ? 1 : 0 } == [0, 1, 1, 0], "XOR predictions \(predictions)")
        #expect(zip(predictions, [0, 1, 1, 0] as [Float]).allSatisfy { abs($0 - $1) < 0.1 })
    }

    @Test func mlpNamesParametersLikeTorch() {
        var rng = SeededGenerator(seed: 0)
        let net = MLP(sizes: [4, 64, 64, 2], activation: .tanh, using: &rng)
        #expect(net.namedParameters().map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"])
        #expect(net.namedParameters()[0].tensor.shape == [64, 4])
        let bound = 1 / Float(4).squareRoot()
        #expect(net.namedParameters()[0].tensor.data.allSatisfy { abs($0) <= bound })
    }

    @Test func initializers() {
        var rng = SeededGenerator(seed: 5)
        let w = Tensor.zeros([6, 10])
        Initializer.orthogonal(w, gain: 2, using: &rng)
        // Rows are orthogonal with norm = gain: W Wᵀ = 4·I.
        let wwt = w.matmul(w.transposed())
        for i in 0..<6 { for j in 0..<6 { #expect(abs(wwt.data[i * 6 + j] - (i == j ? 4 : 0)) < 1e-4) } }
        let tall = Tensor.zeros([10, 3])
        Initializer.orthogonal(tall, using: &rng)
        let wtw = tall.transposed().matmul(tall)
        for i in 0..<3 { for j in 0..<3 { #expect(abs(wtw.data[i * 3 + j] - (i == j ? 1 : 0)) < 1e-4) } }
        let big = Tensor.zeros([200, 300])
        Initializer.xavierUniform(big, using: &rng)
        let bound = (6.0 / 500).squareRoot()
        #expect(big.data.allSatisfy { Double(abs($0)) <= bound })
        Initializer.kaimingNormal(big, using: &rng)
        let variance = big.data.reduce(0) { $0 + Double($1 * $1) } / Double(big.count)
        #expect(abs(variance - 2.0 / 300) < 0.1 * 2.0 / 300)
    }

    @Test func gemmMatchesReference() {
        var rng = SeededGenerator(seed: 8)
        // One row or one column goes through sgemv, the rest through sgemm.
        for (m, n, k) in [(1, 1, 1), (7, 5, 3), (64, 64, 64), (33, 129, 17), (1, 37, 19), (23, 1, 11), (1, 1, 9)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = Tensor.uniform([m * k], using: &rng).data, b = Tensor.uniform([k * n], using: &rng).data
                var c1 = [Float](repeating: 0.5, count: m * n), c2 = c1
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                    Gemm.multiply(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1.5, a: ap.baseAddress!, lda: ta ? m : k,
                                  b: bp.baseAddress!, ldb: tb ? k : n, beta: 0.5, c: &c1, ldc: n)
                    Gemm.reference(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1.5, a: ap.baseAddress!, lda: ta ? m : k,
                                   b: bp.baseAddress!, ldb: tb ? k : n, beta: 0.5, c: &c2, ldc: n)
                } }
                for i in 0..<(m * n) { #expect(abs(c1[i] - c2[i]) < 1e-3 * (1 + abs(c2[i]))) }
            }
        }
    }

    /// Medium products with B as stored and alpha 1 (a layer's input and weight gradients) go to the panel kernel:
    /// each element the sum over k in order, in fused multiply-adds from +0, then added to C (beta 1) or written
    /// (beta 0, over NaN), bit for bit; strided operands, C's padding untouched.
    @Test func gemmSendsMediumProductsToThePanelKernel() {
        var rng = SeededGenerator(seed: 10)
        for (m, n, k) in [(64, 64, 64), (256, 64, 40), (33, 129, 17), (16, 16, 256)] {
            for transA in [false, true] {
                for beta: Float in [0, 1] {
                    let lda = (transA ? m : k) + 3, ldb = n + 2, ldc = n + 4
                    let a = Tensor.uniform([(transA ? k : m) * lda], using: &rng).data
                    let b = Tensor.uniform([k * ldb], using: &rng).data
                    let start = (0..<(m * ldc)).map { j in beta == 1 || j % ldc >= n ? Float.random(in: -1...1, using: &rng) : .nan }
                    var c = start, expected = start
                    for i in 0..<m {
                        for j in 0..<n {
                            var sum: Float = 0
                            for p in 0..<k { sum.addProduct(transA ? a[p * lda + i] : a[i * lda + p], b[p * ldb + j]) }
                            expected[i * ldc + j] = (beta == 1 ? start[i * ldc + j] : 0) + sum
                        }
                    }
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                        Gemm.multiply(transA: transA, transB: false, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress!, lda: lda,
                                      b: bp.baseAddress!, ldb: ldb, beta: beta, c: &c, ldc: ldc)
                    } }
                    #expect(c.map(\.bitPattern) == expected.map(\.bitPattern), "\(m)x\(n)x\(k) transA \(transA) beta \(beta)")
                }
            }
        }
    }

    /// Padded row strides (a block of a larger matrix) and beta 0 over a C full of NaN, which must be overwritten.
    @Test func gemmHonoursStridesAndBetaZero() {
        var rng = SeededGenerator(seed: 9)
        for (m, n, k) in [(1, 6, 5), (6, 1, 5), (4, 6, 5)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 4
                let a = Tensor.uniform([(ta ? k : m) * lda], using: &rng).data
                let b = Tensor.uniform([(tb ? n : k) * ldb], using: &rng).data
                var c1 = [Float](repeating: .nan, count: m * ldc), c2 = c1
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                    Gemm.multiply(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress!, lda: lda,
                                  b: bp.baseAddress!, ldb: ldb, beta: 0, c: &c1, ldc: ldc)
                    for i in 0..<m { for j in 0..<n { c2[i * ldc + j] = 0 } }
                    Gemm.reference(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress!, lda: lda,
                                   b: bp.baseAddress!, ldb: ldb, beta: 0, c: &c2, ldc: ldc)
                } }
                for i in 0..<m {
                    for j in 0..<n { #expect(abs(c1[i * ldc + j] - c2[i * ldc + j]) < 1e-4, "\(m)x\(n)x\(k) \(ta) \(tb) at \(i),\(j)") }
                    // The padding beyond each row of C is left alone.
                    for j in n..<ldc { #expect(c1[i * ldc + j].isNaN) }
                }
            }
        }
    }
}
