import Agents
import ArgumentParser
import CLIKit
import Foundation

/// `rlbench import model.zip --out DIR`: a Stable-Baselines3 model as an rlbench checkpoint.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a Stable-Baselines3 PPO, A2C or DQN MlpPolicy zip as a checkpoint that eval, play and view take.",
        discussion: "Writes DIR/final.safetensors. The zip's pickles are read by a strict reader that runs no code.")

    @Argument(help: "An SB3 model zip (model.save(...)).")
    var model: String

    @Option(name: .long, help: "The run folder to write.")
    var out: String

    @Option(name: .long, help: "Environment id (default: the registered environment with the model's spaces).")
    var env: String?

    func run() throws {
        let imported = try fail {
            try StableBaselines3.importModel(URL(fileURLWithPath: model), environment: env, into: URL(fileURLWithPath: out))
        }
        for note in imported.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
        print("wrote \(imported.checkpoint.path) (\(imported.agent) on \(imported.environment))")
    }
}
