import Environments
import RLCore
import SeededRandom
import Support
import Training

/// An agent's typed config: each algorithm declares a `Config` struct whose `fields` map the rl-baselines3-zoo keys
/// onto its properties (see `TypedConfig`). The agent decodes it from the layered settings with `Config(settings)`
/// and reads typed fields from then on: a misspelt field is a compile error, a misspelt key in a file or `--set` an
/// error naming the key and the file. Settings several algorithms share are declared once: the keys every agent has
/// as `ConfigField` kinds below, the actor-critic ones in `ActorCriticSettings` and `RolloutSettings`, ε-greedy
/// exploration in `ExplorationSettings`.
public protocol AgentConfig: TypedConfig {
    /// `n_timesteps`: the environment steps of a run.
    var timesteps: Int { get }
}

extension AgentConfig {
    /// The steps the layered `settings` ask for (decoding them all, so that any bad value is an error first).
    static func timesteps(in settings: HyperParameters) throws -> Int { try Self(settings).timesteps }
}

extension ConfigField {
    /// `n_timesteps`.
    static func timesteps(_ path: WritableKeyPath<Config, Int>) -> Self {
        .int(AgentDescriptor.timestepsKey, path, min: 1, max: Limits.timesteps, "environment steps of a run (--steps overrides it)")
    }

    /// `gamma`.
    static func gamma(_ path: WritableKeyPath<Config, Double>) -> Self {
        .double("gamma", path, in: 0...1, "discount factor γ")
    }

    /// `learning_rate` of an agent trained by gradient steps.
    static func learningRate(_ path: WritableKeyPath<Config, ZooSchedule>) -> Self {
        .schedule("learning_rate", path, "the optimizer's step size")
    }

    /// `max_grad_norm`.
    static func maxGradNorm(_ path: WritableKeyPath<Config, Double>) -> Self {
        .double("max_grad_norm", path, above: 0, "each step's gradient is clipped to this global norm")
    }
}

/// The settings PPO, A2C and REINFORCE share; each algorithm's `Config` holds one, built with its own defaults.
public struct ActorCriticSettings: Sendable, Equatable {
    public var timesteps: Int
    public var learningRate: ZooSchedule
    /// Steps collected per update: from each environment (PPO, A2C), at least this many in whole episodes (REINFORCE).
    public var numSteps: Int
    public var normalizeAdvantage: Bool
    public var gamma = 0.99
    public var entCoef = 0.0
    public var vfCoef = 0.5
    public var maxGradNorm = 0.5
    public var policy = PolicyKwargs(netArch: [64, 64], activation: .tanh)

    public init(timesteps: Int, learningRate: Double, numSteps: Int, normalizeAdvantage: Bool) {
        self.timesteps = timesteps; self.learningRate = .constant(learningRate); self.numSteps = numSteps
        self.normalizeAdvantage = normalizeAdvantage
    }

    /// The fields of the settings at `path` of a config; `stepsHelp` says what `n_steps` counts for the algorithm, and
    /// `policyEntries` which `policy_kwargs` its networks take.
    static func fields<C>(_ path: WritableKeyPath<C, Self>, stepsHelp: String = "steps from each environment per rollout",
                          policyEntries: [PolicyKwargs.Entry] = PolicyKwargs.Entry.feedForward) -> [ConfigField<C>] {
        [.timesteps(path.appending(path: \.timesteps)),
         .int("n_steps", path.appending(path: \.numSteps), min: 1, max: Limits.rolloutSteps, stepsHelp),
         .learningRate(path.appending(path: \.learningRate)),
         .gamma(path.appending(path: \.gamma)),
         .double("ent_coef", path.appending(path: \.entCoef), "weight of the entropy bonus"),
         .double("vf_coef", path.appending(path: \.vfCoef), atLeast: 0, "weight of the value loss"),
         .maxGradNorm(path.appending(path: \.maxGradNorm)),
         .bool("normalize_advantage", path.appending(path: \.normalizeAdvantage), "standardize the advantages of each minibatch"),
         .policyKwargs(path.appending(path: \.policy), entries: policyEntries,
                       "the policy and value networks")]
    }

