import RLCore
import SeededRandom
import Testing

/// An MLP with a narrow input and two wide hidden layers (DQN's 4-256-256-2) runs in a graph as a chain split between
/// the cores by hidden units (`Tensor.splitChain`): its values and gradients are those of the layers applied one by
/// one up to rounding, the same on one core or two, and gradients add up over two backward passes.
@Suite(.serialized) struct SplitChainTests {
    struct Outcome: Equatable {
        var output: [Float]
        var inputGradient: [Float]
        var parameterGradients: [[Float]]
    }

    /// The net's output for a fixed batch of 64 and the gradients of Σ output · weights, `backwards` times over.
    /// With `deadUnits`, every third unit of the first hidden layer and every other one of the second get a bias of
    /// −100: no row activates them (ReLU's dead units), which the split chain leaves out of its products.
    func outcome(activation: Activation, layerByLayer: Bool, backwards: Int = 1, deadUnits: Bool = false) -> Outcome {
        var rng = SeededGenerator(seed: 11)
        let net = MLP(sizes: [4, 256, 256, 2], activation: activation, using: &rng)
        if deadUnits {
            let biases = net.namedParameters().filter { $0.name.hasSuffix("bias") }.map(\.tensor)
            for j in stride(from: 0, to: 256, by: 3) { biases[0].data[j] = -100 }
            for j in stride(from: 1, to: 256, by: 2) { biases[1].data[j] = -100 }
        }
        let x = Tensor.uniform([64, 4], low: -2, high: 2, using: &rng)
        x.requiresGrad = true
        let weights = Tensor.uniform([64, 2], low: -1, high: 1, using: &rng)
        var output: [Float] = []
        for _ in 0..<backwards {
            let y = layerByLayer ? net.layers.reduce(x) { $1($0) } : net(x)
            (y * weights).sum().backward()
            output = y.data
        }
        return Outcome(output: output, inputGradient: x.grad ?? [],
                       parameterGradients: net.namedParameters().map { $0.tensor.grad ?? [] })
    }

    func largestRelativeDeviation(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count && !a.isEmpty)
        let scale = max(b.map { abs($0) }.max()!, 1e-6)
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    @Test(arguments: [Activation.relu, .tanh])
    func matchesTheLayersAppliedOneByOne(activation: Activation) {
        let split = outcome(activation: activation, layerByLayer: false)
        let layers = outcome(activation: activation, layerByLayer: true)
        #expect(largestRelativeDeviation(split.output, layers.output) < 1e-5)
        #expect(largestRelativeDeviation(split.inputGradient, layers.inputGradient) < 1e-5)
        #expect(split.parameterGradients.count == 6)
        for (i, (a, b)) in zip(split.parameterGradients, layers.parameterGradients).enumerated() {
            #expect(largestRelativeDeviation(a, b) < 1e-5, "parameter \(i)")
        }
        // The output is two shares added, so it is not the one-product value bit for bit: the split path really ran.
        #expect(split != layers)
    }

    /// Units no row activates add nothing and get zero weight gradients; leaving them out of the products (as the
    /// split chain does) keeps the values of the layers applied one by one.
    @Test func deadUnitsAreLeftOutWithTheSameValues() {
        let split = outcome(activation: .relu, layerByLayer: false, deadUnits: true)
        let layers = outcome(activation: .relu, layerByLayer: true, deadUnits: true)
        #expect(largestRelativeDeviation(split.output, layers.output) < 1e-5)
        #expect(largestRelativeDeviation(split.inputGradient, layers.inputGradient) < 1e-5)
        for (i, (a, b)) in zip(split.parameterGradients, layers.parameterGradients).enumerated() {
            #expect(largestRelativeDeviation(a, b) < 1e-5, "parameter \(i)")
        }
        // W₂'s gradient (parameter 2, [256, 256]): the dead second-layer units' rows and the dead first-layer units'
        // columns are +0.
        let w2Gradient = split.parameterGradients[2]
        #expect((0..<256).allSatisfy { i in
            (0..<256).allSatisfy { j in
                let g = w2Gradient[i * 256 + j]
                return !(i % 2 == 1 || j % 3 == 0) || (g == 0 && g.sign == .plus)
            }
        })
        #expect(w2Gradient.contains { $0 != 0 })
    }

    @Test func sameBitsOnOneCoreOrTwo() {
        let two = outcome(activation: .relu, layerByLayer: false)
        ForkJoin.isParallel = false
        defer { ForkJoin.isParallel = true }
        let one = outcome(activation: .relu, layerByLayer: false)
        #expect(two == one)
    }

    /// A second backward pass without clearing the gradients adds to them (`Tensor.accumulateGrad(writing:)` then
    /// writes into a fresh buffer and adds it).
    @Test func gradientsAccumulateOverTwoBackwardPasses() {
        let once = outcome(activation: .relu, layerByLayer: false)
        let twice = outcome(activation: .relu, layerByLayer: false, backwards: 2)
        for (a, b) in zip(twice.parameterGradients + [twice.inputGradient], once.parameterGradients + [once.inputGradient]) {
            #expect(largestRelativeDeviation(a, b.map { 2 * $0 }) < 1e-6)
        }
    }
}
