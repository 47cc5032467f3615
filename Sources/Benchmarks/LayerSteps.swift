import Foundation
import RLCore
import SeededRandom

/// One training step of a model, timed by the layer and generative benchmarks; its PyTorch twin is the model of the
/// same name in `Peers/torch_peer.py`.
protocol TrainingStep: AnyObject {
    /// The key of the step in the JSON (`"model"`) and in the peer.
    var model: String { get }
    var batch: Int { get }
    /// Floating-point operations of one step: 2 per multiply-add of the convolutions, products and recurrences, and
    /// backward = twice forward (the input and the weight gradients). Element-wise work is not counted.
    var flops: Double { get }
    /// What the PyTorch peer needs to build the same network (a JSON object without spaces), when the network
    /// follows a configuration rather than a fixed shape.
    var peerSettings: String? { get }
    func run()
}

extension TrainingStep {
    var peerSettings: String? { nil }
}

/// Multiply-adds of one sample through a convolution or product: `outputs` values, each a sum of `taps` products.
func multiplyAdds(outputs: Int, taps: Int) -> Double { Double(outputs) * Double(taps) }

/// LeNet-5 on 1×28×28 (conv 1→6 5×5 pad 2, ReLU, max pool 2, conv 6→16 5×5, ReLU, max pool 2, 120, 84, 10):
/// forward, cross-entropy, backward, Adam.
final class LeNetStep: TrainingStep {
    let model = "lenet", batch: Int
    let net: Sequential, optimizer: Adam
    var images: Tensor, labels: [Int]

    /// Forward multiply-adds per image.
    static let multiplyAddsPerImage = multiplyAdds(outputs: 6 * 28 * 28, taps: 25) + multiplyAdds(outputs: 16 * 10 * 10, taps: 6 * 25)
        + multiplyAdds(outputs: 120, taps: 400) + multiplyAdds(outputs: 84, taps: 120) + multiplyAdds(outputs: 10, taps: 84)
    var flops: Double { 6 * Self.multiplyAddsPerImage * Double(batch) }

    init(batch: Int, seed: UInt64) {
        self.batch = batch
        var rng = SeededGenerator(seed: seed)
        net = Sequential([
            Conv2d(1, 6, kernelSize: 5, padding: 2, using: &rng), ActivationLayer(.relu), MaxPool2d(kernelSize: 2),
            Conv2d(6, 16, kernelSize: 5, using: &rng), ActivationLayer(.relu), MaxPool2d(kernelSize: 2), Flatten(),
            Linear(400, 120, using: &rng), ActivationLayer(.relu), Linear(120, 84, using: &rng), ActivationLayer(.relu),
            Linear(84, 10, using: &rng),
        ])
        optimizer = Adam(net.namedParameters(), learningRate: 1e-3)
        images = Tensor.uniform([batch, 1, 28, 28], using: &rng)
        labels = (0..<batch).map { _ in rng.nextInt(below: 10) }
    }

    func run() {
        optimizer.zeroGrad()
        crossEntropyLoss(net(images), labels: labels).backward()
        optimizer.step()
    }
}

/// A DCGAN at 28×28 (the PyTorch example's recipe scaled to MNIST): one discriminator step on a real and a generated
/// batch, then one generator step through the updated discriminator on the same generated batch; BCE with logits,
/// Adam 2e-4, β₁ 0.5.
final class DCGANStep: TrainingStep {
    let model = "dcgan", batch: Int
    static let latent = 100
    let generator: Sequential, discriminator: Sequential
    let generatorOptimizer: Adam, discriminatorOptimizer: Adam
    /// Real images in [−1, 1]; `nextReal` may replace them each step (MNIST batches).
    var real: Tensor
    var nextReal: (() -> Tensor)?
    var rng: SeededGenerator

