import Foundation
import RLCore
import SeededRandom
import Support
import Training

/// The settings every classifier shares: how it trains, regularizes, augments, validates and stops.
public struct TrainingSettings: Sendable, Equatable {
    public var learningRate = 1e-3
    public var batchSize = 64
    public var epochs = 10
    public var optimizer = "adam"
    public var momentum = 0.9
    public var weightDecay = 0.0
    public var l1 = 0.0
    public var l2 = 0.0
    public var dropout = 0.0
    public var augment = 0
    public var flip = false
    public var validationFraction = 0.0
    public var earlyStoppingPatience = 0
    public var lrSchedule = "constant"
    public var lrStepEpochs = 5
    public var lrGamma = 0.1
    public var loss = "cross_entropy"
    public var trainSubset = 0
    public init() {}
}

/// A classifier's typed config: its own keys plus the shared `training` ones.
public protocol ClassifierConfig: TypedConfig {
    var training: TrainingSettings { get set }
}

extension ClassifierConfig {
    /// The fields of the shared settings, after a model's own.
    static var trainingFields: [ConfigField<Self>] {
        [.double("learning_rate", \.training.learningRate, above: 0, "the optimizer's step size at the start"),
         .int("batch_size", \.training.batchSize, min: 1, max: Limits.batchSize, "images per step"),
         .int("epochs", \.training.epochs, min: 1, max: Limits.dataEpochs, "passes over the training set"),
         .choice("optimizer", \.training.optimizer, ["adam", "adamw", "sgd"], "the optimizer"),
         .double("momentum", \.training.momentum, in: 0...0.999, "SGD's momentum (Nesterov when > 0)"),
         .double("weight_decay", \.training.weightDecay, in: 0...1, "decay of the optimizer (decoupled for adamw, L2 in the gradient otherwise)"),
         .double("l1", \.training.l1, in: 0...1, "λ of an L1 penalty on the weights (with l2: elastic net)"),
         .double("l2", \.training.l2, in: 0...1, "λ of an L2 penalty λ·Σw² on the weights"),
         .double("dropout", \.training.dropout, in: 0...0.95, "dropout probability before the fully connected layers"),
         .int("augment", \.training.augment, min: 0, max: 8, "random shifts of up to this many pixels (pad and crop); 0: none"),
         .bool("flip", \.training.flip, "random horizontal flips (clothes, not digits)"),
         .double("validation_fraction", \.training.validationFraction, in: 0...0.5, "part of the training set held out for validation"),
         .int("early_stopping_patience", \.training.earlyStoppingPatience, min: 0, max: 1 << 20,
              "stop after this many epochs without a better validation loss; 0: never"),
         .choice("lr_schedule", \.training.lrSchedule, ["constant", "cosine", "step"], "learning rate over the epochs"),
         .int("lr_step_epochs", \.training.lrStepEpochs, min: 1, max: 1 << 20, "epochs between the step schedule's decays"),
         .double("lr_gamma", \.training.lrGamma, in: 0...1, "factor of each step-schedule decay"),
         .choice("loss", \.training.loss, ["cross_entropy", "hinge", "focal"], "the training loss"),
         .int("train_subset", \.training.trainSubset, min: 0, max: 1 << 30,
              "train on this many training images drawn from the seed; 0: all")]
    }
}

/// A classifier network: `body` maps a batch of flattened images `[n, features]` to features (LeNet's 84), `head` maps
/// those to class logits. They are apart so that the generative-model scorer can read the features.
public final class ClassifierNetwork: Layer {
    public let body: Sequential
    public let head: Linear
    /// The dropout layers, whose generators checkpoints keep so that a resumed run drops the same units.
    public let dropouts: [Dropout]
    /// `[channels, height, width]` for convolutional bodies, which take `[n, c, h, w]`; nil for an MLP.
    let imageShape: [Int]?

