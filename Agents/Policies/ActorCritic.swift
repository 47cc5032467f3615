import Environments
import Foundation
import RLCore
import SeededRandom
import Training

/// Stable-Baselines3's `MlpPolicy` for actor-critic methods (A2C, PPO, REINFORCE with baseline):
/// separate policy and value MLPs (tanh hidden layers by default), orthogonal initialization (gain √2 for hidden
/// layers, 0.01 for the policy head, 1 for the value head, zero biases), a categorical head for discrete actions
/// and a diagonal Gaussian with a state-independent `log_std` for continuous ones.
///
/// With state-dependent exploration (gSDE, Raffin et al. 2021; SB3's `use_sde`, `full_std`) the exploration noise of
/// a continuous action is ε = φ(s)·W: φ(s) the policy trunk's last hidden features (without gradient) and W a
/// `[features, d]` matrix drawn from N(0, σ²) per environment by `resetNoise` (at the start of each rollout, or every
/// `sde_sample_freq` steps), σ = exp(`log_std`), a learned `[features, d]` matrix. The action's distribution is then
/// N(μ(s), φ(s)²·σ² + 1e-6) per dimension: smooth, state-dependent exploration instead of white noise.
///
/// Parameter names: `pi.<i>.weight|bias` (policy trunk and head, a torch `Sequential`), `vf.<i>.weight|bias`
/// (value net), and `log_std` for continuous actions (`[d]`, or `[features, d]` with gSDE).
public final class ActorCriticPolicy: Module {
    public enum Head { case categorical(actions: Int), gaussian(dimensions: Int, low: [Float], high: [Float]) }

    public let head: Head
    public let policyNet: Sequential
    public let valueNet: Sequential
    public let logStd: Tensor?
    public let hiddenActivation: Activation
    public let observationSize: Int
    /// gSDE's feature count (the trunk's last width), 0 without state-dependent exploration.
    public let stateDependentFeatures: Int
    /// gSDE's exploration matrices W, one `[features × d]` per environment (see `resetNoise`).
    private var explorationMatrices: [[Float]] = []

    /// The policy `kwargs` describe (`net_arch`, `activation_fn`, `ortho_init`, `log_std_init`) for `environment`'s
    /// observation and action spaces.
    public static func make(for environment: Environment, kwargs: PolicyKwargs, stateDependentExploration: Bool = false,
                            using rng: inout SeededGenerator) throws -> ActorCriticPolicy {
        let outputs = switch environment.actionSpace {
        case let .discrete(n): n
        case let .box(low, _, _): low.count
        }
        let inputs = environment.observationSpace.flatCount
        let layers = try kwargs.hiddenLayers(inputs: inputs, outputs: outputs)
        return try ActorCriticPolicy(observationSpace: environment.observationSpace, actionSpace: environment.actionSpace,
                                     policyLayers: layers.policy, valueLayers: layers.value, activation: kwargs.activation,
                                     orthogonalInit: kwargs.orthoInit, logStdInit: kwargs.logStdInit,
                                     stateDependentExploration: stateDependentExploration,
                                     extractor: FeaturesExtractor.resolve(kwargs.featuresExtractor, for: environment.observationSpace),
                                     using: &rng)
    }

    /// Builds the policy for flat observations of `observationSize` values and `actionSpace`.
    public convenience init(observationSize: Int, actionSpace: Space, policyLayers: [Int], valueLayers: [Int],
                            activation: Activation = .tanh, orthogonalInit: Bool = true, logStdInit: Float = 0,
                            stateDependentExploration: Bool = false, using rng: inout SeededGenerator) {
        try! self.init(observationSpace: .box(low: -.infinity, high: .infinity, shape: [observationSize]), actionSpace: actionSpace,
                       policyLayers: policyLayers, valueLayers: valueLayers, activation: activation,
                       orthogonalInit: orthogonalInit, logStdInit: logStdInit,
                       stateDependentExploration: stateDependentExploration, extractor: .flatten, using: &rng)
    }

    /// Builds the policy for `observationSpace` and `actionSpace`, each network with its own copy of the `extractor`
    /// (SB3's `share_features_extractor=False`: the actor and the critic share no parameters).
    public init(observationSpace: Space, actionSpace: Space, policyLayers: [Int], valueLayers: [Int],
                activation: Activation = .tanh, orthogonalInit: Bool = true, logStdInit: Float = 0,
                stateDependentExploration: Bool = false, extractor: FeaturesExtractor, using rng: inout SeededGenerator) throws {
        let observationSize = observationSpace.flatCount
        self.observationSize = observationSize
        hiddenActivation = activation
        let outputs: Int
        switch actionSpace {
        case let .discrete(n):
            head = .categorical(actions: n); outputs = n; logStd = nil
            stateDependentFeatures = 0
        case let .box(low, high, _):
            head = .gaussian(dimensions: low.count, low: low, high: high); outputs = low.count
            stateDependentFeatures = stateDependentExploration
                ? (policyLayers.last ?? (extractor == .flatten ? observationSize : FeaturesExtractor.featuresDim)) : 0
            let shape = stateDependentExploration ? [stateDependentFeatures, low.count] : [low.count]
            let s = Tensor.full(logStdInit, shape: shape, requiresGrad: true)
            s.name = "log_std"
            logStd = s
        }
        policyNet = try extractor.network(observationSpace: observationSpace, hidden: policyLayers, outputs: outputs,
                                          activation: activation, using: &rng)
        valueNet = try extractor.network(observationSpace: observationSpace, hidden: valueLayers, outputs: 1,
                                         activation: activation, using: &rng)
        if orthogonalInit {
            ActorCriticPolicy.orthogonalize(policyNet, outputGain: 0.01, using: &rng)
            ActorCriticPolicy.orthogonalize(valueNet, outputGain: 1, using: &rng)
        }
    }

