import Foundation
import RLCore
import SeededRandom
import Training

/// An autoencoder: an MLP encoder squeezes an image into a small code, an MLP decoder rebuilds it, and the loss is
/// the reconstruction error alone (per image, summed over pixels: binary cross-entropy on the decoder's logits, or
/// squared error). Without a prior over codes it is not a sampler by design; `generate` decodes noise through the
/// Gaussian fitted to the training codes (their mean and standard deviation per dimension, kept in the checkpoint),
/// which shows what the code space has learnt, and why the VAE's prior matters.
public final class Autoencoder: GenerativeModel {
    public struct Config: ModelConfig {
        public var hidden = [400]
        public var latentSize = 20
        public var loss = "bce"
        public var training = ModelTraining(learningRate: 1e-3, batchSize: 128, epochs: 10)
        public init() {}

        public static var fields: [ConfigField<Config>] {
            [.sizes("hidden", \.hidden, "hidden layer sizes of the encoder (the decoder mirrors them)"),
             .int("latent_size", \.latentSize, min: 1, max: 4096, "dimensions of the code"),
             .choice("loss", \.loss, ["bce", "mse"], "reconstruction loss per image, summed over pixels")] + trainingFields
        }
    }

    public static let descriptor = ModelDescriptor(
        name: "ae", summary: "autoencoder (MLP encoder and decoder, reconstruction loss)",
        config: Config.self, losses: ["loss"], handlesPoints: false, defaultData: "mnist")

    public let config: Config
    let shape: DataShape
    let encoder: Sequential
    let decoder: Sequential
    let optimizer: Adam
    /// Mean and standard deviation of the codes of the last epoch's training images, per dimension (`generate`'s
    /// Gaussian); a running sum and sum of squares over the epoch that is under way.
    let codeMean: Tensor, codeStd: Tensor
    var codeSum: [Double], codeSquares: [Double], codeCount = 0

    public var latentSize: Int { config.latentSize }
    public var isConditional: Bool { config.conditional }

    public init(settings: HyperParameters, shape: DataShape, seed: UInt64) throws {
        config = try Config(settings)
        self.shape = shape
        var weights = SeededGenerator(seed: seed)
        let labels = config.labelInputs(shape)
        encoder = MLP(sizes: [shape.features + labels] + config.hidden + [config.latentSize], activation: .relu, using: &weights)
        decoder = MLP(sizes: [config.latentSize + labels] + config.hidden.reversed() + [shape.features], activation: .relu,
                      using: &weights)
        optimizer = Adam(prefixed("encoder", encoder.namedParameters()) + prefixed("decoder", decoder.namedParameters()),
                         learningRate: Float(config.training.learningRate))
        codeMean = Tensor.zeros([config.latentSize])
        codeStd = Tensor.ones([config.latentSize])
        codeSum = Array(repeating: 0, count: config.latentSize)
        codeSquares = codeSum
    }

    func code(_ x: Tensor, _ labels: [Int]?) -> Tensor { encoder(conditioned(x, labels, classes: shape.classCount)) }
    func decode(_ z: Tensor, _ labels: [Int]?) -> Tensor { decoder(conditioned(z, labels, classes: shape.classCount)) }

    /// The reconstruction loss per image of decoder outputs (logits) against images in [0, 1].
    func reconstructionLoss(_ logits: Tensor, _ x: Tensor) -> Tensor {
        let total = config.loss == "bce" ? binaryCrossEntropyWithLogits(logits, x, reduction: .sum)
            : mseLoss(logits.sigmoid(), x, reduction: .sum)
        return total * (1 / Float(x.shape[0]))
    }

    public func trainStep(_ batch: Batch, using rng: inout SeededGenerator) -> [String: Double] {
        let labels = config.conditional ? batch.labels : nil
        let z = code(batch.features, labels)
        let loss = reconstructionLoss(decode(z, labels), batch.features)
        optimizer.zeroGrad()
        loss.backward()
        optimizer.step()
        accumulateCodeStatistics(z.data)
        return ["loss": Double(loss.item)]
    }

    /// Adds a batch's codes to the epoch's statistics; a full training set's worth makes them `generate`'s Gaussian.
    func accumulateCodeStatistics(_ codes: [Float]) {
        let d = config.latentSize
        for row in 0..<(codes.count / d) {
            for j in 0..<d {
                let v = Double(codes[row * d + j])
                codeSum[j] += v
                codeSquares[j] += v * v
            }
        }
        codeCount += codes.count / d
    }

    /// Ends an epoch: the codes seen become the sampling Gaussian.
    public func epochFinished() {
        guard codeCount > 1 else { return }
        let n = Double(codeCount)
        for j in 0..<config.latentSize {
            let mean = codeSum[j] / n
            codeMean.data[j] = Float(mean)
            codeStd.data[j] = Float(max(codeSquares[j] / n - mean * mean, 0).squareRoot())
        }
        codeSum = Array(repeating: 0, count: config.latentSize)
        codeSquares = codeSum
        codeCount = 0
    }

    public func generate(noise: Tensor, labels: [Int]?) -> Tensor {
        Tensor.withoutGrad { decode(noise * codeStd + codeMean, config.conditional ? labels : nil).sigmoid() }
    }

    public func reconstruct(_ images: Tensor, labels: [Int]?) -> Tensor? {
        let labels = config.conditional ? labels : nil
        return Tensor.withoutGrad { decode(code(images, labels), labels).sigmoid() }
    }

    public func evaluate(on test: Batch, using rng: inout SeededGenerator) -> [String: Double] {
        var total = 0.0
        Tensor.withoutGrad {
            for start in stride(from: 0, to: test.count, by: 1000) {
                let rows = start..<min(start + 1000, test.count)
                let x = test.features.sliced(axis: 0, rows)
                let labels = config.conditional ? Array(test.labels[rows]) : nil
                total += Double(reconstructionLoss(decode(code(x, labels), labels), x).item) * Double(rows.count)
            }
        }
        return ["test_reconstruction": total / Double(test.count)]
    }

    var parameters: [(name: String, tensor: Tensor)] {
        prefixed("encoder", encoder.namedParameters()) + prefixed("decoder", decoder.namedParameters())
            + [(name: "code_mean", tensor: codeMean), (name: "code_std", tensor: codeStd)]
    }

    public func state() -> [(name: String, tensor: Tensor)] { parameters + prefixed("optimizer", optimizer.stateTensors()) }

    public func restore(_ tensors: [(name: String, tensor: Tensor)]) throws {
        try load(tensors, into: parameters)
        try optimizer.loadStateTensors(unprefixed("optimizer", tensors))
    }

    /// The decoder, after scaling standard-normal noise by the code statistics.
    public var generatorDescription: String {
        describe(decoder, prefix: "decoder", before: [#"{"type": "scale_shift", "scale": "code_std", "shift": "code_mean"}"#],
                 after: [#"{"type": "sigmoid"}"#])
    }

    public func setTraining(_ training: Bool) { encoder.setTraining(training); decoder.setTraining(training) }
}
