import Environments
import Foundation
import RLCore
import SeededRandom
import Support
import Training

/// Deep Q-Network (Mnih et al., 2015) with Stable-Baselines3's schedule of updates, plus the standard
/// improvements as options: Double DQN (van Hasselt et al., 2016), a dueling head (Wang et al., 2016) and n-step
/// targets (`n_steps`, as in Rainbow, Hessel et al., 2018, and SB3's `NStepReplayBuffer`).
///
/// Each environment step:
/// 1. act uniformly at random for the first `learning_starts` steps (SB3's warm-up), ε-greedily after (ε decays
///    linearly from `exploration_initial_eps` to `exploration_final_eps` over `exploration_fraction` of training),
///    and store (s, a, r, s', terminated, truncated) in the replay ring buffer — s' is the true next observation,
///    also when the episode was truncated;
/// 2. after `learning_starts` steps, every `train_freq` steps, take `gradient_steps` gradient steps (−1: as many
///    as environment steps since the last update) on minibatches of `batch_size`:
///      y = r + γ (1 − terminated) · Q_target(s', argmax_a' Q(s', a'))   (Double DQN)
///      y = r + γ (1 − terminated) · max_a' Q_target(s', a')            (DQN)
///      loss = Huber(Q(s, a), y), gradient norm clipped to `max_grad_norm`, Adam
///    (the target network does not move during one update's gradient steps, so their minibatches are drawn
///    together and Q_target(s', ·) is computed once per distinct transition drawn, in one large pass). With
///    `n_steps` n > 1 a sampled transition runs on for up to n steps of its episode: r becomes Σ_{k<m} γᵏ r_k over
///    the m steps it spans, γ becomes γᵐ, and s' and `terminated` are those of its last step;
/// 3. every `target_update_interval` steps, move the target network: θ' ← τθ + (1 − τ)θ' (τ = 1: a hard copy).
public final class DQNAgent: Agent, ValueEstimating {
    /// DQN's settings with SB3's defaults; `fields` says what each key means (`rlbench list agents` prints them).
    public struct Config: AgentConfig {
        public var timesteps = 100_000
        public var learningRate = ZooSchedule.constant(1e-4)
        public var gamma = 0.99
        public var maxGradNorm = 10.0
        public var policy = PolicyKwargs(netArch: [64, 64], activation: .relu)
        public var exploration = ExplorationSettings(fraction: 0.1, final: 0.05)
        // Replay and the schedule of updates.
        public var bufferSize = 1_000_000
        public var learningStarts = 100
        public var batchSize = 32
        public var trainFrequency = 4
        public var gradientSteps = 1
        // The target network, the target and the head.
        public var targetUpdateInterval = 10_000
        public var tau = 1.0
        public var doubleQ = false
        public var nSteps = 1
        public var dueling = false
        public init() {}

        public static var fields: [ConfigField<Config>] {
            [.timesteps(\.timesteps), .learningRate(\.learningRate), .gamma(\.gamma), .maxGradNorm(\.maxGradNorm),
             // dueling is a top-level key
             .policyKwargs(\.policy, entries: [.netArch, .activation, .featuresExtractor], "the Q-network"),
            ] + ExplorationSettings.fields(\.exploration) + [
                .int("buffer_size", \.bufferSize, min: 1, max: Limits.replayTransitions, "transitions the replay buffer holds"),
                .int("learning_starts", \.learningStarts, "steps of random actions before learning starts"),
                .int("batch_size", \.batchSize, min: 1, max: Limits.batchSize, "minibatch size"),
                .int("train_freq", \.trainFrequency, min: 1, "environment steps between updates"),
                ConfigField("gradient_steps", \.gradientSteps,
                            help: "gradient steps per update (-1: as many as environment steps since the last)",
                            value: { .number(Double($0)) }, read: { hp in
                                if try hp.double("gradient_steps") == -1 { return -1 }
                                return try hp.int("gradient_steps", min: 1, max: Limits.gradientSteps)
                            }),
                .int("target_update_interval", \.targetUpdateInterval, min: 1, "steps between target network updates"),
                .double("tau", \.tau, in: 0...1, "how far each target network update moves it (1: a copy)"),
                .bool("double_q", \.doubleQ, "Double DQN targets (the online network picks the action)"),
                .int("n_steps", \.nSteps, min: 1, "steps an n-step target spans (1: DQN's one-step target)"),
                .bool("dueling", \.dueling, "a dueling head: Q = V + A − mean A"),
            ]
        }

