import Foundation
import RLCore
import SeededRandom
import Training

/// A generative adversarial network (Goodfellow et al. 2014). The discriminator D learns to tell data
/// from the generator's samples; the generator G learns to fool it:
///
///     D step:  minimize  BCE(D(x), 1 − smoothing) + BCE(D(G(z)), 0)
///     G step:  minimize  BCE(D(G(z)), 1)            (non-saturating, the default)
///          or  minimize  −BCE(D(G(z)), 0) = log(1 − D(G(z)))   (the original minimax loss)
///
/// with z ~ N(0, I). Images are scaled to [−1, 1] for the generator's tanh output; 2-D points (`ring8`, `grid25`)
/// are modelled as they are, with a linear output. One-sided label smoothing (real targets 1 − s), dropout in the
/// discriminator, and packing (PacGAN, Lin et al. 2018: the discriminator judges `pack` samples at once, which makes
/// a collapsed generator easy to spot) are options. This protocol's extension is that game, written once for `GAN` (MLPs) and `DCGAN`
/// (convolutions); a model supplies its networks through `generated` and `judged`.
public protocol AdversarialModel: GenerativeModel {
    associatedtype Config: AdversarialConfig
    var config: Config { get }
    /// Samples in the model's range from noise `[n, latentSize]`, as rows `[n, features]`.
    func generated(_ z: Tensor, _ labels: [Int]?) -> Tensor
    /// The discriminator's logits `[m, 1]` for rows `[n, features]` in the model's range (m = n, or fewer when the
    /// discriminator judges packs of samples).
    func judged(_ x: Tensor, _ labels: [Int]?) -> Tensor
    /// The networks, by checkpoint prefix.
    var networks: [(name: String, module: Module)] { get }
    var generatorOptimizer: Adam { get }
    var discriminatorOptimizer: Adam { get }
    /// Dropout layers of the discriminator, whose masks each step draws from the run's generator.
    var dropoutLayers: [Dropout] { get }
    var shape: DataShape { get }
    /// The generator's moving average that samples come from, when `generator_average` is above 0.
    var generatorAverage: ExponentialMovingAverage? { get }
}

/// The settings of the game every GAN plays, with a model's own latent size.
public struct AdversarialSettings: Sendable {
    public var latentSize: Int
    /// `non_saturating` or `minimax`.
    public var generatorLoss = "non_saturating"
    /// One-sided: the real samples' target is 1 − this.
    public var labelSmoothing = 0.0
    public var beta1 = 0.5
    /// The generator's Adam step size; 0 takes the training's `learning_rate`, as both networks share it by default.
    public var generatorLearningRate = 0.0
    /// The decay of the generator's moving average (0: samples come from the last step's weights).
    public var generatorAverage = 0.0
    /// Both players' step sizes fall linearly to 0 over the run.
    public var learningRateDecay = false

    public init(latentSize: Int) { self.latentSize = latentSize }
}

/// A GAN's typed settings: its networks' own keys, then the game's and the training's.
public protocol AdversarialConfig: ModelConfig {
    var game: AdversarialSettings { get set }
}

extension AdversarialConfig {
    /// The generator's step size: its own when set (InfoGAN's 1e-3 against the discriminator's 2e-4), else the shared one.
    public var generatorLearningRate: Double { game.generatorLearningRate > 0 ? game.generatorLearningRate : training.learningRate }
}

extension AdversarialConfig {
    /// The fields of the game's settings and the training's, after a model's own.
    static var adversarialFields: [ConfigField<Self>] {
        [.int("latent_size", \.game.latentSize, min: 1, max: 4096, "dimensions of the noise z"),
         .choice("generator_loss", \.game.generatorLoss, ["non_saturating", "minimax"], "the generator's objective"),
         .double("label_smoothing", \.game.labelSmoothing, in: 0...0.5, "one-sided: real images' target is 1 − this"),
         .double("beta1", \.game.beta1, in: 0...0.999, "Adam's β₁, both networks"),
         .double("generator_learning_rate", \.game.generatorLearningRate, in: 0...1,
                 "the generator's Adam step size (0: learning_rate, as the discriminator's)"),
         .double("generator_average", \.game.generatorAverage, in: 0...0.9999,
                 "samples come from a moving average of the generator's weights with this decay (0: the last step's)"),
         .bool("learning_rate_decay", \.game.learningRateDecay, "decay both learning rates linearly to 0 over the run")]
            + trainingFields
    }
}

