import Environments
import Foundation
import RLCore
import SeededRandom
import Training

/// The policy a `RolloutCollector` runs, one row per environment at each step: `ActorCriticPolicy` (PPO, A2C) or a
/// recurrent one, whose memory of each environment's episode the collector keeps informed.
package protocol RolloutPolicy: AnyObject {
    var observationSize: Int { get }
    /// Floats per stored action.
    var actionSize: Int { get }
    var usesStateDependentExploration: Bool { get }
    /// Draws gSDE's exploration matrices, one per environment.
    func resetNoise(count: Int, using rng: inout SeededGenerator)
    /// The actions to explore with for one observation per environment, their log-probabilities and the values,
    /// without a graph.
    func rolloutStep(_ observations: Tensor, using rng: inout SeededGenerator) -> (actions: Tensor, logProbs: Tensor, values: Tensor)
    /// V of the observations after a rollout's last step (its bootstrap), without a graph.
    func bootstrapValues(_ observations: Tensor) -> [Float]
    /// The action to send to the environment for one row of sampled policy output.
    func environmentAction(_ raw: UnsafeBufferPointer<Float>) -> Action
    /// Called after each step with the environments whose next observation begins a new episode (they were reset).
    func episodesBegin(_ begins: [Bool])
}

extension ActorCriticPolicy: RolloutPolicy {
    /// The policy's and the value network's passes are independent: two cores.
    package func rolloutStep(_ observations: Tensor, using rng: inout SeededGenerator) -> (actions: Tensor, logProbs: Tensor, values: Tensor) {
        let ((actions, logProbs), values) = ExecutionPolicy.independently({
            Tensor.withoutGrad { () -> (Tensor, Tensor) in
                let (a, dist) = explore(observations, using: &rng)
                return (a, dist.logProb(a))
            }
        }, {
            Tensor.withoutGrad { value(observations) }
        })
        return (actions, logProbs, values)
    }

    package func bootstrapValues(_ observations: Tensor) -> [Float] { Tensor.withoutGrad { value(observations).data } }

    /// A feed-forward policy remembers nothing.
    package func episodesBegin(_ begins: [Bool]) {}
}

