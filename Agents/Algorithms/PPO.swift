import Environments
import Foundation
import RLCore
import SeededRandom
import Support
import Training

/// Proximal Policy Optimization with a clipped surrogate objective (Schulman et al., 2017), as
/// Stable-Baselines3 implements it.
///
/// Each iteration:
/// 1. Collect `n_steps` transitions from each of `n_envs` environments with the current policy.
/// 2. Compute advantages with GAE(γ, λ) and returns = advantages + values.
/// 3. For `n_epochs` epochs, over shuffled minibatches of `batch_size`:
///      r = π(a|s) / π_old(a|s),  Â normalized per minibatch,
///      L_clip = −mean(min(r·Â, clip(r, 1−ε, 1+ε)·Â))
///      L_V    = mean((R − V(s))²)        (optionally with V clipped around the old values)
///      L      = L_clip − c_ent·mean(H[π]) + c_V·L_V
///    one Adam step after clipping the global gradient norm to `max_grad_norm`.
/// The learning rate and ε may decay linearly (`lin_<x>`); observations (and rewards) are normalized when
/// `normalize` is set, as SB3's VecNormalize does.
public final class PPOAgent: ActorCriticAgent, Agent, ValueEstimating {
    /// PPO's settings with SB3's defaults; `fields` says what each key means (`rlbench list agents` prints them).
    public struct Config: AgentConfig {
        public var common = ActorCriticSettings(timesteps: 1_000_000, learningRate: 3e-4, numSteps: 2048, normalizeAdvantage: true)
        public var rollout = RolloutSettings(gaeLambda: 0.95)
        public var batchSize = 64
        public var epochs = 10
        public var clipRange = ZooSchedule.constant(0.2)
        public var clipRangeVF = 0.0
        public var targetKL = 0.0
        public var useSDE = false
        public var sdeSampleFrequency = -1
        public var timesteps: Int { common.timesteps }
        public init() {}

        public static var fields: [ConfigField<Config>] {
            ActorCriticSettings.fields(\.common) + RolloutSettings.fields(\.rollout) + [
                .int("batch_size", \.batchSize, min: 1, max: Limits.batchSize, "minibatch size"),
                .int("n_epochs", \.epochs, min: 1, max: Limits.updateEpochs, "passes over each rollout"),
                .schedule("clip_range", \.clipRange, "ε of the clipped surrogate objective"),
                .double("clip_range_vf", \.clipRangeVF, atLeast: 0, "clip of the value prediction around the old one (0: none)"),
                .double("target_kl", \.targetKL, atLeast: 0, "an update stops at a minibatch whose approximate KL passes 1.5 × this (0: never)"),
                .bool("use_sde", \.useSDE, "generalized state-dependent exploration (continuous actions)"),
                .int("sde_sample_freq", \.sdeSampleFrequency, min: -1, "steps between new exploration matrices (-1: once per rollout)"),
            ]
        }

        public func validate(_ settings: HyperParameters) throws {
            try common.validateRollout(environments: rollout.numEnvs, settings)
        }
    }

    public static let descriptor = AgentDescriptor(
        name: "ppo", summary: "Proximal Policy Optimization (clipped surrogate, GAE, minibatch epochs)",
        config: Config.self, actionKinds: [.discrete, .continuous],
        diagnostics: ["learning_rate", "clip_range", "policy_loss", "value_loss", "entropy", "approx_kl",
                      "clip_fraction", "explained_variance"])

    let config: Config

