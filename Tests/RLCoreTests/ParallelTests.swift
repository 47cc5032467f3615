import Foundation
import RLCore
import SeededRandom
import Testing

/// The work that runs on two cores (optimizer updates of large models, the two backward products of a large
/// `linear`) computes exactly what the plain one-element-at-a-time formulas give.
@Suite struct ParallelTests {
    /// Parameters of DQN's CartPole network shape (67k elements, above `parallelUpdateElements`) with gradients.
    func largeParameters(seed: UInt64) -> [(name: String, tensor: Tensor)] {
        var rng = SeededGenerator(seed: seed)
        return [[256, 4], [256], [256, 256], [256], [2, 256], [2]].enumerated().map { i, shape in
            let p = Tensor.uniform(shape, low: -1, high: 1, using: &rng)
            p.requiresGrad = true
            return (name: "p\(i)", tensor: p)
        }
    }

    func setGradients(_ parameters: [(name: String, tensor: Tensor)], seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        for (_, p) in parameters { p.grad = Tensor.uniform(p.shape, low: -1, high: 1, using: &rng).data }
    }

    /// The precondition of the tests below: their model is large enough that its update is split across the cores.
    @Test func theModelIsAboveTheParallelUpdateThreshold() {
        let total = largeParameters(seed: 1).reduce(0) { $0 + $1.tensor.count }
        #expect(total >= ExecutionPolicy.parallelUpdateElements)
    }

    @Test func adamMatchesTheElementwiseFormula() {
        let parameters = largeParameters(seed: 1)
        let reference = parameters.map { $0.tensor.data }
        var m = reference.map { [Float](repeating: 0, count: $0.count) }, v = m, w = reference
        let adam = Adam(parameters, learningRate: 1e-3)
        let (b1, b2, eps, lr): (Float, Float, Float, Float) = (0.9, 0.999, 1e-8, 1e-3)
        for step in 1...3 {
            setGradients(parameters, seed: UInt64(10 + step))
            let bc1 = 1 - Foundation.pow(b1, Float(step)), bc2Sqrt = (1 - Foundation.pow(b2, Float(step))).squareRoot()
            let stepSize = lr / bc1, inverse = 1 / bc2Sqrt
            for (i, (_, p)) in parameters.enumerated() {
                for k in 0..<p.count {
                    let d = p.grad![k] + 0 * w[i][k]
                    m[i][k] = b1 * m[i][k] + (1 - b1) * d
                    v[i][k] = b2 * v[i][k] + (1 - b2) * d * d
                    w[i][k] -= stepSize * m[i][k] / (v[i][k].squareRoot() * inverse + eps)
                }
            }
            adam.step()
        }
        for (i, (name, p)) in parameters.enumerated() {
            #expect(p.data == w[i], "\(name) differs from the element-wise Adam update")
        }
    }

    @Test func rmspropMatchesTheElementwiseFormula() {
        let parameters = largeParameters(seed: 2)
        var w = parameters.map { $0.tensor.data }
        var square = w.map { [Float](repeating: 0, count: $0.count) }
        let rmsprop = RMSprop(parameters, learningRate: 7e-4, alpha: 0.99, eps: 1e-5)
        for step in 1...3 {
            setGradients(parameters, seed: UInt64(20 + step))
            for (i, (_, p)) in parameters.enumerated() {
                for k in 0..<p.count {
                    let d = p.grad![k] + 0 * w[i][k]
                    square[i][k] = 0.99 * square[i][k] + (1 - 0.99) * d * d
                    w[i][k] -= 7e-4 * d / (square[i][k].squareRoot() + 1e-5)
                }
            }
            rmsprop.step()
        }
        for (i, (name, p)) in parameters.enumerated() {
            #expect(p.data == w[i], "\(name) differs from the element-wise RMSprop update")
        }
    }

    /// `clipGradNormAndStep` gives what `clipGradNorm` then `step()` give: split by size (a large model) or at
    /// `helperPartition` (a small one, as an actor-critic splits it), with a norm above `maxNorm` and one below. Split
    /// by size, the Double sum of the cut parameter's squares is taken in two parts, which may round its last bits
    /// differently; the Float norm, and so every value, comes out the same here.
    @Test func clipAndStepOnTwoCoresMatchesClipThenStep() {
        for (partition, seed) in [(nil, UInt64(3)), (3, 4)] as [(Int?, UInt64)] {
            for maxNorm: Float in [0.5, 1e6] {
                let (split, serial) = (largeParameters(seed: seed), largeParameters(seed: seed))
                let adam = Adam(split, learningRate: 1e-3), reference = Adam(serial, learningRate: 1e-3)
                adam.helperPartition = partition
                for step in 1...3 {
                    setGradients(split, seed: UInt64(30 + step))
                    setGradients(serial, seed: UInt64(30 + step))
                    let norm = adam.clipGradNormAndStep(maxNorm: maxNorm)
                    #expect(norm == clipGradNorm(reference.tensors, maxNorm: maxNorm))
                    reference.step()
                    #expect(norm > 1, "the gradients are large enough for 0.5 to clip them")
                }
                for ((name, p), (_, q)) in zip(split, serial) {
                    #expect(p.data == q.data && p.grad == q.grad, "\(name), partition \(String(describing: partition)), max norm \(maxNorm)")
                }
            }
        }
    }

