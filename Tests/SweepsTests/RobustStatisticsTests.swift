import Foundation
import Sweeps
import Testing
import TestSupport

/// The report's statistics against the `rliable` package (Agarwal et al. 2021) on one fixed set of normalized scores:
/// 4 tasks × 10 runs. Point estimates and the performance profile must agree to rounding; bootstrap intervals come
/// from different random draws (rliable's numpy generator, rlbench's xoshiro), so they agree only up to Monte Carlo
/// error, which the test measures from rliable itself (below).
@Suite struct RobustStatisticsTests {
    /// scores[task][run]: spread, skewed and tied values, some above 1 (past the target) and below 0.
    static let scores: [[Double]] = (0..<4).map { task in
        (0..<10).map { run in
            let x = Double((run * 37 + task * 11) % 23) / 22
            return task == 3 && run < 3 ? 1.0 : x * x * 1.4 - 0.1 + Double(task) * 0.05
        }
    }
    static let reps = 2000, pythonSeeds = 4

    /// Runs rliable on `scores` (runs × tasks, as rliable arranges them) with `pythonSeeds` numpy seeds; its JSON has
    /// each aggregate's point estimate and per seed its interval, and the performance profile at a few taus.
    func rliable() throws -> [String: Any] {
        let python = try #require(CLI.executable(named: "python3"))
        let matrix = (0..<10).map { run in Self.scores.map { $0[run] } }
        let script = """
        import json, sys, numpy as np
        import arch.bootstrap
        # rliable 1.2 pins arch < 8, which does not import under pandas 3; arch 8 dropped the random_state argument
        # that rliable passes (as None). rliable draws from numpy's global generator either way.
        _init = arch.bootstrap.IIDBootstrap.__init__
        def init(self, *args, random_state=None, **kwargs): _init(self, *args, **kwargs)
        arch.bootstrap.IIDBootstrap.__init__ = init
        from rliable import library as rly, metrics
        scores = np.array(\(matrix))
        funcs = {"median": metrics.aggregate_median, "IQM": metrics.aggregate_iqm, "mean": metrics.aggregate_mean,
                 "optimality gap": metrics.aggregate_optimality_gap}
        out = {"points": {k: float(f(scores)) for k, f in funcs.items()}, "intervals": {k: [] for k in funcs}}
        for seed in range(\(Self.pythonSeeds)):
            np.random.seed(seed)  # rliable's stratified bootstrap draws from numpy's global generator
            for k, f in funcs.items():
                _, ci = rly.get_interval_estimates({"a": scores}, lambda x: np.array([f(x)]), reps=\(Self.reps))
                out["intervals"][k].append([float(ci["a"][0][0]), float(ci["a"][1][0])])
        taus = [0.0, 0.25, 0.5, 0.75, 1.0]
        profile, _ = rly.create_performance_profile({"a": scores}, np.array(taus), reps=100)
        out["profile"] = [float(v) for v in profile["a"]]
        print(json.dumps(out))
        """
        let result = try CLI.runTool(python, ["-c", script])
        try #require(result.status == 0, "python3 needs rliable (scripts/setup --for-tests): \(result.err)")
        return try #require(JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
    }

    @Test func pointEstimatesAndIntervalsAgreeWithRliable() throws {
        let reference = try rliable()
        let points = try #require(reference["points"] as? [String: Double])
        let intervals = try #require(reference["intervals"] as? [String: [[Double]]])
        for aggregate in RobustStatistics.Aggregate.allCases {
            let mine = aggregate(Self.scores), theirs = try #require(points[aggregate.rawValue])
            #expect(abs(mine - theirs) <= 1e-12 * max(1, abs(theirs)), "\(aggregate.rawValue): \(mine) against rliable's \(theirs)")

            // Tolerance: each interval end is a bootstrap quantile, estimated by both from `reps` resamples. Its Monte
            // Carlo spread is measured as the standard deviation s of rliable's end over its seeds; rlbench's end is an
            // independent estimate of the same quantile, so it should lie within 4·s·√(1 + 1/k) of the mean of
            // rliable's k ends (a z of 4: a false failure about once in 15,000 runs), plus a floor of 0.005 (the
            // scores span about 1.5) for ends that sit on a jump of a discrete bootstrap distribution.
            let runs = try #require(intervals[aggregate.rawValue])
            let mineCI = RobustStatistics.interval(Self.scores, reps: Self.reps, seed: 7) { aggregate($0) }
            for (end, value) in [(0, mineCI.low), (1, mineCI.high)] {
                let theirs = runs.map { $0[end] }
                let mean = theirs.reduce(0, +) / Double(theirs.count)
                let sd = (theirs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(theirs.count - 1)).squareRoot()
                let tolerance = 4 * sd * (1 + 1 / Double(theirs.count)).squareRoot() + 0.005
                #expect(abs(value - mean) <= tolerance,
                        "\(aggregate.rawValue) interval \(end == 0 ? "low" : "high"): \(value) against rliable's \(theirs) (tolerance \(tolerance))")
            }
            #expect(mineCI.low <= mine && mine <= mineCI.high, "\(aggregate.rawValue): \(mineCI) holds \(mine)")
        }
        let profile = try #require(reference["profile"] as? [Double])
        for (tau, theirs) in zip([0.0, 0.25, 0.5, 0.75, 1.0], profile) {
            #expect(RobustStatistics.fractionAbove(tau, in: Self.scores) == theirs, "profile at \(tau)")
        }
    }

    /// The same seed gives the same interval; another seed a different one (the draws come from the seed).
    @Test func intervalsFollowTheirSeed() {
        let iqm = RobustStatistics.Aggregate.iqm
        let a = RobustStatistics.interval(Self.scores, reps: 500, seed: 1) { iqm($0) }
        let b = RobustStatistics.interval(Self.scores, reps: 500, seed: 1) { iqm($0) }
        let c = RobustStatistics.interval(Self.scores, reps: 500, seed: 2) { iqm($0) }
        #expect(a.low == b.low && a.high == b.high)
        #expect(a.low != c.low || a.high != c.high)
    }

    /// scipy's trim_mean cuts ⌊n/4⌋ from each end; numpy's percentile interpolates linearly.
    @Test func trimmedMeanAndPercentileByHand() {
        let cutOne: Double = RobustStatistics.interquartileMean([9, 1, 5, 3, 7, 100, -50])
        #expect(cutOne == 5)  // (1 + 3 + 5 + 7 + 9) / 5: -50 and 100 cut
        #expect(RobustStatistics.interquartileMean([1, 2, 3, 4, 5, 6, 7, 8]) == 4.5)                      // cut 2 each end
        #expect(RobustStatistics.percentile([0, 10, 20, 30], 50) == 15)
        #expect(abs(RobustStatistics.percentile([0, 10, 20, 30], 2.5) - 0.75) < 1e-12)
    }
}
