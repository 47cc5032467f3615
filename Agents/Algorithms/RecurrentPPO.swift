import Environments
import Foundation
import RLCore
import SeededRandom
import Support
import Training

/// PPO with an LSTM policy, as sb3-contrib's `RecurrentPPO` (and CleanRL's `ppo_atari_lstm.py`): for partially
/// observed environments, where the action must depend on the episode so far (`CartPoleNoVel-v1` shows positions
/// but not velocities).
///
/// Each iteration:
/// 1. Collect `n_steps` transitions from each of `n_envs` environments (`RolloutCollector`). The policy
///    (`RecurrentActorCriticPolicy`) carries each environment's LSTM states from step to step and zeroes them where an
///    episode begins; it records the states every step started from.
/// 2. Compute advantages with GAE(γ, λ), as PPO does (`RolloutBuffer`).
/// 3. For `n_epochs` epochs, over minibatches of whole sequences (`SequenceMinibatch`: sb3-contrib's cut): run each
///    sequence through the LSTMs from the states recorded at its first step, padded at its end to the longest
///    sequence, and take PPO's clipped-surrogate step on its real steps (`ClippedSurrogateStep`), backpropagating
///    through time.
/// The settings are PPO's with sb3-contrib's defaults (`n_steps` 128, `batch_size` 128), and `policy_kwargs` adds
/// `lstm_hidden_size`, `n_lstm_layers`, `shared_lstm` and `enable_critic_lstm`.
public final class RecurrentPPOAgent: Agent, RecurrentAgent {
    /// PPO's settings (and keys) with sb3-contrib's defaults, and the recurrent `policy_kwargs`.
    public struct Config: AgentConfig {
        public var ppo = PPOAgent.Config()
        public var timesteps: Int { ppo.timesteps }

        public init() {
            ppo.common.numSteps = 128
            ppo.batchSize = 128
        }

        public static var fields: [ConfigField<Config>] {
            PPOAgent.Config.fields.filter { $0.key != "policy_kwargs" }.map { $0.lifted(into: \.ppo) } + [
                .policyKwargs(\.ppo.common.policy, entries: [.netArch, .activation, .orthoInit, .logStdInit] + PolicyKwargs.Entry.recurrent,
                              "the LSTMs and the actor-critic networks after them"),
            ]
        }

        public func validate(_ settings: HyperParameters) throws {
            try ppo.validate(settings)
            let policy = ppo.common.policy
            if policy.sharedLSTM && policy.criticLSTM {
                throw settings.fail("policy_kwargs", "shared_lstm and enable_critic_lstm are both true: the critic either shares "
                                    + "the actor's LSTM or has its own (set enable_critic_lstm: false to share)")
            }
        }
    }

    public static let descriptor = AgentDescriptor(
        name: "recurrent-ppo", summary: "PPO with an LSTM policy (sb3-contrib's RecurrentPPO), for partially observed environments",
        config: Config.self, actionKinds: [.discrete, .continuous], diagnostics: PPOAgent.descriptor.diagnostics,
        defaultEnvironment: "CartPoleNoVel-v1")

    public private(set) var stepsDone = 0
    let config: Config
    package let factory: EnvironmentFactory
    let seed: UInt64
    var rng: SeededGenerator
    package let policy: RecurrentActorCriticPolicy
    let optimizer: Optimizer
    let normalizer: ObservationNormalizer?
    /// The rollout collector, kept between `train` calls (and saved in the training state with the LSTM states).
    var collector: RolloutCollector?
    /// The memory of the episodes `act` plays (`RecurrentAgent`); the tests compare it with an ONNX export's state.
    package var actingMemory: LSTMMemory

    public init(environment: EnvironmentFactory, hyperParameters hp: HyperParameters, seed: UInt64) throws {
        config = try Config(hp)
        let probe = try environment.make()
        if config.ppo.useSDE, case .discrete = probe.actionSpace {
            throw hp.fail("use_sde", "state-dependent exploration needs continuous (Box) actions; \(environment.id) has \(probe.actionSpace)")
        }
        factory = environment
        self.seed = seed
        var rng = SeededGenerator(seed: seed)
        policy = try RecurrentActorCriticPolicy(for: probe, kwargs: config.ppo.common.policy,
                                                stateDependentExploration: config.ppo.useSDE, using: &rng)
        self.rng = rng
        // A rollout also records each step's LSTM states.
        try config.ppo.common.checkRolloutMemory(environments: config.ppo.rollout.numEnvs,
                                                 observationSize: policy.observationSize + policy.memoryWidth,
                                                 actionSize: policy.actionSize, hp)
        optimizer = Adam(policy.namedParameters(), learningRate: Float(config.ppo.common.learningRate.initial), eps: 1e-5)
        normalizer = config.ppo.rollout.normalizer(size: policy.observationSize, gamma: Float(config.ppo.common.gamma))
        actingMemory = policy.emptyMemory(rows: 0)
    }