    /// Refuses a rollout of `environments` × `n_steps` transitions above `Limits.rolloutSteps`, and one longer than
    /// `Limits.longRollout` that is more than `Limits.rolloutOverrun` times the run (whose length would then be the
    /// rollout's, not the steps asked for): errors naming `n_steps` and the sizes.
    func validateRollout(environments: Int, _ hp: HyperParameters) throws {
        let rows = numSteps * environments  // both bounded by their fields: no overflow
        let product = environments == 1 ? "\(numSteps) steps" : "n_envs × n_steps = \(environments) × \(numSteps) = \(rows) steps"
        if rows > Limits.rolloutSteps {
            throw hp.fail("n_steps", "a rollout of \(product) is above the limit of \(Limits.rolloutSteps)")
        }
        if rows > Limits.longRollout && rows > Limits.rolloutOverrun * timesteps {
            throw hp.fail("n_steps", "a rollout of \(product) is more than \(Limits.rolloutOverrun) times the run's "
                          + "\(timesteps) steps (n_timesteps or --steps), and the run would take at least one rollout")
        }
    }

    /// Refuses a rollout of `environments` × `n_steps` transitions of `observationSize` and `actionSize` values
    /// that would not fit in memory (`Limits.memoryBytes`), naming `n_steps`.
    func checkRolloutMemory(environments: Int, observationSize: Int, actionSize: Int, _ hp: HyperParameters) throws {
        let bytes = RolloutBuffer.bytes(numSteps: numSteps, numEnvs: environments, observationSize: observationSize,
                                        actionSize: actionSize)
        if let problem = Limits.memoryProblem(bytes: bytes, for: "a rollout of \(numSteps * environments) steps of \(observationSize) observation values") {
            throw hp.fail("n_steps", problem)
        }
    }
}

/// What PPO and A2C add: rollouts from a vector of environments, GAE and SB3's VecNormalize.
public struct RolloutSettings: Sendable, Equatable {
    public var numEnvs = 1
    public var gaeLambda: Double
    public var normalize = false

    public init(gaeLambda: Double) { self.gaeLambda = gaeLambda }

    static func fields<C>(_ path: WritableKeyPath<C, Self>) -> [ConfigField<C>] {
        [.int("n_envs", path.appending(path: \.numEnvs), min: 1, max: Limits.environments, "environments stepped together"),
         .double("gae_lambda", path.appending(path: \.gaeLambda), in: 0...1, "λ of GAE (1: plain n-step returns)"),
         .bool("normalize", path.appending(path: \.normalize),
               "normalize observations and rewards by running statistics (SB3's VecNormalize)")]
    }

    /// The normalizer `normalize` asks for, for observations of `size` and returns discounted by `gamma`.
    func normalizer(size: Int, gamma: Float) -> ObservationNormalizer? {
        normalize ? ObservationNormalizer(size: size, gamma: Double(gamma)) : nil
    }
}

/// ε-greedy exploration (DQN, tabular TD): ε decays linearly from `initial` to `final` over `fraction` of the run.
public struct ExplorationSettings: Sendable, Equatable {
    public var fraction: Double
    public var initial = 1.0
    public var final: Double

    public init(fraction: Double, final: Double) { self.fraction = fraction; self.final = final }

    static func fields<C>(_ path: WritableKeyPath<C, Self>) -> [ConfigField<C>] {
        [.double("exploration_fraction", path.appending(path: \.fraction), in: 0...1, "part of the run over which ε decays"),
         .double("exploration_initial_eps", path.appending(path: \.initial), in: 0...1, "ε at the start"),
         .double("exploration_final_eps", path.appending(path: \.final), in: 0...1,
                 "ε after the decay, and when acting non-deterministically")]
    }

    /// ε after `step` of `total` steps.
    public func epsilon(step: Int, total: Int) -> Double {
        let progress = Double(step) / max(1, fraction * Double(total))
        return progress >= 1 ? final : initial + progress * (final - initial)
    }
}
