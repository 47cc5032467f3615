import ArgumentParser
import CLIKit
import Datasets
import Foundation
import RLCore
import SeededRandom

/// `rlbench bench layers`: training steps of image and sequence models (LeNet-5, a DCGAN, an LSTM) and a full MNIST
/// epoch of LeNet-5, beside PyTorch with `--torch`.
struct BenchLayers: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layers",
        abstract: "Training-step µs of LeNet-5, a DCGAN and an LSTM, and a LeNet-5 MNIST epoch (--torch: beside PyTorch).",
        discussion: """
        Rows (--json): {"name": "layer_step_us", "model": "lenet"|"dcgan"|"lstm", "batch": ..., "backend": "core"|"pytorch", \
        "gflops": ..., "peak_fraction": ..., "value": ...}, {"name": "epoch_s", "model": "lenet", "data": "mnist", ...} and \
        {"name": "peak_rss_mb", ...}. Step times are medians over --rounds rounds that alternate the core and PyTorch \
        (2 threads); peak_fraction is against two-core sgemm (the gemm_peak_gflops row). Each epoch runs in a process \
        of its own, whose peak resident memory is reported.
        """)

    @OptionGroup var options: ComparisonOptions

    @Option(help: "Models to time (repeatable): lenet, dcgan, lstm.")
    var model: [String] = ["lenet", "dcgan", "lstm"]

    @Flag(help: "Skip the MNIST epoch.")
    var noEpoch = false

    @Flag(help: .private)
    var epochChild = false

    func validate() throws {
        if let other = model.first(where: { !["lenet", "dcgan", "lstm"].contains($0) }) {
            throw ValidationError("unknown model '\(other)'; bench layers times lenet, dcgan, lstm")
        }
    }

    func run() throws {
        if epochChild {
            try fail { try printLeNetEpoch(mnist: options.mnist) }
            return
        }
        let peak = options.emitMachineAndPeak()
        let session = options.torchSession()
        let steps: [TrainingStep] = model.map {
            switch $0 {
            case "lenet": LeNetStep(batch: 64, seed: 1)
            case "dcgan": DCGANStep(batch: 64, seed: 1)
            default: LSTMStep(batch: 32, seed: 1)
            }
        }
        options.compare(steps, name: "layer_step_us", torch: session, peak: peak)
        guard !noEpoch else { return }
        let mnist = options.mnist
        try fail {
            emitEpoch(try childRecord(["bench", "layers", "--epoch-child", "--data-dir", mnist]), backend: "core")
            if session != nil { emitEpoch(try options.torchRecord(["lenet_epoch", mnist]), backend: "pytorch") }
        }
    }

    private func emitEpoch(_ record: [String: Any], backend: String) {
        let seconds = record["epoch_s"] as? Double ?? .nan, peak = record["peak_rss_mb"] as? Double ?? .nan
        let flops = 6 * LeNetStep.multiplyAddsPerImage * 60_000
        let json = options.json
        printRecord(json: json, name: "epoch_s", fields: [("model", "lenet"), ("data", "mnist"), ("batch", 64), ("backend", backend),
                                                          ("gflops", rounded(flops / seconds / 1e9))],
                    value: seconds, unit: "s", label: "LeNet-5 MNIST epoch, batch 64, \(backend)")
        printRecord(json: json, name: "peak_rss_mb", fields: [("model", "lenet"), ("data", "mnist"), ("batch", 64), ("backend", backend)],
                    value: peak, unit: "MB", label: "peak RSS of that epoch's process, \(backend)")
    }

    /// One shuffled MNIST epoch of LeNet-5 (batch 64, Adam), timed without the loading; prints the child's record.
    private func printLeNetEpoch(mnist: String) throws {
        let train = try Datasets.load("mnist", directory: URL(fileURLWithPath: mnist)).train
        let step = LeNetStep(batch: 64, seed: 1)
        var rng = SeededGenerator(seed: 2)
        let order = (0..<train.count).shuffled(using: &rng)
        let start = Date()
        for first in stride(from: 0, to: train.count, by: 64) {
            let rows = Array(order[first..<min(first + 64, train.count)])
            step.images = rowsTensor(train, rows, shape: [rows.count, 1, 28, 28])
            step.labels = rows.map { train.labels[$0] }
            step.run()
        }
        let seconds = Date().timeIntervalSince(start)
        print("{\"epoch_s\": \(seconds), \"peak_rss_mb\": \(Memory.peakMB)}")
    }
}

/// The samples `rows` of `data`, as one tensor of `shape`.
func rowsTensor(_ data: LabelledDataset, _ rows: [Int], shape: [Int]) -> Tensor {
    let f = data.featureCount
    var values = [Float](repeating: 0, count: rows.count * f)
    for (i, r) in rows.enumerated() { values[(i * f)..<((i + 1) * f)] = data.features[(r * f)..<((r + 1) * f)] }
    return Tensor(values, shape: shape)
}