/// Collects on-policy rollouts (A2C, PPO, recurrent PPO): runs the current policy on a vector of environments for the
/// buffer's `numSteps`, storing observations, actions, log-probabilities, values, (normalized) rewards and episode
/// flags, and marking next-step-autoreset rows invalid. Finished episodes are reported to the training context.
package final class RolloutCollector {
    let envs: VectorEnvironment
    let policy: RolloutPolicy
    let normalizer: ObservationNormalizer?
    /// The (normalized) observations the next step acts on.
    private(set) var observation: [Float]
    /// With gSDE: new exploration matrices every this many steps (≤ 0: only at the start of each rollout).
    var sdeSampleFrequency = -1

    package init(factory: EnvironmentFactory, count: Int, seed: UInt64, policy: RolloutPolicy, normalizer: ObservationNormalizer?) throws {
        envs = try VectorEnvironment(id: factory.id, options: factory.options, count: count)
        envs.reset(seed: seed)
        self.policy = policy
        self.normalizer = normalizer
        observation = normalizer?.normalize(envs.observations, update: true) ?? envs.observations
    }

    /// A collector continuing from `state` (saved by `trainingState()` at a checkpoint): its environments mid-episode,
    /// the observations it acts on next, the normalizer's exact statistics. Throws, changing nothing of the
    /// normalizer, when `state` does not fit.
    init(factory: EnvironmentFactory, count: Int, policy: RolloutPolicy, normalizer: ObservationNormalizer?,
         resuming state: TrainingState) throws {
        envs = try VectorEnvironment(id: factory.id, options: factory.options, count: count)
        try envs.restore(try state.snapshot("environments"))
        self.policy = policy
        self.normalizer = normalizer
        var reader = try state.reader("collector")
        observation = try reader.floats(count: count * policy.observationSize)
        let applyNormalizer = try normalizer?.read(from: &reader)
        try reader.finish()
        applyNormalizer?()
    }

    /// The collector's running state between rollouts: its environments' snapshot, the (normalized) observations the
    /// next step acts on, the normalizer's exact statistics. Nil when the environments cannot be captured.
    func trainingState() -> TrainingState? {
        guard let snapshot = envs.snapshot() else { return nil }
        var state = TrainingState()
        state.words["environments"] = snapshot.words
        var collector = SnapshotWriter()
        collector.write(observation)
        normalizer?.write(to: &collector)
        state.words["collector"] = collector.words
        return state
    }

    /// Fills `buffer` with one rollout; `stepsDone` counts real transitions (autoreset rows excluded).
    /// Returns V of the observations after the last step, for bootstrapping.
    package func collect(into buffer: inout RolloutBuffer, stepsDone: inout Int, rng: inout SeededGenerator,
                 context: TrainingContext) throws -> [Float] {
        let numEnvs = envs.numEnvs, obsSize = policy.observationSize, actSize = policy.actionSize
        for t in 0..<buffer.numSteps {
            let obs = Tensor(observation, shape: [numEnvs, obsSize])
            if policy.usesStateDependentExploration && (t == 0 || (sdeSampleFrequency > 0 && t % sdeSampleFrequency == 0)) {
                policy.resetNoise(count: numEnvs, using: &rng)
            }
            let (actions, logProbs, values) = policy.rolloutStep(obs, using: &rng)
            let row = t * numEnvs
            buffer.observations.replaceSubrange(row * obsSize ..< (row + numEnvs) * obsSize, with: observation)
            buffer.actions.replaceSubrange(row * actSize ..< (row + numEnvs) * actSize, with: actions.data)
            buffer.logProbs.replaceSubrange(row ..< row + numEnvs, with: logProbs.data)
            buffer.values.replaceSubrange(row ..< row + numEnvs, with: values.data)

            let envActions = actions.data.withUnsafeBufferPointer { a in
                (0..<numEnvs).map { e in policy.environmentAction(UnsafeBufferPointer(rebasing: a[(e * actSize)..<((e + 1) * actSize)])) }
            }
            try envs.step(envActions)
            policy.episodesBegin(envs.autoreset)
            let done = (0..<numEnvs).map { envs.terminated[$0] || envs.truncated[$0] }
            let rewards = normalizer?.scaleRewards(envs.rewards, done: done) ?? envs.rewards
            for e in 0..<numEnvs {
                buffer.rewards[row + e] = Float(rewards[e])
                buffer.terminated[row + e] = envs.terminated[e] ? 1 : 0
                buffer.truncated[row + e] = envs.truncated[e] ? 1 : 0
                buffer.valid[row + e] = envs.autoreset[e] ? 0 : 1
                if !envs.autoreset[e] { stepsDone += 1 }
            }
            for episode in envs.finishedEpisodes {
                context.episodeFinished(step: stepsDone, episodeReturn: episode.episodeReturn, length: episode.length)
            }
            observation = normalizer?.normalize(envs.observations, update: true) ?? envs.observations
        }
        return policy.bootstrapValues(Tensor(observation, shape: [numEnvs, obsSize]))
    }
}

/// The tensors of a set of rollout rows, for a loss.
package struct RolloutBatch {
    package let observations, actions, oldLogProbs, oldValues, returns: Tensor
    package var advantages: [Float]

    package init(_ buffer: RolloutBuffer, rows: [Int]) {
        let n = rows.count
        observations = Tensor(buffer.observations.rows(rows, width: buffer.observationSize),
                              shape: [n, buffer.observationSize])
        actions = Tensor(buffer.actions.rows(rows, width: buffer.actionSize), shape: [n, buffer.actionSize])
        oldLogProbs = Tensor(buffer.logProbs.rows(rows), shape: [n])
        oldValues = Tensor(buffer.values.rows(rows), shape: [n])
        returns = Tensor(buffer.returns.rows(rows), shape: [n])
        advantages = buffer.advantages.rows(rows)
    }
}

