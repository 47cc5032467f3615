import Environments
import RLCore
import SeededRandom

/// SB3's `features_extractor_class`: what turns an observation into the features the hidden layers (`net_arch`) take.
///
/// - `FlattenExtractor`: the observation as it is (SB3's `MlpPolicy`); the default for flat observations.
/// - `MinAtarCNN`: the network of the MinAtar paper (Young & Tian 2019) — one 3 × 3 convolution with 16 channels,
///   stride 1, no padding, ReLU, then a dense layer of 128 with ReLU — on image observations `[H, W, C]` (HWC, as
///   Gymnasium gives them); the default for them. The network itself turns HWC into the NCHW its convolution takes
///   (`Unflatten`, then `Permute([0, 3, 1, 2])`), so environments keep Gymnasium's layout and a checkpoint's layer
///   list says the whole computation.
public enum FeaturesExtractor: String, Sendable, CaseIterable {
    case flatten = "FlattenExtractor"
    case minAtarCNN = "MinAtarCNN"

    /// The MinAtar network's convolution channels and features.
    public static let convolutionChannels = 16, featuresDim = 128

    /// `chosen`, or the default for `observationSpace`: the CNN for an image (a box of rank 3), else flattening.
    public static func resolve(_ chosen: FeaturesExtractor?, for observationSpace: Space) -> FeaturesExtractor {
        if let chosen { return chosen }
        return imageShape(observationSpace) != nil ? .minAtarCNN : .flatten
    }

    /// `[H, W, C]` of an image observation space (a box of rank 3), else nil.
    static func imageShape(_ space: Space) -> [Int]? {
        guard case let .box(_, _, shape) = space, shape.count == 3 else { return nil }
        return shape
    }

    /// The extractor's layers for `observationSpace` and the number of features they give: none and the observation
    /// size for `FlattenExtractor`.
    public func layers(for observationSpace: Space, using rng: inout SeededGenerator) throws -> (layers: [any Layer], features: Int) {
        switch self {
        case .flatten:
            return ([], observationSpace.flatCount)
        case .minAtarCNN:
            guard let shape = Self.imageShape(observationSpace), shape[0] >= 3, shape[1] >= 3 else {
                throw AgentError.badOption("policy_kwargs: features_extractor_class MinAtarCNN needs image observations "
                                           + "[height, width, channels] of at least 3 × 3, got \(observationSpace)")
            }
            let (h, w, c) = (shape[0], shape[1], shape[2]), k = Self.convolutionChannels
            return ([Unflatten(dim: 1, sizes: [h, w, c]), Permute([0, 3, 1, 2]),
                     Conv2d(c, k, kernelSize: 3, using: &rng), ActivationLayer(.relu), Flatten(),
                     Linear(k * (h - 2) * (w - 2), Self.featuresDim, using: &rng), ActivationLayer(.relu)], Self.featuresDim)
        }
    }

    /// A network from observations of `observationSpace` through the extractor and `hidden` layers (with `activation`)
    /// to `outputs` (nil: the last hidden layer's activations are the output). `FlattenExtractor` gives exactly
    /// `MLP` (the same layers and draws).
    public func network(observationSpace: Space, hidden: [Int], outputs: Int?, activation: Activation,
                        using rng: inout SeededGenerator) throws -> Sequential {
        let (front, features) = try layers(for: observationSpace, using: &rng)
        let sizes = [features] + hidden + (outputs.map { [$0] } ?? [])
        guard sizes.count >= 2 else { return Sequential(front) }
        let mlp = MLP(sizes: sizes, activation: activation, outputActivation: outputs == nil ? activation : nil, using: &rng)
        return front.isEmpty ? mlp : Sequential(front + mlp.layers)
    }
}
