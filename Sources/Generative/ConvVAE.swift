import Foundation
import RLCore
import SeededRandom
import Training

/// The VAE with convolutional networks: the encoder halves the image twice with 4×4 stride-2 convolutions (ReLU)
/// before the linear μ and log σ² heads; the decoder mirrors it with a linear layer and two 4×4 stride-2 transposed
/// convolutions back to Bernoulli logits. The loss and everything else is `VariationalModel`'s. With `conditional`,
/// the label's one-hot code joins the encoder's flattened features and z.
public final class ConvVAE: VariationalModel {
    public struct Config: VariationalConfig {
        public var channels = [32, 64]
        public var latentSize = 20
        public var beta = 1.0
        public var training = ModelTraining(learningRate: 1e-3, batchSize: 128, epochs: 10)
        public init() {}

        public static var fields: [ConfigField<Config>] {
            [.sizes("channels", \.channels, max: 1024, "channels of the encoder's two convolutions (the decoder mirrors them)")]
                + variationalFields
        }
    }

    public static let descriptor = ModelDescriptor(
        name: "conv-vae", summary: "variational autoencoder with convolutional encoder and transposed-convolution decoder",
        config: Config.self, losses: ["loss", "reconstruction", "kl"], handlesPoints: false, defaultData: "fashion-mnist")

    public let config: Config
    public let shape: DataShape
    public let nets: VariationalNetworks
    public let optimizer: Adam

    public init(settings: HyperParameters, shape: DataShape, seed: UInt64) throws {
        config = try Config(settings)
        let sizes = try TwoStridedConvolutions(model: "conv-vae", shape: shape, channels: config.channels, settings: settings)
        let (c, h, w, c1, c2, flat) = (sizes.channels, sizes.height, sizes.width, sizes.first, sizes.second, sizes.flat)
        self.shape = shape
        var weights = SeededGenerator(seed: seed)
        let labels = config.labelInputs(shape)
        let encoder = Sequential([
            Unflatten(dim: 1, sizes: [c, h, w]),
            Conv2d(c, c1, kernelSize: 4, stride: 2, padding: 1, using: &weights), ActivationLayer(.relu),
            Conv2d(c1, c2, kernelSize: 4, stride: 2, padding: 1, using: &weights), ActivationLayer(.relu),
            Flatten()])
        let mean = Linear(flat + labels, config.latentSize, using: &weights)
        let logVariance = Linear(flat + labels, config.latentSize, using: &weights)
        let decoder = Sequential([
            Linear(config.latentSize + labels, flat, using: &weights), ActivationLayer(.relu),
            Unflatten(dim: 1, sizes: [c2, h / 4, w / 4]),
            ConvTranspose2d(c2, c1, kernelSize: 4, stride: 2, padding: 1, using: &weights), ActivationLayer(.relu),
            ConvTranspose2d(c1, c, kernelSize: 4, stride: 2, padding: 1, using: &weights),
            Flatten()])
        nets = VariationalNetworks(encoder: encoder, mean: mean, logVariance: logVariance, decoder: decoder, labelJoinsInput: false)
        optimizer = Self.optimizer(nets, learningRate: config.training.learningRate)
    }
}