    public init(environment: EnvironmentFactory, hyperParameters hp: HyperParameters, seed: UInt64) throws {
        config = try Config(hp)
        let probe = try environment.make()
        if config.useSDE, case .discrete = probe.actionSpace {
            throw hp.fail(\Config.useSDE, "state-dependent exploration needs continuous (Box) actions; "
                          + "\(environment.id) has \(probe.actionSpace)")
        }
        var rng = SeededGenerator(seed: seed)
        let policy = try ActorCriticPolicy.make(for: probe, kwargs: config.common.policy,
                                                stateDependentExploration: config.useSDE, using: &rng)
        try config.common.checkRolloutMemory(environments: config.rollout.numEnvs, observationSize: policy.observationSize,
                                             actionSize: policy.actionSize, hp)
        let optimizer = Adam(policy.namedParameters(), learningRate: Float(config.common.learningRate.initial), eps: 1e-5)
        super.init(environment: environment, seed: seed, rng: rng, policy: policy, optimizer: optimizer,
                   normalizer: config.rollout.normalizer(size: policy.observationSize, gamma: Float(config.common.gamma)))
    }

    public func resumeTraining(from state: TrainingState, totalSteps: Int) throws {
        try resumeCollector(from: state, count: config.rollout.numEnvs)
    }

    public func train(totalSteps: Int, context: TrainingContext) throws {
        let numEnvs = config.rollout.numEnvs, batchSize = config.batchSize
        let gamma = Float(config.common.gamma), lambda = Float(config.rollout.gaeLambda)
        let collector = try rolloutCollector(count: numEnvs)
        collector.sdeSampleFrequency = config.sdeSampleFrequency
        var buffer = RolloutBuffer(numSteps: config.common.numSteps, numEnvs: numEnvs, observationSize: policy.observationSize,
                                   actionSize: policy.actionSize)
        while stepsDone < totalSteps {
            // 1. Collect a rollout with the current policy.
            let lastValues = try collector.collect(into: &buffer, stepsDone: &stepsDone, rng: &rng, context: context)
            buffer.computeAdvantages(lastValues: lastValues, gamma: gamma, lambda: lambda)

            // 2. Optimize the clipped surrogate for several epochs of minibatches.
            let (lr, clip) = config.scheduled(stepsDone: stepsDone, totalSteps: totalSteps)
            optimizer.learningRate = lr
            var stats = UpdateStatistics()
            let validRows = (0..<buffer.count).filter { buffer.valid[$0] != 0 }
            // With target_kl, a minibatch whose approximate KL is past 1.5 × target_kl ends the update before its step.
            let targetKL = Float(config.targetKL)
            let maxKL = targetKL > 0 ? 1.5 * targetKL : nil
            epochLoop: for _ in 0..<config.epochs {
                var order = validRows
                rng.shuffle(&order)
                for start in stride(from: 0, to: order.count, by: batchSize) {
                    let rows = Array(order[start ..< min(start + batchSize, order.count)])
                    guard try update(rows, buffer, clip: clip, maxKL: maxKL, stats: &stats, step: stepsDone) else { break epochLoop }
                }
            }
            try context.recordDiagnostics(step: stepsDone, stats.summary(learningRate: lr, clipRange: clip,
                                                                        values: buffer.values, returns: buffer.returns, valid: buffer.valid))
            try context.tick(step: stepsDone)
        }
    }

    /// One gradient step on the minibatch `rows`, unless the approximate KL divergence of the policy before it exceeds
    /// `maxKL` (SB3's target_kl early stop): then no step, and false.
    private func update(_ rows: [Int], _ buffer: RolloutBuffer, clip: Float, maxKL: Float?, stats: inout UpdateStatistics,
                        step: Int) throws -> Bool {
        let batch = RolloutBatch(buffer, rows: rows)
        let minibatchStep = ClippedSurrogateStep(entCoef: Float(config.common.entCoef), vfCoef: Float(config.common.vfCoef),
                                                 clipRangeVF: Float(config.clipRangeVF), maxGradNorm: Float(config.common.maxGradNorm),
                                                 normalizeAdvantage: config.common.normalizeAdvantage, lossName: "ppo loss")
        return try minibatchStep.run(batch, clip: clip, maxKL: maxKL, optimizer: optimizer, stats: &stats, step: step,
                                     distribution: { [policy] in policy.distribution(batch.observations) },
                                     value: { [policy] in policy.value(batch.observations) },
                                     apart: { differentiateApart(actor: $0, critic: $1) })
    }
}