    /// A 64 × 256 × 256 layer (above `parallelBackwardProduct`): both gradients against the reference product.
    @Test func largeLinearBackwardMatchesTheReferenceProducts() {
        var rng = SeededGenerator(seed: 3)
        let (n, inputs, outputs) = (64, 256, 256)
        #expect(n * inputs * outputs >= ExecutionPolicy.parallelBackwardProduct)
        let x = Tensor.uniform([n, inputs], low: -1, high: 1, using: &rng)
        let w = Tensor.uniform([outputs, inputs], low: -1, high: 1, using: &rng)
        x.requiresGrad = true
        w.requiresGrad = true
        let upstream = Tensor.uniform([n, outputs], low: -1, high: 1, using: &rng).data
        Tensor.linear(x, weight: w, bias: nil).backward(gradient: upstream)

        var gx = [Float](repeating: 0, count: n * inputs), gw = [Float](repeating: 0, count: outputs * inputs)
        upstream.withUnsafeBufferPointer { g in
            w.data.withUnsafeBufferPointer { wp in
                gx.withUnsafeMutableBufferPointer { o in
                    Gemm.reference(transA: false, transB: false, m: n, n: inputs, k: outputs, alpha: 1, a: g.baseAddress!, lda: outputs,
                                   b: wp.baseAddress!, ldb: inputs, beta: 0, c: o.baseAddress!, ldc: inputs)
                }
            }
            x.data.withUnsafeBufferPointer { xp in
                gw.withUnsafeMutableBufferPointer { o in
                    Gemm.reference(transA: true, transB: false, m: outputs, n: inputs, k: n, alpha: 1, a: g.baseAddress!, lda: outputs,
                                   b: xp.baseAddress!, ldb: inputs, beta: 0, c: o.baseAddress!, ldc: inputs)
                }
            }
        }
        let worstX = zip(x.grad!, gx).map { abs($0 - $1) }.max()!, worstW = zip(w.grad!, gw).map { abs($0 - $1) }.max()!
        #expect(worstX < 1e-3 && worstW < 1e-3, "largest deviations: input \(worstX), weight \(worstW)")
    }

    /// A weight gradient computed alone (the input needs none) above `splitForwardProduct` is cut in two halves of the
    /// weight's rows: the bits of the uncut product, through OpenBLAS (an LSTM's W_hh over 1024 rows) and through the
    /// panel kernel (256 rows).
    @Test(arguments: [(1024, 128, 512), (256, 128, 160)])
    func weightGradientHalvesGiveTheBitsOfTheWholeProduct(shape: (Int, Int, Int)) {
        let (n, inputs, outputs) = shape
        #expect(ExecutionPolicy.weightGradientParts(rows: n, inputs: inputs, outputs: outputs).count == 2)
        var rng = SeededGenerator(seed: 4)
        let x = Tensor.uniform([n, inputs], low: -1, high: 1, using: &rng)
        let w = Tensor.uniform([outputs, inputs], low: -1, high: 1, using: &rng)
        w.requiresGrad = true
        let upstream = Tensor.uniform([n, outputs], low: -1, high: 1, using: &rng).data
        Tensor.linear(x, weight: w, bias: nil).backward(gradient: upstream)
        var whole = [Float](repeating: 0, count: outputs * inputs)
        upstream.withUnsafeBufferPointer { g in
            x.data.withUnsafeBufferPointer { xp in
                whole.withUnsafeMutableBufferPointer { o in
                    Gemm.multiply(transA: true, transB: false, m: outputs, n: inputs, k: n, alpha: 1, a: g.baseAddress!,
                                  lda: outputs, b: xp.baseAddress!, ldb: inputs, beta: 0, c: o.baseAddress!, ldc: inputs)
                }
            }
        }
        let differing = zip(w.grad!, whole).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(differing) of \(whole.count) weight-gradient values differ from the uncut product")
    }

    @Test func forkJoinReturnsBothResults() {
        let (a, b) = ForkJoin.both({ (0..<1000).reduce(0, +) }, { "second" })
        #expect(a == 499_500 && b == "second")
    }

    /// Forks inside forks, and forks from several threads at once, run (serially where the helper is taken) and
    /// give every result; none waits forever.
    @Test func nestedAndConcurrentForksAllComplete() async {
        func sum(_ range: Range<Int>) -> Int {
            guard range.count > 1000 else { return range.reduce(0, +) }
            let middle = range.lowerBound + range.count / 2
            let (a, b) = ForkJoin.both({ sum(range.lowerBound..<middle) }, { sum(middle..<range.upperBound) })
            return a + b
        }
        let expected = (0..<200_000).reduce(0, +)
        let results = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<4 { group.addTask { (0..<50).reduce(0) { total, _ in total + (sum(0..<200_000) == expected ? 1 : 0) } } }
            return await group.reduce(0, +)
        }
        #expect(results == 200)
    }
}
