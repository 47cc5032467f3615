import Foundation
import Imaging

/// Running mean and variance (parallel/Welford merge, float64), as SB3's `RunningMeanStd`; savable.
public struct RunningMeanStd: Sendable, Equatable {
    public var mean: [Double]
    public var variance: [Double]
    public var count: Double

    /// Starts as SB3 does: mean 0, variance 1, count ε = 1e-4.
    public init(size: Int) {
        mean = [Double](repeating: 0, count: size)
        variance = [Double](repeating: 1, count: size)
        count = 1e-4
    }

    public init(mean: [Double], variance: [Double], count: Double) {
        precondition(mean.count == variance.count, "mean and variance sizes differ")
        self.mean = mean; self.variance = variance; self.count = count
    }

    /// Merges a batch of `rows` vectors laid out row-major in `values`.
    public mutating func update(_ values: UnsafeBufferPointer<Float>, rows: Int) {
        let d = mean.count
        guard rows > 0 else { return }
        if rows == 1 {
            // A batch of one (batch variance 0), without the scratch arrays.
            let total = count + 1
            for j in 0..<d {
                let delta = Double(values[j]) - mean[j]
                variance[j] = (variance[j] * count + delta * delta * count / total) / total
                mean[j] += delta / total
            }
            count = total
            return
        }
        var batchMean = [Double](repeating: 0, count: d), batchVar = [Double](repeating: 0, count: d)
        for r in 0..<rows { for j in 0..<d { batchMean[j] += Double(values[r * d + j]) } }
        for j in 0..<d { batchMean[j] /= Double(rows) }
        for r in 0..<rows { for j in 0..<d { let x = Double(values[r * d + j]) - batchMean[j]; batchVar[j] += x * x } }
        for j in 0..<d { batchVar[j] /= Double(rows) }
        let n = Double(rows), total = count + n
        for j in 0..<d {
            let delta = batchMean[j] - mean[j]
            let m2 = variance[j] * count + batchVar[j] * n + delta * delta * count * n / total
            mean[j] += delta * n / total
            variance[j] = m2 / total
        }
        count = total
    }

    /// Merges one scalar sample (size-1 statistics), in float64 and without allocating.
    public mutating func update(_ value: Double) {
        precondition(mean.count == 1, "update(_: Double) needs size-1 statistics, these have \(mean.count)")
        let total = count + 1
        let delta = value - mean[0]
        // Batch of one: batch mean = value, batch variance = 0.
        let m2 = variance[0] * count + delta * delta * count / total
        mean[0] += delta / total
        variance[0] = m2 / total
        count = total
    }

    /// (x − mean) / √(var + ε), clipped to ±clip, in place.
    public func normalize(_ values: UnsafeMutableBufferPointer<Float>, clip: Double = 10, epsilon: Double = 1e-8) {
        let d = mean.count
        for i in 0..<values.count {
            let j = i % d
            let z = (Double(values[i]) - mean[j]) / (variance[j] + epsilon).squareRoot()
            values[i] = Float(max(-clip, min(clip, z)))
        }
    }
}

/// Tracks each episode's return and length (Gymnasium's `RecordEpisodeStatistics`).
public final class RecordEpisodeStatistics: Environment {
    public let inner: Environment
    public private(set) var episodeReturn = 0.0
    public private(set) var episodeLength = 0
    /// Return and length of the last finished episode.
    public private(set) var lastEpisode: (episodeReturn: Double, length: Int)?
    public private(set) var completedEpisodes = 0
    /// Returns and lengths of the last `bufferLength` finished episodes, oldest first (Gymnasium's
    /// `return_queue`/`length_queue`).
    public private(set) var recentReturns: [Double] = []
    public private(set) var recentLengths: [Int] = []
    public let bufferLength: Int

    public init(_ inner: Environment, bufferLength: Int = 100) {
        precondition(bufferLength > 0, "bufferLength must be positive")
        self.inner = inner
        self.bufferLength = bufferLength
    }

    /// The mean return of the recent episodes (nil before the first one ends).
    public var meanRecentReturn: Double? { recentReturns.isEmpty ? nil : recentReturns.reduce(0, +) / Double(recentReturns.count) }
    public var spec: EnvSpec? { get { inner.spec } set { inner.spec = newValue } }
    public var observationSpace: Space { inner.observationSpace }
    public var actionSpace: Space { inner.actionSpace }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        episodeReturn = 0; episodeLength = 0
        inner.reset(seed: seed, into: observation)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        let o = try inner.step(action, into: observation)
        episodeReturn += o.reward
        episodeLength += 1
        if o.done {
            lastEpisode = (episodeReturn, episodeLength)
            completedEpisodes += 1
            if recentReturns.count == bufferLength { recentReturns.removeFirst(); recentLengths.removeFirst() }
            recentReturns.append(episodeReturn)
            recentLengths.append(episodeLength)
        }
        return o
    }

    public func render() -> RGBImage { inner.render() }
}

/// Normalizes observations by a running mean and variance, following SB3's `VecNormalize` observation part:
/// statistics start at mean 0, variance 1, count 1e-4; each observation first updates them (while `training`)
/// and is then mapped to clip((x − mean) / √(var + 1e-8), ±clip) with clip = 10 by default (SB3's `clip_obs`).
/// With `training == false` the statistics are frozen (evaluation). Save `statistics` in a checkpoint and assign
/// it back (`RunningMeanStd(mean:variance:count:)`) to restore the exact normalization.
public final class NormalizeObservation: Environment {
    public let inner: Environment
    public var statistics: RunningMeanStd
    public var training = true
    public let clip: Double

