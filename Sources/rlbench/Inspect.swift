import ArgumentParser
import CLIKit
import Foundation
import Agents
import RLCore
import Training

/// `rlbench inspect FILE`: the tensors and metadata of a safetensors checkpoint.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a checkpoint's tensors (name, dtype, shape) and metadata; a bad file is an error naming the problem.")

    @Argument(help: "A .safetensors file.")
    var file: String

    func run() throws {
        let url = URL(fileURLWithPath: file)
        let header = try fail { try SafeTensors.header(of: url) }
        _ = try fail { try SafeTensors.read(from: url) } // validates the whole file, not only the header
        // An rlbench checkpoint's metadata is validated, after the listing, as `--resume`, `eval` and `sample` do
        // (other files, such as Hugging Face's with `format: pt` or the training state beside a checkpoint, are only
        // listed).
        let metadata = CheckpointMetadata(header.metadata)
        let isRLBench = metadata[.format]?.hasPrefix("rlbench-") == true && metadata[.format] != TrainingState.format
        var rows = [["tensor", "dtype", "shape", "elements"]]
        for entry in header.entries {
            rows.append([entry.name, entry.dtype, "[" + entry.shape.map(String.init).joined(separator: ", ") + "]",
                         String(entry.shape.reduce(1, *))])
        }
        printTable(rows)
        let total = header.entries.reduce(0) { $0 + $1.shape.reduce(1, *) }
        print("\(header.entries.count) tensors, \(total) elements")
        if !header.metadata.isEmpty { printMetadata(header.metadata) }
        if isRLBench { _ = try fail { try metadata.validated(source: file) } }
    }

    /// Each key and value; JSON values pretty-printed.
    private func printMetadata(_ metadata: [String: String]) {
        print("\nmetadata:")
        for key in metadata.keys.sorted() {
            let value = metadata[key]!
            if let data = value.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data),
               object is [Any] || object is [String: Any],
               let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) {
                print("  \(key):\n" + String(decoding: pretty, as: UTF8.self).split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            } else {
                print("  \(key): \(value)")
            }
        }
    }
}