    init(body: [any Layer], head: Linear, imageShape: [Int]? = nil) {
        self.body = Sequential(body)
        self.head = head
        self.imageShape = imageShape
        dropouts = body.compactMap { $0 as? Dropout }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { head(features(x)) }

    /// The body's output for a batch of flattened images `[n, features]`.
    public func features(_ x: Tensor) -> Tensor {
        // Reshaped here rather than by an Unflatten layer: a Sequential outside a graph expects rank-2 inputs to stay
        // rank 2 through every layer.
        body(imageShape.map { x.reshaped([x.shape[0]] + $0) } ?? x)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        prefixed("body", body.namedParameters()) + prefixed("head", head.namedParameters())
    }

    public func namedBuffers() -> [(name: String, tensor: Tensor)] { prefixed("body", body.namedBuffers()) }

    public func setTraining(_ training: Bool) { body.setTraining(training) }

    /// The layers as a JSON list of torch-style descriptions (checkpoint metadata).
    public var layerList: String {
        func describe(_ layer: any Layer) -> String {
            switch layer {
            case let l as Linear: "Linear(\(l.inputSize), \(l.outputSize))"
            case let a as ActivationLayer: a.activation.rawValue
            case let d as Dropout: "Dropout(p=\(d.p))"
            case let b as BatchNorm: "BatchNorm(\(b.numFeatures))"
            case let r as Residual: "Residual(body: [\(describeAll(r.body))], shortcut: [\(r.shortcut.map(describeAll) ?? "identity")])"
            case let s as Sequential: s.layers.map(describe).joined(separator: ", ")
            case let c as CustomStringConvertible: c.description
            default: String(describing: type(of: layer))
            }
        }
        func describeAll(_ layer: any Layer) -> String { describe(layer) }
        return jsonString(body.layers.map(describe) + [describe(head)])
    }
}

/// What `rlbench list models` and the run know about a classifier without building one.
public struct ClassifierDescriptor: Sendable {
    public var name: String
    public var summary: String
    public var defaults: [String: ConfigValue]
    public var help: [(key: String, help: String)]
    public var defaultData: String
    /// Builds the network for images of `shape` and `classes`, with its weights from `seed`; the shared settings too.
    let build: @Sendable (HyperParameters, _ shape: [Int], _ classes: Int, _ seed: UInt64) throws -> (ClassifierNetwork, TrainingSettings)

    init<C: ClassifierConfig>(name: String, summary: String, config: C.Type, defaultData: String,
                              build: @escaping @Sendable (C, [Int], Int, inout SeededGenerator) throws -> ClassifierNetwork) {
        self.name = name; self.summary = summary; self.defaultData = defaultData
        defaults = C.defaults
        help = C.fields.map { ($0.key, $0.help) }
        self.build = { settings, shape, classes, seed in
            let config = try C(settings)
            var rng = SeededGenerator(seed: seed)
            return (try build(config, shape, classes, &rng), config.training)
        }
    }
}

/// The classifiers by command-line name.
public enum ClassifierCatalog {
    public static let all: [ClassifierDescriptor] = [MLPClassifier.descriptor, LeNet.descriptor, ResNet.descriptor]
    public static var names: [String] { all.map(\.name) }

    public static func model(named name: String) throws -> ClassifierDescriptor {
        guard let d = all.first(where: { $0.name == name }) else { throw ClassifierError.unknownModel(name, known: names) }
        return d
    }
}

public enum ClassifierError: Error, CustomStringConvertible {
    case unknownModel(String, known: [String])
    case unsuitableData(String)
    case badCheckpoint(String)
    case nonFinite(epoch: Int, step: Int)
    case interrupted(epoch: Int)

    public var description: String {
        switch self {
        case let .unknownModel(name, known): "unknown classifier '\(name)'; known: \(known.joined(separator: ", "))"
        case let .unsuitableData(message), let .badCheckpoint(message): message
        case let .nonFinite(epoch, step): "the loss became NaN or infinite at step \(step) (epoch \(epoch)); try a lower learning_rate"
        case let .interrupted(epoch): "interrupted during epoch \(epoch)"
        }
    }
}

/// Dropout layers draw from streams of their own, derived from the seed and their position.
private func dropout(_ p: Double, index: Int, seed rng: inout SeededGenerator) -> [any Layer] {
    p > 0 ? [Dropout(Float(p), seed: rng.next() &+ UInt64(index))] : []
}

private var relu: ActivationLayer { ActivationLayer(.relu) }

/// Images need `[channels, height, width]`; points do not make sense for these networks.
private func imageShape(_ shape: [Int], _ model: String) throws -> (c: Int, h: Int, w: Int) {
    guard shape.count == 3 else { throw ClassifierError.unsuitableData("\(model) classifies images; this data set holds \(shape) vectors") }
    return (shape[0], shape[1], shape[2])
}

// MARK: - Models

/// A multilayer perceptron on the flattened pixels, ReLU between layers.
public enum MLPClassifier {
    public struct Config: ClassifierConfig {
        public var hidden = [256, 128]
        public var training = TrainingSettings()
        public init() {}
        public static var fields: [ConfigField<Config>] {
            [.sizes("hidden", \.hidden, "hidden layer sizes")] + trainingFields
        }
    }

