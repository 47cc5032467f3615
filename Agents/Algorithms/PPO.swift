import Environments
import Foundation
import RLCore
import SeededRandom
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
public final class PPOAgent: ActorCriticAgent {
    public static let descriptor = AgentDescriptor(
        name: "ppo", summary: "Proximal Policy Optimization (clipped surrogate, GAE, minibatch epochs)",
        actionKinds: [.discrete, .continuous],
        defaults: [
            "n_timesteps": .number(1e6), "n_envs": .number(1), "n_steps": .number(2048), "batch_size": .number(64),
            "n_epochs": .number(10), "learning_rate": .number(3e-4), "gamma": .number(0.99), "gae_lambda": .number(0.95),
            "clip_range": .number(0.2), "clip_range_vf": .number(0), "normalize_advantage": .bool(true),
            "ent_coef": .number(0), "vf_coef": .number(0.5), "max_grad_norm": .number(0.5), "target_kl": .number(0),
            "normalize": .bool(false), "use_sde": .bool(false), "sde_sample_freq": .number(-1),
            "policy_kwargs": .map(["net_arch": .list([.number(64), .number(64)]), "activation_fn": .string("tanh"),
                                   "ortho_init": .bool(true), "log_std_init": .number(0)]),
        ],
        diagnostics: ["learning_rate", "clip_range", "policy_loss", "value_loss", "entropy", "approx_kl",
                      "clip_fraction", "explained_variance"])

    public internal(set) var stepsDone = 0
    let factory: EnvironmentFactory
    let numEnvs, numSteps, batchSize, epochs: Int
    let gamma, gaeLambda, entCoef, vfCoef, maxGradNorm, clipRangeVF, targetKL: Float
    let learningRate, clipRange: ZooSchedule
    let normalizeAdvantage: Bool
    let sdeSampleFrequency: Int
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
        batchSize = try hp.int("batch_size", min: 1)
        epochs = try hp.int("n_epochs", min: 1)
        gamma = Float(try hp.double("gamma", in: 0...1))
        gaeLambda = Float(try hp.double("gae_lambda", in: 0...1))
        entCoef = Float(try hp.double("ent_coef"))
        vfCoef = Float(try hp.double("vf_coef", atLeast: 0))
        maxGradNorm = Float(try hp.double("max_grad_norm", above: 0))
        clipRangeVF = Float(try hp.double("clip_range_vf", atLeast: 0))
        targetKL = Float(try hp.double("target_kl", atLeast: 0))
        learningRate = try hp.schedule("learning_rate")
        clipRange = try hp.schedule("clip_range")
        normalizeAdvantage = try hp.bool("normalize_advantage")
        sdeSampleFrequency = try hp.int("sde_sample_freq", min: -1)
        rng = SeededGenerator(seed: seed)
        policy = try ActorCriticPolicy.make(for: environment, hyperParameters: hp,
                                            stateDependentExploration: try hp.bool("use_sde"), using: &rng)
        optimizer = Adam(policy.namedParameters(), learningRate: Float(learningRate.initial), eps: 1e-5)
        optimizer.helperPartition = policy.valueParameterIndex
        normalizer = try hp.bool("normalize") ? ObservationNormalizer(size: policy.observationSize, gamma: Double(gamma)) : nil
    }

    public func train(totalSteps: Int, context: TrainingContext) throws {
        let collector = try RolloutCollector(factory: factory, count: numEnvs, seed: seed &+ UInt64(stepsDone),
                                             policy: policy, normalizer: normalizer)
        collector.sdeSampleFrequency = sdeSampleFrequency
        var buffer = RolloutBuffer(numSteps: numSteps, numEnvs: numEnvs, observationSize: policy.observationSize,
                                   actionSize: policy.actionSize)
        while stepsDone < totalSteps {
            // 1. Collect a rollout with the current policy.
            let lastValues = try collector.collect(into: &buffer, stepsDone: &stepsDone, rng: &rng, context: context)
            buffer.computeAdvantages(lastValues: lastValues, gamma: gamma, lambda: gaeLambda)

            // 2. Optimize the clipped surrogate for several epochs of minibatches.
            let progressRemaining = 1 - Double(stepsDone) / Double(totalSteps)
            let lr = Float(learningRate.value(progressRemaining: progressRemaining))
            let clip = Float(clipRange.value(progressRemaining: progressRemaining))
            optimizer.learningRate = lr
            var stats = UpdateStatistics()
            let validRows = (0..<buffer.count).filter { buffer.valid[$0] != 0 }
            // With target_kl, a minibatch whose approximate KL is past 1.5 × target_kl ends the update before its step.
            let maxKL = targetKL > 0 ? 1.5 * targetKL : nil
            epochLoop: for _ in 0..<epochs {
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
        let n = rows.count
        var batch = RolloutBatch(buffer, rows: rows)
        if normalizeAdvantage && n > 1 { standardize(&batch.advantages) }
        let advantages = Tensor(batch.advantages, shape: [n])
        let obs = batch.observations, oldLogProb = batch.oldLogProbs, oldValues = batch.oldValues, returns = batch.returns
        let actions = batch.actions

        // The policy and value networks share no parameters, so the two halves of
        // L = (L_clip − c_ent·H) + c_V·L_V are differentiated at the same time on two cores; the gradients are exactly
        // those of L itself.
        optimizer.zeroGrad()
        let ((policyLoss, entropy, logProb), valueLoss) = ForkJoin.both({
            let dist = policy.distribution(obs)
            let logProb = dist.logProb(actions)
            let entropy = dist.meanEntropy(weightedBy: entCoef)
            let policyLoss = clippedSurrogateLoss(logProb: logProb, oldLogProb: oldLogProb, advantages: advantages, clipRange: clip)
            (policyLoss - entCoef * entropy).backward()
            return (policyLoss, entropy, logProb)
        }, {
            var predicted = policy.value(obs)
            if clipRangeVF > 0 {
                predicted = oldValues + (predicted - oldValues).clamped(min: -clipRangeVF, max: clipRangeVF)
            }
            let valueLoss = mseLoss(predicted, returns)
            (vfCoef * valueLoss).backward()
            return valueLoss
        })
        let loss = policyLoss.item - entCoef * entropy.item + vfCoef * valueLoss.item
        guard loss.isFinite else { throw AgentError.nonFinite(step: step, quantity: "ppo loss") }

        // Diagnostics, from the values before the step (as SB3 reports them).
        var kl: Float = 0, clipped: Float = 0
        for i in 0..<n {
            let logRatio = logProb.data[i] - oldLogProb.data[i]
            let r = Foundation.exp(logRatio)
            kl += (r - 1) - logRatio
            if abs(r - 1) > clip { clipped += 1 }
        }
        kl /= Float(n)
        stats.add(policyLoss: policyLoss.item, valueLoss: valueLoss.item, entropy: entropy.item,
                  approxKL: kl, clipFraction: clipped / Float(n))
        if let maxKL, kl > maxKL { return false }
        optimizer.clipGradNormAndStep(maxNorm: maxGradNorm)
        return true
    }
}
