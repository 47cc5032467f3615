import Foundation
import RLCore
import SeededRandom
import Training

/// A variational autoencoder (Kingma & Welling 2014): an encoder to the mean μ and log-variance log σ² of a diagonal
/// Gaussian over the latent z, the reparameterization z = μ + σ·ε, and a decoder to Bernoulli logits over the pixels.
/// The loss is the negative evidence lower bound per image, in nats:
///
///     −ELBO = Σ_pixels BCE(decoder(z), x) + β · KL(N(μ, σ²) ‖ N(0, I))
///
/// (β = 1 is the true bound; β > 1 is the β-VAE). `VAE` (MLP, the PyTorch examples' MNIST VAE) and `ConvVAE` differ
/// only in their networks: this protocol's extension is the algorithm both run.
public protocol VariationalModel: GenerativeModel {
    associatedtype Config: VariationalConfig
    var config: Config { get }
    var shape: DataShape { get }
    var nets: VariationalNetworks { get }
    var optimizer: Adam { get }
}

/// The settings every VAE has beyond training: the latent size and the KL weight β.
public protocol VariationalConfig: ModelConfig {
    var latentSize: Int { get set }
    var beta: Double { get set }
}

extension VariationalConfig {
    /// The fields of the VAE's settings, after a model's own.
    static var variationalFields: [ConfigField<Self>] {
        [.int("latent_size", \.latentSize, min: 1, max: 4096, "dimensions of the latent z"),
         .double("beta", \.beta, in: 0...1000, "weight of the KL term (1: the evidence lower bound; > 1: β-VAE)")]
            + trainingFields
    }
}

/// A VAE's networks: an encoder body, linear heads for μ and log σ² on its output, and a decoder to Bernoulli logits.
public struct VariationalNetworks {
    let encoder: Sequential
    let mean: Linear
    let logVariance: Linear
    let decoder: Sequential
    /// Where a label's one-hot code joins the encoder: its input (MLPs), or the features it outputs (convolutions).
    let labelJoinsInput: Bool

    /// By checkpoint prefix.
    var named: [(name: String, module: Module)] {
        [("encoder", encoder), ("mean", mean), ("log_variance", logVariance), ("decoder", decoder)]
    }
}

extension VariationalModel {
    public var latentSize: Int { config.latentSize }
    public var isConditional: Bool { config.conditional }
    var networks: [(name: String, module: Module)] { nets.named }

    /// μ and log σ² of q(z | x) for images `[n, features]`.
    func encode(_ x: Tensor, _ labels: [Int]?) -> (mean: Tensor, logVariance: Tensor) {
        let classes = shape.classCount
        let h = nets.labelJoinsInput ? nets.encoder(conditioned(x, labels, classes: classes))
                                     : conditioned(nets.encoder(x), labels, classes: classes)
        return (nets.mean(h), nets.logVariance(h))
    }

    /// Bernoulli logits of p(x | z), `[n, features]`.
    func decode(_ z: Tensor, _ labels: [Int]?) -> Tensor { nets.decoder(conditioned(z, labels, classes: shape.classCount)) }