    public func train(totalSteps: Int, context: TrainingContext) throws {
        let ppo = config.ppo, numEnvs = ppo.rollout.numEnvs
        let gamma = Float(ppo.common.gamma), lambda = Float(ppo.rollout.gaeLambda)
        let collector = try rolloutCollector(count: numEnvs)
        collector.sdeSampleFrequency = ppo.sdeSampleFrequency
        var buffer = RolloutBuffer(numSteps: ppo.common.numSteps, numEnvs: numEnvs, observationSize: policy.observationSize,
                                   actionSize: policy.actionSize)
        let minibatchStep = ClippedSurrogateStep(entCoef: Float(ppo.common.entCoef), vfCoef: Float(ppo.common.vfCoef),
                                                 clipRangeVF: Float(ppo.clipRangeVF), maxGradNorm: Float(ppo.common.maxGradNorm),
                                                 normalizeAdvantage: ppo.common.normalizeAdvantage, lossName: "recurrent ppo loss")
        while stepsDone < totalSteps {
            // 1. Collect a rollout, recording the LSTM states each step started from.
            policy.startRecording()
            let lastValues = try collector.collect(into: &buffer, stepsDone: &stepsDone, rng: &rng, context: context)
            let memories = policy.takeRecordedMemory()
            buffer.computeAdvantages(lastValues: lastValues, gamma: gamma, lambda: lambda)

            // 2. Optimize the clipped surrogate for several epochs of minibatches of sequences.
            let (lr, clip) = ppo.scheduled(stepsDone: stepsDone, totalSteps: totalSteps)
            optimizer.learningRate = lr
            var stats = UpdateStatistics()
            let maxKL = ppo.targetKL > 0 ? 1.5 * Float(ppo.targetKL) : nil
            epochLoop: for _ in 0..<ppo.epochs {
                for minibatch in SequenceMinibatch.epoch(of: buffer, batchSize: ppo.batchSize, using: &rng) {
                    let batch = RolloutBatch(buffer, rows: minibatch.rows)
                    let sequences = minibatch.padded(buffer, memories: memories, policy: policy)
                    let stepped = try minibatchStep.run(
                        batch, clip: clip, maxKL: maxKL, optimizer: optimizer, stats: &stats, step: stepsDone,
                        distribution: { [policy] in policy.distribution(sequences: sequences.observations, start: sequences.actorStart,
                                                            rows: sequences.steps) },
                        value: { [policy] in policy.value(sequences: sequences.observations, actorStart: sequences.actorStart,
                                              criticStart: sequences.criticStart, rows: sequences.steps) },
                        apart: { actor, critic in
                            // The critic's half never differentiates the actor's parameters: two cores.
                            optimizer.helperPartition = policy.criticParameterIndex
                            return ExecutionPolicy.independently(actor, critic)
                        })
                    guard stepped else { break epochLoop }
                }
            }
            try context.recordDiagnostics(step: stepsDone, stats.summary(learningRate: lr, clipRange: clip,
                                                                        values: buffer.values, returns: buffer.returns, valid: buffer.valid))
            try context.tick(step: stepsDone)
        }
    }

    /// The collector `train` continues with: the one kept from before (or resumed), else a new one whose environments
    /// start from the seed and steps done, with empty LSTM states.
    private func rolloutCollector(count: Int) throws -> RolloutCollector {
        if let collector { return collector }
        policy.beginRollouts(count: count)
        let made = try RolloutCollector(factory: factory, count: count, seed: seed &+ UInt64(stepsDone), policy: policy,
                                        normalizer: normalizer)
        collector = made
        return made
    }

    // MARK: Acting (`RecurrentAgent`)

    public func act(_ observation: [Float], deterministic: Bool) -> Action {
        act(batch: observation, count: 1, deterministic: deterministic)[0]
    }

    public func act(batch observations: [Float], count: Int, deterministic: Bool) -> [Action] {
        if actingMemory.rows != count { beginEpisodes(count: count) }
        let x = normalizer?.normalize(observations, update: false) ?? observations
        let actions = policy.act(Tensor(x, shape: [count, policy.observationSize]), memory: &actingMemory,
                                 deterministic: deterministic, using: &rng)
        let size = policy.actionSize
        return actions.data.withUnsafeBufferPointer { a in
            (0..<count).map { policy.environmentAction(UnsafeBufferPointer(rebasing: a[($0 * size)..<(($0 + 1) * size)])) }
        }
    }

    public func beginEpisodes(count: Int) { actingMemory = policy.emptyMemory(rows: count) }

    public func continueEpisodes(_ rows: [Int]) { actingMemory = actingMemory.selecting(rows) }

    // MARK: Checkpoints and training state

    public func checkpoint() throws -> AgentCheckpoint {
        policyCheckpoint(policy.namedParameters(), acting: policy.actingDescription, optimizer: optimizer,
                         normalizer: normalizer, rng: rng)
    }