extension AdversarialModel {
    public var latentSize: Int { config.game.latentSize }
    public var isConditional: Bool { config.conditional }

    /// Images in [0, 1] become [−1, 1], the range of the generator's tanh; points stay as they are.
    func toModelRange(_ x: Tensor) -> Tensor { shape.isImage ? x * 2 - 1 : x }

    public func trainStep(_ batch: Batch, using rng: inout SeededGenerator) -> [String: Double] {
        let n = batch.count
        let labels = isConditional ? batch.labels : nil
        let real = toModelRange(batch.features)
        // The dropout masks come from the run's generator, whose state checkpoints keep (so a resume is exact).
        for dropout in dropoutLayers { dropout.generator = rng.fork() }

        // Discriminator: real towards 1 − smoothing, generated towards 0.
        let fake = Tensor.withoutGrad { generated(Tensor.normal([n, latentSize], using: &rng), labels) }
        let realLogits = judged(real, labels)
        let fakeLogits = judged(fake, labels)
        let realTarget = Tensor.full(Float(1 - config.game.labelSmoothing), shape: realLogits.shape)
        let dLoss = binaryCrossEntropyWithLogits(realLogits, realTarget)
            + binaryCrossEntropyWithLogits(fakeLogits, Tensor.zeros(fakeLogits.shape))
        discriminatorOptimizer.zeroGrad()
        dLoss.backward()
        discriminatorOptimizer.step()

        // Generator: through the updated discriminator, on fresh noise.
        let logits = judged(generated(Tensor.normal([n, latentSize], using: &rng), labels), labels)
        let gLoss = config.game.generatorLoss == "minimax"
            ? binaryCrossEntropyWithLogits(logits, Tensor.zeros(logits.shape)) * -1
            : binaryCrossEntropyWithLogits(logits, Tensor.ones(logits.shape))
        generatorOptimizer.zeroGrad()
        gLoss.backward()
        generatorOptimizer.step()
        generatorAverage?.update()

        func meanProbability(_ logits: Tensor) -> Double {
            logits.data.reduce(0.0) { $0 + 1 / (1 + Foundation.exp(-Double($1))) } / Double(logits.count)
        }
        return ["d_loss": Double(dLoss.item), "g_loss": Double(gLoss.item),
                "d_real": meanProbability(realLogits), "d_fake": meanProbability(fakeLogits)]
    }

    public func generate(noise: Tensor, labels: [Int]?) -> Tensor {
        let sample = { [self] in
            Tensor.withoutGrad {
                let x = generated(noise, isConditional ? labels : nil)
                return shape.isImage ? (x + 1) * 0.5 : x
            }
        }
        return generatorAverage?.withAveragedValues(sample) ?? sample()
    }

    /// Where checkpoints keep the weights that samples come from.
    var samplingPrefix: String { generatorAverage == nil ? "generator" : "generator_average" }

    var parameterState: [(name: String, tensor: Tensor)] {
        networks.flatMap { prefixedState($0.name, $0.module) } + prefixed("generator_average", generatorAverage?.averages ?? [])
    }

    public func state() -> [(name: String, tensor: Tensor)] {
        parameterState + prefixed("optimizer.generator", generatorOptimizer.stateTensors())
            + prefixed("optimizer.discriminator", discriminatorOptimizer.stateTensors())
    }

    public func restore(_ tensors: [(name: String, tensor: Tensor)]) throws {
        try load(tensors, into: parameterState)
        try generatorOptimizer.loadStateTensors(unprefixed("optimizer.generator", tensors))
        try discriminatorOptimizer.loadStateTensors(unprefixed("optimizer.discriminator", tensors))
    }

    public func setTraining(_ training: Bool) { for (_, m) in networks { m.setTraining(training) } }

    /// With `learning_rate_decay`, each player's step size falls linearly to 0 over the run: the samples settle.
    public func trainingRemaining(_ fraction: Double) {
        guard config.game.learningRateDecay else { return }
        generatorOptimizer.learningRate = Float(config.generatorLearningRate * fraction)
        discriminatorOptimizer.learningRate = Float(config.training.learningRate * fraction)
    }

    /// The generator's moving average, if the config asks for one.
    static func average(of generator: Module, _ config: Config) -> ExponentialMovingAverage? {
        config.game.generatorAverage > 0 ? ExponentialMovingAverage(of: generator, decay: Float(config.game.generatorAverage)) : nil
    }