        /// The replay buffer, of `min(buffer_size, n_timesteps)` transitions, must fit in memory (`Limits.memoryBytes`).
        func checkReplayMemory(observationSize: Int, _ hp: HyperParameters) throws {
            let capacity = min(bufferSize, timesteps)
            // The buffer, and the position per slot that `targetQValues` keeps as scratch.
            let bytes = ReplayBuffer.bytes(capacity: capacity, observationSize: observationSize)
                + Double(capacity * MemoryLayout<Int32>.size)
            if let problem = Limits.memoryProblem(bytes: bytes, for: "a replay buffer of \(capacity) transitions of \(observationSize) observation values") {
                throw hp.fail("buffer_size", problem)
            }
        }
    }

    public static let descriptor = AgentDescriptor(
        name: "dqn", summary: "Deep Q-Network with replay buffer and target network (Double DQN, dueling and n-step options)",
        config: Config.self, actionKinds: [.discrete],
        diagnostics: ["epsilon", "learning_rate", "loss", "q_mean"])

    public private(set) var stepsDone = 0
    let factory: EnvironmentFactory
    let config: Config
    let observationSize, numActions: Int
    /// The widest hidden layer.
    let networkWidth: Int
    let qNetwork: QNetwork
    let targetNetwork: QNetwork
    let optimizer: Adam
    var rng: SeededGenerator
    let seed: UInt64

    public init(environment: EnvironmentFactory, hyperParameters hp: HyperParameters, seed: UInt64) throws {
        factory = environment
        self.seed = seed
        config = try Config(hp)
        let probe = try environment.make()
        guard let n = probe.actionSpace.discreteCount else {
            throw AgentError.unsupportedActionSpace(agent: "dqn", env: environment.id, space: "\(probe.actionSpace)", supported: ["discrete"])
        }
        numActions = n
        observationSize = probe.observationSpace.flatCount
        try config.checkReplayMemory(observationSize: observationSize, hp)
        let arch = try config.policy.hiddenLayers(inputs: observationSize, outputs: n).policy
        networkWidth = arch.max() ?? 1
        rng = SeededGenerator(seed: seed)
        let extractor = FeaturesExtractor.resolve(config.policy.featuresExtractor, for: probe.observationSpace)
        qNetwork = try QNetwork(observationSpace: probe.observationSpace, actions: n, hidden: arch, activation: config.policy.activation,
                                dueling: config.dueling, extractor: extractor, using: &rng)
        targetNetwork = try QNetwork(observationSpace: probe.observationSpace, actions: n, hidden: arch, activation: config.policy.activation,
                                     dueling: config.dueling, extractor: extractor, using: &rng)
        targetNetwork.copyValues(from: qNetwork)
        optimizer = Adam(qNetwork.namedParameters(), learningRate: Float(config.learningRate.initial))
    }

    /// What `train` keeps from step to step — the environment, the observation it acts on, the episode under way and
    /// the replay buffer — held on the agent so that a checkpoint can save it (`trainingState()`) and a resumed run
    /// continue it (`resumeTraining`).
    final class Session {
        let env: Environment
        var observation: [Float]
        var episodeReturn = 0.0, episodeLength = 0
        var buffer: ReplayBuffer

        /// A new session: the environment reset with `seed`, an empty buffer of `capacity` transitions.
        init(env: Environment, seed: UInt64, capacity: Int, observationSize: Int) {
            self.env = env
            observation = env.reset(seed: seed)
            buffer = ReplayBuffer(capacity: capacity, observationSize: observationSize)
        }

        /// The session `save(into:)` saved in `state`, continued on `env`.
        init(env: Environment, capacity: Int, observationSize: Int, from state: TrainingState) throws {
            try env.restore(try state.snapshot("environment"))
            var reader = try state.reader("episode")
            observation = try reader.floats(count: observationSize)
            episodeReturn = try reader.double()
            episodeLength = try reader.int()
            try reader.finish()
            buffer = try ReplayBuffer(capacity: capacity, observationSize: observationSize, from: state)
            self.env = env
        }

