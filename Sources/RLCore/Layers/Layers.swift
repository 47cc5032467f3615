import CKernels
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

    /// Reads a name as written in configs (`tanh`, `relu`, `ReLU`, `nn.Tanh`, `th.nn.ReLU`, ...).
    public init?(name: String) {
        let key = String(name.lowercased().split(separator: ".").last ?? "")
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
        case .relu: Tensor.kernel(rl_relu, x)
        case .tanh: Tensor.kernel(rl_tanh, x)
        default: Tensor.withoutGrad { apply(Tensor(x, shape: [x.count])).data }
        }
    }

    /// The activation of `x`'s values written over them: the values `values(_:)` returns, without a buffer of its own
    /// (an MLP's pre-activations are not kept, and writing a fresh buffer costs more than the ReLU itself).
    func applyInPlace(_ x: inout [Float]) {
        switch self {
        case .identity: return
        case .relu: Tensor.kernelInPlace(rl_relu, &x)
        case .tanh: Tensor.kernelInPlace(rl_tanh, &x)
        default: x = values(x)
        }
    }

    /// Whether `gradient(_:output:)` can send a gradient back from the output alone (ReLU, tanh, identity): the
    /// activations that `Sequential` folds into one graph node with its Linear layers.
    var hasOutputGradient: Bool { self == .identity || self == .relu || self == .tanh }

    /// The gradient w.r.t. the input from the upstream gradient `g` and the output `y` (ReLU: g where y > 0; tanh:
    /// g·(1 − y²); identity: g) — the backward of `apply` for the activations with `hasOutputGradient`.
    func gradient(_ g: [Float], output y: [Float]) -> [Float] {
        switch self {
        case .identity: g
        case .relu: Tensor.kernel(rl_relu_backward, g, y)
        case .tanh: Tensor.kernel(rl_tanh_backward, g, y)
        default: preconditionFailure("\(self) has no gradient from its output alone")
        }
    }

    /// `gradient(g, output: y)` written over `g`.
    func gradientInPlace(_ g: inout [Float], output y: [Float]) {
        switch self {
        case .identity: return
        case .relu: Tensor.kernelInPlace(rl_relu_backward, &g, y)
        case .tanh: Tensor.kernelInPlace(rl_tanh_backward, &g, y)
        default: preconditionFailure("\(self) has no gradient from its output alone")
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

/// Leaky ReLU with a chosen slope for negative inputs (`torch.nn.LeakyReLU(negative_slope)`; GAN discriminators use
/// 0.2).
public final class LeakyReLU: Layer {
    public let slope: Float
    public init(slope: Float = 0.01) { self.slope = slope }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.leakyRelu(slope) }
    public func namedParameters() -> [(name: String, tensor: Tensor)] { [] }
}

/// Layers applied in order; children are named "0", "1", … as in `torch.nn.Sequential`.
public final class Sequential: Layer {
    public let layers: [any Layer]
    /// The layers as one chain node's steps, when they are all Linear layers and ReLU/tanh/identity activations, each
    /// activation followed by a Linear layer or last (every `MLP`); nil otherwise.
    let chain: [Tensor.ChainStep]?

    public init(_ layers: [any Layer]) {
        self.layers = layers
        isDense = layers.allSatisfy { $0 is Linear || $0 is ActivationLayer }
        var steps: [Tensor.ChainStep] = []
        for (i, layer) in layers.enumerated() {
            if let linear = layer as? Linear {
                steps.append(.linear(linear))
            } else if let a = layer as? ActivationLayer, a.activation.hasOutputGradient,
                      i + 1 == layers.count || layers[i + 1] is Linear {
                steps.append(.activation(a.activation))
            } else {
                break
            }
        }
        chain = steps.count == layers.count && !steps.isEmpty ? steps : nil
    }

    /// Whether every layer is a Linear layer or an activation: outside a graph such a stack runs on plain arrays.
    let isDense: Bool

    /// Whether, in a graph, the layers run as one node (`Tensor.chain`) rather than one op per layer.
    public var isChained: Bool { chain != nil }

    /// The layers in order. How they run is `ExecutionPolicy`'s choice: one op per layer (the reference), or, for a
    /// batch `[n, features]` through Linear layers and activations, one of the fused executions that compute the same
    /// values (`RLCore/Backend`).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch ExecutionPolicy.execution(of: self, on: x) {
        case .layerByLayer: return layers.reduce(x) { $1($0) }
        case let .chain(steps): return Tensor.chain(x, steps)
        case let .splitChain(split): return Tensor.splitChain(x, split)
        case .arrays: return Tensor.denseArrays(x, layers)
        case let .transposedChain(steps):
            let rows = x.shape[0]
            let y = Tensor.inferenceChain(x.data, rows: rows, inputs: x.shape[1], steps)
            return Tensor(y, shape: [rows, y.count / rows])
        }
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        layers.enumerated().flatMap { prefixed(String($0.offset), $0.element.namedParameters()) }
    }

    public func namedBuffers() -> [(name: String, tensor: Tensor)] {
        layers.enumerated().flatMap { prefixed(String($0.offset), $0.element.namedBuffers()) }
    }

    public func setTraining(_ training: Bool) { for l in layers { l.setTraining(training) } }

    /// A JSON list describing the layers for checkpoint metadata, e.g.
    /// `[{"type": "linear", "weight": "pi.0.weight", "bias": "pi.0.bias"}, {"type": "tanh"}, ...]`: each layer's
    /// kind, the names of its tensors and its settings, enough for a script to run the network (docs/checkpoints.md).
    public func layerDescription(prefix: String) -> String {
        let items: [String] = layers.enumerated().map { i, layer in
            let name = prefix.isEmpty ? String(i) : "\(prefix).\(i)"
            func tensors(_ keys: String...) -> String { keys.map { #""\#($0)": "\#(name).\#($0)""# }.joined(separator: ", ") }
            func weights(_ bias: Tensor?) -> String { bias != nil ? tensors("weight", "bias") : tensors("weight") }
            func pair(_ size: Size2D) -> String { "[\(size.height), \(size.width)]" }
            switch layer {
            case let l as Linear:
                return #"{"type": "linear", \#(weights(l.bias))}"#
            case let a as ActivationLayer:
                return #"{"type": "\#(a.activation.rawValue)"}"#
            case let a as LeakyReLU:
                return #"{"type": "leaky_relu", "negative_slope": \#(a.slope)}"#
            case let c as Conv2d:
                return #"{"type": "conv2d", \#(weights(c.bias)), "stride": \#(pair(c.stride)), "padding": \#(pair(c.padding)), "#
                    + #""dilation": \#(pair(c.dilation)), "groups": \#(c.groups)}"#
            case let c as ConvTranspose2d:
                return #"{"type": "conv_transpose2d", \#(weights(c.bias)), "stride": \#(pair(c.stride)), "#
                    + #""padding": \#(pair(c.padding)), "output_padding": \#(pair(c.outputPadding)), "#
                    + #""dilation": \#(pair(c.dilation)), "groups": \#(c.groups)}"#
            case let b as BatchNorm:
                let affine = b.weight != nil ? tensors("weight", "bias") + ", " : ""
                return #"{"type": "batch_norm", \#(affine)\#(tensors("running_mean", "running_var")), "eps": \#(b.eps)}"#
            case let f as Flatten:
                return #"{"type": "flatten", "start_dim": \#(f.startDim), "end_dim": \#(f.endDim)}"#
            case let u as Unflatten:
                return #"{"type": "unflatten", "dim": \#(u.dim), "sizes": \#(u.sizes)}"#
            case let p as Permute:
                return #"{"type": "permute", "dims": \#(p.dims)}"#
            case let u as Upsample:
                return #"{"type": "upsample_nearest", "scale_factor": \#(pair(u.scaleFactor))}"#
            default:
                return #"{"type": "\#(String(describing: type(of: layer)))"}"#
            }
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