    public var generatorDescription: String { describe(nets.decoder, prefix: "decoder", after: [#"{"type": "sigmoid"}"#]) }

    /// The per-image reconstruction and KL terms, and the loss they make, for a batch.
    func losses(_ batch: Batch, using rng: inout SeededGenerator) -> (loss: Tensor, reconstruction: Tensor, kl: Tensor) {
        let labels = isConditional ? batch.labels : nil
        let (mu, logVar) = encode(batch.features, labels)
        let epsilon = Tensor.normal(mu.shape, using: &rng)
        let z = mu + (logVar * 0.5).exp() * epsilon
        let logits = decode(z, labels)
        let reconstruction = binaryCrossEntropyWithLogits(logits, batch.features, reduction: .sum) * (1 / Float(batch.count))
        let kl = gaussianKLLoss(mean: mu, logVariance: logVar)
        return (reconstruction + kl * Float(config.beta), reconstruction, kl)
    }

    public func trainStep(_ batch: Batch, using rng: inout SeededGenerator) -> [String: Double] {
        let (loss, reconstruction, kl) = losses(batch, using: &rng)
        optimizer.zeroGrad()
        loss.backward()
        optimizer.step()
        return ["loss": Double(loss.item), "reconstruction": Double(reconstruction.item), "kl": Double(kl.item)]
    }

    public func generate(noise: Tensor, labels: [Int]?) -> Tensor {
        Tensor.withoutGrad { decode(noise, isConditional ? labels : nil).sigmoid() }
    }

    public func reconstruct(_ images: Tensor, labels: [Int]?) -> Tensor? {
        let labels = isConditional ? labels : nil
        return Tensor.withoutGrad { decode(encode(images, labels).mean, labels).sigmoid() }
    }

    /// The test set's −ELBO in nats per image (β = 1 whatever the training β, with one sample of z per image, as the
    /// PyTorch example reports it), and its reconstruction and KL parts.
    public func evaluate(on test: Batch, using rng: inout SeededGenerator) -> [String: Double] {
        var reconstruction = 0.0, kl = 0.0
        Tensor.withoutGrad {
            for start in stride(from: 0, to: test.count, by: 1000) {
                let rows = start..<min(start + 1000, test.count)
                let part = Batch(features: test.features.sliced(axis: 0, rows), labels: Array(test.labels[rows]))
                let l = losses(part, using: &rng)
                reconstruction += Double(l.reconstruction.item) * Double(rows.count)
                kl += Double(l.kl.item) * Double(rows.count)
            }
        }
        let n = Double(test.count)
        return ["test_neg_elbo": (reconstruction + kl) / n, "test_reconstruction": reconstruction / n, "test_kl": kl / n]
    }

    public func state() -> [(name: String, tensor: Tensor)] {
        networks.flatMap { prefixedState($0.name, $0.module) } + prefixed("optimizer", optimizer.stateTensors())
    }

    public func restore(_ tensors: [(name: String, tensor: Tensor)]) throws {
        try load(tensors, into: networks.flatMap { prefixedState($0.name, $0.module) })
        try optimizer.loadStateTensors(unprefixed("optimizer", tensors))
    }

    public func setTraining(_ training: Bool) { for (_, m) in networks { m.setTraining(training) } }

    /// Adam over every network's parameters, named as in checkpoints.
    static func optimizer(_ nets: VariationalNetworks, learningRate: Double) -> Adam {
        Adam(nets.named.flatMap { prefixed($0.name, $0.module.namedParameters()) }, learningRate: Float(learningRate))
    }
}

/// The MNIST VAE of the PyTorch examples: MLP encoder (ReLU) to two linear heads for μ and log σ², MLP decoder. With
/// `conditional`, the label's one-hot code is appended to the encoder's input and to z, so `rlbench sample --label K`
/// draws a chosen digit.
public final class VAE: VariationalModel {
    public struct Config: VariationalConfig {
        public var hidden = [400]
        public var latentSize = 20
        public var beta = 1.0
        public var training = ModelTraining(learningRate: 1e-3, batchSize: 128, epochs: 10)
        public init() {}

        public static var fields: [ConfigField<Config>] {
            [.sizes("hidden", \.hidden, "hidden layer sizes of the encoder (the decoder mirrors them)")] + variationalFields
        }
    }

    public static let descriptor = ModelDescriptor(
        name: "vae", summary: "variational autoencoder (MLP, Bernoulli decoder, loss −ELBO = reconstruction + β·KL)",
        config: Config.self, losses: ["loss", "reconstruction", "kl"], handlesPoints: false, defaultData: "mnist")

    public let config: Config
    public let shape: DataShape
    public let nets: VariationalNetworks
    public let optimizer: Adam

    public init(settings: HyperParameters, shape: DataShape, seed: UInt64) throws {
        config = try Config(settings)
        self.shape = shape
        var weights = SeededGenerator(seed: seed)
        let labels = config.labelInputs(shape)
        let encoderSizes = [shape.features + labels] + config.hidden
        let encoder = MLP(sizes: encoderSizes, activation: .relu, outputActivation: config.hidden.isEmpty ? nil : .relu,
                          using: &weights)
        let top = encoderSizes.last!
        let mean = Linear(top, config.latentSize, using: &weights)
        let logVariance = Linear(top, config.latentSize, using: &weights)
        let decoder = MLP(sizes: [config.latentSize + labels] + config.hidden.reversed() + [shape.features],
                          activation: .relu, using: &weights)
        nets = VariationalNetworks(encoder: encoder, mean: mean, logVariance: logVariance, decoder: decoder, labelJoinsInput: true)
        optimizer = Self.optimizer(nets, learningRate: config.training.learningRate)
    }
}