extension ActorCriticPolicy {
    /// The actions for `count` raw observations (row after row, normalized with `normalizer` without updating it):
    /// sampled, or the mode when `deterministic`. One pass of the network for the whole batch.
    func act(batch observations: [Float], count: Int, normalizer: ObservationNormalizer?, deterministic: Bool,
             using rng: inout SeededGenerator) -> [Action] {
        let observations = normalizer?.normalize(observations, update: false) ?? observations
        return Tensor.withoutGrad {
            let x = Tensor(observations, shape: [count, observationSize])
            let a = deterministic ? distribution(x).actions(deterministic: true, using: &rng) : explore(x, using: &rng).actions
            let size = actionSize
            return a.data.withUnsafeBufferPointer { a in
                (0..<count).map { environmentAction(UnsafeBufferPointer(rebasing: a[($0 * size)..<(($0 + 1) * size)])) }
            }
        }
    }

    /// The action for one raw observation: `act(batch:)` with one row.
    func act(_ observation: [Float], normalizer: ObservationNormalizer?, deterministic: Bool,
             using rng: inout SeededGenerator) -> Action {
        act(batch: observation, count: 1, normalizer: normalizer, deterministic: deterministic, using: &rng)[0]
    }

    /// The policy's checkpoint: its parameters, the optimizer state, the normalizer statistics, the generator, and
    /// the self-description of the acting network.
    func checkpoint(optimizer: Optimizer, normalizer: ObservationNormalizer?, rng: SeededGenerator) -> AgentCheckpoint {
        policyCheckpoint(namedParameters(), acting: actingDescription, optimizer: optimizer, normalizer: normalizer, rng: rng)
    }

    /// Restores what `checkpoint(optimizer:normalizer:rng:)` saved: parameters, optimizer state and normalizer
    /// statistics (the caller takes the generator and step from the checkpoint).
    func restore(from checkpoint: AgentCheckpoint, optimizer: Optimizer, normalizer: ObservationNormalizer?) throws {
        try restorePolicy(namedParameters(), from: checkpoint, optimizer: optimizer, normalizer: normalizer)
    }
}

/// An actor-critic policy's checkpoint (`ppo`, `a2c`, `reinforce`, `recurrent-ppo`): its `parameters`, the optimizer
/// state, the normalizer statistics, the generator, and the self-description of the acting network, `acting`.
func policyCheckpoint(_ parameters: [(name: String, tensor: Tensor)], acting: (layers: String, action: String),
                      optimizer: Optimizer, normalizer: ObservationNormalizer?, rng: SeededGenerator) -> AgentCheckpoint {
    var tensors = parameters + prefixed("optimizer", optimizer.stateTensors())
    var meta = CheckpointMetadata()
    meta[.policy] = acting.layers
    meta[.action] = acting.action
    meta[.rngState] = rng
    if let normalizer {
        tensors += normalizer.stateTensors(prefix: "obs_rms")
        meta[.observation] = #"{"type": "normalize", "mean": "obs_rms.mean", "var": "obs_rms.var", "clip": 10, "epsilon": 1e-8}"#
    }
    return AgentCheckpoint(tensors: tensors, metadata: meta)
}

/// Restores what `policyCheckpoint` saved into `parameters`, the optimizer and the normalizer.
func restorePolicy(_ parameters: [(name: String, tensor: Tensor)], from checkpoint: AgentCheckpoint, optimizer: Optimizer,
                   normalizer: ObservationNormalizer?) throws {
    for (name, p) in parameters { p.data = try checkpoint.tensor(name, shape: p.shape).data }
    try optimizer.load(checkpoint)
    try normalizer?.restore(from: checkpoint, prefix: "obs_rms")
}

extension Optimizer {
    /// Restores optimizer state saved under the `optimizer.` prefix.
    func load(_ checkpoint: AgentCheckpoint) throws {
        try loadStateTensors(checkpoint.tensors.compactMap {
            $0.name.hasPrefix("optimizer.") ? (name: String($0.name.dropFirst("optimizer.".count)), tensor: $0.tensor) : nil
        })
    }
}
