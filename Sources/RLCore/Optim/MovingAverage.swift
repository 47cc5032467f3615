/// An exponential moving average of a module's parameters and buffers (Polyak averaging):
///
///     average ← decay · average + (1 − decay) · value        after every optimizer step
///
/// A GAN's generator oscillates around an equilibrium rather than settling on it; the average of its recent weights
/// sits closer to it and samples better than the last step's weights (Yazıcı et al. 2019, "The Unusual
/// Effectiveness of Averaging in GAN Training"). Batch-norm statistics are averaged alike, so the averaged network
/// is consistent in evaluation mode.
public final class ExponentialMovingAverage {
    public let decay: Float
    /// The averaged values, named as the module's `stateDict()`.
    public let averages: [(name: String, tensor: Tensor)]
    private let values: [Tensor]

    /// Starts the average at the module's current values.
    public init(of module: Module, decay: Float) {
        precondition((0..<1).contains(decay), "a moving average's decay is in [0, 1)")
        self.decay = decay
        let state = module.stateDict()
        values = state.map(\.tensor)
        averages = state.map { (name: $0.name, tensor: Tensor($0.tensor.data, shape: $0.tensor.shape)) }
    }

    /// Moves the average towards the module's current values.
    public func update() {
        let keep = decay, take = 1 - decay
        for (value, (_, average)) in zip(values, averages) {
            value.data.withUnsafeBufferPointer { v in
                average.data.withUnsafeMutableBufferPointer { a in
                    for i in a.indices { a[i] = keep * a[i] + take * v[i] }
                }
            }
        }
    }

    /// Runs `body` with the averaged values in the module (sampling from the averaged network), then puts the
    /// trained values back.
    public func withAveragedValues<T>(_ body: () throws -> T) rethrows -> T {
        swapValues()
        defer { swapValues() }
        return try body()
    }

    private func swapValues() {
        for (value, (_, average)) in zip(values, averages) { swap(&value.data, &average.data) }
    }
}