    public static let descriptor = ClassifierDescriptor(
        name: "mlp", summary: "multilayer perceptron on the pixels (ReLU)", config: Config.self, defaultData: "digits") { config, shape, classes, rng in
        var layers: [any Layer] = [], width = shape.reduce(1, *)
        for (i, size) in config.hidden.enumerated() {
            layers += [Linear(width, size, using: &rng), relu] + dropout(config.training.dropout, index: i, seed: &rng)
            width = size
        }
        return ClassifierNetwork(body: layers, head: Linear(width, classes, using: &rng))
    }
}

/// LeNet-5 (LeCun et al. 1998) as it is usually built today: conv 5×5 (pad 2) → 6, ReLU, max-pool 2, conv 5×5 → 16,
/// ReLU, max-pool 2, then 120, 84 and the classes. On images under 20 pixels (the 8×8 digits) the second convolution
/// is padded too, so that the maps stay large enough to pool.
public enum LeNet {
    public struct Config: ClassifierConfig {
        public var training = TrainingSettings()
        public init() {}
        public static var fields: [ConfigField<Config>] { trainingFields }
    }

    /// The size of the features the body gives (the input of the last layer).
    public static let featureSize = 84

    public static let descriptor = ClassifierDescriptor(
        name: "lenet", summary: "LeNet-5 (two 5×5 convolutions with max pooling, then 120-84 fully connected, ReLU)",
        config: Config.self, defaultData: "mnist") { config, shape, classes, rng in
        let (c, h, w) = try imageShape(shape, "lenet")
        guard h >= 4, w >= 4 else { throw ClassifierError.unsuitableData("lenet needs images of at least 4×4, not \(h)×\(w)") }
        let pad2 = min(h, w) < 20 ? 2 : 0
        let (h2, w2) = ((h / 2 + 2 * pad2 - 4) / 2, (w / 2 + 2 * pad2 - 4) / 2)
        let p = config.training.dropout
        let body: [any Layer] = [Conv2d(c, 6, kernelSize: 5, padding: 2, using: &rng), relu, MaxPool2d(kernelSize: 2),
                                 Conv2d(6, 16, kernelSize: 5, padding: Size2D(integerLiteral: pad2), using: &rng), relu,
                                 MaxPool2d(kernelSize: 2), Flatten()]
            + dropout(p, index: 0, seed: &rng) + [Linear(16 * h2 * w2, 120, using: &rng), relu]
            + dropout(p, index: 1, seed: &rng) + [Linear(120, featureSize, using: &rng), relu]
        return ClassifierNetwork(body: body, head: Linear(featureSize, classes, using: &rng), imageShape: shape)
    }
}

/// A small ResNet (He et al. 2016) of basic blocks: a 3×3 stem, then stages of blocks (two 3×3 convolutions with batch
/// norm, added to the input), each stage after the first halving the map and widening it (1×1 convolution shortcut),
/// global average pooling and one linear layer.
public enum ResNet {
    public struct Config: ClassifierConfig {
        public var widths = [16, 32, 64]
        public var blocks = 1
        public var training = TrainingSettings()
        public init() {}
        public static var fields: [ConfigField<Config>] {
            [.sizes("widths", \.widths, max: 1024, "channels of each stage (each after the first halves the map)"),
             .int("blocks", \.blocks, min: 1, max: 16, "basic blocks per stage")] + trainingFields
        }
    }

    public static let descriptor = ClassifierDescriptor(
        name: "resnet", summary: "small ResNet of basic blocks (batch norm, identity shortcuts, global average pooling)",
        config: Config.self, defaultData: "fashion-mnist") { config, shape, classes, rng in
        let (c, _, _) = try imageShape(shape, "resnet")
        guard let first = config.widths.first else { throw ClassifierError.unsuitableData("resnet needs at least one stage in widths") }
        func conv(_ i: Int, _ o: Int, _ k: Int, stride: Int, rng: inout SeededGenerator) -> [any Layer] {
            [Conv2d(i, o, kernelSize: Size2D(integerLiteral: k), stride: Size2D(integerLiteral: stride),
                    padding: Size2D(integerLiteral: k / 2), bias: false, using: &rng), BatchNorm2d(o)]
        }
        var layers: [any Layer] = conv(c, first, 3, stride: 1, rng: &rng) + [relu]
        var width = first
        for (stage, out) in config.widths.enumerated() {
            for block in 0..<config.blocks {
                let stride = stage > 0 && block == 0 ? 2 : 1
                let body = Sequential(conv(width, out, 3, stride: stride, rng: &rng) + [relu] + conv(out, out, 3, stride: 1, rng: &rng))
                let shortcut = stride != 1 || width != out ? Sequential(conv(width, out, 1, stride: stride, rng: &rng)) : nil
                layers += [Residual(body, shortcut: shortcut), relu]
                width = out
            }
        }
        layers += [AdaptiveAvgPool2d(1), Flatten()] + dropout(config.training.dropout, index: 0, seed: &rng)
        return ClassifierNetwork(body: layers, head: Linear(width, classes, using: &rng), imageShape: shape)
    }
}