    static let generatorMultiplyAdds = multiplyAdds(outputs: 128 * 7 * 7, taps: latent)
        + multiplyAdds(outputs: 128 * 7 * 7, taps: 64 * 16) + multiplyAdds(outputs: 64 * 14 * 14, taps: 16)
    static let discriminatorMultiplyAdds = multiplyAdds(outputs: 64 * 14 * 14, taps: 16)
        + multiplyAdds(outputs: 128 * 7 * 7, taps: 64 * 16) + multiplyAdds(outputs: 1, taps: 128 * 7 * 7)
    /// G: forward and backward once (3 forwards); D: real and fake forward and backward, then fake again (9).
    var flops: Double { 2 * Double(batch) * (3 * Self.generatorMultiplyAdds + 9 * Self.discriminatorMultiplyAdds) }

    init(batch: Int, seed: UInt64) {
        self.batch = batch
        var weights = SeededGenerator(seed: seed)
        generator = Sequential([
            Linear(Self.latent, 128 * 7 * 7, using: &weights), BatchNorm1d(128 * 7 * 7), ActivationLayer(.relu),
            Unflatten(dim: 1, sizes: [128, 7, 7]),
            ConvTranspose2d(128, 64, kernelSize: 4, stride: 2, padding: 1, using: &weights), BatchNorm2d(64), ActivationLayer(.relu),
            ConvTranspose2d(64, 1, kernelSize: 4, stride: 2, padding: 1, using: &weights), ActivationLayer(.tanh),
        ])
        discriminator = Sequential([
            Conv2d(1, 64, kernelSize: 4, stride: 2, padding: 1, using: &weights), LeakyReLU(slope: 0.2),
            Conv2d(64, 128, kernelSize: 4, stride: 2, padding: 1, using: &weights), BatchNorm2d(128), LeakyReLU(slope: 0.2),
            Flatten(), Linear(128 * 7 * 7, 1, using: &weights),
        ])
        generatorOptimizer = Adam(generator.namedParameters(), learningRate: 2e-4, beta1: 0.5)
        discriminatorOptimizer = Adam(discriminator.namedParameters(), learningRate: 2e-4, beta1: 0.5)
        real = Tensor.uniform([batch, 1, 28, 28], low: -1, high: 1, using: &weights)
        rng = SeededGenerator(seed: seed &+ 1)
    }

    func run() {
        if let nextReal { real = nextReal() }
        let ones = Tensor.ones([batch, 1]), zeros = Tensor.zeros([batch, 1])
        let fake = generator(Tensor.normal([batch, Self.latent], using: &rng))
        let dLoss = binaryCrossEntropyWithLogits(discriminator(real), ones)
            + binaryCrossEntropyWithLogits(discriminator(fake.detached()), zeros)
        discriminatorOptimizer.zeroGrad()
        dLoss.backward()
        discriminatorOptimizer.step()
        let gLoss = binaryCrossEntropyWithLogits(discriminator(fake), ones)
        generatorOptimizer.zeroGrad()
        gLoss.backward()
        generatorOptimizer.step()
    }
}

/// An LSTM (input 16, hidden 128) over 32 steps, a linear head on the last hidden state, MSE, Adam.
final class LSTMStep: TrainingStep {
    let model = "lstm", batch: Int
    static let (inputSize, hiddenSize, length) = (16, 128, 32)
    let lstm: RecurrentLayer, head: Linear, optimizer: Adam
    let x: Tensor, y: Tensor

    var flops: Double {
        6 * Double(batch * Self.length) * multiplyAdds(outputs: 4 * Self.hiddenSize, taps: Self.inputSize + Self.hiddenSize)
    }

    init(batch: Int, seed: UInt64) {
        self.batch = batch
        var rng = SeededGenerator(seed: seed)
        lstm = LSTM(Self.inputSize, Self.hiddenSize, using: &rng)
        head = Linear(Self.hiddenSize, 1, using: &rng)
        optimizer = Adam(prefixed("lstm", lstm.namedParameters()) + prefixed("head", head.namedParameters()), learningRate: 1e-3)
        x = Tensor.normal([batch, Self.length, Self.inputSize], using: &rng)
        y = Tensor.normal([batch, 1], using: &rng)
    }

    func run() {
        let last = lstm.forward(x).hN.reshaped([batch, Self.hiddenSize])
        optimizer.zeroGrad()
        mseLoss(head(last), y).backward()
        optimizer.step()
    }
}
