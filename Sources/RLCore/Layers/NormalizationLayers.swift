import SeededRandom

/// Batch normalization over every axis but the channel axis 1, as `torch.nn.BatchNorm1d`/`BatchNorm2d` (made by
/// the functions of those names, which only fix the accepted input ranks). Parameters `weight` (1) and `bias` (0)
/// when `affine`; buffers `running_mean` (0), `running_var` (1) and `num_batches_tracked`, kept by checkpoints.
/// Starts in training mode, as torch modules do.
public final class BatchNorm: Layer {
    public let weight: Tensor?
    public let bias: Tensor?
    public let runningMean: Tensor
    public let runningVar: Tensor
    /// The number of training-mode batches seen (a Float scalar: checkpoints hold Float32 tensors).
    public let numBatchesTracked: Tensor
    public let eps: Float
    public let momentum: Float
    /// The input ranks accepted (`[2, 3]` for the 1-d layer, `[4]` for the 2-d one), for a clear error.
    public let inputRanks: [Int]
    public private(set) var isTraining = true

    public init(_ numFeatures: Int, inputRanks: [Int], eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) {
        precondition(numFeatures > 0, "BatchNorm needs a positive number of features, got \(numFeatures)")
        func parameter(_ value: Float) -> Tensor { Tensor.full(value, shape: [numFeatures], requiresGrad: true) }
        weight = affine ? parameter(1) : nil
        bias = affine ? parameter(0) : nil
        runningMean = Tensor.zeros([numFeatures])
        runningVar = Tensor.ones([numFeatures])
        numBatchesTracked = Tensor(scalar: 0)
        self.eps = eps
        self.momentum = momentum
        self.inputRanks = inputRanks
    }

    public var numFeatures: Int { runningMean.count }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(inputRanks.contains(x.rank) && x.shape[1] == numFeatures,
                     "BatchNorm(\(numFeatures)) expects [N, \(numFeatures), ...] of rank \(inputRanks), got \(x.shape)")
        if isTraining { numBatchesTracked.data[0] += 1 }
        return x.batchNorm(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                           training: isTraining, momentum: momentum, eps: eps)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        [weight.map { (name: "weight", tensor: $0) }, bias.map { (name: "bias", tensor: $0) }].compactMap { $0 }
    }

    public func namedBuffers() -> [(name: String, tensor: Tensor)] {
        [(name: "running_mean", tensor: runningMean), (name: "running_var", tensor: runningVar),
         (name: "num_batches_tracked", tensor: numBatchesTracked)]
    }

    public func setTraining(_ training: Bool) { isTraining = training }
}

/// `torch.nn.BatchNorm1d`: input `[N, C]` or `[N, C, L]`.
public func BatchNorm1d(_ numFeatures: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) -> BatchNorm {
    BatchNorm(numFeatures, inputRanks: [2, 3], eps: eps, momentum: momentum, affine: affine)
}

/// `torch.nn.BatchNorm2d`: input `[N, C, H, W]`.
public func BatchNorm2d(_ numFeatures: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) -> BatchNorm {
    BatchNorm(numFeatures, inputRanks: [4], eps: eps, momentum: momentum, affine: affine)
}

/// Layer normalization over the trailing `normalizedShape` dimensions, as `torch.nn.LayerNorm`: parameters
/// `weight` (1) and `bias` (0) of that shape when `elementwiseAffine`. The same in training and evaluation.
public final class LayerNorm: Layer {
    public let normalizedShape: [Int]
    public let weight: Tensor?
    public let bias: Tensor?
    public let eps: Float

    public init(_ normalizedShape: [Int], eps: Float = 1e-5, elementwiseAffine: Bool = true) {
        precondition(!normalizedShape.isEmpty && normalizedShape.allSatisfy { $0 > 0 },
                     "LayerNorm needs a non-empty positive shape, got \(normalizedShape)")
        self.normalizedShape = normalizedShape
        weight = elementwiseAffine ? Tensor.ones(normalizedShape, requiresGrad: true) : nil
        bias = elementwiseAffine ? Tensor.zeros(normalizedShape, requiresGrad: true) : nil
        self.eps = eps
    }

    public convenience init(_ features: Int, eps: Float = 1e-5, elementwiseAffine: Bool = true) {
        self.init([features], eps: eps, elementwiseAffine: elementwiseAffine)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.layerNorm(normalizedShape: normalizedShape, weight: weight, bias: bias, eps: eps)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        [weight.map { (name: "weight", tensor: $0) }, bias.map { (name: "bias", tensor: $0) }].compactMap { $0 }
    }
}

/// Inverted dropout, as `torch.nn.Dropout(p)`: in training mode zeroes each element with probability `p` and scales
/// the rest by 1/(1 − p); in eval mode the identity. Its randomness comes only from the generator it is given, so two
/// layers built with the same seed drop the same elements at every call. Starts in training mode.
public final class Dropout: Layer {
    public let p: Float
    /// The stream the masks are drawn from (advanced by every training-mode call).
    public var generator: SeededGenerator
    public private(set) var isTraining = true

    public init(_ p: Float = 0.5, generator: SeededGenerator) {
        precondition(p >= 0 && p <= 1, "Dropout probability must be in [0, 1], got \(p)")
        self.p = p
        self.generator = generator
    }

    public convenience init(_ p: Float = 0.5, seed: UInt64) { self.init(p, generator: SeededGenerator(seed: seed)) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining && p > 0 else { return x }
        return x.dropout(p, using: &generator)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] { [] }
    public func setTraining(_ training: Bool) { isTraining = training }
}