        /// The session as a training state; nil when the environment cannot be captured.
        func save() -> TrainingState? {
            guard let snapshot = env.snapshot() else { return nil }
            var state = TrainingState()
            state.words["environment"] = snapshot.words
            var episode = SnapshotWriter()
            episode.write(observation)
            episode.write(episodeReturn)
            episode.write(episodeLength)
            state.words["episode"] = episode.words
            buffer.save(into: &state)
            return state
        }
    }

    private var session: Session?

    /// The replay buffer's size for a run of `totalSteps`: `buffer_size`, or fewer when the run is shorter.
    private func bufferCapacity(totalSteps: Int) -> Int { min(config.bufferSize, max(totalSteps, 1)) }

    public func trainingState() -> TrainingState? { session?.save() }

    public func resumeTraining(from state: TrainingState, totalSteps: Int) throws {
        session = try Session(env: factory.make(), capacity: bufferCapacity(totalSteps: totalSteps),
                              observationSize: observationSize, from: state)
    }

    public func train(totalSteps: Int, context: TrainingContext) throws {
        let learningStarts = config.learningStarts, trainFrequency = config.trainFrequency, batchSize = config.batchSize
        // A new session starts its environment from the seed and steps done; a kept or resumed one goes on.
        let session = try self.session ?? Session(env: factory.make(), seed: seed &+ UInt64(stepsDone),
                                                  capacity: bufferCapacity(totalSteps: totalSteps), observationSize: observationSize)
        self.session = session
        let env = session.env
        var next = [Float](repeating: 0, count: observationSize)
        var distinctPositions = [Int32](repeating: -1, count: session.buffer.capacity)

        while stepsDone < totalSteps {
            // 1. Act (at random during the warm-up, ε-greedily after) and store the transition.
            let eps = config.exploration.epsilon(step: stepsDone, total: totalSteps)
            let explore = stepsDone < learningStarts || rng.nextDouble() < eps
            let action = explore ? rng.nextInt(below: numActions) : greedyActions(session.observation)[0]
            let outcome = try next.withUnsafeMutableBufferPointer { try env.step(.discrete(action), into: $0) }
            session.observation.withUnsafeBufferPointer { o in
                next.withUnsafeBufferPointer { n in
                    session.buffer.add(observation: o, action: action, reward: outcome.reward, nextObservation: n,
                                       terminated: outcome.terminated, truncated: outcome.truncated)
                }
            }
            stepsDone += 1
            session.episodeReturn += outcome.reward
            session.episodeLength += 1
            if outcome.done {
                // The exploration rate the episode ended with (1 during the warm-up, whose actions are all random).
                try context.recordDiagnostics(step: stepsDone, ["epsilon": stepsDone <= learningStarts ? 1 : eps])
                context.episodeFinished(step: stepsDone, episodeReturn: session.episodeReturn, length: session.episodeLength)
                session.episodeReturn = 0; session.episodeLength = 0
                session.observation = env.reset()
            } else {
                swap(&session.observation, &next)
            }

            // 2. Learn from replayed minibatches: gradient_steps of them, or (-1) one per step of the rollout.
            if stepsDone > learningStarts && stepsDone % trainFrequency == 0 {
                let progressRemaining = 1 - Double(stepsDone) / Double(totalSteps)
                optimizer.learningRate = Float(config.learningRate.value(progressRemaining: progressRemaining))
                let steps = config.gradientSteps == -1 ? trainFrequency : config.gradientSteps
                // The target network stays put during these steps, so all their minibatches are drawn first, and
                // Q_target(s', ·) is computed once for each distinct transition drawn, in one large pass.
                let indices = session.buffer.sampleIndices(steps * batchSize, using: &rng)
                var batches = ReplayBuffer.Batch(size: indices.count, observationSize: observationSize)
                session.buffer.gather(indices, into: &batches, steps: config.nSteps, gamma: Float(config.gamma))
                let nextTargetQ = targetQValues(of: batches.ends, in: session.buffer, positions: &distinctPositions)
                var lossSum = 0.0, qSum = 0.0
                for j in 0..<steps {
                    let (loss, qMean) = try gradientStep(batches, rows: j * batchSize ..< (j + 1) * batchSize,
                                                         nextTargetQ: nextTargetQ)
                    lossSum += Double(loss); qSum += Double(qMean)
                }
                try context.recordDiagnostics(step: stepsDone, ["epsilon": eps, "learning_rate": Double(optimizer.learningRate),
                                                                "loss": lossSum / Double(steps), "q_mean": qSum / Double(steps)])
            }
            // 3. Move the target network (after the step's training; SB3 moves it before, see docs/design.md).
            if stepsDone % config.targetUpdateInterval == 0 { targetNetwork.moveTowards(qNetwork, tau: Float(config.tau)) }
            if stepsDone % 1000 == 0 { try context.tick(step: stepsDone) }
        }
        try context.tick(step: stepsDone)
    }

