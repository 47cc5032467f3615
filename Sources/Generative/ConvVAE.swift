import Foundation
import RLCore
import SeededRandom
import Training

/// The VAE with convolutional networks: the encoder halves the image twice with 4×4 stride-2 convolutions (ReLU)
/// before the linear μ and log σ² heads; the decoder mirrors it with a linear layer and two 4×4 stride-2 transposed
/// convolutions back to Bernoulli logits. The loss and everything else is `VariationalModel`'s. With `conditional`,
/// the label's one-hot code joins the encoder's flattened features and z.
public final class ConvVAE: VariationalModel {
    public struct Config: ModelConfig {
        public var channels = [32, 64]
        public var latentSize = 20
        public var beta = 1.0
        public var learningRate = 1e-3
        public var batchSize = 128
        public var epochs = 10
        public var conditional = false
        public init() {}

        public static var fields: [ConfigField<Config>] {
            [.sizes("channels", \.channels, max: 1024, "channels of the encoder's two convolutions (the decoder mirrors them)"),
             .int("latent_size", \.latentSize, min: 1, max: 4096, "dimensions of the latent z"),
             .double("beta", \.beta, in: 0...1000, "weight of the KL term (1: the evidence lower bound; > 1: β-VAE)")]
                + trainingFields
        }
    }

    public static let descriptor = ModelDescriptor(
        name: "conv-vae", summary: "variational autoencoder with convolutional encoder and transposed-convolution decoder",
        config: Config.self, losses: ["loss", "reconstruction", "kl"], handlesPoints: false, defaultData: "fashion-mnist")

    public let config: Config
    let shape: DataShape
    let encoder: Sequential
    let mean: Linear
    let logVariance: Linear
    let decoder: Sequential
    public let optimizer: Adam

    public var latentSize: Int { config.latentSize }
    public var isConditional: Bool { config.conditional }
    public var beta: Double { config.beta }
    public var networks: [(name: String, module: Module)] {
        [("encoder", encoder), ("mean", mean), ("log_variance", logVariance), ("decoder", decoder)]
    }

    public init(settings: HyperParameters, shape: DataShape, seed: UInt64) throws {
        config = try Config(settings)
        guard config.channels.count == 2 else {
            throw ConfigError.badValue(key: "channels", source: settings.sources["channels"] ?? "defaults",
                                       reason: "conv-vae has two convolutions, so two channel counts, got \(config.channels)")
        }
        let (c, h, w) = (shape.sample[0], shape.sample[1], shape.sample[2])
        guard h % 4 == 0, w % 4 == 0 else {
            throw GenerativeError.unsuitableData("conv-vae halves the image twice, so its sides must be multiples of 4, not \(h)×\(w)")
        }
        self.shape = shape
        var weights = SeededGenerator(seed: seed)
        let (c1, c2) = (config.channels[0], config.channels[1])
        let flat = c2 * (h / 4) * (w / 4)
        let labels = config.labelInputs(shape)
        encoder = Sequential([
            Unflatten(dim: 1, sizes: [c, h, w]),
            Conv2d(c, c1, kernelSize: 4, stride: 2, padding: 1, using: &weights), ActivationLayer(.relu),
            Conv2d(c1, c2, kernelSize: 4, stride: 2, padding: 1, using: &weights), ActivationLayer(.relu),
            Flatten()])
        mean = Linear(flat + labels, config.latentSize, using: &weights)
        logVariance = Linear(flat + labels, config.latentSize, using: &weights)
        decoder = Sequential([
            Linear(config.latentSize + labels, flat, using: &weights), ActivationLayer(.relu),
            Unflatten(dim: 1, sizes: [c2, h / 4, w / 4]),
            ConvTranspose2d(c2, c1, kernelSize: 4, stride: 2, padding: 1, using: &weights), ActivationLayer(.relu),
            ConvTranspose2d(c1, c, kernelSize: 4, stride: 2, padding: 1, using: &weights),
            Flatten()])
        optimizer = Self.optimizer([("encoder", encoder), ("mean", mean), ("log_variance", logVariance), ("decoder", decoder)],
                                   learningRate: config.learningRate)
    }

    public func encode(_ x: Tensor, _ labels: [Int]?) -> (mean: Tensor, logVariance: Tensor) {
        let h = conditioned(encoder(x), labels, classes: shape.classCount)
        return (mean(h), logVariance(h))
    }

    public func decode(_ z: Tensor, _ labels: [Int]?) -> Tensor { decoder(conditioned(z, labels, classes: shape.classCount)) }

    public var generatorDescription: String { describe(decoder, prefix: "decoder", after: [#"{"type": "sigmoid"}"#]) }
}
