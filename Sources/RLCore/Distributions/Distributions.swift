import Foundation
import SeededRandom

/// A batch of categorical distributions given by logits `[n, k]` (a discrete policy).
public struct Categorical {
    public let logits: Tensor
    /// Normalized log-probabilities `[n, k]` (differentiable in the logits).
    public let logProbabilities: Tensor

    public init(logits: Tensor) {
        precondition(logits.rank == 2, "Categorical needs logits [n, k], got \(logits.shape)")
        self.logits = logits
        logProbabilities = logits.logSoftmax(axis: 1)
    }

    /// log π(a) for one action per row, shape `[n]`.
    public func logProb(_ actions: [Int]) -> Tensor { logProbabilities.pick(columns: actions) }

    /// −Σ p log p per row, shape `[n]`.
    public func entropy() -> Tensor { -(logProbabilities.exp() * logProbabilities).sum(axis: 1) }

    /// The mean over rows of `entropy()`, as a number outside any graph (a diagnostic): the same value as
    /// `entropy().mean().item`, operation for operation, without the five intermediate tensors.
    public func meanEntropyValue() -> Float {
        let n = logits.shape[0], k = logits.shape[1]
        var total: Float = 0
        logProbabilities.data.withUnsafeBufferPointer { lp in
            for i in 0..<n {
                var row: Float = 0
                for j in 0..<k {
                    let l = lp[i * k + j]
                    row += Foundation.exp(l) * l
                }
                total += row * -1
            }
        }
        return total * (1 / Float(Swift.max(n, 1)))
    }

    /// One sampled action per row (inverse-CDF with one uniform draw each).
    public func sample(using rng: inout SeededGenerator) -> [Int] {
        let n = logits.shape[0], k = logits.shape[1]
        let lp = logProbabilities.data
        return (0..<n).map { i in
            let u = Float(rng.nextDouble())
            var cumulative: Float = 0
            for j in 0..<k {
                cumulative += Foundation.exp(lp[i * k + j])
                if u < cumulative { return j }
            }
            return k - 1
        }
    }

    /// The most probable action per row.
    public var mode: [Int] { logits.argmax(axis: 1) }
}

/// A batch of diagonal Gaussians: mean `[n, d]` and a log standard deviation that is either state-independent,
/// `[d]` broadcast over the batch (a continuous PPO/A2C policy), or one per row, `[n, d]` (gSDE).
public struct DiagonalGaussian {
    public let mean: Tensor
    public let logStd: Tensor

    public init(mean: Tensor, logStd: Tensor) {
        precondition(mean.rank == 2 && (logStd.shape == [mean.shape[1]] || logStd.shape == mean.shape),
                     "DiagonalGaussian needs mean [n, d] and logStd [d] or [n, d], got \(mean.shape), \(logStd.shape)")
        self.mean = mean
        self.logStd = logStd
    }

    /// Σ_d log N(x_d; μ_d, σ_d²) per row, shape `[n]`.
    public func logProb(_ values: Tensor) -> Tensor {
        let z = (values - mean) / logStd.exp()
        let perDim = z * z * -0.5 - logStd - 0.5 * Float(Foundation.log(2 * Double.pi))
        return perDim.sum(axis: 1)
    }

    /// Σ_d (0.5 + 0.5 log 2π + log σ_d), per row `[n]` (independent of the mean).
    public func entropy() -> Tensor {
        let perDim = logStd + 0.5 + 0.5 * Float(Foundation.log(2 * Double.pi))
        if logStd.rank == 2 { return perDim.sum(axis: 1) }
        let n = mean.shape[0]
        return (Tensor.zeros([n, 1]) + perDim.reshaped([1, -1])).sum(axis: 1)
    }

    /// μ + σ·ε with ε ~ N(0, I), shape `[n, d]` (no gradient).
    public func sample(using rng: inout SeededGenerator) -> Tensor {
        let n = mean.shape[0], d = mean.shape[1]
        let std = logStd.data.map { Foundation.exp($0) }
        let perRow = logStd.rank == 2
        var out = [Float](repeating: 0, count: n * d)
        for i in 0..<n {
            for j in 0..<d {
                out[i * d + j] = mean.data[i * d + j] + std[perRow ? i * d + j : j] * Float(rng.nextGaussian())
            }
        }
        return Tensor(out, shape: [n, d])
    }

    /// The mean (the deterministic action).
    public var mode: Tensor { mean.detached() }
}
