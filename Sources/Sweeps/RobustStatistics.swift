import Foundation
import SeededRandom

/// The aggregate statistics of Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice"
/// (NeurIPS 2021), as the `rliable` package computes them, over scores arranged by task: `scores[task][run]`.
///
/// - IQM: the 25% trimmed mean of all runs of all tasks (scipy's `trim_mean`: ⌊n/4⌋ values cut at each end).
/// - mean and median: of the tasks' mean scores.
/// - optimality gap: 1 − the mean of min(score, 1) over all runs (scores normalized so 1 is the target).
/// - confidence intervals: the stratified bootstrap (each task's runs resampled with replacement, tasks kept), the
///   percentile interval with numpy's linear interpolation.
/// - performance profile: the fraction of all runs scoring above τ.
public enum RobustStatistics {
    public enum Aggregate: String, CaseIterable, Sendable {
        case median, iqm = "IQM", mean, optimalityGap = "optimality gap"

        public func callAsFunction(_ scores: [[Double]]) -> Double {
            switch self {
            case .median: RobustStatistics.median(scores.map(RobustStatistics.mean))
            case .iqm: RobustStatistics.interquartileMean(scores.flatMap { $0 })
            case .mean: RobustStatistics.mean(scores.map(RobustStatistics.mean))
            case .optimalityGap: 1 - RobustStatistics.mean(scores.flatMap { $0 }.map { min($0, 1) })
            }
        }
    }

    public static func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }

    public static func median(_ values: [Double]) -> Double { percentile(values.sorted(), 50) }

    /// The 25% trimmed mean: the mean of the sorted values without the lowest and highest ⌊n/4⌋.
    public static func interquartileMean(_ values: [Double]) -> Double {
        let sorted = values.sorted(), cut = sorted.count / 4
        return mean(Array(sorted[cut..<(sorted.count - cut)]))
    }

    /// The `p`-th percentile (0–100) of sorted values, interpolated linearly between the closest ranks (numpy's
    /// default).
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        precondition(!sorted.isEmpty, "a percentile of no values")
        let rank = p / 100 * Double(sorted.count - 1)
        let below = Int(rank.rounded(.down)), above = min(below + 1, sorted.count - 1)
        return sorted[below] + (sorted[above] - sorted[below]) * (rank - Double(below))
    }

    /// The fraction of all runs scoring above `tau` (a point of the performance profile).
    public static func fractionAbove(_ tau: Double, in scores: [[Double]]) -> Double {
        let all = scores.flatMap { $0 }
        return Double(all.count { $0 > tau }) / Double(all.count)
    }

    /// The stratified bootstrap's percentile interval of `statistic` (coverage `confidence`), from `reps` resamples
    /// drawn from `seed`: each resample replaces every task's runs by as many drawn with replacement from that task.
    public static func interval(_ scores: [[Double]], reps: Int = 2000, confidence: Double = 0.95, seed: UInt64 = 0,
                                statistic: ([[Double]]) -> Double) -> (low: Double, high: Double) {
        var rng = SeededGenerator(seed: seed)
        var resample = scores
        var values: [Double] = []
        values.reserveCapacity(reps)
        for _ in 0..<reps {
            for (task, runs) in scores.enumerated() {
                for i in runs.indices { resample[task][i] = runs[rng.nextInt(below: runs.count)] }
            }
            values.append(statistic(resample))
        }
        values.sort()
        let tail = (1 - confidence) / 2 * 100
        return (percentile(values, tail), percentile(values, 100 - tail))
    }
}
