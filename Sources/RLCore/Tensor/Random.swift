import SeededRandom

/// Random tensors, always from an explicit generator.
extension Tensor {
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout SeededGenerator) -> Tensor {
        Tensor((0..<shape.reduce(1, *)).map { _ in rng.uniform(low, high) }, shape: shape)
    }

    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout SeededGenerator) -> Tensor {
        Tensor((0..<shape.reduce(1, *)).map { _ in mean + std * Float(rng.nextGaussian()) }, shape: shape)
    }

    public static func bernoulli(_ shape: [Int], probability p: Float, using rng: inout SeededGenerator) -> Tensor {
        Tensor((0..<shape.reduce(1, *)).map { _ in rng.nextFloat() < p ? 1 : 0 }, shape: shape)
    }
}
