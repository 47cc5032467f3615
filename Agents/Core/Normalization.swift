import Environments
import Foundation
import RLCore

/// SB3's `VecNormalize` inside an agent: observations normalized by running statistics (clip ±10) and rewards
/// scaled by the running standard deviation of each environment's discounted return (clip ±10).
/// The statistics are saved in checkpoints so evaluation and resumed runs normalize identically.
public final class ObservationNormalizer {
    public private(set) var observations: RunningMeanStd
    public private(set) var returns = RunningMeanStd(size: 1)
    let gamma: Double
    let clip = 10.0, epsilon = 1e-8
    private var discountedReturns: [Double] = []

    public init(size: Int, gamma: Double) {
        observations = RunningMeanStd(size: size)
        self.gamma = gamma
    }

    /// Normalized copies of `rows` observations (row-major); updates the statistics first when `update`.
    public func normalize(_ values: [Float], update: Bool) -> [Float] {
        var out = values
        let rows = values.count / observations.mean.count
        if update { values.withUnsafeBufferPointer { observations.update($0, rows: rows) } }
        out.withUnsafeMutableBufferPointer { observations.normalize($0, clip: clip, epsilon: epsilon) }
        return out
    }

    /// The scaled rewards of one vector step; `done[i]` resets environment i's discounted return afterwards.
    public func scaleRewards(_ rewards: [Double], done: [Bool]) -> [Double] {
        if discountedReturns.count != rewards.count { discountedReturns = [Double](repeating: 0, count: rewards.count) }
        for i in rewards.indices { discountedReturns[i] = discountedReturns[i] * gamma + rewards[i] }
        discountedReturns.map(Float.init).withUnsafeBufferPointer { returns.update($0, rows: rewards.count) }
        let scale = (returns.variance[0] + epsilon).squareRoot()
        let scaled = rewards.map { max(-clip, min(clip, $0 / scale)) }
        for i in rewards.indices where done[i] { discountedReturns[i] = 0 }
        return scaled
    }

    /// The statistics as named tensors (`<prefix>.mean`, `.var`, `.count`, and the return statistics).
    public func stateTensors(prefix: String) -> [(name: String, tensor: Tensor)] {
        [(name: "\(prefix).mean", tensor: Tensor(observations.mean.map(Float.init))),
         (name: "\(prefix).var", tensor: Tensor(observations.variance.map(Float.init))),
         (name: "\(prefix).count", tensor: Tensor(scalar: Float(observations.count))),
         (name: "\(prefix).return_mean", tensor: Tensor(scalar: Float(returns.mean[0]))),
         (name: "\(prefix).return_var", tensor: Tensor(scalar: Float(returns.variance[0]))),
         (name: "\(prefix).return_count", tensor: Tensor(scalar: Float(returns.count)))]
    }

    /// Writes the statistics exactly (the checkpoint keeps them as float32) and each environment's discounted
    /// return: what a resumed run needs to scale and normalize as the uninterrupted one does.
    func write(to writer: inout SnapshotWriter) {
        for stats in [observations, returns] {
            writer.write(stats.mean)
            writer.write(stats.variance)
            writer.write(stats.count)
        }
        writer.write(discountedReturns)
    }

    /// Reads what `write(to:)` wrote; `apply` then puts it in place (so nothing changes when a later read fails).
    func read(from reader: inout SnapshotReader) throws -> () -> Void {
        let sizes = [observations.mean.count, 1]
        let stats = try sizes.map { size in
            RunningMeanStd(mean: try reader.doubles(count: size), variance: try reader.doubles(count: size), count: try reader.double())
        }
        let discounted = try reader.doubles()
        return { [self] in
            observations = stats[0]; returns = stats[1]; discountedReturns = discounted
        }
    }

    /// Restores what `stateTensors` saved.
    public func restore(from checkpoint: AgentCheckpoint, prefix: String) throws {
        let d = observations.mean.count
        observations = RunningMeanStd(mean: try checkpoint.tensor("\(prefix).mean", shape: [d]).data.map(Double.init),
                                      variance: try checkpoint.tensor("\(prefix).var", shape: [d]).data.map(Double.init),
                                      count: Double(try checkpoint.tensor("\(prefix).count", shape: []).item))
        // Checkpoints from before return_mean was saved restore it as 0.
        let returnMean = (try? checkpoint.tensor("\(prefix).return_mean", shape: []).item).map(Double.init) ?? 0
        returns = RunningMeanStd(mean: [returnMean], variance: [Double(try checkpoint.tensor("\(prefix).return_var", shape: []).item)],
                                 count: Double(try checkpoint.tensor("\(prefix).return_count", shape: []).item))
    }
}

/// Averages of the per-minibatch diagnostics of one policy-gradient update.
struct UpdateStatistics {
    var policyLoss = 0.0, valueLoss = 0.0, entropy = 0.0, approxKL = 0.0, clipFraction = 0.0
    var count = 0

    mutating func add(policyLoss: Float, valueLoss: Float, entropy: Float, approxKL: Float = 0, clipFraction: Float = 0) {
        self.policyLoss += Double(policyLoss); self.valueLoss += Double(valueLoss); self.entropy += Double(entropy)
        self.approxKL += Double(approxKL); self.clipFraction += Double(clipFraction)
        count += 1
    }

    /// The averages, plus the learning rate, clip range and the explained variance of the value predictions.
    func summary(learningRate: Float, clipRange: Float? = nil, values: [Float], returns: [Float], valid: [Float]) -> [String: Double] {
        let n = Double(max(count, 1))
        var out: [String: Double] = ["learning_rate": Double(learningRate), "policy_loss": policyLoss / n, "value_loss": valueLoss / n,
                                     "entropy": entropy / n, "approx_kl": approxKL / n, "clip_fraction": clipFraction / n,
                                     "explained_variance": explainedVariance(values: values, returns: returns, valid: valid)]
        if let clipRange { out["clip_range"] = Double(clipRange) }
        return out
    }
}

/// 1 − Var[R − V] / Var[R] over the valid rows (SB3's explained variance; NaN-free: 0 when Var[R] = 0).
func explainedVariance(values: [Float], returns: [Float], valid: [Float]) -> Double {
    var r: [Double] = [], d: [Double] = []
    for i in values.indices where valid[i] != 0 { r.append(Double(returns[i])); d.append(Double(returns[i] - values[i])) }
    func variance(_ x: [Double]) -> Double {
        guard !x.isEmpty else { return 0 }
        let m = x.reduce(0, +) / Double(x.count)
        return x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count)
    }
    let vr = variance(r)
    return vr == 0 ? 0 : 1 - variance(d) / vr
}

/// Standardizes in place: (x − mean) / (std + 1e-8), as SB3 normalizes advantages, but with the population standard
/// deviation (SB3's torch `std()` divides by n − 1; see docs/design.md, "Following Stable-Baselines3"). Fewer than two values are left
/// alone.
func standardize(_ x: inout [Float]) {
    guard x.count > 1 else { return }
    let n = Float(x.count)
    let mean = x.reduce(0, +) / n
    let std = (x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n).squareRoot()
    for i in x.indices { x[i] = (x[i] - mean) / (std + 1e-8) }
}
