import Environments
import Foundation

/// The zoo's evaluation protocol result: returns of `episodes` episodes of the deterministic policy.
public struct EvaluationSummary: Codable, Sendable, Equatable {
    public var episodes: Int
    public var mean: Double
    public var std: Double
    public var min: Double
    public var max: Double

    /// Summarizes episode returns (population standard deviation, as NumPy's `std`).
    public init(returns: [Double]) {
        precondition(!returns.isEmpty, "no episodes to summarize")
        episodes = returns.count
        mean = returns.reduce(0, +) / Double(returns.count)
        let m = mean
        std = (returns.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(returns.count)).squareRoot()
        min = returns.min()!
        max = returns.max()!
    }

    /// `{"episodes": 100, "mean": ..., "std": ..., "min": ..., "max": ...}` — the `eval.json` users' scripts read.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// Runs `episodes` episodes of `agent`'s policy and summarizes the returns. Episode i runs on a fresh environment
/// reset with seed `seed + i`, so each episode's start depends on nothing but its number. Up to `batchSize` episodes
/// run side by side, the agent choosing the actions of all unfinished ones at once (one network pass per step);
/// `deterministic` picks the greedy action.
public func evaluate(_ agent: Agent, on factory: EnvironmentFactory, episodes: Int, seed: UInt64,
                     deterministic: Bool = true, batchSize: Int = 100) throws -> EvaluationSummary {
    precondition(episodes > 0 && batchSize > 0, "evaluate needs at least one episode and a positive batch size")
    var returns = [Double](repeating: 0, count: episodes)
    for first in stride(from: 0, to: episodes, by: batchSize) {
        let count = min(batchSize, episodes - first)
        let envs = try (0..<count).map { _ in try factory.make() }
        var observations = envs.indices.map { envs[$0].reset(seed: seed &+ UInt64(first + $0)) }
        var running = Array(envs.indices)
        while !running.isEmpty {
            let actions = agent.act(batch: running.flatMap { observations[$0] }, count: running.count, deterministic: deterministic)
            var stillRunning: [Int] = []
            stillRunning.reserveCapacity(running.count)
            for (row, i) in running.enumerated() {
                let result = try envs[i].step(actions[row])
                returns[first + i] += result.reward
                observations[i] = result.observation
                if !(result.terminated || result.truncated) { stillRunning.append(i) }
            }
            running = stillRunning
        }
    }
    return EvaluationSummary(returns: returns)
}