    /// Adam with the game's β₁ over one player's `networks`.
    static func optimizer(_ networks: [(name: String, module: Module)], _ config: Config, generator: Bool) -> Adam {
        let rate = generator ? config.generatorLearningRate : config.training.learningRate
        return Adam(networks.flatMap { prefixed($0.name, $0.module.namedParameters()) },
                    learningRate: Float(rate), beta1: Float(config.game.beta1))
    }
}

/// The GAN of two MLPs: a ReLU generator (tanh output for images, linear for points) and a LeakyReLU(0.2)
/// discriminator, each with the label's one-hot code appended to its input when conditional.
public final class GAN: AdversarialModel {
    public struct Config: AdversarialConfig {
        public var generatorHidden = [256, 256]
        public var discriminatorHidden = [256, 256]
        public var dropout = 0.0
        public var pack = 1
        public var game = AdversarialSettings(latentSize: 64)
        public var training = ModelTraining(learningRate: 2e-4, batchSize: 64, epochs: 50)
        public init() {}

        public static var fields: [ConfigField<Config>] {
            [.sizes("generator_hidden", \.generatorHidden, "hidden layer sizes of the generator (ReLU)"),
             .sizes("discriminator_hidden", \.discriminatorHidden, "hidden layer sizes of the discriminator (LeakyReLU 0.2)"),
             .double("dropout", \.dropout, in: 0...0.9, "dropout after each hidden layer of the discriminator (0: none)"),
             .int("pack", \.pack, min: 1, max: 16, "samples the discriminator judges together (PacGAN; 1: one at a time)")]
                + adversarialFields
        }
    }

    public static let descriptor = ModelDescriptor(
        name: "gan", summary: "generative adversarial network (MLP generator and discriminator)",
        config: Config.self, losses: ["d_loss", "g_loss", "d_real", "d_fake"], handlesPoints: true, defaultData: "digits")

    public let config: Config
    public let shape: DataShape
    let generator: Sequential
    let discriminator: Sequential
    public let generatorOptimizer: Adam
    public let discriminatorOptimizer: Adam
    public let generatorAverage: ExponentialMovingAverage?

    public var dropoutLayers: [Dropout] { discriminator.layers.compactMap { $0 as? Dropout } }
    public var networks: [(name: String, module: Module)] { [("generator", generator), ("discriminator", discriminator)] }

    public init(settings: HyperParameters, shape: DataShape, seed: UInt64) throws {
        config = try Config(settings)
        self.shape = shape
        var weights = SeededGenerator(seed: seed)
        let labels = config.labelInputs(shape)
        generator = MLP(sizes: [config.game.latentSize + labels] + config.generatorHidden + [shape.features], activation: .relu,
                        outputActivation: shape.isImage ? .tanh : nil, using: &weights)
        var layers: [any Layer] = []
        var width = (shape.features + labels) * config.pack
        for h in config.discriminatorHidden {
            layers += [Linear(width, h, using: &weights), LeakyReLU(slope: 0.2)]
            if config.dropout > 0 { layers.append(Dropout(Float(config.dropout), generator: weights.fork())) }
            width = h
        }
        layers.append(Linear(width, 1, using: &weights))
        discriminator = Sequential(layers)
        generatorOptimizer = Self.optimizer([("generator", generator)], config, generator: true)
        discriminatorOptimizer = Self.optimizer([("discriminator", discriminator)], config, generator: false)
        generatorAverage = Self.average(of: generator, config)
    }

    public func generated(_ z: Tensor, _ labels: [Int]?) -> Tensor { generator(conditioned(z, labels, classes: shape.classCount)) }

    /// With packing, each run of `pack` consecutive rows is one input (a batch's rows beyond a whole pack are left out).
    public func judged(_ x: Tensor, _ labels: [Int]?) -> Tensor {
        let rows = conditioned(x, labels, classes: shape.classCount)
        guard config.pack > 1 else { return discriminator(rows) }
        let packs = rows.shape[0] / config.pack
        let whole = packs * config.pack == rows.shape[0] ? rows : rows.sliced(axis: 0, 0..<(packs * config.pack))
        return discriminator(whole.reshaped([packs, config.pack * rows.shape[1]]))
    }

    /// The generator; images come out of its tanh in [−1, 1] and are mapped to [0, 1].
    public var generatorDescription: String {
        describe(generator, prefix: samplingPrefix, after: shape.isImage ? [#"{"type": "scale_shift", "scale": 0.5, "shift": 0.5}"#] : [])
    }
}