    /// Q_target(s', ·) of the transitions at `indices` (`[indices.count, numActions]`, row by row), each distinct
    /// transition through the target network once. `positions` (one entry per buffer slot, all −1) is scratch
    /// space, left all −1 again.
    private func targetQValues(of indices: [Int], in buffer: ReplayBuffer, positions: inout [Int32]) -> [Float] {
        var distinct: [Int] = []
        for i in indices where positions[i] < 0 {
            positions[i] = Int32(distinct.count)
            distinct.append(i)
        }
        let distinctQ = targetQValues(buffer.nextObservations(at: distinct), rows: distinct.count)
        var values = [Float](repeating: 0, count: indices.count * numActions)
        for (row, i) in indices.enumerated() {
            let from = Int(positions[i]) * numActions
            for a in 0..<numActions { values[row * numActions + a] = distinctQ[from + a] }
        }
        for i in distinct { positions[i] = -1 }
        return values
    }

    /// Q_target(s', ·) for `rows` next observations laid out row after row: `[rows, numActions]`, row by row (cut
    /// into chunks and between the cores by `ExecutionPolicy.inference`).
    private func targetQValues(_ nextObservations: [Float], rows: Int) -> [Float] {
        ExecutionPolicy.inference(rows: rows, width: max(networkWidth, observationSize)) { chunk in
            let x = Array(nextObservations[chunk.lowerBound * observationSize ..< chunk.upperBound * observationSize])
            return Tensor.withoutGrad { targetNetwork(Tensor(x, shape: [chunk.count, observationSize])).data }
        }
    }

    /// One Huber-loss step on the minibatch `rows` of `batches`, with Q_target(s', ·) of every row in `nextTargetQ`;
    /// returns the loss and the mean Q(s, a).
    private func gradientStep(_ batches: ReplayBuffer.Batch, rows: Range<Int>, nextTargetQ: [Float]) throws -> (Float, Float) {
        let n = rows.count, d = observationSize
        let observations = Tensor(Array(batches.observations[rows.lowerBound * d ..< rows.upperBound * d]), shape: [n, d])
        // y = r + γ(1 − terminated)·Q_target(s', a'), a' the greedy action of the target network (DQN) or of the
        // online network (Double DQN); the batch holds γᵐ and the m-step reward for n-step targets.
        let greedy: [Int]
        if config.doubleQ {
            greedy = greedyActions(Array(batches.nextObservations[rows.lowerBound * d ..< rows.upperBound * d]), count: n)
        } else {
            greedy = rows.map { i in
                var best = 0
                for a in 1..<numActions where nextTargetQ[i * numActions + a] > nextTargetQ[i * numActions + best] { best = a }
                return best
            }
        }
        let y = (0..<n).map { k in
            let i = rows.lowerBound + k
            return batches.rewards[i] + batches.discounts[i] * (1 - batches.terminated[i]) * nextTargetQ[i * numActions + greedy[k]]
        }
        let q = qNetwork(observations).pick(columns: Array(batches.actions[rows]))
        let loss = huberLoss(q, Tensor(y, shape: [n]))
        guard loss.item.isFinite else { throw AgentError.nonFinite(step: stepsDone, quantity: "dqn loss") }
        optimizer.zeroGrad()
        loss.backward()
        optimizer.clipGradNormAndStep(maxNorm: Float(config.maxGradNorm))
        return (loss.item, q.data.reduce(0, +) / Float(n))
    }

    /// argmax_a Q(s, a) for each of `count` observations laid out row after row (one pass of the Q-network).
    func greedyActions(_ observations: [Float], count: Int = 1) -> [Int] {
        Tensor.withoutGrad { qNetwork(Tensor(observations, shape: [count, observationSize])).argmax(axis: 1) }
    }

    /// max_a Q(s, a) for one observation.
    public func stateValue(_ observation: [Float]) -> Double {
        Tensor.withoutGrad { Double(qNetwork(Tensor(observation, shape: [1, observationSize])).data.max() ?? 0) }
    }

