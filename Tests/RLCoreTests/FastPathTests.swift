import Foundation
import RLCore
import SeededRandom
import Testing

/// The fast paths give the bits of the plain ones: the one-pass losses those of their textbook formulas, and the
/// two-core splits those of one core.
struct FastPathTests {
    /// Binary cross-entropy with logits as first written: log σ, the values and σ as separate element-wise maps.
    func referenceBCE(_ x: [Float], _ t: [Float]) -> (values: [Float], dInput: [Float]) {
        let logSigmoid = x.map { min($0, 0) - log1p(exp(-abs($0))) }
        let values = (0..<x.count).map { (1 - t[$0]) * x[$0] - logSigmoid[$0] }
        let sig = x.map { $0 >= 0 ? 1 / (1 + exp(-$0)) : exp($0) / (1 + exp($0)) }
        return (values, (0..<x.count).map { sig[$0] - t[$0] })
    }

    @Test(arguments: [7, 40_000])
    func bceWithLogitsMatchesTheReferenceBitForBit(count: Int) {
        var rng = SeededGenerator(seed: 5)
        var x = Tensor.uniform([count], low: -30, high: 30, using: &rng).data
        x[0] = 0; x[1] = -0.0; x[2] = 1e-30; x[3] = -90; x[4] = 90
        let t = Tensor.uniform([count], using: &rng).data
        let (values, dInput) = referenceBCE(x, t)
        let logits = Tensor(x, shape: [count], requiresGrad: true), target = Tensor(t, shape: [count], requiresGrad: true)
        let perElement = binaryCrossEntropyWithLogits(logits, target, reduction: .none)
        #expect(perElement.data.map(\.bitPattern) == values.map(\.bitPattern))
        perElement.sum().backward()
        #expect(logits.grad!.map(\.bitPattern) == dInput.map(\.bitPattern))
        #expect(target.grad!.map(\.bitPattern) == x.map { (-$0).bitPattern })
        let summed = binaryCrossEntropyWithLogits(Tensor(x, shape: [count]), Tensor(t, shape: [count]), reduction: .sum)
        #expect(summed.item.bitPattern == values.reduce(0, +).bitPattern)
    }

    /// Batch norm of a DCGAN-sized batch (large enough to split its channels over the cores): the output and every
    /// gradient are the same bits on one core and on two.
    @Test func batchNormSplitOverTheCoresGivesTheBitsOfOneCore() {
        func run(parallel: Bool) -> [[UInt32]] {
            ForkJoin.isParallel = parallel
            defer { ForkJoin.isParallel = true }
            var rng = SeededGenerator(seed: 9)
            let x = Tensor.normal([16, 64, 14, 14], mean: 0.3, std: 2, using: &rng)
            x.requiresGrad = true
            let norm = BatchNorm2d(64)
            let y = norm(x)
            (y * Tensor.normal(y.shape, using: &rng)).sum().backward()
            return [y.data, x.grad!, norm.weight!.grad!, norm.bias!.grad!, norm.runningVar.data].map { $0.map(\.bitPattern) }
        }
        #expect(run(parallel: true) == run(parallel: false))
    }
}
