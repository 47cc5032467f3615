import Agents
import ArgumentParser
import CLIKit
import Foundation

/// `rlbench export CHECKPOINT --sb3 model.zip`: a saved agent in another tool's format.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a saved agent: --sb3 writes a Stable-Baselines3 model zip (PPO, A2C, DQN) that PPO.load & co. read.")

    @Argument(help: "A checkpoint written by `rlbench run` (e.g. runs/ppo-CartPole-v1-seed0/final.safetensors).")
    var checkpoint: String

    @Option(name: .customLong("sb3"), help: "The Stable-Baselines3 zip to write (docs/interop.md).")
    var sb3: String?

    func validate() throws {
        if sb3 == nil { throw ValidationError("name the output format: --sb3 model.zip") }
    }

    func run() throws {
        if let sb3 {
            try fail { try StableBaselines3.export(checkpoint: URL(fileURLWithPath: checkpoint), to: URL(fileURLWithPath: sb3)) }
            print("wrote \(sb3)")
        }
    }
}
