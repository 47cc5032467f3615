import Environments
import Foundation
import RLCore
import SeededRandom
import Training

/// REINFORCE (Williams, 1992) with a learned state-value baseline and reward-to-go.
///
/// Each update plays whole episodes with the current policy until at least `n_steps` steps are collected, then for
/// every step t computes the reward-to-go G_t = Σ_k γ^k r_{t+k} (bootstrapped with V(s_T) only when an episode was
/// truncated by the time limit) and takes one gradient step on
///     L = −mean((G_t − V(s_t)) · log π(a_t|s_t)) + c_V · mean((G_t − V(s_t))²) − c_ent · mean(H[π])
/// where the advantage G_t − V(s_t) is treated as a constant (and normalized when `normalize_advantage`).
public final class REINFORCEAgent: ActorCriticAgent, Agent, ValueEstimating {
    /// REINFORCE's settings are the actor-critic ones (without a vector of environments).
    public struct Config: AgentConfig {
        public var common = ActorCriticSettings(timesteps: 200_000, learningRate: 3e-3, numSteps: 2048, normalizeAdvantage: true)
        public var timesteps: Int { common.timesteps }
        public init() {}
        public static var fields: [ConfigField<Config>] {
            ActorCriticSettings.fields(\.common, stepsHelp: "fewest steps per update (of whole episodes)")
        }

        public func validate(_ settings: HyperParameters) throws {
            try common.validateRollout(environments: 1, settings)
        }
    }

    public static let descriptor = AgentDescriptor(
        name: "reinforce", summary: "REINFORCE policy gradient with reward-to-go and a learned value baseline",
        config: Config.self, actionKinds: [.discrete, .continuous],
        diagnostics: ["learning_rate", "policy_loss", "value_loss", "entropy"])

    let config: Config

    /// REINFORCE acts on raw observations: no normalizer (the zoo's configs do not normalize them).
    public init(environment: EnvironmentFactory, hyperParameters hp: HyperParameters, seed: UInt64) throws {
        config = try Config(hp)
        var rng = SeededGenerator(seed: seed)
        let policy = try ActorCriticPolicy.make(for: environment.make(), kwargs: config.common.policy, using: &rng)
        try config.common.checkRolloutMemory(environments: 1, observationSize: policy.observationSize,
                                             actionSize: policy.actionSize, hp)
        super.init(environment: environment, seed: seed, rng: rng, policy: policy,
                   optimizer: Adam(policy.namedParameters(), learningRate: Float(config.common.learningRate.initial)))
    }

    /// The environment `train` plays on, kept between calls so that a checkpoint can save it (`trainingState()`):
    /// updates come between whole episodes, so the environment's snapshot is all a resumed run needs.
    private var environment: Environment?

    public override func trainingState() -> TrainingState? {
        guard let snapshot = environment?.snapshot() else { return nil }
        var state = TrainingState()
        state.words["environment"] = snapshot.words
        return state
    }

    public func resumeTraining(from state: TrainingState, totalSteps: Int) throws {
        let env = try factory.make()
        try env.restore(try state.snapshot("environment"))
        environment = env
    }

    public func train(totalSteps: Int, context: TrainingContext) throws {
        // The first episode is seeded from the run's seed and steps done; a continued environment goes on.
        var firstReset = environment == nil
        let env = try environment ?? factory.make()
        environment = env
        let obsSize = policy.observationSize, actSize = policy.actionSize
        let gamma = Float(config.common.gamma), entCoef = Float(config.common.entCoef), vfCoef = Float(config.common.vfCoef)
        while stepsDone < totalSteps {
            // 1. Play whole episodes until the batch holds at least n_steps steps.
            var observations: [Float] = [], actions: [Float] = [], returns: [Float] = []
            while returns.count < config.common.numSteps {
                var observation = env.reset(seed: firstReset ? seed &+ UInt64(stepsDone) : nil)
                firstReset = false
                var rewards: [Float] = []
                var bootstrap: Float = 0
                while true {
                    let a = Tensor.withoutGrad {
                        policy.distribution(Tensor(observation, shape: [1, obsSize])).actions(deterministic: false, using: &rng)
                    }
                    observations += observation
                    actions += a.data
                    let result = try a.data.withUnsafeBufferPointer { try env.step(policy.environmentAction($0)) }
                    rewards.append(Float(result.reward))
                    stepsDone += 1
                    observation = result.observation
                    if result.terminated || result.truncated {
                        if result.truncated && !result.terminated {
                            bootstrap = Tensor.withoutGrad { policy.value(Tensor(observation, shape: [1, obsSize])).item }
                        }
                        context.episodeFinished(step: stepsDone, episodeReturn: Double(rewards.reduce(0, +)), length: rewards.count)
                        break
                    }
                }
                // Reward-to-go, backwards.
                var g = bootstrap
                var episodeReturns = [Float](repeating: 0, count: rewards.count)
                for t in stride(from: rewards.count - 1, through: 0, by: -1) {
                    g = rewards[t] + gamma * g
                    episodeReturns[t] = g
                }
                returns += episodeReturns
            }

            // 2. One policy-gradient step with the value baseline.
            let n = returns.count
            let obs = Tensor(observations, shape: [n, obsSize])
            let target = Tensor(returns, shape: [n])
            let values = policy.value(obs)
            var advantages = zip(returns, values.data).map { $0 - $1 }
            if config.common.normalizeAdvantage && n > 1 { standardize(&advantages) }
            let dist = policy.distribution(obs)
            let policyLoss = -(Tensor(advantages, shape: [n]) * dist.logProb(Tensor(actions, shape: [n, actSize]))).mean()
            let valueLoss = mseLoss(values, target)
            let entropy = dist.meanEntropy(weightedBy: entCoef)
            let loss = policyLoss + vfCoef * valueLoss - entCoef * entropy
            guard loss.item.isFinite else { throw AgentError.nonFinite(step: stepsDone, quantity: "reinforce loss") }
            let lr = Float(config.common.learningRate.value(progressRemaining: 1 - Double(stepsDone) / Double(totalSteps)))
            optimizer.learningRate = lr
            optimizer.zeroGrad()
            loss.backward()
            optimizer.clipGradNormAndStep(maxNorm: Float(config.common.maxGradNorm))
            try context.recordDiagnostics(step: stepsDone, ["learning_rate": Double(lr), "policy_loss": Double(policyLoss.item),
                                                            "value_loss": Double(valueLoss.item), "entropy": Double(entropy.item)])
            try context.tick(step: stepsDone)
        }
    }
}
