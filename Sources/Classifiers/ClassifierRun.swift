import Datasets
import Foundation
import Imaging
import RLCore
import SeededRandom
import Support
import Training

/// The options of a classifier's run.
public typealias ClassifierRunOptions = DataRunOptions

/// One classifier's training run, designed as `GenerativeRun`. It writes the run folder:
///
/// - `config.yml`, `metrics.csv` (one row per epoch: `epoch,train_loss,train_accuracy,val_loss,val_accuracy,
///   learning_rate,wall_time_s`; the validation columns are empty without `validation_fraction`)
/// - `checkpoints/step_<N>.safetensors` after every epoch, `last.safetensors`, `final.safetensors`: the network
///   (`body.*`, `head.*`), the optimizer state (`optimizer.*`) and metadata naming the model, data, seed, settings
///   and layers
/// - `learning_curve.png`, `confusion_matrix.png` (test set), `eval.json` (test accuracy, loss, per-class accuracy)
///
/// Same seed, same bytes: the weights, the training subset and the validation split come from the seed, each epoch's
/// batch order from (seed, epoch), and the augmentation and dropout from generators whose states every checkpoint
/// keeps, so a run resumed from any checkpoint (even one saved by Ctrl-C mid-epoch) continues as the uninterrupted run.
public final class ClassifierRun {
    /// The tuned settings shipped with rlbench: `Sources/Classifiers/Configs/<model>/<data>.yml`.
    public static let tunedConfigs = TunedConfigs(.module)
    public static let metricColumns = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "wall_time_s"]

    public let options: ClassifierRunOptions
    public let descriptor: ClassifierDescriptor
    public let settings: HyperParameters
    public let training: TrainingSettings
    public let network: ClassifierNetwork
    public let train: LabelledDataset
    public let validation: LabelledDataset?
    public let test: LabelledDataset
    public let epochs: Int
    /// Called after every epoch with the metrics so far (on the training thread).
    public var onEpoch: ((_ epoch: Int, _ history: [[String: Double]]) -> Void)?
    /// Called after every optimization step with the steps done so far.
    public var onStep: ((_ step: Int) -> Void)?
    /// Asked before every step whether to stop (saving a checkpoint first): a stop signal (`StopRequest`) by default.
    public var shouldStop: () -> Bool = { StopRequest.isRequested }

    private let optimizer: any Optimizer
    private let penalized: [Tensor]
    private let folder: RunFolder
    private var progress: ProgressReporter
    /// Draws the augmentation (shifts, flips).
    private var noise: SeededGenerator
    private var epochsDone = 0, batchesDone = 0, stepsDone = 0
    /// The current epoch's running sums (kept by mid-epoch checkpoints, so resumed metrics match too).
    private var lossSum = 0.0, correct = 0, seen = 0
    private var bestValidationLoss = Double.infinity, staleEpochs = 0, stoppedEarly = false
    private var history: [[String: Double]] = []
    private var earlierWallSeconds = 0.0
    private let startTime = Date()
    /// What the run says when it starts, about the folder: a fallback checkpoint resumed, an earlier run started over,
    /// a finished run with only its outputs left to write.
    private var folderNote: String?

    /// Resolves the model, its settings and the data; throws clear errors for an unknown model or data set, bad
    /// settings and (with `resume`) a folder without a matching run.
    public init(_ options: ClassifierRunOptions) throws {
        var options = options
        folder = RunFolder(options.outputDirectory)
        let (resumed, note) = try options.openFolder(folder, kind: .classifier)
        folderNote = note
        self.options = options
        descriptor = try ClassifierCatalog.model(named: options.model)
        let hp = try options.settings(defaults: descriptor.defaults, tuned: Self.tunedConfigs, folder: folder)
        settings = hp

        let data = try Datasets.load(options.data, directory: options.dataDirectory, seed: options.seed)
        guard data.train.isImage else {
            throw ClassifierError.unsuitableData("\(options.data) holds 2-D points from a mixture; classifiers train on images "
                                                 + "(digits, mnist, fashion-mnist)")
        }
        (network, training) = try descriptor.build(hp, data.train.sampleShape, data.train.classCount, options.seed)
        epochs = training.epochs
        (train, validation) = Self.carve(data.train, training, seed: options.seed)
        test = data.test
        guard train.count > 0 else { throw ClassifierError.unsuitableData("no training images are left after the validation split") }

        let parameters = network.namedParameters()
        let lr = Float(training.learningRate), decay = Float(training.weightDecay)
        switch training.optimizer {
        case "adamw": optimizer = Adam.adamW(parameters, learningRate: lr, weightDecay: decay)
        case "sgd": optimizer = SGD(parameters, learningRate: lr, momentum: Float(training.momentum), weightDecay: decay,
                                    nesterov: training.momentum > 0)
        default: optimizer = Adam(parameters, learningRate: lr, weightDecay: decay)
        }
        // Weights of convolutions and linear layers; biases and batch-norm scales are not penalized.
        penalized = parameters.map(\.tensor).filter { $0.rank >= 2 }
        noise = SeededGenerator(seed: options.seed &+ 0x6175676D656E74) // "augment"
        progress = ProgressReporter(options.progress)
        if let resumed { try restore(resumed) }
    }

    /// The training images (a subset drawn from the seed, if asked) and the validation images carved from them.
    static func carve(_ all: LabelledDataset, _ training: TrainingSettings,
                      seed: UInt64) -> (train: LabelledDataset, validation: LabelledDataset?) {
        var rng = SeededGenerator(seed: seed &+ 0x73706C6974) // "split"
        var rows = rng.permutation(all.count)
        if training.trainSubset > 0 { rows = Array(rows.prefix(training.trainSubset)) }
        let held = Int((Double(rows.count) * training.validationFraction).rounded())
        guard held > 0 else { return (all.subset(rows.sorted()), nil) }
        return (all.subset(Array(rows[held...]).sorted()), all.subset(Array(rows[..<held]).sorted()))
    }

    // MARK: Training

    /// Trains the remaining epochs and writes the run folder; returns what `eval.json` holds. Ctrl-C saves a checkpoint
    /// and throws `interrupted`; a NaN loss keeps the last good checkpoint and throws `nonFinite`.
    @discardableResult
    public func run() throws -> [String: Any] {
        // One owner per run folder, as agents and generative runs (see `RunFolder.claim`).
        let lock = try folder.claim(resuming: options.resume)
        defer { withExtendedLifetime(lock) {} }
        if !options.resume || options.epochs != nil { try folder.writeConfig(settings.yaml) }
        if let folderNote { progress.log(folderNote) }
        let metrics = try MetricsLog(url: folder.metrics, header: Self.metricColumns,
                                     keptRows: history.map { row($0).joined(separator: ",") },
                                     tensorboard: settings.tensorboardLog.map(folder.tensorboardDirectory(under:)))
        defer { try? metrics.flush() }
        let batchSize = training.batchSize
        let stepsPerEpoch = (train.count + batchSize - 1) / batchSize
        progress.log("training \(descriptor.name) on \(options.data) (\(train.count) images, \(validation?.count ?? 0) for "
                     + "validation) for \(epochs) epochs of \(stepsPerEpoch) steps (seed \(options.seed)) → \(folder.url.path)")
        let firstStep = stepsDone
        while epochsDone < epochs && !stoppedEarly {
            let epoch = epochsDone + 1
            optimizer.learningRate = Float(learningRate(epoch: epoch))
            network.setTraining(true)
            let order = order(epoch: epoch)
            for start in stride(from: batchesDone * batchSize, to: train.count, by: batchSize) {
                if shouldStop() {
                    try metrics.flush()
                    progress.stopped(at: "in epoch \(epoch)", checkpoint: try saveCheckpoint(named: nil), folder: folder.url)
                    throw ClassifierError.interrupted(epoch: epoch)
                }
                let rows = Array(order[start..<min(start + batchSize, train.count)])
                let loss = step(rows)
                guard loss.isFinite else {
                    try? metrics.flush()
                    progress.finishLine()
                    progress.log(epochsDone > 0 ? "the last good checkpoint is \(folder.last.path) (epoch \(epochsDone))"
                                                : "no checkpoint was saved: the run diverged in its first epoch")
                    throw ClassifierError.nonFinite(epoch: epoch, step: stepsDone + 1)
                }
                batchesDone += 1
                stepsDone += 1
                onStep?(stepsDone)
                drawProgress(epoch: epoch, stepsPerEpoch: stepsPerEpoch, firstStep: firstStep)
            }
            var record: [String: Double] = ["epoch": Double(epoch), "train_loss": lossSum / Double(max(seen, 1)),
                                            "train_accuracy": Double(correct) / Double(max(seen, 1)),
                                            "learning_rate": learningRate(epoch: epoch)]
            if let validation {
                let v = evaluate(validation)
                (record["val_loss"], record["val_accuracy"]) = (v.loss, v.accuracy)
                if v.loss < bestValidationLoss { (bestValidationLoss, staleEpochs) = (v.loss, 0) } else { staleEpochs += 1 }
                stoppedEarly = training.earlyStoppingPatience > 0 && staleEpochs >= training.earlyStoppingPatience
            }
            (epochsDone, batchesDone, lossSum, correct, seen) = (epoch, 0, 0, 0, 0)
            record["wall_time_s"] = wallSeconds
            history.append(record)
            metrics.append(row(record))
            try metrics.flush()
            progress.finishLine()
            progress.log("epoch \(epoch): " + Self.metricColumns.dropFirst().map { "\($0) \(format(record[$0]))" }.joined(separator: ", "))
            if stoppedEarly { progress.log("early stop: no better validation loss for \(staleEpochs) epochs") }
            if epoch < epochs && !stoppedEarly { try saveCheckpoint(named: nil) }
            onEpoch?(epoch, history)
        }
        network.setTraining(false)
        let final = try saveCheckpoint(named: "final.safetensors")
        try writeLearningCurve()
        let result = evaluate(test)
        let perClass = ClassifierPictures.perClassAccuracy(result.confusion)
        try ClassifierPictures.confusionMatrix(result.confusion, title: "\(descriptor.name) on \(options.data) test set")
            .writePNG(to: folder.url.appendingPathComponent("confusion_matrix.png"))
        let report: [String: Any] = ["test_accuracy": result.accuracy, "test_loss": result.loss, "per_class_accuracy": perClass,
                                     "epochs": epochsDone, "stopped_early": stoppedEarly]
        try AtomicFile.write(Data((jsonString(report) + "\n").utf8), to: folder.url.appendingPathComponent("eval.json"))
        progress.log(String(format: "test accuracy %.2f%%, test loss %.4f; final checkpoint %@", result.accuracy * 100,
                            result.loss, final.path))
        return report
    }

    /// One optimization step on the training rows; returns the batch's data loss (without penalties).
    private func step(_ rows: [Int]) -> Double {
        var features = train.rows(rows)
        Augmentation.apply(&features, shape: train.sampleShape, shift: training.augment, flip: training.flip, using: &noise)
        let logits = network(Tensor(features, shape: [rows.count, train.featureCount]))
        let labels = rows.map { train.labels[$0] }
        let dataLoss = Self.loss(training.loss, logits, labels)
        var loss = dataLoss
        if training.l1 > 0 { loss = loss + l1Penalty(penalized, lambda: Float(training.l1)) }
        if training.l2 > 0 { loss = loss + l2Penalty(penalized, lambda: Float(training.l2)) }
        optimizer.zeroGrad()
        loss.backward()
        optimizer.step()
        let value = Double(dataLoss.item)
        lossSum += value * Double(rows.count)
        correct += zip(logits.argmax(axis: 1), labels).filter { $0 == $1 }.count
        seen += rows.count
        return value
    }

    /// The training loss `name` of logits against labels, averaged over the batch.
    static func loss(_ name: String, _ logits: Tensor, _ labels: [Int]) -> Tensor {
        switch name {
        case "hinge": return multiMarginLoss(logits, labels: labels)
        case "focal":
            // Per-class sigmoid focal loss summed over the classes, averaged over the images.
            let targets = Tensor.oneHot(labels, classes: logits.shape[1])
            return sigmoidFocalLoss(logits, targets, reduction: .sum) * (1 / Float(max(labels.count, 1)))
        default: return crossEntropyLoss(logits, labels: labels)
        }
    }

    /// The learning rate of `epoch` (1-based) under the schedule.
    func learningRate(epoch: Int) -> Double {
        let schedule: LearningRateSchedule = switch training.lrSchedule {
        case "cosine": .cosine(tMax: epochs, etaMin: 0)
        case "step": .step(stepSize: training.lrStepEpochs, gamma: training.lrGamma)
        default: .constant
        }
        return schedule.value(base: training.learningRate, step: epoch - 1)
    }

    /// The batch order of `epoch`: a permutation that depends on the seed and the epoch alone.
    private func order(epoch: Int) -> [Int] {
        var rng = SeededGenerator(seed: options.seed &+ 0x6F72646572 &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        return rng.permutation(train.count)
    }

    /// Loss, accuracy and confusion counts (`[true][predicted]`) of the network in evaluation mode.
    public func evaluate(_ data: LabelledDataset) -> (loss: Double, accuracy: Double, confusion: [[Int]]) {
        network.setTraining(false)
        defer { network.setTraining(true) }
        return Self.evaluate(network, data, loss: training.loss)
    }

    static func evaluate(_ network: ClassifierNetwork, _ data: LabelledDataset,
                         loss name: String) -> (loss: Double, accuracy: Double, confusion: [[Int]]) {
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: data.classCount), count: data.classCount)
        var total = 0.0
        Tensor.withoutGrad {
            for start in stride(from: 0, to: data.count, by: 500) {
                let rows = Array(start..<min(start + 500, data.count))
                let logits = network(Tensor(data.rows(rows), shape: [rows.count, data.featureCount]))
                let labels = rows.map { data.labels[$0] }
                total += Double(loss(name, logits, labels).item) * Double(rows.count)
                for (truth, guess) in zip(labels, logits.argmax(axis: 1)) { confusion[truth][guess] += 1 }
            }
        }
        let right = (0..<data.classCount).reduce(0) { $0 + confusion[$1][$1] }
        return (total / Double(max(data.count, 1)), Double(right) / Double(max(data.count, 1)), confusion)
    }

    // MARK: Files

    private var wallSeconds: Double { earlierWallSeconds + Date().timeIntervalSince(startTime) }

    private func row(_ record: [String: Double]) -> [String] {
        Self.metricColumns.map { key in
            guard let v = record[key], !v.isNaN else { return "" }
            return key == "epoch" ? String(Int(v)) : key == "wall_time_s" ? String(format: "%.3f", v) : "\(v)"
        }
    }

    private func format(_ v: Double?) -> String { v.map { String(format: "%.4g", $0) } ?? "-" }

    private func writeLearningCurve() throws {
        try ClassifierPictures.learningCurve(history, title: "\(descriptor.name) on \(options.data) (seed \(options.seed))")
            .writePNG(to: folder.url.appendingPathComponent("learning_curve.png"))
    }

    /// The checkpoint's metadata: enough to rebuild the network and to continue the run exactly.
    private var metadata: CheckpointMetadata {
        var meta = CheckpointMetadata(dataRun: .classifier, model: descriptor.name, data: options.data, seed: options.seed,
                                      epoch: epochsDone, batch: batchesDone, step: stepsDone)
        meta[.rngState] = noise
        meta[.dropoutStates] = network.dropouts.map(\.generator)
        meta[.epochSums] = EpochSums(lossSum: lossSum, correct: correct, seen: seen)
        meta[.earlyStopping] = EarlyStopping(bestValidationLoss: bestValidationLoss, staleEpochs: staleEpochs, stopped: stoppedEarly)
        meta[.hyperparameters] = settings.json
        meta[.layers] = network.layerList
        meta[.sampleShape] = train.sampleShape
        meta[.classes] = train.classCount
        return meta
    }

    @discardableResult
    private func saveCheckpoint(named name: String?) throws -> URL {
        let tensors = network.stateDict() + prefixed("optimizer", optimizer.stateTensors())
        return try folder.saveCheckpoint(tensors, metadata: metadata, step: stepsDone, named: name)
    }

    /// Continues from the folder's resume point (metadata validated): the network, the optimizer, the generators and
    /// the counters.
    private func restore(_ point: ResumePoint) throws {
        let meta = point.metadata
        let loaded = try SafeTensors.read(from: point.file).tensors
        try network.load(stateDict: loaded.filter { !$0.name.hasPrefix("optimizer.") })
        try optimizer.loadStateTensors(loaded.compactMap {
            $0.name.hasPrefix("optimizer.") ? (name: String($0.name.dropFirst(10)), tensor: $0.tensor) : nil
        })
        let epoch = try meta.value(.epoch), sums = try meta.value(.epochSums), stop = try meta.value(.earlyStopping)
        let states = try meta.value(.dropoutStates)
        guard states.count == network.dropouts.count else {
            throw ClassifierError.badCheckpoint("\(point.file.path) has \(states.count) dropout generator states; "
                                                + "the network has \(network.dropouts.count) dropout layers")
        }
        for (layer, state) in zip(network.dropouts, states) { layer.generator = state }
        // A run stopped after its last epoch (while it wrote its final files) has only its outputs left to write.
        guard (epoch < epochs && !stop.stopped) || options.epochs == nil else {
            throw RunFolderError.nothingToResume("the run in \(folder.url.path) has finished after \(epoch) epochs"
                                                 + (stop.stopped ? " (early stopping)" : "; give --epochs above \(epoch) to train it further"))
        }
        if epoch >= epochs || stop.stopped {
            folderNote = (folderNote.map { $0 + "; " } ?? "") + "the run has finished after \(epoch) epochs" + (stop.stopped ? " (early stopping)" : "")
                + ": writing its final checkpoint, pictures and evaluation"
        }
        (epochsDone, batchesDone, stepsDone, noise) = (epoch, try meta.value(.batch), try meta.value(.step), try meta.value(.rngState))
        (lossSum, correct, seen) = (sums.lossSum, sums.correct, sums.seen)
        (bestValidationLoss, staleEpochs, stoppedEarly) = (stop.bestValidationLoss, stop.staleEpochs, stop.stopped)
        for line in try MetricsLog.rows(of: folder.metrics) {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == Self.metricColumns.count, let e = Double(fields[0]) else {
                throw RunFolderError.nothingToResume("\(folder.metrics.path) has a malformed row: \(line.prefix(80))")
            }
            guard Int(e) <= epochsDone else { break }
            history.append(Dictionary(uniqueKeysWithValues: zip(Self.metricColumns, fields.map { Double($0) ?? .nan })))
            earlierWallSeconds = Double(fields.last!) ?? 0
        }
    }

    private func drawProgress(epoch: Int, stepsPerEpoch: Int, firstStep: Int) {
        let total = epochs * stepsPerEpoch
        progress.draw(fraction: Double(stepsDone) / Double(total), stats: {
            let rate = Double(stepsDone - firstStep) / max(Date().timeIntervalSince(startTime), 1e-9)
            return "epoch \(epoch)/\(epochs) | step \(stepsDone)/\(total) | "
                + String(format: "loss %.4f | accuracy %.2f%% | %.0f steps/s | ETA %@", lossSum / Double(max(seen, 1)),
                         100 * Double(correct) / Double(max(seen, 1)), rate,
                         formatDuration(rate > 0 ? Double(total - stepsDone) / rate : 0))
        }())
    }
}

