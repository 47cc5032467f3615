import Foundation
import RLCore
import Training

/// PPO's minibatch step, shared by `ppo` and `recurrent-ppo` (which differ only in how they evaluate the policy and the
/// value on a minibatch): the clipped surrogate, the entropy bonus and the (optionally clipped) value loss,
///   L = −mean(min(r·Â, clip(r, 1−ε, 1+ε)·Â)) − c_ent·mean(H[π]) + c_V·mean((R − V)²),
/// SB3's diagnostics (approximate KL, clip fraction) and its target_kl stop, then one step of the optimizer after
/// clipping the global gradient norm.
struct ClippedSurrogateStep {
    let entCoef: Float, vfCoef: Float, clipRangeVF: Float, maxGradNorm: Float
    let normalizeAdvantage: Bool
    /// The loss's name in the non-finite error ("ppo loss").
    let lossName: String

    /// One gradient step on `batch`, unless the approximate KL divergence of the policy before it exceeds `maxKL`
    /// (then no step, and false). `distribution` and `value` evaluate the policy and the value network on the batch's
    /// rows (with a graph); `apart` differentiates the actor's and the critic's halves of the loss (beside each other
    /// when they share no parameters: their gradients are then exactly those of the summed loss).
    func run(_ batch: RolloutBatch, clip: Float, maxKL: Float?, optimizer: Optimizer, stats: inout UpdateStatistics,
             step: Int, distribution: @escaping () -> PolicyDistribution, value: @escaping () -> Tensor,
             apart: (() -> (Tensor, Tensor, Tensor), () -> Tensor) -> ((Tensor, Tensor, Tensor), Tensor)) throws -> Bool {
        var batch = batch
        let n = batch.advantages.count
        if normalizeAdvantage && n > 1 { standardize(&batch.advantages) }
        let advantages = Tensor(batch.advantages, shape: [n])
        let oldLogProb = batch.oldLogProbs, oldValues = batch.oldValues, returns = batch.returns, actions = batch.actions
        let (entCoef, vfCoef, clipRangeVF) = (entCoef, vfCoef, clipRangeVF)

        optimizer.zeroGrad()
        let ((policyLoss, entropy, logProb), valueLoss) = apart({
            let dist = distribution()
            let logProb = dist.logProb(actions)
            let entropy = dist.meanEntropy(weightedBy: entCoef)
            let policyLoss = clippedSurrogateLoss(logProb: logProb, oldLogProb: oldLogProb, advantages: advantages, clipRange: clip)
            (policyLoss - entCoef * entropy).backward()
            return (policyLoss, entropy, logProb)
        }, {
            var predicted = value()
            if clipRangeVF > 0 {
                predicted = oldValues + (predicted - oldValues).clamped(min: -clipRangeVF, max: clipRangeVF)
            }
            let valueLoss = mseLoss(predicted, returns)
            (vfCoef * valueLoss).backward()
            return valueLoss
        })
        let loss = policyLoss.item - entCoef * entropy.item + vfCoef * valueLoss.item
        guard loss.isFinite else { throw AgentError.nonFinite(step: step, quantity: lossName) }

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

extension PPOAgent.Config {
    /// The learning rate and the clip range after `stepsDone` of `totalSteps` steps (their `lin_` schedules).
    func scheduled(stepsDone: Int, totalSteps: Int) -> (learningRate: Float, clipRange: Float) {
        let progressRemaining = 1 - Double(stepsDone) / Double(totalSteps)
        return (Float(common.learningRate.value(progressRemaining: progressRemaining)),
                Float(clipRange.value(progressRemaining: progressRemaining)))
    }
}