    /// SB3's ortho_init: every Linear and Conv2d gets an orthogonal weight (gain √2, the output layer `outputGain`)
    /// and zero bias.
    static func orthogonalize(_ net: Sequential, outputGain: Float, using rng: inout SeededGenerator) {
        let weighted: [(weight: Tensor, bias: Tensor?)] = net.layers.compactMap { layer in
            if let linear = layer as? Linear { return (linear.weight, linear.bias) }
            if let conv = layer as? Conv2d { return (conv.weight, conv.bias) }
            return nil
        }
        for (i, layer) in weighted.enumerated() {
            Initializer.orthogonal(layer.weight, gain: i == weighted.count - 1 ? outputGain : Float(2).squareRoot(), using: &rng)
            if let b = layer.bias { Initializer.constant(b, 0) }
        }
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        var all = prefixed("pi", policyNet.namedParameters()) + prefixed("vf", valueNet.namedParameters())
        if let logStd { all.append((name: "log_std", tensor: logStd)) }
        return all
    }

    /// Where the value network's parameters start in `namedParameters()`: the split an optimizer's update takes when
    /// the value half of the loss was differentiated on the helper core (`Optimizer.helperPartition`).
    public var valueParameterIndex: Int { policyNet.namedParameters().count }

    /// The action distribution for a batch of observations `[n, observationSize]`.
    public func distribution(_ observations: Tensor) -> PolicyDistribution {
        switch head {
        case .categorical: return .categorical(Categorical(logits: policyNet(observations)))
        case .gaussian:
            guard usesStateDependentExploration else {
                return .gaussian(DiagonalGaussian(mean: policyNet(observations), logStd: logStd!))
            }
            let (features, mean) = featuresAndOutput(observations)
            return .gaussian(DiagonalGaussian(mean: mean, logStd: stateDependentLogStd(features)))
        }
    }

    /// Whether continuous exploration is state-dependent (gSDE).
    public var usesStateDependentExploration: Bool { stateDependentFeatures > 0 }

    /// Actions to explore with for a batch of observations, and their distribution: samples of the distribution,
    /// or with gSDE μ(s) + φ(s)·W, row i using environment i's matrix (matrix 0 when the batch is not one row per
    /// environment).
    public func explore(_ observations: Tensor, using rng: inout SeededGenerator) -> (actions: Tensor, distribution: PolicyDistribution) {
        guard usesStateDependentExploration else {
            let distribution = distribution(observations)
            return (distribution.actions(deterministic: false, using: &rng), distribution)
        }
        let (features, mean) = featuresAndOutput(observations)
        if explorationMatrices.isEmpty { resetNoise(count: 1, using: &rng) }
        let n = mean.shape[0], d = actionSize, f = stateDependentFeatures
        var actions = mean.data
        features.data.withUnsafeBufferPointer { phi in
            for i in 0..<n {
                let w = explorationMatrices[explorationMatrices.count == n ? i : 0]
                for k in 0..<d {
                    var noise: Float = 0
                    for j in 0..<f { noise += phi[i * f + j] * w[j * d + k] }
                    actions[i * d + k] += noise
                }
            }
        }
        let distribution = DiagonalGaussian(mean: mean, logStd: stateDependentLogStd(features))
        return (Tensor(actions, shape: [n, d]), .gaussian(distribution))
    }

    /// Draws gSDE's exploration matrices W ~ N(0, σ²), one per environment; does nothing without gSDE.
    public func resetNoise(count: Int, using rng: inout SeededGenerator) {
        guard usesStateDependentExploration else { return }
        let sigma = logStd!.data.map { Foundation.exp($0) }
        explorationMatrices = (0..<count).map { _ in sigma.map { $0 * Float(rng.nextGaussian()) } }
    }

    /// The policy trunk's last hidden features φ(s) and the head's output μ(s).
    private func featuresAndOutput(_ observations: Tensor) -> (features: Tensor, output: Tensor) {
        var h = observations
        for layer in policyNet.layers.dropLast() { h = layer(h) }
        return (h, policyNet.layers.last!(h))
    }

