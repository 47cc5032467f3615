import Classifiers
import Datasets
import Foundation
import Imaging
import RLCore
import SeededRandom
import Support
import Training

/// The options of a generative model's run.
public typealias GenerativeRunOptions = DataRunOptions

/// One generative model's training run. It writes the run folder:
///
/// - `config.yml`, `metrics.csv` (one row per epoch: the model's mean losses, then wall time)
/// - `checkpoints/step_<N>.safetensors` after every epoch, `last.safetensors`, `final.safetensors` — self-describing:
///   the generator's layer list, the latent size, the sample shape and the label count are in the metadata
/// - `samples/epoch_<N>.png` (a grid, or a scatter for 2-D data, from one fixed noise batch, so epochs compare),
///   `progress.gif` (those pictures over the epochs), `loss_curve.png`
/// - `eval.json`: the model's quality figures on the test set
///
/// Same seed, same bytes: the weights come from the seed, each epoch's batch order from (seed, epoch), and the
/// training noise from one generator whose state every checkpoint keeps, so a run resumed from any checkpoint
/// (even one saved by Ctrl-C mid-epoch) continues exactly as the uninterrupted run.
public final class GenerativeRun {
    /// The tuned settings shipped with rlbench: `Sources/Generative/Configs/<model>/<data>.yml`.
    public static let tunedConfigs = TunedConfigs(.module)

    public let options: GenerativeRunOptions
    public let descriptor: ModelDescriptor
    public let settings: HyperParameters
    public let model: any GenerativeModel
    public let train: LabelledDataset
    public let test: LabelledDataset
    public let shape: DataShape
    public let epochs: Int
    public let batchSize: Int
    /// Called after every epoch with the fixed-noise samples (`[n, features]`, values in [0, 1] for images) and the
    /// metrics so far; runs on the training thread (the live window takes a copy).
    public var onEpoch: ((_ samples: [Float], _ epoch: Int, _ history: [[String: Double]]) -> Void)?
    /// Asked before every step whether to stop (saving a checkpoint first): a stop signal (`StopRequest`) by default.
    public var shouldStop: () -> Bool = { StopRequest.isRequested }

    private let folder: RunFolder
    private var progress: ProgressReporter
    private var noise: SeededGenerator
    private var epochsDone = 0
    /// Batches of the current epoch already trained (a checkpoint saved by Ctrl-C mid-epoch resumes after them).
    private var batchesDone = 0
    /// The sums of the current epoch's batch losses (its `metrics.csv` row is their mean over `batchesDone`).
    private var lossSums: [String: Double] = [:]
    private var stepsDone = 0
    private var history: [[String: Double]] = []
    private var earlierWallSeconds = 0.0
    private let startTime = Date()
    private var lastGood: (file: URL, epoch: Int)?
    /// What the run says when it starts, about the folder: a fallback checkpoint resumed, an earlier run started over,
    /// a finished run with only its outputs left to write.
    private var folderNote: String?

    /// Resolves the model, its settings and the data; throws clear errors for an unknown model or data set, data
    /// the model cannot train on, bad settings and (with `resume`) a folder without a matching run.
    public init(_ options: GenerativeRunOptions) throws {
        var options = options
        folder = RunFolder(options.outputDirectory)
        let (resumed, note) = try options.openFolder(folder, kind: .generative)
        folderNote = note
        self.options = options
        let type = try ModelCatalog.model(named: options.model)
        descriptor = type.descriptor
        let hp = try options.settings(defaults: descriptor.defaults, tuned: Self.tunedConfigs, folder: folder)
        epochs = try hp.int("epochs", min: 1)
        batchSize = try hp.int("batch_size", min: 1)
        settings = hp

        (train, test) = try Datasets.load(options.data, directory: options.dataDirectory, seed: options.seed)
        if !train.isImage && !descriptor.handlesPoints {
            throw GenerativeError.unsuitableData("\(descriptor.name) models images; \(options.data) holds 2-D points (use gan)")
        }
        if try hp.bool("conditional"), Datasets.mixtureModes(options.data).count > 0 {
            throw GenerativeError.unsuitableData("conditional=true needs labelled data; \(options.data) has no labels")
        }
        shape = DataShape(sample: train.sampleShape, classCount: train.classCount)
        model = try type.init(settings: hp, shape: shape, seed: options.seed)
        noise = SeededGenerator(seed: options.seed &+ 0x6E6F697365) // "noise"
        progress = ProgressReporter(options.progress)

        if let resumed {
            let meta = resumed.metadata
            try model.restore(try SafeTensors.read(from: resumed.file).tensors)
            let epoch = try meta.value(.epoch)
            // A run stopped after its last epoch (while it wrote its final files) has only its outputs left to write.
            guard epoch < epochs || options.epochs == nil else {
                throw RunFolderError.nothingToResume("the run in \(folder.url.path) has done \(epoch) epochs, --epochs "
                                                     + "\(epochs) is no more; give --epochs above \(epoch) to train it further")
            }
            if epoch >= epochs {
                folderNote = (folderNote.map { $0 + "; " } ?? "") + "the run has done all its \(epoch) epochs: "
                    + "writing its final checkpoint, pictures and evaluation (give --epochs above \(epoch) to train it further)"
            }
            (epochsDone, batchesDone, stepsDone, noise) = (epoch, try meta.value(.batch), try meta.value(.step), try meta.value(.rngState))
            // Stored as the bits of each Double, so the resumed epoch's mean is the uninterrupted one's.
            lossSums = meta[.lossSums] ?? [:]
            lastGood = (resumed.file, epoch)
            try readEarlierMetrics()
        }
    }

