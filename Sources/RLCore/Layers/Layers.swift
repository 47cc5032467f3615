import SeededRandom

/// A fully connected layer `y = x Wᵀ + b`, weight `[out, in]`, PyTorch's default initialization
/// (weight and bias uniform in ±1/√in). Parameters: `weight`, `bias`.
public final class Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor?
    public var inputSize: Int { weight.shape[1] }
    public var outputSize: Int { weight.shape[0] }

    public init(_ inputSize: Int, _ outputSize: Int, bias: Bool = true, using rng: inout SeededGenerator) {
        precondition(inputSize > 0 && outputSize > 0, "Linear needs positive sizes, got \(inputSize)→\(outputSize)")
        let bound = 1 / Float(inputSize).squareRoot()
        weight = Tensor.uniform([outputSize, inputSize], low: -bound, high: bound, using: &rng)
        weight.requiresGrad = true
        if bias {
            let b = Tensor.uniform([outputSize], low: -bound, high: bound, using: &rng)
            b.requiresGrad = true
            self.bias = b
        } else {
            self.bias = nil
        }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.linear(x, weight: weight, bias: bias) }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        [(name: "weight", tensor: weight)] + (bias.map { [(name: "bias", tensor: $0)] } ?? [])
    }
}

/// Element-wise activation functions, usable as layers.
public enum Activation: String, Sendable, CaseIterable {
    case identity, relu, leakyRelu = "leaky_relu", elu, sigmoid, tanh, softplus

    /// Reads a name as written in configs (`tanh`, `relu`, `ReLU`, `nn.Tanh`, ...).
    public init?(name: String) {
        let key = name.lowercased().replacingOccurrences(of: "nn.", with: "")
        if let a = Activation(rawValue: key) { self = a; return }
        switch key {
        case "leakyrelu": self = .leakyRelu
        case "none", "linear": self = .identity
        default: return nil
        }
    }

    /// The activation of `x`'s values without a graph (the same values `apply` computes).
    func values(_ x: [Float]) -> [Float] {
        switch self {
        case .identity: x
        case .relu: Tensor.lanewise(ReLULanes.self, x, x)
        case .tanh: Tensor.tanhValues(x)
        default: Tensor.withoutGrad { apply(Tensor(x, shape: [x.count])).data }
        }
    }

    public func apply(_ x: Tensor) -> Tensor {
        switch self {
        case .identity: x
        case .relu: x.relu()
        case .leakyRelu: x.leakyRelu()
        case .elu: x.elu()
        case .sigmoid: x.sigmoid()
        case .tanh: x.tanh()
        case .softplus: x.softplus()
        }
    }
}

/// An activation as a parameter-free layer (a `Sequential` element, like `torch.nn.Tanh()`).
public final class ActivationLayer: Layer {
    public let activation: Activation
    public init(_ activation: Activation) { self.activation = activation }
    public func callAsFunction(_ x: Tensor) -> Tensor { activation.apply(x) }
    public func namedParameters() -> [(name: String, tensor: Tensor)] { [] }
}

/// Layers applied in order; children are named "0", "1", … as in `torch.nn.Sequential`.
public final class Sequential: Layer {
    public let layers: [any Layer]
    public init(_ layers: [any Layer]) { self.layers = layers }

    /// The layers in order. Outside a graph (`Tensor.withoutGrad`: acting, rollouts, evaluation, DQN targets) a batch
    /// `[n, features]` goes through Linear and activation layers as plain arrays — the same products and activation
    /// functions, so the same values, without a tensor and a recorded op per layer.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard !Tensor.isGradEnabled, x.rank == 2 else { return layers.reduce(x) { $1($0) } }
        let rows = x.shape[0]
        var values = x.data, width = x.shape[1]
        for layer in layers {
            if let linear = layer as? Linear, linear.inputSize == width {
                values = Tensor.affine(values, rows: rows, weight: linear.weight, bias: linear.bias)
                width = linear.outputSize
            } else if let activation = layer as? ActivationLayer {
                values = activation.activation.values(values)
            } else {
                let y = layer(Tensor(values, shape: [rows, width]))
                precondition(y.rank == 2 && y.shape[0] == rows, "layer \(type(of: layer)) returned \(y.shape) for \(rows) rows")
                values = y.data
                width = y.shape[1]
            }
        }
        return Tensor(values, shape: [rows, width])
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        layers.enumerated().flatMap { prefixed(String($0.offset), $0.element.namedParameters()) }
    }

    public func namedBuffers() -> [(name: String, tensor: Tensor)] {
        layers.enumerated().flatMap { prefixed(String($0.offset), $0.element.namedBuffers()) }
    }

    public func setTraining(_ training: Bool) { for l in layers { l.setTraining(training) } }

    /// A JSON list describing the layers for checkpoint metadata, e.g.
    /// `[{"type": "linear", "weight": "pi.0.weight", "bias": "pi.0.bias"}, {"type": "tanh"}, ...]`.
    public func layerDescription(prefix: String) -> String {
        let items: [String] = layers.enumerated().map { i, layer in
            let name = prefix.isEmpty ? String(i) : "\(prefix).\(i)"
            if let l = layer as? Linear {
                return #"{"type": "linear", "weight": "\#(name).weight""# + (l.bias != nil ? #", "bias": "\#(name).bias""# : "") + "}"
            }
            if let a = layer as? ActivationLayer { return #"{"type": "\#(a.activation.rawValue)"}"# }
            return #"{"type": "\#(String(describing: type(of: layer)))"}"#
        }
        return "[" + items.joined(separator: ", ") + "]"
    }
}

/// A multilayer perceptron `sizes[0] → sizes[1] → … → sizes.last` as a `Sequential` of Linear layers with
/// `activation` between them (and `outputActivation` after the last, if any). Parameter names follow torch:
/// `0.weight`, `0.bias`, `2.weight`, ...
public func MLP(sizes: [Int], activation: Activation = .tanh, outputActivation: Activation? = nil,
                using rng: inout SeededGenerator) -> Sequential {
    precondition(sizes.count >= 2, "an MLP needs at least input and output sizes, got \(sizes)")
    var layers: [any Layer] = []
    for i in 0..<(sizes.count - 1) {
        layers.append(Linear(sizes[i], sizes[i + 1], using: &rng))
        if i < sizes.count - 2 { layers.append(ActivationLayer(activation)) }
    }
    if let outputActivation { layers.append(ActivationLayer(outputActivation)) }
    return Sequential(layers)
}