    public func restore(_ checkpoint: AgentCheckpoint) throws {
        try restorePolicy(policy.namedParameters(), from: checkpoint, optimizer: optimizer, normalizer: normalizer)
        rng = try checkpoint.metadata.value(.rngState)
        stepsDone = try checkpoint.metadata.value(.step)
    }

    /// The collector's state and the LSTM states of the training environments (`memory`: the actor's h and c, then
    /// the critic's), so that a resumed run continues bit for bit.
    public func trainingState() -> TrainingState? {
        guard var state = collector?.trainingState() else { return nil }
        var writer = SnapshotWriter()
        let memory = policy.rolloutMemory
        for m in [memory.actor] + (memory.critic.map { [$0] } ?? []) {
            writer.write(m.h)
            writer.write(m.c)
        }
        state.words["memory"] = writer.words
        return state
    }

    public func resumeTraining(from state: TrainingState, totalSteps: Int) throws {
        let count = config.ppo.rollout.numEnvs
        var reader = try state.reader("memory")
        func memory() throws -> LSTMMemory {
            var m = policy.emptyMemory(rows: count)
            m.h = try reader.floats(count: m.h.count)
            m.c = try reader.floats(count: m.c.count)
            return m
        }
        let actor = try memory()
        let critic = policy.criticLSTM == nil ? nil : try memory()
        try reader.finish()
        collector = try RolloutCollector(factory: factory, count: count, policy: policy, normalizer: normalizer, resuming: state)
        policy.rolloutMemory = (actor, critic)
    }
}

/// A minibatch of whole sequences of a recurrent rollout, cut as sb3-contrib's `RecurrentRolloutBuffer` cuts them:
/// each epoch lays the rollout's rows out environment after environment (each in time order), rotates them to start
/// at a random row, and cuts them into chunks of `batch_size` rows. In a chunk a sequence runs while its rows are
/// consecutive steps of one environment: it ends at the chunk's end, at an environment's last step, and at an
/// episode's end (the autoreset rows after it are no transitions and are left out). A sequence starts from the LSTM
/// states recorded at its first step (zero at an episode's start).
package struct SequenceMinibatch {
    /// Rollout rows, sequence after sequence, each in time order.
    package var rows: [Int] = []
    /// Each sequence's first index in `rows` and its length.
    package var sequences: [(start: Int, length: Int)] = []

    /// One epoch's minibatches.
    package static func epoch(of buffer: RolloutBuffer, batchSize: Int, using rng: inout SeededGenerator) -> [SequenceMinibatch] {
        let n = buffer.count, envs = buffer.numEnvs, steps = buffer.numSteps
        let split = Int.random(in: 0..<n, using: &rng)
        // Position p of the environment-major order is step p % steps of environment p / steps.
        let order = (0..<n).map { p in let q = (p + split) % n; return (q % steps) * envs + q / steps }
        var batches: [SequenceMinibatch] = []
        for start in stride(from: 0, to: n, by: batchSize) {
            var batch = SequenceMinibatch()
            var previous: Int?
            for row in order[start..<min(start + batchSize, n)] {
                guard buffer.valid[row] != 0 else { previous = nil; continue }
                if let previous, row == previous + envs {
                    batch.sequences[batch.sequences.count - 1].length += 1
                } else {
                    batch.sequences.append((start: batch.rows.count, length: 1))
                }
                batch.rows.append(row)
                previous = row
            }
            if !batch.rows.isEmpty { batches.append(batch) }
        }
        return batches
    }

    /// The sequences as the LSTMs take them: observations `[S, T, I]`, each sequence padded with zeros at its end to the
    /// longest one's T steps; the indices of the real steps among the S·T (in the order of `rows`); and the actor's
    /// and critic's states at each sequence's first step, from `memories` (`policy.memoryWidth` values a rollout row).
    package func padded(_ buffer: RolloutBuffer, memories: [Float], policy: RecurrentActorCriticPolicy)
        -> (observations: Tensor, steps: [Int], actorStart: LSTMMemory, criticStart: LSTMMemory?) {
        let s = sequences.count, t = sequences.map(\.length).max() ?? 0, size = buffer.observationSize
        var x = [Float](repeating: 0, count: s * t * size)
        var steps: [Int] = []
        steps.reserveCapacity(rows.count)
        var actor = policy.emptyMemory(rows: s)
        var critic = policy.criticLSTM == nil ? nil : policy.emptyMemory(rows: s)
        let width = policy.memoryWidth, actorWidth = actor.rowWidth
        for (k, sequence) in sequences.enumerated() {
            for j in 0..<sequence.length {
                let row = rows[sequence.start + j]
                x.replaceSubrange(((k * t + j) * size)..<((k * t + j + 1) * size),
                                  with: buffer.observations[(row * size)..<((row + 1) * size)])
                steps.append(k * t + j)
            }
            let first = rows[sequence.start] * width
            actor.setRow(k, to: memories[first..<(first + actorWidth)])
            critic?.setRow(k, to: memories[(first + actorWidth)..<(first + width)])
        }
        return (Tensor(x, shape: [s, t, size]), steps, actor, critic)
    }
}