    /// The metrics rows up to the checkpoint's epoch, which a resumed run keeps and continues.
    private func readEarlierMetrics() throws {
        for line in try MetricsLog.rows(of: folder.metrics) {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
            let columns = metricColumns
            guard fields.count == columns.count, fields.allSatisfy({ $0 != nil }), let epoch = fields[0] else {
                throw RunFolderError.nothingToResume("\(folder.metrics.path) has a malformed row: \(line.prefix(80))")
            }
            guard Int(epoch) <= epochsDone else { break }
            history.append(Dictionary(uniqueKeysWithValues: zip(columns, fields.map { $0! })))
            earlierWallSeconds = fields.last!!
        }
    }

    private var metricColumns: [String] { ["epoch", "step"] + descriptor.losses + ["wall_time_s"] }

    /// The batch order of `epoch`: a permutation that depends on the seed and the epoch alone.
    private func order(epoch: Int) -> [Int] {
        var rng = SeededGenerator(seed: options.seed &+ 0x6F72646572 &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        return rng.permutation(train.count)
    }

    /// The fixed batch the sample pictures come from: 64 noise vectors (and labels 0, 1, … in rows when conditional).
    public lazy var fixedNoise: (noise: Tensor, labels: [Int]?) = {
        var rng = SeededGenerator(seed: options.seed &+ 0x6669786564) // "fixed"
        let n = shape.isImage ? 64 : 2500
        let labels = model.isConditional ? (0..<n).map { $0 / 8 % shape.classCount } : nil
        return (Tensor.normal([n, model.latentSize], using: &rng), labels)
    }()

    /// Trains the remaining epochs and writes the run folder. Ctrl-C saves a checkpoint and throws `interrupted`; a
    /// NaN loss keeps the last good checkpoint and throws `nonFinite`.
    @discardableResult
    public func run() throws -> [String: Double] {
        let lock = try folder.claim(resuming: options.resume)
        defer { withExtendedLifetime(lock) {} }
        try Files.makeDirectory(folder.url.appendingPathComponent("samples"))
        if let folderNote { progress.log(folderNote) }
        if !options.resume || options.epochs != nil { try folder.writeConfig(settings.yaml) }
        let metrics = try MetricsLog(url: folder.metrics, header: metricColumns, keptRows: history.map { row($0).joined(separator: ",") },
                                     tensorboard: settings.tensorboardLog.map(folder.tensorboardDirectory(under:)))
        defer { try? metrics.flush() }
        let stepsPerEpoch = (train.count + batchSize - 1) / batchSize
        progress.log("training \(descriptor.name) on \(options.data) for \(epochs) epochs of \(stepsPerEpoch) steps "
                     + "(seed \(options.seed)) → \(folder.url.path)")
        let firstStep = stepsDone
        model.setTraining(true)
        while epochsDone < epochs {
            let epoch = epochsDone + 1
            let order = order(epoch: epoch)
            for start in stride(from: batchesDone * batchSize, to: train.count, by: batchSize) {
                if shouldStop() {
                    try metrics.flush()
                    progress.stopped(at: "in epoch \(epoch)", checkpoint: try saveCheckpoint(named: nil), folder: folder.url)
                    throw GenerativeError.interrupted(epoch: epoch)
                }
                let rows = Array(order[start..<min(start + batchSize, train.count)])
                let batch = self.batch(train, rows)
                model.trainingRemaining(1 - Double(stepsDone) / Double(epochs * stepsPerEpoch))
                let losses = model.trainStep(batch, using: &noise)
                for (key, value) in losses.sorted(by: { $0.key < $1.key }) where !value.isFinite {
                    try? metrics.flush()
                    progress.finishLine()
                    if let (file, e) = lastGood {
                        progress.log("the last good checkpoint is \(file.path) (epoch \(e)); nothing after it was saved")
                    } else {
                        progress.log("no checkpoint was saved: the run diverged in its first epoch")
                    }
                    throw GenerativeError.nonFinite(epoch: epoch, step: stepsDone + 1, quantity: key)
                }
                for (key, value) in losses { lossSums[key, default: 0] += value }
                batchesDone += 1
                stepsDone += 1
                drawProgress(epoch: epoch, stepsPerEpoch: stepsPerEpoch, firstStep: firstStep, losses: losses)
            }
            model.epochFinished()
            epochsDone = epoch
            var record = lossSums.mapValues { $0 / Double(max(batchesDone, 1)) }
            batchesDone = 0
            lossSums = [:]
            record["epoch"] = Double(epoch)
            record["step"] = Double(stepsDone)
            record["wall_time_s"] = wallSeconds
            history.append(record)
            metrics.append(row(record))
            let samples = try writeSamples(epoch: epoch, tensorboard: metrics.tensorboard)
            try metrics.flush()
            if epoch < epochs { try saveCheckpoint(named: nil) }
            onEpoch?(samples, epoch, history)
        }
        model.setTraining(false)
        let final = try saveCheckpoint(named: "final.safetensors")
        progress.finishLine()
        try writeLossCurve()
        try writeProgressGIF()
        let quality = try evaluate()
        try AtomicFile.write(Data((jsonString(quality) + "\n").utf8), to: folder.url.appendingPathComponent("eval.json"))
        progress.log("evaluation: " + quality.keys.sorted().map { "\($0) \(format(quality[$0]!))" }.joined(separator: ", "))
        progress.log("final checkpoint: \(final.path)")
        return quality
    }

    private var wallSeconds: Double { earlierWallSeconds + Date().timeIntervalSince(startTime) }

    private func row(_ record: [String: Double]) -> [String] {
        metricColumns.map { key in
            let v = record[key] ?? .nan
            return key == "epoch" || key == "step" ? String(Int(v)) : key == "wall_time_s" ? String(format: "%.3f", v) : "\(v)"
        }
    }

    private func format(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(format: "%.4g", v) }

    func batch(_ data: LabelledDataset, _ rows: [Int]) -> Batch {
        let f = data.featureCount
        var features = [Float](repeating: 0, count: rows.count * f)
        data.features.withUnsafeBufferPointer { src in
            features.withUnsafeMutableBufferPointer { dst in
                for (i, r) in rows.enumerated() {
                    dst.baseAddress!.advanced(by: i * f).update(from: src.baseAddress!.advanced(by: r * f), count: f)
                }
            }
        }
        return Batch(features: Tensor(features, shape: [rows.count, f]), labels: rows.map { data.labels[$0] })
    }

    /// The whole test set as one batch.
    private var testBatch: Batch { Batch(features: Tensor(test.features, shape: [test.count, test.featureCount]), labels: test.labels) }

    /// The model's own figures on the test set; for images, how rlbench's LeNet scores 10,000 samples (the fraction
    /// it classifies with confidence above 0.9, the entropy of its predicted classes, the Fréchet distance of its
    /// features from the test images'); for 2-D mixtures, the coverage of 2,500 samples.
    public func evaluate() throws -> [String: Double] {
        var rng = SeededGenerator(seed: options.seed &+ 0x6576616C) // "eval"
        model.setTraining(false)
        var quality = model.evaluate(on: testBatch, using: &rng)
        let modes = Datasets.mixtureModes(options.data)
        if !modes.isEmpty {
            let points = model.generate(noise: Tensor.normal([2500, model.latentSize], using: &rng), labels: nil).data
            let coverage = MixtureCoverage(points: points, modes: modes, std: Datasets.mixtureStd)
            quality["modes_covered"] = Double(coverage.modesCovered)
            quality["modes"] = Double(coverage.modeCount)
            quality["high_quality_fraction"] = coverage.highQualityFraction
        }
        if shape.isImage && options.scoreSamples {
            progress.log("scoring 10,000 samples with rlbench's LeNet for \(options.data)")
            let scorer = try ClassifierScore.scorer(data: options.data, directory: options.dataDirectory)
            var samples: [Float] = []
            for start in stride(from: 0, to: 10_000, by: 500) {
                let labels = model.isConditional ? (start..<(start + 500)).map { $0 % shape.classCount } : nil
                samples += model.generate(noise: Tensor.normal([500, model.latentSize], using: &rng), labels: labels).data
            }
            let score = scorer.score(samples: samples, count: 10_000, reference: scorer.reference)
            quality["classifier_confident_fraction"] = score.confidentFraction
            quality["classifier_entropy"] = score.classEntropy
            quality["frechet_distance"] = score.frechetDistance
        }
        quality["epochs"] = Double(epochsDone)
        return quality
    }

    // MARK: Pictures

    /// The fixed-noise samples of this epoch as `samples/epoch_<N>.png` (and as the TensorBoard image `samples`);
    /// returns the samples.
    private func writeSamples(epoch: Int, tensorboard: TensorBoardLog?) throws -> [Float] {
        model.setTraining(false)
        defer { model.setTraining(true) }
        let (z, labels) = fixedNoise
        let samples = model.generate(noise: z, labels: labels).data
        let image = picture(samples), png = image.pngData()
        try AtomicFile.write(png, to: samplesFile(epoch: epoch))
        tensorboard?.add(image: png, width: image.width, height: image.height, tag: "samples", step: epoch)
        return samples
    }

    func samplesFile(epoch: Int) -> URL {
        folder.url.appendingPathComponent("samples").appendingPathComponent(String(format: "epoch_%04d.png", epoch))
    }

    /// Samples as a grid of images, or a scatter over the modes for 2-D data.
    public func picture(_ samples: [Float]) -> RGBImage {
        if shape.isImage {
            return SampleImages.grid(samples, sampleShape: shape.sample, columns: 8, scale: shape.sample[1] <= 8 ? 6 : 3)
        }
        return SampleImages.scatter(samples, modes: Datasets.mixtureModes(options.data), extent: 5.5)
    }

    private func writeProgressGIF() throws {
        let frames = try (1...epochsDone).compactMap { epoch -> RGBImage? in
            let url = samplesFile(epoch: epoch)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            return try PNG.decode(Files.data(url))
        }
        guard !frames.isEmpty else { return }
        try GIF.write(frames, delayCentiseconds: 40, to: folder.url.appendingPathComponent("progress.gif"))
    }

    private func writeLossCurve() throws {
        let plot = Self.lossPlot(descriptor.losses, history, title: "\(descriptor.name) on \(options.data) (seed \(options.seed))")
        try plot.render().writePNG(to: folder.url.appendingPathComponent("loss_curve.png"))
    }

    /// The mean losses of each epoch so far (`history`: the metrics rows), one line per loss.
    public static func lossPlot(_ losses: [String], _ history: [[String: Double]], title: String) -> LinePlot {
        let palette = [RGB(200, 40, 40), RGB(40, 90, 200), RGB(40, 150, 60), RGB(150, 90, 20)]
        let epochs = history.map { $0["epoch"] ?? 0 }
        let series = losses.enumerated().map { i, key in
            LinePlot.Series(label: key, x: epochs, y: history.map { $0[key] ?? .nan }, color: palette[i % palette.count], lineWidth: 2)
        }
        return LinePlot(title: title, xLabel: "epoch", yLabel: "mean loss", series: series)
    }

    // MARK: Checkpoints

    /// The checkpoint's metadata: enough to rebuild the model (`GenerativeCheckpoint`) and to sample without rlbench.
    private var metadata: CheckpointMetadata {
        var meta = CheckpointMetadata(dataRun: .generative, model: descriptor.name, data: options.data, seed: options.seed,
                                      epoch: epochsDone, batch: batchesDone, step: stepsDone)
        meta[.lossSums] = lossSums
        meta[.rngState] = noise
        meta[.hyperparameters] = settings.json
        meta[.generator] = model.generatorDescription
        meta[.latentSize] = model.latentSize
        meta[.sampleShape] = shape.sample
        meta[.classes] = shape.classCount
        meta[.conditional] = model.isConditional
        return meta
    }

    @discardableResult
    private func saveCheckpoint(named name: String?) throws -> URL {
        let file = try folder.saveCheckpoint(model.state(), metadata: metadata, step: stepsDone, named: name)
        lastGood = (folder.last, epochsDone)
        return file
    }

    // MARK: Progress

    private func drawProgress(epoch: Int, stepsPerEpoch: Int, firstStep: Int, losses: [String: Double]) {
        let total = epochs * stepsPerEpoch
        progress.draw(fraction: Double(stepsDone) / Double(total), stats: {
            let rate = Double(stepsDone - firstStep) / max(Date().timeIntervalSince(startTime), 1e-9)
            let shown = descriptor.losses.prefix(2).map { "\($0) \(String(format: "%.4g", losses[$0] ?? .nan))" }
            return "epoch \(epoch)/\(epochs) | step \(stepsDone)/\(total) | " + shown.joined(separator: " | ")
                + String(format: " | %.0f steps/s | ETA %@", rate, formatDuration(rate > 0 ? Double(total - stepsDone) / rate : 0))
        }())
    }
}
