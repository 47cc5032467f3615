import CKernels

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
    /// (an activation's backward needs only its output, which is the next Linear layer's input).
    static func chain(_ x: Tensor, _ steps: [ChainStep]) -> Tensor {
        precondition(x.rank == 2, "chain: input must be [n, features], got \(x.shape)")
        let rows = x.shape[0]
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

/// Dense stacks outside a graph (acting, rollouts, evaluation, DQN's targets).
extension Tensor {
    /// `layers` (Linear layers and activations; any other layer is called as itself) applied to `x [rows, features]`
    /// on plain arrays: the values of the layer-by-layer ops, without a tensor per layer.
    static func denseArrays(_ x: Tensor, _ layers: [any Layer]) -> Tensor {
        let rows = x.shape[0]
        var values = x.data, width = x.shape[1]
        for layer in layers {
            if let linear = layer as? Linear, linear.inputSize == width {
                values = Tensor.affine(values, rows: rows, weight: linear.weight, bias: linear.bias)
                width = linear.outputSize
            } else if let activation = layer as? ActivationLayer {
                activation.activation.applyInPlace(&values)
            } else {
                let y = layer(Tensor(values, shape: [rows, width]))
                precondition(y.rank == 2 && y.shape[0] == rows, "layer \(type(of: layer)) returned \(y.shape) for \(rows) rows")
                values = y.data
                width = y.shape[1]
            }
        }
        return Tensor(values, shape: [rows, width])
    }

    /// `steps` applied to the `rows` rows of `x [rows, inputs]` without a graph, computed transposed, one column per
    /// row: each Linear layer's hᵀ_out = W hᵀ_in + b is one panel product (`Gemm.panel`), which reads hᵀ_in as stored
    /// and writes each value once, where OpenBLAS would pack both operands. After a ReLU the product sums only over the
    /// units active on some row: a unit no row activates adds only zero products. Every value is its layer's sum over
    /// the inputs in order, in fused multiply-adds from +0, then plus the bias: the values of `affine` wherever
    /// OpenBLAS sums the whole of k in order (DQN's layers on x86).
    static func inferenceChain(_ x: [Float], rows: Int, inputs: Int, _ steps: [ChainStep]) -> [Float] {
        var width = inputs
        var h = Tensor(x, shape: [rows, inputs]).transposed().data
        var active: [Int32] = []
        var activeCount: Int?  // nil: every unit of h
        for step in steps {
            switch step {
            case let .linear(layer):
                precondition(layer.inputSize == width, "linear: input [\(rows), \(width)] does not fit weight \(layer.weight.shape) ([out, in])")
                let outputs = layer.outputSize
                var next = [Float](unsafeUninitializedCapacity: outputs * rows) { $1 = outputs * rows }  // written whole
                layer.weight.data.withUnsafeBufferPointer { w in
                    h.withUnsafeBufferPointer { h in
                        next.withUnsafeMutableBufferPointer { next in
                            active.withUnsafeBufferPointer { active in
                                let bias = layer.bias?.data ?? []
                                bias.withUnsafeBufferPointer { bias in
                                    Gemm.panel(transA: false, m: outputs, n: rows, k: activeCount ?? width, a: w.baseAddress!,
                                               lda: width, b: h.baseAddress!, ldb: rows,
                                               rowBias: layer.bias == nil ? nil : bias.baseAddress, c: next.baseAddress!,
                                               ldc: rows, terms: activeCount == nil ? nil : active.baseAddress)
                                }
                            }
                        }
                    }
                }
                h = next
                width = outputs
                activeCount = nil
            case let .activation(activation):
                activation.applyInPlace(&h)
                guard activation == .relu else { continue }
                active = [Int32](unsafeUninitializedCapacity: width) { $1 = width }
                activeCount = active.withUnsafeMutableBufferPointer { active in
                    h.withUnsafeBufferPointer { rl_nonzero_rows($0.baseAddress!, width, rows, active.baseAddress!) }
                }
            }
        }
        return Tensor(h, shape: [width, rows]).transposed().data
    }
}
