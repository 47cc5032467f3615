import Environments
import Foundation
import RLCore
import SeededRandom
import Training

/// Advantage Actor-Critic (Mnih et al., 2016, synchronous), as Stable-Baselines3 implements it.
///
/// Each iteration collects `n_steps` transitions from each of `n_envs` environments, computes n-step returns
/// (GAE with `gae_lambda`; λ = 1 gives plain n-step returns) and takes ONE gradient step on
///     L = −mean(Â · log π(a|s)) − c_ent · mean(H[π]) + c_V · mean((R − V(s))²)
/// with RMSprop (α = 0.99, ε = 1e-5; `use_rms_prop: false` for Adam) after clipping the global gradient norm.
public final class A2CAgent: ActorCriticAgent, Agent, ValueEstimating {
    /// A2C's settings with SB3's defaults; `fields` says what each key means (`rlbench list agents` prints them).
    public struct Config: AgentConfig {
        public var common = ActorCriticSettings(timesteps: 1_000_000, learningRate: 7e-4, numSteps: 5, normalizeAdvantage: false)
        public var rollout = RolloutSettings(gaeLambda: 1)
        public var useRMSprop = true
        public var rmsPropEps = 1e-5
        public var timesteps: Int { common.timesteps }
        public init() {}

        public static var fields: [ConfigField<Config>] {
            ActorCriticSettings.fields(\.common) + RolloutSettings.fields(\.rollout) + [
                .bool("use_rms_prop", \.useRMSprop, "RMSprop (α = 0.99) rather than Adam"),
                .double("rms_prop_eps", \.rmsPropEps, above: 0, "RMSprop's ε"),
            ]
        }

        public func validate(_ settings: HyperParameters) throws {
            try common.validateRollout(environments: rollout.numEnvs, settings)
        }
    }

    public static let descriptor = AgentDescriptor(
        name: "a2c", summary: "Advantage Actor-Critic (n-step returns or GAE, entropy bonus, RMSprop) on a vector of envs",
        config: Config.self, actionKinds: [.discrete, .continuous],
        diagnostics: ["learning_rate", "policy_loss", "value_loss", "entropy", "explained_variance"])

    let config: Config

    public init(environment: EnvironmentFactory, hyperParameters hp: HyperParameters, seed: UInt64) throws {
        config = try Config(hp)
        var rng = SeededGenerator(seed: seed)
        let policy = try ActorCriticPolicy.make(for: environment.make(), kwargs: config.common.policy, using: &rng)
        try config.common.checkRolloutMemory(environments: config.rollout.numEnvs, observationSize: policy.observationSize,
                                             actionSize: policy.actionSize, hp)
        let lr = Float(config.common.learningRate.initial)
        let optimizer: Optimizer = config.useRMSprop
            ? RMSprop(policy.namedParameters(), learningRate: lr, alpha: 0.99, eps: Float(config.rmsPropEps))
            : Adam(policy.namedParameters(), learningRate: lr, eps: 1e-5)  // SB3's ActorCriticPolicy default
        super.init(environment: environment, seed: seed, rng: rng, policy: policy, optimizer: optimizer,
                   normalizer: config.rollout.normalizer(size: policy.observationSize, gamma: Float(config.common.gamma)))
    }

    public func resumeTraining(from state: TrainingState, totalSteps: Int) throws {
        try resumeCollector(from: state, count: config.rollout.numEnvs)
    }

    public func train(totalSteps: Int, context: TrainingContext) throws {
        let numEnvs = config.rollout.numEnvs
        let gamma = Float(config.common.gamma), lambda = Float(config.rollout.gaeLambda)
        let entCoef = Float(config.common.entCoef), vfCoef = Float(config.common.vfCoef)
        let collector = try rolloutCollector(count: numEnvs)
        var buffer = RolloutBuffer(numSteps: config.common.numSteps, numEnvs: numEnvs, observationSize: policy.observationSize,
                                   actionSize: policy.actionSize)
        while stepsDone < totalSteps {
            // 1. Collect n_steps from every environment and compute the returns.
            let lastValues = try collector.collect(into: &buffer, stepsDone: &stepsDone, rng: &rng, context: context)
            buffer.computeAdvantages(lastValues: lastValues, gamma: gamma, lambda: lambda)
            let rows = (0..<buffer.count).filter { buffer.valid[$0] != 0 }
            guard !rows.isEmpty else { continue }

            // 2. One gradient step on the whole rollout.
            let lr = Float(config.common.learningRate.value(progressRemaining: 1 - Double(stepsDone) / Double(totalSteps)))
            optimizer.learningRate = lr
            var batch = RolloutBatch(buffer, rows: rows)
            if config.common.normalizeAdvantage && rows.count > 1 { standardize(&batch.advantages) }
            // Policy and value networks share no parameters: their halves of the loss are differentiated on two cores.
            optimizer.zeroGrad()
            let ((policyLoss, entropy), valueLoss) = differentiateApart(actor: {
                let dist = policy.distribution(batch.observations)
                let policyLoss = -(Tensor(batch.advantages, shape: [rows.count]) * dist.logProb(batch.actions)).mean()
                let entropy = dist.meanEntropy(weightedBy: entCoef)
                (policyLoss - entCoef * entropy).backward()
                return (policyLoss, entropy)
            }, critic: {
                let valueLoss = mseLoss(policy.value(batch.observations), batch.returns)
                (vfCoef * valueLoss).backward()
                return valueLoss
            })
            let loss = policyLoss.item - entCoef * entropy.item + vfCoef * valueLoss.item
            guard loss.isFinite else { throw AgentError.nonFinite(step: stepsDone, quantity: "a2c loss") }
            optimizer.clipGradNormAndStep(maxNorm: Float(config.common.maxGradNorm))

            var stats = UpdateStatistics()
            stats.add(policyLoss: policyLoss.item, valueLoss: valueLoss.item, entropy: entropy.item)
            var summary = stats.summary(learningRate: lr, values: buffer.values, returns: buffer.returns, valid: buffer.valid)
            summary["approx_kl"] = nil
            summary["clip_fraction"] = nil
            try context.recordDiagnostics(step: stepsDone, summary)
            try context.tick(step: stepsDone)
        }
    }
}