    public init(_ inner: Environment, clip: Double = 10) {
        self.inner = inner
        self.clip = clip
        statistics = RunningMeanStd(size: inner.observationSpace.flatCount)
    }
    public var spec: EnvSpec? { get { inner.spec } set { inner.spec = newValue } }
    public var observationSpace: Space { .box(low: -Float(clip), high: Float(clip), shape: [inner.observationSpace.flatCount]) }
    public var actionSpace: Space { inner.actionSpace }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        inner.reset(seed: seed, into: observation)
        process(observation)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        let o = try inner.step(action, into: observation)
        process(observation)
        return o
    }

    private func process(_ observation: UnsafeMutableBufferPointer<Float>) {
        if training { statistics.update(UnsafeBufferPointer(observation), rows: 1) }
        statistics.normalize(observation, clip: clip)
    }

    public func render() -> RGBImage { inner.render() }
}

/// Scales rewards by the running standard deviation of the discounted return, following SB3's `VecNormalize`
/// reward part: at each step G ← γ·G + r, the return statistics are updated with G (while `training`), and the
/// reward becomes clip(r / √(Var[G] + ε), ±clip) (the mean is not subtracted). G restarts at 0 after every
/// episode end, terminated or truncated, and at `reset`. Defaults: γ 0.99, ε 1e-8, clip 10 (SB3's `clip_reward`).
/// Gymnasium's `NormalizeReward` differs: no clipping, and G is only zeroed on termination.
public final class ScaleReward: Environment {
    public let inner: Environment
    public var statistics = RunningMeanStd(size: 1)
    public var training = true
    public let gamma: Double, clip: Double, epsilon: Double
    private var discountedReturn = 0.0

    public init(_ inner: Environment, gamma: Double = 0.99, clip: Double = 10, epsilon: Double = 1e-8) {
        self.inner = inner; self.gamma = gamma; self.clip = clip; self.epsilon = epsilon
    }
    public var spec: EnvSpec? { get { inner.spec } set { inner.spec = newValue } }
    public var observationSpace: Space { inner.observationSpace }
    public var actionSpace: Space { inner.actionSpace }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        discountedReturn = 0
        inner.reset(seed: seed, into: observation)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        var o = try inner.step(action, into: observation)
        discountedReturn = discountedReturn * gamma + o.reward
        if training { statistics.update(discountedReturn) }
        o.reward = max(-clip, min(clip, o.reward / (statistics.variance[0] + epsilon).squareRoot()))
        if o.done { discountedReturn = 0 }
        return o
    }

    public func render() -> RGBImage { inner.render() }
}

/// Turns a `Discrete(n)` observation into a one-hot vector of n floats.
public final class OneHotObservation: Environment {
    public let inner: Environment
    public let size: Int

    public init(_ inner: Environment) throws {
        guard let n = inner.observationSpace.discreteCount else {
            throw EnvironmentError.invalidOption("OneHotObservation needs a Discrete observation space, got \(inner.observationSpace)")
        }
        self.inner = inner
        size = n
    }
    public var spec: EnvSpec? { get { inner.spec } set { inner.spec = newValue } }
    public var observationSpace: Space { .box(low: 0, high: 1, shape: [size]) }
    public var actionSpace: Space { inner.actionSpace }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        var index: Float = 0
        withUnsafeMutablePointer(to: &index) { inner.reset(seed: seed, into: UnsafeMutableBufferPointer(start: $0, count: 1)) }
        encode(Int(index), observation)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        var index: Float = 0
        let o = try withUnsafeMutablePointer(to: &index) { try inner.step(action, into: UnsafeMutableBufferPointer(start: $0, count: 1)) }
        encode(Int(index), observation)
        return o
    }

    private func encode(_ index: Int, _ observation: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<size { observation[i] = i == index ? 1 : 0 }
    }

    public func render() -> RGBImage { inner.render() }
}

/// rl-baselines3-zoo's `MaskVelocityWrapper`: the entries at `indices` of every observation (an environment's
/// velocities) read 0, which makes the control problem partially observed: a policy has to remember earlier
/// observations to act well. The observation space is the inner one, as in the zoo. It keeps no state of its own, so
/// its snapshot is its inner environment's (`StatelessWrapper`). `Registry.make` applies it for `mask_velocity=true`
/// and for the `…NoVel` ids.
public final class MaskVelocity: StatelessWrapper {
    public let inner: Environment
    public let indices: [Int]

    public init(_ inner: Environment, indices: [Int]) {
        precondition(indices.allSatisfy { (0..<inner.observationSpace.flatCount).contains($0) },
                     "MaskVelocity: indices \(indices) outside the observation's \(inner.observationSpace.flatCount) values")
        self.inner = inner
        self.indices = indices
    }
    public var spec: EnvSpec? { get { inner.spec } set { inner.spec = newValue } }
    public var observationSpace: Space { inner.observationSpace }
    public var actionSpace: Space { inner.actionSpace }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        inner.reset(seed: seed, into: observation)
        for i in indices { observation[i] = 0 }
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        let o = try inner.step(action, into: observation)
        for i in indices { observation[i] = 0 }
        return o
    }

    public func render() -> RGBImage { inner.render() }
}
