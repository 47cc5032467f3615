import Environments
import Foundation
import RLCore
import SeededRandom

/// Stable-Baselines3's `MlpPolicy` for actor-critic methods (A2C, PPO, REINFORCE with baseline):
/// separate policy and value MLPs (tanh hidden layers by default), orthogonal initialization (gain √2 for hidden
/// layers, 0.01 for the policy head, 1 for the value head, zero biases), a categorical head for discrete actions
/// and a diagonal Gaussian with a state-independent `log_std` for continuous ones.
///
/// Parameter names: `pi.<i>.weight|bias` (policy trunk and head, a torch `Sequential`), `vf.<i>.weight|bias`
/// (value net), and `log_std` for continuous actions.
public final class ActorCriticPolicy: Module {
    public enum Head { case categorical(actions: Int), gaussian(dimensions: Int, low: [Float], high: [Float]) }

    public let head: Head
    public let policyNet: Sequential
    public let valueNet: Sequential
    public let logStd: Tensor?
    public let hiddenActivation: Activation
    public let observationSize: Int

    /// Builds the policy for `observationSize` inputs and `actionSpace`.
    public init(observationSize: Int, actionSpace: Space, policyLayers: [Int], valueLayers: [Int],
                activation: Activation = .tanh, orthogonalInit: Bool = true, logStdInit: Float = 0,
                using rng: inout SeededGenerator) {
        self.observationSize = observationSize
        hiddenActivation = activation
        let outputs: Int
        switch actionSpace {
        case let .discrete(n):
            head = .categorical(actions: n); outputs = n; logStd = nil
        case let .box(low, high, _):
            head = .gaussian(dimensions: low.count, low: low, high: high); outputs = low.count
            let s = Tensor.full(logStdInit, shape: [low.count], requiresGrad: true)
            s.name = "log_std"
            logStd = s
        }
        policyNet = MLP(sizes: [observationSize] + policyLayers + [outputs], activation: activation, using: &rng)
        valueNet = MLP(sizes: [observationSize] + valueLayers + [1], activation: activation, using: &rng)
        if orthogonalInit {
            ActorCriticPolicy.orthogonalize(policyNet, outputGain: 0.01, using: &rng)
            ActorCriticPolicy.orthogonalize(valueNet, outputGain: 1, using: &rng)
        }
    }

    /// SB3's ortho_init: every Linear gets an orthogonal weight (gain √2, the output layer `outputGain`) and zero bias.
    static func orthogonalize(_ net: Sequential, outputGain: Float, using rng: inout SeededGenerator) {
        let linears = net.layers.compactMap { $0 as? Linear }
        for (i, layer) in linears.enumerated() {
            Initializer.orthogonal(layer.weight, gain: i == linears.count - 1 ? outputGain : Float(2).squareRoot(), using: &rng)
            if let b = layer.bias { Initializer.constant(b, 0) }
        }
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        var all = prefixed("pi", policyNet.namedParameters()) + prefixed("vf", valueNet.namedParameters())
        if let logStd { all.append((name: "log_std", tensor: logStd)) }
        return all
    }

    /// The action distribution for a batch of observations `[n, observationSize]`.
    public func distribution(_ observations: Tensor) -> PolicyDistribution {
        let out = policyNet(observations)
        switch head {
        case .categorical: return .categorical(Categorical(logits: out))
        case .gaussian: return .gaussian(DiagonalGaussian(mean: out, logStd: logStd!))
        }
    }

    /// V(s) for a batch of observations, shape `[n]`.
    public func value(_ observations: Tensor) -> Tensor {
        valueNet(observations).reshaped([observations.shape[0]])
    }

    /// V(s) for one observation (no graph is recorded).
    public func stateValue(_ observation: [Float]) -> Double {
        Tensor.withoutGrad { Double(value(Tensor(observation, shape: [1, observationSize])).item) }
    }

    /// The action to send to the environment for one row of sampled/greedy policy output: discrete indices pass
    /// through; continuous values are clipped to the action bounds (the log-probability uses the unclipped value).
    public func environmentAction(_ raw: UnsafeBufferPointer<Float>) -> Action {
        switch head {
        case .categorical: return .discrete(Int(raw[0]))
        case let .gaussian(d, low, high):
            return .continuous((0..<d).map { min(max(raw[$0], low[$0]), high[$0]) })
        }
    }

    /// Floats per stored action (1 for discrete, the dimension for continuous).
    public var actionSize: Int {
        switch head {
        case .categorical: 1
        case let .gaussian(d, _, _): d
        }
    }

    /// The checkpoint's self-description of the acting network: layers in order and how to pick an action.
    public var actingDescription: (layers: String, action: String) {
        (policyNet.layerDescription(prefix: "pi"), {
            switch head {
            case .categorical: "argmax"
            case .gaussian: "gaussian_mean"
            }
        }())
    }
}

/// A policy's action distribution for a batch: categorical logits or a diagonal Gaussian.
public enum PolicyDistribution {
    case categorical(Categorical)
    case gaussian(DiagonalGaussian)

    /// Log-probabilities `[n]` of stored actions `[n, actionSize]` (discrete actions stored as their index).
    public func logProb(_ actions: Tensor) -> Tensor {
        switch self {
        case let .categorical(c): c.logProb(actions.data.map { Int($0) })
        case let .gaussian(g): g.logProb(actions)
        }
    }

    /// Entropies `[n]`.
    public func entropy() -> Tensor {
        switch self {
        case let .categorical(c): c.entropy()
        case let .gaussian(g): g.entropy()
        }
    }

    /// Sampled (or, `deterministic`, greedy/mean) actions as floats `[n, actionSize]`.
    public func actions(deterministic: Bool, using rng: inout SeededGenerator) -> Tensor {
        switch self {
        case let .categorical(c):
            let idx = deterministic ? c.mode : c.sample(using: &rng)
            return Tensor(idx.map { Float($0) }, shape: [idx.count, 1])
        case let .gaussian(g):
            return deterministic ? g.mode : g.sample(using: &rng)
        }
    }
}
