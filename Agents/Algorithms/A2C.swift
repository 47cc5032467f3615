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
public final class A2CAgent: ActorCriticAgent {
    public static let descriptor = AgentDescriptor(
        name: "a2c", summary: "Advantage Actor-Critic (n-step returns or GAE, entropy bonus, RMSprop) on a vector of envs",
        actionKinds: [.discrete, .continuous],
        defaults: [
            "n_timesteps": .number(1e6), "n_envs": .number(1), "n_steps": .number(5), "learning_rate": .number(7e-4),
            "gamma": .number(0.99), "gae_lambda": .number(1.0), "ent_coef": .number(0), "vf_coef": .number(0.5),
            "max_grad_norm": .number(0.5), "use_rms_prop": .bool(true), "rms_prop_eps": .number(1e-5),
            "normalize_advantage": .bool(false), "normalize": .bool(false),
            "policy_kwargs": .map(["net_arch": .list([.number(64), .number(64)]), "activation_fn": .string("tanh"),
                                   "ortho_init": .bool(true), "log_std_init": .number(0)]),
        ],
        diagnostics: ["learning_rate", "policy_loss", "value_loss", "entropy", "explained_variance"])

    public internal(set) var stepsDone = 0
    let factory: EnvironmentFactory
    let numEnvs, numSteps: Int
    let gamma, gaeLambda, entCoef, vfCoef, maxGradNorm: Float
    let learningRate: ZooSchedule
    let normalizeAdvantage: Bool
    let policy: ActorCriticPolicy
    let optimizer: Optimizer
    let normalizer: ObservationNormalizer?
    var rng: SeededGenerator
    let seed: UInt64

    public init(environment: EnvironmentFactory, hyperParameters hp: HyperParameters, seed: UInt64) throws {
        factory = environment
        self.seed = seed
        numEnvs = try hp.int("n_envs", min: 1)
        numSteps = try hp.int("n_steps", min: 1)
        gamma = Float(try hp.double("gamma", in: 0...1))
        gaeLambda = Float(try hp.double("gae_lambda", in: 0...1))
        entCoef = Float(try hp.double("ent_coef"))
        vfCoef = Float(try hp.double("vf_coef", atLeast: 0))
        maxGradNorm = Float(try hp.double("max_grad_norm", above: 0))
        learningRate = try hp.schedule("learning_rate")
        normalizeAdvantage = try hp.bool("normalize_advantage")
        rng = SeededGenerator(seed: seed)
        policy = try ActorCriticPolicy.make(for: environment, hyperParameters: hp, using: &rng)
        let lr = Float(learningRate.initial)
        optimizer = try hp.bool("use_rms_prop")
            ? RMSprop(policy.namedParameters(), learningRate: lr, alpha: 0.99, eps: Float(try hp.double("rms_prop_eps", above: 0)))
            : Adam(policy.namedParameters(), learningRate: lr, eps: 1e-5)  // SB3's ActorCriticPolicy default
        optimizer.helperPartition = policy.valueParameterIndex
        normalizer = try hp.bool("normalize") ? ObservationNormalizer(size: policy.observationSize, gamma: Double(gamma)) : nil
    }

    public func train(totalSteps: Int, context: TrainingContext) throws {
        let collector = try RolloutCollector(factory: factory, count: numEnvs, seed: seed &+ UInt64(stepsDone),
                                             policy: policy, normalizer: normalizer)
        var buffer = RolloutBuffer(numSteps: numSteps, numEnvs: numEnvs, observationSize: policy.observationSize,
                                   actionSize: policy.actionSize)
        while stepsDone < totalSteps {
            // 1. Collect n_steps from every environment and compute the returns.
            let lastValues = try collector.collect(into: &buffer, stepsDone: &stepsDone, rng: &rng, context: context)
            buffer.computeAdvantages(lastValues: lastValues, gamma: gamma, lambda: gaeLambda)
            let rows = (0..<buffer.count).filter { buffer.valid[$0] != 0 }
            guard !rows.isEmpty else { continue }

            // 2. One gradient step on the whole rollout.
            let lr = Float(learningRate.value(progressRemaining: 1 - Double(stepsDone) / Double(totalSteps)))
            optimizer.learningRate = lr
            var batch = RolloutBatch(buffer, rows: rows)
            if normalizeAdvantage && rows.count > 1 { standardize(&batch.advantages) }
            // Policy and value networks share no parameters: their halves of the loss are differentiated on two cores.
            optimizer.zeroGrad()
            let ((policyLoss, entropy), valueLoss) = ForkJoin.both({
                let dist = policy.distribution(batch.observations)
                let policyLoss = -(Tensor(batch.advantages, shape: [rows.count]) * dist.logProb(batch.actions)).mean()
                let entropy = dist.meanEntropy(weightedBy: entCoef)
                (policyLoss - entCoef * entropy).backward()
                return (policyLoss, entropy)
            }, {
                let valueLoss = mseLoss(policy.value(batch.observations), batch.returns)
                (vfCoef * valueLoss).backward()
                return valueLoss
            })
            let loss = policyLoss.item - entCoef * entropy.item + vfCoef * valueLoss.item
            guard loss.isFinite else { throw AgentError.nonFinite(step: stepsDone, quantity: "a2c loss") }
            optimizer.clipGradNormAndStep(maxNorm: maxGradNorm)

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
