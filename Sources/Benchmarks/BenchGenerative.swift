import ArgumentParser
import CLIKit
import Datasets
import Foundation
import Generative
import RLCore
import SeededRandom

/// `rlbench bench generative`: the MNIST VAE's epochs, the MLP GAN's and the DCGAN's steps, beside PyTorch with `--torch`.
struct BenchGenerative: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generative",
        abstract: "MNIST VAE epoch seconds and test −ELBO, MLP GAN and DCGAN step µs (--torch: beside PyTorch).",
        discussion: """
        Rows (--json): {"name": "epoch_s", "model": "vae", "data": "mnist", "backend": ..., "value": ..., "test_neg_elbo": ...} \
        (the median epoch of --epochs, training steps alone; the VAE is Sources/Generative's, built by GenerativeRun with \
        its tuned MNIST settings, against the PyTorch examples' vae/main.py), {"name": "peak_rss_mb", ...} of each \
        backend's VAE process, {"name": "step_us", "model": "gan", "data": "digits", ...} (the tuned digits settings, \
        which the PyTorch peer builds too) \
        and {"name": "step_us", "model": "dcgan", "data": "mnist", "batch": 64, ...} (the step of bench layers).
        """)

    @OptionGroup var options: ComparisonOptions

    @Option(parsing: .unconditional, help: "VAE training epochs per backend.")
    var epochs = 10

    @Flag(help: "Skip the VAE epochs.")
    var noVae = false

    @Flag(help: .private)
    var vaeChild = false

    func validate() throws {
        guard epochs > 0 else { throw ValidationError("--epochs must be positive, got \(epochs)") }
    }

    func run() throws {
        let mnist = options.mnist
        if vaeChild {
            try fail { try printVAEEpochs(mnist: mnist) }
            return
        }
        let peak = options.emitMachineAndPeak()
        let session = options.torchSession()
        if !noVae {
            try fail {
                let args = ["bench", "generative", "--vae-child", "--epochs", String(epochs), "--data-dir", mnist]
                emitVAE(try childRecord(args), backend: "core")
                if session != nil { emitVAE(try options.torchRecord(["vae", mnist, String(epochs)]), backend: "pytorch") }
            }
        }
        options.compare([try fail { try GANStep() }], name: "step_us", extra: ["data": "digits"], torch: session, peak: peak)
        let dcgan = DCGANStep(batch: 64, seed: 1)
        let train = try fail { try Datasets.load("mnist", directory: URL(fileURLWithPath: mnist)).train }
        var next = 0
        dcgan.nextReal = {
            if next + 64 > train.count { next = 0 }
            defer { next += 64 }
            return rowsTensor(train, Array(next..<(next + 64)), shape: [64, 1, 28, 28]) * 2 - 1
        }
        options.compare([dcgan], name: "step_us", extra: ["data": "mnist"], torch: session, mnist: mnist, peak: peak)
    }

    private func emitVAE(_ record: [String: Any], backend: String) {
        let json = options.json, seconds = record["epoch_s"] as? Double ?? .nan
        let elbo = record["test_neg_elbo"] as? Double ?? .nan
        let multiplyAdds: Double = 784 * 400 + 2 * 400 * 20 + 20 * 400 + 400 * 784
        let flops = 6 * multiplyAdds * 60_000
        printRecord(json: json, name: "epoch_s", fields: [("model", "vae"), ("data", "mnist"), ("batch", 128), ("backend", backend),
                                                          ("epochs", epochs), ("gflops", rounded(flops / seconds / 1e9)),
                                                          ("test_neg_elbo", rounded(elbo, 3))],
                    value: seconds, unit: "s", label: "VAE MNIST epoch, batch 128, \(backend) (test −ELBO \(String(format: "%.2f", elbo)))")
        printRecord(json: json, name: "peak_rss_mb", fields: [("model", "vae"), ("data", "mnist"), ("backend", backend)],
                    value: record["peak_rss_mb"] as? Double ?? .nan, unit: "MB", label: "peak RSS of the VAE process, \(backend)")
    }

    /// Trains Sources/Generative's VAE (GenerativeRun's model and data, its tuned MNIST settings) for --epochs shuffled
    /// epochs, timing the training steps alone, then its test −ELBO; prints the child's record.
    private func printVAEEpochs(mnist: String) throws {
        let run = try GenerativeRun(generativeOptions(model: "vae", data: "mnist", dataDirectory: URL(fileURLWithPath: mnist)))
        var rng = SeededGenerator(seed: 1)
        var times: [Double] = []
        run.model.setTraining(true)
        for _ in 0..<epochs {
            let order = (0..<run.train.count).shuffled(using: &rng)
            let start = Date()
            for first in stride(from: 0, to: order.count, by: run.batchSize) {
                let rows = Array(order[first..<min(first + run.batchSize, order.count)])
                let batch = Batch(features: rowsTensor(run.train, rows, shape: [rows.count, run.train.featureCount]),
                                  labels: rows.map { run.train.labels[$0] })
                _ = run.model.trainStep(batch, using: &rng)
            }
            times.append(Date().timeIntervalSince(start))
        }
        let quality = try run.evaluate()
        print("{\"epoch_s\": \(median(times)), \"epoch_times\": \(times), \"test_neg_elbo\": \(quality["test_neg_elbo"] ?? .nan), "
              + "\"peak_rss_mb\": \(Memory.peakMB)}")
    }
}

