import Foundation
import RLCore
import SeededRandom
import Support
import Training

/// What a generative model is trained on: the shape of one sample and, for conditional models, the classes.
public struct DataShape: Sendable, Equatable {
    /// `[channels, height, width]` for images, `[2]` for points.
    public var sample: [Int]
    public var classCount: Int
    public var features: Int { sample.reduce(1, *) }
    public var isImage: Bool { sample.count == 3 }
    public init(sample: [Int], classCount: Int) { self.sample = sample; self.classCount = classCount }
}

/// A minibatch: rows of features (images flattened, pixels in [0, 1]) and their labels.
public struct Batch {
    public var features: Tensor
    public var labels: [Int]
    public var count: Int { labels.count }

    public init(features: Tensor, labels: [Int]) { self.features = features; self.labels = labels }
}

/// A generative model: one file each (`Autoencoder.swift`, `VAE.swift`, `GAN.swift`), holding its networks, its
/// losses and its training step, like the PyTorch examples. The run (`GenerativeRun`) owns the loop, the data and the
/// run folder.
public protocol GenerativeModel: AnyObject {
    static var descriptor: ModelDescriptor { get }

    /// A fresh model for data of `shape`, from the run's settings (its `TypedConfig`) and `seed`.
    init(settings: HyperParameters, shape: DataShape, seed: UInt64) throws

    /// One optimization step on `batch`, drawing its noise from `rng`; the batch's losses by their
    /// `descriptor.losses` names.
    func trainStep(_ batch: Batch, using rng: inout SeededGenerator) -> [String: Double]

    /// The size of the noise (latent) vector `generate` takes.
    var latentSize: Int { get }

    /// Samples from `noise` `[n, latentSize]` (drawn from a standard normal), conditioned on `labels` when the model
    /// is conditional: `[n, features]` with values in [0, 1] for images, in data units for points.
    func generate(noise: Tensor, labels: [Int]?) -> Tensor

    /// Quality figures on held-out data (a VAE's −ELBO), for `eval.json`; keys are snake_case.
    func evaluate(on test: Batch, using rng: inout SeededGenerator) -> [String: Double]

    /// The trained networks and the optimizer state, by name: what checkpoints store.
    func state() -> [(name: String, tensor: Tensor)]
    /// Restores `state()`.
    func restore(_ tensors: [(name: String, tensor: Tensor)]) throws

    /// The network that turns noise into samples as a JSON layer list (checkpoint metadata, so that a numpy script
    /// can sample without rlbench).
    var generatorDescription: String { get }

    /// Whether labels are fed to the networks.
    var isConditional: Bool { get }

    /// The networks' train/eval switch (dropout, batch norm).
    func setTraining(_ training: Bool)

    /// Called after each epoch's last step.
    func epochFinished()

    /// Called before each step with the fraction of the run's steps still to come (1 at the start, → 0 at the end),
    /// for learning-rate schedules.
    func trainingRemaining(_ fraction: Double)

    /// For an autoencoder: test images and their reconstructions, `[n, features]` each, values in [0, 1].
    func reconstruct(_ images: Tensor, labels: [Int]?) -> Tensor?
}

extension GenerativeModel {
    public func evaluate(on test: Batch, using rng: inout SeededGenerator) -> [String: Double] { [:] }
    public func reconstruct(_ images: Tensor, labels: [Int]?) -> Tensor? { nil }
    public func epochFinished() {}
    public func trainingRemaining(_ fraction: Double) {}
}

/// How a generative model trains, and whether it is conditional: settings every model has, with defaults of its own.
public struct ModelTraining: Sendable {
    public var learningRate: Double
    public var batchSize: Int
    public var epochs: Int
    public var conditional = false

    public init(learningRate: Double, batchSize: Int, epochs: Int) {
        self.learningRate = learningRate; self.batchSize = batchSize; self.epochs = epochs
    }
}

/// A generative model's typed settings: its own keys, then the shared `training` ones.
public protocol ModelConfig: TypedConfig {
    var training: ModelTraining { get set }
}

extension ModelConfig {
    /// The fields of the shared settings, after a model's own.
    static var trainingFields: [ConfigField<Self>] {
        [.double("learning_rate", \.training.learningRate, above: 0, "Adam's step size"),
         .int("batch_size", \.training.batchSize, min: 1, max: Limits.batchSize, "samples per step"),
         .int("epochs", \.training.epochs, min: 1, max: Limits.dataEpochs, "passes over the training set"),
         .bool("conditional", \.training.conditional, "feed the label's one-hot code to both networks")]
    }

    var conditional: Bool { training.conditional }

    /// The inputs a label adds to each network: the class count when conditional, else none.
    func labelInputs(_ shape: DataShape) -> Int { conditional ? shape.classCount : 0 }
}

/// The sizes of a convolutional network that halves an image's side twice with two stride-2 convolutions (or, as a
/// generator, doubles a quarter-size map twice): the image, the two channel counts, and the flattened size of the
/// quarter-size maps.
struct TwoStridedConvolutions {
    let channels: Int, height: Int, width: Int
    let first: Int, second: Int
    var flat: Int { second * (height / 4) * (width / 4) }

