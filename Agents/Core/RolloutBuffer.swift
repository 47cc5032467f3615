/// On-policy experience from `numEnvs` environments over `numSteps` steps (A2C, PPO), with
/// Generalized Advantage Estimation.
///
/// Rows are indexed `[step, env]`. `valid` is 0 for the autoreset steps of next-step-autoreset vector
/// environments (the action was ignored and no transition happened); they carry no advantage and are
/// skipped by the learner.
public struct RolloutBuffer {
    public let numSteps: Int
    public let numEnvs: Int
    public let observationSize: Int
    public let actionSize: Int
    public var observations: [Float]
    /// Discrete actions as their index; continuous actions as `actionSize` values.
    public var actions: [Float]
    public var logProbs: [Float]
    public var values: [Float]
    public var rewards: [Float]
    /// 1 when the step terminated its episode (no bootstrap from the next observation).
    public var terminated: [Float]
    /// 1 when the step was truncated (bootstrap from the value of its final observation).
    public var truncated: [Float]
    /// 1 for real transitions, 0 for autoreset steps.
    public var valid: [Float]
    public var advantages: [Float]
    public var returns: [Float]

    /// The bytes a rollout takes: observations and actions, then eight numbers per transition (log-probability,
    /// value, reward, flags, validity, advantage, return).
    public static func bytes(numSteps: Int, numEnvs: Int, observationSize: Int, actionSize: Int) -> Double {
        Double(numSteps) * Double(numEnvs) * Double(observationSize + actionSize + 8) * Double(MemoryLayout<Float>.size)
    }

    public init(numSteps: Int, numEnvs: Int, observationSize: Int, actionSize: Int) {
        self.numSteps = numSteps; self.numEnvs = numEnvs
        self.observationSize = observationSize; self.actionSize = actionSize
        let n = numSteps * numEnvs
        observations = [Float](repeating: 0, count: n * observationSize)
        actions = [Float](repeating: 0, count: n * actionSize)
        logProbs = [Float](repeating: 0, count: n)
        values = [Float](repeating: 0, count: n)
        rewards = [Float](repeating: 0, count: n)
        terminated = [Float](repeating: 0, count: n)
        truncated = [Float](repeating: 0, count: n)
        valid = [Float](repeating: 1, count: n)
        advantages = [Float](repeating: 0, count: n)
        returns = [Float](repeating: 0, count: n)
    }

    /// The number of rows (`numSteps * numEnvs`).
    public var count: Int { numSteps * numEnvs }

    /// Fills `advantages` (GAE(γ, λ)) and `returns` (advantages + values), given V of the observations after
    /// the last step. With λ = 1 this is the n-step discounted return minus the value.
    ///
    /// Episode boundaries under next-step autoreset: a terminated row bootstraps nothing; a truncated row
    /// bootstraps from V(final observation), which is the value stored in the following (autoreset) row or,
    /// at the end of the rollout, `lastValues`; neither carries advantage across the boundary. Autoreset rows
    /// themselves have zero advantage.
    public mutating func computeAdvantages(lastValues: [Float], gamma: Float, lambda: Float) {
        precondition(lastValues.count == numEnvs, "one bootstrap value per environment")
        for e in 0..<numEnvs {
            var nextAdvantage: Float = 0
            var nextValue = lastValues[e]
            for t in stride(from: numSteps - 1, through: 0, by: -1) {
                let i = t * numEnvs + e
                if valid[i] == 0 {
                    advantages[i] = 0
                    returns[i] = values[i]
                } else {
                    let ended = terminated[i] != 0 || truncated[i] != 0
                    let bootstrap = terminated[i] != 0 ? 0 : nextValue
                    let delta = rewards[i] + gamma * bootstrap - values[i]
                    advantages[i] = delta + (ended ? 0 : gamma * lambda * nextAdvantage)
                    returns[i] = advantages[i] + values[i]
                }
                nextAdvantage = advantages[i]
                nextValue = values[i]
            }
        }
    }
}