/// A run's options for building (not running) a model: the folder is never written.
func generativeOptions(model: String, data: String, dataDirectory: URL? = nil) -> GenerativeRunOptions {
    var options = GenerativeRunOptions(model: model, data: data, outputDirectory: FileManager.default.temporaryDirectory
        .appendingPathComponent("rlbench-bench-\(model)-\(UUID().uuidString)"))
    options.dataDirectory = dataDirectory
    options.progress = .quiet
    options.scoreSamples = false
    return options
}

/// One step of Sources/Generative's MLP GAN with its tuned settings on the 8×8 digits (packing, dropout and label
/// smoothing included); the PyTorch peer builds the same networks from `peerSettings`.
final class GANStep: TrainingStep {
    let model = "gan", batch: Int
    let training: GenerativeRun
    let config: GAN.Config
    let features: Int
    var rng = SeededGenerator(seed: 3)
    var next = 0

    /// G forward twice (once without gradients), D forward three times on packed rows; backward = twice forward.
    var flops: Double {
        let g = macs([config.game.latentSize] + config.generatorHidden + [features])
        let d = macs([features * config.pack] + config.discriminatorHidden + [1])
        return 2 * (4 * Double(batch) * g + 9 * Double(batch / config.pack) * d)
    }

    var peerSettings: String? {
        let settings: [String: Any] = [
            "latent": config.game.latentSize, "features": features, "generator": config.generatorHidden,
            "discriminator": config.discriminatorHidden, "pack": config.pack, "dropout": config.dropout,
            "label_smoothing": config.game.labelSmoothing, "beta1": config.game.beta1,
            "learning_rate": config.training.learningRate, "generator_learning_rate": config.generatorLearningRate,
            "generator_average": config.game.generatorAverage]
        // JSONSerialization writes no spaces, so the settings stay one field of the session's line.
        return (try? JSONSerialization.data(withJSONObject: settings, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) }
    }

    init() throws {
        training = try GenerativeRun(generativeOptions(model: "gan", data: "digits"))
        guard let gan = training.model as? GAN else { throw ValidationError("bench generative: the gan model is not GAN.swift's") }
        config = gan.config
        features = training.train.featureCount
        batch = training.batchSize
        training.model.setTraining(true)
    }

    /// Multiply-adds of one row through dense layers of these widths.
    private func macs(_ widths: [Int]) -> Double { zip(widths, widths.dropFirst()).reduce(0) { $0 + Double($1.0 * $1.1) } }

    func run() {
        let train = training.train
        if next + batch > train.count { next = 0 }
        defer { next += batch }
        let rows = Array(next..<(next + batch))
        let features = rowsTensor(train, rows, shape: [batch, train.featureCount])
        _ = training.model.trainStep(Batch(features: features, labels: rows.map { train.labels[$0] }), using: &rng)
    }
}
