import Agents
import ArgumentParser
import CLIKit
import Foundation
import Interop

/// `rlbench export CHECKPOINT --onnx FILE --sb3 FILE`: a checkpoint in another tool's format. Each format is one
/// output flag whose writer lives in a library (ONNX in Interop, Stable-Baselines3 in Agents' Interop folder);
/// several flags write several files from one checkpoint.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint in another format: --onnx FILE (an agent's acting network or a generative model's generator), --sb3 FILE (a Stable-Baselines3 model zip).",
        discussion: """
        ONNX (opset \(ONNXExport.opset)): an agent's model maps `observation` to `action` (and `scores` or `mean`), with \
        the observation normalization included; a generative model's maps `noise` (and `label`) to `samples`. \
        Stable-Baselines3 (\(StableBaselines3.formatVersion)): a PPO, A2C or DQN agent as the zip `PPO.load` & co. read. \
        docs/interop.md lists the inputs and outputs and the name mapping.
        """)

    @Argument(help: "A checkpoint written by `rlbench run` (e.g. runs/ppo-CartPole-v1-seed0/final.safetensors).")
    var checkpoint: String

    @Option(name: .long, help: ArgumentHelp("Write the ONNX model to this file (e.g. policy.onnx).", valueName: "file"))
    var onnx: String?

    @Option(name: .long, help: ArgumentHelp("Write a Stable-Baselines3 model zip to this file (e.g. model.zip).", valueName: "file"))
    var sb3: String?

    func validate() throws {
        guard onnx != nil || sb3 != nil else { throw ValidationError("say what to write: --onnx FILE or --sb3 FILE") }
        if let onnx, onnx.isEmpty { throw ValidationError("--onnx needs a file name") }
        if let sb3, sb3.isEmpty { throw ValidationError("--sb3 needs a file name") }
    }

    func run() throws {
        let source = URL(fileURLWithPath: checkpoint)
        if let onnx {
            let signature = try fail { try ONNXExport.write(checkpoint: source, to: URL(fileURLWithPath: onnx)) }
            print("wrote \(onnx): \(signature)")
        }
        if let sb3 {
            try fail { try StableBaselines3.export(checkpoint: source, to: URL(fileURLWithPath: sb3)) }
            print("wrote \(sb3)")
        }
    }
}