extension LabelledDataset {
    /// The features of `rows`, one after another (a batch's input).
    func rows(_ rows: [Int]) -> [Float] {
        let f = featureCount
        var out = [Float](repeating: 0, count: rows.count * f)
        features.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (i, r) in rows.enumerated() {
                    dst.baseAddress!.advanced(by: i * f).update(from: src.baseAddress!.advanced(by: r * f), count: f)
                }
            }
        }
        return out
    }
}

/// Random shifts (pad with zeros and crop, as torchvision's `RandomCrop(padding=k)`) and horizontal flips of a batch.
enum Augmentation {
    static func apply(_ batch: inout [Float], shape: [Int], shift: Int, flip: Bool, using rng: inout SeededGenerator) {
        guard shift > 0 || flip else { return }
        let (c, h, w) = (shape[0], shape[1], shape[2])
        let size = c * h * w
        var image = [Float](repeating: 0, count: size)
        for n in 0..<(batch.count / size) {
            let dy = shift > 0 ? rng.nextInt(below: 2 * shift + 1) - shift : 0
            let dx = shift > 0 ? rng.nextInt(below: 2 * shift + 1) - shift : 0
            let mirror = flip && rng.nextInt(below: 2) == 1
            let base = n * size
            for ch in 0..<c {
                for y in 0..<h {
                    let sy = y + dy
                    for x in 0..<w {
                        let sx = (mirror ? w - 1 - x : x) + dx
                        image[(ch * h + y) * w + x] = sy >= 0 && sy < h && sx >= 0 && sx < w ? batch[base + (ch * h + sy) * w + sx] : 0
                    }
                }
            }
            batch.replaceSubrange(base..<(base + size), with: image)
        }
    }
}
