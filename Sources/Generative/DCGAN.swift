import Foundation
import RLCore
import SeededRandom
import Training

/// DCGAN (Radford et al. 2016) at MNIST's size: the generator maps z through a linear layer to 128 maps of a quarter
/// of the image's side, then two 4×4 stride-2 transposed convolutions double the side twice, with batch norm and ReLU
/// between and tanh at the end; the discriminator mirrors it with 4×4 stride-2 convolutions, batch norm on the second
/// and LeakyReLU 0.2, then a linear layer to one logit. Adam 2e-4 with β₁ = 0.5 for both, as the paper recommends.
/// With `dense`, both networks get a hidden linear layer of that width with batch norm, as InfoGAN's MNIST networks
/// (Chen et al. 2016: z → 1024 → 128×7×7 in the generator, 128×7×7 → 1024 → 1 in the discriminator).
/// With `conditional`, the label's one-hot code joins z and the discriminator's flattened features.
public final class DCGAN: AdversarialModel {
    public struct Config: AdversarialConfig {
        public var channels = [64, 128]
        /// 0: none, the paper's network; MNIST's tuned file sets 1024 (docs/benchmarks.md, "Generative models").
        public var dense = 0
        /// "dcgan": the paper's N(0, 0.02) weights; "pytorch": each layer's own default initialization.
        public var weightInit = "dcgan"
        public var game = AdversarialSettings(latentSize: 100)
        public var training = ModelTraining(learningRate: 2e-4, batchSize: 64, epochs: 5)
        public init() {}

        public static var fields: [ConfigField<Config>] {
            [.sizes("channels", \.channels, max: 1024, "channels of the discriminator's two convolutions (the generator mirrors them)"),
             .int("dense", \.dense, min: 0, max: 8192,
                  "units of a hidden linear layer with batch norm in both networks (z → dense → maps; features → dense → logit); 0: none"),
             .choice("weight_init", \.weightInit, ["dcgan", "pytorch"],
                     "dcgan: weights from N(0, 0.02), batch norm's scales from N(1, 0.02), biases 0, as the paper")]
                + adversarialFields
        }
    }

    public static let descriptor = ModelDescriptor(
        name: "dcgan", summary: "deep convolutional GAN (transposed convolutions, batch norm, LeakyReLU discriminator)",
        config: Config.self, losses: ["d_loss", "g_loss", "d_real", "d_fake"], handlesPoints: false, defaultData: "mnist")

    public let config: Config
    public let shape: DataShape
    let generator: Sequential
    let discriminator: Sequential
    /// The discriminator's last layers after the label joins its features: the logit alone (as before `dense`
    /// existed, so those checkpoints keep their names), or the `dense` layer and the logit.
    let discriminatorHead: any Layer
    public let generatorOptimizer: Adam
    public let discriminatorOptimizer: Adam
    public let generatorAverage: ExponentialMovingAverage?

    public var dropoutLayers: [Dropout] { [] }
    public var networks: [(name: String, module: Module)] {
        [("generator", generator), ("discriminator", discriminator), ("discriminator_head", discriminatorHead)]
    }

    public init(settings: HyperParameters, shape: DataShape, seed: UInt64) throws {
        config = try Config(settings)
        let sizes = try TwoStridedConvolutions(model: "dcgan", shape: shape, channels: config.channels, settings: settings)
        let (c, h, w, c1, c2, flat) = (sizes.channels, sizes.height, sizes.width, sizes.first, sizes.second, sizes.flat)
        self.shape = shape
        var weights = SeededGenerator(seed: seed)
        let (noise, features, dense) = (config.game.latentSize + config.labelInputs(shape), flat + config.labelInputs(shape), config.dense)
        let generatorDense: [any Layer] = dense > 0 ? [Linear(noise, dense, using: &weights), BatchNorm1d(dense), ActivationLayer(.relu)] : []
        generator = Sequential(generatorDense + [
            Linear(dense > 0 ? dense : noise, flat, using: &weights), BatchNorm1d(flat), ActivationLayer(.relu),
            Unflatten(dim: 1, sizes: [c2, h / 4, w / 4]),
            ConvTranspose2d(c2, c1, kernelSize: 4, stride: 2, padding: 1, using: &weights), BatchNorm2d(c1), ActivationLayer(.relu),
            ConvTranspose2d(c1, c, kernelSize: 4, stride: 2, padding: 1, using: &weights), ActivationLayer(.tanh),
            Flatten()])
        discriminator = Sequential([
            Unflatten(dim: 1, sizes: [c, h, w]),
            Conv2d(c, c1, kernelSize: 4, stride: 2, padding: 1, using: &weights), LeakyReLU(slope: 0.2),
            Conv2d(c1, c2, kernelSize: 4, stride: 2, padding: 1, using: &weights), BatchNorm2d(c2), LeakyReLU(slope: 0.2),
            Flatten()])
        let discriminatorDense: [any Layer] = dense > 0 ? [Linear(features, dense, using: &weights), BatchNorm1d(dense), LeakyReLU(slope: 0.2)] : []
        let logit = Linear(dense > 0 ? dense : features, 1, using: &weights)
        discriminatorHead = dense > 0 ? Sequential(discriminatorDense + [logit]) : logit
        if config.weightInit == "dcgan" {
            for network in [generator, discriminator, discriminatorHead] as [Module] { Self.paperInitialization(network, using: &weights) }
        }
        generatorOptimizer = Self.optimizer([("generator", generator)], config, generator: true)
        discriminatorOptimizer = Self.optimizer([("discriminator", discriminator), ("discriminator_head", discriminatorHead)], config,
                                                generator: false)
        generatorAverage = Self.average(of: generator, config)
    }

    /// The paper's initialization: every linear and convolution weight from N(0, 0.02), every batch norm scale from
    /// N(1, 0.02), every bias 0 (the DCGAN paper, section 4; the PyTorch example applies it to its convolutions,
    /// and its first layer is a transposed convolution where this generator has a linear layer).
    static func paperInitialization(_ network: Module, using rng: inout SeededGenerator) {
        for (name, tensor) in network.namedParameters() {
            if name.hasSuffix("bias") {
                tensor.data = [Float](repeating: 0, count: tensor.count)
            } else {
                let mean: Float = tensor.rank == 1 ? 1 : 0  // a batch norm's scale, else a weight matrix or kernel
                tensor.data = Tensor.normal(tensor.shape, mean: mean, std: 0.02, using: &rng).data
            }
        }
    }

    public func generated(_ z: Tensor, _ labels: [Int]?) -> Tensor { generator(conditioned(z, labels, classes: shape.classCount)) }

    public func judged(_ x: Tensor, _ labels: [Int]?) -> Tensor {
        discriminatorHead(conditioned(discriminator(x), labels, classes: shape.classCount))
    }

    /// The generator's layers; its tanh output in [−1, 1] is mapped to [0, 1].
    public var generatorDescription: String {
        describe(generator, prefix: samplingPrefix, after: [#"{"type": "scale_shift", "scale": 0.5, "shift": 0.5}"#])
    }
}
