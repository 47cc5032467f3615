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

/// Runs `episodes` episodes of `agent`'s policy on a fresh environment seeded with `seed` (the first reset is
/// seeded; later resets continue its stream) and summarizes the returns. `deterministic` picks the greedy action.
public func evaluate(_ agent: Agent, on factory: EnvironmentFactory, episodes: Int, seed: UInt64,
                     deterministic: Bool = true) throws -> EvaluationSummary {
    precondition(episodes > 0, "evaluate needs at least one episode")
    let env = try factory.make()
    var returns: [Double] = []
    returns.reserveCapacity(episodes)
    for episode in 0..<episodes {
        var observation = env.reset(seed: episode == 0 ? seed : nil)
        var total = 0.0
        while true {
            let result = try env.step(agent.act(observation, deterministic: deterministic))
            total += result.reward
            observation = result.observation
            if result.terminated || result.truncated { break }
        }
        returns.append(total)
    }
    return EvaluationSummary(returns: returns)
}