    public func act(_ observation: [Float], deterministic: Bool) -> Action {
        act(batch: observation, count: 1, deterministic: deterministic)[0]
    }

    /// Greedy actions for the batch (one pass of the Q-network), each replaced by a random one with probability
    /// `exploration_final_eps` unless `deterministic`.
    public func act(batch observations: [Float], count: Int, deterministic: Bool) -> [Action] {
        greedyActions(observations, count: count).map { best in
            if !deterministic, rng.nextDouble() < config.exploration.final { return .discrete(rng.nextInt(below: numActions)) }
            return .discrete(best)
        }
    }

    public func checkpoint() throws -> AgentCheckpoint {
        var tensors = qNetwork.namedParameters()
        tensors += prefixed("target", targetNetwork.namedParameters())
        tensors += prefixed("optimizer", optimizer.stateTensors())
        var meta = CheckpointMetadata()
        meta[.policy] = qNetwork.layerDescription
        meta[.action] = "argmax"
        meta[.rngState] = rng
        return AgentCheckpoint(tensors: tensors, metadata: meta)
    }

    public func restore(_ checkpoint: AgentCheckpoint) throws {
        for (name, p) in qNetwork.namedParameters() { p.data = try checkpoint.tensor(name, shape: p.shape).data }
        for (name, p) in targetNetwork.namedParameters() { p.data = try checkpoint.tensor("target.\(name)", shape: p.shape).data }
        try optimizer.loadStateTensors(checkpoint.tensors.compactMap {
            $0.name.hasPrefix("optimizer.") ? (name: String($0.name.dropFirst("optimizer.".count)), tensor: $0.tensor) : nil
        })
        rng = try checkpoint.metadata.value(.rngState)
        stepsDone = try checkpoint.metadata.value(.step)
    }
}

/// SB3's Q-network: an MLP from observations to one value per action (`q.<i>.weight`), or, with `dueling`, a shared
/// trunk (`q.*`) feeding a value head V(s) (`value.*`) and an advantage head A(s, a) (`advantage.*`) combined as
/// Q = V + A − mean_a A. With the `MinAtarCNN` extractor (image observations) the trunk starts with the MinAtar
/// paper's convolution and 128 features (`FeaturesExtractor`); with `net_arch: []` that is the paper's network.
public final class QNetwork: Module {
    let trunk: Sequential
    let valueHead: Linear?
    let advantageHead: Linear?

    public init(observationSpace: Space, actions: Int, hidden: [Int], activation: Activation, dueling: Bool,
                extractor: FeaturesExtractor = .flatten, using rng: inout SeededGenerator) throws {
        trunk = try extractor.network(observationSpace: observationSpace, hidden: hidden, outputs: dueling ? nil : actions,
                                      activation: activation, using: &rng)
        if dueling {
            let width = hidden.last ?? (extractor == .flatten ? observationSpace.flatCount : FeaturesExtractor.featuresDim)
            valueHead = Linear(width, 1, using: &rng)
            advantageHead = Linear(width, actions, using: &rng)
        } else {
            valueHead = nil
            advantageHead = nil
        }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = trunk(x)
        guard let valueHead, let advantageHead else { return h }
        let advantage = advantageHead(h)
        return valueHead(h) + advantage - advantage.mean(axis: 1, keepDims: true)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        var all = prefixed("q", trunk.namedParameters())
        if let valueHead, let advantageHead {
            all += prefixed("value", valueHead.namedParameters()) + prefixed("advantage", advantageHead.namedParameters())
        }
        return all
    }

    /// θ' ← τθ + (1 − τ)θ' for every parameter (τ = 1 copies).
    public func moveTowards(_ source: QNetwork, tau: Float) {
        for ((_, target), (_, s)) in zip(namedParameters(), source.namedParameters()) {
            if tau >= 1 { target.data = s.data; continue }
            target.data.withUnsafeMutableBufferPointer { t in
                s.data.withUnsafeBufferPointer { p in for i in 0..<t.count { t[i] = tau * p[i] + (1 - tau) * t[i] } }
            }
        }
    }

    /// The checkpoint description of the layers that compute Q.
    public var layerDescription: String {
        if valueHead == nil { return trunk.layerDescription(prefix: "q") }
        return #"{"type": "dueling", "trunk": \#(trunk.layerDescription(prefix: "q")), "value": "value", "advantage": "advantage"}"#
    }
}