    /// gSDE's per-row log σ: ½·log(φ(s)²·exp(2·log_std) + 1e-6), the features without gradient.
    private func stateDependentLogStd(_ features: Tensor) -> Tensor {
        let variance = features.detached().square().matmul((logStd! * 2).exp())
        return (variance + 1e-6).log() * 0.5
    }

    /// V(s) for a batch of observations, shape `[n]`.
    public func value(_ observations: Tensor) -> Tensor {
        valueNet(observations).reshaped([observations.shape[0]])
    }

    /// V(s) for one raw observation, normalized with `normalizer` when given (no graph is recorded).
    public func stateValue(_ observation: [Float], normalizer: ObservationNormalizer? = nil) -> Double {
        let observation = normalizer?.normalize(observation, update: false) ?? observation
        return Tensor.withoutGrad { Double(value(Tensor(observation, shape: [1, observationSize])).item) }
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

    /// The mean entropy, for a loss that weights it by `coefficient`. With coefficient 0 (the zoo's CartPole
    /// settings) it is only reported: it is computed outside the graph, so the backward pass skips a branch whose
    /// gradient would be exactly zero.
    public func meanEntropy(weightedBy coefficient: Float) -> Tensor {
        guard coefficient == 0 else { return entropy().mean() }
        switch self {
        case let .categorical(c): return Tensor(scalar: c.meanEntropyValue())
        case .gaussian: return Tensor.withoutGrad { entropy().mean() }
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

/// What PPO, A2C and REINFORCE share around their actor-critic policy: its state, acting, checkpoints and V(s). Each
/// subclass keeps its config and its training loop, the algorithm itself, in a file of its own.
public class ActorCriticAgent {
    public internal(set) var stepsDone = 0
    let factory: EnvironmentFactory
    let seed: UInt64
    var rng: SeededGenerator
    let policy: ActorCriticPolicy
    let optimizer: Optimizer
    /// Observation normalization (the running statistics), where the config asks for it.
    let normalizer: ObservationNormalizer?
    /// PPO's and A2C's rollout collector, kept between `train` calls so that a checkpoint can save its environments
    /// (`trainingState()`) and a resumed run continue them (`resumeCollector`).
    var collector: RolloutCollector?

    /// The agent for `environment` with `policy` (drawn from `rng`, seeded by `seed`) and its `optimizer`.
    init(environment: EnvironmentFactory, seed: UInt64, rng: SeededGenerator, policy: ActorCriticPolicy,
         optimizer: Optimizer, normalizer: ObservationNormalizer? = nil) {
        factory = environment
        self.seed = seed
        self.rng = rng
        self.policy = policy
        self.optimizer = optimizer
        self.normalizer = normalizer
    }

    public func act(_ observation: [Float], deterministic: Bool) -> Action {
        policy.act(observation, normalizer: normalizer, deterministic: deterministic, using: &rng)
    }

    public func act(batch observations: [Float], count: Int, deterministic: Bool) -> [Action] {
        policy.act(batch: observations, count: count, normalizer: normalizer, deterministic: deterministic, using: &rng)
    }

    public func checkpoint() throws -> AgentCheckpoint {
        policy.checkpoint(optimizer: optimizer, normalizer: normalizer, rng: rng)
    }

    public func restore(_ checkpoint: AgentCheckpoint) throws {
        try policy.restore(from: checkpoint, optimizer: optimizer, normalizer: normalizer)
        rng = try checkpoint.metadata.value(.rngState)
        stepsDone = try checkpoint.metadata.value(.step)
    }

    /// The collector `train` continues with: the one kept from before (or resumed), else a new one whose
    /// environments start from the seed and steps done.
    func rolloutCollector(count: Int) throws -> RolloutCollector {
        let collector = try self.collector
            ?? RolloutCollector(factory: factory, count: count, seed: seed &+ UInt64(stepsDone), policy: policy, normalizer: normalizer)
        self.collector = collector
        return collector
    }

    /// The collector's state between rollouts (PPO, A2C).
    public func trainingState() -> TrainingState? { collector?.trainingState() }

    /// Continues `count` environments from `state` (PPO, A2C).
    func resumeCollector(from state: TrainingState, count: Int) throws {
        collector = try RolloutCollector(factory: factory, count: count, policy: policy, normalizer: normalizer, resuming: state)
    }

    /// Differentiates the actor's and the critic's halves of a loss beside each other (`ExecutionPolicy.independently`):
    /// the two networks share no parameters, so the gradients are exactly those of the summed loss. The optimizer
    /// then updates each network on the core that computed its gradients, cut at the critic's first parameter.
    func differentiateApart<A, B>(actor: () -> A, critic: () -> B) -> (A, B) {
        optimizer.helperPartition = policy.valueParameterIndex
        return ExecutionPolicy.independently(actor, critic)
    }

    /// V(s), the critic's value (REINFORCE's learned baseline).
    public func stateValue(_ observation: [Float]) -> Double {
        policy.stateValue(observation, normalizer: normalizer)
    }
}
