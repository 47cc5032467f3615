import ArgumentParser
import CLIKit
import Foundation
import Interop

/// `rlbench export CHECKPOINT --onnx FILE`: a checkpoint in another tool's format. Each format is one output flag
/// whose writer lives in the Interop module; several flags write several files from one checkpoint.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint in another format: --onnx FILE (an agent's acting network or a generative model's generator).",
        discussion: """
        ONNX (opset \(ONNXExport.opset)): an agent's model maps `observation` to `action` (and `scores` or `mean`), with \
        the observation normalization included; a generative model's maps `noise` (and `label`) to `samples`. \
        docs/interop.md lists the inputs and outputs.
        """)

    @Argument(help: "A checkpoint written by `rlbench run` (e.g. runs/ppo-CartPole-v1-seed0/final.safetensors).")
    var checkpoint: String

    @Option(name: .long, help: ArgumentHelp("Write the ONNX model to this file (e.g. policy.onnx).", valueName: "file"))
    var onnx: String?

    func validate() throws {
        guard onnx != nil else { throw ValidationError("say what to write: --onnx FILE") }
        if let onnx, onnx.isEmpty { throw ValidationError("--onnx needs a file name") }
    }

    func run() throws {
        let source = URL(fileURLWithPath: checkpoint)
        if let onnx {
            let signature = try fail { try ONNXExport.write(checkpoint: source, to: URL(fileURLWithPath: onnx)) }
            print("wrote \(onnx): \(signature)")
        }
    }
}
