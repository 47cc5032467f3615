import Agents
import ArgumentParser
import CLIKit
import Foundation
import RLCore
import Support
import Training

/// `rlbench eval CHECKPOINT`: evaluates a saved agent with its deterministic policy.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a saved agent: deterministic policy, N episodes; prints the eval.json summary.")

    @Argument(help: "A checkpoint written by `rlbench run` (e.g. runs/ppo-CartPole-v1-seed0/final.safetensors).")
    var checkpoint: String

    @Option(name: .long, parsing: .unconditional, help: "Number of episodes.",
            transform: parseCount("--episodes", in: 1...Limits.evaluationEpisodes))
    var episodes = 100

    @Option(name: .long, help: "Environment id (default: the one the agent was trained on; must have the same spaces).")
    var env: String?

    @Option(name: .long, parsing: .unconditional, help: "Seed of the first episode (episode i: seed + i; default: the run's seed + 1,000,000, as its eval.json).", transform: parseSeed)
    var seed: UInt64?

    @Flag(name: .long, help: "Print only the JSON summary.")
    var json = false

    func run() throws {
        let (agent, descriptor, factory, metadata) = try fail { try SavedAgent.load(URL(fileURLWithPath: checkpoint), environment: env) }
        // By default the episodes of the run's own eval.json: seeds S + 1,000,000 + i for a run with seed S.
        let firstSeed = try seed ?? metadata.value(.seed) &+ 1_000_000
        let summary = try fail { try evaluate(agent, on: factory, episodes: episodes, seed: firstSeed) }
        if !json {
            print(String(format: "%@ on %@: mean return %.2f ± %.2f over %d episodes (min %.2f, max %.2f)", descriptor.name,
                         factory.id, summary.mean, summary.std, summary.episodes, summary.min, summary.max))
        }
        if summary.episodesAtStepLimit > 0 {
            FileHandle.standardError.write(Data(("note: \(summary.episodesAtStepLimit) of \(summary.episodes) episodes "
                + "were stopped at \(evaluationStepLimit) steps (\(factory.id) has no time limit)\n").utf8))
        }
        print(summary.json)
    }
}

/// `rlbench list agents`: the agents, their action spaces and default hyperparameters.