    /// Refuses anything but two channel counts, and images whose sides are not multiples of 4.
    init(model: String, shape: DataShape, channels counts: [Int], settings: HyperParameters) throws {
        guard counts.count == 2 else {
            throw ConfigError.badValue(key: "channels", source: settings.sources["channels"] ?? "defaults",
                                       reason: "\(model) has two convolutions a network, so two channel counts, got \(counts)")
        }
        (channels, height, width) = (shape.sample[0], shape.sample[1], shape.sample[2])
        guard height % 4 == 0, width % 4 == 0 else {
            throw GenerativeError.unsuitableData("\(model) halves (or doubles) the image's side twice, so its sides must "
                                                 + "be multiples of 4, not \(height)×\(width)")
        }
        (first, second) = (counts[0], counts[1])
    }
}

/// What `rlbench list models` and the run know about a model without building one.
public struct ModelDescriptor: Sendable {
    /// The command-line name (`vae`, `gan`, ...).
    public var name: String
    public var summary: String
    /// Every setting with its default, and one line of help each.
    public var defaults: [String: ConfigValue]
    public var help: [(key: String, help: String)]
    /// The per-batch losses it reports, averaged over an epoch in `metrics.csv`, in column order.
    public var losses: [String]
    /// Whether it can train on 2-D points (`ring8`, `grid25`) as well as images.
    public var handlesPoints: Bool
    /// The data set `rlbench run <model>` uses when no `--data` is given.
    public var defaultData: String

    public init<C: TypedConfig>(name: String, summary: String, config: C.Type, losses: [String], handlesPoints: Bool,
                                defaultData: String) {
        self.name = name; self.summary = summary
        defaults = C.defaults
        help = C.fields.map { ($0.key, $0.help) }
        self.losses = losses; self.handlesPoints = handlesPoints; self.defaultData = defaultData
    }
}

/// The generative models by command-line name.
public enum ModelCatalog {
    public static let all: [any GenerativeModel.Type] = [Autoencoder.self, VAE.self, ConvVAE.self, GAN.self, DCGAN.self]
    public static var names: [String] { all.map { $0.descriptor.name } }

    public static func model(named name: String) throws -> any GenerativeModel.Type {
        guard let m = all.first(where: { $0.descriptor.name == name }) else {
            throw GenerativeError.unknownModel(name, known: names)
        }
        return m
    }
}

public enum GenerativeError: Error, CustomStringConvertible {
    case unknownModel(String, known: [String])
    case unsuitableData(String)
    case badCheckpoint(String)
    case nonFinite(epoch: Int, step: Int, quantity: String)
    case interrupted(epoch: Int)

    public var description: String {
        switch self {
        case let .unknownModel(name, known): "unknown model '\(name)'; known: \(known.joined(separator: ", "))"
        case let .unsuitableData(message): message
        case let .badCheckpoint(message): message
        case let .nonFinite(epoch, step, quantity): "\(quantity) became NaN or infinite at step \(step) (epoch \(epoch))"
        case let .interrupted(epoch): "interrupted during epoch \(epoch)"
        }
    }
}

// MARK: - Pieces the models share

/// The tensors of `module` under `prefix`, as checkpoints name them.
func prefixedState(_ prefix: String, _ module: Module) -> [(name: String, tensor: Tensor)] {
    prefixed(prefix, module.stateDict())
}

/// Copies checkpoint tensors into `targets` by name, refusing a missing or mis-shaped one.
func load(_ tensors: [(name: String, tensor: Tensor)], into targets: [(name: String, tensor: Tensor)]) throws {
    let byName = Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    for (name, t) in targets {
        guard let source = byName[name] else { throw GenerativeError.badCheckpoint("the checkpoint has no tensor '\(name)'") }
        guard source.shape == t.shape else {
            throw GenerativeError.badCheckpoint("'\(name)' is \(source.shape) in the checkpoint, the model needs \(t.shape)")
        }
        t.data = source.data
    }
}

/// The features with a one-hot label block appended (`[n, f + classes]`), or the features alone when `labels` is nil:
/// how conditional models feed the label to their networks.
func conditioned(_ x: Tensor, _ labels: [Int]?, classes: Int) -> Tensor {
    guard let labels else { return x }
    return Tensor.concat([x, Tensor.oneHot(labels, classes: classes)], axis: 1)
}

/// A JSON layer list for checkpoint metadata: `net`'s layers under `prefix`, with extra layer objects before and
/// after (a sigmoid on a decoder's logits).
func describe(_ net: Sequential, prefix: String, before: [String] = [], after: [String] = []) -> String {
    let inner = String(net.layerDescription(prefix: prefix).dropFirst().dropLast())
    return "[" + (before + [inner] + after).joined(separator: ", ") + "]"
}

/// The tensors named `prefix.<name>`, as `<name>`.
func unprefixed(_ prefix: String, _ tensors: [(name: String, tensor: Tensor)]) -> [(name: String, tensor: Tensor)] {
    tensors.compactMap { $0.name.hasPrefix(prefix + ".") ? (name: String($0.name.dropFirst(prefix.count + 1)), tensor: $0.tensor) : nil }
}

/// Adam with the model's settings over `module`'s parameters, names prefixed as in checkpoints.
func adam(_ prefix: String, _ module: Module, learningRate: Double, beta1: Double = 0.9, beta2: Double = 0.999) -> Adam {
    Adam(prefixed(prefix, module.namedParameters()), learningRate: Float(learningRate), beta1: Float(beta1), beta2: Float(beta2))
}
