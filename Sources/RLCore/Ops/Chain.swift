/// A chain of Linear layers and activations as one graph node: what `Sequential` records for an MLP.
extension Tensor {
    /// One step of a chain: a Linear layer, or an activation whose backward needs only its output.
    enum ChainStep {
        case linear(Linear)
        case activation(Activation)
    }

    /// `steps` applied in order to `x [n, features]`, recorded as one node. Forward and backward run the same products
    /// (`affine`, `linearBackward`) and activation functions as the layer-by-layer ops, so values and gradients are the
    /// same bit for bit; what goes is a tensor, a closure and a graph entry per layer, and the pre-activation buffers
    /// (an activation's backward needs only its output, which is the next Linear layer's input). An MLP with a narrow
    /// input and two wide hidden layers (DQN's) runs as `splitChain` instead: the same up to rounding.
    static func chain(_ x: Tensor, _ steps: [ChainStep]) -> Tensor {
        precondition(x.rank == 2, "chain: input must be [n, features], got \(x.shape)")
        let rows = x.shape[0]
        if let layers = SplitChainLayers(steps, rows: rows, inputs: x.shape[1]) { return splitChain(x, layers) }
        var values = x.data, width = x.shape[1]
        // saved[i]: the input of step i when step i is a Linear layer (for its weight gradient).
        var saved: [[Float]?] = []
        saved.reserveCapacity(steps.count)
        // inputRequiresGrad[i]: whether the value entering step i depends on something that requires grad.
        var inputRequiresGrad: [Bool] = []
        inputRequiresGrad.reserveCapacity(steps.count)
        var requires = x.requiresGrad
        var parents = [x]
        for step in steps {
            inputRequiresGrad.append(requires)
            switch step {
            case let .linear(layer):
                precondition(layer.inputSize == width,
                             "linear: input [\(rows), \(width)] does not fit weight \(layer.weight.shape) ([out, in])")
                saved.append(values)
                values = affine(values, rows: rows, weight: layer.weight, bias: layer.bias)
                width = layer.outputSize
                parents.append(layer.weight)
                if let bias = layer.bias { parents.append(bias) }
                requires = requires || layer.weight.requiresGrad || layer.bias?.requiresGrad == true
            case let .activation(activation):
                saved.append(nil)
                activation.applyInPlace(&values)
            }
        }
        return result(values, shape: [rows, width], inputs: parents) { out in
            var g = out.grad!
            for i in steps.indices.reversed() {
                switch steps[i] {
                case let .activation(activation):
                    // Its output is the next step's (a Linear layer's) saved input, or the chain's own output.
                    activation.gradientInPlace(&g, output: i + 1 < steps.count ? saved[i + 1]! : out.data)
                case let .linear(layer):
                    let gx = linearBackward(g, input: saved[i]!, rows: rows, weight: layer.weight, bias: layer.bias,
                                            inputGradient: inputRequiresGrad[i])
                    guard let gx else { return }
                    g = gx
                }
                if !inputRequiresGrad[i] { return }
            }
            x.accumulateGrad(g)
        }
    }
}
