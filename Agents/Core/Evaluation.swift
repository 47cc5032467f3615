import Environments
import Foundation
import Support
import Training

/// The zoo's evaluation protocol result: returns of `episodes` episodes of the deterministic policy.
public struct EvaluationSummary: Codable, Sendable, Equatable {
    public var episodes: Int
    public var mean: Double
    public var std: Double
    public var min: Double
    public var max: Double
    /// How many episodes were stopped at the evaluation's step limit (environments without a time limit); not part of
    /// `eval.json`.
    public var episodesAtStepLimit = 0

    private enum CodingKeys: String, CodingKey { case episodes, mean, std, min, max }

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

/// The longest evaluation episode on an environment without a time limit (CliffWalking-v1): a greedy policy that
/// walks in a circle would otherwise never finish. Such an episode stops there, with the return it has collected
/// (unless the environment ends its episodes itself within a longer bound, `EnvSpec.longestEpisode`).
public let evaluationStepLimit = 1_000

/// Runs `episodes` episodes of `agent`'s policy and summarizes the returns. Episode i runs on a fresh environment
/// reset with seed `seed + i`, so each episode's start depends on nothing but its number. Up to `batchSize` episodes
/// run side by side, the agent choosing the actions of all unfinished ones at once (one network pass per step);
/// `deterministic` picks the greedy action. On an environment without a time limit an episode stops after
/// `evaluationStepLimit` steps (counted in `episodesAtStepLimit`). Ctrl-C (`StopRequest`) stops it with
/// `AgentError.interrupted`.
/// Refuses a number of evaluation episodes outside 1 (0 with `allowingNone`: no evaluation) to
/// `Limits.evaluationEpisodes`, before any is played or anything allocated.
public func checkEvaluationEpisodes(_ episodes: Int, allowingNone: Bool) throws {
    do { _ = try WholeNumber.whole(Double(episodes), in: (allowingNone ? 0 : 1)...Limits.evaluationEpisodes) } catch {
        throw AgentError.badOption("evaluation episodes \(error)")
    }
}

public func evaluate(_ agent: Agent, on factory: EnvironmentFactory, episodes: Int, seed: UInt64,
                     deterministic: Bool = true, batchSize: Int = 100) throws -> EvaluationSummary {
    precondition(batchSize > 0, "evaluate needs a positive batch size")
    try checkEvaluationEpisodes(episodes, allowingNone: false)
    var returns = [Double](repeating: 0, count: episodes)
    var atStepLimit = 0
    for first in stride(from: 0, to: episodes, by: batchSize) {
        let count = min(batchSize, episodes - first)
        let envs = try (0..<count).map { _ in try factory.make() }
        let spec = envs[0].spec
        let stepLimit = spec?.maxEpisodeSteps == nil ? max(evaluationStepLimit, spec?.longestEpisode ?? 0) : Int.max
        var observations = envs.indices.map { envs[$0].reset(seed: seed &+ UInt64(first + $0)) }
        var running = Array(envs.indices)
        var steps = 0
        while !running.isEmpty {
            if StopRequest.isRequested { throw AgentError.interrupted(step: steps) }
            if steps == stepLimit {
                atStepLimit += running.count
                break
            }
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
            steps += 1
        }
    }
    var summary = EvaluationSummary(returns: returns)
    summary.episodesAtStepLimit = atStepLimit
    return summary
}
